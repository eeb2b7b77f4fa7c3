"""The models refuse bad constructor arguments and bad data clearly, and change nothing.

- A refused constructor call raises before the first random draw: NumPy's global
  generator, from which the course's models draw their weights in order, is untouched.
- A refused ``loss`` call leaves the model (params, modes, running statistics), X and y as
  they were; so does a call that fails inside a layer.
- NaN or infinite data gives a NaN loss, as in the course (the Solver records it).
- The loss is a NumPy float64 scalar, as the course's: the course ConvNet's regularized
  sanity check prints 2.508255638232932.
"""

# The course seeds and draws with NumPy's global generator; these tests replay it.
# ruff: noqa: NPY002, E501  (the case tables keep one case a line)

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest

from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.models.fc_net import FullyConnectedNet
from normgrad.models.penalty import CHUNK, sum_of_squares


def _rng_state() -> tuple:
    return np.random.get_state()


def _same_rng(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def _state(model: Any) -> dict[str, Any]:
    """Everything a loss call could change, deep-copied."""
    return copy.deepcopy(
        {
            "params": model.params,
            "bn_params": model.bn_params,
            "dropout_param": getattr(model, "dropout_param", None),
            "reg": model.reg,
        }
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        nan = a.dtype.kind in "fc"
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, nan)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b or (a != a and b != b)  # NaN == NaN here


# ---- the course's losses: NumPy float64, and the regularized ConvNet value -------------------


def _course_convnet_inputs() -> tuple[ThreeLayerConvNet, np.ndarray, np.ndarray]:
    # ConvolutionalNetworks.ipynb: the conv_relu sandwich cell (seed 231, four draws), then
    # the sanity-check cell builds the model and draws X, y (as tests/models/test_cnn.py).
    np.random.seed(231)
    np.random.randn(2, 3, 8, 8), np.random.randn(3, 3, 3, 3)
    np.random.randn(3), np.random.randn(2, 3, 8, 8)
    model = ThreeLayerConvNet()
    X = np.random.randn(50, 3, 32, 32)
    y = np.random.randint(10, size=50)
    return model, X, y


def test_course_convnet_regularized_loss_is_the_printed_value():
    model, X, y = _course_convnet_inputs()
    loss, _ = model.loss(X, y)
    assert type(loss) is np.float64 and loss == 2.302586071243987
    model.reg = 0.5
    loss_reg, grads = model.loss(X, y)
    # Printed by the notebook: "Initial loss (with regularization):  2.508255638232932".
    assert type(loss_reg) is np.float64
    assert repr(float(loss_reg)) == "2.508255638232932"
    assert grads["W1"].dtype == np.float64  # float64 X against float32 weights, as the course


def test_penalty_sums_in_the_courses_order():
    # Small arrays (every course gradient check): exactly np.sum.
    W = np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32)
    assert W.size <= CHUNK and sum_of_squares(W) == np.sum(W * W)
    # Large float32 arrays: chunk by chunk, each chunk pairwise, as NumPy <= 2.2 did.
    W = np.random.default_rng(1).standard_normal((300, 100)).astype(np.float32)
    sq = (W * W).ravel()
    expected = np.float32(0)
    for start in range(0, sq.size, CHUNK):
        expected = np.float32(expected + np.sum(sq[start : start + CHUNK]))
    assert sum_of_squares(W) == expected and sum_of_squares(W).dtype == np.float32
    # and within float32 rounding of the exact sum
    exact = np.sum(W.astype(np.float64) ** 2)
    assert abs(float(sum_of_squares(W)) - exact) < 1e-5 * exact
    # float16 is summed in float32: its squares would overflow
    big = np.full((100, 100), 30.0, dtype=np.float16)
    assert sum_of_squares(big).dtype == np.float32 and np.isfinite(sum_of_squares(big))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_fc_loss_is_numpy_float64(dtype, reg):
    np.random.seed(3)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, reg=reg, dtype=dtype)
    X, y = np.random.randn(5, 4), np.random.randint(3, size=5)
    loss, grads = model.loss(X, y)
    assert type(loss) is np.float64
    assert all(g.dtype == dtype for g in grads.values())
    # the penalty, in float64 from the float32 sums, as NumPy 1 computed the course's
    data_loss, _ = FullyConnectedNet.loss(_unregularized(model), X, y)
    penalty = sum(0.5 * reg * np.float64(np.sum(model.params[f"W{i}"] ** 2)) for i in (1, 2, 3))
    assert loss == pytest.approx(data_loss + penalty, rel=1e-15, abs=0)


