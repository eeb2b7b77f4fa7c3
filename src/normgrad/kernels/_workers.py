"""The calling thread's helpers: persistent threads that each run one chunk range a call.

``_runtime.run`` splits a large kernel call into contiguous chunk ranges, runs the first
on the calling thread and hands each other range to a worker here. A worker waits on a
plain lock (``_thread.allocate_lock``: C code, the GIL released while it waits), runs its
range of the GIL-free kernel, and releases its own done-lock. Nothing else moves between
the threads: no queue, future or condition variable, whose Python code is most of a
``ThreadPoolExecutor`` round trip. On the 2-core development VM (2026-12-04, layer norm's
forward on 2 threads, medians of ten alternations against the executor this replaced):
0.74x its time at (256, 1024) float32, 0.92x at (1024, 1024), 0.97x at (4096, 1024).

One dispatch at a time: a second Python thread that calls ``run`` while the workers are
busy runs its whole call on its own thread instead (``dispatch`` returns None), so the
results are the same bits either way (chunks never depend on who runs them). A worker
whose call was interrupted (KeyboardInterrupt while the caller waited) is waited for
before it gets new work. A forked child starts with no workers and makes its own.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Any


class _Worker:
    """One thread, one task at a time: ``post``, then ``collect`` its result."""

    def __init__(self) -> None:
        self._go = _thread.allocate_lock()
        self._go.acquire()  # released by post: the thread runs one task
        self._done = _thread.allocate_lock()
        self._done.acquire()  # released by the thread when the task is finished
        self._task: tuple[Any, tuple[Any, ...], int, int] | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        self.pending = False  # posted and not yet collected
        thread = threading.Thread(target=self._loop, name="normgrad-kernels", daemon=True)
        thread.start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            task, self._task = self._task, None
            assert task is not None
            body, args, lo, hi = task
            try:
                self._result = body(*args, lo, hi)
            except BaseException as exc:  # handed to the caller by collect
                self._error = exc
            self._done.release()

    def post(self, body: Any, args: tuple[Any, ...], lo: int, hi: int) -> None:
        """Run ``body(*args, lo, hi)`` on this worker's thread."""
        self._task = (body, args, lo, hi)
        self._error = None
        self.pending = True
        self._go.release()

    def collect(self) -> Any:
        """Wait for the posted task; its return value (or re-raise its exception)."""
        self._done.acquire()
        self.pending = False
        error, self._error = self._error, None
        if error is not None:
            raise error
        return self._result


_WORKERS: list[_Worker] = []
_BUSY = threading.Lock()  # held while one call's ranges are out with the workers


def dispatch(body: Any, args: tuple[Any, ...], cuts: Sequence[int]) -> bool | None:
    """``body(*args, cuts[t], cuts[t + 1])`` for every range t, range 0 on the calling
    thread and the others on workers; True when some call returned a true value. None,
    with nothing run, when another thread's call has the workers."""
    if not _BUSY.acquire(blocking=False):
        return None
    try:
        n = len(cuts) - 1
        while len(_WORKERS) < n - 1:
            _WORKERS.append(_Worker())
        workers = _WORKERS[: n - 1]
        for w in workers:  # an interrupted call may have left one running
            if w.pending:
                with contextlib.suppress(BaseException):  # that call raised to its caller
                    w.collect()
        for t, w in enumerate(workers, start=1):
            w.post(body, args, cuts[t], cuts[t + 1])
        hit = False
        error: BaseException | None = None
        try:
            hit = bool(body(*args, cuts[0], cuts[1]))
        finally:
            for w in workers:
                try:
                    hit = bool(w.collect()) or hit
                except BaseException as exc:
                    error = error or exc
        if error is not None:
            raise error
        return hit
    finally:
        _BUSY.release()


def _forget_workers() -> None:
    """In a forked child: the parent's threads do not exist here."""
    global _BUSY
    _WORKERS.clear()
    _BUSY = threading.Lock()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_forget_workers)
