"""``normgrad train``: a good default digits run, outputs, bad values, CIFAR-10 folders."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from normgrad import data_utils as du
from normgrad.cli import main

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["train", "--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_digits_batchnorm_run_is_good(tmp_path, capsys):
    result_file, plot_file = tmp_path / "r.json", tmp_path / "curves.png"
    code, out, _ = _run(
        capsys,
        "--data",
        "digits",
        "--norm",
        "batchnorm",
        "--json",
        str(result_file),
        "--plot",
        str(plot_file),
    )
    assert code == 0
    result = json.loads(result_file.read_text())
    assert {"train_acc", "val_acc", "test_acc", "seconds"} <= set(result)
    assert result["test_acc"] >= 0.95
    assert result["iterations"] == 20 * (1257 // 100)
    assert plot_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "test 9" in out and "wrote" in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "argv",
    [
        ["--norm", "layernorm", "--dropout", "0.9"],
        ["--model", "cnn", "--norm", "groupnorm", "--groups", "2", "--filters", "4"],
        [
            "--model",
            "cnn",
            "--norm",
            "batchnorm",
            "--filters",
            "4",
            "--update-rule",
            "sgd_momentum",
            "--lr",
            "0.05",
        ],
    ],
)
def test_other_models_train(tmp_path, capsys, argv):
    out_file = tmp_path / "r.json"
    code, _, _ = _run(
        capsys,
        *argv,
        "--epochs",
        "5",
        "--batch-size",
        "50",
        "--num-train",
        "400",
        "--json",
        str(out_file),
    )
    assert code == 0
    assert json.loads(out_file.read_text())["val_acc"] > 0.5


def test_progress_and_summary_are_printed(capsys):
    code = main(["train", "--epochs", "1", "--num-train", "200", "--hidden", "20"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "(Epoch 1 / 1)" in out + err and "best-validation model" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--norm", "batchnrom"], "invalid choice: 'batchnrom'"),
        (["--data", "mnist"], "invalid choice: 'mnist'"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--update-rule", "adamw"], "invalid choice: 'adamw'"),
        (["--dropout", "0"], "KEEPING"),
        (["--hidden", "100,x"], "sizes like 100,100"),
        (["--epochs", "-1"], "expected an integer > 0"),
    ],
)
def test_unknown_cli_values_are_rejected(capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--model", "fc", "--norm", "groupnorm"], "does not apply to --model fc"),
        (["--model", "cnn", "--norm", "layernorm"], "does not apply to --model cnn"),
        (["--plot", "curves.txt"], ".png"),
        (["--json", "no/such/folder/r.json"], "does not exist"),
        (["--resume", "missing.npz"], "no such checkpoint"),
    ],
)
def test_inconsistent_options_fail_before_training(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = (
        _run(capsys, *argv, "--json", "r.json") if "--json" not in argv else _run(capsys, *argv)
    )
    assert code == 2 and needle in err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even partially


def test_checkpoint_resume_and_wrong_model_shape(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    common = ["--epochs", "2", "--num-train", "300", "--hidden", "30,20"]
    code, _, _ = _run(capsys, *common, "--checkpoint", str(ckpt))
    assert code == 0
    saved = sorted(p.name for p in ckpt.iterdir())
    assert "digits_fc_epoch_2.npz" in saved
    last = ckpt / "digits_fc_epoch_2.npz"
    code, _, _ = _run(capsys, *common[:-1], "30,20", "--epochs", "3", "--resume", str(last))
    assert code == 0
    out_file = tmp_path / "r.json"
    code, _, err = _run(
        capsys, *common[:-1], "30,21", "--resume", str(last), "--json", str(out_file)
    )
    assert code == 2 and "checkpoint" in err
    assert not out_file.exists()


def _fake_cifar(folder, train_rows: int, test_rows: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in (*du.TRAIN_BATCHES, du.TEST_BATCH):
        n = test_rows if name == du.TEST_BATCH else train_rows
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar10_from_a_folder_and_missing_data(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(du.CIFAR10_ENV, raising=False)
    code, _, err = _run(capsys, "--data", "cifar10", "--json", str(tmp_path / "r.json"))
    assert code == 2 and du.CIFAR10_URL in err and "--data-dir" in err
    assert not (tmp_path / "r.json").exists()

    folder = tmp_path / "cifar-10-batches-py"
    _fake_cifar(folder, train_rows=220, test_rows=1000)
    out_file = tmp_path / "r.json"
    code, _, _ = _run(
        capsys,
        "--data",
        "cifar10",
        "--data-dir",
        str(folder),
        "--num-train",
        "100",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--json",
        str(out_file),
    )
    assert code == 0
    assert 0 <= json.loads(out_file.read_text())["test_acc"] <= 1

    (folder / "data_batch_4").unlink()
    code, _, err = _run(capsys, "--data", "cifar10", "--data-dir", str(folder))
    assert code == 2 and "data_batch_4" in err