def _unregularized(model: FullyConnectedNet) -> FullyConnectedNet:
    clone = copy.deepcopy(model)
    clone.reg = 0.0
    return clone


# ---- constructor arguments --------------------------------------------------------------------

FC_GOOD: dict[str, Any] = {"hidden_dims": [5, 4], "input_dim": 6, "num_classes": 3}
NAN = float("nan")

FC_BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"hidden_dims": 100}, TypeError, r"^hidden_dims must be a list of layer sizes.*\[100\]"),
    ({"hidden_dims": "100"}, TypeError, r"^hidden_dims must be a list of layer sizes"),
    ({"hidden_dims": None}, TypeError, r"^hidden_dims must be a list"),
    ({"hidden_dims": {"a": 1}}, TypeError, r"^hidden_dims must be a list"),
    ({"hidden_dims": np.array([[5, 4]])}, TypeError, r"^hidden_dims must be a list"),
    ({"hidden_dims": [100.0]}, TypeError, r"^hidden_dims\[0\] must be a positive int; got 100\.0"),
    ({"hidden_dims": [5, 100.5]}, TypeError, r"^hidden_dims\[1\] must be a positive int"),
    ({"hidden_dims": [5, 0]}, ValueError, r"^hidden_dims\[1\] must be a positive int \(>= 1\)"),
    ({"hidden_dims": [-3]}, ValueError, r"^hidden_dims\[0\] must be a positive int"),
    ({"hidden_dims": [True]}, TypeError, r"^hidden_dims\[0\] must be a positive int"),
    ({"hidden_dims": ["5"]}, TypeError, r"^hidden_dims\[0\] must be a positive int"),
    ({"hidden_dims": [[5]]}, TypeError, r"^hidden_dims\[0\] must be a positive int"),
    ({"hidden_dims": np.array([5.0])}, TypeError, r"^hidden_dims\[0\] must be a positive int"),
    ({"input_dim": 0}, ValueError, r"^input_dim must be a positive int"),
    ({"input_dim": -6}, ValueError, r"^input_dim must be a positive int"),
    ({"input_dim": 6.0}, TypeError, r"^input_dim must be a positive int; got 6\.0"),
    ({"input_dim": "6"}, TypeError, r"^input_dim must be a positive int"),
    ({"input_dim": None}, TypeError, r"^input_dim must be a positive int"),
    ({"input_dim": True}, TypeError, r"^input_dim must be a positive int"),
    ({"input_dim": (3, 2)}, TypeError, r"^input_dim must be a positive int"),
    ({"num_classes": 0}, ValueError, r"^num_classes must be a positive int"),
    ({"num_classes": 3.0}, TypeError, r"^num_classes must be a positive int"),
    ({"num_classes": None}, TypeError, r"^num_classes must be a positive int"),
    ({"dropout_keep_ratio": 0}, ValueError, r"^dropout_keep_ratio must be a finite number in \(0, 1\]"),
    ({"dropout_keep_ratio": -0.5}, ValueError, r"^dropout_keep_ratio must be"),
    ({"dropout_keep_ratio": 1.5}, ValueError, r"^dropout_keep_ratio must be"),
    ({"dropout_keep_ratio": NAN}, ValueError, r"^dropout_keep_ratio must be"),
    ({"dropout_keep_ratio": np.inf}, ValueError, r"^dropout_keep_ratio must be"),
    ({"dropout_keep_ratio": "0.5"}, TypeError, r"^dropout_keep_ratio must be a real number"),
    ({"dropout_keep_ratio": True}, TypeError, r"^dropout_keep_ratio must be a real number"),
    ({"dropout_keep_ratio": None}, TypeError, r"^dropout_keep_ratio must be a real number"),
    ({"reg": -1}, ValueError, r"^reg must be a finite number >= 0; got -1"),
    ({"reg": -1e-300}, ValueError, r"^reg must be a finite number >= 0"),
    ({"reg": NAN}, ValueError, r"^reg must be a finite number >= 0"),
    ({"reg": np.inf}, ValueError, r"^reg must be a finite number >= 0"),
    ({"reg": "0.1"}, TypeError, r"^reg must be a real number"),
    ({"reg": True}, TypeError, r"^reg must be a real number"),
    ({"reg": None}, TypeError, r"^reg must be a real number"),
    ({"reg": [0.1]}, TypeError, r"^reg must be a real number"),
    ({"weight_scale": 0}, ValueError, r"^weight_scale must be a finite number > 0"),
    ({"weight_scale": -1e-2}, ValueError, r"^weight_scale must be a finite number > 0"),
    ({"weight_scale": NAN}, ValueError, r"^weight_scale must be a finite number > 0"),
    ({"weight_scale": np.inf}, ValueError, r"^weight_scale must be a finite number > 0"),
    ({"weight_scale": "1e-2"}, TypeError, r"^weight_scale must be a real number"),
    ({"weight_scale": None}, TypeError, r"^weight_scale must be a real number"),
    ({"weight_scale": np.array(1e-2)}, TypeError, r"^weight_scale must be a real number"),
    ({"dtype": np.int32}, TypeError, r"^dtype must be a floating NumPy dtype; got int32"),
    ({"dtype": int}, TypeError, r"^dtype must be a floating NumPy dtype; got int64"),
    ({"dtype": "int8"}, TypeError, r"^dtype must be a floating NumPy dtype; got int8"),
    ({"dtype": bool}, TypeError, r"^dtype must be a floating NumPy dtype; got bool"),
    ({"dtype": np.complex128}, TypeError, r"^dtype must be a floating NumPy dtype; got complex128"),
    ({"dtype": object}, TypeError, r"^dtype must be a floating NumPy dtype; got object"),
    ({"dtype": None}, TypeError, r"^dtype must be a floating NumPy dtype; got None"),
    ({"dtype": "fast"}, TypeError, r"^dtype must be a floating NumPy dtype; got 'fast'"),
    ({"dtype": 3}, TypeError, r"^dtype must be a floating NumPy dtype"),
    ({"seed": -1}, ValueError, r"^seed must lie in \[0, 4294967295\]"),
    ({"seed": 2**32}, ValueError, r"^seed must lie in"),
    ({"seed": 1.5}, TypeError, r"^seed must be an int"),
    ({"seed": "1"}, TypeError, r"^seed must be an int"),
    ({"seed": True}, TypeError, r"^seed must be an int"),
    ({"normalization": "groupnorm"}, ValueError, r"^normalization must be one of None, 'batchnorm'.*ThreeLayerConvNet"),
    ({"normalization": "BatchNorm"}, ValueError, r"^normalization must be one of"),
    ({"normalization": ""}, ValueError, r"^normalization must be one of"),
    ({"normalization": 1}, TypeError, r"^normalization must be one of.*Pass the name as a string"),
    ({"normalization": ["batchnorm"]}, TypeError, r"^normalization must be one of"),
    ({"activation": "tanh"}, ValueError, r"^activation must be one of 'relu', 'sigmoid'"),
    ({"activation": None}, ValueError, r"^activation must be one of"),
    ({"activation": np.array(["relu"])}, TypeError, r"^activation must be one of"),
]  # fmt: skip

