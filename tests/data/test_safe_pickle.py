"""load_pickle and load_models: plain data loads, anything that could run code is refused."""

from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from normgrad import data_utils as du


class _RunsCode:
    """Unpickling this calls ``func(*args)``: how a malicious pickle runs code."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Persistent(pickle.Pickler):
    def persistent_id(self, obj):
        return "ref" if isinstance(obj, str) and obj == "external" else None


def _payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that create ``marker`` when loaded with the plain unpickler."""
    touch = f"open({str(marker)!r}, 'w').write('x')"
    return {
        "os.system": pickle.dumps(_RunsCode(os.system, f"touch {marker}")),
        "builtins.exec": pickle.dumps(_RunsCode(builtins.exec, touch)),
        "builtins.eval-protocol0": pickle.dumps(_RunsCode(builtins.eval, touch), protocol=0),
        "subprocess.call": pickle.dumps(_RunsCode(subprocess.call, ["touch", str(marker)])),
        "nested-in-model": pickle.dumps(
            {"model": {"W1": np.ones(2), "hook": _RunsCode(os.system, f"touch {marker}")}}
        ),
    }


PAYLOADS = list(_payloads(Path("m")))


def _model_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"W1": rng.standard_normal((4, 3)), "b1": np.zeros(3), "dtype": np.float32}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_load_pickle_reads_plain_data_at_every_protocol(tmp_path, protocol):
    obj = {
        "model": _model_params(),
        "labels": [np.int64(3), 4, 5.5, None, True, "cat", b"raw"],
        "classes": {1, 2},
        "frozen": frozenset({"a"}),
        "ordered": collections.OrderedDict(a=1),
        "z": 1 + 2j,
        "buf": bytearray(b"xy"),
        "f32": np.float32(1.5),
        "ints": np.arange(6, dtype=np.uint8).reshape(2, 3),
    }
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with open(path, "rb") as f:  # the course's call: load_pickle(open(..., 'rb'))
        got = du.load_pickle(f)
    assert du.load_pickle(path)["labels"] == obj["labels"]  # a path works too
    np.testing.assert_array_equal(got["model"]["W1"], obj["model"]["W1"])
    assert got["model"]["dtype"] is np.float32
    assert got["classes"] == {1, 2} and got["frozen"] == frozenset({"a"})
    assert got["ordered"] == collections.OrderedDict(a=1) and got["z"] == 1 + 2j
    assert got["buf"] == bytearray(b"xy") and got["f32"] == np.float32(1.5)
    assert got["ints"].dtype == np.uint8 and got["ints"].tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("name", PAYLOADS)
def test_load_pickle_refuses_code_and_runs_nothing(tmp_path, name):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[name]
    if name != "nested-in-model":  # sanity: the plain unpickler really runs it
        pickle.loads(payload)
        assert marker.exists()
        marker.unlink()
    with pytest.raises(du.UnsafePickleError, match="Nothing in the file was run") as info:
        du.load_pickle(io.BytesIO(payload))
    assert not marker.exists()
    assert isinstance(info.value, pickle.UnpicklingError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "obj, named",
    [
        pytest.param(collections.Counter("ab"), "collections.Counter", id="class-instance"),
        pytest.param(Path("x"), "pathlib", id="pathlib"),
        pytest.param(np.load, "numpy.load", id="numpy-function"),
        pytest.param(getattr, "builtins.getattr", id="getattr"),
    ],
)
def test_load_pickle_refuses_every_other_global(obj, named):
    with pytest.raises(du.UnsafePickleError, match=named.replace(".", r"\.")):
        du.load_pickle(io.BytesIO(pickle.dumps(obj)))


def test_load_pickle_refuses_persistent_ids():
    buf = io.BytesIO()
    _Persistent(buf).dump(["external"])
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="persistent"):
        du.load_pickle(buf)


@pytest.mark.parametrize(
    "text",
    [b"Pretrained models.\n", b"course models\nfor assignment 3\n", b"c\n\n", b"\x00\x01"],
)
def test_text_that_looks_like_opcodes_is_not_a_pickle_not_an_attack(text):
    with pytest.raises(pickle.UnpicklingError) as info:
        du.load_pickle(io.BytesIO(text))
    assert not isinstance(info.value, du.UnsafePickleError)


