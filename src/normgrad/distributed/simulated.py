"""P ranks as threads of one process: the communicator of the tests, checks and proofs.

``run_ranks(fn, P)`` calls ``fn(comm)`` in P threads, each with a ``SimulatedComm`` of
one simulated world, and returns their results in rank order. An all-reduce waits until
every rank has given its buffer, combines them once in rank order (((b0 op b1) op b2)
...), and hands every rank a copy of the same result, as MPI gives every rank the same
answer. It also checks what MPI leaves undefined: every rank must call the same
reduction with a buffer of the same length, else every rank gets a ``ValueError``.

A rank that raises aborts the world: the others, waiting in a collective, stop with
``threading.BrokenBarrierError``, and ``run_ranks`` re-raises the first real error (in
rank order). Nothing here is MPI; the same code in ``normgrad.norms.sync`` runs on
``comm.MPIComm`` in an mpiexec job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from normgrad.norms.sync_comm import Reduction

__all__ = ["SimulatedComm", "run_ranks", "simulated_world"]

T = TypeVar("T")


class _World:
    """The shared state of one simulated world: a barrier and one slot per rank."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.barrier = threading.Barrier(size, timeout=timeout)
        self.slots: list[tuple[np.ndarray, Reduction] | None] = [None] * size
        self.result: np.ndarray | None = None
        self.error: str | None = None

    def combine(self) -> None:
        """Fold the ranks' buffers in rank order (called by one rank, others waiting)."""
        slots = [s for s in self.slots if s is not None]
        first, op = slots[0]
        mismatch = [
            f"rank {r}: {b.size} values, op {o.name!r}"
            for r, (b, o) in enumerate(slots)
            if b.size != first.size or o.name != op.name
        ]
        if mismatch:
            self.result = None
            self.error = (
                f"the ranks called an all-reduce with different buffers (rank 0: "
                f"{first.size} values, op {op.name!r}; {'; '.join(mismatch)}). Every rank "
                "must run the same layers on the same features (D) in the same order."
            )
            return
        acc = first
        for b, _ in slots[1:]:
            acc = op.combine(acc, b)
        self.result, self.error = acc, None


class SimulatedComm:
    """One rank of a simulated world (``norms.sync_comm.Communicator``)."""

    def __init__(self, world: _World, rank: int) -> None:
        self._world = world
        self.rank = rank
        self.size = world.size

    def allreduce(self, buf: np.ndarray, op: Reduction) -> np.ndarray:
        w = self._world
        w.slots[self.rank] = (np.array(buf, dtype=np.float64, copy=True).ravel(), op)
        if w.barrier.wait() == 0:  # exactly one rank combines
            w.combine()
        w.barrier.wait()
        error, out = w.error, None if w.result is None else w.result.copy()
        w.barrier.wait()  # nobody writes a slot before every rank has its copy
        if error is not None or out is None:
            raise ValueError(error)
        return out

    def abort(self) -> None:
        """Break the world: every rank waiting in a collective stops."""
        self._world.barrier.abort()

    def __repr__(self) -> str:
        return f"SimulatedComm(rank={self.rank}, size={self.size})"


def simulated_world(size: int, timeout: float = 60.0) -> list[SimulatedComm]:
    """The P communicators of one new simulated world, rank order."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"a simulated world needs size >= 1 ranks; got {size!r}.")
    world = _World(size, timeout)
    return [SimulatedComm(world, r) for r in range(size)]


def run_ranks(
    fn: Callable[[SimulatedComm], T],
    size: int,
    comms: Sequence[Any] | None = None,
    timeout: float = 60.0,
) -> list[T]:
    """``[fn(comm_0), ..., fn(comm_{P-1})]``, each in its own thread of one world.

    Args:
        fn: what every rank runs; it may call the layers with ``comm=comm``.
        size: P, the number of ranks (1 runs in the calling thread).
        comms: the world to run in (e.g. the one a forward pass used, for its backward);
            a new one when None.
        timeout: seconds a rank may wait in one collective before the world is broken.

    Raises:
        whatever a rank raised first (in rank order), after every thread has ended.
    """
    comms = list(comms) if comms is not None else simulated_world(size, timeout)
    if size == 1:
        return [fn(comms[0])]
    results: list[Any] = [None] * size
    errors: list[BaseException | None] = [None] * size

    def target(r: int) -> None:
        try:
            results[r] = fn(comms[r])
        except BaseException as exc:  # recorded and re-raised by the caller
            errors[r] = exc
            comms[r].abort()

    threads = [threading.Thread(target=target, args=(r,), daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    real = [e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)]
    if real:
        raise real[0]
    broken = [e for e in errors if e is not None]
    if broken:
        raise broken[0]
    return results
