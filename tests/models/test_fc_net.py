"""FullyConnectedNet: the course notebooks' printed values, gradient checks, torch parity."""

# The course seeds and draws with NumPy's global generator; these tests replay it.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest
import torch

from normgrad.classifiers.fc_net import FullyConnectedNet
from normgrad.gradient_check import check_layer, eval_numerical_gradient, norm_rel_error, rel_error

N, D, H1, H2, C = 2, 15, 20, 30, 10

# Printed by the course notebooks (cs231n assignment 2, FullyConnectedNets.ipynb,
# BatchNormalization.ipynb, Dropout.ipynb), each after np.random.seed(231) and the
# draws of X and y, with the models built in this order.
COURSE_LOSSES = {
    None: [(0, 2.3004790897684924), (3.14, 7.052114776533016)],
    "batchnorm": [(0, 2.2611955101340957), (3.14, 6.996533220108303)],
}
COURSE_DROPOUT_LOSSES = [
    (1, 2.3004790897684924),
    (0.75, 2.302371489704412),
    (0.5, 2.3042759220785896),
]


def _course_data():
    np.random.seed(231)
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    return X, y


def _course_grad_check(model, X, y) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
    """The notebooks' loop: course rel_error of eval_numerical_gradient (h=1e-5)."""
    _, grads = model.loss(X, y)
    out = {}
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]  # noqa: E731
        num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
        out[name] = (rel_error(num, grads[name]), num, grads[name])
    return out


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_course_initial_losses_and_gradient_checks(normalization):
    X, y = _course_data()
    for reg, expected in COURSE_LOSSES[normalization]:
        model = FullyConnectedNet(
            [H1, H2],
            input_dim=D,
            num_classes=C,
            reg=reg,
            weight_scale=5e-2,
            dtype=np.float64,
            normalization=normalization,
        )
        loss, grads = model.loss(X, y)
        assert loss == expected  # bit for bit, as printed
        assert len(grads) == len(model.params)
        for name, (err, num, ana) in _course_grad_check(model, X, y).items():
            if normalization == "batchnorm" and name in ("b1", "b2"):
                # A bias right before batch norm is subtracted out again: its true
                # gradient is exactly zero (the course prints 0.00e+00 for it).
                assert np.abs(ana).max() < 1e-12 and np.abs(num).max() < 1e-9
                continue
            # The course's expectation: <= 1e-4 for W (kinks of ReLU at N=2), 1e-8 b.
            assert err < 2e-4, (name, err)


def test_course_dropout_initial_losses_and_gradient_checks():
    X, y = _course_data()
    for keep, expected in COURSE_DROPOUT_LOSSES:
        model = FullyConnectedNet(
            [H1, H2],
            input_dim=D,
            num_classes=C,
            weight_scale=5e-2,
            dtype=np.float64,
            dropout_keep_ratio=keep,
            seed=123,
        )
        loss, _ = model.loss(X, y)
        assert loss == expected
        for name, (err, _, _) in _course_grad_check(model, X, y).items():
            assert err < 1e-4, (name, err)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"normalization": "batchnorm"},
        {"normalization": "layernorm"},
        {"normalization": "batchnorm", "dropout_keep_ratio": 0.6, "seed": 7},
        {"normalization": "layernorm", "dropout_keep_ratio": 0.8, "seed": 3},
    ],
    ids=["plain", "batchnorm", "layernorm", "bn-dropout", "ln-dropout"],
)
def test_strict_gradient_check_well_conditioned(kwargs):
    """A batch of 8 and O(1) activations: every gradient of the loss within 1e-8 (normwise,
    check_layer's fourth-order stencil), parameter by parameter."""
    np.random.seed(0)
    X = np.random.randn(8, 6)
    y = np.random.randint(4, size=8)
    model = FullyConnectedNet(
        [7, 5], input_dim=6, num_classes=4, reg=0.3, weight_scale=0.5, dtype=np.float64, **kwargs
    )
    _, grads = model.loss(X, y)
    for name in sorted(model.params):
        if kwargs.get("normalization") == "batchnorm" and name in ("b1", "b2"):
            # A bias right before batch norm is removed by the centring: gradient 0.
            assert np.abs(grads[name]).max() < 1e-12
            continue
        original = model.params[name]

        def forward(w, name=name):
            model.params[name] = w
            loss, g = model.loss(X, y)
            return np.array(loss), g[name]

        report = check_layer(forward, lambda dout, g: g * dout, {name: original})
        model.params[name] = original
        assert report.max_rel_error < 1e-8, (name, report.max_rel_error)


