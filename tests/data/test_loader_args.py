"""The data loaders' arguments: dtypes, flags, counts, paths, image grids. Bad ones are
refused before anything is read, with messages that say how to fix them."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from normgrad import data_utils as du
from normgrad.data import prepare
from normgrad.data.checks import NotACountError
from normgrad.data.cifar import prepare_CIFAR10
from normgrad.vis_utils import vis_grid, vis_nn, visualize_grid


def _cifar(tmp_path: Path, rows: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = tmp_path / du.CIFAR10_DIRNAME
    folder.mkdir()
    for name in (*du.TRAIN_BATCHES, du.TEST_BATCH):
        data = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=rows)]
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    return folder


@pytest.fixture
def no_reading(monkeypatch):
    """Make any read of CIFAR-10 fail the test: the arguments must be refused first."""

    def boom(*args, **kwargs):
        raise AssertionError("CIFAR-10 was read before the arguments were checked")

    monkeypatch.setattr("normgrad.data.cifar._load_all", boom)
    monkeypatch.setattr("normgrad.data.cifar.load_CIFAR_batch", boom)


CIFAR_BAD = [
    pytest.param({"dtype": np.int8}, ValueError, "floating dtype.*wrap", id="int8"),
    pytest.param({"dtype": np.uint8}, ValueError, "floating dtype", id="uint8-mean"),
    pytest.param({"dtype": np.int64}, ValueError, "floating dtype", id="int64-mean"),
    pytest.param({"dtype": np.bool_}, ValueError, "floating dtype", id="bool"),
    pytest.param({"dtype": np.complex128}, ValueError, "floating dtype", id="complex"),
    pytest.param({"dtype": "nonsense"}, TypeError, "NumPy dtype", id="garbage"),
    pytest.param({"dtype": None}, TypeError, "floating dtype", id="None"),
    pytest.param({"dtype": 32}, TypeError, "floating dtype", id="int"),
    pytest.param(
        {"dtype": np.int8, "subtract_mean": False}, ValueError, "holds 0..255", id="int8-raw"
    ),
    pytest.param({"subtract_mean": "False"}, TypeError, "True or False", id="mean-str"),
    pytest.param({"subtract_mean": 0}, TypeError, "True or False", id="mean-int"),
    pytest.param({"subtract_mean": None}, TypeError, "True or False", id="mean-None"),
    pytest.param({"num_training": 0}, ValueError, "num_training >= 1", id="no-train-mean"),
    pytest.param({"num_training": "5"}, NotACountError, "num_training must be an int", id="str"),
    pytest.param({"num_test": True}, NotACountError, "num_test must be an int", id="bool-n"),
    pytest.param({"num_validation": 2.0}, NotACountError, "num_validation", id="float-n"),
    pytest.param({"num_test": None}, NotACountError, "num_test", id="None-n"),
]


@pytest.mark.parametrize("kwargs, error, match", CIFAR_BAD)
def test_get_cifar10_data_checks_arguments_before_reading(
    tmp_path, no_reading, kwargs, error, match
):
    folder = tmp_path / "nowhere"  # not even the folder is looked at first
    with pytest.raises(error, match=match):
        du.get_CIFAR10_data(**{"num_training": 5, "root": folder, **kwargs})


def test_a_count_that_is_not_an_int_is_both_type_and_value_error():
    with pytest.raises(TypeError):
        du.get_CIFAR10_data("nowhere", 1.5)
    with pytest.raises(ValueError):
        du.get_CIFAR10_data("nowhere", 1.5)


def test_cifar10_dtypes_that_hold_the_data(tmp_path):
    folder = _cifar(tmp_path)
    raw = du.get_CIFAR10_data(folder, 10, 2, 3, subtract_mean=False, dtype=np.uint8)
    f64 = du.get_CIFAR10_data(folder, 10, 2, 3, subtract_mean=False)
    assert raw["X_train"].dtype == np.uint8
    np.testing.assert_array_equal(raw["X_train"].astype(np.float64), f64["X_train"])  # exact
    half = du.get_CIFAR10_data(folder, 10, 2, 3, dtype=np.float16)
    assert half["X_val"].dtype == np.float16
    np.testing.assert_allclose(
        half["X_val"], du.get_CIFAR10_data(folder, 10, 2, 3)["X_val"], atol=0.13
    )
    n = du.get_CIFAR10_data(folder, np.int64(10), np.int32(2), 3, dtype="float32")
    assert n["X_train"].shape == (10, 3, 32, 32) and n["X_train"].dtype == np.float32
    # Before this check int8 wrapped pixel 200 to -56; now it is refused:
    with pytest.raises(ValueError, match="int8"):
        prepare_CIFAR10(du.load_CIFAR10(folder), 10, 2, 3, subtract_mean=False, dtype=np.int8)


@pytest.mark.parametrize(
    "call, error, match",
    [
        pytest.param(lambda f: du.load_CIFAR10(""), ValueError, "empty string", id="empty"),
        pytest.param(lambda f: du.load_CIFAR10(b"x"), TypeError, "root must be", id="bytes"),
        pytest.param(lambda f: du.load_CIFAR10(ROOT=5), TypeError, "ROOT must be", id="ROOT-int"),
        pytest.param(
            lambda f: du.load_CIFAR10(f / "data_batch_1"),
            du.CIFAR10NotFoundError,
            "is a file, not a folder",
            id="a-file",
        ),
        pytest.param(
            lambda f: du.load_CIFAR_batch(5), TypeError, "filename must be", id="batch-int"
        ),
        pytest.param(
            lambda f: du.load_CIFAR_batch(f / "data_batch_9"),
            FileNotFoundError,
            "data_batch_9",
            id="batch-missing",
        ),
    ],
)
def test_cifar10_paths(tmp_path, call, error, match):
    folder = _cifar(tmp_path, rows=1)
    with pytest.raises(error, match=match):
        call(folder)


def test_an_empty_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(du.CIFAR10_ENV, "")
    with pytest.raises(ValueError, match=r"\$NORMGRAD_CIFAR10 is the empty string"):
        du.load_CIFAR10()


# prepare.load ---------------------------------------------------------------------------

PREPARE_BAD = [
    pytest.param({"name": "mnist"}, ValueError, "data set must be one of", id="unknown"),
    pytest.param({"name": 5}, ValueError, "data set must be one of", id="name-int"),
    pytest.param({"layout": "grid"}, ValueError, "layout must be", id="layout"),
    pytest.param({"layout": None}, ValueError, "layout must be", id="layout-None"),
    pytest.param({"num_train": 0}, ValueError, "num_train must be an int >= 1", id="zero"),
    pytest.param({"num_train": -3}, ValueError, "num_train must be an int >= 1", id="negative"),
    pytest.param({"num_train": 1.5}, NotACountError, "num_train", id="float"),
    pytest.param({"num_train": "10"}, NotACountError, "num_train", id="str"),
    pytest.param({"num_train": True}, NotACountError, "num_train", id="bool"),
    pytest.param({"data_dir": "somewhere"}, ValueError, "data_dir is for cifar10", id="dir"),
    pytest.param({"data_dir": 5}, TypeError, "data_dir must be", id="dir-int"),
    pytest.param({"dtype": np.int32}, ValueError, "floating dtype", id="int32"),
    pytest.param({"dtype": "x"}, TypeError, "NumPy dtype", id="dtype-garbage"),
]


@pytest.mark.parametrize("kwargs, error, match", PREPARE_BAD)
def test_prepare_load_arguments(monkeypatch, kwargs, error, match):
    def no_digits(*a, **k):
        raise AssertionError("the digits were loaded before the arguments were checked")

    monkeypatch.setattr(prepare, "get_digits_data", no_digits)
    with pytest.raises(error, match=match):
        prepare.load(**{"name": "digits", **kwargs})


def test_prepare_load_accepts_numpy_ints_and_paths(tmp_path):
    data, _ = prepare.load("digits", num_train=np.int64(50), layout="images", dtype=np.float64)
    assert data["X_train"].shape == (50, 1, 8, 8)
    folder = _cifar(tmp_path, rows=2)
    data, _ = prepare.load("cifar10", folder, dtype=np.float32)  # a Path, not only a str
    assert data["X_train"].dtype == np.float32


# get_digits_data ------------------------------------------------------------------------

DIGITS_BAD = [
    pytest.param({"num_validation": 9}, ValueError, "num_validation must be an int >= 10", id="9"),
    pytest.param({"num_validation": 1.5}, NotACountError, "num_validation", id="float"),
    pytest.param({"num_validation": "180"}, NotACountError, "num_validation", id="str"),
    pytest.param({"num_test": True}, NotACountError, "num_test", id="bool"),
    pytest.param({"num_test": 5}, ValueError, "num_test must be an int >= 10", id="test-5"),
    pytest.param({"num_test": 1700}, ValueError, "leave >= 10 for training", id="too-many"),
    pytest.param({"seed": -1}, ValueError, "seed must be an int >= 0", id="seed-negative"),
    pytest.param({"seed": 1.5}, TypeError, "seed must be an int", id="seed-float"),
    pytest.param({"seed": "231"}, TypeError, "seed must be an int", id="seed-str"),
    pytest.param({"seed": None}, TypeError, "seed must be an int", id="seed-None"),
    pytest.param({"seed": True}, TypeError, "seed must be an int", id="seed-bool"),
    pytest.param({"subtract_mean": "no"}, TypeError, "True or False", id="mean-str"),
    pytest.param({"flatten": 1}, TypeError, "flatten must be True or False", id="flatten-int"),
    pytest.param({"dtype": np.int16}, ValueError, "floating dtype", id="int16"),
    pytest.param({"dtype": np.uint8}, ValueError, "floating dtype", id="uint8"),
]


@pytest.mark.parametrize("kwargs, error, match", DIGITS_BAD)
def test_get_digits_data_arguments_before_sklearn(monkeypatch, kwargs, error, match):
    if kwargs != {"num_test": 1700}:  # that one needs the data set's size
        monkeypatch.setitem(sys.modules, "sklearn", None)  # an import would fail loudly
        monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(error, match=match):
        du.get_digits_data(**kwargs)


def test_get_digits_data_accepts_numpy_ints():
    a = du.get_digits_data(num_validation=np.int64(180), seed=np.int32(231))
    b = du.get_digits_data()
    np.testing.assert_array_equal(a["y_val"], b["y_val"])


# image grids ----------------------------------------------------------------------------


def _grid_images():
    return np.random.default_rng(0).standard_normal((3, 4, 4, 2))


GRID_BAD = [
    pytest.param("nan", ValueError, r"NaN or inf \(first at index \(1, 0, 0, 0\)\)", id="nan"),
    pytest.param("inf", ValueError, "NaN or inf", id="inf"),
    pytest.param("no-pixels", ValueError, "at least one pixel", id="H=0"),
    pytest.param("no-images", ValueError, "at least one image", id="N=0"),
    pytest.param("list", TypeError, "numpy.ndarray", id="list"),
    pytest.param("complex", TypeError, "real numeric", id="complex"),
    pytest.param("3d", ValueError, "4-D", id="3d"),
]


def _bad_grid(case):
    X = _grid_images()
    if case == "nan":
        X[1, 0, 0, 0] = np.nan
    elif case == "inf":
        X[2, 1, 1, 1] = np.inf
    elif case == "no-pixels":
        X = np.zeros((3, 0, 4, 2))
    elif case == "no-images":
        X = np.zeros((0, 4, 4, 2))
    elif case == "list":
        X = X.tolist()
    elif case == "complex":
        X = X.astype(complex)
    elif case == "3d":
        X = X[0]
    return X


@pytest.mark.parametrize("fn", [visualize_grid, vis_grid], ids=["visualize_grid", "vis_grid"])
@pytest.mark.parametrize("case, error, match", GRID_BAD)
def test_grids_refuse_bad_images(fn, case, error, match):
    X = _bad_grid(case)
    saved = np.array(X, copy=True) if isinstance(X, np.ndarray) else None
    with pytest.raises(error, match=match):
        fn(X)
    if saved is not None:
        np.testing.assert_array_equal(X, saved)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        pytest.param({"ubound": 0}, ValueError, "ubound must be", id="ubound-0"),
        pytest.param({"ubound": -255.0}, ValueError, "ubound must be", id="ubound-negative"),
        pytest.param({"ubound": float("nan")}, ValueError, "ubound must be", id="ubound-nan"),
        pytest.param({"ubound": "255"}, TypeError, "ubound must be", id="ubound-str"),
        pytest.param({"ubound": True}, TypeError, "ubound must be", id="ubound-bool"),
        pytest.param({"padding": 1.5}, ValueError, "padding must be an int", id="padding-float"),
        pytest.param({"padding": True}, ValueError, "padding must be an int", id="padding-bool"),
    ],
)
def test_visualize_grid_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        visualize_grid(_grid_images(), **kwargs)


def _table():
    rng = np.random.default_rng(1)
    return [[rng.uniform(0, 1, (2, 3, 3)) for _ in range(2)] for _ in range(2)]


@pytest.mark.parametrize(
    "rows, error, match",
    [
        pytest.param("images", TypeError, "rows must be a sequence", id="str"),
        pytest.param(None, TypeError, "rows must be a sequence", id="None"),
        pytest.param([5], TypeError, r"rows\[0\] must be a sequence", id="row-int"),
        pytest.param([], ValueError, "non-empty", id="empty"),
        pytest.param(
            [[np.full((2, 3, 3), np.nan)]], ValueError, r"rows\[0\]\[0\] holds NaN", id="nan"
        ),
        pytest.param([[np.array([["a"]])]], TypeError, "real numeric", id="strings"),
        pytest.param([[np.ones((2, 3))]], ValueError, "3-D", id="2d"),
        pytest.param([[np.ones((0, 3, 3))]], ValueError, "at least one pixel", id="H=0"),
    ],
)
def test_vis_nn_refuses_bad_tables(rows, error, match):
    with pytest.raises(error, match=match):
        vis_nn(rows)


def test_vis_nn_names_a_bad_image_deep_in_the_table():
    rows = _table()
    rows[1][1] = rows[1][1].astype(complex)
    with pytest.raises(TypeError, match=r"rows\[1\]\[1\]"):
        vis_nn(rows)