CNN_GOOD: dict[str, Any] = {
    "input_dim": (1, 8, 8),
    "num_filters": 4,
    "filter_size": 3,
    "hidden_dim": 5,
}

CNN_BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"input_dim": (1, 8)}, ValueError, r"^input_dim must be \(C, H, W\), three positive ints"),
    ({"input_dim": (1, 8, 8, 1)}, ValueError, r"^input_dim must be \(C, H, W\)"),
    ({"input_dim": 64}, TypeError, r"^input_dim must be \(C, H, W\).*FullyConnectedNet"),
    ({"input_dim": "1x8x8"}, TypeError, r"^input_dim must be \(C, H, W\)"),
    ({"input_dim": None}, TypeError, r"^input_dim must be \(C, H, W\)"),
    ({"input_dim": (1, 7, 8)}, ValueError, r"^input_dim must have an even height and width"),
    ({"input_dim": (1, 8, 9)}, ValueError, r"^input_dim must have an even height and width"),
    ({"input_dim": (0, 8, 8)}, ValueError, r"^input_dim\[0\] must be a positive int"),
    ({"input_dim": (1, -8, 8)}, ValueError, r"^input_dim\[1\] must be a positive int"),
    ({"input_dim": (1.0, 8, 8)}, TypeError, r"^input_dim\[0\] must be a positive int"),
    ({"input_dim": (1, 8, "8")}, TypeError, r"^input_dim\[2\] must be a positive int"),
    ({"num_filters": 0}, ValueError, r"^num_filters must be a positive int"),
    ({"num_filters": 3.5}, TypeError, r"^num_filters must be a positive int"),
    ({"num_filters": "32"}, TypeError, r"^num_filters must be a positive int"),
    ({"filter_size": 4}, ValueError, r"^filter_size must be odd.*got 4"),
    ({"filter_size": 0}, ValueError, r"^filter_size must be a positive int"),
    ({"filter_size": -3}, ValueError, r"^filter_size must be a positive int"),
    ({"filter_size": 3.0}, TypeError, r"^filter_size must be a positive int"),
    ({"hidden_dim": 0}, ValueError, r"^hidden_dim must be a positive int"),
    ({"hidden_dim": 100.0}, TypeError, r"^hidden_dim must be a positive int"),
    ({"num_classes": 0}, ValueError, r"^num_classes must be a positive int"),
    ({"num_classes": "10"}, TypeError, r"^num_classes must be a positive int"),
    ({"weight_scale": 0}, ValueError, r"^weight_scale must be a finite number > 0"),
    ({"weight_scale": NAN}, ValueError, r"^weight_scale must be a finite number > 0"),
    ({"weight_scale": -1e-3}, ValueError, r"^weight_scale must be"),
    ({"weight_scale": "1e-3"}, TypeError, r"^weight_scale must be a real number"),
    ({"reg": -1}, ValueError, r"^reg must be a finite number >= 0"),
    ({"reg": NAN}, ValueError, r"^reg must be a finite number >= 0"),
    ({"reg": "0"}, TypeError, r"^reg must be a real number"),
    ({"dtype": np.int64}, TypeError, r"^dtype must be a floating NumPy dtype"),
    ({"dtype": None}, TypeError, r"^dtype must be a floating NumPy dtype"),
    ({"dtype": "x"}, TypeError, r"^dtype must be a floating NumPy dtype"),
    ({"normalization": "layernorm"}, ValueError, r"^normalization must be one of.*FullyConnectedNet"),
    ({"normalization": "GroupNorm"}, ValueError, r"^normalization must be one of"),
    ({"normalization": 3}, TypeError, r"^normalization must be one of"),
    ({"num_groups": 0}, ValueError, r"^num_groups must be a positive int"),
    ({"num_groups": 2.0}, TypeError, r"^num_groups must be a positive int"),
    ({"num_groups": "4"}, TypeError, r"^num_groups must be a positive int"),
    ({"normalization": "groupnorm", "num_groups": 3}, ValueError, r"^num_groups must divide num_filters = 4; got 3\. Pass one of \[1, 2, 4\]"),
]  # fmt: skip


