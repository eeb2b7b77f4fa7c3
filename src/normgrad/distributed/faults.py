"""When one rank fails, end every rank, showing that rank's error.

A rank that raises while the others wait in a collective would leave them waiting
forever. ``guard(main)`` runs a rank's work: on an exception it prints the traceback
(prefixed with the rank) to stderr, flushes, and calls MPI_Abort, which ends every
rank of the job with a non-zero exit status; MPICH's mpiexec then reports which rank
called it. Before aborting, the rank waits (up to ``DRAIN_S`` seconds) until mpiexec's
proxy has read everything it wrote to its stdout and stderr pipes, then ``SETTLE_S``
more for the proxy to pass it on: MPI_Abort tears the job down at once, and output
still in a pipe is lost with it (seen on a loaded machine as an empty stderr).

A usage error (``UsageError``) is printed in one line, as the CLI prints it, and aborts
with status 2; a non-zero exit status from ``main`` aborts with it.

A rank killed outright (SIGKILL, out of memory) cannot report anything: mpiexec
(hydra) sees its process end and kills the others itself.

``install()`` does the same for an uncaught exception anywhere in the process (it
replaces ``sys.excepthook``), for scripts run under mpiexec that use the layers
directly. With one rank nothing is aborted: the error propagates as usual.
"""

from __future__ import annotations

import array
import os
import stat
import sys
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from normgrad._internal.errors import UsageError

__all__ = ["DRAIN_S", "SETTLE_S", "abort", "drain", "guard", "install", "report"]

DRAIN_S = 5.0  # the longest a failing rank waits for its output to be read
SETTLE_S = 0.25  # and then for the proxy to forward it to mpiexec


def _comm(comm: Any) -> Any:
    from normgrad.norms.sync_comm import resolve_comm

    return resolve_comm(comm)


def report(text: str, comm: Any = None) -> None:
    """Print ``text`` to stderr, every line prefixed with this rank, and flush."""
    c = _comm(comm)
    prefix = f"[rank {c.rank}/{c.size}] " if c.size > 1 else ""
    lines = text.rstrip("\n").splitlines() or [""]
    sys.stderr.write("".join(f"{prefix}{line}\n" for line in lines))
    sys.stderr.flush()
    sys.stdout.flush()


def _unread(fd: int) -> int:
    """Bytes written to pipe ``fd`` that its reader has not read yet; 0 when ``fd`` is not
    a pipe or the count cannot be had (FIONREAD works on either end of a Linux pipe)."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
        import fcntl
        import termios

        count = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, count)
        return int(count[0])
    except (OSError, ImportError, AttributeError, ValueError):
        return 0


def drain(
    timeout: float = DRAIN_S, settle: float = SETTLE_S, fds: tuple[int, ...] = (1, 2)
) -> bool:
    """Flush stdout and stderr and wait until the pipes ``fds`` (stdout's and stderr's)
    are empty (at most ``timeout`` seconds), then ``settle`` seconds more; True when they
    emptied in time, False when a reader is stuck (the abort then goes ahead)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    deadline = time.monotonic() + timeout
    while any(_unread(fd) for fd in fds):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    time.sleep(settle)
    return True


def abort(code: int = 1, comm: Any = None) -> None:
    """End every rank of the job with exit status ``code`` (MPI_Abort) once this rank's
    output has been read (``drain``); with one rank, or a communicator that cannot abort,
    exit this process with it."""
    c = _comm(comm)
    stop = getattr(c, "abort", None)
    if c.size > 1 and stop is not None:
        drain()
        stop(code)
    raise SystemExit(code)


def guard(main: Callable[[], int], command: str = "normgrad", comm: Any = None) -> int:
    """``main()`` on this rank; any failure is shown and ends every rank (module docstring).

    Returns ``main()``'s exit status when it is 0 (or when there is one rank).
    """
    c = _comm(comm)
    try:
        code = int(main() or 0)
    except UsageError as exc:
        report(f"{command}: error: {exc}", c)
        if c.size == 1:
            return 2
        abort(2, c)
        return 2  # pragma: no cover - abort does not return
    except BaseException as exc:
        if c.size == 1:
            raise
        report("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), c)
        abort(1, c)
        return 1  # pragma: no cover
    if code and c.size > 1:
        report(f"{command}: exit status {code} on this rank; ending every rank.", c)
        abort(code, c)
    return code


def install(comm: Any = None) -> None:
    """Make an uncaught exception on any rank show its traceback and end every rank."""
    c = _comm(comm)
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if c.size == 1:
            previous(kind, exc, tb)
            return
        report("".join(traceback.format_exception(kind, exc, tb)), c)
        stop = getattr(c, "abort", None)
        if stop is not None:
            drain()
            stop(1)

    sys.excepthook = hook
