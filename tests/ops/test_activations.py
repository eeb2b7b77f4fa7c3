"""ReLU: finite differences away from the kink, F.relu parity, the x = 0 convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import relu_backward, relu_forward


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
    assert relu_backward(np.ones_like(x), cache).dtype == np.float32
    with pytest.raises(TypeError, match="floating dtype"):
        relu_forward(np.array([1, 2]))
    with pytest.raises(ValueError, match="dout must have shape"):
        relu_backward(np.ones((2, 2)), cache)
