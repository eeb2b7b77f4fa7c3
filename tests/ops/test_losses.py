"""Softmax and SVM losses: finite differences, F.cross_entropy / F.multi_margin_loss parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import softmax_loss, svm_loss


def _as_layer(loss_fn, y):
    """The loss as a layer for check_layer: out = loss (0-d), backward = dout * dx."""

    def forward(x):
        loss, dx = loss_fn(x, y)
        return np.array(loss), dx

    return forward, lambda dout, dx: dout * dx


def _scores(N, C, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, C)), rng.integers(0, C, size=N)


def _svm_scores(N, C, seed):
    """Scores whose hinge margins all stay 0.05 away from 0, so FD never straddles a kink."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, size=N)
    while True:
        x = rng.standard_normal((N, C))
        m = x - x[np.arange(N), y][:, None] + 1.0
        m[np.arange(N), y] = 1.0
        if np.min(np.abs(m)) > 0.05:
            return x, y


@pytest.mark.parametrize("N, C", [(6, 4), (10, 3)])
def test_softmax_finite_differences(N, C):
    x, y = _scores(N, C, seed=1)
    fwd, bwd = _as_layer(softmax_loss, y)
    report = check_layer(fwd, bwd, {"x": x}, seed=2)
    assert report["dx"].rel_error < 1e-8, report["dx"].rel_error


@pytest.mark.parametrize("N, C", [(6, 4), (8, 5)])
def test_svm_finite_differences(N, C):
    x, y = _svm_scores(N, C, seed=3)
    fwd, bwd = _as_layer(svm_loss, y)
    report = check_layer(fwd, bwd, {"x": x}, seed=4)
    assert report["dx"].rel_error < 1e-8, report["dx"].rel_error


def _torch_loss_and_grad(fn, x, y, g):
    xt = torch.tensor(x, requires_grad=True)
    loss = fn(xt, torch.tensor(y))
    (loss * g).backward()
    return float(loss.detach()), xt.grad.numpy()


@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])  # 1000: exp would overflow unshifted
def test_softmax_matches_torch_cross_entropy(scale):
    x, y = _scores(50, 10, seed=5)
    x = scale * x
    g = -1.7  # a random-ish upstream gradient for the scalar loss
    loss, dx = softmax_loss(x, y)
    t_loss, t_dx = _torch_loss_and_grad(F.cross_entropy, x, y, g)
    assert np.isfinite(loss)
    assert abs(loss - t_loss) < 1e-10 * max(1.0, abs(t_loss))
    assert np.max(np.abs(g * dx - t_dx)) < 1e-9


def test_svm_matches_torch_multi_margin_loss():
    N, C = 50, 10
    x, y = _scores(N, C, seed=6)
    g = 0.9
    loss, dx = svm_loss(x, y)
    # torch divides each row's hinge sum by C as well as averaging over N
    t_loss, t_dx = _torch_loss_and_grad(
        lambda a, b: C * F.multi_margin_loss(a, b, p=1, margin=1.0), x, y, g
    )
    assert abs(loss - t_loss) < 1e-10
    assert np.max(np.abs(g * dx - t_dx)) < 1e-9


def test_course_sanity_values():
    # Small random scores: softmax loss ~ log(C), SVM loss ~ C - 1 (every hinge open at ~1).
    N, C = 2000, 10
    rng = np.random.default_rng(7)
    x = 0.001 * rng.standard_normal((N, C))
    y = rng.integers(0, C, size=N)
    assert abs(softmax_loss(x, y)[0] - np.log(C)) < 1e-3
    assert abs(svm_loss(x, y)[0] - (C - 1)) < 1e-2


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_gradient_rows(loss_fn):
    # softmax rows of dx sum to 0 (probabilities minus a one-hot); so do the SVM's
    x, y = _scores(7, 5, seed=8)
    _, dx = loss_fn(x, y)
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-15)


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_errors(loss_fn):
    x, y = _scores(4, 3, seed=9)
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, C\) = \[0, 3\)"):
        loss_fn(x, np.array([0, 1, 3, 2]))
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, C\)"):
        loss_fn(x, np.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) = \(4,\)"):
        loss_fn(x, y[:3])
    with pytest.raises(ValueError, match=r"y must have shape \(N,\)"):
        loss_fn(x, y[:, None])
    with pytest.raises(TypeError, match="integer class labels"):
        loss_fn(x, y.astype(np.float64))
    with pytest.raises(TypeError, match="integer class labels; got dtype bool"):
        loss_fn(x, y > 0)
    with pytest.raises(TypeError, match="integer class labels; got dtype float64"):
        loss_fn(x, [0.0, 1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, C\)"):
        loss_fn(x, [0, 1, 3, 2])  # a list gets the same range check
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, C\)"):
        loss_fn(x[None], y)
    with pytest.raises(TypeError, match="floating dtype"):
        loss_fn(x.astype(np.int64), y)


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
@pytest.mark.parametrize(
    "dtype",
    [
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
        "list",
        "tuple",
    ],
)
def test_labels_as_lists_or_any_integer_dtype(loss_fn, dtype):
    x, y = _scores(6, 4, seed=10)
    ref_loss, ref_dx = loss_fn(x, y.astype(np.int64))
    labels = (
        y.tolist()
        if dtype == "list"
        else tuple(int(k) for k in y)
        if dtype == "tuple"
        else y.astype(dtype)
    )
    loss, dx = loss_fn(x, labels)
    assert loss == ref_loss
    np.testing.assert_array_equal(dx, ref_dx)
