"""The channel-major conv sandwich: one product for the batch, read in place by batch norm.

``kernels.conv.conv_forward_channel_major`` leaves the convolution's output as an
(N, F, H', W') view of (F, N, H', W') memory; spatial batch norm's fused route reads it
without a copy and hands back dx laid out the same way, and ``conv_backward_fused`` forms
dw, db (and dx) from it with one product each. Checked here against the reference routes
(float64 to 1e-12, float32 to its rounding), by finite differences, for layouts, thread
counts, and the caches' compatibility with the reference backward.
"""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from normgrad import kernels  # noqa: E402
from normgrad.gradient_check import eval_numerical_gradient_array  # noqa: E402
from normgrad.kernels import conv, spatial  # noqa: E402
from normgrad.models import blocks  # noqa: E402
from normgrad.norms.spatial import (  # noqa: E402
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from normgrad.ops import fast  # noqa: E402

TOL = {np.float64: 1e-12, np.float32: 1e-5}
CONVS = [
    ((3, 2, 8, 8), (4, 2, 3, 3), {"stride": 1, "pad": 1}),
    ((4, 3, 9, 7), (5, 3, 3, 3), {"stride": 2, "pad": 1}),
    ((1, 3, 6, 6), (2, 3, 1, 1), {"stride": 1, "pad": 0}),
    ((6, 3, 16, 16), (8, 3, 7, 7), {"stride": 1, "pad": 3}),
]


def _close(got, want, dtype) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    assert np.max(np.abs(got - want), initial=0.0) <= TOL[dtype] * scale


def _channel_major(shape, rng, dtype, scale=3.0, offset=2.0):
    """An (N, C, H, W) view of channel-major memory, and its values."""
    N, C, H, W = shape
    a = (scale * rng.standard_normal((C, N, H, W)) + offset).astype(dtype)
    view = a.transpose(1, 0, 2, 3)
    assert not view.flags.c_contiguous
    return view


def _is_channel_major(a) -> bool:
    return not a.flags.c_contiguous and a.transpose(1, 0, 2, 3).flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("relu", [False, True])
def test_spatial_batchnorm_reads_channel_major_in_place(dtype, mode, relu) -> None:
    rng = np.random.default_rng(0)
    x = _channel_major((5, 4, 6, 8), rng, dtype)
    gamma = rng.standard_normal(4).astype(dtype)
    beta = rng.standard_normal(4).astype(dtype)
    stats = {"running_mean": rng.standard_normal(4), "running_var": rng.random(4) + 0.5}
    p_fused = {"mode": mode, "momentum": 0.8, **{k: v.copy() for k, v in stats.items()}}
    p_ref = {"mode": mode, "momentum": 0.8, **{k: v.copy() for k, v in stats.items()}}
    forward = (
        spatial.spatial_batchnorm_relu_forward_fused
        if relu
        else spatial.spatial_batchnorm_forward_fused
    )
    out, cache = forward(x, gamma, beta, p_fused)
    want, ref_cache = spatial_batchnorm_forward(np.ascontiguousarray(x), gamma, beta, p_ref)
    if relu:
        want = np.maximum(want, 0)
    assert cache.cm and out.flags.c_contiguous  # read in place, written as NCHW
    _close(out, want, dtype)
    for key in ("running_mean", "running_var"):
        _close(p_fused[key], p_ref[key], dtype)

    dout = rng.standard_normal(x.shape).astype(dtype)
    dout = np.where(want > 0, dout, 0).astype(dtype) if relu else dout
    ref = spatial_batchnorm_backward(dout, ref_cache)
    cm_dout = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for d in (dout, cm_dout, np.asfortranarray(dout)):  # NCHW, channel-major, neither
        got = spatial.spatial_batchnorm_backward_fused(d, cache)
        assert _is_channel_major(got[0])  # dx laid out as x was
        for g, r in zip(got, ref, strict=True):
            _close(g, r, dtype)


def test_channel_major_batchnorm_is_thread_count_independent(fk) -> None:
    rng = np.random.default_rng(1)
    x = _channel_major((32, 16, 28, 28), rng, np.float32)  # 401k values: several threads
    gamma = rng.standard_normal(16).astype(np.float32)
    beta = rng.standard_normal(16).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)

    def once():
        out, cache = spatial.spatial_batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})
        return [out, *spatial.spatial_batchnorm_backward_fused(dout, cache)]

    fk.same_bits_on_one_and_two_threads(once)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,conv_param", CONVS)
