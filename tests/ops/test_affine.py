"""Affine layer: finite differences, F.linear parity, shapes, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import affine_backward, affine_forward


def _inputs(x_shape, M, seed=0):
    rng = np.random.default_rng(seed)
    D = int(np.prod(x_shape[1:]))
    return (rng.standard_normal(x_shape), rng.standard_normal((D, M)),
            rng.standard_normal(M), rng.standard_normal((x_shape[0], M)))


@pytest.mark.parametrize("x_shape", [(4, 5), (3, 2, 3), (2, 2, 3, 2)])
def test_finite_differences(x_shape):
    x, w, b, _ = _inputs(x_shape, 4, seed=1)
    report = check_layer(affine_forward, affine_backward, {"x": x, "w": w, "b": b}, seed=2)
    assert [g.name for g in report.grads] == ["dx", "dw", "db"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def test_course_values():
    # The course's check: out of affine_forward on linspace inputs, computed by hand here.
    N, d, M = 2, (4, 5, 6), 3
    D = int(np.prod(d))
    x = np.linspace(-0.1, 0.5, num=N * D).reshape(N, *d)
    w = np.linspace(-0.2, 0.3, num=D * M).reshape(D, M)
    b = np.linspace(-0.3, 0.1, num=M)
    out, _ = affine_forward(x, w, b)
    expected = np.array([[1.49834967, 1.70660132, 1.91485297],
                         [3.25553199, 3.5141327, 3.77273342]])
    assert np.max(np.abs(out - expected)) < 1e-8


@pytest.mark.parametrize("x_shape", [(6, 7), (3, 2, 4, 2)])
def test_matches_torch_linear(x_shape):
    x, w, b, dout = _inputs(x_shape, 5, seed=3)
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = F.linear(xt.reshape(x.shape[0], -1), wt.T, bt)  # torch's weight is (M, D)
    yt.backward(torch.tensor(dout))
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    assert dx.shape == x.shape
    for ours, theirs in [(dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert np.max(np.abs(ours - theirs.numpy())) < 1e-9


def test_errors():
    x, w, b, dout = _inputs((3, 2, 2), 4)
    with pytest.raises(ValueError, match=r"w must have shape \(D, M\) with D = 4"):
        affine_forward(x, w[:3], b)
    with pytest.raises(ValueError, match=r"w must be 2-D \(D, M\)"):
        affine_forward(x, w.reshape(2, 2, 4), b)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        affine_forward(x, w, b[:3])
    with pytest.raises(TypeError, match="numpy.ndarray"):
        affine_forward(x.tolist(), w, b)
    with pytest.raises(TypeError, match="floating dtype"):
        affine_forward(x.astype(np.int64), w, b)
    _, cache = affine_forward(x, w, b)
    with pytest.raises(ValueError, match="dout must have shape"):
        affine_backward(dout[:, :2], cache)
