"""The communicator synchronized batch norm needs, and the reductions it asks of it.

A ``Communicator`` is any object with ``rank``, ``size`` and ``allreduce(buf, op)`` over
float64 buffers; ``op`` is a ``Reduction``: ``SUM``, ``MAX``, ``CHAN`` (Chan, Golub &
LeVeque 1979: the pairwise merge of two shards' (count, mean, M2)) or ``SPREAD`` (the
same with a bound on the spread, for the rescaled path). Each gives the same bits in
either operand order, so every reduction tree gives every rank one answer.
``normgrad.distributed`` wraps MPI; ``LocalComm`` is one rank on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

F64 = np.float64


@dataclass(frozen=True)
class Reduction:
    """How an all-reduce combines two ranks' float64 buffers.

    ``combine(a, b)`` returns the combination of two buffers of the same length; it is
    associative in exact arithmetic and gives the same bits in either order, so every
    reduction tree gives every rank one answer. ``elementwise``: it may be applied to
    any slices of the buffers (a sum); otherwise to whole buffers only (Chan's merge
    reads the count at the front).
    """

    name: str
    combine: Callable[[np.ndarray, np.ndarray], np.ndarray]
    elementwise: bool = False


@runtime_checkable
class Communicator(Protocol):
    """What the maths needs from a communicator: its rank, its size and an all-reduce.

    ``allreduce(buf, op)`` takes this rank's float64 buffer (k,) and returns (k,), the
    reduction ``op`` of every rank's buffer, the same on every rank. Every rank must
    call it, in the same order, with buffers of the same length.
    """

    rank: int
    size: int

    def allreduce(self, buf: np.ndarray, op: Reduction) -> np.ndarray: ...


def _ordered(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) or (b, a): the one with more rows first (ties: by their bytes), so that a
    merge gives the same bits whichever operand it is given first."""
    if (b[0], b.tobytes()) > (a[0], a.tobytes()):
        return b, a
    return a, b


def chan_merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chan's pairwise merge of two shards' (count, mean, M2), each (2D + 1,) float64.

    n = n_a + n_b; delta = mean_b - mean_a; mean = mean_a + delta * n_b / n;
    M2 = M2_a + M2_b + delta^2 * n_a * n_b / n. An empty shard leaves the other as it is.
    """
    if b[0] == 0:
        return a.copy()
    if a[0] == 0:
        return b.copy()
    a, b = _ordered(a, b)
    D = (a.size - 1) // 2
    na, nb = a[0], b[0]
    n = na + nb
    with np.errstate(all="ignore"):  # inf or NaN here is detected by the caller
        delta = b[1 : D + 1] - a[1 : D + 1]  # (D,)
        out = np.empty_like(a)
        out[0] = n
        out[1 : D + 1] = a[1 : D + 1] + delta * (nb / n)  # (D,) the merged mean
        out[D + 1 :] = a[D + 1 :] + b[D + 1 :] + delta * delta * (na * nb / n)  # (D,) M2
    return out


def spread_merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge two shards' (count, mean, spread), each (2D + 1,): the merged count and mean
    as ``chan_merge``, and a bound on max |x - mean| over both (the rescaled path)."""
    if b[0] == 0:
        return a.copy()
    if a[0] == 0:
        return b.copy()
    a, b = _ordered(a, b)
    D = (a.size - 1) // 2
    n = a[0] + b[0]
    ma, mb = a[1 : D + 1], b[1 : D + 1]  # (D,)
    with np.errstate(all="ignore"):
        mean = ma + (mb - ma) * (b[0] / n)  # (D,)
        spread = np.maximum(a[D + 1 :] + np.abs(ma - mean), b[D + 1 :] + np.abs(mb - mean))
    return np.concatenate([[n], mean, spread])


SUM = Reduction("sum", np.add, elementwise=True)
MAX = Reduction("max", np.maximum, elementwise=True)  # NaN wins, as np.max
CHAN = Reduction("chan", chan_merge)
SPREAD = Reduction("spread", spread_merge)


class LocalComm:
    """One rank on its own: every all-reduce returns this rank's buffer."""

    rank = 0
    size = 1

    def allreduce(self, buf: np.ndarray, op: Reduction) -> np.ndarray:
        return np.array(buf, dtype=F64, copy=True)

    def __repr__(self) -> str:
        return "LocalComm()"


def resolve_comm(comm: Any) -> Communicator:
    """The communicator to use: ``comm`` itself, an mpi4py communicator wrapped, or for
    None ``normgrad.distributed.world()``.

    Raises:
        TypeError: ``comm`` is none of these.
    """
    if comm is None:
        from normgrad.distributed.comm import world

        return world()
    if hasattr(comm, "Allreduce") and hasattr(comm, "Get_size"):  # an mpi4py Comm (whose
        from normgrad.distributed.comm import MPIComm  # lowercase allreduce pickles objects)

        return MPIComm.wrap(comm)
    if isinstance(comm, Communicator):
        return comm
    raise TypeError(
        f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), an object with rank, "
        f"size and allreduce(buf, op) (normgrad.norms.sync.Communicator), or None for "
        f"normgrad.distributed.world(); got {type(comm).__name__}."
    )
