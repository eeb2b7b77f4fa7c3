"""Starting an MPI job from Python: mpiexec from the environment, set up for this machine.

``normgrad train --ranks N`` and ``normgrad experiment sync-bn`` start their ranks with
``run(N, args)``: ``mpiexec -n N <this python> args...``. The mpiexec is the one next
to this Python (the mpich wheel puts it in the virtual environment's bin folder), else
the first on PATH.

Oversubscription: with more ranks than cores, MPICH's default busy-polling makes a
rank that waits in a collective hold a core another rank needs. ``environment(N)``
then sets (unless the caller's environment already sets them):

- ``MPIR_CVAR_POLLS_BEFORE_YIELD=1``: a waiting rank yields the processor at every poll
  (the default is every 1000), so a rank with work to do gets the core at once;
- ``MPIR_CVAR_CH4_PROGRESS_THROTTLE=1``: and it sleeps briefly (usleep) after many
  unsuccessful polls in a row;
- one BLAS thread per rank (``OMP_NUM_THREADS`` and friends), so N ranks do not start
  N x cores threads.

``MPIR_CVAR_ENABLE_HEAVY_YIELD`` (a nanosleep per yield) would free more CPU but made a
lockstep training step three times slower here, so it is not set (docs/scaling.md).

No process is left behind: mpiexec runs in a session of its own, and every process of
the job carries ``NORMGRAD_MPI_JOB=<token>`` in its environment (mpiexec passes the
environment on to its proxies and ranks, which MPICH's hydra starts in sessions of
their own). On a timeout or Ctrl-C mpiexec's session is terminated, then every process
that carries the token (``job_pids``) is killed after a grace period.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "JOB_VAR",
    "OVERSUBSCRIBED",
    "command",
    "environment",
    "job_pids",
    "mpiexec",
    "run",
    "start",
    "stop",
]

JOB_VAR = "NORMGRAD_MPI_JOB"

OVERSUBSCRIBED = {
    "MPIR_CVAR_POLLS_BEFORE_YIELD": "1",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1",
}
_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def mpiexec() -> str:
    """The mpiexec next to this Python, else the first on PATH.

    Raises:
        FileNotFoundError: there is none (the 'mpi' extra is not installed).
    """
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found:
        return found
    raise FileNotFoundError(
        "no mpiexec next to this Python or on PATH. Install the 'mpi' extra (`pip install "
        "normgrad[mpi]`, mpi4py and the mpich wheel, which puts mpiexec in the "
        "environment's bin folder), or put an MPI installation's mpiexec on PATH."
    )


def environment(ranks: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job's environment: ``base`` (os.environ) plus the oversubscription settings
    when ``ranks`` exceeds the cores, and one BLAS thread per rank; ``base`` wins."""
    env = dict(os.environ if base is None else base)
    cores = os.cpu_count() or 1
    extra = dict(OVERSUBSCRIBED) if ranks > cores else {}
    extra.update({k: str(max(1, cores // ranks)) for k in _BLAS_THREADS})
    for key, value in extra.items():
        env.setdefault(key, value)
    return env


def command(ranks: int, args: Sequence[str], python: str | None = None) -> list[str]:
    """``[mpiexec, -n, ranks, python, *args]``."""
    return [mpiexec(), "-n", str(ranks), python or sys.executable, *args]


def job_pids(token: str) -> list[int]:
    """The live processes whose environment holds ``NORMGRAD_MPI_JOB=token`` (Linux's
    /proc; an empty list where it cannot be read)."""
    needle = f"{JOB_VAR}={token}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry))
    return found


def start(
    ranks: int,
    args: Sequence[str],
    *,
    capture: bool = False,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start ``python args...`` on ``ranks`` ranks; (the mpiexec process, the job token)."""
    if not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1:
        raise ValueError(f"ranks must be an int >= 1; got {ranks!r}.")
    token = secrets.token_hex(8)
    job_env = environment(ranks, env)
    job_env[JOB_VAR] = token
    pipe = subprocess.PIPE if capture else None
    proc = subprocess.Popen(
        command(ranks, args),
        stdout=pipe,
        stderr=pipe,
        text=True,
        cwd=cwd,
        env=job_env,
        start_new_session=True,
    )
    return proc, token


def stop(proc: subprocess.Popen, token: str | None = None, grace: float = 5.0) -> None:
    """End the job: SIGTERM to mpiexec's session (mpiexec ends its ranks), SIGKILL after
    ``grace`` seconds; then SIGKILL to any process still carrying the job's token."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    if token is None:
        return
    deadline = time.monotonic() + grace
    left = job_pids(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = job_pids(token)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run(
    ranks: int,
    args: Sequence[str],
    *,
    timeout: float | None = None,
    capture: bool = False,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python args...`` on ``ranks`` ranks and wait for the job to end.

    Args:
        ranks: the number of ranks (mpiexec -n).
        args: the Python arguments, e.g. ``["-m", "normgrad", "train", "--distributed"]``.
        timeout: seconds; the job is stopped (its whole session) and
            ``subprocess.TimeoutExpired`` raised when it runs longer.
        capture: return stdout and stderr (text) instead of passing them through.
        cwd, env: the job's folder and the base of its environment (``environment``).

    Returns:
        the CompletedProcess: ``returncode`` 0 when every rank succeeded.
    """
    proc, token = start(ranks, args, capture=capture, cwd=cwd, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # a timeout, Ctrl-C: leave nothing running
        stop(proc, token)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
