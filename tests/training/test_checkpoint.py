"""normgrad.training.checkpoint: model-state snapshots and atomic, pickle-free checkpoint files."""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from normgrad.training import checkpoint as ck


class Model:
    """The smallest thing with the course's model interface and running statistics."""

    def __init__(self, d: int = 3, fill: float = 0.0):
        self.params = {"W1": np.full((d, 2), fill), "b1": np.zeros(2)}
        self.bn_params = [
            {
                "mode": "train",
                "running_mean": np.full(d, fill),
                "running_var": np.ones(d),
                "eps": 1e-5,
            }
        ]
        self.gn_params = [{"num_batches_tracked": 4, "momentum": None}]


def test_model_state_copies_params_and_running_stats_only() -> None:
    model = Model(fill=1.0)
    state = ck.model_state(model)
    assert sorted(state) == [
        "bn_params/0/running_mean",
        "bn_params/0/running_var",
        "gn_params/0/num_batches_tracked",
        "params/W1",
        "params/b1",
    ]
    model.params["W1"][...] = 7.0
    model.bn_params[0]["running_mean"][...] = 7.0
    assert state["params/W1"].max() == 1.0 and state["bn_params/0/running_mean"].max() == 1.0


def test_load_model_state_round_trip_and_lazily_created_stats() -> None:
    source, target = Model(fill=2.0), Model()
    source.gn_params[0]["num_batches_tracked"] = 9
    del target.bn_params[0]["running_mean"]  # batch norm creates it on its first call
    ck.load_model_state(target, ck.model_state(source))
    np.testing.assert_array_equal(target.params["W1"], source.params["W1"])
    np.testing.assert_array_equal(target.bn_params[0]["running_mean"], np.full(3, 2.0))
    assert target.gn_params[0]["num_batches_tracked"] == 9
    assert type(target.gn_params[0]["num_batches_tracked"]) is int
    assert target.bn_params[0]["eps"] == 1e-5  # settings are not state: untouched


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.params.update(W1=np.zeros((4, 2))),  # another shape
        lambda m: m.params.update(W1=np.zeros((3, 2), dtype=np.float32)),  # another dtype
        lambda m: m.params.update(W2=np.zeros(2)),  # another architecture
        lambda m: m.bn_params.append({"running_mean": np.zeros(3)}),  # one more norm layer
        lambda m: m.bn_params[0].update(running_var=np.ones(5)),
    ],
)
def test_a_state_from_another_model_raises_and_writes_nothing(mutate) -> None:
    state = ck.model_state(Model(fill=3.0))
    model = Model()
    mutate(model)
    before = ck.model_state(model)
    with pytest.raises(ValueError, match="does not fit this model"):
        ck.load_model_state(model, state)
    after = ck.model_state(model)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_round_trip_without_pickle(tmp_path) -> None:
    path = tmp_path / "c.npz"
    arrays = {"a/b": np.arange(6.0).reshape(2, 3), "n": np.array(3), "s": np.float32(1.5)}
    ck.save_checkpoint(path, arrays, {"epoch": 2})
    loaded, meta = ck.load_checkpoint(path)
    assert meta["epoch"] == 2 and meta["format"] == ck.FORMAT
    assert loaded.keys() == arrays.keys()
    for key in arrays:
        assert np.array_equal(loaded[key], arrays[key])
        assert loaded[key].dtype == np.asarray(arrays[key]).dtype
    with np.load(path, allow_pickle=False) as npz:  # an ordinary npz, no pickle inside
        assert "meta" in npz.files and npz["a/b"].shape == (2, 3)
    with pytest.raises(ValueError, match="pickle"):
        ck.save_checkpoint(tmp_path / "o.npz", {"x": np.array([{}], dtype=object)}, {})
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_rng_state_round_trip() -> None:
    np.random.seed(4)
    np.random.randn()  # leave a cached gaussian in the state
    arrays = ck.rng_state_arrays()
    expected = np.random.rand(5)
    np.random.seed(0)
    np.random.set_state(ck.rng_state_from_arrays(arrays))
    np.testing.assert_array_equal(np.random.rand(5), expected)


