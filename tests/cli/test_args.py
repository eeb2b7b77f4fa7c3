"""Bad flags and unwritable paths: every command exits 2 with one line, before any work.

Each case is one command line; it must end with exit status 2 and a single
``normgrad ...: error: ...`` line (argparse's own, or a ``UsageError``) naming the flag,
with no traceback and no output written. The table is the CLI's part of the bad-input
inventory (docs/guarantees.md).
"""

from __future__ import annotations

import os

import pytest

from normgrad.cli import main

# (argv, a piece of the one-line message). {tmp} is a fresh folder, {file} a file in it.
BAD_FLAGS = [
    # check
    (["check", "--tol", "-1"], "--tol"),
    (["check", "--tol", "0"], "--tol"),
    (["check", "--tol", "nan"], "--tol"),
    (["check", "--tol", "inf"], "--tol"),
    (["check", "--tol", "abc"], "--tol"),
    (["check", "--seed", "-1"], "--seed"),
    (["check", "--seed", "1.5"], "--seed"),
    (["check", "--seed", str(2**32)], "--seed"),
    (["check", "--layer", "nosuchnorm"], "unknown layer"),
    (["check", "--layer", "batchnorm,typo"], "unknown layer"),
    (["check", "--bogus"], "unrecognized arguments"),
    # bench
    (["bench", "--repeats", "0"], "--repeats"),
    (["bench", "--repeats", "-3"], "--repeats"),
    (["bench", "--warmup", "-5"], "--warmup"),
    (["bench", "--warmup", "x"], "--warmup"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--shapes", "8by3"], "NxD"),
    (["bench", "--shapes", "1x3"], "N >= 2"),
    (["bench", "--shapes", "8x0"], "D >= 1"),
    (["bench", "--dtypes", "float16"], "float32 or float64"),
    (["bench", "--op", "nope"], "invalid choice"),
    (["bench", "--shapes", "8x3", "--json", "{tmp}/missing/out.json"], "does not exist"),
    (["bench", "--shapes", "8x3", "--json", "{tmp}"], "is a folder"),
    (["bench", "--shapes", "8x3", "--json", "{file}/x.json"], "does not exist"),
    # demo
    (["demo", "--seed", "-2"], "--seed"),
    (["demo", "--out", "{file}"], "is a file"),
    (["demo", "--out", "{file}/sub"], "is a file"),
    # experiment
    (["experiment", "nosuch"], "invalid choice"),
    (["experiment", "deep", "--data", "mnist"], "invalid choice"),
    (["experiment", "deep", "--seed", "-1"], "--seed"),
    (["experiment", "deep", "--out", "{file}"], "is a file"),
    (["experiment", "deep", "--norm", "layernorm"], "--norm applies to the batch-size"),
    (["experiment", "batch-size", "--norm", "groupnorm"], "invalid choice"),
    (["experiment", "deep", "--data-dir", "{tmp}"], "--data-dir is for --data cifar10"),
    (["experiment", "deep", "--data", "cifar10", "--data-dir", "{tmp}/none"], "does not exist"),
    # derive
    (["derive"], "--all"),
    (["derive", "nosuch"], "unknown layer"),
    (["derive", "batch", "--all"], "not both"),
    (["derive", "batch", "--shape", "9x3"], "at most 8 values"),
    (["derive", "batch", "--shape", "3"], "2 positive integers"),
    (["derive", "batch", "--shape", "0x2"], "positive integers"),
    (["derive", "batch", "--groups", "2", "--shape", "3x2"], "group norm only"),
    (["derive", "group", "--groups", "0"], "--groups"),
    (["derive", "group", "--groups", "2"], "needs --shape"),
    (["derive", "seed", "--n", "1"], "--n"),
    (["derive", "seed", "--n", "99"], "at most 8 values"),
    # train
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "fast"], "--lr"),
    (["train", "--reg", "-1"], "--reg"),
    (["train", "--reg", "nan"], "--reg"),
    (["train", "--weight-scale", "0"], "--weight-scale"),
    (["train", "--lr-decay", "0"], "--lr-decay"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "2.5"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--batch-size", "-4"], "--batch-size"),
    (["train", "--num-train", "0"], "--num-train"),
    (["train", "--groups", "0"], "--groups"),
    (["train", "--filters", "-1"], "--filters"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--hidden", "100,0"], "sizes like 100,100"),
    (["train", "--hidden", ""], "sizes like 100,100"),
    (["train", "--dropout", "1.5"], "KEEPING"),
    (["train", "--dropout", "0"], "KEEPING"),
    (["train", "--norm", "batchnrom"], "invalid choice"),
    (["train", "--norm", "groupnorm"], "does not apply to --model fc"),
    (["train", "--model", "cnn", "--norm", "layernorm"], "does not apply to --model cnn"),
    (["train", "--model", "cnn", "--dropout", "0.5"], "--dropout applies to --model fc"),
    (["train", "--data-dir", "{tmp}"], "--data-dir is for --data cifar10"),
    (["train", "--plot", "{tmp}/curves.txt"], "--plot needs a .png"),
    (["train", "--plot", "{tmp}/missing/c.png"], "does not exist"),
    (["train", "--json", "{tmp}/missing/r.json"], "does not exist"),
    (["train", "--json", "{tmp}"], "is a folder"),
    (["train", "--checkpoint", "{file}"], "is a file"),
    (["train", "--resume", "{tmp}/none.npz"], "no such checkpoint"),
    (["train", "--data", "cifar10", "--data-dir", "{tmp}/none"], "does not exist"),
]


def _fill(argv: list[str], tmp, file) -> list[str]:
    return [a.format(tmp=tmp, file=file) for a in argv]


@pytest.mark.parametrize(("argv", "needle"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flags_exit_2_with_one_line(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "work"
    folder.mkdir()
    file = folder / "a_file"
    file.write_text("x")
    before = sorted(p.name for p in folder.iterdir())
    try:
        code = main(_fill(argv, folder, file))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    assert not (tmp_path / "results").exists()


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    # Permission bits do not stop root (CI runs as root), so the check's view is faked.
    from normgrad._internal import paths

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        paths.os,
        "access",
        lambda p, mode: False if os.fspath(p) == str(locked) else real_access(p, mode),
    )
    assert main(["train", "--json", str(locked / "r.json")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(["demo", "--out", str(locked / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert list(locked.iterdir()) == []


def test_output_checks_name_what_is_wrong(tmp_path):
    from normgrad._internal import paths

    assert paths.file_problem("--json", None) is None
    assert paths.file_problem("--json", str(tmp_path / "ok.json")) is None
    assert "is a folder" in paths.file_problem("--json", str(tmp_path))
    assert paths.dir_problem("--out", str(tmp_path / "new" / "deeper")) is None
    (tmp_path / "f").write_text("")
    assert "is a file" in paths.dir_problem("--out", str(tmp_path / "f"))
