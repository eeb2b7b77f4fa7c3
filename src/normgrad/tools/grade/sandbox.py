"""Running a student's code without letting it take the grader down (the worker side).

The worker process (``worker``) imports the student's modules and calls their functions
through ``load`` and ``call``. Both:

- give the code at most ``limit`` seconds, by a real-time interval timer whose handler
  raises ``TimedOut`` (a ``BaseException``, so ``except Exception:`` in student code
  does not swallow it); ``runner`` also kills the whole process after ``--timeout``;
- capture what the code prints (the grader's own report goes to a file, not stdout);
- answer ``input()`` with an empty line (stdin is closed) and turn ``sys.exit()`` /
  ``exit()`` into a reported error, so a script-style top level cannot stop the grade.

The timer works in the main thread of a Unix process; elsewhere (and in-process tests)
``limit=None`` runs the code unguarded by time.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import io
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any


class TimedOut(BaseException):  # noqa: N818  (what happened, not an error class)
    """The student's code ran past its time limit."""


class StudentError(Exception):
    """A student's function raised, exited or timed out; ``str`` says how and where."""


@dataclass
class Log:
    """What the student's code printed or asked for, for the report's notes."""

    printed: list[str] = field(default_factory=list)
    inputs: int = 0  # how many times it called input()


LOG = Log()


@contextlib.contextmanager
def _time_limit(limit: float | None) -> Iterator[None]:
    if not limit or not hasattr(signal, "setitimer"):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise TimedOut

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _fake_input(prompt: object = "") -> str:
    LOG.inputs += 1
    return ""


@contextlib.contextmanager
def _guarded(limit: float | None) -> Iterator[io.StringIO]:
    """Capture output, answer input(), and apply the time limit."""
    buf = io.StringIO()
    real_input = builtins.input
    builtins.input = _fake_input
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            with _time_limit(limit):
                yield buf
    finally:
        builtins.input = real_input
        text = buf.getvalue().strip()
        if text:
            LOG.printed.extend(text.splitlines()[:20])


def where(exc: BaseException, files: tuple[str, ...] = ()) -> str:
    """'file.py, line N, in f' of the innermost frame in the student's files (or the last)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if not files or f.filename in files]
    chosen = mine or list(frames)
    if not chosen:
        return ""
    f = chosen[-1]
    return f"{Path(f.filename).name}, line {f.lineno}, in {f.name}"


def describe(exc: BaseException, files: tuple[str, ...] = (), limit: float | None = None) -> str:
    """One line: what went wrong and where."""
    if isinstance(exc, TimedOut):
        return f"did not finish within {limit:g} s (an infinite loop?)" if limit else "timed out"
    if isinstance(exc, SystemExit):
        text = f"called sys.exit({exc.code!r})"
    else:
        msg = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {msg[0][:200] if msg else ''}".rstrip(": ")
    at = where(exc, files)
    return f"{text} ({at})" if at else text


def call(fn: Callable[..., Any], args: list[Any], limit: float | None, files: tuple[str, ...]):
    """``fn(*args)``, or ``StudentError`` saying what went wrong."""
    try:
        with _guarded(limit):
            return fn(*args)
    except (Exception, SystemExit, TimedOut, RecursionError) as exc:
        raise StudentError(describe(exc, files, limit)) from None


@dataclass
class Loaded:
    """A student module as far as it ran: its namespace, and why it stopped, if it did."""

    name: str
    path: str
    module: ModuleType | None
    error: str = ""


def load(name: str, path: Path, limit: float | None) -> Loaded:
    """Import the file at ``path`` as module ``name`` (a package's submodule keeps its
    package, so relative imports work), keeping whatever it defined before a failure."""
    parent = name.rpartition(".")[0]
    try:
        if parent and parent not in sys.modules:
            with _guarded(limit):
                importlib.import_module(parent)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return Loaded(name, str(path), None, f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
    except (Exception, SystemExit, TimedOut) as exc:
        return Loaded(name, str(path), None, f"importing {parent}: {describe(exc, (), limit)}")
    try:
        with _guarded(limit):
            spec.loader.exec_module(module)
    except (Exception, SystemExit, TimedOut, RecursionError) as exc:
        why = describe(exc, (str(path),), limit)
        if isinstance(exc, SystemExit):
            why += ": put script code under `if __name__ == '__main__':`"
        return Loaded(name, str(path), module, f"importing {path.name} stopped: {why}")
    return Loaded(name, str(path), module)