def test_channel_major_conv_matches_the_reference(dtype, x_shape, w_shape, conv_param) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, cache = conv.conv_forward_channel_major(x, w, b, conv_param)
    want, ref_cache = fast.conv_forward_fast(x, w, b, conv_param)
    if x_shape[0] > 1:
        assert _is_channel_major(out)
    _close(out, want, dtype)
    dout = rng.standard_normal(out.shape).astype(dtype)
    cm_dout = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for need_dx in (True, False):
        ref = fast.conv_backward_fast(dout, ref_cache, need_dx)
        for d in (dout, cm_dout):
            got = conv.conv_backward_fused(d, cache, need_dx)
            assert (got[0] is None) == (not need_dx)
            for g, r in zip(got, ref, strict=True):
                if r is not None:
                    _close(g, r, dtype)
        # the reference backward takes the channel-major cache too (fused turned off)
        for g, r in zip(fast.conv_backward_fast(dout, cache, need_dx), ref, strict=True):
            if r is not None:
                _close(g, r, dtype)


def test_channel_major_conv_gradients_by_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 7, 7))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    cp = {"stride": 1, "pad": 1}
    out, cache = conv.conv_forward_channel_major(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv.conv_backward_fused(dout, cache)
    for got, f, a in [
        (dx, lambda v: conv.conv_forward_channel_major(v, w, b, cp)[0], x),
        (dw, lambda v: conv.conv_forward_channel_major(x, v, b, cp)[0], w),
        (db, lambda v: conv.conv_forward_channel_major(x, w, v, cp)[0], b),
    ]:
        num = eval_numerical_gradient_array(f, a.copy(), dout)
        err = np.max(np.abs(got - num) / np.maximum(1e-8, np.abs(got) + np.abs(num)))
        assert err < 1e-8


def test_channel_major_conv_checks_dout_and_falls_back_for_mixed_dtypes() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3)  # float64: not what the kernels take
    out, cache = conv.conv_forward_channel_major(x, w, b, {"stride": 1, "pad": 1})
    want, _ = fast.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    assert out.flags.c_contiguous and np.array_equal(out, want)  # the reference ran
    cp = {"stride": 1, "pad": 1}
    out, cache = conv.conv_forward_channel_major(x, w, b.astype(np.float32), cp)
    with pytest.raises(ValueError, match="dout"):
        conv.conv_backward_fused(np.zeros((2, 3, 4, 5), np.float32), cache)
    with pytest.raises(TypeError, match="dout"):
        conv.conv_backward_fused([[0.0]], cache)


@pytest.mark.parametrize("normalization", list(blocks.CONV_BLOCKS))
def test_the_sandwich_takes_the_layouts_its_fused_block_declares(normalization) -> None:
    """Every registered conv norm: channel-major conv iff its fused block reads that
    layout, one kernel for norm + ReLU + pool iff it has one; results as the reference's."""
    block = blocks.CONV_BLOCKS[normalization]
    declared = block.fused() if block.fused is not None else None
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    shape = block.param_shape(4)
    gamma = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    beta = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    cp, pp = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    results = []
    previous = kernels.fused_enabled()
    try:
        for fused in (True, False):
            kernels.use_fused(fused)
            param = block.init_param()
            out, cache = blocks.conv_norm_relu_pool_forward(
                x, w, b, gamma, beta if block.shift else None, cp, pp, param, normalization, G=2
            )
            dout = np.random.default_rng(6).standard_normal(out.shape).astype(np.float32)
            grads = blocks.conv_norm_relu_pool_backward(dout, cache)
            results.append((out, grads, cache, param))
    finally:
        kernels.use_fused(previous)
    (out, grads, cache, param), (ref_out, ref_grads, ref_cache, ref_param) = results
    cm = declared is not None and declared.channel_major
    one_kernel = declared is not None and declared.relu_pool is not None
    cols = cache.conv.cols
    assert (not cols.flags.c_contiguous and cols.transpose(1, 0, 2).flags.c_contiguous) == cm
    assert (cache.pool is None) == one_kernel
    assert ref_cache.pool is not None  # the reference pools on its own
    _close(out, ref_out, np.float32)
    names = ("dx", "dw", "db", "dgamma", "dbeta")
    for name, g, r in zip(names, grads, ref_grads, strict=True):
        if r is None:
            assert g is None
        elif name == "db" and block.cancels_bias:  # ~0: the norm cancels the bias
            assert np.max(np.abs(g - r)) < 1e-5
        else:
            _close(g, r.astype(g.dtype), np.float32)
    for key, value in param.items():
        if isinstance(value, np.ndarray):
            _close(value, ref_param[key], np.float32)