def test_load_pickle_refuses_a_normgrad_model_object():
    from normgrad.classifiers.fc_net import FullyConnectedNet

    model = FullyConnectedNet([3], input_dim=4, num_classes=2, seed=0)
    with pytest.raises(du.UnsafePickleError, match="FullyConnectedNet"):
        du.load_pickle(io.BytesIO(pickle.dumps({"model": model})))
    # What to do instead, as the message of load_models says: save the parameters.
    got = du.load_pickle(io.BytesIO(pickle.dumps({"model": model.params})))
    assert sorted(got["model"]) == sorted(model.params)


@pytest.mark.parametrize(
    "f, error, match",
    [
        pytest.param(123, TypeError, "open\\(path, 'rb'\\)", id="int"),
        pytest.param(b"model.pkl", TypeError, "open\\(path, 'rb'\\)", id="bytes-path"),
        pytest.param(io.StringIO("x"), TypeError, "binary mode", id="text-file"),
    ],
)
def test_load_pickle_needs_a_binary_file(f, error, match):
    with pytest.raises(error, match=match):
        du.load_pickle(f)


def test_load_pickle_on_a_truncated_or_foreign_file_is_an_unpickling_error(tmp_path):
    data = pickle.dumps(_model_params())
    with pytest.raises((pickle.UnpicklingError, EOFError)):
        du.load_pickle(io.BytesIO(data[:-10]))
    with pytest.raises(pickle.UnpicklingError):
        du.load_pickle(io.BytesIO(b"This is a README.\n"))


# load_models -----------------------------------------------------------------------------


def _models_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "b_model.pkl").write_bytes(pickle.dumps({"model": _model_params(1)}, protocol=2))
    (folder / "a_model.pkl").write_bytes(
        pickle.dumps({"model": _model_params(2), "epoch": 3}, protocol=5)
    )
    (folder / "README.txt").write_text("Pretrained models for the course.\n")
    (folder / "NOTES.txt").write_text("course notes\nmore notes\n")  # starts like GLOBAL
    (folder / "empty").write_bytes(b"")
    (folder / "sub").mkdir()
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_load_models_reads_every_model_and_skips_what_is_not_a_pickle(tmp_path):
    folder = _models_folder(tmp_path)
    before = _snapshot(folder)
    models = du.load_models(folder)
    assert list(models) == ["a_model.pkl", "b_model.pkl"]  # README, empty file, subfolder skipped
    np.testing.assert_array_equal(models["b_model.pkl"]["W1"], _model_params(1)["W1"])
    np.testing.assert_array_equal(models["a_model.pkl"]["W1"], _model_params(2)["W1"])
    assert du.load_models(str(folder)).keys() == models.keys()
    assert _snapshot(folder) == before


@pytest.mark.parametrize("name", PAYLOADS)
def test_load_models_refuses_a_malicious_file_and_runs_nothing(tmp_path, name):
    folder = _models_folder(tmp_path)
    marker = tmp_path / "pwned"
    (folder / "c_evil.pkl").write_bytes(_payloads(marker)[name])
    before = _snapshot(folder)
    with pytest.raises(du.UnsafePickleError, match=r"c_evil\.pkl.*model\.params") as info:
        du.load_models(folder)
    assert "Nothing in the file was run" in str(info.value)
    assert not marker.exists()
    assert _snapshot(folder) == before


@pytest.mark.parametrize(
    "content, match",
    [
        pytest.param([1, 2], "holds a list", id="list"),
        pytest.param({"params": {}}, r"keys \['params'\]", id="no-model-key"),
        pytest.param(np.zeros(3), "holds a ndarray", id="array"),
    ],
)
def test_load_models_names_a_file_that_is_not_a_model(tmp_path, content, match):
    folder = _models_folder(tmp_path)
    (folder / "odd.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(du.DataFileError, match=match):
        du.load_models(folder)


@pytest.mark.parametrize(
    "arg, error, match",
    [
        pytest.param(5, TypeError, "models_dir must be the folder", id="int"),
        pytest.param(None, TypeError, "models_dir must be the folder", id="None"),
        pytest.param("", ValueError, "empty string", id="empty"),
        pytest.param("nowhere", FileNotFoundError, "does not exist", id="missing"),
        pytest.param("a_file", NotADirectoryError, "is a file", id="file"),
    ],
)
def test_load_models_folder_argument(tmp_path, monkeypatch, arg, error, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(error, match=match):
        du.load_models(arg)
