"""ThreeLayerConvNet: the course's sanity checks and gradient checks, and its norm options."""

# The course seeds and draws with NumPy's global generator; these tests replay it.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

from normgrad.classifiers.cnn import ThreeLayerConvNet
from normgrad.gradient_check import eval_numerical_gradient, norm_rel_error, rel_error

# ConvolutionalNetworks.ipynb prints these for its gradient check (seed 231, input
# (3, 16, 16), 3 filters of 3x3, hidden 7, float64, h=1e-6). Kinks of ReLU and max pool
# at weight_scale 1e-3 make them large; "correct implementations may have relative
# errors up to the order of e-2".
COURSE_CONV_GRAD_ERRORS = {
    "W1": 1.380104e-04,
    "W2": 1.822723e-02,
    "W3": 3.064049e-04,
    "b1": 3.477652e-05,
    "b2": 2.516375e-03,
    "b3": 7.945660e-10,
}


def _grad_errors(model, X, y, h):
    _, grads = model.loss(X, y)
    out = {}
    for name in sorted(grads):
        f = lambda _: model.loss(X, y)[0]  # noqa: E731
        num = eval_numerical_gradient(f, model.params[name], verbose=False, h=h)
        out[name] = (rel_error(num, grads[name]), norm_rel_error(grads[name], num), grads[name])
    return out


def test_course_initial_loss_sanity_check():
    np.random.seed(231)
    model = ThreeLayerConvNet()
    X = np.random.randn(50, 3, 32, 32)
    y = np.random.randint(10, size=50)
    loss, grads = model.loss(X, y)
    assert abs(loss - np.log(10)) < 1e-3  # tiny weights: uniform scores
    assert sorted(grads) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert model.params["W1"].shape == (32, 3, 7, 7)
    assert model.params["W2"].shape == (32 * 16 * 16, 100)
    assert model.params["W1"].dtype == np.float32
    model.reg = 0.5
    loss_reg, _ = model.loss(X, y)
    assert loss_reg > loss + 0.1


def test_course_initial_loss_exact_with_the_notebooks_rng_sequence():
    # ConvolutionalNetworks.ipynb: the conv_relu sandwich cell (seed 231, four draws)
    # runs just before the sanity-check cell, which builds the model and then draws X, y.
    # The course's net does not cast X to dtype: float64 X against float32 weights
    # computes in float64, and the notebook prints exactly this loss.
    np.random.seed(231)
    np.random.randn(2, 3, 8, 8), np.random.randn(3, 3, 3, 3)  # x, w of the sandwich cell
    np.random.randn(3), np.random.randn(2, 3, 8, 8)  # b, dout
    model = ThreeLayerConvNet()
    N = 50
    X = np.random.randn(N, 3, 32, 32)
    y = np.random.randint(10, size=N)
    loss, grads = model.loss(X, y)
    assert loss == 2.302586071243987
    assert X.dtype == np.float64 and grads["W2"].dtype == np.float64
    assert model.params["W1"].dtype == np.float32  # the parameters keep dtype
    # Integer images (raw pixels) are still accepted: they are cast to dtype.
    scores = model.loss(np.random.randint(0, 256, size=(2, 3, 32, 32)))
    assert scores.shape == (2, 10) and scores.dtype == np.float32


def test_course_gradient_check_reproduces_printed_errors():
    np.random.seed(231)
    input_dim = (3, 16, 16)
    X = np.random.randn(2, *input_dim)
    y = np.random.randint(10, size=2)
    model = ThreeLayerConvNet(
        num_filters=3, filter_size=3, input_dim=input_dim, hidden_dim=7, dtype=np.float64
    )
    errors = _grad_errors(model, X, y, h=1e-6)
    for name, expected in COURSE_CONV_GRAD_ERRORS.items():
        assert errors[name][0] < 1.5 * expected, (name, errors[name][0], expected)
        assert errors[name][0] == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("normalization", [None, "batchnorm", "groupnorm"])
