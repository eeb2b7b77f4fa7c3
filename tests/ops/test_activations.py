"""ReLU (FD away from the kink, F.relu parity, x = 0) and sigmoid (FD, torch parity, extremes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import relu_backward, relu_forward, sigmoid_backward, sigmoid_forward


def _away_from_zero(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 2)])
def test_finite_differences(shape):
    report = check_layer(relu_forward, relu_backward, {"x": _away_from_zero(shape, 1)}, seed=2)
    assert report["dx"].rel_error < 1e-8, report["dx"].rel_error


def test_matches_torch_relu():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 4))
    x[0, 0, :2] = 0.0  # the kink: both sides take the derivative 0 there
    dout = rng.standard_normal(x.shape)
    out, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.relu(xt)
    yt.backward(torch.tensor(dout))
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    assert np.max(np.abs(dx - xt.grad.numpy())) < 1e-9
    assert np.all(dx[0, 0, :2] == 0)


def test_dtype_kept_and_errors():
    x = np.array([[-1.0, 2.0]], dtype=np.float32)
    out, cache = relu_forward(x)
    assert out.dtype == np.float32
    dout = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    assert relu_backward(dout, cache).dtype == np.float32
    with pytest.raises(TypeError, match="floating dtype"):
        relu_forward(np.array([1, 2]))
    with pytest.raises(ValueError, match="dout must have shape"):
        relu_backward(np.ones((2, 2)), cache)


# ---- sigmoid -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 2)])
def test_sigmoid_finite_differences(shape):
    x = 3.0 * np.random.default_rng(4).standard_normal(shape)
    report = check_layer(sigmoid_forward, sigmoid_backward, {"x": x}, seed=5)
    assert report["dx"].rel_error < 1e-8, report["dx"].rel_error


def test_sigmoid_matches_torch():
    rng = np.random.default_rng(6)
    x = 4.0 * rng.standard_normal((6, 7))
    dout = rng.standard_normal(x.shape)
    out, cache = sigmoid_forward(x)
    dx = sigmoid_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.sigmoid(xt)
    yt.backward(torch.tensor(dout))
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-15
    assert np.max(np.abs(dx - xt.grad.numpy())) < 1e-15


def test_sigmoid_is_stable_at_extremes_and_keeps_dtype():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with np.errstate(over="raise"):
        out, cache = sigmoid_forward(x)
    assert np.all(np.isfinite(out)) and out[2] == 0.5
    assert out[0] == 0.0 and out[-1] == 1.0
    positive = np.random.default_rng(2).uniform(0.1, 2.0, x.shape)  # sigmoid' >= 0
    assert np.all(sigmoid_backward(positive, cache) >= 0)
    x32 = x.astype(np.float32)
    out32, cache32 = sigmoid_forward(x32)
    assert out32.dtype == np.float32
    dout32 = np.random.default_rng(1).standard_normal(x32.shape).astype(np.float32)
    assert sigmoid_backward(dout32, cache32).dtype == np.float32
    with pytest.raises(TypeError, match="floating dtype"):
        sigmoid_forward(np.array([1, 2]))
    with pytest.raises(ValueError, match="dout must have shape"):
        sigmoid_backward(np.ones((2, 2)), cache)