def test_a_pickle_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        ck.load_checkpoint(path)
    assert not marker.exists()


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "run.npz"
    ck.save_checkpoint(path, {"w": np.zeros(1000)}, {"epoch": 1})
    real = np.lib.format.write_array
    calls = {"n": 0}

    def failing(fp, array, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            real(fp, array[: array.size // 2], *args, **kwargs)  # half an array, then die
            raise OSError("disk full")
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(path, {"w": np.ones(1000), "v": np.ones(1000)}, {"epoch": 2})
    monkeypatch.undo()
    arrays, meta = ck.load_checkpoint(path)
    assert meta["epoch"] == 1 and not arrays["w"].any()
    assert os.listdir(tmp_path) == ["run.npz"]  # the temporary file was removed


@pytest.mark.slow
def test_killing_the_writer_midway_leaves_the_previous_checkpoint(tmp_path) -> None:
    path, ready = tmp_path / "run.npz", tmp_path / "ready"
    ck.save_checkpoint(path, {"w": np.zeros(10)}, {"epoch": 1})
    script = textwrap.dedent(f"""
        import time
        import numpy as np
        from normgrad.training import checkpoint as ck
        real = np.lib.format.write_array
        def slow(fp, array, *args, **kwargs):
            real(fp, array, *args, **kwargs)
            open({str(ready)!r}, "w").close()  # one array is on disk: now kill me
            time.sleep(120)
        np.lib.format.write_array = slow
        ck.save_checkpoint({str(path)!r}, {{"w": np.ones(10), "v": np.ones(10)}}, {{"epoch": 2}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(600):  # up to a minute for the child to start and reach mid-write
            if ready.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), f"the writer did not reach mid-write (exit code {proc.poll()})"
    finally:
        proc.kill()
        proc.wait()
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".tmp-run-")]
    assert leftovers, "the kill should have interrupted a write in progress"
    arrays, meta = ck.load_checkpoint(path)
    assert meta["epoch"] == 1 and not arrays["w"].any()
    with pytest.raises(ValueError, match="cannot read checkpoint"):  # the partial file is junk
        ck.load_checkpoint(tmp_path / leftovers[0])


def test_sub_state_picks_one_snapshot_out_of_a_checkpoint() -> None:
    arrays = {"model/params/W1": np.ones(2), "best/params/W1": np.zeros(2), "rng/pos": 3}
    assert list(ck.sub_state(arrays, "best/")) == ["params/W1"]
    assert not ck.sub_state(arrays, "best/")["params/W1"].any()


def test_errors_say_what_was_expected_and_how_to_fix_it(tmp_path) -> None:
    class NoParams:
        params = [np.zeros(2)]

    state = ck.model_state(Model())
    with pytest.raises(TypeError, match=r"got list\. Keep the weights in a dict.*self\.params ="):
        ck.check_model_state(NoParams(), state, "checkpoint 'x.npz'")
    with pytest.raises(TypeError, match=r"got list\. Keep the weights in a dict"):
        ck.model_state(NoParams())
    with pytest.raises(ValueError, match=r"reserved for the checkpoint header.*Rename the entry"):
        ck.save_checkpoint(tmp_path / "m.npz", {"meta": np.zeros(1)}, {})
    with pytest.raises(FileNotFoundError, match=r"Check the path.*_epoch_<e>\.npz"):
        ck.load_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"expected 'MT19937'.*Pass that tuple, or None"):
        ck.rng_state_arrays(("PCG64", np.zeros(2), 0, 0, 0.0))
    ck.save_checkpoint(tmp_path / "v.npz", {}, {})
    with np.load(tmp_path / "v.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["meta"] = np.array(str(arrays["meta"]).replace('"version": 2', '"version": 99'))
    np.savez(tmp_path / "v.npz", **arrays)
    with pytest.raises(ValueError, match=r"version 99.*reads version 2 only\. Resume with"):
        ck.load_checkpoint(tmp_path / "v.npz")
    assert sorted(os.listdir(tmp_path)) == ["v.npz"]  # the refused writes left nothing
