"""RMS norm: FD, F.rms_norm parity, the invariant it loses and the one it keeps, errors.

Every gradient test is float64 with a random upstream gradient, never ones_like.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import rmsnorm_backward, rmsnorm_forward


@pytest.mark.parametrize(
    "x_shape, g_shape", [((4, 6), (6,)), ((2, 3, 4), (3, 4)), ((5,), (5,)), ((2, 2, 3), (3,))]
)
def test_finite_differences(x_shape, g_shape, nh):
    x, gamma, _ = nh.rms_inputs(x_shape, g_shape, seed=1)
    report = check_layer(
        lambda x, g: rmsnorm_forward(x, g, {"eps": 1e-5}),
        rmsnorm_backward,
        {"x": x, "gamma": gamma},
        seed=2,
    )
    assert [g.name for g in report.grads] == ["dx", "dgamma"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


@pytest.mark.parametrize(
    "x_shape, g_shape",
    [((4, 7), (7,)), ((2, 3, 4, 5), (5,)), ((2, 3, 4, 5), (4, 5)), ((2, 3, 4, 5), (3, 4, 5))],
)
@pytest.mark.parametrize("eps", [1e-6, 1e-3])
def test_matches_torch_rms_norm(x_shape, g_shape, eps, nh):
    x, gamma, dout = nh.rms_inputs(x_shape, g_shape, seed=3)
    out, cache = rmsnorm_forward(x, gamma, {"eps": eps})
    dx, dgamma = rmsnorm_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    yt = F.rms_norm(xt, g_shape, gt, eps)
    yt.backward(torch.tensor(dout))
    assert nh.max_abs(out, yt.detach().numpy()) < 1e-10
    assert nh.max_abs(dx, xt.grad.numpy()) < 1e-9
    assert nh.max_abs(dgamma, gt.grad.numpy()) < 1e-9


def test_eps_none_is_torch_default(nh):
    x, gamma, dout = nh.rms_inputs((3, 8), (8,), seed=4, offset=0.0)
    x *= 1e-7  # small enough that eps matters
    out, cache = rmsnorm_forward(x, gamma, {"eps": None})
    dx, _ = rmsnorm_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.rms_norm(xt, (8,), torch.tensor(gamma))  # eps=None: finfo(float64).eps
    yt.backward(torch.tensor(dout))
    assert nh.max_abs(out, yt.detach().numpy()) < 1e-10
    assert np.linalg.norm(dx - xt.grad.numpy()) < 1e-9 * np.linalg.norm(dx)


def test_sum_dx_is_not_zero_but_dx_is_orthogonal_to_x_at_eps_zero(nh):
    x, gamma, dout = nh.rms_inputs((5, 6), (6,), seed=5)
    _, cache = rmsnorm_forward(x, gamma, {"eps": 0.0})
    dx, _ = rmsnorm_backward(dout, cache)
    # RMS norm does not centre, so nothing forces sum_d dx = 0 ...
    assert np.all(np.abs(dx.sum(axis=1)) > 1e-6)
    assert np.linalg.norm(dx.sum(axis=1)) > 0.05 * np.linalg.norm(dx)
    # ... it is invariant to scaling x instead, so dx is orthogonal to x (Euler).
    assert np.max(np.abs(np.sum(dx * x, axis=1))) < 1e-12 * np.abs(dx * x).sum()


def test_sum_dx_x_relation_with_eps(nh):
    x, gamma, dout = nh.rms_inputs((5, 6), (6,), seed=6, offset=0.0)
    x *= 0.05  # ms comparable to eps, so the eps term is large
    eps = 1e-3
    _, cache = rmsnorm_forward(x, gamma, {"eps": eps})
    dx, _ = rmsnorm_backward(dout, cache)
    ms = np.mean(x * x, axis=1)
    expected = eps / (ms + eps) * np.sum(dout * gamma * cache.xhat, axis=1)
    np.testing.assert_allclose(np.sum(dx * x, axis=1), expected, rtol=1e-10)
    assert np.min(np.abs(expected)) > 1e-4


def test_not_shift_invariant_but_scale_invariant(nh):
    x, gamma, _ = nh.rms_inputs((3, 5), (5,), seed=7)
    out, _ = rmsnorm_forward(x, gamma, {"eps": 0.0})
    scaled, _ = rmsnorm_forward(7.5 * x, gamma, {"eps": 0.0})
    shifted, _ = rmsnorm_forward(x + 1.0, gamma, {"eps": 0.0})
    np.testing.assert_allclose(scaled, out, rtol=1e-13)
    assert nh.max_abs(shifted, out) > 1e-2
    np.testing.assert_allclose(np.mean((out / gamma) ** 2, axis=1), 1.0, rtol=1e-13)


def test_forward_never_modifies_its_arguments(nh):
    x, gamma, dout = nh.rms_inputs((3, 4), (4,), seed=8)
    saved = [a.copy() for a in (x, gamma)]
    param = {"eps": 1e-5}
    _, cache = rmsnorm_forward(x, gamma, param)
    rmsnorm_backward(dout, cache)
    for a, b in zip((x, gamma), saved):
        np.testing.assert_array_equal(a, b)
    assert param == {"eps": 1e-5}


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("g_shape", [(5,), (3, 6), (1, 6), ()])
def test_gamma_must_match_trailing_axes(g_shape):
    x = np.ones((4, 6))
    param = {"eps": 1e-5}
    saved = copy.deepcopy(param)
    with pytest.raises(ValueError, match="gamma's shape must equal the trailing axes of x"):
        rmsnorm_forward(x, np.ones(g_shape), param)
    assert param == saved


def test_type_errors():
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        rmsnorm_forward([[1.0, 2.0]], np.ones(2), {})
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        rmsnorm_forward(np.ones((2, 2), dtype=int), np.ones(2), {})
    with pytest.raises(TypeError, match="gamma must have a real numeric dtype"):
        rmsnorm_forward(np.ones((2, 2)), np.ones(2, dtype=complex), {})
    with pytest.raises(ValueError, match=r"rms_param\['eps'\]"):
        rmsnorm_forward(np.ones((2, 2)), np.ones(2), {"eps": -1e-5})


@pytest.mark.parametrize("xdtype", [np.float64, np.float32])
@pytest.mark.parametrize("gdtype", [np.int64, np.int32, np.bool_])
def test_integer_gamma_is_cast_to_x_dtype(xdtype, gdtype):
    rng = np.random.default_rng(21)
    x = rng.standard_normal((4, 3)).astype(xdtype)
    gamma = np.asarray([3, 0, 5]).astype(gdtype)
    out, cache = rmsnorm_forward(x, gamma, {})
    ref, ref_cache = rmsnorm_forward(x, gamma.astype(xdtype), {})
    assert out.dtype == xdtype
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(x.shape).astype(xdtype)
    dx, dgamma = rmsnorm_backward(dout, cache)
    assert dx.dtype == dgamma.dtype == xdtype  # floating, never truncated to int
    for ours, theirs in zip((dx, dgamma), rmsnorm_backward(dout, ref_cache)):
        np.testing.assert_array_equal(ours, theirs)
    assert gamma.dtype == gdtype  # read, never modified
