"""Real MPI jobs (mpiexec -n 2, 3, 4 from this environment), each with a timeout.

- the layers on 2, 3 and 4 ranks, shards of unequal size with a rank of one row and
  ranks of none: batch norm on the concatenated batch to rel 1e-12, running statistics
  with the same bits on every rank;
- data parallel: 20 steps on 4 ranks x batch 25 equal 1 process x batch 100 to rel 1e-10,
  with the parameters bit for bit the same on every rank;
- faults: a rank that raises, a rank killed with SIGKILL, ranks that disagree: every
  rank ends, non-zero, within 30 s, the error shown, no process left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from normgrad.gradient_check import norm_rel_error


def _solver_module():
    """tests/distributed/scripts/solver.py, imported for its setup (no MPI at import)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent / "scripts" / "solver.py"
    spec = importlib.util.spec_from_file_location("_solver_script", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("P", [2, 3, 4])
def test_layers_on_p_ranks_equal_batch_norm_on_the_whole_batch(mpirun, P: int) -> None:
    job = mpirun(P, "layers.py", timeout=60)
    assert job.returncode == 0, job.stderr
    assert not job.leftover
    report = json.loads(job.stdout.strip().splitlines()[-1])
    assert report["size"] == P
    assert any(0 in rows for rows in report["splits"]) and any(
        1 in rows for rows in report["splits"]
    )
    assert report["same_bits"]  # the running statistics, on every rank
    for key, err in report["worst"].items():
        assert err < 1e-12, (key, err)


@pytest.mark.slow
def test_four_ranks_of_25_train_as_one_process_of_100(mpirun, tmp_path) -> None:
    out = tmp_path / "dist.npz"
    job = mpirun(4, "solver.py", str(out), timeout=60)
    assert job.returncode == 0, job.stderr
    assert not job.leftover
    got = np.load(out)
    assert len(set(got["digests"].tolist())) == 1  # bit for bit the same on every rank

    from normgrad.training.solver import Solver

    script = _solver_module()  # the same data, seed, model and settings, one process
    data, model = script.setup()
    solver = Solver(model, data, **script.SETTINGS)
    solver.train()
    loss = np.asarray(solver.loss_history)
    assert loss.size == got["loss"].size == 20
    assert np.max(np.abs(got["loss"] - loss) / np.abs(loss)) < 1e-10
    # the held-out scores of the final model
    assert norm_rel_error(got["scores"], solver.model.loss(data["X_val"])) < 1e-10
    for name, w in solver.model.params.items():
        d = got[f"param/{name}"]
        if name in ("b1", "b2"):
            # A bias before batch norm has gradient 0 in exact arithmetic (the layer
            # subtracts the batch mean): its computed gradient is rounding noise, ~1e-17,
            # a different noise on 4 ranks and on 1, and Adam (eps = 1e-8) moves it by
            # about lr * 1e-17 / 1e-8 per step. So both stay ~1e-11, and only their
            # absolute difference is meaningful; in train mode they cancel exactly, in
            # test mode they shift the scores by about their size (checked above).
            assert np.max(np.abs(d - w)) < 1e-9, name
            continue
        assert norm_rel_error(d, w) < 1e-10, name


def _assert_failed_fast(job, needle: str) -> None:
    assert job.returncode != 0
    assert job.seconds < 30, job.seconds
    assert not job.leftover, job.leftover
    assert needle in job.stderr + job.stdout, job.stderr[-3000:]


def test_a_rank_that_raises_ends_every_rank_showing_its_error(mpirun) -> None:
    job = mpirun(3, "faults.py", "raise", timeout=45)
    _assert_failed_fast(job, "rank 1 failed on purpose in its 4th step")
    assert "[rank 1/3]" in job.stderr


@pytest.mark.slow
def test_a_killed_rank_ends_the_job(mpirun) -> None:
    job = mpirun(3, "faults.py", "kill", timeout=45)
    _assert_failed_fast(job, "Killed")


def test_ranks_that_disagree_are_stopped_at_the_first_step(mpirun) -> None:
    job = mpirun(3, "faults.py", "disagree", timeout=45)
    _assert_failed_fast(job, "disagree at its first step")
    text = job.stderr
    assert "the parameter values (ranks 1, 2 differ from rank 0)" in text
    assert "parameter names and shapes) (rank 2 differs from rank 0)" in text
    assert "RanksDisagreeError" in text


def _marked(mark: str) -> list[int]:
    """Live processes whose environment holds NORMGRAD_TEST_MARK=mark."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"NORMGRAD_TEST_MARK={mark}".encode() in env:
                found.append(int(entry))
    return found


def test_the_launcher_leaves_nothing_behind_on_a_timeout(mpirun) -> None:
    from normgrad.distributed import launch

    mark = secrets.token_hex(6)
    env = {**os.environ, "NORMGRAD_TEST_MARK": mark}
    start = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        launch.run(2, ["-c", "import time; time.sleep(60)"], timeout=1.5, capture=True, env=env)
    assert time.perf_counter() - start < 20
    assert _marked(mark) == []  # mpiexec, its proxy and both ranks are gone