@pytest.mark.parametrize("model_cls, good, bad, error, match", [
    *[(FullyConnectedNet, FC_GOOD, *case) for case in FC_BAD],
    *[(ThreeLayerConvNet, CNN_GOOD, *case) for case in CNN_BAD],
])  # fmt: skip
def test_bad_constructor_argument_draws_nothing(model_cls, good, bad, error, match):
    np.random.seed(231)
    before = _rng_state()
    with pytest.raises(error, match=match):
        model_cls(**{**good, **bad})
    assert _same_rng(before, _rng_state()), "a refused constructor consumed the global RNG"


def test_good_arguments_still_draw_the_courses_weights():
    np.random.seed(231)
    model = FullyConnectedNet(**FC_GOOD, weight_scale=5e-2, dtype=np.float64)
    np.random.seed(231)
    np.testing.assert_array_equal(model.params["W1"], 5e-2 * np.random.randn(6, 5))
    np.testing.assert_array_equal(model.params["W2"], 5e-2 * np.random.randn(5, 4))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden_dims": []},  # a softmax classifier, as in the course
        {"hidden_dims": (5,)},
        {"hidden_dims": range(3, 5)},
        {"hidden_dims": np.array([5, 4])},
        {"hidden_dims": [np.int64(5)], "input_dim": np.int32(6), "num_classes": np.uint8(3)},
        {"dtype": "float64"},
        {"dtype": np.dtype("f4")},
        {"dtype": np.float16},
        {"dropout_keep_ratio": np.float32(0.5), "seed": np.int64(7)},
        {"reg": np.float32(0.1), "weight_scale": np.float64(1e-1)},
        {"reg": 0},
        {"dropout_keep_ratio": 1, "seed": 2**32 - 1},
    ],
)
def test_accepted_edge_arguments_give_a_working_model(kwargs):
    model = FullyConnectedNet(**{**FC_GOOD, **kwargs})
    X, y = np.random.randn(4, 6), np.array([0, 1, 2, 0])
    loss, grads = model.loss(X, y)
    assert np.isfinite(loss) and grads.keys() == model.params.keys()
    assert model.num_layers == len(list(kwargs.get("hidden_dims", [5, 4]))) + 1


