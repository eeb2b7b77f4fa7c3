"""normgrad._internal.io.atomic_write: the one temp-file-then-rename writer, and its three users."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from normgrad._internal import io as _io
from normgrad.tools import train
from normgrad.tools.experiments import common
from normgrad.training import checkpoint as ck


def test_writes_a_new_file_and_replaces_an_old_one(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    _io.atomic_write(path, lambda tmp: Path(tmp).write_text("one"))
    assert path.read_text() == "one"
    _io.atomic_write(str(path), lambda tmp: Path(tmp).write_text("two"))
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["out.json"]


def test_the_temporary_file_is_hidden_beside_the_target_with_its_suffix(tmp_path: Path) -> None:
    seen: list[str] = []

    def write(tmp: str) -> None:
        seen.append(tmp)
        Path(tmp).write_bytes(b"x")

    _io.atomic_write(tmp_path / "curves.png", write)
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(tmp_path)  # same folder: os.replace is atomic
    name = os.path.basename(tmp)
    assert name.startswith(".tmp-curves-") and name.endswith(".png")  # savefig infers png
    assert not os.path.exists(tmp)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path, error) -> None:
    path = tmp_path / "run.npz"
    path.write_bytes(b"old contents")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        _io.atomic_write(path, write)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["run.npz"]


def test_a_failure_with_no_old_file_creates_nothing(tmp_path: Path) -> None:
    def write(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise ValueError("cannot serialize")

    with pytest.raises(ValueError, match="cannot serialize"):
        _io.atomic_write(tmp_path / "summary.json", write)
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_reported_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist\. Create it first"):
        _io.atomic_write(tmp_path / "nope" / "a.json", lambda tmp: Path(tmp).write_text("x"))
    assert os.listdir(tmp_path) == []


def _record(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Log os.fsync and os.replace calls, in order (both still run)."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_the_data_is_fsynced_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record(monkeypatch)
    _io.atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
    expected = ["fsync", "replace", "fsync"] if os.name == "posix" else ["fsync", "replace"]
    assert events == expected


def test_checkpoints_train_outputs_and_experiment_files_all_go_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each writer must fsync its data before the rename (train.py and experiments/common.py
    # did not, before they shared the helper) and leave no temporary behind.
    history = SimpleNamespace(
        loss_history=[2.3, 1.9], train_acc_history=[0.1, 0.5], val_acc_history=[0.1, 0.4]
    )
    writers = {
        "checkpoint": lambda: ck.save_checkpoint(tmp_path / "c.npz", {"w": np.ones(3)}, {}),
        "train plot": lambda: train.plot_history(history, str(tmp_path / "t.png"), "t"),
        "summary": lambda: common.write_summary(tmp_path / "exp", {"acc": 0.5}),
        "figure": lambda: common.save_figure(common.pyplot().figure(), tmp_path / "f.png"),
    }
    for name, write in writers.items():
        events = _record(monkeypatch)
        write()
        monkeypatch.undo()
        assert events[:2] == ["fsync", "replace"], name
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "c.npz",
        "exp",
        "f.png",
        "summary.json",
        "t.png",
    ]
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
