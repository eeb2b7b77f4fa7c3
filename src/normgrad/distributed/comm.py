"""Communicators for the distributed layers and Solver: MPI, and the default world.

The maths in ``normgrad.norms.sync`` needs a communicator with ``rank``, ``size`` and
``allreduce(buf, op)`` on float64 buffers (``norms.sync_comm.Communicator``). Here:

- ``MPIComm`` wraps an mpi4py communicator. A sum is ``MPI.SUM`` on the buffer
  (uppercase ``Allreduce``: the NumPy buffer itself, no pickling); every other
  ``Reduction`` (Chan's merge, the max, the spread bound) becomes a user-defined
  ``MPI.Op`` declared commutative, applied to the whole buffer as ONE element of a
  contiguous derived datatype, so that MPI never splits a record (Chan's merge reads
  the count at its front). MPI gives every rank the same result of an all-reduce, and
  the merges give the same bits in either operand order. ``bcast``, ``barrier`` and
  ``abort`` serve the Solver and the fault handler.
- ``world()``: the default communicator. In a process started by mpiexec (its PMI
  variables are set) or one that has already initialized MPI, ``MPI.COMM_WORLD``;
  otherwise ``LocalComm()``, one rank, without importing mpi4py, so a plain process
  pays nothing and needs no MPI installed.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad.norms.sync_comm import SUM, Communicator, LocalComm, Reduction

__all__ = ["MPIComm", "launched_by_mpi", "mpi", "world"]

INSTALL_HINT = "pip install normgrad[mpi]"

# Set by MPICH's hydra (PMI_*), PMIx launchers (PMIX_RANK) and Open MPI (OMPI_*).
_LAUNCH_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def mpi() -> Any:
    """The ``mpi4py.MPI`` module (initializing MPI), or ImportError naming the extra."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            "normgrad.distributed needs mpi4py and an MPI library, which are not installed. "
            f"They are the optional 'mpi' extra: run `{INSTALL_HINT}` (mpi4py and the "
            "mpich wheel, which brings mpiexec into the environment's bin folder)."
        ) from exc
    return MPI


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (mpiexec, srun with PMI)."""
    return any(k in os.environ for k in _LAUNCH_VARS)


def _mpi_initialized() -> bool:
    mod = sys.modules.get("mpi4py.MPI")
    return mod is not None and bool(mod.Is_initialized())


_WORLD: Communicator | None = None


def world() -> Communicator:
    """MPI.COMM_WORLD (wrapped) under mpiexec or once MPI is initialized, else one local
    rank (``LocalComm``). Decided once per process."""
    global _WORLD
    if _WORLD is None:
        if launched_by_mpi() or _mpi_initialized():
            _WORLD = MPIComm.wrap(mpi().COMM_WORLD)
        else:
            _WORLD = LocalComm()
    return _WORLD


def _user_function(op: Reduction) -> Callable[[Any, Any, Any], None]:
    """An MPI user function applying ``op.combine`` record by record (inout = in op inout).

    An exception here cannot be returned through MPI, so it is printed and the job
    aborted: a silent wrong reduction is worse than a stopped job.
    """

    def apply(inbuf: Any, inoutbuf: Any, datatype: Any) -> None:
        try:
            a = np.frombuffer(inbuf, dtype=np.float64)
            b = np.frombuffer(inoutbuf, dtype=np.float64)
            k = datatype.Get_size() // 8  # values per record
            for start in range(0, b.size, k):
                rec = slice(start, start + k)
                b[rec] = op.combine(a[rec], b[rec])
        except BaseException:  # pragma: no cover - a bug in a reduction
            traceback.print_exc()
            sys.stderr.flush()
            mpi().COMM_WORLD.Abort(1)

    return apply


class MPIComm:
    """An mpi4py communicator as a ``norms.sync_comm.Communicator`` (see the module docstring).

    Build it with ``MPIComm.wrap(comm)``, which keeps one wrapper (and its datatypes and
    ops) per communicator.
    """

    _wrapped: dict[int, MPIComm] = {}

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self._types: dict[int, Any] = {}  # record length -> committed contiguous datatype
        self._ops: dict[str, Any] = {}  # Reduction name -> MPI.Op

    @classmethod
    def wrap(cls, comm: Any) -> MPIComm:
        w = cls._wrapped.get(id(comm))
        if w is None or w.comm is not comm:
            w = cls._wrapped[id(comm)] = cls(comm)
        return w

    def _record(self, k: int) -> Any:
        t = self._types.get(k)
        if t is None:
            t = self._types[k] = mpi().DOUBLE.Create_contiguous(k).Commit()
        return t

    def _op(self, op: Reduction) -> Any:
        o = self._ops.get(op.name)
        if o is None:
            o = self._ops[op.name] = mpi().Op.Create(_user_function(op), commute=True)
        return o

    def allreduce(self, buf: np.ndarray, op: Reduction) -> np.ndarray:
        """The reduction ``op`` of every rank's float64 buffer (k,), on every rank."""
        send = np.ascontiguousarray(buf, dtype=np.float64).ravel()
        recv = np.empty_like(send)
        if op is SUM or op.name == SUM.name:
            self.comm.Allreduce(send, recv, op=mpi().SUM)
        elif send.size:
            t = self._record(send.size)
            self.comm.Allreduce([send, 1, t], [recv, 1, t], op=self._op(op))
        return recv

    def bcast(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Rank ``root``'s float64 buffer on every rank (the others pass one as long)."""
        out = np.ascontiguousarray(buf, dtype=np.float64).copy()
        self.comm.Bcast(out, root=root)
        return out

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (MPI_Abort), exit status ``code``."""
        self.comm.Abort(code)

    def __repr__(self) -> str:
        return f"MPIComm(rank={self.rank}, size={self.size})"
