"""Spatial batch norm, ReLU and a 2x2 max pool as one kernel each way (``kernels.planes_pool``).

Against the layers one by one (``spatial_batchnorm_forward_fused``, then
``pool.relu_pool_forward``; backward the same in reverse): the forward output and the
running statistics bit for bit, the gradients to 1e-12 in float64 and 1e-5 in float32,
in NCHW and channel-major layouts, train and test mode; by finite differences; the same
bits on 1 and 2 threads; and the checks: a bad pool_param or dout changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from normgrad.gradient_check import eval_numerical_gradient_array  # noqa: E402
from normgrad.kernels import pool, spatial  # noqa: E402
from normgrad.norms import spatial as reference  # noqa: E402

POOL2 = {"pool_height": 2, "pool_width": 2, "stride": 2}
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def _x(shape, rng, dtype, cm):
    N, C, H, W = shape
    if cm:
        return (3 * rng.standard_normal((C, N, H, W)) + 1).astype(dtype).transpose(1, 0, 2, 3)
    return (3 * rng.standard_normal(shape) + 1).astype(dtype)


def _params(C, rng, dtype, mode):
    stats = {"running_mean": rng.standard_normal(C), "running_var": rng.random(C) + 0.5}
    return [{"mode": mode, **{k: v.copy() for k, v in stats.items()}} for _ in range(2)]


def _composed(x, gamma, beta, param, pool_param=POOL2):
    a, bn_cache = spatial.spatial_batchnorm_forward_fused(x, gamma, beta, param)
    out, pool_cache = pool.relu_pool_forward(a, pool_param)

    def backward(dout):
        return spatial.spatial_batchnorm_backward_fused(
            pool.relu_pool_backward(dout, pool_cache), bn_cache
        )

    return out, backward


def _close(got, want, dtype) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = max(1.0, float(np.max(np.abs(want))))
    assert np.max(np.abs(got - want)) <= TOL[dtype] * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cm", [False, True])
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(5, 4, 6, 8), (3, 2, 2, 10), (1, 3, 4, 4)])
def test_one_kernel_is_the_layers_composed(dtype, cm, mode, shape) -> None:
    rng = np.random.default_rng(0)
    x = _x(shape, rng, dtype, cm)
    C = shape[1]
    gamma = rng.standard_normal(C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    p_one, p_two = _params(C, rng, dtype, mode)
    out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(x, gamma, beta, p_one, POOL2)
    want, backward = _composed(x, gamma, beta, p_two)
    assert isinstance(cache, spatial.FusedBnReluPoolCache)
    assert out.dtype == want.dtype and np.array_equal(out, want)
    for key in ("running_mean", "running_var"):
        assert np.array_equal(p_one[key], p_two[key])
    dout = rng.standard_normal(out.shape).astype(dtype)
    ref = backward(dout)
    for d in (
        dout,
        np.asfortranarray(dout),
        dout.astype(np.float32 if dtype == np.float64 else np.float64),
    ):
        got = spatial.spatial_batchnorm_relu_pool_backward_fused(d, cache)
        for g, r in zip(got, ref, strict=True):
            _close(g, r, dtype if d.dtype == dtype else np.float32)
        assert (not got[0].flags.c_contiguous) == (cm and shape[0] > 1)  # dx laid out as x


def test_other_pools_run_the_layers_one_by_one() -> None:
    rng = np.random.default_rng(1)
    x = _x((4, 3, 9, 9), rng, np.float32, False)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    pp = {"pool_height": 3, "pool_width": 3, "stride": 3}
    out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(
        x, gamma, beta, {"mode": "train"}, pp
    )
    want, backward = _composed(x, gamma, beta, {"mode": "train"}, pp)
    assert isinstance(cache, spatial.ComposedBnReluPoolCache)
    assert np.array_equal(out, want)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    for g, r in zip(
        spatial.spatial_batchnorm_relu_pool_backward_fused(dout, cache), backward(dout), strict=True
    ):
        assert np.array_equal(g, r)


def test_gradients_by_finite_differences() -> None:
    rng = np.random.default_rng(2)
    x = 3 * rng.standard_normal((4, 3, 4, 6)) + 1
    gamma = rng.standard_normal(3)
    beta = rng.standard_normal(3)

    def f(x=x, gamma=gamma, beta=beta):
        return spatial.spatial_batchnorm_relu_pool_forward_fused(
            x, gamma, beta, {"mode": "train"}, POOL2
        )[0]

    out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(
        x, gamma, beta, {"mode": "train"}, POOL2
    )
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = spatial.spatial_batchnorm_relu_pool_backward_fused(dout, cache)
    for got, fn, a in [
        (dx, lambda v: f(x=v), x),
        (dgamma, lambda v: f(gamma=v), gamma),
        (dbeta, lambda v: f(beta=v), beta),
    ]:
        num = eval_numerical_gradient_array(fn, a.copy(), dout)
        # relative to the gradient's scale: entries near 0 carry the difference's noise
        assert np.max(np.abs(got - num)) < 1e-8 * np.max(np.abs(num))


def test_the_same_bits_on_one_and_two_threads(fk) -> None:
    rng = np.random.default_rng(3)
    x = _x((32, 16, 28, 28), rng, np.float32, True)
    gamma = rng.standard_normal(16).astype(np.float32)
    beta = rng.standard_normal(16).astype(np.float32)
    dout = rng.standard_normal((32, 16, 14, 14)).astype(np.float32)

    def once():
        out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(
            x, gamma, beta, {"mode": "train"}, POOL2
        )
        return [out, *spatial.spatial_batchnorm_relu_pool_backward_fused(dout, cache)]

    fk.same_bits_on_one_and_two_threads(once)


def test_bad_pool_param_dout_or_cache_change_nothing() -> None:
    rng = np.random.default_rng(4)
    x = _x((2, 3, 4, 4), rng, np.float32, False)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    param = {"mode": "train", "running_mean": np.ones(3), "running_var": np.ones(3)}
    before = {k: v.copy() for k, v in param.items() if k != "mode"}
    for bad in (
        {"pool_height": 2, "pool_width": 2},
        {"pool_height": 3, "pool_width": 3, "stride": 3},
    ):
        with pytest.raises(ValueError, match="pool"):
            spatial.spatial_batchnorm_relu_pool_forward_fused(x, gamma, beta, param, bad)
    for k, v in before.items():
        assert np.array_equal(param[k], v)
    out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(x, gamma, beta, param, POOL2)
    with pytest.raises(ValueError, match="dout"):
        spatial.spatial_batchnorm_relu_pool_backward_fused(
            np.zeros((2, 3, 4, 4), np.float32), cache
        )
    with pytest.raises(TypeError, match="dout"):
        spatial.spatial_batchnorm_relu_pool_backward_fused([[1.0]], cache)
    with pytest.raises(TypeError, match="cache"):
        spatial.spatial_batchnorm_relu_pool_backward_fused(out, (cache.bn,))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_dout_gives_the_composed_nan_and_inf(dtype, bad) -> None:
    rng = np.random.default_rng(6)
    x = _x((6, 4, 8, 8), rng, dtype, True)
    gamma = rng.standard_normal(4).astype(dtype)
    beta = rng.standard_normal(4).astype(dtype)
    out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(
        x, gamma, beta, {"mode": "train"}, POOL2
    )
    _, backward = _composed(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[2, 1, 0, 3] = bad
    with np.errstate(all="ignore"):
        got = spatial.spatial_batchnorm_relu_pool_backward_fused(dout, cache)
        want = backward(dout)
    for g, w in zip(got, want, strict=True):
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(g), test(w))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (-1, -1, -1, -1), (7, 5, 3, 2)])
def test_test_mode_overflow_in_any_chunk_is_the_reference(dtype, where) -> None:
    """Test mode has no batch statistics to bound the output, so each normalize kernel
    flags an inf or NaN it makes (``_runtime.nonfinite``) and the call is redone by the
    reference, which rescales: here x - mean overflows, (x - mean) / sqrt(var) does not.
    The value sits in the first, last or a middle plane of a call large enough for
    several chunks and threads; the flag must travel from any of them."""
    rng = np.random.default_rng(11)
    shape = (16, 8, 32, 32)  # 131072 values: several chunks
    big = np.finfo(dtype).max
    x = rng.standard_normal(shape).astype(dtype)
    x[where] = big
    C = shape[1]
    gamma = np.full(C, 2.0, dtype)
    beta = np.zeros(C, dtype)
    stats = {"running_mean": np.full(C, -big / 2), "running_var": np.full(C, 1e20)}
    p1, p2, p3, p4 = ({"mode": "test", **{k: v.copy() for k, v in stats.items()}} for _ in range(4))
    with np.errstate(over="ignore"):
        out, _ = spatial.spatial_batchnorm_relu_pool_forward_fused(x, gamma, beta, p1, POOL2)
        want, _ = _composed(x, gamma, beta, p2)
        a, _ = spatial.spatial_batchnorm_forward_fused(x, gamma, beta, p3)
        ref = reference.spatial_batchnorm_forward(x, gamma, beta, p4)[0]
    assert np.all(np.isfinite(ref))  # the reference rescales: no overflow to flag there
    assert np.array_equal(a, ref) and np.array_equal(out, want)
