"""Checkpoints carry the model's fingerprint; resume refuses another model, naming why.

The bug this guards against: resume used to accept a batch-norm checkpoint into a
layer-norm model (same parameter names and shapes) and stuff the running statistics
into the layer-norm param dicts. Every refusal here must change nothing.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import json

import numpy as np
import pytest

from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.training import checkpoint as ck
from normgrad.training.fingerprint import differences, model_fingerprint
from normgrad.training.solver import Solver


@pytest.fixture
def bn_checkpoint(tmp_path, fc_solver):
    """A checkpoint of a [8, 8] batch-norm FullyConnectedNet in float64, after 2 epochs."""
    fc_solver("batchnorm", checkpoint_name=str(tmp_path / "bn")).train()
    return tmp_path / "bn_epoch_2.npz"


def _refuses(path, solver, state_of, assert_same, match) -> None:
    """restore() and resume_from both refuse, and nothing changes."""
    before = state_of(solver)
    with pytest.raises(ValueError, match=match):
        solver.restore(path)
    assert_same(before, state_of(solver))


def _mid_life(fc_solver, normalization, **kwargs):
    solver = fc_solver(normalization, num_epochs=1, **kwargs)
    solver.train()  # histories, best snapshot, configs; running stats for batch norm
    np.random.seed(9)
    return solver


@pytest.mark.parametrize(
    ("normalization", "model_kwargs", "match"),
    [
        (
            "layernorm",
            {},
            r"checkpoint is FullyConnectedNet normalization='batchnorm', this model "
            r"normalization='layernorm'",
        ),
        ("batchrenorm", {}, r"normalization='batchnorm', this model normalization='batchrenorm'"),
        (None, {}, r"this model normalization=None"),
        ("rmsnorm", {}, r"this model normalization='rmsnorm'"),
        (
            "batchnorm",
            {"activation": "sigmoid"},
            r"activation='relu', this model activation='sigmoid'",
        ),
    ],
)
def test_another_normalization_or_activation_is_refused(
    bn_checkpoint, fc_solver, state_of, assert_same, normalization, model_kwargs, match
) -> None:
    solver = _mid_life(fc_solver, normalization, model_kwargs=model_kwargs)
    _refuses(bn_checkpoint, solver, state_of, assert_same, match)


def test_the_layernorm_param_dicts_get_no_running_stats(bn_checkpoint, fc_solver) -> None:
    solver = fc_solver("layernorm")
    with pytest.raises(ValueError, match=r"bn_params\[0\] settings: checkpoint \['mode'\]"):
        solver.restore(bn_checkpoint)
    assert solver.model.bn_params == [{}, {}]
    with pytest.raises(ValueError, match="normalization='layernorm'"):
        fc_solver("layernorm", resume_from=str(bn_checkpoint))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": (8, 9)}, r"W2: checkpoint \(8, 8\) float64, this model \(8, 9\) float64"),
        ({"hidden": (8,)}, r"num_layers=3, this model num_layers=2"),
        ({"hidden": (8, 8, 8)}, r"lacks: \['gamma3', 'beta3', 'W4', 'b4'\]"),
        ({"dtype": np.float32}, r"dtype='float64', this model dtype='float32'"),
    ],
)
def test_other_layer_sizes_or_dtype_are_refused(
    bn_checkpoint, fc_solver, state_of, assert_same, kwargs, match
) -> None:
    solver = _mid_life(fc_solver, "batchnorm", **kwargs)
    _refuses(bn_checkpoint, solver, state_of, assert_same, match)


def test_another_class_is_refused(tmp_path, state_of, assert_same) -> None:
    rng = np.random.default_rng(0)
    data = {
        "X_train": rng.standard_normal((20, 1, 4, 4)),
        "y_train": rng.integers(0, 3, 20),
        "X_val": rng.standard_normal((6, 1, 4, 4)),
        "y_val": rng.integers(0, 3, 6),
    }

    def cnn(normalization, num_groups=4):
        np.random.seed(0)
        net = ThreeLayerConvNet(
            input_dim=(1, 4, 4),
            num_filters=4,
            filter_size=3,
            hidden_dim=5,
            num_classes=3,
            dtype=np.float64,
            normalization=normalization,
            num_groups=num_groups,
        )
        return Solver(net, data, batch_size=5, num_epochs=1, verbose=False, update_rule="adam")

    first = cnn("groupnorm", num_groups=2)
    first.checkpoint_name = str(tmp_path / "gn")
    first.train()
    path = tmp_path / "gn_epoch_1.npz"
    other = cnn("groupnorm", num_groups=4)
    _refuses(path, other, state_of, assert_same, r"num_groups=2, this model num_groups=4")
    bn = cnn("batchnorm")
    _refuses(path, bn, state_of, assert_same, r"normalization='groupnorm', this model")
    cnn("groupnorm", num_groups=2).restore(path)  # the same architecture resumes

    class FullyConnectedLookalike:  # same parameters as the CNN, another class
        def __init__(self, model):
            self.params = {k: w.copy() for k, w in model.params.items()}
            self.bn_params = [dict(d) for d in model.bn_params]
            self.normalization, self.dtype = model.normalization, model.dtype
            self.num_groups, self.input_dim = model.num_groups, model.input_dim
            self.num_classes = model.num_classes
            self._model = model

        def loss(self, X, y=None):
            return self._model.loss(X, y)

    fake = Solver(
        FullyConnectedLookalike(cnn("groupnorm", 2).model),
        data,
        batch_size=5,
        verbose=False,
        update_rule="adam",
    )
    _refuses(
        path,
        fake,
        state_of,
        assert_same,
        r"checkpoint is a ThreeLayerConvNet, this model a FullyConnectedLookalike",
    )


def test_a_model_without_a_normalization_attribute_is_told_apart_by_its_dicts() -> None:
    class Bare:
        def __init__(self, dicts):
            self.params = {"W": np.zeros((2, 2))}
            self.bn_params = dicts

    bn = model_fingerprint(Bare([{"mode": "train", "running_mean": np.zeros(2)}]))
    ln = model_fingerprint(Bare([{}]))
    fresh_bn = model_fingerprint(Bare([{"mode": "train"}]))
    assert differences(bn, fresh_bn) == []  # running stats are created lazily: fine
    found = differences(bn, ln)
    assert found and "bn_params[0] settings: checkpoint ['mode'], this model []" in found[0]
    held = model_fingerprint(Bare([{"mode": "train", "running_mean": np.zeros(2)}]))
    assert "holds a array" in " ".join(differences(fresh_bn, held))  # the model has more
    two = model_fingerprint(Bare([{}, {}]))
    assert "checkpoint has 1 normalization layers, this model 2" in differences(ln, two)[0]


def test_the_same_model_resumes(bn_checkpoint, fc_solver) -> None:
    solver = fc_solver("batchnorm", num_epochs=3)
    solver.restore(bn_checkpoint)
    assert solver.epoch == 2
    assert "running_mean" in solver.model.bn_params[0]
    solver.train()
    assert solver.epoch == 3


def test_a_format_version_1_checkpoint_is_refused_with_a_reason(
    bn_checkpoint, fc_solver, state_of, assert_same, tmp_path
) -> None:
    arrays, meta = ck.load_checkpoint(bn_checkpoint)
    meta = {k: v for k, v in meta.items() if k not in ("checksum", "model")}
    meta["version"] = 1
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "v1.npz", **arrays)  # what normgrad 0.1.0 wrote
    solver = _mid_life(fc_solver, "batchnorm")
    _refuses(
        tmp_path / "v1.npz",
        solver,
        state_of,
        assert_same,
        r"format version 1 \(normgrad 0\.1\.0\), which stores no checksum and "
        r"no model fingerprint.*start it afresh",
    )


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda fp: fp.pop("params"), r"fingerprint .* is malformed \(missing \['params'\]\)"),
        (lambda fp: fp.update(params=[1, 2]), r"params is not a dict"),
        (lambda fp: fp.update(params={"W1": {"shape": "5x8"}}), r"params\['W1'\] is"),
        (lambda fp: fp.update(params={"W1": {"shape": [-1], "dtype": "f8"}}), r"params\['W1'\]"),
        (lambda fp: fp.update({"class": 3}), r"class is not a string"),
        (lambda fp: fp.update(normalization=7), r"normalization is 7"),
        (lambda fp: fp.update(sizes=None), r"sizes is not a dict"),
        (lambda fp: fp.update(norm_params={"bn_params": {}}), r"is not a list"),
        (
            lambda fp: fp.update(norm_params={"bn_params": [{"settings": [1], "state": {}}]}),
            r"a layer of norm_params",
        ),
        (
            lambda fp: fp.update(
                norm_params={"bn_params": [{"settings": [], "state": {"a": "x"}}]}
            ),
            r"a layer of norm_params",
        ),
    ],
)
def test_a_malformed_fingerprint_is_refused(
    bn_checkpoint, fc_solver, state_of, assert_same, tmp_path, edit, match
) -> None:
    arrays, meta = ck.load_checkpoint(bn_checkpoint)
    edit(meta["model"])
    ck.save_checkpoint(tmp_path / "edited.npz", arrays, meta)  # a valid checksum
    solver = _mid_life(fc_solver, "batchnorm")
    _refuses(tmp_path / "edited.npz", solver, state_of, assert_same, match)


def test_a_missing_fingerprint_is_refused(bn_checkpoint, fc_solver, tmp_path) -> None:
    arrays, meta = ck.load_checkpoint(bn_checkpoint)
    del meta["model"]
    ck.save_checkpoint(tmp_path / "anon.npz", arrays, meta)
    with pytest.raises(ValueError, match=r"its header lacks \['model'\]"):
        fc_solver("batchnorm").restore(tmp_path / "anon.npz")
