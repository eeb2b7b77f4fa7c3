"""The worker threads behind ``_runtime.run`` (``kernels._workers``).

Every range runs exactly once, on the calling thread or a worker; a worker's exception
reaches the caller; two Python threads calling at once get the same bits as one (the
second runs its call on its own thread); a call whose caller raised leaves the workers
usable; a forked child makes its own workers.
"""

from __future__ import annotations

import os
import select
import signal
import threading

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from normgrad.kernels import _runtime, _workers, layer  # noqa: E402


def test_every_range_runs_once_and_the_flags_are_ored() -> None:
    seen: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def body(tag, lo, hi):
        with lock:
            seen.append((tag, lo, hi))
        return lo == 4  # only the third range flags

    cuts = [0, 2, 4, 7, 9]
    assert _workers.dispatch(body, (1,), cuts) is True
    assert sorted(seen) == [(1, 0, 2), (1, 2, 4), (1, 4, 7), (1, 7, 9)]
    seen.clear()
    assert _workers.dispatch(body, (2,), [0, 3, 4]) is False
    assert sorted(seen) == [(2, 0, 3), (2, 3, 4)]


def test_a_workers_exception_reaches_the_caller_and_the_workers_stay_usable() -> None:
    def body(lo, hi):
        if lo > 0:
            raise ZeroDivisionError(f"range {lo}")
        return False

    with pytest.raises(ZeroDivisionError, match="range"):
        _workers.dispatch(body, (), [0, 1, 2])
    assert _workers.dispatch(lambda lo, hi: hi == 2, (), [0, 1, 2]) is True


def test_a_caller_that_raised_leaves_no_worker_behind() -> None:
    """The calling thread's own range raises while a worker still runs: the next call
    waits for that worker before it posts new work, and gets its own results."""
    release = threading.Event()

    def body(lo, hi):
        if lo == 0:
            raise KeyError("caller")
        release.wait(5)  # the worker is still busy when the caller raises
        return False

    timer = threading.Timer(0.05, release.set)
    timer.start()
    with pytest.raises(KeyError):
        _workers.dispatch(body, (), [0, 1, 2])
    timer.join()
    got: list[int] = []
    assert _workers.dispatch(lambda lo, hi: got.append(lo), (), [0, 1, 2]) is False
    assert sorted(got) == [0, 1]


def test_two_python_threads_at_once_get_the_same_bits(two_threads) -> None:
    """Large layer norm calls from two threads at once: each result is the one a lone
    call gives (one of them may run its whole call on its own thread)."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((512, 1024)).astype(np.float32) + k for k in range(2)]
    g, b = (
        rng.standard_normal(1024).astype(np.float32),
        rng.standard_normal(1024).astype(np.float32),
    )
    want = [layer.layernorm_forward_fused(x, g, b, {"eps": 1e-5})[0] for x in xs]
    got: list[list[np.ndarray]] = [[], []]
    start = threading.Barrier(2)

    def worker(k):
        start.wait()
        for _ in range(20):
            got[k].append(layer.layernorm_forward_fused(xs[k], g, b, {"eps": 1e-5})[0])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert len(got[k]) == 20
        assert all(np.array_equal(o, want[k]) for o in got[k])


def test_busy_workers_send_the_call_home() -> None:
    """While one call has the workers, another gets None back and runs nothing there."""
    inside = threading.Event()
    leave = threading.Event()

    def slow(lo, hi):
        inside.set()
        leave.wait(5)
        return False

    t = threading.Thread(target=_workers.dispatch, args=(slow, (), [0, 1, 2]))
    t.start()
    assert inside.wait(5)
    ran: list[int] = []
    assert _workers.dispatch(lambda lo, hi: ran.append(lo), (), [0, 1, 2]) is None
    assert ran == []
    leave.set()
    t.join()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_makes_its_own_workers(two_threads) -> None:
    x = np.random.default_rng(1).standard_normal((512, 1024)).astype(np.float32)
    g, b = np.ones(1024, np.float32), np.zeros(1024, np.float32)
    want = layer.layernorm_forward_fused(x, g, b, {"eps": 1e-5})[0]  # parent's workers exist
    assert _runtime.threads_for(x.size, _runtime.n_chunks(*x.shape)) == 2
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        ok = False
        try:
            out = layer.layernorm_forward_fused(x, g, b, {"eps": 1e-5})[0]
            ok = bool(np.array_equal(out, want))
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)  # a child waiting on the parent's
    if not ready:  # threads would hang: fail instead
        os.kill(pid, signal.SIGKILL)
    answer = os.read(read, 1) if ready else b"timeout"
    os.waitpid(pid, 0)
    assert answer == b"1"