def test_strict_gradient_check_well_conditioned(normalization):
    np.random.seed(231)
    input_dim = (3, 8, 8)
    X = np.random.randn(3, *input_dim)
    y = np.random.randint(10, size=3)
    model = ThreeLayerConvNet(
        num_filters=4,
        filter_size=3,
        input_dim=input_dim,
        hidden_dim=7,
        weight_scale=0.3,
        reg=0.1,
        dtype=np.float64,
        normalization=normalization,
        num_groups=2,
    )
    for name, (_, err, ana) in _grad_errors(model, X, y, h=1e-6).items():
        if normalization == "batchnorm" and name == "b1":
            assert np.abs(ana).max() < 1e-12  # cancelled by the batch mean
            continue
        assert err < 1e-7, (name, err)


def test_normalization_parameters_and_modes():
    bn = ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=8, normalization="batchnorm")
    gn = ThreeLayerConvNet(
        input_dim=(1, 8, 8), num_filters=8, normalization="groupnorm", num_groups=4
    )
    assert bn.params["gamma1"].shape == (8,) and gn.params["gamma1"].shape == (1, 8, 1, 1)
    assert bn.params["W2"].shape == (8 * 4 * 4, 100)
    X = np.random.randn(5, 1, 8, 8)
    y = np.random.randint(10, size=5)
    bn.loss(X, y)
    assert "running_mean" in bn.bn_params[0] and bn.bn_params[0]["running_mean"].shape == (8,)
    assert bn.loss(X).shape == (5, 10) and bn.bn_params[0]["mode"] == "test"
    assert gn.loss(X).shape == (5, 10) and gn.bn_params == [{}]
    with pytest.raises(ValueError, match="num_groups"):
        ThreeLayerConvNet(num_filters=6, normalization="groupnorm", num_groups=4)
    with pytest.raises(ValueError, match="normalization"):
        ThreeLayerConvNet(normalization="layernorm")


def test_bad_input_shapes_and_labels():
    model = ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=2, hidden_dim=5)
    with pytest.raises(ValueError, match=r"expects X of shape \(N, 1, 8, 8\)"):
        model.loss(np.zeros((2, 3, 8, 8)), np.array([0, 1]))
    with pytest.raises(ValueError, match="reshape"):
        model.loss(np.zeros((2, 64)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.loss(np.zeros((2, 1, 8, 8)), np.array([0, 10]))


def test_supported_normalizations_come_from_layer_utils():
    from normgrad import layer_utils as lu
    from normgrad.classifiers import FullyConnectedNet
    from normgrad.tools import train

    assert ThreeLayerConvNet.NORMALIZATIONS == (None, *lu.CONV_NORMALIZATIONS)
    assert FullyConnectedNet.NORMALIZATIONS == (None, *lu.NORMALIZATIONS)
    assert train.NORMS_BY_MODEL == {"fc": ("none", *lu.FC_BLOCKS), "cnn": ("none", *lu.CONV_BLOCKS)}
    assert {"batchnorm", "layernorm"} <= set(lu.FC_BLOCKS)  # the course's two
    assert {"batchnorm", "groupnorm"} <= set(lu.CONV_BLOCKS)
    assert train.NORMS == tuple(dict.fromkeys(("none", *lu.FC_BLOCKS, *lu.CONV_BLOCKS)))
    with pytest.raises(
        ValueError,
        match="normalization must be one of None, 'batchnorm', "
        "'groupnorm'.*; got 'layernorm'.*FullyConnectedNet",
    ):
        ThreeLayerConvNet(normalization="layernorm")
    with pytest.raises(
        ValueError,
        match="normalization must be one of None, 'batchnorm', "
        "'layernorm'.*; got 'groupnorm'.*ThreeLayerConvNet",
    ):
        FullyConnectedNet([4], input_dim=3, normalization="groupnorm")
