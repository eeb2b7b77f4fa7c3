"""Layer norm, course (N, D) and PyTorch-style trailing normalized_shape.

Every gradient test is float64 with a random upstream gradient, never ones_like.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import (
    layernorm_backward,
    layernorm_forward,
    layernorm_nd_backward,
    layernorm_nd_forward,
)

# --- finite differences ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 5), (1, 6), (7, 3), (5, 8)])
def test_layernorm_finite_differences(shape, nh):
    x, gamma, beta, _ = nh.inputs(shape, shape[1:], seed=1)
    report = check_layer(
        lambda x, g, b: layernorm_forward(x, g, b, {"eps": 1e-5}),
        layernorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=2,
    )
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


@pytest.mark.parametrize(
    "x_shape, S", [((3, 5), (5,)), ((2, 3, 4), (3, 4)), ((2, 2, 2, 3), (2, 3)), ((2, 3), (2, 3))]
)
def test_layernorm_nd_finite_differences(x_shape, S, nh):
    x, gamma, beta, _ = nh.inputs(x_shape, S, seed=3)
    report = check_layer(
        lambda x, g, b: layernorm_nd_forward(x, g, b, S),
        layernorm_nd_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=4,
    )
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def test_layernorm_nd_without_affine_finite_differences(nh):
    x, _, _, _ = nh.inputs((3, 2, 3), (2, 3), seed=5)

    def backward(dout, cache):
        dx, dgamma, dbeta = layernorm_nd_backward(dout, cache)
        assert dgamma is None and dbeta is None
        return dx

    report = check_layer(
        lambda x: layernorm_nd_forward(x, None, None, (2, 3)), backward, {"x": x}, seed=6
    )
    assert report["dx"].rel_error < 1e-8


def test_one_feature_gives_beta_and_no_gradient(nh):
    # D = 1: xhat = 0 whatever x is, so y = beta and dx = 0 (a relative check is 0 / 0).
    x, gamma, beta, dout = nh.inputs((4, 1), (1,), seed=15)
    out, cache = layernorm_forward(x, gamma, beta, {})
    np.testing.assert_array_equal(out, np.broadcast_to(beta, (4, 1)))
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert np.max(np.abs(dx)) < 1e-12 and np.all(dgamma == 0)
    np.testing.assert_allclose(dbeta, dout.sum(axis=0))


def test_two_features_give_dx_of_order_eps(nh):
    # D = 2: xhat = +-sqrt(var / (var + eps)) whatever x is, so dx is O(eps) and a
    # relative finite-difference check measures rounding. Check it in absolute terms.
    x, gamma, beta, dout = nh.inputs((3, 2), (2,), seed=1)
    report = check_layer(
        lambda x, g, b: layernorm_forward(x, g, b, {}),
        layernorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=2,
    )
    assert report["dx"].abs_error < 1e-12
    assert report["dgamma"].rel_error < 1e-8 and report["dbeta"].rel_error < 1e-8
    _, cache = layernorm_forward(x, gamma, beta, {})
    dx, _, _ = layernorm_backward(dout, cache)
    assert 0 < np.max(np.abs(dx)) < 1e-5


# --- PyTorch parity ----------------------------------------------------------------


def _torch_layer_norm(x, gamma, beta, S, dout, eps):
    xt = torch.tensor(x, requires_grad=True)
    gt = None if gamma is None else torch.tensor(gamma, requires_grad=True)
    bt = None if beta is None else torch.tensor(beta, requires_grad=True)
    yt = F.layer_norm(xt, S, gt, bt, eps)
    yt.backward(torch.tensor(dout))
    grads = [xt.grad.numpy()] + [None if t is None else t.grad.numpy() for t in (gt, bt)]
    return yt.detach().numpy(), grads


@pytest.mark.parametrize(
    "x_shape, S",
    [
        ((4, 7), (7,)),
        ((2, 3, 4, 5), (5,)),
        ((2, 3, 4, 5), (4, 5)),
        ((2, 3, 4, 5), (3, 4, 5)),
        ((6, 4), (6, 4)),
    ],
)
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_layernorm_nd_matches_torch(x_shape, S, eps, nh):
    x, gamma, beta, dout = nh.inputs(x_shape, S, seed=7)
    out, cache = layernorm_nd_forward(x, gamma, beta, S, {"eps": eps})
    grads = layernorm_nd_backward(dout, cache)
    tout, tgrads = _torch_layer_norm(x, gamma, beta, S, dout, eps)
    assert nh.max_abs(out, tout) < 1e-10
    for ours, theirs in zip(grads, tgrads):
        assert ours.shape == theirs.shape
        assert nh.max_abs(ours, theirs) < 1e-9


@pytest.mark.parametrize("has_gamma, has_beta", [(False, False), (True, False), (False, True)])
def test_layernorm_nd_optional_affine_matches_torch(has_gamma, has_beta, nh):
    x, gamma, beta, dout = nh.inputs((3, 4, 5), (4, 5), seed=8)
    gamma = gamma if has_gamma else None
    beta = beta if has_beta else None
    out, cache = layernorm_nd_forward(x, gamma, beta, (4, 5))
    grads = layernorm_nd_backward(dout, cache)
    tout, tgrads = _torch_layer_norm(x, gamma, beta, (4, 5), dout, 1e-5)
    assert nh.max_abs(out, tout) < 1e-10
    for ours, theirs in zip(grads, tgrads):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert nh.max_abs(ours, theirs) < 1e-9


def test_course_layernorm_matches_torch_and_int_shape(nh):
    x, gamma, beta, dout = nh.inputs((6, 9), (9,), seed=9)
    out, cache = layernorm_forward(x, gamma, beta, {"eps": 1e-5})
    grads = layernorm_backward(dout, cache)
    tout, tgrads = _torch_layer_norm(x, gamma, beta, (9,), dout, 1e-5)
    assert nh.max_abs(out, tout) < 1e-10
    for ours, theirs in zip(grads, tgrads):
        assert nh.max_abs(ours, theirs) < 1e-9
    out_nd, _ = layernorm_nd_forward(x, gamma, beta, 9, {"eps": 1e-5})
    np.testing.assert_array_equal(out, out_nd)


# --- semantics and invariants ------------------------------------------------------


def test_rows_are_standardized_and_train_equals_test(nh):
    x, _, _, _ = nh.inputs((5, 8), (8,), seed=10)
    ones, zeros = np.ones(8), np.zeros(8)
    out, _ = layernorm_forward(x, ones, zeros, {"mode": "train"})
    out_test, _ = layernorm_forward(x, ones, zeros, {"mode": "test"})
    np.testing.assert_array_equal(out, out_test)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=1), 1.0, atol=1e-5)


def test_dx_sums_to_zero_per_sample_and_eps_relation(nh):
    x, gamma, beta, dout = nh.inputs((6, 7), (7,), seed=11)
    eps = 1e-2  # large, so the eps term of sum dx * xhat is far from rounding
    _, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
    dx, _, _ = layernorm_backward(dout, cache)
    assert np.max(np.abs(dx.sum(axis=1))) < 1e-12 * np.abs(dx).sum()
    # sum_d dx * xhat = eps / (var + eps)^(3/2) * sum_d dxhat * xhat, per sample.
    var = x.var(axis=1)
    dxhat = dout * gamma
    expected = eps / (var + eps) ** 1.5 * np.sum(dxhat * cache.xhat, axis=1)
    np.testing.assert_allclose(np.sum(dx * cache.xhat, axis=1), expected, rtol=1e-9)
    assert np.max(np.abs(expected)) > 1e-6  # not trivially zero


def test_forward_reads_but_never_modifies_its_arguments(nh):
    x, gamma, beta, dout = nh.inputs((3, 4), (4,), seed=12)
    param = {"eps": 1e-5, "mode": "train"}
    saved = [a.copy() for a in (x, gamma, beta)]
    saved_param = copy.deepcopy(param)
    out, cache = layernorm_forward(x, gamma, beta, param)
    layernorm_backward(dout, cache)
    for a, b in zip((x, gamma, beta), saved):
        np.testing.assert_array_equal(a, b)
    assert param == saved_param


def test_float32_dtypes_round_trip(nh):
    x, gamma, beta, dout = (a.astype(np.float32) for a in nh.inputs((4, 5), (5,), seed=14))
    out, cache = layernorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert out.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == np.float32


# --- bad input -----------------------------------------------------------------------


def test_x_not_2d_points_to_the_nd_version():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, D\).*layernorm_nd_forward"):
        layernorm_forward(x, np.ones(3), np.zeros(3), {})


@pytest.mark.parametrize("which", ["gamma", "beta"])
def test_wrong_gamma_or_beta_shape(which, nh):
    x, gamma, beta, _ = nh.inputs((3, 4), (4,))
    params = {"gamma": gamma, "beta": beta, which: np.ones(5)}
    param = {"eps": 1e-5}
    with pytest.raises(ValueError, match=rf"{which} must have shape \(4,\).*got \(5,\)"):
        layernorm_forward(x, params["gamma"], params["beta"], param)
    assert param == {"eps": 1e-5}
    nd = {"gamma": None, "beta": None, which: np.ones(4)}
    with pytest.raises(ValueError, match=rf"{which} must have shape \(3, 4\)"):
        layernorm_nd_forward(np.zeros((2, 3, 4)), nd["gamma"], nd["beta"], (3, 4))


def test_nd_shape_errors():
    with pytest.raises(ValueError, match=r"x must end in normalized_shape \(4, 3\)"):
        layernorm_nd_forward(np.zeros((2, 3, 4)), None, None, (4, 3))
    with pytest.raises(ValueError, match="non-empty tuple of positive ints"):
        layernorm_nd_forward(np.zeros((2, 3)), None, None, ())
    with pytest.raises(TypeError, match="normalized_shape must be an int or a tuple"):
        layernorm_nd_forward(np.zeros((2, 3)), None, None, 3.0)
    with pytest.raises(TypeError, match="floating dtype"):
        layernorm_forward(np.zeros((2, 3), dtype=int), np.ones(3), np.zeros(3), {})
    with pytest.raises(ValueError, match=r"ln_param\['eps'\]"):
        layernorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), {"eps": -1})
    _, cache = layernorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3), {})
    with pytest.raises(ValueError, match="dout must have shape"):
        layernorm_backward(np.ones((3, 2)), cache)


@pytest.mark.parametrize("xdtype", [np.float64, np.float32])
@pytest.mark.parametrize("pdtype", [np.int64, np.int16, np.bool_])
def test_integer_gamma_beta_are_cast_to_x_dtype(xdtype, pdtype):
    rng = np.random.default_rng(22)
    x = (4 * rng.standard_normal((5, 3)) + 10).astype(xdtype)
    gamma, beta = np.asarray([3, 4, 5]).astype(pdtype), np.asarray([6, 7, 0]).astype(pdtype)
    out, cache = layernorm_forward(x, gamma, beta, {})
    ref, ref_cache = layernorm_forward(x, gamma.astype(xdtype), beta.astype(xdtype), {})
    assert out.dtype == xdtype
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(x.shape).astype(xdtype)
    grads = layernorm_backward(dout, cache)
    for ours, theirs in zip(grads, layernorm_backward(dout, ref_cache)):
        assert ours.dtype == xdtype  # floating, never truncated to int
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(grads[1], np.trunc(grads[1]))


def test_nd_integer_gamma_or_beta_alone():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 3, 4))
    g = np.arange(12).reshape(3, 4)
    for gamma, beta in ((g, None), (None, g), (g, g.astype(np.float32))):
        out, cache = layernorm_nd_forward(x, gamma, beta, (3, 4))
        fl = [
            None if p is None else p.astype(np.float64) if p.dtype.kind == "i" else p
            for p in (gamma, beta)
        ]
        ref, ref_cache = layernorm_nd_forward(x, fl[0], fl[1], (3, 4))
        np.testing.assert_array_equal(out, ref)
        dout = rng.standard_normal(x.shape)
        for ours, theirs in zip(
            layernorm_nd_backward(dout, cache), layernorm_nd_backward(dout, ref_cache)
        ):
            if theirs is None:
                assert ours is None
            else:
                assert ours.dtype == theirs.dtype and np.issubdtype(ours.dtype, np.floating)
                np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(TypeError, match="beta must have a real numeric dtype"):
        layernorm_nd_forward(x, g, g.astype(str), (3, 4))
