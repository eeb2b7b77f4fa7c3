"""Batch renorm: forward semantics, the stop-gradient backward, batch norm as a special case.

Every gradient test is float64 with a random upstream gradient, never ones_like. Finite
differences measure the true derivative, in which r and d move with x, so they are
compared with the stop-gradient backward only where r and d are clipped (and shown to
disagree where they are not).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from normgrad import kernels
from normgrad.gradcheck.layer import check_layer
from normgrad.gradcheck.numerical import norm_rel_error
from normgrad.models import blocks
from normgrad.models.fc_net import FullyConnectedNet
from normgrad.norms import batch, registry
from normgrad.norms.renorm import (
    D_MAX,
    R_MAX,
    SPEC,
    batchrenorm_backward,
    batchrenorm_forward,
    renorm_corrections,
)
from normgrad.norms.running import torch_bn_param
from normgrad.tools import block_cases, checks
from normgrad.training.solver import Solver

SHAPES = [(2, 1), (3, 4), (7, 5), (16, 3), (31, 17)]


def draw(N: int, D: int, seed: int = 0, dtype=np.float64):
    """x = 5 randn + 12, random gamma, beta and upstream gradient."""
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal((N, D)) + 12.0
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    return tuple(a.astype(dtype) for a in (x, gamma, beta, dout))


def saturating_stats(x: np.ndarray, r_max: float, d_max: float, eps: float = 1e-5) -> dict:
    """Running statistics that clip every feature's r and d at a bound, with margin.

    Features alternate between r = r_max and r = 1/r_max (sigma_B / sigma = 4 r_max or
    1 / (4 r_max)) and between d = +d_max and -d_max ((mu_B - mean) / sigma = +-4 d_max,
    or +-2 when d_max = 0), so the finite-difference steps never leave the bounds.
    """
    D = x.shape[1]
    mu, sigma_b = x.mean(0), np.sqrt(x.var(0) + eps)
    up = np.arange(D) % 2 == 0
    sigma = np.where(up, sigma_b / (4 * r_max), sigma_b * 4 * r_max)
    assert np.all(sigma**2 > eps)
    sign = np.where(np.arange(D) % 4 < 2, 1.0, -1.0)
    mean = mu - sign * max(4 * d_max, 2.0) * sigma
    return {"running_mean": mean, "running_var": sigma**2 - eps}


def fwd(mode: str = "train", **param):
    """forward(x, gamma, beta) with a fresh bn_param (arrays copied) on every call."""
    return SPEC.bind(batchrenorm_forward, mode=mode, **param)


# --- finite differences: exact where r and d are clipped -----------------------------


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_batch_norm_limits_match_finite_differences(shape):
    x, gamma, beta, _ = draw(*shape, seed=1)
    report = check_layer(
        fwd(r_max=1, d_max=0), batchrenorm_backward, {"x": x, "gamma": gamma, "beta": beta}, seed=2
    )
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


@pytest.mark.parametrize("r_max,d_max", [(1.5, 0.5), (3.0, 5.0), (1.0, 2.0), (2.0, 0.0)])
@pytest.mark.parametrize("shape", SHAPES[1:])
def test_saturated_corrections_match_finite_differences(shape, r_max, d_max):
    x, gamma, beta, _ = draw(*shape, seed=3)
    stats = saturating_stats(x, r_max, d_max)
    _, cache = fwd(r_max=r_max, d_max=d_max, **stats)(x, gamma, beta)
    assert np.all((cache.r == r_max) | (cache.r == 1.0 / r_max))  # clipped, exactly
    assert np.all(np.abs(cache.d) == d_max)
    report = check_layer(
        fwd(r_max=r_max, d_max=d_max, **stats),
        batchrenorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=4,
    )
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def test_test_mode_matches_finite_differences():
    rng = np.random.default_rng(5)
    D = 4
    stats = {"running_mean": rng.standard_normal(D), "running_var": rng.uniform(0.5, 2.0, D)}
    x, gamma, beta, _ = draw(6, D, seed=5)
    report = check_layer(
        fwd("test", **stats), batchrenorm_backward, {"x": x, "gamma": gamma, "beta": beta}, seed=6
    )
    assert report.passed, report


@pytest.mark.parametrize("case", SPEC.cases, ids=[c.label for c in SPEC.cases])
def test_every_spec_case_matches_finite_differences_with_r_and_d_clipped(case):
    inputs = case.draw(np.random.default_rng(7))
    bound = SPEC.call(**case.options)
    _, cache = bound(*inputs.values())
    if cache.train:
        r_max, d_max = case.options["r_max"], case.options["d_max"]
        assert np.all((cache.r == r_max) | (cache.r == 1 / r_max))
        assert np.all(np.abs(cache.d) == d_max)
    report = check_layer(bound, batchrenorm_backward, inputs, seed=8)
    assert report.passed, report


def test_unclipped_corrections_differ_from_finite_differences_in_dx_only():
    # Why the checks saturate: with r and d free to move with x, finite differences see
    # their derivatives, which the paper's stop-gradient backward leaves out on purpose.
    x, gamma, beta, _ = draw(7, 5, seed=9)
    stats = {"running_mean": x.mean(0) + 0.3 * x.std(0), "running_var": 1.5 * x.var(0)}
    bound = fwd(r_max=100.0, d_max=100.0, **stats)
    _, cache = bound(x, gamma, beta)
    assert np.all((cache.r > 1 / 100) & (cache.r < 100)) and np.all(np.abs(cache.d) < 100)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    report = check_layer(bound, batchrenorm_backward, inputs)
    assert report["dx"].rel_error > 1e-3
    assert report["dgamma"].rel_error < 1e-8 and report["dbeta"].rel_error < 1e-8
    # Unclipped, xbn * r + d = (x - running_mean) / sigma: the test-mode map, whose
    # derivative dout * gamma / sigma is what finite differences measure (section 9.9).
    sigma = np.sqrt(stats["running_var"] + 1e-5)

    def true_backward(dout, cache):
        dx, dgamma, dbeta = batchrenorm_backward(dout, cache)
        return dout * cache.gamma / sigma, dgamma, dbeta

    assert check_layer(bound, true_backward, inputs).passed


# --- PyTorch autograd (r and d detached) ------------------------------------------------


def torch_renorm(x, gamma, beta, dout, **options):
    tensors = {
        k: torch.tensor(a, requires_grad=True)
        for k, a in (("x", x), ("gamma", gamma), ("beta", beta))
    }
    out = SPEC.torch(torch, tensors, **options)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), *(t.grad.numpy() for t in tensors.values())


def _regime(x, name):
    """Options for: the defaults (zero running stats), saturated, unclipped, batch norm."""
    if name == "saturated":
        return {"r_max": 1.5, "d_max": 0.5, **saturating_stats(x, 1.5, 0.5)}
    if name == "unclipped":
        return {
            "r_max": 100.0,
            "d_max": 100.0,
            "running_mean": x.mean(0) - 1.0,
            "running_var": 0.7 * x.var(0),
        }
    return {"defaults": {}, "batchnorm": {"r_max": 1, "d_max": 0}}[name]


@pytest.mark.parametrize("regime", ["defaults", "saturated", "unclipped", "batchnorm"])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_autograd_in_float64(shape, regime):
    x, gamma, beta, _ = draw(*shape, seed=10)
    dout = np.random.default_rng(11).standard_normal(shape)  # random, never ones
    options = _regime(x, regime)
    out, cache = fwd(**options)(x, gamma, beta)
    t_out, t_dx, t_dgamma, t_dbeta = torch_renorm(x, gamma, beta, dout, **options)
    dx, dgamma, dbeta = batchrenorm_backward(dout, cache)
    assert norm_rel_error(out, t_out) < 1e-12
    assert norm_rel_error(dgamma, t_dgamma) < 1e-10
    assert norm_rel_error(dbeta, t_dbeta) < 1e-10
    if shape[0] > 2:
        assert norm_rel_error(dx, t_dx) < 1e-10
    else:  # N = 2: dx is O(eps), both sides carry ~1e-16 of the terms that cancel in it
        scale = np.abs(dout * cache.gamma * cache.r / np.sqrt(cache.var + cache.eps)).sum(0)
        assert np.max(np.abs(dx - t_dx)) < 1e-14 * scale.max()


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(3, 20),
    D=st.integers(1, 6),
    loc=st.floats(-100, 100),
    log_scale=st.floats(-1, 2),
    regime=st.sampled_from(["defaults", "saturated", "unclipped", "batchnorm"]),
    seed=st.integers(0, 2**16),
)
def test_property_matches_torch_on_random_shapes(N, D, loc, log_scale, regime, seed):
    rng = np.random.default_rng(seed)
    x = loc + 10.0**log_scale * rng.standard_normal((N, D))
    # saturating_stats needs a batch spread well above sqrt(eps) to clip with margin
    assume(regime != "saturated" or np.all(x.var(0) > 1e-2))
    gamma, beta, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D))
    options = _regime(x, regime)
    out, cache = fwd(**options)(x, gamma, beta)
    t_out, *t_grads = torch_renorm(x, gamma, beta, dout, **options)
    assert norm_rel_error(out, t_out) < 1e-12
    for got, want in zip(batchrenorm_backward(dout, cache), t_grads, strict=True):
        assert norm_rel_error(got, want) < 1e-10


def test_test_mode_matches_torch():
    x, gamma, beta, dout = draw(5, 3, seed=12)
    stats = {
        "running_mean": np.array([11.0, 12.0, 13.0]),
        "running_var": np.array([4.0, 25.0, 1.0]),
    }
    out, cache = fwd("test", **stats)(x, gamma, beta)
    t_out, *t_grads = torch_renorm(x, gamma, beta, dout, mode="test", **stats)
    assert norm_rel_error(out, t_out) < 1e-12
    for got, want in zip(batchrenorm_backward(dout, cache), t_grads, strict=True):
        assert norm_rel_error(got, want) < 1e-12


# --- batch norm as the special case r_max = 1, d_max = 0 ---------------------------------


@pytest.mark.parametrize("convention,momentum", [("course", 0.9), ("torch", 0.1), ("torch", None)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_r_max_1_d_max_0_is_batch_norm_bit_for_bit(dtype, convention, momentum):
    # r = 1.0 and d = 0.0 exactly, and the arithmetic is batch norm's (xbn * 1 + 0 is xbn;
    # the backward is batchnorm_backward_alt's with gamma * 1 = gamma), so every output
    # is bitwise equal: forward, running statistics over several steps, backward, test.
    rng = np.random.default_rng(13)
    D = 6
    gamma, beta = rng.standard_normal(D).astype(dtype), rng.standard_normal(D).astype(dtype)
    p_bn = {
        "mode": "train",
        "momentum": momentum,
        "momentum_convention": convention,
        "unbiased_running_var": convention == "torch",
    }
    p_rn = {**p_bn, "r_max": 1, "d_max": 0}
    for step in range(4):
        x = (3.0 * rng.standard_normal((9, D)) + step).astype(dtype)
        dout = rng.standard_normal((9, D)).astype(dtype)
        out_bn, c_bn = batch.batchnorm_forward(x, gamma, beta, p_bn)
        out_rn, c_rn = batchrenorm_forward(x, gamma, beta, p_rn)
        np.testing.assert_array_equal(c_rn.r, np.ones(D))
        np.testing.assert_array_equal(c_rn.d, np.zeros(D))
        assert out_rn.dtype == dtype and np.array_equal(out_rn, out_bn)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            assert np.array_equal(p_rn.get(key), p_bn.get(key)), key
        for got, want in zip(
            batchrenorm_backward(dout, c_rn), batch.batchnorm_backward_alt(dout, c_bn), strict=True
        ):
            assert got.dtype == want.dtype and np.array_equal(got, want)
    p_bn["mode"] = p_rn["mode"] = "test"
    out_bn, c_bn = batch.batchnorm_forward(x, gamma, beta, p_bn)
    out_rn, c_rn = batchrenorm_forward(x, gamma, beta, p_rn)
    assert np.array_equal(out_rn, out_bn)
    for got, want in zip(
        batchrenorm_backward(dout, c_rn), batch.batchnorm_backward_alt(dout, c_bn), strict=True
    ):
        assert np.array_equal(got, want)


def test_running_stats_equal_batch_stats_give_r_1_d_0_and_batch_norm():
    # Unclipped, r = sigma_B / sigma and d = (mu_B - mean) / sigma: with the running
    # statistics set to this batch's own (as the library computes them), r is exactly 1
    # and d exactly 0 at the default limits, and the layer is batch norm again.
    x, gamma, beta, dout = draw(8, 4, seed=14)
    out_bn, c_bn = batch.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    param = {"mode": "train", "running_mean": c_bn.mu.copy(), "running_var": c_bn.var.copy()}
    out_rn, c_rn = batchrenorm_forward(x, gamma, beta, param)
    np.testing.assert_array_equal(c_rn.r, np.ones(4))
    np.testing.assert_array_equal(c_rn.d, np.zeros(4))
    assert np.array_equal(out_rn, out_bn)
    for got, want in zip(
        batchrenorm_backward(dout, c_rn), batch.batchnorm_backward_alt(dout, c_bn), strict=True
    ):
        assert np.array_equal(got, want)


# --- forward semantics: r, d, clipping, running statistics, test mode ----------------------


def test_forward_is_algorithm_1():
    rng = np.random.default_rng(15)
    x, gamma, beta, _ = draw(20, 5, seed=15)
    rm, rv = 12.0 + rng.standard_normal(5), rng.uniform(5.0, 60.0, 5)
    eps, r_max, d_max = 1e-3, 2.0, 0.3
    param = {
        "mode": "train",
        "eps": eps,
        "r_max": r_max,
        "d_max": d_max,
        "running_mean": rm.copy(),
        "running_var": rv.copy(),
    }
    out, cache = batchrenorm_forward(x, gamma, beta, param)
    mu, sigma_b = x.mean(0), np.sqrt(x.var(0) + eps)
    sigma = np.sqrt(rv + eps)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    d = np.clip((mu - rm) / sigma, -d_max, d_max)
    np.testing.assert_allclose(cache.r, r, rtol=1e-14)
    np.testing.assert_allclose(cache.d, d, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        out, gamma * ((x - mu) / sigma_b * r + d) + beta, rtol=1e-13, atol=1e-13
    )
    # The running statistics are batch norm's update of the OLD ones; r and d used the old.
    np.testing.assert_allclose(param["running_mean"], 0.9 * rm + 0.1 * mu, rtol=1e-15)
    np.testing.assert_allclose(param["running_var"], 0.9 * rv + 0.1 * x.var(0), rtol=1e-14)


def test_clipping_hits_each_bound_exactly():
    x, gamma, beta, _ = draw(10, 4, seed=16)
    mu, var = x.mean(0), x.var(0)
    # feature 0: sigma 0.01 and the running mean 100 below -> r_max and +d_max;
    # feature 1: sigma 1000 and the running mean 1e4 above -> 1/r_max and -d_max;
    # features 2 and 3: the batch's own statistics -> r = 1 and d = 0, unclipped.
    rm = np.array([mu[0] - 100.0, mu[1] + 1e4, mu[2], mu[3]])
    rv = np.array([1e-4, 1e6, var[2], var[3]])
    _, cache = batchrenorm_forward(
        x,
        gamma,
        beta,
        {"mode": "train", "r_max": 2.5, "d_max": 1.5, "running_mean": rm, "running_var": rv},
    )
    assert cache.r[0] == 2.5 and cache.r[1] == 1 / 2.5
    assert cache.d[0] == 1.5 and cache.d[1] == -1.5
    np.testing.assert_allclose(cache.r[2:], 1.0, rtol=1e-15)  # unclipped: sigma_B / sigma
    np.testing.assert_allclose(cache.d[2:], 0.0, atol=1e-15)


def test_first_step_with_fresh_bn_param_clips_r_and_d():
    # Absent running statistics are zeros (as batch norm creates them): sigma = sqrt(eps),
    # so r = r_max and d = +-d_max unless the batch mean is within d_max sqrt(eps) of 0.
    x, gamma, beta, _ = draw(6, 3, seed=17)
    x[:, 2] -= 40.0  # a negative batch mean: d = -d_max
    param = {"mode": "train"}
    out, cache = batchrenorm_forward(x, gamma, beta, param)
    np.testing.assert_array_equal(cache.r, np.full(3, float(R_MAX)))
    np.testing.assert_array_equal(cache.d, [D_MAX, D_MAX, -D_MAX])
    assert np.all(np.isfinite(out))
    assert {"running_mean", "running_var"} <= set(param) and "r_max" not in param
    # PyTorch-style initial statistics (var ones) give sigma ~ 1 instead.
    _, c_torch = batchrenorm_forward(x, gamma, beta, {**torch_bn_param(3), "r_max": 10.0})
    np.testing.assert_allclose(c_torch.r, np.sqrt(x.var(0) + 1e-5) / np.sqrt(1 + 1e-5))


def test_eps_zero_with_zero_running_var_stays_finite_and_quiet():
    x, gamma, beta, _ = draw(5, 3, seed=18)
    x[:, 1] = [-2.0, -1.0, 0.0, 1.0, 2.0]  # batch mean exactly 0, as the running mean
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, cache = batchrenorm_forward(x, gamma, beta, {"mode": "train", "eps": 0.0})
    np.testing.assert_array_equal(cache.r, np.full(3, float(R_MAX)))
    np.testing.assert_array_equal(cache.d, [D_MAX, 0.0, D_MAX])  # 0 where the means agree
    assert np.all(np.isfinite(out))
    r, d = renorm_corrections(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), 0.0, 3, 5)
    assert d[0] == 0 and np.isnan(r[0])  # 0/0 only where xbn is NaN anyway


def test_bias_cancels_where_d_is_clipped_only():
    # Block.cancels_bias: a per-feature bias moves mu_B, hence d and nothing else.
    x, gamma, beta, _ = draw(8, 3, seed=19)
    b = np.array([0.3, -0.2, 0.5])
    clipped = saturating_stats(x, 2.0, 1.0)
    out, cache = fwd(r_max=2.0, d_max=1.0, **clipped)(x, gamma, beta)
    out_b, _ = fwd(r_max=2.0, d_max=1.0, **clipped)(x + b, gamma, beta)
    np.testing.assert_allclose(out_b, out, rtol=1e-13, atol=1e-13)
    free = {"running_mean": x.mean(0), "running_var": x.var(0)}
    out, _ = fwd(**free)(x, gamma, beta)
    out_b, _ = fwd(**free)(x + b, gamma, beta)
    assert np.max(np.abs(out_b - out)) > 1e-3
    # And the stop-gradient backward gives db = sum_i dx_i = 0 in both cases.
    dout = np.random.default_rng(20).standard_normal(x.shape)
    dx, _, _ = batchrenorm_backward(dout, cache)
    assert np.all(np.abs(dx.sum(0)) < 1e-12 * np.abs(dx).sum(0))


def test_dx_dot_xbn_matches_its_exact_value():
    # sum_i dx_i xbn_i = eps * gamma r P / (s (var + eps)), P = sum_i dout_i xbn_i (9.9).
    rng = np.random.default_rng(29)
    x = 0.05 * rng.standard_normal((9, 4))  # var ~ 2.5e-3, so eps = 1e-3 matters
    gamma, beta, dout = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal((9, 4))
    eps = 1e-3
    stats = {"running_mean": np.full(4, 0.01), "running_var": np.full(4, 2e-3)}
    _, cache = fwd(eps=eps, **stats)(x, gamma, beta)
    assert np.all((cache.r > 1 / R_MAX) & (cache.r < R_MAX))  # any r: it is a constant
    dx, _, _ = batchrenorm_backward(dout, cache)
    P = np.sum(dout * cache.xbn, axis=0)
    s = np.sqrt(cache.var + eps)
    expected = eps * gamma * cache.r * P / (s * (cache.var + eps))
    assert np.all(np.abs(expected) > 1e-3)
    np.testing.assert_allclose(np.sum(dx * cache.xbn, axis=0), expected, rtol=1e-9)


def test_test_mode_is_batch_norm_test_mode_and_changes_no_statistic():
    param = torch_bn_param(3, momentum=0.1)
    param.update(
        mode="test",
        running_mean=np.array([1.0, -2.0, 0.5]),
        running_var=np.array([4.0, 0.25, 1.0]),
        num_batches_tracked=7,
        r_max=2.0,
        d_max=1.0,
    )
    before = copy.deepcopy(param)
    x, gamma, beta, dout = draw(5, 3, seed=21)
    out, cache = batchrenorm_forward(x, gamma, beta, param)
    bn_param = {k: val for k, val in copy.deepcopy(before).items() if k not in ("r_max", "d_max")}
    out_bn, c_bn = batch.batchnorm_forward(x, gamma, beta, bn_param)
    assert np.array_equal(out, out_bn)
    for got, want in zip(
        batchrenorm_backward(dout, cache), batch.batchnorm_backward_alt(dout, c_bn), strict=True
    ):
        assert np.array_equal(got, want)
    for k, val in before.items():
        if isinstance(val, np.ndarray):
            np.testing.assert_array_equal(param[k], val)
        else:
            assert param[k] == val
    one_row, _ = batchrenorm_forward(x[:1], gamma, beta, param)  # a batch of one works
    assert one_row.shape == (1, 3)


def test_forward_and_backward_leave_inputs_untouched():
    x, gamma, beta, dout = draw(5, 4, seed=22)
    stats = saturating_stats(x, 2.0, 1.0)
    saved = [a.copy() for a in (x, gamma, beta, dout, *stats.values())]
    _, cache = batchrenorm_forward(x, gamma, beta, {"mode": "train", **stats})
    batchrenorm_backward(dout, cache)
    for a, b in zip((x, gamma, beta, dout, *stats.values()), saved, strict=True):
        np.testing.assert_array_equal(a, b)


# --- float32 ------------------------------------------------------------------------------


def test_float32_keeps_dtype_and_matches_float64():
    x, gamma, beta, dout = draw(16, 5, seed=23)
    stats = saturating_stats(x, 2.0, 1.0)
    f32 = [a.astype(np.float32) for a in (x, gamma, beta, dout)]
    p32 = {
        "mode": "train",
        "r_max": 2.0,
        "d_max": 1.0,
        **{k: v.astype(np.float32) for k, v in stats.items()},
    }
    out32, c32 = batchrenorm_forward(*f32[:3], p32)
    out64, c64 = batchrenorm_forward(
        *(a.astype(np.float64) for a in f32[:3]),
        {
            "mode": "train",
            "r_max": 2.0,
            "d_max": 1.0,
            **{k: v.astype(np.float32).astype(np.float64) for k, v in stats.items()},
        },
    )
    assert out32.dtype == np.float32 and p32["running_mean"].dtype == np.float32
    assert norm_rel_error(out32, out64) < 1e-6
    g32 = batchrenorm_backward(f32[3], c32)
    g64 = batchrenorm_backward(f32[3].astype(np.float64), c64)
    for a, b in zip(g32, g64, strict=True):
        assert a.dtype == np.float32
        assert norm_rel_error(a, b) < 1e-5


@pytest.mark.parametrize("ratio", [1e4, 1e6])
def test_float32_large_mean_normalizes_like_float64(ratio):
    rng = np.random.default_rng(24)
    x32 = (ratio + rng.standard_normal((256, 8))).astype(np.float32)
    gamma, beta = np.ones(8, np.float32), np.zeros(8, np.float32)
    rm = np.full(8, ratio, np.float32)
    rv = np.full(8, 1.5, np.float32)
    param = {"mode": "train", "running_mean": rm, "running_var": rv}
    out32, _ = batchrenorm_forward(x32, gamma, beta, dict(param))
    out64, _ = batchrenorm_forward(
        x32.astype(np.float64),
        gamma.astype(np.float64),
        beta.astype(np.float64),
        {
            "mode": "train",
            "running_mean": rm.astype(np.float64),
            "running_var": rv.astype(np.float64),
        },
    )
    assert out32.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3


# --- bad input: clear errors, bn_param untouched --------------------------------------------


def good_call():
    rng = np.random.default_rng(25)
    return rng.standard_normal((4, 3)), np.ones(3), np.zeros(3)


BAD = [
    ("x not 2-D", dict(x=np.zeros((2, 3, 4, 4))), {}, ValueError, "Batch renorm takes (N, D)"),
    ("x list", dict(x=[[1.0, 2.0, 3.0]] * 4), {}, TypeError, "numpy.ndarray"),
    ("x int", dict(x=np.ones((4, 3), dtype=np.int64)), {}, TypeError, "floating dtype"),
    ("gamma shape", dict(gamma=np.ones(4)), {}, ValueError, "gamma must have shape (3,)"),
    ("beta shape", dict(beta=np.ones((3, 1))), {}, ValueError, "beta must have shape (3,)"),
    ("gamma str", dict(gamma=np.array(["a", "b", "c"])), {}, TypeError, "numeric dtype"),
    ("mode", {}, {"mode": "eval"}, ValueError, "'train' or 'test'"),
    ("one row", dict(x=np.ones((1, 3))), {}, ValueError, "at least 2 rows"),
    ("eps", {}, {"eps": -1e-5}, ValueError, ">= 0"),
    ("running_var shape", {}, {"running_var": np.zeros(4)}, ValueError, "running_var"),
    ("momentum", {}, {"momentum": 1.5}, ValueError, "[0, 1]"),
    (
        "r_max below 1",
        {},
        {"r_max": 0.5},
        ValueError,
        "bn_param['r_max'] must be a finite number >= 1; got 0.5",
    ),
    ("r_max negative", {}, {"r_max": -3}, ValueError, ">= 1"),
    ("r_max inf", {}, {"r_max": np.inf}, ValueError, "finite number >= 1"),
    ("r_max str", {}, {"r_max": "3"}, TypeError, "bn_param['r_max'] must be a real number"),
    ("r_max None", {}, {"r_max": None}, TypeError, "real number"),
    ("r_max bool", {}, {"r_max": True}, TypeError, "real number"),
    (
        "d_max negative",
        {},
        {"d_max": -0.1},
        ValueError,
        "bn_param['d_max'] must be a finite number >= 0",
    ),
    ("d_max nan", {}, {"d_max": float("nan")}, ValueError, "d_max"),
    ("d_max array", {}, {"d_max": np.array([1.0, 2.0])}, TypeError, "d_max"),
]


@pytest.mark.parametrize("what,args,param_update,exc,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_and_leaves_bn_param_untouched(what, args, param_update, exc, message):
    x, gamma, beta = good_call()
    call = {"x": x, "gamma": gamma, "beta": beta, **args}
    param = {
        "mode": "train",
        "running_mean": np.full(3, 0.5),
        "running_var": np.full(3, 2.0),
        **param_update,
    }
    before = copy.deepcopy(param)
    objects = {k: id(v) for k, v in param.items()}
    with pytest.raises(exc) as info:
        batchrenorm_forward(call["x"], call["gamma"], call["beta"], param)
    assert message in str(info.value)
    if "max" in what:  # batch renorm's own messages say how to fix it
        assert "Pass a finite number" in str(info.value)
    assert {k: id(v) for k, v in param.items()} == objects  # nothing added or replaced
    for k, val in before.items():  # and nothing changed in place
        if isinstance(val, np.ndarray):
            np.testing.assert_array_equal(param[k], val)
        elif isinstance(val, float) and np.isnan(val):
            assert np.isnan(param[k])
        else:
            assert param[k] == val


def test_bn_param_not_a_dict_is_a_type_error():
    x, gamma, beta = good_call()
    with pytest.raises(TypeError, match="bn_param must be a dict"):
        batchrenorm_forward(x, gamma, beta, [("mode", "train")])


def test_backward_rejects_wrong_dout():
    x, gamma, beta, _ = draw(4, 3)
    _, cache = batchrenorm_forward(x, gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match="dout must have shape"):
        batchrenorm_backward(np.zeros((4, 2)), cache)
    with pytest.raises(TypeError, match="floating dtype"):
        batchrenorm_backward(np.zeros((4, 3), dtype=int), cache)


def test_integer_gamma_and_beta_are_cast_like_batch_norm():
    x, _, _, dout = draw(6, 3, seed=26)
    gi, bi = np.asarray([1, 2, 3]), np.asarray([11, 12, 13])
    out_i, c_i = batchrenorm_forward(x, gi, bi, {"mode": "train"})
    out_f, c_f = batchrenorm_forward(x, gi.astype(float), bi.astype(float), {"mode": "train"})
    np.testing.assert_array_equal(out_i, out_f)
    for got, want in zip(
        batchrenorm_backward(dout, c_i), batchrenorm_backward(dout, c_f), strict=True
    ):
        assert got.dtype == np.float64 and np.array_equal(got, want)


# --- the registry, the blocks and the models pick it up ---------------------------------------


def test_registry_and_every_consumer_list_it():
    assert registry.by_name("batchrenorm") is SPEC
    assert registry.symbolic_specs()["renorm"] is SPEC
    assert blocks.FC_BLOCKS["batchrenorm"] is SPEC.blocks[0]
    assert "batchrenorm" in FullyConnectedNet.NORMALIZATIONS
    assert set(SPEC.param_keys) == set(batch.PARAM_KEYS) | {"r_max", "d_max"}
    assert "batchrenorm" in checks.layers()
    rows = checks.run_checks(["batchrenorm"])
    closed = {"closed bn", "closed clipped", "closed test"}
    fused = {r.replace("closed", "fused") for r in closed} if kernels.available() else set()
    assert {r.route for r in rows} == closed | fused
    assert rows and all(r.passed for r in rows), rows


def test_sandwich_cases_pass_with_the_bias_held_in_train_mode():
    cases = [c for c in block_cases.CASES if c.route.split()[0] == "batchrenorm"]
    assert {c.route for c in cases} == {"batchrenorm train", "batchrenorm test"}
    for case in cases:
        inputs = case.make_inputs(np.random.default_rng(0))
        assert ("b" in inputs) == (case.route == "batchrenorm test")  # cancels_bias
        report = check_layer(case.forward, case.backward, inputs)
        assert report.passed, (case.route, report)


def _toy_data(rng: np.random.Generator, n: int):
    centres = np.array([[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, -1.0, 0.0], [-2.0, -1.0, 1.0, 0.0]])
    y = np.arange(n) % 3
    return centres[y] + 0.7 * rng.standard_normal((n, 4)), y


def test_fully_connected_net_trains_with_the_solver():
    rng = np.random.default_rng(27)
    X, y = _toy_data(rng, 150)
    data = {"X_train": X[:120], "y_train": y[:120], "X_val": X[120:], "y_val": y[120:]}
    np.random.seed(0)  # noqa: NPY002  (the course's global generator)
    net = FullyConnectedNet(
        [16, 16],
        input_dim=4,
        num_classes=3,
        normalization="batchrenorm",
        weight_scale=0.1,
        dtype=np.float64,
    )
    for p in net.bn_params:  # PyTorch-style start, and the paper's limits
        p.update(running_mean=np.zeros(16), running_var=np.ones(16), r_max=2.0, d_max=1.0)
    solver = Solver(
        net,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        num_epochs=5,
        batch_size=30,
        verbose=False,
    )
    solver.train()
    losses = np.array(solver.loss_history)
    assert np.all(np.isfinite(losses)) and losses[-4:].mean() < losses[:4].mean()
    assert solver.best_val_acc > 0.8
    for p in net.bn_params:
        assert np.all(np.isfinite(p["running_mean"])) and np.all(p["running_var"] > 0)
        assert not np.array_equal(p["running_var"], np.ones(16))  # updated in training


def test_fully_connected_net_gradients_match_finite_differences_when_saturated():
    # momentum 1 freezes the running statistics (course convention), so every loss
    # evaluation sees the same r and d; running var 1e-4 and running mean -100 clip
    # r at r_max = 1.5 and d at +d_max = 5, with a wide margin, and keep every ReLU
    # input at 1.5 xbn + 5 > 1 (|xbn| <= sqrt(N - 1)), away from its kink.
    rng = np.random.default_rng(28)
    np.random.seed(1)  # noqa: NPY002
    net = FullyConnectedNet(
        [6, 5],
        input_dim=4,
        num_classes=3,
        normalization="batchrenorm",
        weight_scale=1.0,
        dtype=np.float64,
    )
    for p, H in zip(net.bn_params, (6, 5), strict=True):
        p.update(
            momentum=1.0,
            running_mean=np.full(H, -100.0),
            running_var=np.full(H, 1e-4),
            r_max=1.5,
            d_max=5.0,
        )
    for k in net.params:
        if k.startswith(("gamma", "beta")):  # not the init's ones and zeros
            net.params[k] = net.params[k] + 0.1 * rng.standard_normal(net.params[k].shape)
    X, y = rng.standard_normal((8, 4)), np.arange(8) % 3
    for i, a in enumerate(net.preactivations(X, mode="train"), 1):
        # a = gamma (r xbn + d) + beta with mean_n(xbn) = 0 and std_n(xbn) ~ 1: saturated.
        gamma, beta = net.params[f"gamma{i}"], net.params[f"beta{i}"]
        np.testing.assert_allclose(a.mean(0), 5.0 * gamma + beta, rtol=1e-12)
        np.testing.assert_allclose(a.std(0), 1.5 * np.abs(gamma), rtol=1e-4)
        assert np.all(a > 0.1)  # clear of the ReLU's kink

    def check(names: list[str]):
        def forward(*arrays: np.ndarray):
            for k, a in zip(names, arrays, strict=True):
                net.params[k] = a
            loss, grads = net.loss(X, y)
            return np.array(loss), grads

        def backward(dout: np.ndarray, grads: dict):
            return tuple(dout * grads[k] for k in names)

        return check_layer(forward, backward, {k: net.params[k].copy() for k in names})

    # Cancelled by the renorm after them (d clipped), so their gradient is exactly 0: the
    # hidden biases, and beta1 too (every ReLU input is positive, so beta1 reaches layer
    # 2 as one more per-feature bias).
    cancelled = ["b1", "b2", "beta1"]
    saved = {k: v.copy() for k, v in net.params.items()}
    report = check([k for k in net.params if k not in cancelled])
    assert report.passed, report
    net.params.update(saved)
    biases = check(cancelled)
    net.params.update(saved)
    _, grads = net.loss(X, y)
    for k in cancelled:
        assert biases[f"d{k}"].abs_error < 1e-10
        assert np.max(np.abs(grads[k])) < 1e-12


# --- the symbolic proof ----------------------------------------------------------------------


def test_derive_proves_and_ties_the_closed_route():
    pytest.importorskip("sympy")
    from normgrad.cli import main
    from normgrad.symbolic import registry as sym_registry
    from normgrad.symbolic import tie

    p = sym_registry.build("renorm", N=3, D=2)
    assert list(p.params) == ["x", "gamma", "beta"] and set(p.routes) == {"closed"}
    assert p.prove("closed").proved
    assert max(tie.tie(p, points=3, seed=2).values()) < tie.TIE_TOL
    assert main(["derive", "renorm", "--check"]) == 0


def test_derive_refutes_a_backward_that_forgets_r():
    pytest.importorskip("sympy")
    from normgrad.symbolic import registry as sym_registry

    p = sym_registry.build("renorm", N=3, D=2)
    c = p.cache  # the symbolic BatchRenormCache: r and d are stop_gradient atoms
    assert all(e.func.__name__ == "stop_gradient" for e in (*c.r, *c.d))
    good = p.routes["closed"]
    no_r = {**good, "dx": good["dx"] / c.r}  # batch norm's dx, as if r were not constant
    v = p.check("dx without r", no_r)
    assert v.status == "refuted", v
    no_d = {**good, "dgamma": good["dgamma"] - c.d * good["dbeta"]}  # dgamma over xbn
    assert p.check("dgamma without d", no_d).status == "refuted"
