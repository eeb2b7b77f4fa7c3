"""Running real MPI jobs from the tests: ``mpirun(n, script, *args, timeout=...)``.

Each job is started by ``normgrad.distributed.launch.start`` (mpiexec from this
environment, in a session of its own, with the oversubscription settings this 2-core
machine needs, every process of the job carrying a token in its environment). After
the job has ended the fixture waits a moment for mpiexec's cleanup and records every
process still carrying the token (``Job.leftover``, which the tests assert empty); a
job that outlives its timeout is stopped, every process of it, and the test fails.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from normgrad.distributed import launch

SCRIPTS = Path(__file__).parent / "scripts"

HAVE_MPIEXEC = (Path(sys.executable).parent / "mpiexec").exists() or bool(shutil.which("mpiexec"))


@dataclass
class Job:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    leftover: list[int]  # pids of the job's processes still alive after it ended


def _run(n: int, args: list[str], timeout: float, cwd: str | None = None) -> Job:
    start = time.perf_counter()
    proc, token = launch.start(n, args, capture=True, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        launch.stop(proc, token)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(map(str, proc.args))} ran longer than {timeout} s\n{out}\n{err}")
    seconds = time.perf_counter() - start
    left = launch.job_pids(token)
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = launch.job_pids(token)
    if left:  # never leave them running, even when the test fails
        launch.stop(proc, token)
    return Job(proc.returncode, out, err, seconds, left)


@pytest.fixture
def mpirun():
    """``mpirun(n, script_or_args, *args, timeout=60)``: a finished ``Job``. Skips the test
    when there is no mpiexec (the 'mpi' extra is not installed; ``make test`` installs it)."""
    if not HAVE_MPIEXEC:
        pytest.skip("no mpiexec: install the 'mpi' extra (pip install normgrad[mpi])")

    def run(n: int, script: str, *args: str, timeout: float = 60.0, cwd: str | None = None) -> Job:
        target = [str(SCRIPTS / script)] if script.endswith(".py") else [script]
        return _run(n, [*target, *args], timeout, cwd)

    return run
