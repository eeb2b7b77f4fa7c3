"""The shared standardization over arbitrary axes: finite differences, torch, properties.

Every gradient test is float64 with a random upstream gradient, never ones_like.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from normgrad.gradient_check import check_layer
from normgrad.norms import core


def _core_layer(axes, eps, center):
    def forward(x):
        s = core.standardize(x, axes, eps, center=center)
        return s.xhat, s

    def backward(dxhat, s):
        return core.standardize_backward(dxhat, s.xhat, s.inv_std, axes, center=center)

    return forward, backward


def _torch_standardize(x: torch.Tensor, axes, eps, center):
    if center:
        xmu = x - x.mean(dim=axes, keepdim=True)
    else:
        xmu = x
    var = (xmu * xmu).mean(dim=axes, keepdim=True)
    return xmu / torch.sqrt(var + eps)


@pytest.mark.parametrize("center", [True, False], ids=["centred", "rms"])
@pytest.mark.parametrize(
    "shape, axes",
    [
        ((5, 4), (0,)),
        ((5, 4), (1,)),
        ((2, 3, 4), (0, 2)),
        ((2, 3, 2, 3), (1, 2, 3)),
        ((3, 2, 2, 2), (0, 2, 3)),
        ((6,), (0,)),
    ],
)
def test_finite_differences(shape, axes, center):
    rng = np.random.default_rng(7)
    x = 3.0 * rng.standard_normal(shape) + 4.0
    fwd, bwd = _core_layer(axes, 1e-5, center)
    report = check_layer(fwd, bwd, {"x": x}, seed=11)
    assert report["dx"].rel_error < 1e-8, report


@settings(max_examples=80, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
    log_scale=st.floats(-3, 3),
    offset=st.floats(-1e3, 1e3),
    center=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_matches_torch_and_keeps_invariants(shape, data, log_scale, offset, center, seed):
    ndim = len(shape)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, ndim - 1), min_size=1), "axes")))
    M = core.group_size(shape, axes)
    rng = np.random.default_rng(seed)
    x = 10.0**log_scale * rng.standard_normal(shape) + offset
    dxhat = rng.standard_normal(shape)
    eps = 1e-5

    s = core.standardize(x, axes, eps, center=center)
    dx = core.standardize_backward(dxhat, s.xhat, s.inv_std, axes, center=center)
    # Condition of the centring: an offset of 1e6 times the spread costs 6 digits of xhat
    # in any float64 implementation, so every bound below scales with it.
    spread = np.sqrt(s.var + eps)
    cond = 1.0 + np.max(np.abs(x), axis=axes, keepdims=True) / spread

    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_standardize(xt, axes, eps, center)
    yt.backward(torch.tensor(dxhat))
    assert np.all(np.abs(s.xhat - yt.detach().numpy()) <= 1e-14 * cond)
    # Elementwise, against the size of the terms of the formula: with one value per
    # group (or var >> eps in the RMS variant) dx is a difference of near-equal terms, and
    # both torch and this code round there; the error must stay at rounding level.
    terms = s.inv_std * (
        np.abs(dxhat)
        + np.abs(s.xhat) * np.mean(np.abs(dxhat * s.xhat), axis=axes, keepdims=True)
        + np.mean(np.abs(dxhat), axis=axes, keepdims=True)
    )
    assert np.all(np.abs(dx - xt.grad.numpy()) <= 1e-13 * cond * terms)

    # xhat has mean 0 (centred) and mean square var / (var + eps) over the axes.
    ms = np.mean(s.xhat**2, axis=axes, keepdims=True)
    np.testing.assert_allclose(ms, s.var / (s.var + eps), rtol=1e-12 * M, atol=1e-15)
    # sum_R dx * xhat-ish identity: sum_R dx * (x - mu) = eps/(var+eps) * sum_R dxhat * xhat.
    lhs = np.sum(dx * (x - s.mu), axis=axes, keepdims=True)
    rhs = eps / (s.var + eps) * np.sum(dxhat * s.xhat, axis=axes, keepdims=True)
    scale = np.sum(np.abs(dxhat * s.xhat), axis=axes, keepdims=True)
    assert np.all(np.abs(lhs - rhs) <= 1e-13 * M * cond * scale + 1e-300)
    if center:
        col = np.sum(dx, axis=axes, keepdims=True)
        assert np.all(np.abs(col) <= 1e-14 * M * cond * np.max(terms, axis=axes, keepdims=True))
        assert np.all(np.abs(s.xhat.mean(axis=axes, keepdims=True)) <= 1e-14 * cond)
    else:
        assert np.all(s.mu == 0)
    assert M == np.prod([shape[a] for a in axes])


def test_rms_variant_does_not_sum_to_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)) + 2.0
    s = core.standardize(x, (1,), 1e-5, center=False)
    dx = core.standardize_backward(
        rng.standard_normal((4, 6)), s.xhat, s.inv_std, (1,), center=False
    )
    assert np.linalg.norm(dx.sum(axis=1)) > 0.1 * np.linalg.norm(dx)


@pytest.mark.parametrize("mean_over_spread", [1e4, 1e5, 1e6])
@pytest.mark.parametrize("center", [True])
def test_float32_large_mean_normalizes(mean_over_spread, center):
    rng = np.random.default_rng(1)
    x32 = (mean_over_spread + rng.standard_normal((8, 64))).astype(np.float32)
    s32 = core.standardize(x32, (1,), 1e-5, center=center)
    s64 = core.standardize(x32.astype(np.float64), (1,), 1e-5, center=center)
    assert s32.xhat.dtype == np.float64  # accumulated wide; callers cast back
    assert np.max(np.abs(s32.xhat.astype(np.float32) - s64.xhat)) < 1e-3
    np.testing.assert_allclose(s32.xhat.std(axis=1), 1.0, atol=1e-3)


def test_sum_to_shape():
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(core.sum_to_shape(a, (4,)), a.sum(axis=(0, 1)))
    np.testing.assert_array_equal(core.sum_to_shape(a, (3, 1)), a.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(core.sum_to_shape(a, (1, 3, 4)), a.sum(axis=0, keepdims=True))
    np.testing.assert_array_equal(core.sum_to_shape(a, (2, 3, 4)), a)


def test_param_helpers_reject_bad_input():
    with pytest.raises(TypeError, match="dict"):
        core.param_dict([("eps", 1e-5)], "ln_param")
    assert core.param_dict(None, "ln_param") == {}
    with pytest.raises(ValueError, match=r"ln_param\['eps'\] must be a finite number >= 0"):
        core.read_eps({"eps": -1.0}, "ln_param")
    with pytest.raises(ValueError, match="dout must have shape"):
        core.check_dout(np.zeros((2, 3)), (3, 2))


# --- affine_norm_backward: the shared parameter gradients ----------------------------------


def _affine_norm_layer(axes, p_shape, scale, shift, center):
    """y = [gamma *] standardize(x) [+ beta] over ``axes``: (forward, backward) for check_layer.

    The forward takes exactly the differentiated inputs (x, then gamma and beta if present).
    """

    def forward(x, *params):
        it = iter(params)
        gamma = next(it) if scale else None
        beta = next(it) if shift else None
        st_ = core.standardize(x, axes, 1e-5, center=center)
        out = st_.xhat if gamma is None else gamma * st_.xhat
        if beta is not None:
            out = out + beta
        return out, (st_.xhat, st_.inv_std, gamma)

    def backward(dout, cache):
        xhat, inv_std, gamma = cache
        dx, dgamma, dbeta = core.affine_norm_backward(
            dout, xhat, inv_std, gamma, axes, p_shape, shift=shift, center=center
        )
        assert (dgamma is None) == (not scale) and (dbeta is None) == (not shift)
        grads = tuple(g for g in (dx, dgamma, dbeta) if g is not None)
        return grads if len(grads) > 1 else grads[0]

    return forward, backward


@pytest.mark.parametrize(
    "scale, shift", [(True, True), (True, False), (False, True), (False, False)]
)
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize(
    "x_shape, axes, p_shape",
    [
        ((4, 5), (1,), (5,)),  # layer norm: parameters over the reduced axis
        ((3, 4, 2, 2), (2, 3), (1, 4, 1, 1)),  # instance norm: per channel, reduced over H, W
        ((2, 2, 3, 2, 2), (2, 3, 4), (1, 2, 3, 1, 1)),  # group norm's (N, G, C/G, H, W) view
    ],
)
def test_affine_norm_backward_finite_differences(x_shape, axes, p_shape, scale, shift, center):
    rng = np.random.default_rng(21)
    inputs = {"x": 3.0 * rng.standard_normal(x_shape) + 2.0}
    if scale:
        inputs["gamma"] = 1.0 + 0.5 * rng.standard_normal(p_shape)
    if shift:
        inputs["beta"] = rng.standard_normal(p_shape)
    forward, backward = _affine_norm_layer(axes, p_shape, scale, shift, center)
    report = check_layer(forward, backward, inputs, seed=22)
    assert [g.name for g in report.grads] == [f"d{k}" for k in inputs]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def test_affine_norm_backward_casts_back_and_never_aliases_dout():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    st_ = core.standardize(x, (0, 1), 1e-5)  # every axis reduced: beta has x's shape
    xhat = st_.xhat.astype(np.float32)
    gamma = rng.standard_normal((3, 4)).astype(np.float32)
    dout = rng.standard_normal((3, 4))  # float64: no cast, so a reshape would be a view
    dx, dgamma, dbeta = core.affine_norm_backward(dout, xhat, st_.inv_std, gamma, (0, 1), (3, 4))
    assert dx.dtype == dgamma.dtype == dbeta.dtype == np.float32
    dout64 = dout.copy()
    _, _, dbeta64 = core.affine_norm_backward(dout64, st_.xhat, st_.inv_std, None, (0, 1), (3, 4))
    np.testing.assert_array_equal(dbeta64, dout64)  # nothing was broadcast: dbeta = dout
    assert not np.shares_memory(dbeta64, dout64)
