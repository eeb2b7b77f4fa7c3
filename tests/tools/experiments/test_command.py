"""normgrad experiment / normgrad demo from the command line: outputs and exit codes."""

from __future__ import annotations

import json
import re

import pytest

from normgrad import cli
from normgrad.tools import checks
from normgrad.tools.checks import CheckRow

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them


def test_experiment_cli_writes_files_and_prints_a_table(tmp_path, capsys):
    out = tmp_path / "deep"
    assert (
        cli.main(["experiment", "deep", "--tiny", "--quiet", "--out", str(out), "--seed", "1"]) == 0
    )
    printed = capsys.readouterr().out
    assert "baseline" in printed and "batchnorm" in printed and "final_acc" in printed
    assert str(out / "deep.png") in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1] and set(summary["arms"]) == {"baseline", "batchnorm"}


def test_batch_size_layernorm_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["experiment", "batch-size", "--norm", "layernorm", "--tiny", "--quiet"]) == 0
    summary = json.loads(
        (tmp_path / "results" / "batch-size-layernorm" / "summary.json").read_text()
    )
    assert isinstance(summary["batch_size_sensitivity"], float)
    assert "layernorm_b50" in summary["arms"]


@pytest.mark.parametrize(
    "argv",
    [
        ["experiment", "nosuch"],
        ["experiment", "deep", "--data", "mnist"],
        ["experiment", "batch-size", "--norm", "groupnorm"],
    ],
)
def test_bad_choices_exit_2_with_the_choices(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_misplaced_options_and_missing_cifar_exit_2(tmp_path, capsys):
    assert (
        cli.main(["experiment", "deep", "--tiny", "--norm", "layernorm", "--out", str(tmp_path)])
        == 2
    )
    assert "--norm applies to the batch-size experiment only" in capsys.readouterr().err
    assert cli.main(["experiment", "deep", "--tiny", "--data-dir", str(tmp_path)]) == 2
    assert "--data-dir is for --data cifar10" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "experiment",
                "deep",
                "--tiny",
                "--data",
                "cifar10",
                "--data-dir",
                str(tmp_path / "nowhere"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "does not exist" in err and "cifar-10-python.tar.gz" in err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_demo_checks_trains_and_writes_the_plot(tmp_path, capsys):
    assert cli.main(["demo", "--tiny", "--quiet", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for route in ("graph", "paper", "alt", "closed"):
        assert route in printed
    assert re.search(r"\b\d+ passed, 0 failed", printed)
    assert "final_acc" in printed and str(tmp_path / "demo.png") in printed
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_exits_1_when_the_gradient_check_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        checks, "run_checks", lambda *a, **k: [CheckRow("batchnorm", "alt", "dx", 0.5, False)]
    )
    assert cli.main(["demo", "--tiny", "--quiet", "--out", str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert not (tmp_path / "demo.png").exists()
