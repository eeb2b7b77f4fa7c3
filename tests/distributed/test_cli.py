"""``normgrad train --distributed`` / ``--ranks N`` and ``normgrad experiment sync-bn``.

The end-to-end runs start real mpiexec jobs and are marked slow; the flag checks run
in this process, before any job would start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from normgrad.cli import build_parser, main
from normgrad.tools import train


def test_config_argv_round_trips_through_the_parser() -> None:
    config = train.TrainConfig(
        hidden=[20, 10], norm="sync_batchnorm", lr=3.5e-4, epochs=2, quiet=True, seed=7,
        num_train=300, ranks=4,
    )  # fmt: skip
    argv = train.config_argv(config)
    assert "--ranks" not in argv and "--distributed" not in argv
    args = build_parser().parse_args(["train", *argv])
    names = {f for f in vars(config)}
    back = train.TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    assert back == train.TrainConfig(**{**vars(config), "ranks": None})


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--ranks", "3"], "multiple of the number of ranks (3)"),  # batch 100
        (["--ranks", "2", "--distributed"], "Pass one of them"),
    ],
)
def test_flags_that_cannot_run_are_usage_errors_before_any_job(flags, needle, capsys) -> None:
    assert main(["train", *flags, "--epochs", "1"]) == 2
    assert needle in capsys.readouterr().err


def test_ranks_must_be_a_positive_integer(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["train", "--ranks", "0"])
    assert info.value.code == 2


COMMON = ["--norm", "sync_batchnorm", "--num-train", "200", "--batch-size", "50", "--quiet"]


def _normgrad(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "normgrad", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )  # fmt: skip


@pytest.mark.slow
def test_ranks_trains_checkpoints_and_resumes_under_mpi(mpirun, tmp_path) -> None:
    ck = tmp_path / "ck"
    whole = _normgrad(
        "train", "--ranks", "2", *COMMON, "--epochs", "2", "--checkpoint", str(ck),
        "--json", str(tmp_path / "whole.json"), cwd=tmp_path,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    assert "over 2 ranks" in whole.stdout and whole.stdout.count("fc net") == 1  # rank 0 only
    done = json.loads((tmp_path / "whole.json").read_text())
    assert done["ranks"] == 2 and done["iterations"] == 8
    first = ck / "digits_fc_epoch_1.npz"
    assert first.is_file()
    # resume the first epoch's checkpoint under mpiexec: the same run, to the bit
    job = mpirun(
        2, "-m", "normgrad", "train", "--distributed", *COMMON, "--epochs", "2",
        "--resume", str(first), "--json", str(tmp_path / "resumed.json"), cwd=str(tmp_path),
        timeout=90,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr
    assert not job.leftover
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    for key in ("iterations", "final_loss", "train_acc", "val_acc", "test_acc"):
        assert resumed[key] == done[key], key