def test_parameters_follow_the_course_layout_and_draw_order():
    np.random.seed(5)
    expected = [
        0.1 * np.random.randn(12, 9),
        0.1 * np.random.randn(9, 8),
        0.1 * np.random.randn(8, 3),
    ]
    np.random.seed(5)
    model = FullyConnectedNet(
        [9, 8], input_dim=12, num_classes=3, weight_scale=0.1, normalization="batchnorm"
    )
    assert sorted(model.params) == sorted(
        ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    )
    for i, W in enumerate(expected, start=1):
        np.testing.assert_allclose(model.params[f"W{i}"], W.astype(np.float32))
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert np.all(model.params["gamma2"] == 1) and np.all(model.params["beta1"] == 0)
    assert model.bn_params == [{"mode": "train"}, {"mode": "train"}]
    assert model.dropout_param == {} and not model.use_dropout
    ln = FullyConnectedNet(
        [4], input_dim=3, normalization="layernorm", dropout_keep_ratio=0.5, seed=9
    )
    assert ln.bn_params == [{}] and ln.dropout_param == {"mode": "train", "p": 0.5, "seed": 9}
    assert "gamma2" not in ln.params


def test_test_mode_returns_scores_and_uses_running_statistics():
    np.random.seed(1)
    X = np.random.randn(16, 5)
    y = np.random.randint(3, size=16)
    model = FullyConnectedNet(
        [6],
        input_dim=5,
        num_classes=3,
        normalization="batchnorm",
        dropout_keep_ratio=0.5,
        dtype=np.float64,
    )
    model.loss(X, y)
    assert model.bn_params[0]["mode"] == "train" and "running_mean" in model.bn_params[0]
    scores = model.loss(X)
    assert scores.shape == (16, 3)
    assert model.bn_params[0]["mode"] == "test" and model.dropout_param["mode"] == "test"
    # Test mode is deterministic (no dropout) and per-sample (running stats, not batch).
    np.testing.assert_array_equal(model.loss(X[:3]), scores[:3])


def test_matches_torch_in_float64():
    np.random.seed(2)
    X = np.random.randn(10, 6)
    y = np.random.randint(4, size=10)
    reg = 0.7
    model = FullyConnectedNet(
        [8, 5],
        input_dim=6,
        num_classes=4,
        reg=reg,
        weight_scale=0.4,
        normalization="batchnorm",
        dtype=np.float64,
    )
    model.params["gamma1"] += np.random.randn(8)
    model.params["beta2"] += np.random.randn(5)
    loss, grads = model.loss(X, y)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = torch.tensor(X)
    for i in (1, 2):
        h = h @ t[f"W{i}"] + t[f"b{i}"]
        h = torch.nn.functional.batch_norm(
            h, None, None, t[f"gamma{i}"], t[f"beta{i}"], training=True, eps=1e-5
        )
        h = torch.relu(h)
    scores = h @ t["W3"] + t["b3"]
    tloss = torch.nn.functional.cross_entropy(scores, torch.tensor(y))
    tloss = tloss + 0.5 * reg * sum((t[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    for k in model.params:
        if k in ("b1", "b2"):
            continue  # exactly zero in theory; both sides are rounding noise
        assert norm_rel_error(grads[k], t[k].grad.numpy()) < 1e-10, k


@pytest.mark.parametrize(
    "X_shape, y, match",
    [
        ((4, 7), np.array([0, 1, 2, 0]), r"expects X of shape \(N, 6\)"),
        ((4, 2, 3), np.array([0, 1, 2, 0]), None),  # (N, 2, 3) flattens to 6: accepted
        ((4, 6), np.array([0, 1, 2]), r"shape \(N,\) = \(4,\)"),
        ((4, 6), np.array([0, 1, 3, 0]), r"\[0, 3\)"),
        ((4, 6), np.array([0, -1, 2, 0]), r"\[0, 3\)"),
    ],
)
def test_bad_shapes_and_labels_raise_clearly(X_shape, y, match):
    model = FullyConnectedNet([5], input_dim=6, num_classes=3)
    X = np.random.randn(*X_shape)
    if match is None:
        loss, _ = model.loss(X, y)
        assert np.isfinite(loss)
    else:
        with pytest.raises(ValueError, match=match):
            model.loss(X, y)


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="normalization"):
        FullyConnectedNet([5], normalization="groupnorm")
    with pytest.raises(ValueError, match="dropout_keep_ratio"):
        FullyConnectedNet([5], dropout_keep_ratio=0)
    with pytest.raises(ValueError, match="positive"):
        FullyConnectedNet([5, 0])


def test_star_import_brings_the_layers_as_the_course_notebooks_expect():
    ns: dict = {}
    exec("from normgrad.classifiers.fc_net import *", ns)
    for name in (
        "FullyConnectedNet",
        "batchnorm_forward",
        "batchnorm_backward_alt",
        "layernorm_forward",
        "affine_forward",
        "affine_relu_forward",
        "dropout_forward",
        "softmax_loss",
        "relu_backward",
    ):
        assert callable(ns[name]), name
    cnn_ns: dict = {}
    exec("from normgrad.classifiers.cnn import *", cnn_ns)
    for name in (
        "ThreeLayerConvNet",
        "conv_forward_fast",
        "conv_relu_pool_forward",
        "spatial_batchnorm_forward",
        "spatial_groupnorm_forward",
        "conv_forward_naive",
    ):
        assert callable(cnn_ns[name]), name
