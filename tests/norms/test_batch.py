"""Batch norm: forward semantics, the three backward routes, invariants, numerics, errors.

Every gradient test is float64 with a random upstream gradient (never ones: for batch
norm a ones upstream gradient makes the true dx exactly zero and hides every bug).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from normgrad.gradient_check import check_layer, norm_rel_error
from normgrad.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_backward_paper,
    batchnorm_forward,
    torch_bn_param,
)
from normgrad.norms.batch import ROUTES

ROUTE_FUNCS = [batchnorm_backward, batchnorm_backward_paper, batchnorm_backward_alt]
ROUTE_IDS = ["graph", "paper", "alt"]
# N = 2 and D = 1 are the edge cases; the rest are odd sizes and the course's (4, 5).
SHAPES = [(2, 1), (2, 5), (3, 7), (5, 1), (4, 5), (13, 6), (31, 17)]


def course_inputs(N: int, D: int, seed: int = 0):
    """x = 5 randn + 12 as in the course, random gamma, beta and upstream gradient."""
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal((N, D)) + 12.0
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal((N, D)) * 0.7 + 0.3  # not centred, not in span of x
    return x, gamma, beta, dout


def train_fwd(x, gamma, beta, eps=1e-5):
    return batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})


# --- finite differences ------------------------------------------------------------


@pytest.mark.parametrize("backward", ROUTE_FUNCS, ids=ROUTE_IDS)
@pytest.mark.parametrize("shape", [(4, 5), (7, 3), (13, 6), (3, 1)])
def test_every_route_matches_finite_differences(backward, shape):
    x, gamma, beta, _ = course_inputs(*shape, seed=1)
    report = check_layer(train_fwd, backward, {"x": x, "gamma": gamma, "beta": beta}, seed=3)
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]


@pytest.mark.parametrize("backward", ROUTE_FUNCS, ids=ROUTE_IDS)
def test_test_mode_backward_matches_finite_differences(backward):
    rng = np.random.default_rng(2)
    D = 4
    param = {
        "mode": "test",
        "running_mean": rng.standard_normal(D),
        "running_var": rng.uniform(0.5, 2.0, D),
    }
    x = rng.standard_normal((6, D))

    def fwd(x, gamma, beta):
        return batchnorm_forward(x, gamma, beta, dict(param))

    report = check_layer(
        fwd, backward, {"x": x, "gamma": rng.standard_normal(D), "beta": rng.standard_normal(D)}
    )
    assert report.passed, report


# --- agreement between routes and with PyTorch ------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_routes_agree_with_each_other(shape):
    x, gamma, beta, dout = course_inputs(*shape, seed=4)
    _, cache = train_fwd(x, gamma, beta)
    ref = batchnorm_backward_alt(dout, cache)
    for backward in (batchnorm_backward, batchnorm_backward_paper):
        for got, want in zip(backward(dout, cache), ref):
            assert norm_rel_error(got, want) < 1e-9


def torch_batchnorm(x, gamma, beta, dout, eps=1e-5):
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y = F.batch_norm(tx, None, None, tg, tb, training=True, eps=eps)
    y.backward(torch.tensor(dout))
    return y.detach().numpy(), tx.grad.numpy(), tg.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("backward", ROUTE_FUNCS, ids=ROUTE_IDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_autograd(backward, shape):
    x, gamma, beta, dout = course_inputs(*shape, seed=5)
    out, cache = train_fwd(x, gamma, beta)
    t_out, t_dx, t_dgamma, t_dbeta = torch_batchnorm(x, gamma, beta, dout)
    dx, dgamma, dbeta = backward(dout, cache)
    assert norm_rel_error(out, t_out) < 1e-12
    assert norm_rel_error(dgamma, t_dgamma) < 1e-10
    assert norm_rel_error(dbeta, t_dbeta) < 1e-10
    if shape[0] > 2:
        assert norm_rel_error(dx, t_dx) < 1e-10
    else:  # dx is O(eps) at N = 2: both sides carry ~1e-16 of the terms that cancel in it
        assert norm_rel_error(dx, t_dx) < 1e-9
        assert np.max(np.abs(dx - t_dx)) < 1e-14 * term_scale(dout, cache).max()


# --- invariants -----------------------------------------------------------------------


def term_scale(dout, cache):
    """sum_i |gamma dout_i / std|: the size of the terms whose sum cancels to sum_i dx_i."""
    return np.abs(dout * cache.gamma / np.sqrt(cache.var + cache.eps)).sum(axis=0)  # (D,)


@pytest.mark.parametrize("backward", ROUTE_FUNCS, ids=ROUTE_IDS)
@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (9, 4), (64, 8)])
def test_dx_sums_to_zero_per_feature(backward, shape):
    x, gamma, beta, dout = course_inputs(*shape, seed=6)
    _, cache = train_fwd(x, gamma, beta)
    dx, _, _ = backward(dout, cache)
    total = np.abs(dx.sum(axis=0))  # (D,)
    assert np.all(total <= 1e-10 * term_scale(dout, cache))
    if shape[0] > 2:
        # At N = 2, dx itself is O(eps) (xhat = +-sqrt(var / (var + eps)) barely moves), so
        # only the scale of the cancelling terms is meaningful; from N = 3 on, |dx| is too.
        assert np.all(total <= 1e-10 * np.abs(dx).sum(axis=0))


@pytest.mark.parametrize("backward", ROUTE_FUNCS, ids=ROUTE_IDS)
def test_dx_orthogonal_to_xhat_exactly_at_eps_zero(backward):
    x, gamma, beta, dout = course_inputs(11, 5, seed=7)
    _, cache = train_fwd(x, gamma, beta, eps=0.0)
    dx, _, _ = backward(dout, cache)
    scale = np.abs(dx * cache.xhat).sum(axis=0)
    assert np.all(np.abs(np.sum(dx * cache.xhat, axis=0)) <= 1e-10 * scale)


@pytest.mark.parametrize("backward", ROUTE_FUNCS, ids=ROUTE_IDS)
def test_dx_dot_xhat_matches_its_exact_value_for_positive_eps(backward):
    # sum_i dx_i xhat_i = gamma * dgamma * eps / (var + eps)^(3/2) (docs/derivation.md).
    rng = np.random.default_rng(8)
    x = 0.05 * rng.standard_normal((9, 4))  # var ~ 2.5e-3, so eps = 1e-3 matters
    gamma, beta, dout = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal((9, 4))
    eps = 1e-3
    _, cache = train_fwd(x, gamma, beta, eps=eps)
    dx, dgamma, _ = backward(dout, cache)
    var = x.var(axis=0)
    expected = gamma * dgamma * eps / (var + eps) ** 1.5  # (D,)
    got = np.sum(dx * cache.xhat, axis=0)
    assert np.all(np.abs(expected) > 1e-3)  # the effect is real, not rounding
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_ones_upstream_gradient_gives_zero_dx():
    # The one deliberate ones_like in the suite: it pins down *why* no gradient test uses
    # it. With dout = 1 the true dx is exactly zero, so a wrong route could pass.
    x, gamma, beta, _ = course_inputs(6, 3, seed=9)
    _, cache = train_fwd(x, gamma, beta)
    dx, _, _ = batchnorm_backward_alt(np.ones_like(x), cache)
    assert np.max(np.abs(dx)) < 1e-12


# --- forward semantics ------------------------------------------------------------------


def test_train_forward_normalizes_with_biased_variance():
    x, gamma, beta, _ = course_inputs(50, 3, seed=10)
    out, _ = train_fwd(x, gamma, beta)
    expected = gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + beta
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_course_running_stats_and_test_mode():
    rng = np.random.default_rng(11)
    D = 3
    gamma, beta = np.ones(D), np.zeros(D)
    param = {"mode": "train"}
    rm, rv = np.zeros(D), np.zeros(D)
    for _ in range(5):
        x = 2.0 * rng.standard_normal((8, D)) + 1.0
        batchnorm_forward(x, gamma, beta, param)
        rm = 0.9 * rm + 0.1 * x.mean(0)
        rv = 0.9 * rv + 0.1 * x.var(0)  # biased, as the course
    np.testing.assert_allclose(param["running_mean"], rm, rtol=1e-14)
    np.testing.assert_allclose(param["running_var"], rv, rtol=1e-14)
    assert "num_batches_tracked" not in param  # course dicts stay course-shaped
    param["mode"] = "test"
    x = rng.standard_normal((4, D))
    out, _ = batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_allclose(out, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)


def test_running_stats_created_as_zeros_of_x_dtype():
    x = np.random.default_rng(12).standard_normal((4, 3)).astype(np.float32)
    param = {"mode": "train", "momentum": 1.0}
    batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), param)
    assert param["running_mean"].dtype == np.float32
    np.testing.assert_array_equal(param["running_mean"], np.zeros(3, np.float32))


def test_forward_leaves_inputs_untouched():
    x, gamma, beta, dout = course_inputs(5, 4, seed=13)
    saved = [a.copy() for a in (x, gamma, beta, dout)]
    _, cache = train_fwd(x, gamma, beta)
    for backward in ROUTE_FUNCS:
        backward(dout, cache)
    for a, b in zip((x, gamma, beta, dout), saved):
        np.testing.assert_array_equal(a, b)


def test_routes_registry_names_every_route():
    assert list(ROUTES) == ROUTE_IDS
    assert list(ROUTES.values()) == ROUTE_FUNCS


# --- float32 numerics ---------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [1e4, 1e6])
def test_float32_large_mean_normalizes_like_float64(ratio):
    rng = np.random.default_rng(14)
    spread = 1.0
    x64 = ratio * spread + spread * rng.standard_normal((256, 8))
    x32 = x64.astype(np.float32)
    gamma, beta = np.ones(8), np.zeros(8)
    out32, _ = train_fwd(x32, gamma.astype(np.float32), beta.astype(np.float32))
    # The float64 reference normalizes the same (rounded) float32 values.
    out64, _ = train_fwd(x32.astype(np.float64), gamma, beta)
    assert out32.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3
    # The textbook one-pass formula in float32 is far off here (why we never use it).
    naive_var = np.mean(x32 * x32, axis=0) - np.mean(x32, axis=0) ** 2
    assert np.max(np.abs(naive_var - x32.astype(np.float64).var(0))) > 0.1


def test_float32_gradients_keep_dtype_and_match_float64():
    x, gamma, beta, dout = course_inputs(16, 5, seed=15)
    _, c64 = train_fwd(x, gamma, beta)
    f32 = [a.astype(np.float32) for a in (x, gamma, beta, dout)]
    _, c32 = train_fwd(*f32[:3])
    for backward in ROUTE_FUNCS:
        g32 = backward(f32[3], c32)
        g64 = backward(f32[3].astype(np.float64), c64)
        for a, b in zip(g32, g64):
            assert a.dtype == np.float32
            assert norm_rel_error(a, b) < 1e-5


# --- hypothesis: shapes and scales ----------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    N=st.integers(2, 24),
    D=st.integers(1, 6),
    loc=st.floats(-1e3, 1e3),
    log_scale=st.floats(-2, 3),
    seed=st.integers(0, 2**16),
)
def test_property_routes_agree_and_invariants_hold(N, D, loc, log_scale, seed):
    rng = np.random.default_rng(seed)
    x = loc + 10.0**log_scale * rng.standard_normal((N, D))
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    out, cache = train_fwd(x, gamma, beta)
    # Output statistics: mean beta, and variance gamma^2 var / (var + eps) per feature.
    var = x.var(axis=0)
    np.testing.assert_allclose(out.mean(0), beta, atol=1e-9 * (1 + np.abs(gamma)).max())
    np.testing.assert_allclose(out.var(0), gamma**2 * var / (var + 1e-5), rtol=1e-6, atol=1e-9)
    grads = [backward(dout, cache) for backward in ROUTE_FUNCS]
    scale = term_scale(dout, cache).max()  # dx is O(eps) at N = 2: compare to its terms
    for g in grads[:2]:
        assert np.max(np.abs(g[0] - grads[2][0])) <= 1e-10 * scale
        np.testing.assert_allclose(g[1], grads[2][1], rtol=1e-12, atol=1e-12)
    for dx, _, _ in grads:
        assert np.all(np.abs(dx.sum(0)) <= 1e-10 * term_scale(dout, cache) + 1e-300)


# --- bad input: clear errors, bn_param untouched ----------------------------------------------


def good_call():
    rng = np.random.default_rng(16)
    return rng.standard_normal((4, 3)), np.ones(3), np.zeros(3)


BAD = [
    ("x not 2-D", dict(x=np.zeros((2, 3, 4, 4))), {}, ValueError, "spatial_batchnorm_forward"),
    ("gamma shape", dict(gamma=np.ones(4)), {}, ValueError, "gamma must have shape (3,)"),
    ("beta shape", dict(beta=np.ones((3, 1))), {}, ValueError, "beta must have shape (3,)"),
    ("mode", {}, {"mode": "eval"}, ValueError, "'train' or 'test'"),
    ("mode missing", {}, {"mode": None}, ValueError, "bn_param['mode']"),
    ("one row", dict(x=np.ones((1, 3))), {}, ValueError, "at least 2 rows"),
    ("eps", {}, {"eps": -1e-5}, ValueError, ">= 0"),
    ("running_mean shape", {}, {"running_mean": np.zeros(4)}, ValueError, "running_mean"),
    ("running_var shape", {}, {"running_var": np.zeros((3, 1))}, ValueError, "running_var"),
    ("momentum", {}, {"momentum": 1.5}, ValueError, "[0, 1]"),
    ("convention", {}, {"momentum_convention": "keras"}, ValueError, "'course' or 'torch'"),
    ("x list", dict(x=[[1.0, 2.0, 3.0]] * 4), {}, TypeError, "numpy.ndarray"),
    ("x int", dict(x=np.ones((4, 3), dtype=np.int64)), {}, TypeError, "floating dtype"),
    ("gamma str", dict(gamma=np.array(["a", "b", "c"])), {}, TypeError, "numeric dtype"),
    ("beta list", dict(beta=[0.0, 0.0, 0.0]), {}, TypeError, "numpy.ndarray"),
]


@pytest.mark.parametrize("what,args,param_update,exc,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_and_leaves_bn_param_untouched(what, args, param_update, exc, message):
    x, gamma, beta = good_call()
    call = {"x": x, "gamma": gamma, "beta": beta, **args}
    rm, rv = np.full(3, 0.5), np.full(3, 2.0)
    param = {"mode": "train", "running_mean": rm, "running_var": rv, **param_update}
    if param.get("mode") is None:
        del param["mode"]
    before = copy.deepcopy(param)
    objects = {k: id(v) for k, v in param.items()}
    with pytest.raises(exc) as info:
        batchnorm_forward(call["x"], call["gamma"], call["beta"], param)
    assert message in str(info.value)
    assert {k: id(v) for k, v in param.items()} == objects  # nothing added or replaced
    for k, val in before.items():  # and nothing changed in place
        if isinstance(val, np.ndarray):
            np.testing.assert_array_equal(param[k], val)
        else:
            assert param[k] == val


def test_test_mode_accepts_a_single_row():
    x = np.ones((1, 3))
    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "test"})
    np.testing.assert_allclose(out, x / np.sqrt(1e-5))


def test_backward_rejects_wrong_dout_shape():
    x, gamma, beta, _ = course_inputs(4, 3)
    _, cache = train_fwd(x, gamma, beta)
    for backward in ROUTE_FUNCS:
        with pytest.raises(ValueError, match="dout must have shape"):
            backward(np.zeros((4, 2)), cache)


def test_integer_gamma_and_beta_work_like_the_course():
    # The course's notebooks pass gamma = np.asarray([1, 2, 3]), beta = np.asarray([11, 12, 13]).
    x, _, _, dout = course_inputs(50, 3, seed=17)
    gi, bi = np.asarray([1, 2, 3]), np.asarray([11, 12, 13])
    out_i, cache_i = train_fwd(x, gi, bi)
    out_f, cache_f = train_fwd(x, gi.astype(float), bi.astype(float))
    np.testing.assert_array_equal(out_i, out_f)
    np.testing.assert_allclose(out_i.mean(0), [11, 12, 13])
    for backward in ROUTE_FUNCS:
        for got, want in zip(backward(dout, cache_i), backward(dout, cache_f)):
            assert got.dtype == np.float64  # never truncated to the int dtype of gamma
            np.testing.assert_array_equal(got, want)


def test_test_mode_writes_running_stats_back_as_the_course_does():
    param = {"mode": "test"}
    batchnorm_forward(np.ones((3, 2)), np.ones(2), np.zeros(2), param)
    np.testing.assert_array_equal(param["running_mean"], np.zeros(2))
    np.testing.assert_array_equal(param["running_var"], np.zeros(2))


def test_test_mode_reads_running_stats_and_changes_none_of_them():
    param = torch_bn_param(3, momentum=0.1)
    param["running_mean"] = np.array([1.0, -2.0, 0.5])
    param["running_var"] = np.array([4.0, 0.25, 1.0])
    param["num_batches_tracked"] = 7
    param["mode"] = "test"
    before = copy.deepcopy(param)
    x = np.random.default_rng(18).standard_normal((5, 3))
    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), param)
    np.testing.assert_allclose(
        out, (x - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5), rtol=1e-13
    )
    for k, val in before.items():
        if isinstance(val, np.ndarray):
            np.testing.assert_array_equal(param[k], val)
        else:
            assert param[k] == val
