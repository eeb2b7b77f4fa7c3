"""Start the grading process, wait for it with a time limit, read its result.

``run`` is what ``normgrad grade`` uses. ``run_in_process`` grades in the calling
process, with no subprocess and no time limit: only for code that is trusted (normgrad's
own modules, the grader's tests), since a student's top level would run in the grader.

The student's code only ever runs in the child (``python -m
normgrad.tools.grade.worker``), in a session of its own, with stdin closed, matplotlib
on a non-interactive backend and no ``__pycache__`` written into the student's folder.
If it does not finish within ``timeout`` seconds the whole session is killed and the
result says what it was doing (its progress file); if it dies without a result (a crash
in native code, ``os._exit``) the result says that, with the end of its stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from normgrad.tools.grade.result import GradeResult
from normgrad.tools.grade.targets import Target

CALL_LIMIT = 10.0  # seconds for one call of a student's function (or one import), at most
# (a quarter of --timeout when that is shorter, so one stuck function leaves time for the rest)


def _last_step(progress: Path) -> str:
    try:
        lines = progress.read_text(encoding="utf-8").splitlines()
    except OSError:
        return "starting"
    return lines[-1] if lines else "starting"


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run(target: Target, *, seed: int = 0, tol: float = 1e-8, timeout: float = 120.0) -> GradeResult:
    """Grade ``target`` in a subprocess; never raises for anything the student's code does."""
    if not target.modules:
        return GradeResult(target.text, fatal="; ".join(target.syntax_errors), seed=seed, tol=tol)
    spec = {
        "target": target.text,
        "modules": [[name, str(path)] for name, path in target.modules],
        "sys_path": target.sys_path,
        "select": target.select,
        "seed": seed,
        "tol": tol,
        "limit": min(CALL_LIMIT, max(1.0, timeout / 4)),
    }
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory(prefix="normgrad-grade-") as tmp:
        out = Path(tmp) / "result.json"
        progress = Path(str(out) + ".progress")
        cmd = [sys.executable, "-m", "normgrad.tools.grade.worker", json.dumps(spec), str(out)]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return GradeResult(
                target.text,
                fatal=f"grading did not finish within {timeout:g} s; it was {_last_step(progress)} "
                "(an infinite loop at the top level, or a very slow function?)",
                seed=seed,
                tol=tol,
            )
        if not out.is_file():
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            return GradeResult(
                target.text,
                fatal=(
                    f"the grading process ended without a result (exit status "
                    f"{proc.returncode}) while {_last_step(progress)}: os._exit() or a crash "
                    f"in native code? {' '.join(tail)}"
                ).strip(),
                seed=seed,
                tol=tol,
            )
        result = GradeResult.from_json(out.read_text(encoding="utf-8"))
    result.import_errors.extend(f"syntax error: {e} (not graded)" for e in target.syntax_errors)
    return result


def run_in_process(
    target: Target, *, seed: int = 0, tol: float = 1e-8, timeout: float | None = None
) -> GradeResult:
    """``run``'s grade of TRUSTED code, in this process (see the module docstring).

    ``timeout`` is accepted for the signature ``run`` has and ignored: nothing limits
    the calls here.
    """
    from normgrad.tools.grade import sandbox, worker

    if not target.modules:
        return GradeResult(target.text, fatal="; ".join(target.syntax_errors), seed=seed, tol=tol)
    loaded = [sandbox.load(name, path, None) for name, path in target.modules]
    return worker.grade_modules(
        loaded, target=target.text, select=target.select, seed=seed, tol=tol
    )
