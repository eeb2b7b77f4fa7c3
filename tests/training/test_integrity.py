"""Checkpoints detect corruption, and a failed write leaves the previous file intact.

``save_checkpoint`` stores a SHA-256 over the header and every array (key, dtype, shape,
bytes); ``load_checkpoint`` verifies it. The zip's own CRC-32 catches most flipped
bytes in array data first; the checksum also catches what a CRC cannot: an entry
replaced, added or removed by a tool that writes a valid zip, or an edited header.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import errno
import json
import os
import zipfile

import numpy as np
import pytest

from normgrad._internal import io as atomic_io
from normgrad.training import checkpoint as ck


def _small(path) -> dict[str, np.ndarray]:
    arrays = {
        "a": np.arange(12.0).reshape(3, 4),
        "b/c": np.array([1, 2, 3], dtype=np.int32),
        "s": np.array(2.5, dtype=np.float32),
    }
    ck.save_checkpoint(path, arrays, {"epoch": 3, "note": "x"})
    return arrays


def _same(loaded, arrays) -> bool:
    return loaded.keys() == arrays.keys() and all(
        loaded[k].dtype == arrays[k].dtype and np.array_equal(loaded[k], arrays[k]) for k in arrays
    )


def test_every_flipped_byte_is_refused_or_changes_nothing(tmp_path) -> None:
    path = tmp_path / "c.npz"
    arrays = _small(path)
    good = path.read_bytes()
    refused = tried = 0
    for i in range(0, len(good), 3):  # every third byte (and 25 across each payload below)
        tried += 1
        bad = bytearray(good)
        bad[i] ^= 0xFF
        path.write_bytes(bytes(bad))
        try:
            loaded, meta = ck.load_checkpoint(path)
        except ValueError as e:
            assert str(path) in str(e)
            refused += 1
            continue
        # a byte the data do not depend on (a zip timestamp...): the contents are intact
        assert _same(loaded, arrays) and meta["epoch"] == 3 and meta["note"] == "x", i
    assert refused > tried * 0.8  # most bytes matter
    # every byte of every stored payload matters: the data region is fully covered
    path.write_bytes(good)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert len(infos) == 4  # a, b/c, s and the header
    for info in infos:
        local = good[info.header_offset : info.header_offset + 30]
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        for i in range(start, start + info.compress_size, max(1, info.compress_size // 25)):
            bad = bytearray(good)
            bad[i] ^= 0x01
            path.write_bytes(bytes(bad))
            with pytest.raises(ValueError, match="corrupt"):
                ck.load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 1, 10, 100, 0.25, 0.5, 0.9, -1, -22])
def test_a_truncated_file_is_refused(tmp_path, keep) -> None:
    path = tmp_path / "c.npz"
    _small(path)
    good = path.read_bytes()
    n = int(len(good) * keep) if isinstance(keep, float) else keep % len(good)
    path.write_bytes(good[:n])
    with pytest.raises(ValueError, match=r"cannot read checkpoint .*truncated or corrupt"):
        ck.load_checkpoint(path)


def _rewrite(path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (the header's 'meta' entry included) as a valid .npz, keeping the
    header: what another tool that edits a checkpoint would produce."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w") as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)


def _raw(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize(
    "edit",
    [
        lambda a: a.update(a=a["a"] + 1e-12),  # one value nudged
        lambda a: a.update(a=a["a"].astype(np.float32)),  # another dtype
        lambda a: a.update(a=a["a"].reshape(4, 3)),  # another shape, same bytes
        lambda a: a.update(extra=np.zeros(2)),  # an entry added
        lambda a: a.pop("b/c"),  # an entry removed
        lambda a: a.update({"b/c": a["s"], "s": a["b/c"]}),  # two entries swapped
        lambda a: a.update(
            meta=np.array(str(a["meta"][()]).replace('"epoch": 3', '"epoch": 4'))
        ),  # the header edited
        lambda a: a.update(
            meta=np.array(str(a["meta"][()]).replace('"digest": "', '"digest": "0'))
        ),  # the checksum itself edited
    ],
)
def test_a_valid_zip_with_other_contents_fails_the_checksum(tmp_path, edit) -> None:
    path = tmp_path / "c.npz"
    _small(path)
    raw = _raw(path)
    edit(raw)
    _rewrite(path, raw)
    with pytest.raises(ValueError, match=r"is corrupt: its contents do not match the SHA-256"):
        ck.load_checkpoint(path)


def test_a_header_without_a_checksum_is_refused(tmp_path) -> None:
    path = tmp_path / "c.npz"
    _small(path)
    raw = _raw(path)
    header = json.loads(str(raw["meta"][()]))
    del header["checksum"]
    raw["meta"] = np.array(json.dumps(header))
    _rewrite(path, raw)
    with pytest.raises(ValueError, match=r"stored None"):
        ck.load_checkpoint(path)


def test_the_checksum_covers_dtype_shape_and_order_independence() -> None:
    a = {"x": np.arange(6.0).reshape(2, 3), "y": np.zeros(2)}
    header = {"epoch": 1}
    base = ck.checksum_of(a, header)
    assert ck.checksum_of(dict(reversed(a.items())), header) == base  # keys sorted
    assert ck.checksum_of({**a, "x": np.asfortranarray(a["x"])}, header) == base
    assert ck.checksum_of({**a, "x": a["x"].reshape(3, 2)}, header) != base
    assert ck.checksum_of({**a, "y": np.zeros(2, dtype=np.float32)}, header) != base
    assert ck.checksum_of(a, {"epoch": 2}) != base
    assert ck.checksum_of({"xy": np.zeros(0), "": np.zeros(0)}, {}) != ck.checksum_of(
        {"x": np.zeros(0), "y": np.zeros(0)}, {}
    )


# ---------------------------------------------------------------- failed writes
def _leftovers(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(atomic_io.TEMP_PREFIX))


def test_a_full_disk_leaves_the_previous_checkpoint_byte_for_byte(tmp_path, monkeypatch) -> None:
    path = tmp_path / "run.npz"
    _small(path)
    before = path.read_bytes()
    real = np.lib.format.write_array
    calls = {"n": 0}

    def full_disk(fp, array, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second array: part of the file is written by now
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", full_disk)
    with pytest.raises(OSError) as failure:
        ck.save_checkpoint(path, {"w": np.ones(1000), "v": np.ones(1000)}, {"epoch": 4})
    monkeypatch.undo()
    assert failure.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == [] and os.listdir(tmp_path) == ["run.npz"]
    assert ck.load_checkpoint(path)[1]["epoch"] == 3


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_a_failed_rename_or_sync_leaves_the_previous_checkpoint(
    tmp_path, monkeypatch, where
) -> None:
    path = tmp_path / "run.npz"
    _small(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, f"simulated {where} failure")

    monkeypatch.setattr(atomic_io.os, where, fail)
    with pytest.raises(OSError, match=f"simulated {where} failure"):
        ck.save_checkpoint(path, {"w": np.ones(10)}, {"epoch": 9})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_solver_whose_disk_fills_keeps_its_last_good_checkpoint(
    tmp_path, monkeypatch, fc_solver
) -> None:
    solver = fc_solver("batchnorm", num_epochs=3, checkpoint_name=str(tmp_path / "run"))
    real = ck.save_checkpoint
    written = []

    def fill_at_epoch_2(path, arrays, meta):
        if meta["epoch"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, arrays, meta)
        written.append(path)

    import normgrad.training.solver as solver_module

    monkeypatch.setattr(solver_module, "save_checkpoint", fill_at_epoch_2)
    with pytest.raises(OSError, match="No space left"):
        solver.train()
    assert [os.path.basename(p) for p in written] == ["run_epoch_0.npz", "run_epoch_1.npz"]
    assert solver.last_checkpoint == str(tmp_path / "run_epoch_1.npz")
    good = (tmp_path / "run_epoch_1.npz").read_bytes()
    resumed = fc_solver("batchnorm", num_epochs=3, resume_from=solver.last_checkpoint)
    assert resumed.epoch == 1
    assert (tmp_path / "run_epoch_1.npz").read_bytes() == good
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"x": float("nan")}, r"no NaN or inf"),
        ({"x": np.zeros(2)}, r"meta must hold JSON values"),
        ({"x": object()}, r"meta must hold JSON values"),
        ([("epoch", 1)], r"meta must be a dict"),
    ],
)
def test_a_header_that_is_not_json_is_refused_before_writing(tmp_path, meta, match) -> None:
    path = tmp_path / "run.npz"
    _small(path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=match):
        ck.save_checkpoint(path, {"w": np.ones(3)}, meta)
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("key", [3, "", None])
def test_entry_names_must_be_strings(tmp_path, key) -> None:
    with pytest.raises(TypeError, match="entry names must be non-empty strings"):
        ck.save_checkpoint(tmp_path / "run.npz", {key: np.ones(3)}, {})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("path", [3, None, b"run.npz", ["run.npz"]])
def test_load_needs_a_path(path) -> None:
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        ck.load_checkpoint(path)
