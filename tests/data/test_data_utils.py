"""normgrad.data_utils: CIFAR-10 batches (layout, pickle flavours, safety) and digits."""

from __future__ import annotations

import builtins
import inspect
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from normgrad import data_utils as du

BATCHES = [*du.TRAIN_BATCHES, du.TEST_BATCH]


def _py3_batch(data: np.ndarray, labels: list[int], protocol: int, bytes_keys: bool) -> bytes:
    d = {
        "batch_label": "testing batch",
        "labels": labels,
        "data": data,
        "filenames": [f"img{i}.png" for i in range(len(labels))],
    }
    if bytes_keys:
        d = {k.encode(): v for k, v in d.items()}
    return pickle.dumps(d, protocol=protocol)


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """Protocol 2 as Python 2's cPickle wrote the distributed files: str keys and array
    bytes as 8-bit strings (SHORT_BINSTRING/BINSTRING), numpy.core paths."""

    def s(text: bytes) -> bytes:  # a Python 2 str
        return (
            b"U" + bytes([len(text)]) + text
            if len(text) < 256
            else b"T" + struct.pack("<i", len(text)) + text
        )

    def i(n: int) -> bytes:
        return b"J" + struct.pack("<i", n)

    dtype = (
        b"cnumpy\ndtype\n"
        + s(b"u1")
        + b"K\x00K\x01\x87R"
        + b"(K\x03"
        + s(b"|")
        + b"NNN"
        + i(-1)
        + i(-1)
        + b"K\x00tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + b"K\x00\x85"
        + s(b"b")
        + b"\x87R"
        + b"(K\x01"
        + i(data.shape[0])
        + i(data.shape[1])
        + b"\x86"
        + dtype
        + b"\x89"
        + s(data.tobytes())
        + b"tb"
    )
    label_list = b"](" + b"".join(i(v) for v in labels) + b"e"
    return (
        b"\x80\x02}("
        + s(b"batch_label")
        + s(b"training batch 1 of 5")
        + s(b"labels")
        + label_list
        + s(b"data")
        + array
        + b"u."
    )


def _random_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[int]]:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    return data, labels


def _write_folder(tmp_path: Path, writer, rows: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    folder = tmp_path / du.CIFAR10_DIRNAME
    folder.mkdir()
    truth = {}
    for name in BATCHES:
        data, labels = _random_batch(rng, rows)
        (folder / name).write_bytes(writer(data, labels))
        truth[name] = (data, labels)
    return folder, truth


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(_py2_batch, id="py2-protocol2-str-keys"),
        pytest.param(lambda d, lab: _py3_batch(d, lab, 2, True), id="py3-protocol2-bytes-keys"),
        pytest.param(lambda d, lab: _py3_batch(d, lab, 4, False), id="py3-protocol4-str-keys"),
        pytest.param(lambda d, lab: _py3_batch(d, lab, 5, False), id="py3-protocol5-str-keys"),
        pytest.param(
            lambda d, lab: _py3_batch(d, np.array(lab), 2, False), id="py3-labels-as-array"
        ),
    ],
)
def test_load_cifar10_reads_every_pickle_flavour(tmp_path, writer):
    folder, truth = _write_folder(tmp_path, writer, rows=7)
    Xtr, Ytr, Xte, Yte = du.load_CIFAR10(folder)
    assert Xtr.shape == (35, 32, 32, 3) and Xte.shape == (7, 32, 32, 3)
    assert Xtr.dtype == np.float64 and Ytr.shape == (35,) and Yte.shape == (7,)
    data, labels = truth["data_batch_2"]
    np.testing.assert_array_equal(Ytr[7:14], labels)
    # Row layout: 1024 red, 1024 green, 1024 blue, each 32x32 row-major.
    n, row, col = 3, 5, 17
    for c in range(3):
        assert Xtr[7 + n, row, col, c] == data[n, c * 1024 + row * 32 + col]
    np.testing.assert_array_equal(Xte[:, :, :, 0].reshape(7, -1), truth["test_batch"][0][:, :1024])