# ---- loss(X, y) ---------------------------------------------------------------------------


def _fc(normalization: str | None = "batchnorm") -> FullyConnectedNet:
    np.random.seed(5)
    return FullyConnectedNet(
        [5, 4], input_dim=6, num_classes=3, normalization=normalization,
        dropout_keep_ratio=0.5, seed=1, dtype=np.float64,
    )  # fmt: skip


def _cnn() -> ThreeLayerConvNet:
    np.random.seed(6)
    return ThreeLayerConvNet(**CNN_GOOD, num_classes=3, normalization="batchnorm")


X_FC = np.random.default_rng(10).standard_normal((4, 6))
X_CNN = np.random.default_rng(11).standard_normal((4, 1, 8, 8))
Y = np.array([0, 2, 1, 1])

LOSS_BAD: list[tuple[str, Any, Any, type[Exception], str]] = [
    ("X list", lambda X: X.tolist(), None, TypeError, r"X must be a numpy\.ndarray"),
    ("X None", lambda X: None, None, TypeError, r"X must be a numpy\.ndarray"),
    ("X bool", lambda X: X > 0, None, TypeError, r"X must hold real numbers.*got dtype bool"),
    ("X complex", lambda X: X.astype(complex), None, TypeError, r"X must hold real numbers.*complex128"),
    ("X object", lambda X: X.astype(object), None, TypeError, r"X must hold real numbers"),
    ("X str", lambda X: X.astype(str), None, TypeError, r"X must hold real numbers"),
    ("X no rows", lambda X: X[:0], lambda y: y[:0], ValueError, r"X has no rows"),
    ("X wrong size", lambda X: X.reshape(len(X), -1)[:, :-1], None, ValueError, r"expects X of shape"),
    ("X 0-d", lambda X: np.array(1.0), None, ValueError, r"expects X of shape"),
    ("y list", None, lambda y: y.tolist(), TypeError, r"y must be a numpy integer array"),
    ("y float", None, lambda y: y.astype(float), TypeError, r"y must be a numpy integer array.*float64"),
    ("y bool", None, lambda y: y > 0, TypeError, r"y must be a numpy integer array.*bool"),
    ("y short", None, lambda y: y[:-1], ValueError, r"y must have shape \(N,\) = \(4,\)"),
    ("y 2-D", None, lambda y: y[None], ValueError, r"y must have shape \(N,\)"),
    ("y negative", None, lambda y: y - 1, ValueError, r"labels must lie in \[0, num_classes\) = \[0, 3\)"),
    ("y = C", None, lambda y: y + 1, ValueError, r"labels must lie in \[0, num_classes\)"),
]  # fmt: skip


