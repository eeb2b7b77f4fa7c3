"""load_tiny_imagenet and load_imagenet_val on small folders and files made here."""

from __future__ import annotations

import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from normgrad import data_utils as du

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

WNIDS = ["n01443537", "n01629819", "n01641577"]
WORDS = {
    "n01443537": "goldfish, Carassius auratus",
    "n01629819": "European fire salamander, Salamandra salamandra",
    "n01641577": "bullfrog, Rana catesbeiana",
    "n00000001": "an unused class",
}
SIZE = 8  # the real images are 64x64; the layout is what matters here


def _image(path: Path, pixels: np.ndarray, fmt: str = "PNG") -> None:
    """Save pixels (H, W, 3) or (H, W) uint8 under path (any name; Pillow reads content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def _tiny(tmp_path: Path, *, train_per_class=2, test_labels=True, seed=0):
    """A Tiny ImageNet folder; returns (root, truth) with the pixels of every image."""
    rng = np.random.default_rng(seed)
    root = tmp_path / "tiny-imagenet-100-A"
    root.mkdir()
    (root / "wnids.txt").write_text("".join(w + "\n" for w in WNIDS))
    (root / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in WORDS.items()))
    truth: dict[str, list] = {"train": [], "val": [], "test": []}
    for c, wnid in enumerate(WNIDS):
        lines = []
        for k in range(train_per_class):
            name = f"{wnid}_{k}.JPEG"
            if c == 1 and k == 0:  # one greyscale image: it fills all three channels
                grey = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
                _image(root / "train" / wnid / "images" / name, grey)
                pixels = np.repeat(grey[:, :, None], 3, axis=2)
            else:
                pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
                _image(root / "train" / wnid / "images" / name, pixels)
            lines.append(f"{name}\t0\t0\t{SIZE - 1}\t{SIZE - 1}\n")
            truth["train"].append((pixels, c))
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(lines))
    val_lines = []
    for k, c in enumerate([2, 0, 1, 0]):
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        _image(root / "val" / "images" / f"val_{k}.JPEG", pixels)
        val_lines.append(f"val_{k}.JPEG\t{WNIDS[c]}\t0\t0\t7\t7\n")
        truth["val"].append((pixels, c))
    (root / "val" / "val_annotations.txt").write_text("".join(val_lines))
    test_lines = []
    for k, c in zip([3, 1, 2], [1, 2, 0]):  # written out of name order
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        _image(root / "test" / "images" / f"test_{k}.JPEG", pixels)
        test_lines.append(f"test_{k}.JPEG\t{WNIDS[c]}\t0\t0\t7\t7\n")
        truth["test"].append((k, pixels, c))
    (root / "test" / "images" / ".DS_Store").write_bytes(b"\x00")  # hidden: skipped
    truth["test"].sort(key=lambda t: t[0])  # the loader reads them in sorted name order
    if test_labels:
        (root / "test" / "test_annotations.txt").write_text("".join(test_lines))
    return root, truth


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_tiny_imagenet_layout_labels_and_mean(tmp_path, capsys):
    root, truth = _tiny(tmp_path)
    before = _snapshot(root)
    data = du.load_tiny_imagenet(root)
    assert list(data) == [
        "class_names",
        "X_train",
        "y_train",
        "X_val",
        "y_val",
        "X_test",
        "y_test",
        "mean_image",
    ]
    assert data["class_names"] == [[n.strip() for n in WORDS[w].split(",")] for w in WNIDS]
    X_train = np.stack([p.transpose(2, 0, 1) for p, _ in truth["train"]]).astype(np.float32)
    mean = X_train.mean(axis=0)
    assert data["X_train"].dtype == np.float32 and data["X_train"].shape == (6, 3, SIZE, SIZE)
    np.testing.assert_allclose(data["mean_image"], mean, rtol=1e-6)
    np.testing.assert_allclose(data["X_train"], X_train - mean, atol=1e-4)
    np.testing.assert_array_equal(data["y_train"], [c for _, c in truth["train"]])
    assert data["y_train"].dtype == np.int64
    X_val = np.stack([p.transpose(2, 0, 1) for p, _ in truth["val"]]).astype(np.float32)
    np.testing.assert_allclose(data["X_val"], X_val - mean, atol=1e-4)
    np.testing.assert_array_equal(data["y_val"], [c for _, c in truth["val"]])
    X_test = np.stack([p.transpose(2, 0, 1) for _, p, _ in truth["test"]]).astype(np.float32)
    np.testing.assert_allclose(data["X_test"], X_test - mean, atol=1e-4)
    np.testing.assert_array_equal(data["y_test"], [c for _, _, c in truth["test"]])
    assert _snapshot(root) == before
    assert capsys.readouterr().out == ""  # the course prints every 20 synsets only


def test_tiny_imagenet_raw_pixels_and_no_test_labels(tmp_path):
    root, truth = _tiny(tmp_path, test_labels=False)
    data = du.load_tiny_imagenet(str(root), dtype=np.uint8, subtract_mean=False)
    assert data["y_test"] is None
    assert data["X_train"].dtype == np.uint8
    np.testing.assert_array_equal(data["X_train"][2], truth["train"][2][0].transpose(2, 0, 1))
    np.testing.assert_array_equal(data["X_train"][2][0], data["X_train"][2][2])  # greyscale
    f64 = du.load_tiny_imagenet(root, dtype=np.float64, subtract_mean=False)
    np.testing.assert_array_equal(f64["X_test"], data["X_test"].astype(np.float64))


def test_tiny_imagenet_reads_real_jpegs(tmp_path):
    root, _ = _tiny(tmp_path)
    path = root / "val" / "images" / "val_0.JPEG"
    _image(path, np.random.default_rng(9).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), "JPEG")
    data = du.load_tiny_imagenet(root, subtract_mean=False)
    with Image.open(path) as img:
        decoded = np.asarray(img).transpose(2, 0, 1)
    np.testing.assert_array_equal(data["X_val"][0], decoded)


def _break(root: Path, how: str) -> None:
    train0 = root / "train" / WNIDS[0]
    if how == "no-wnids":
        (root / "wnids.txt").unlink()
    elif how == "empty-wnids":
        (root / "wnids.txt").write_text("\n\n")
    elif how == "duplicate-wnid":
        (root / "wnids.txt").write_text("\n".join([*WNIDS, WNIDS[0]]))
    elif how == "words-no-tab":
        (root / "words.txt").write_text("n01443537 goldfish\n")
    elif how == "words-missing-class":
        (root / "words.txt").write_text(f"{WNIDS[0]}\tgoldfish\n")
    elif how == "no-boxes":
        (train0 / f"{WNIDS[0]}_boxes.txt").unlink()
    elif how == "missing-image":
        (train0 / "images" / f"{WNIDS[0]}_1.JPEG").unlink()
    elif how == "corrupt-image":
        (train0 / "images" / f"{WNIDS[0]}_1.JPEG").write_bytes(b"not an image")
    elif how == "other-size":
        _image(train0 / "images" / f"{WNIDS[0]}_1.JPEG", np.zeros((4, 5, 3), np.uint8))
    elif how == "val-unknown-wnid":
        (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\n")
    elif how == "val-no-tab":
        (root / "val" / "val_annotations.txt").write_text("val_0.JPEG n01443537\n")
    elif how == "no-val-annotations":
        (root / "val" / "val_annotations.txt").unlink()
    elif how == "no-test-images":
        for p in (root / "test" / "images").iterdir():
            p.unlink()
        (root / "test" / "images").rmdir()
    elif how == "test-unlabelled":
        lines = (root / "test" / "test_annotations.txt").read_text().splitlines()[1:]
        (root / "test" / "test_annotations.txt").write_text("\n".join(lines))
    elif how == "no-training-images":
        for w in WNIDS:
            (root / "train" / w / f"{w}_boxes.txt").write_text("")
    else:  # pragma: no cover
        raise AssertionError(how)


BROKEN = [
    ("no-wnids", du.TinyImageNetNotFoundError, r"wnids\.txt is missing"),
    ("empty-wnids", du.DataFileError, "lists no classes"),
    ("duplicate-wnid", du.DataFileError, "twice"),
    ("words-no-tab", du.DataFileError, r"words\.txt, line 1: expected <wnid> and its names"),
    ("words-missing-class", du.DataFileError, "has no names for n01629819"),
    ("no-boxes", du.TinyImageNetNotFoundError, r"n01443537_boxes\.txt is missing"),
    ("missing-image", du.TinyImageNetNotFoundError, r"n01443537_1\.JPEG is missing"),
    ("corrupt-image", du.DataFileError, "not a readable image"),
    ("other-size", du.DataFileError, "5x4 pixels.*8x8"),
    ("val-unknown-wnid", du.DataFileError, "n99999999 is not a class"),
    ("val-no-tab", du.DataFileError, r"val_annotations\.txt, line 1: expected <file> and <wnid>"),
    ("no-val-annotations", du.TinyImageNetNotFoundError, r"val_annotations\.txt is missing"),
    ("no-test-images", du.TinyImageNetNotFoundError, r"test[/\\]images is missing"),
    ("test-unlabelled", du.DataFileError, r"no label for test_3\.JPEG"),
    ("no-training-images", du.DataFileError, "no training images"),
]


@pytest.mark.parametrize("how, error, match", BROKEN, ids=[b[0] for b in BROKEN])
def test_tiny_imagenet_broken_layouts_are_named(tmp_path, how, error, match):
    root, _ = _tiny(tmp_path)
    _break(root, how)
    before = _snapshot(root)
    with pytest.raises(error, match=match):
        du.load_tiny_imagenet(root)
    assert _snapshot(root) == before
    assert issubclass(error, (FileNotFoundError, ValueError))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        pytest.param({"path": 5}, TypeError, "path must be the Tiny ImageNet folder", id="int"),
        pytest.param({"path": None}, TypeError, "path must be", id="None"),
        pytest.param({"path": ""}, ValueError, "empty string", id="empty"),
        pytest.param({"path": "nowhere"}, du.TinyImageNetNotFoundError, "does not exist", id="x"),
        pytest.param({"dtype": np.int8}, ValueError, "floating dtype", id="int8"),
        pytest.param({"dtype": np.uint8}, ValueError, "floating dtype", id="uint8-mean"),
        pytest.param(
            {"dtype": np.int8, "subtract_mean": False}, ValueError, "holds 0..255", id="int8-raw"
        ),
        pytest.param(
            {"dtype": np.bool_, "subtract_mean": False}, ValueError, "holds 0..255", id="bool-raw"
        ),
        pytest.param({"dtype": np.complex64}, ValueError, "floating dtype", id="complex"),
        pytest.param({"dtype": "not a dtype"}, TypeError, "NumPy dtype", id="garbage"),
        pytest.param({"dtype": None}, TypeError, "floating dtype", id="dtype-None"),
        pytest.param({"subtract_mean": "False"}, TypeError, "True or False", id="mean-str"),
        pytest.param({"subtract_mean": 1}, TypeError, "True or False", id="mean-int"),
    ],
)
def test_tiny_imagenet_arguments_are_checked_before_reading(
    tmp_path, monkeypatch, kwargs, error, match
):
    root, _ = _tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    kwargs = {"path": root, **kwargs}
    with pytest.raises(error, match=match):
        du.load_tiny_imagenet(**kwargs)


def test_tiny_imagenet_without_pillow_names_the_install(tmp_path, monkeypatch):
    root, _ = _tiny(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        du.load_tiny_imagenet(root)


# imagenet_val_25.npz ----------------------------------------------------------------------


def _val_arrays(n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
    y = rng.integers(0, 4, n)
    label_map = {0: "tench", 1: "goldfish", 2: "great white shark", 3: "tiger shark"}
    return X, y, label_map


def _write_val(path: Path, compressed=False, **members):
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **members)


@pytest.mark.parametrize("compressed", [False, True])
def test_imagenet_val_reads_the_course_file(tmp_path, monkeypatch, compressed):
    X, y, label_map = _val_arrays()
    course = tmp_path / "cs231n" / "datasets" / "imagenet_val_25.npz"
    _write_val(course, compressed, X=X, y=y, label_map=np.array(label_map))
    before = course.read_bytes()
    monkeypatch.chdir(tmp_path)  # the course's path is relative to the notebook
    gX, gy, names = du.load_imagenet_val()
    np.testing.assert_array_equal(gX, X)
    np.testing.assert_array_equal(gy, y)
    assert names == label_map
    gX, gy, _ = du.load_imagenet_val(num=3)
    assert gX.shape == (3, 6, 6, 3) and gy.tolist() == y[:3].tolist()
    assert du.load_imagenet_val(0, path=course)[0].shape == (0, 6, 6, 3)
    assert course.read_bytes() == before


def _npy_bytes_with_payload(payload: bytes) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buf.getvalue() + payload


class _RunsCode:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_imagenet_val_refuses_a_label_map_that_runs_code(tmp_path):
    X, y, _ = _val_arrays()
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    _write_val(path, X=X, y=y)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(
            "label_map.npy",
            _npy_bytes_with_payload(pickle.dumps(_RunsCode(os.system, f"touch {marker}"))),
        )
    np.load(path, allow_pickle=True)["label_map"]  # sanity: np.load does run it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(du.UnsafePickleError, match="posix.system|os.system|nt.system"):
        du.load_imagenet_val(path=path)
    assert not marker.exists()


def _val_case(tmp_path: Path, case: str) -> Path:
    X, y, label_map = _val_arrays()
    path = tmp_path / "val.npz"
    members = {"X": X, "y": y, "label_map": np.array(label_map)}
    if case == "not-zip":
        path.write_bytes(b"PK? no, plain text")
        return path
    if case == "no-label_map":
        del members["label_map"]
    elif case == "X-3d":
        members["X"] = X[0]
    elif case == "X-object":
        members["X"] = np.array([None] * 5, dtype=object)
    elif case == "y-short":
        members["y"] = y[:-1]
    elif case == "y-float":
        members["y"] = y.astype(float)
    elif case == "label_map-array":
        members["label_map"] = np.arange(4)
    elif case == "label_map-str-keys":
        members["label_map"] = np.array({str(k): v for k, v in label_map.items()})
    elif case == "unknown-label":
        members["label_map"] = np.array({0: "tench"})
    elif case == "truncated-object":
        _write_val(path, X=X, y=y)
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("label_map.npy", _npy_bytes_with_payload(pickle.dumps(label_map)[:-5]))
        return path
    _write_val(path, **members)
    return path


VAL_CASES = [
    ("not-zip", "not an .npz archive"),
    ("no-label_map", "has no label_map"),
    ("X-3d", r"X must be \(N, H, W, 3\)"),
    ("X-object", r"X must be \(N, H, W, 3\)"),
    ("y-short", "y must be 5 integer labels"),
    ("y-float", "y must be 5 integer labels"),
    ("label_map-array", "label_map must hold a dict"),
    ("label_map-str-keys", "keys must be integer labels"),
    ("unknown-label", "not in label_map"),
    ("truncated-object", "does not unpickle"),
]


@pytest.mark.parametrize("case, match", VAL_CASES, ids=[c[0] for c in VAL_CASES])
def test_imagenet_val_malformed_files_are_named(tmp_path, case, match):
    path = _val_case(tmp_path, case)
    before = path.read_bytes()
    with pytest.raises(du.DataFileError, match=match):
        du.load_imagenet_val(path=path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        pytest.param({"num": -1}, ValueError, "num must be an int >= 0", id="negative"),
        pytest.param({"num": 2.0}, TypeError, "num must be an int", id="float"),
        pytest.param({"num": True}, TypeError, "num must be an int", id="bool"),
        pytest.param({"num": "3"}, TypeError, "num must be an int", id="str"),
        pytest.param({"num": 6}, ValueError, "exceeds the 5 images", id="too-many"),
        pytest.param({"path": 3}, TypeError, "path must be", id="path-int"),
        pytest.param({"path": ""}, ValueError, "empty string", id="path-empty"),
        pytest.param({"path": "missing.npz"}, FileNotFoundError, "get_imagenet_val.sh", id="x"),
    ],
)
def test_imagenet_val_arguments(tmp_path, monkeypatch, kwargs, error, match):
    X, y, label_map = _val_arrays()
    path = tmp_path / "val.npz"
    _write_val(path, X=X, y=y, label_map=np.array(label_map))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        du.load_imagenet_val(**{"path": path, **kwargs})


def test_imagenet_val_default_path_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cs231n/datasets/imagenet_val_25\.npz not found"):
        du.load_imagenet_val()