class _RunsCode:
    """Unpickling this calls ``func(arg)``: how a malicious pickle runs code."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("where", ["top", "inside-labels"])
@pytest.mark.parametrize("via", ["os.system", "builtins.exec"])
def test_pickle_that_runs_code_is_refused_and_does_not_run(tmp_path, via, where):
    marker = tmp_path / "pwned"
    if via == "os.system":
        payload = _RunsCode(os.system, f"touch {marker}")
    else:
        payload = _RunsCode(builtins.exec, f"open({str(marker)!r}, 'w').write('x')")
    # Sanity: the payload really does run under a plain unpickler.
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.unlink()

    data, labels = _random_batch(np.random.default_rng(1), 4)
    obj = payload if where == "top" else {"data": data, "labels": [payload, *labels]}
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(du.NotCIFAR10BatchError, match="not a CIFAR-10 batch") as info:
        du.load_CIFAR_batch(bad)
    assert not marker.exists()
    assert "system" in str(info.value) or "exec" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_other_numpy_globals_are_refused(tmp_path):
    bad = tmp_path / "b"
    bad.write_bytes(pickle.dumps({"data": np.load, "labels": []}, protocol=4))
    with pytest.raises(du.NotCIFAR10BatchError, match="numpy.load"):
        du.load_CIFAR_batch(bad)


@pytest.mark.parametrize(
    "obj, match",
    [
        ([1, 2, 3], "not a dict"),
        ({"labels": [1]}, "no 'data'"),
        ({"data": np.zeros((2, 3072), np.float32), "labels": [1, 2]}, "uint8"),
        ({"data": np.zeros((2, 100), np.uint8), "labels": [1, 2]}, "uint8"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}, "one per row"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 10]}, r"\[0, 10\)"),
    ],
)
def test_wrong_contents_are_not_a_batch(tmp_path, obj, match):
    bad = tmp_path / "b"
    bad.write_bytes(pickle.dumps(obj))
    with pytest.raises(du.NotCIFAR10BatchError, match=match):
        du.load_CIFAR_batch(bad)


def test_truncated_file_is_not_a_batch(tmp_path):
    data, labels = _random_batch(np.random.default_rng(2), 3)
    bad = tmp_path / "b"
    bad.write_bytes(_py3_batch(data, labels, 4, False)[:-500])
    with pytest.raises(du.NotCIFAR10BatchError, match="does not unpickle"):
        du.load_CIFAR_batch(bad)


def test_missing_batches_are_named(tmp_path):
    folder, _ = _write_folder(tmp_path, _py2_batch, rows=2)
    (folder / "data_batch_3").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(du.CIFAR10NotFoundError) as info:
        du.load_CIFAR10(folder)
    msg = str(info.value)
    assert "data_batch_3" in msg and "test_batch" in msg and "data_batch_2" not in msg


def test_missing_folder_says_where_data_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv(du.CIFAR10_ENV, raising=False)
    for root in (None, tmp_path / "nowhere"):
        with pytest.raises(FileNotFoundError) as info:
            du.get_CIFAR10_data(root)
        msg = str(info.value)
        assert du.CIFAR10_URL in msg and "cifar-10-batches-py" in msg
        assert "--data-dir" in msg and "NORMGRAD_CIFAR10" in msg


def test_get_cifar10_data_splits_and_mean_like_the_course(tmp_path, monkeypatch):
    folder, truth = _write_folder(tmp_path, lambda d, lab: _py3_batch(d, lab, 4, False), rows=4)
    monkeypatch.setenv(du.CIFAR10_ENV, str(tmp_path))  # the parent works too
    data = du.get_CIFAR10_data(num_training=13, num_validation=5, num_test=3)
    assert list(data) == ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]
    Xtr, Ytr, Xte, Yte = du.load_CIFAR10(folder)
    mean = Xtr[:13].mean(axis=0)
    np.testing.assert_allclose(data["X_train"], (Xtr[:13] - mean).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(data["X_val"], (Xtr[13:18] - mean).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(data["X_test"], (Xte[:3] - mean).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data["y_val"], Ytr[13:18])
    np.testing.assert_array_equal(data["y_test"], Yte[:3])
    assert data["X_train"].shape == (13, 3, 32, 32)
    raw = du.get_CIFAR10_data(folder, 13, 5, 3, subtract_mean=False, dtype=np.float32)
    assert raw["X_train"].dtype == np.float32
    np.testing.assert_array_equal(raw["X_train"], Xtr[:13].transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="exceeds"):
        du.get_CIFAR10_data(folder, num_training=19, num_validation=2)


def test_digits_split_is_fixed_stratified_and_preprocessed():
    a = du.get_digits_data()
    b = du.get_digits_data()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["X_train"].shape == (1257, 64)
    assert a["X_val"].shape == (180, 64) and a["X_test"].shape == (360, 64)
    np.testing.assert_array_equal(np.bincount(a["y_val"]), np.full(10, 18))
    assert np.bincount(a["y_test"]).min() >= 35
    np.testing.assert_allclose(a["X_train"].mean(axis=0), 0, atol=1e-12)
    assert abs(a["X_train"].std() - 1) < 1e-12
    # No image in two splits: rows are distinct in practice, so compare as bytes.
    seen = [{r.tobytes() for r in a[f"X_{s}"]} for s in ("train", "val", "test")]
    assert not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    conv = du.get_digits_data(flatten=False, dtype=np.float32)
    assert conv["X_train"].shape == (1257, 1, 8, 8) and conv["X_train"].dtype == np.float32
    np.testing.assert_allclose(conv["X_test"].reshape(360, 64), a["X_test"], rtol=1e-6)
    other = du.get_digits_data(seed=0)
    assert not np.array_equal(other["y_test"], a["y_test"])


def test_course_layout_fallback_and_positional_numbers(tmp_path, monkeypatch):
    monkeypatch.delenv(du.CIFAR10_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    course = tmp_path / "cs231n" / "datasets"
    course.mkdir(parents=True)
    _write_folder(course, lambda d, lab: _py3_batch(d, lab, 4, False), rows=3)
    data = du.get_CIFAR10_data(num_training=10, num_validation=2, num_test=3)
    assert data["X_train"].shape == (10, 3, 32, 32)
    # The course's positional order: get_CIFAR10_data(num_training, num_validation, ...)
    pos = du.get_CIFAR10_data(5, 2, 3)
    assert pos["X_train"].shape == (5, 3, 32, 32) and pos["X_val"].shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(pos["y_test"], data["y_test"])
    with pytest.raises(ValueError, match="exceeds the 15 training images"):
        du.get_CIFAR10_data(5000)


def test_get_cifar10_data_course_and_root_calling_conventions(tmp_path, monkeypatch):
    monkeypatch.delenv(du.CIFAR10_ENV, raising=False)
    folder, _ = _write_folder(tmp_path, lambda d, lab: _py3_batch(d, lab, 4, False), rows=4)
    ref = du.get_CIFAR10_data(root=folder, num_training=13, num_validation=5, num_test=3)
    calls = [
        lambda: du.get_CIFAR10_data(13, 5, 3, True, root=folder),  # course order + root
        lambda: du.get_CIFAR10_data(13, 5, 3, root=str(folder)),
        lambda: du.get_CIFAR10_data(folder, 13, 5, 3),  # a folder first shifts the rest
        lambda: du.get_CIFAR10_data(str(folder), num_training=13, num_validation=5, num_test=3),
        lambda: du.get_CIFAR10_data(
            num_test=3, num_validation=5, num_training=13, root=folder, subtract_mean=True
        ),
    ]
    for call in calls:
        got = call()
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])
    for k in ("X_train", "X_val", "X_test"):
        assert ref[k].flags.c_contiguous, k  # not the transposed view's layout
    raw = du.get_CIFAR10_data(folder, 13, 5, 3, False, dtype=np.float32)
    assert raw["X_train"].flags.c_contiguous and raw["X_train"].dtype == np.float32
    monkeypatch.setenv(du.CIFAR10_ENV, str(folder))
    assert du.get_CIFAR10_data(None, 4, 1, 1)["X_train"].shape == (4, 3, 32, 32)
    params = list(inspect.signature(du.get_CIFAR10_data).parameters)
    assert params == [
        "num_training",
        "num_validation",
        "num_test",
        "subtract_mean",
        "root",
        "dtype",
    ]
    with pytest.raises(TypeError, match="folder twice"):
        du.get_CIFAR10_data(folder, root=folder)
    with pytest.raises(TypeError, match="multiple values for argument 'num_training'"):
        du.get_CIFAR10_data(13, num_training=13)
    with pytest.raises(TypeError, match="unexpected keyword argument 'ROOT'"):
        du.get_CIFAR10_data(ROOT=folder)
    with pytest.raises(ValueError, match="num_training must be an int >= 0; got 1.5"):
        du.get_CIFAR10_data(1.5)


def test_load_cifar10_accepts_the_course_keyword_ROOT(tmp_path):
    folder, _ = _write_folder(tmp_path, _py2_batch, rows=2)
    a = du.load_CIFAR10(folder)
    b = du.load_CIFAR10(ROOT=str(folder))
    c = du.load_CIFAR10(root=folder)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    with pytest.raises(TypeError, match="both root and ROOT"):
        du.load_CIFAR10(folder, ROOT=folder)
    with pytest.raises(TypeError, match="root must be the CIFAR-10 folder"):
        du.load_CIFAR10(5000)


def test_split_sizes_are_checked_before_anything_is_loaded(tmp_path, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("CIFAR-10 was read before the split sizes were checked")

    monkeypatch.setattr(du, "load_CIFAR10", no_loading)
    monkeypatch.setattr(du, "load_CIFAR_batch", no_loading)
    missing = tmp_path / "nowhere"  # not even the folder is looked at first
    with pytest.raises(
        ValueError,
        match=r"num_training \+ num_validation = 50001 exceeds the "
        r"50000 training images\. Lower them.*num_training="
        r"49000, num_validation=1000",
    ):
        du.get_CIFAR10_data(49001, 1000, root=missing)
    with pytest.raises(
        ValueError,
        match=r"num_test = 10001 exceeds the 10000 test images\. "
        r"Pass num_test=10000",
    ):
        du.get_CIFAR10_data(num_test=10001, root=missing)
    with pytest.raises(
        ValueError,
        match=r"num_validation must be an int >= 0; got -1\. .*"
        r"num_validation=1000",
    ):
        du.get_CIFAR10_data(num_validation=-1, root=missing)
