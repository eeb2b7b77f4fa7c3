"""The fused batch-norm kernel: the reference's results, checks and running statistics."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from normgrad.gradient_check import check_layer, norm_rel_error
from normgrad.kernels import batchnorm_backward_fused, batchnorm_forward_fused
from normgrad.layers import batchnorm_backward_alt, batchnorm_forward, torch_bn_param

# (600, 300) is above the size at which the kernels switch to the thread pool.
SHAPES = [(2, 1), (3, 7), (4, 5), (31, 17), (257, 3), (600, 300)]


def inputs(N, D, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal((N, D)) + 12.0
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    return [a.astype(dtype) for a in (x, gamma, beta, dout)]


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_the_reference_in_float64(shape, mode):
    x, gamma, beta, dout = inputs(*shape, seed=1)
    rng = np.random.default_rng(2)
    running = {
        "running_mean": rng.standard_normal(shape[1]),
        "running_var": rng.uniform(0.5, 2, shape[1]),
    }
    p_ref, p_fused = {"mode": mode, **running}, {"mode": mode, **copy.deepcopy(running)}
    out_ref, cache_ref = batchnorm_forward(x, gamma, beta, p_ref)
    out, cache = batchnorm_forward_fused(x, gamma, beta, p_fused)
    assert norm_rel_error(out, out_ref) < 1e-13
    for got, want in zip(
        batchnorm_backward_fused(dout, cache), batchnorm_backward_alt(dout, cache_ref)
    ):
        # At N = 2 dx is O(eps) and both sides carry ~1e-16 of the cancelling terms.
        assert norm_rel_error(got, want) < (1e-9 if shape[0] == 2 else 1e-12)
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(p_fused[key], p_ref[key], rtol=1e-12, atol=1e-14)


def test_torch_conventions_and_cumulative_average():
    rng = np.random.default_rng(3)
    p_ref, p_fused = torch_bn_param(4, momentum=None), torch_bn_param(4, momentum=None)
    for _ in range(5):
        x = rng.standard_normal((9, 4)) * 3 + rng.standard_normal(4)
        batchnorm_forward(x, np.ones(4), np.zeros(4), p_ref)
        batchnorm_forward_fused(x, np.ones(4), np.zeros(4), p_fused)
    np.testing.assert_allclose(p_fused["running_var"], p_ref["running_var"], rtol=1e-13)
    assert p_fused["num_batches_tracked"] == 5


@pytest.mark.parametrize("shape", [(7, 5), (3, 1)])
def test_finite_differences(shape):
    x, gamma, beta, _ = inputs(*shape, seed=4)
    report = check_layer(
        lambda x, g, b: batchnorm_forward_fused(x, g, b, {"mode": "train"}),
        batchnorm_backward_fused,
        {"x": x, "gamma": gamma, "beta": beta},
    )
    assert report.passed, report


def test_dx_sums_to_zero_per_feature():
    x, gamma, beta, dout = inputs(64, 8, seed=5)
    _, cache = batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})
    dx, _, _ = batchnorm_backward_fused(dout, cache)
    assert np.all(np.abs(dx.sum(0)) <= 1e-10 * np.abs(dx).sum(0))


@pytest.mark.parametrize("ratio", [1e4, 1e6])
def test_float32_large_mean_normalizes_like_float64(ratio):
    rng = np.random.default_rng(6)
    x32 = (ratio + rng.standard_normal((512, 6))).astype(np.float32)
    one, zero = np.ones(6, np.float32), np.zeros(6, np.float32)
    out32, _ = batchnorm_forward_fused(x32, one, zero, {"mode": "train"})
    out64, _ = batchnorm_forward(
        x32.astype(np.float64), one.astype(float), zero.astype(float), {"mode": "train"}
    )
    assert out32.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3


def test_float32_gradients_keep_dtype():
    x, gamma, beta, dout = inputs(40, 6, seed=7, dtype=np.float32)
    _, cache = batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})
    _, ref = batchnorm_forward(
        x.astype(float), gamma.astype(float), beta.astype(float), {"mode": "train"}
    )
    for got, want in zip(
        batchnorm_backward_fused(dout, cache), batchnorm_backward_alt(dout.astype(float), ref)
    ):
        assert got.dtype == np.float32
        assert norm_rel_error(got, want) < 1e-6


def test_fortran_ordered_input_gives_the_same_result():
    x, gamma, beta, dout = inputs(16, 5, seed=8)
    out_c, _ = batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})
    out_f, cache = batchnorm_forward_fused(np.asfortranarray(x), gamma, beta, {"mode": "train"})
    np.testing.assert_array_equal(out_c, out_f)
    dx, _, _ = batchnorm_backward_fused(np.asfortranarray(dout), cache)
    assert dx.shape == x.shape


@pytest.mark.parametrize(
    "call,match",
    [
        (dict(x=np.zeros((2, 3, 4, 4))), "spatial_batchnorm_forward"),
        (dict(gamma=np.ones(4)), "gamma must have shape (3,)"),
        (dict(x=np.ones((1, 3))), "at least 2 rows"),
        (dict(param={"mode": "eval"}), "'train' or 'test'"),
        (dict(param={"mode": "train", "running_var": np.ones(2)}), "running_var"),
    ],
)
def test_rejects_what_the_reference_rejects_and_writes_nothing(call, match):
    rng = np.random.default_rng(9)
    args = {
        "x": rng.standard_normal((4, 3)),
        "gamma": np.ones(3),
        "beta": np.zeros(3),
        "param": {"mode": "train", "running_mean": np.full(3, 0.5)},
        **call,
    }
    before = copy.deepcopy(args["param"])
    with pytest.raises(ValueError, match=None) as info:
        batchnorm_forward_fused(args["x"], args["gamma"], args["beta"], args["param"])
    assert match in str(info.value)
    assert args["param"].keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(args["param"][k], before[k])


def test_backward_rejects_wrong_dout_shape():
    x, gamma, beta, _ = inputs(4, 3)
    _, cache = batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match="dout must have shape"):
        batchnorm_backward_fused(np.zeros((4, 2)), cache)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
def test_dtypes_numba_does_not_compile_take_the_reference_route(dtype) -> None:
    rng = np.random.default_rng(3)
    x = (5 * rng.standard_normal((6, 4)) + 12).astype(dtype)
    gamma, beta = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    dout = rng.standard_normal((6, 4)).astype(dtype)
    p_fused, p_ref = {"mode": "train"}, {"mode": "train"}
    out, cache = batchnorm_forward_fused(x, gamma, beta, p_fused)
    ref, ref_cache = batchnorm_forward(x, gamma, beta, p_ref)
    assert out.dtype == x.dtype and np.array_equal(out, ref)
    for a, b in zip(
        batchnorm_backward_fused(dout, cache), batchnorm_backward_alt(dout, ref_cache), strict=True
    ):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(p_fused["running_mean"], p_ref["running_mean"])


def test_empty_feature_axis_matches_the_reference() -> None:
    x = np.zeros((5, 0))
    out, cache = batchnorm_forward_fused(x, np.zeros(0), np.zeros(0), {"mode": "train"})
    assert out.shape == (5, 0)
    dx, dgamma, dbeta = batchnorm_backward_fused(np.zeros((5, 0)), cache)
    assert dx.shape == (5, 0) and dgamma.shape == dbeta.shape == (0,)