@pytest.mark.parametrize("which", ["fc", "cnn"])
@pytest.mark.parametrize("case", LOSS_BAD, ids=[c[0] for c in LOSS_BAD])
def test_bad_loss_inputs_change_nothing(which, case):
    _, fix_X, fix_y, error, match = case
    model = _fc() if which == "fc" else _cnn()
    model.loss(X_FC if which == "fc" else X_CNN, Y)  # gain running statistics first
    model.loss(X_FC if which == "fc" else X_CNN)  # and leave the modes at "test"
    X = (X_FC if which == "fc" else X_CNN).copy()
    y = Y.copy()
    X = fix_X(X) if fix_X else X
    y = fix_y(y) if fix_y else y
    X_before, y_before = copy.deepcopy(X), copy.deepcopy(y)
    state = _state(model)
    with pytest.raises(error, match=match):
        model.loss(X, y)
    assert _same(_state(model), state), "a refused loss call changed the model"
    assert _same(X, X_before) if isinstance(X, np.ndarray) else X == X_before
    assert _same(y, y_before) if isinstance(y, np.ndarray) else y == y_before


@pytest.mark.parametrize("which", ["fc", "cnn"])
@pytest.mark.parametrize("reg, error", [(-1, ValueError), (NAN, ValueError), ("0.5", TypeError)])
def test_reg_set_after_construction_is_checked_at_loss(which, reg, error):
    model = _fc() if which == "fc" else _cnn()
    model.reg = reg  # the course's notebooks set model.reg after building the model
    state = _state(model)
    with pytest.raises(error, match=r"^model\.reg must be"):
        model.loss(X_FC if which == "fc" else X_CNN, Y)
    assert _same(_state(model), state)


def test_a_failure_inside_a_layer_restores_modes_and_running_statistics():
    model = _fc()
    model.loss(X_FC, Y)
    model.loss(X_FC)  # modes "test", running statistics from one step
    model.params["W2"] = model.params["W2"][:, :3]  # broken after batch norm 1 has run
    state = _state(model)
    with pytest.raises(ValueError, match="b must have shape"):
        model.loss(X_FC, Y)
    assert model.dropout_param["mode"] == "test" and model.bn_params[0]["mode"] == "test"
    assert _same(_state(model), state)


def test_a_bad_pool_param_in_the_convnet_leaves_batch_norm_unchanged():
    model = _cnn()
    model.loss(X_CNN, Y)
    model.pool_param["pool_size"] = 2  # a typo, after the model was built
    state = _state(model)
    with pytest.raises(ValueError, match="pool_param has unknown key 'pool_size'"):
        model.loss(X_CNN, Y)
    assert _same(_state(model), state)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_data_gives_a_nan_loss_as_in_the_course(value):
    for model, X in ((_fc(normalization=None), X_FC), (ThreeLayerConvNet(**CNN_GOOD), X_CNN)):
        X = X.copy()
        X.flat[3] = value
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # invalid values in matmul
            loss, grads = model.loss(X, np.array([0, 1, 2, 0]))
        assert type(loss) is np.float64 and np.isnan(loss)
        assert grads.keys() == model.params.keys()


def test_case_counts():
    assert len(FC_BAD) + len(CNN_BAD) >= 100
    assert len(LOSS_BAD) * 2 >= 30
