"""Bad input to the training API: a clear TypeError/ValueError, raised before any change.

Areas: Solver keyword arguments, optim_config values, the update rules' own checks,
the data dict, ``check_accuracy``'s arguments, lr decay over a custom rule's configs,
and the metadata of a checkpoint to resume from. Every rejected call is followed by an
exact comparison of deep copies: the model (params, normalization dicts, dropout), the
solver (when one exists), the config dicts and NumPy's global RNG are as they were.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from normgrad.models.fc_net import FullyConnectedNet
from normgrad.training import checkpoint as ck
from normgrad.training import rules
from normgrad.training.solver import Solver

NAN, INF = float("nan"), float("inf")


def _model() -> FullyConnectedNet:
    np.random.seed(0)
    return FullyConnectedNet(
        [6],
        input_dim=5,
        num_classes=3,
        normalization="batchnorm",
        dtype=np.float64,
        dropout_keep_ratio=0.8,
    )


def _model_state(model) -> dict:
    return copy.deepcopy(
        {
            "params": model.params,
            "bn": model.bn_params,
            "dropout": model.dropout_param,
            "rng": np.random.get_state(),
        }
    )


def _rejects(error, match, make, assert_same, model=None) -> None:
    model = _model() if model is None else model
    np.random.seed(123)
    before = _model_state(model)
    with pytest.raises(error, match=match):
        make(model)
    assert_same(before, _model_state(model))


# ---------------------------------------------------------------- Solver kwargs
KWARGS = [
    ({"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1; got 0"),
    ({"batch_size": -1}, ValueError, r"batch_size must be an integer >= 1; got -1"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an integer >= 1; got 2\.5 \(float\)"),
    ({"batch_size": "10"}, TypeError, r"batch_size .* got '10' \(str\)"),
    ({"batch_size": True}, TypeError, r"batch_size .* got True \(bool\)"),
    ({"batch_size": None}, TypeError, r"batch_size .* got None"),
    ({"batch_size": np.float64(10)}, TypeError, r"batch_size .* \(float64\)"),
    ({"num_epochs": -1}, ValueError, r"num_epochs must be an integer >= 0; got -1.*num_epochs=10"),
    ({"num_epochs": 1.5}, TypeError, r"num_epochs"),
    ({"num_epochs": "3"}, TypeError, r"num_epochs"),
    ({"num_epochs": None}, TypeError, r"num_epochs"),
    ({"print_every": 0}, ValueError, r"print_every must be an integer >= 1"),
    ({"print_every": -5}, ValueError, r"print_every"),
    ({"print_every": 1.0}, TypeError, r"print_every"),
    ({"num_train_samples": 0}, ValueError, r"num_train_samples.*or None to use every row"),
    ({"num_train_samples": -1}, ValueError, r"num_train_samples"),
    ({"num_train_samples": 2.5}, TypeError, r"num_train_samples"),
    ({"num_train_samples": "all"}, TypeError, r"num_train_samples"),
    ({"num_val_samples": 0}, ValueError, r"num_val_samples"),
    ({"num_val_samples": 2.5}, TypeError, r"num_val_samples=1000, or None to use every row"),
    ({"lr_decay": NAN}, ValueError, r"lr_decay must be a finite number > 0; got nan"),
    ({"lr_decay": INF}, ValueError, r"lr_decay must be a finite number > 0"),
    ({"lr_decay": 0}, ValueError, r"lr_decay must be a finite number > 0; got 0"),
    ({"lr_decay": -0.5}, ValueError, r"lr_decay"),
    ({"lr_decay": "0.9"}, TypeError, r"lr_decay must be a real number; got '0\.9'"),
    ({"lr_decay": True}, TypeError, r"lr_decay must be a real number; got True"),
    ({"lr_decay": None}, TypeError, r"lr_decay"),
    ({"verbose": "yes"}, TypeError, r"verbose must be True or False; got 'yes'"),
    ({"verbose": 1}, TypeError, r"verbose must be True or False; got 1"),
    ({"verbose": None}, TypeError, r"verbose must be True or False; got None"),
    ({"progress_bar": "no"}, TypeError, r"progress_bar must be True or False, or None"),
    ({"progress_bar": 0}, TypeError, r"progress_bar"),
    ({"stop_on_nonfinite": 1}, TypeError, r"stop_on_nonfinite must be True or False"),
    ({"stop_on_nonfinite": "True"}, TypeError, r"stop_on_nonfinite"),
    ({"stop_on_nonfinite": None}, TypeError, r"stop_on_nonfinite"),
    ({"checkpoint_name": 3}, TypeError, r"checkpoint_name must be a str or os\.PathLike"),
    ({"checkpoint_name": ""}, ValueError, r"checkpoint_name must be a non-empty path"),
    ({"checkpoint_name": b"run"}, TypeError, r"checkpoint_name"),
    ({"resume_from": 3}, TypeError, r"resume_from must be a str or os\.PathLike"),
    ({"resume_from": ""}, ValueError, r"resume_from must be a non-empty path"),
    ({"update_rule": "nesterov"}, ValueError, r'Invalid update_rule "nesterov"'),
    ({"update_rule": "Adam"}, ValueError, r"Did you mean 'adam'\?"),
    ({"update_rule": 3}, TypeError, r"update_rule must be a rule name"),
    ({"update_rule": None}, TypeError, r"update_rule must be a rule name"),
    ({"learning_rate": 1e-3}, ValueError, r'Unrecognized arguments "learning_rate"'),
    ({"num_epoch": 3}, ValueError, r'Did you mean "num_epochs"\?'),
    ({"optim_config": [("learning_rate", 1e-3)]}, TypeError, r"optim_config must be a dict"),
    ({"optim_config": "lr=1e-3"}, TypeError, r"optim_config must be a dict"),
    ({"optim_config": {1: 2}}, TypeError, r"optim_config keys must be strings"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), KWARGS)
def test_bad_solver_kwargs(kwargs, error, match, small_data, assert_same) -> None:
    data = small_data()
    kwargs = {"verbose": False, **kwargs}
    _rejects(error, match, lambda m: Solver(m, data, **kwargs), assert_same)


def test_a_checkpoint_name_under_a_file_is_refused(tmp_path, small_data, assert_same) -> None:
    (tmp_path / "file").write_text("x")
    data = small_data()
    name = str(tmp_path / "file" / "sub" / "run")
    _rejects(
        ValueError,
        r"needs the folder .* is a file",
        lambda m: Solver(m, data, verbose=False, checkpoint_name=name),
        assert_same,
    )
    assert os.listdir(tmp_path) == ["file"]


# ---------------------------------------------------------------- optim_config values
OPTIM = [
    (
        "sgd",
        {"learning_rate": "fast"},
        TypeError,
        r"sgd: optim_config\['learning_rate'\] must be a real number; got 'fast'",
    ),
    (
        "sgd",
        {"learning_rate": NAN},
        ValueError,
        r"learning_rate'\] must be a finite number > 0; got nan",
    ),
    ("sgd", {"learning_rate": INF}, ValueError, r"learning_rate"),
    (
        "sgd",
        {"learning_rate": 0.0},
        ValueError,
        r"learning_rate'\] must be a finite number > 0; got 0\.0",
    ),
    ("sgd", {"learning_rate": -1e-3}, ValueError, r"learning_rate"),
    ("sgd", {"learning_rate": True}, TypeError, r"learning_rate"),
    ("sgd", {"learning_rate": None}, TypeError, r"learning_rate"),
    ("sgd", {"learning_rate": [1e-3]}, TypeError, r"learning_rate"),
    ("sgd", {"learning_rate": np.array(1e-3)}, TypeError, r"learning_rate"),
    (
        "sgd_momentum",
        {"momentum": 1.0},
        ValueError,
        r"momentum'\] must be a finite number in \[0, 1\)",
    ),
    ("sgd_momentum", {"momentum": -0.1}, ValueError, r"momentum"),
    ("sgd_momentum", {"momentum": 1.5}, ValueError, r"momentum"),
    ("sgd_momentum", {"momentum": "0.9"}, TypeError, r"momentum"),
    ("sgd_momentum", {"momentum": NAN}, ValueError, r"momentum"),
    ("rmsprop", {"decay_rate": 1}, ValueError, r"decay_rate"),
    ("rmsprop", {"decay_rate": -0.01}, ValueError, r"decay_rate"),
    ("adam", {"beta1": 1.0}, ValueError, r"beta1'\] must be a finite number in \[0, 1\)"),
    ("adam", {"beta2": 2}, ValueError, r"beta2"),
    ("adam", {"beta2": NAN}, ValueError, r"beta2"),
    ("adam", {"epsilon": 0}, ValueError, r"epsilon'\] must be a finite number > 0"),
    ("rmsprop", {"epsilon": -1e-8}, ValueError, r"epsilon"),
    ("adam", {"epsilon": NAN}, ValueError, r"epsilon"),
    ("adam", {"t": -1}, ValueError, r"t'\] must be >= 0"),
    ("adam", {"t": 1.5}, TypeError, r"t'\] must be an int"),
    ("adam", {"t": "0"}, TypeError, r"t'\]"),
    ("adam", {"t": True}, TypeError, r"t'\]"),
    (
        "adam",
        {"learning_rat": 1e-3},
        ValueError,
        r"unknown key 'learning_rat'.*Did you mean 'learning_rate'\?",
    ),
    (
        "sgd",
        {"learning_rate": 1e-3, "momentum": 0.9},
        ValueError,
        r"sgd: optim_config has unknown key 'momentum'",
    ),
    ("adam", {"beta_1": 0.9}, ValueError, r"Did you mean 'beta1'\?"),
    ("sgd_momentum", {"velocity": np.zeros(3)}, ValueError, r"per-parameter state array"),
    ("adam", {"m": np.zeros(3)}, ValueError, r"optim_config\['m'\] is a per-parameter state"),
]


@pytest.mark.parametrize(("rule", "config", "error", "match"), OPTIM)
def test_bad_optim_config_values(rule, config, error, match, small_data, assert_same) -> None:
    data = small_data()
    kept = copy.deepcopy(config)
    _rejects(
        error,
        match,
        lambda m: Solver(m, data, update_rule=rule, optim_config=config, verbose=False),
        assert_same,
    )
    assert_same(kept, config)


@pytest.mark.parametrize("lr", ["fast", NAN, 0.0, -1.0, None])
def test_a_custom_rules_learning_rate_is_checked_too(lr, small_data, assert_same) -> None:
    data = small_data()

    def mine(w, dw, config):
        return w, config

    _rejects(
        (TypeError, ValueError),
        r"optim_config\['learning_rate'\]",
        lambda m: Solver(m, data, update_rule=mine, optim_config={"learning_rate": lr}),
        assert_same,
    )


def test_a_custom_rule_may_have_its_own_keys(small_data) -> None:
    seen = []

    def mine(w, dw, config):
        seen.append(config["my_step"])
        return w - config["my_step"] * dw, config

    Solver(
        _model(),
        small_data(),
        update_rule=mine,
        optim_config={"my_step": 0.1},
        verbose=False,
        num_epochs=1,
    ).train()
    assert seen and set(seen) == {0.1}


# ---------------------------------------------------------------- the rules themselves
RULE_CALLS = [
    (
        "sgd",
        {"learning_rate": "fast"},
        TypeError,
        r"sgd: config\['learning_rate'\] must be a real number",
    ),
    (
        "sgd_momentum",
        {"learning_rate": NAN},
        ValueError,
        r"sgd_momentum: config\['learning_rate'\]",
    ),
    ("rmsprop", {"decay_rate": 1.0}, ValueError, r"rmsprop: config\['decay_rate'\]"),
    ("adam", {"beta1": -0.5}, ValueError, r"adam: config\['beta1'\]"),
    ("adam", {"t": -2}, ValueError, r"adam: config\['t'\] must be >= 0"),
    ("adam", {"learning_rat": 1e-3}, ValueError, r"Did you mean 'learning_rate'"),
    ("sgd", {"epsilon": 1e-8}, ValueError, r"sgd: config has unknown key 'epsilon'"),
    (
        "sgd_momentum",
        {"velocity": [0.0] * 6},
        TypeError,
        r"config\['velocity'\] must be a numpy array",
    ),
    ("rmsprop", {"cache": np.array(["a"] * 6).reshape(2, 3)}, TypeError, r"config\['cache'\]"),
    (
        "adam",
        {"m": np.zeros((3, 2))},
        ValueError,
        r"config\['m'\] must have the shape of w \(2, 3\)",
    ),
]


@pytest.mark.parametrize(("rule", "config", "error", "match"), RULE_CALLS)
def test_a_rule_checks_its_config_and_leaves_it_unchanged(rule, config, error, match, assert_same):
    w, dw = np.ones((2, 3)), np.full((2, 3), 0.5)
    kept = copy.deepcopy((w, dw, config))
    with pytest.raises(error, match=match):
        rules.UPDATE_RULES[rule](w, dw, config)
    assert_same(kept, (w, dw, config))


@pytest.mark.parametrize(
    ("w", "dw", "error", "match"),
    [
        ([1.0, 2.0], np.zeros(2), TypeError, r"sgd needs numpy arrays w and dw; got list for w"),
        (np.zeros(2), (0.0, 0.0), TypeError, r"got tuple for dw"),
        (np.zeros(2, dtype=object), np.zeros(2), TypeError, r"w must have a real numeric dtype"),
        (np.zeros(2), np.array(["a", "b"]), TypeError, r"dw must have a real numeric dtype"),
        (np.zeros(2, dtype=complex), np.zeros(2), TypeError, r"complex128"),
        (np.zeros(2, dtype=bool), np.zeros(2), TypeError, r"bool"),
        (np.zeros(2), np.zeros(3), ValueError, r"dw must have the shape of w \(2,\)"),
    ],
)
def test_a_rule_checks_w_and_dw(w, dw, error, match, assert_same) -> None:
    config = {"learning_rate": 1e-2}
    with pytest.raises(error, match=match):
        rules.sgd(w, dw, config)
    assert config == {"learning_rate": 1e-2}


def test_nonfinite_weights_and_gradients_are_accepted_as_in_the_course() -> None:
    w, dw = np.array([1.0, np.nan]), np.array([np.inf, 1.0])
    for rule in rules.UPDATE_RULES.values():
        with np.errstate(invalid="ignore"):  # inf / inf in rmsprop and adam: NaN
            next_w, _ = rule(w, dw)
        assert next_w.shape == w.shape and np.isnan(next_w[1])


# ---------------------------------------------------------------- the data dict
def _data_with(small_data, **changes):
    data = small_data()
    data.update(changes)
    return data


DATA = [
    (lambda d: [d], TypeError, r"data must be a dict; got list"),
    (
        lambda d: {k: d[k] for k in ("X_train", "y_train", "X_val")},
        ValueError,
        r"missing \['y_val'\]",
    ),
    (
        lambda d: {**d, "X_train": d["X_train"].tolist()},
        TypeError,
        r"data\['X_train'\] must be a numpy\.ndarray",
    ),
    (
        lambda d: {**d, "y_val": d["y_val"].astype(float)},
        ValueError,
        r"data\['y_val'\] must be 1-D integer",
    ),
    (
        lambda d: {**d, "y_train": d["y_train"][:, None]},
        ValueError,
        r"data\['y_train'\] must be 1-D",
    ),
    (lambda d: {**d, "y_train": d["y_train"] > 0}, ValueError, r"integer class labels"),
    (
        lambda d: {**d, "X_train": d["X_train"].astype(complex)},
        TypeError,
        r"must hold real numbers",
    ),
    (
        lambda d: {**d, "X_val": d["X_val"].astype(str)},
        TypeError,
        r"data\['X_val'\] must hold real",
    ),
    (lambda d: {**d, "X_train": d["X_train"] > 0}, TypeError, r"dtype bool"),
    (
        lambda d: {**d, "X_train": np.where(np.arange(60)[:, None] == 7, np.nan, d["X_train"])},
        ValueError,
        r"data\['X_train'\] has NaN or inf in row 7",
    ),
    (
        lambda d: {**d, "X_val": np.where(np.arange(20)[:, None] == 19, np.inf, d["X_val"])},
        ValueError,
        r"data\['X_val'\] has NaN or inf in row 19",
    ),
    (lambda d: {**d, "y_train": d["y_train"][:-1]}, ValueError, r"same number of rows"),
    (
        lambda d: {**d, "X_train": d["X_train"][:0], "y_train": d["y_train"][:0]},
        ValueError,
        r"N >= 1",
    ),
    (lambda d: {**d, "y_val": np.full(20, 3)}, ValueError, r"labels in \[3, 3\], outside \[0, 3\)"),
    (lambda d: {**d, "y_train": np.full(60, -1)}, ValueError, r"outside \[0, 3\)"),
    (lambda d: {**d, "X_val": d["X_val"][:, :4]}, ValueError, r"must have the same shape"),
    (
        lambda d: {**d, "X_train": d["X_train"][:, :4], "X_val": d["X_val"][:, :4]},
        ValueError,
        r"model rejects rows",
    ),
]


@pytest.mark.parametrize(("edit", "error", "match"), DATA)
def test_bad_data(edit, error, match, small_data, assert_same) -> None:
    data = edit(small_data())
    _rejects(error, match, lambda m: Solver(m, data, verbose=False), assert_same)


def test_extra_data_keys_such_as_the_test_split_are_allowed(small_data) -> None:
    data = small_data()
    data.update(X_test=data["X_val"], y_test=data["y_val"])
    Solver(_model(), data, verbose=False)


# ---------------------------------------------------------------- check_accuracy
ACCURACY = [
    (
        lambda d: (d["X_val"].tolist(), d["y_val"]),
        {},
        TypeError,
        r"check_accuracy: X must be a numpy",
    ),
    (lambda d: (d["X_val"], list(d["y_val"])), {}, TypeError, r"check_accuracy: y must be a numpy"),
    (lambda d: (d["X_val"], d["y_val"].astype(float)), {}, ValueError, r"y must be 1-D integer"),
    (lambda d: (d["X_val"], d["y_val"][:, None]), {}, ValueError, r"y must be 1-D"),
    (lambda d: (d["X_val"], d["y_val"][:-1]), {}, ValueError, r"same number of rows"),
    (lambda d: (d["X_val"], d["y_val"]), {"num_samples": 0}, ValueError, r"num_samples must be"),
    (lambda d: (d["X_val"], d["y_val"]), {"num_samples": 2.5}, TypeError, r"num_samples"),
    (
        lambda d: (d["X_val"], d["y_val"]),
        {"batch_size": 0},
        ValueError,
        r"batch_size must be an integer >= 1; got 0",
    ),
    (lambda d: (d["X_val"], d["y_val"]), {"batch_size": -1}, ValueError, r"batch_size"),
    (lambda d: (d["X_val"], d["y_val"]), {"batch_size": "100"}, TypeError, r"batch_size"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), ACCURACY)
def test_bad_check_accuracy_arguments(
    args, kwargs, error, match, fc_solver, state_of, assert_same
) -> None:
    solver = fc_solver(num_epochs=1)
    solver.train()
    data = {"X_val": solver.X_val, "y_val": solver.y_val}
    np.random.seed(4)
    before = state_of(solver)
    with pytest.raises(error, match=match):
        solver.check_accuracy(*args(data), **kwargs)
    assert_same(before, state_of(solver))


# ---------------------------------------------------------------- lr decay, custom rules
def _keeps_no_lr(w, dw, config):
    return w - 1e-3 * dw, config


def test_lr_decay_over_a_custom_rule_without_learning_rate_is_explained(
    small_data, state_of, assert_same
) -> None:
    solver = Solver(
        _model(),
        small_data(),
        update_rule=_keeps_no_lr,
        lr_decay=0.9,
        batch_size=10,
        verbose=False,
    )
    before = state_of(solver)
    with pytest.raises(
        ValueError,
        match=r"lr_decay=0\.9 multiplies each parameter's "
        r"'learning_rate'.*_keeps_no_lr.*or pass lr_decay=1\.0",
    ):
        solver.train()
    before["iteration"] = 0
    assert_same(before, state_of(solver))  # found in the first step, which was undone


def test_lr_decay_of_one_skips_configs_without_learning_rate(small_data) -> None:
    solver = Solver(
        _model(),
        small_data(),
        update_rule=_keeps_no_lr,
        batch_size=10,
        num_epochs=2,
        verbose=False,
    )
    solver.train()  # the course's loop would raise KeyError 'learning_rate' here
    assert solver.epoch == 2


def test_a_non_number_learning_rate_written_by_a_rule_is_refused_before_decay(
    small_data, state_of, assert_same
):
    def writes_text(w, dw, config):
        config["learning_rate"] = "fast"
        return w, config

    solver = Solver(
        _model(),
        small_data(),
        update_rule=writes_text,
        lr_decay=0.5,
        batch_size=10,
        verbose=False,
    )
    before = state_of(solver)
    with pytest.raises(TypeError, match=r"\['learning_rate'\] is 'fast' \(str\); lr_decay needs"):
        solver.train()
    assert_same(before, state_of(solver))


# ---------------------------------------------------------------- checkpoint metadata
@pytest.fixture
def saved(tmp_path, fc_solver):
    fc_solver("batchnorm", checkpoint_name=str(tmp_path / "run")).train()
    return ck.load_checkpoint(tmp_path / "run_epoch_2.npz")


def _set(key, value):
    def edit(arrays, meta):
        meta[key] = value

    return edit


def _array(key, value):
    def edit(arrays, meta):
        arrays[key] = value

    return edit


def _drop(key):
    def edit(arrays, meta):
        (meta if key in meta else arrays).pop(key)

    return edit


def _kinds(change):
    def edit(arrays, meta):
        change(meta["optim_kinds"])

    return edit


META = [
    (_set("epoch", -1), r"header\['epoch'\] must be >= 0"),
    (_set("epoch", "2"), r"header\['epoch'\] must be an int"),
    (_set("epoch", 1.5), r"header\['epoch'\]"),
    (_set("epoch", True), r"header\['epoch'\]"),
    (_set("iteration", -3), r"header\['iteration'\]"),
    (_set("num_epochs", None), r"header\['num_epochs'\]"),
    (_set("best_val_acc", 1.5), r"header\['best_val_acc'\] must be a finite number in \[0, 1\]"),
    (_set("best_val_acc", "0.5"), r"best_val_acc"),
    (_set("best_val_acc", None), r"best_val_acc"),
    (_set("batch_size", 0), r"header\['batch_size'\] must be >= 1"),
    (_set("num_train", False), r"header\['num_train'\]"),
    (_set("update_rule", 3), r"header\['update_rule'\] is 3, not a string"),
    (_drop("epoch"), r"its header lacks \['epoch'\]"),
    (_drop("optim_kinds"), r"its header lacks \['optim_kinds'\]"),
    (_set("optim_kinds", "adam"), r"optim_kinds must be a dict"),
    (_kinds(lambda k: k.update(W1=["m"])), r"optim_kinds\['W1'\] must be a dict"),
    (_kinds(lambda k: k["W1"].update(m="pickle")), r"'optim/W1/m' \(stored kind 'pickle'\)"),
    (
        _kinds(lambda k: k["W1"].update(t="array")),
        r"adam: optim_configs\['W1'\]\['t'\] must be an int; got array\(12\)",
    ),
    (_kinds(lambda k: k["W1"].update(t="float")), r"'optim/W1/t' \(stored kind 'float'\)"),
    (_kinds(lambda k: k["W1"].update(extra="int")), r"'optim/W1/extra' .* is nothing"),
    (
        _kinds(lambda k: k["W1"].pop("m")),
        r"optimizer entries not listed in its header: \['optim/W1/m'\]",
    ),
    (_kinds(lambda k: k.pop("W1")), r"optimizer"),
    (
        _array("optim/W1/learning_rate", np.array(-1.0)),
        r"learning_rate'\] must be a finite number > 0",
    ),
    (_array("optim/W1/beta1", np.array(1.0)), r"beta1"),
    (_array("optim/W1/t", np.array(-5)), r"t'\] must be >= 0"),
    (_array("optim/W1/m", np.zeros((2, 2))), r"W1\['m'\] \(2, 2\) for W1 \(5, 8\)"),
    (_array("history/loss", np.zeros((2, 2))), r"'history/loss' must be a 1-D float array"),
    (_array("history/loss", np.arange(3)), r"'history/loss' must be a 1-D float array"),
    (_array("history/train_acc", np.array([0.5, 1.5, 0.2])), r"accuracies outside \[0, 1\]"),
    (_array("history/val_acc", np.array([0.5])), r"3 train accuracies but 1 val accuracies"),
    (_drop("history/val_acc"), r"'history/val_acc' must be a 1-D float array; it is nothing"),
    (_array("rng/pos", np.array(700)), r"pos 700, expected 0\.\.624"),
    (_array("rng/has_gauss", np.array(2)), r"has_gauss 2"),
    (_array("rng/pos", np.array(3.5)), r"'rng/pos' must be a 0-d array of kind 'iu'"),
    (_array("rng/keys", np.zeros(624, dtype=np.int64)), r"rng/keys must be \(624,\) uint32"),
    (_array("rng/cached_gaussian", np.array(np.inf)), r"cached_gaussian inf"),
    (_array("junk/x", np.zeros(2)), r"entries a Solver does not write: \['junk/x'\]"),
    (_drop("model/params/W1"), r"parameters missing from it \['W1'\]"),
    (_array("model/params/W1", np.zeros((5, 8), dtype=np.float32)), r"W1: model \(5, 8\) float64"),
    (_array("model/bn_params/5/running_mean", np.zeros(8)), r"the model has only 2 bn_params"),
    (_array("model/weird", np.zeros(2)), r"unexpected entry 'weird'"),
    (_array("best/params/W1", np.zeros(3)), r"the best snapshot in checkpoint"),
]


@pytest.mark.parametrize(("edit", "match"), META)
def test_bad_checkpoint_metadata_is_refused_and_nothing_changes(
    edit, match, saved, tmp_path, fc_solver, state_of, assert_same
) -> None:
    arrays, meta = copy.deepcopy(saved)
    edit(arrays, meta)
    path = tmp_path / "edited.npz"
    ck.save_checkpoint(path, arrays, meta)  # a valid checksum over the edited contents
    solver = fc_solver("batchnorm", num_epochs=1)
    solver.train()
    np.random.seed(8)
    before = state_of(solver)
    with pytest.raises(ValueError, match=match):
        solver.restore(path)
    assert_same(before, state_of(solver))


def test_the_unedited_checkpoint_resumes(saved, tmp_path, fc_solver) -> None:
    arrays, meta = copy.deepcopy(saved)
    ck.save_checkpoint(tmp_path / "same.npz", arrays, meta)  # the control for the above
    solver = fc_solver("batchnorm", num_epochs=3)
    solver.restore(tmp_path / "same.npz")
    assert solver.epoch == 2 and len(solver.loss_history) == 12


@pytest.mark.parametrize("setting", [("batch_size", 5), ("update_rule", "sgd")])
def test_a_checkpoint_from_other_settings_is_refused(
    setting, tmp_path, fc_solver, state_of, assert_same
) -> None:
    fc_solver("batchnorm", checkpoint_name=str(tmp_path / "run")).train()
    key, value = setting
    solver = fc_solver("batchnorm", **{key: value})
    before = state_of(solver)
    with pytest.raises(ValueError, match=rf"other settings \({key}: "):
        solver.restore(tmp_path / "run_epoch_2.npz")
    assert_same(before, state_of(solver))
