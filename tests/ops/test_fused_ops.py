"""The fused convolution, pooling and ReLU kernels give the reference's bits.

``normgrad.kernels.conv`` (im2col and col2im without copies), ``kernels.pool`` (max
pooling, ReLU, and ReLU then pooling in one pass) against ``ops.fast`` and
``ops.activations``: outputs, caches and gradients equal with ``np.array_equal``, for
strides, paddings, windows, ties, NaN, both dtypes and sizes above the thread threshold;
and the same checks and errors.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from normgrad.kernels import conv, pool  # noqa: E402
from normgrad.ops import activations as act  # noqa: E402
from normgrad.ops import fast, windows  # noqa: E402

DTYPES = [np.float64, np.float32]


def _equal(a, b) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "x_shape,w_shape,conv_param",
    [
        ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": 1, "pad": 1}),
        ((3, 2, 9, 7), (5, 2, 3, 3), {"stride": 2, "pad": 1}),
        ((2, 3, 6, 6), (4, 3, 1, 1), {"stride": 1, "pad": 0}),
        ((1, 1, 5, 5), (2, 1, 5, 5), {"stride": 1, "pad": 2}),
        ((4, 3, 11, 11), (6, 3, 7, 7), {"stride": 2, "pad": 3}),
        ((8, 3, 32, 32), (32, 3, 7, 7), {"stride": 1, "pad": 3}),  # the course net, 8 images
    ],
)
def test_conv_is_the_reference_bit_for_bit(dtype, x_shape, w_shape, conv_param) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, cache = conv.conv_forward_fused(x, w, b, conv_param)
    ref, ref_cache = fast.conv_forward_fast(x, w, b, conv_param)
    _equal(out, ref)
    _equal(cache.cols, ref_cache.cols)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for got, want in zip(
        conv.conv_backward_fused(dout, cache), fast.conv_backward_fast(dout, ref_cache), strict=True
    ):
        _equal(got, want)


def _geometries():
    """Every (H, W, HH, WW, stride, pad) of a small grid that makes a valid convolution:
    windows wholly in the padding (pad >= HH), strides up to 3, non-square kernels and
    planes, windows as large as the padded plane."""
    for H, W in [(1, 1), (4, 7), (5, 5)]:
        for HH, WW in [(1, 1), (2, 3), (3, 3), (5, 2)]:
            for stride in (1, 2, 3):
                for pad in (0, 1, 3, 5):
                    if (H + 2 * pad - HH) % stride or (W + 2 * pad - WW) % stride:
                        continue
                    if H + 2 * pad < HH or W + 2 * pad < WW:
                        continue
                    yield H, W, HH, WW, stride, pad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channel_major", [False, True])
def test_im2col_and_col2im_match_the_reference_on_every_geometry(dtype, channel_major) -> None:
    """The kernels copy each tap's valid rectangle and zero the rest, or sum it back: every
    edge case of that split (a tap that misses x entirely, on one side or both) against
    ``ops.windows``, bit for bit, in both layouts."""
    rng = np.random.default_rng(7)
    cases = list(_geometries())
    assert len(cases) > 40  # the grid is not filtered away
    N, C = 3, 2
    for H, W, HH, WW, s, p in cases:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        H_out, W_out = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1
        K, L = C * HH * WW, H_out * W_out
        want = windows.im2col(windows.pad_hw(x, p), HH, WW, s)  # (N, K, L)
        cols = np.full((K + 1, N, L) if channel_major else (N, K + 1, L), np.nan, dtype)
        conv._im2col(x, HH, WW, s, p, H_out, W_out, cols, channel_major, 1, 0, N)
        got = cols.transpose(1, 0, 2) if channel_major else cols
        _equal(np.ascontiguousarray(got[:, :K]), want)
        assert np.all(got[:, K] == 1)  # the bias's row
        dcols = rng.standard_normal((N, K, L)).astype(dtype)
        padded = (N, C, H + 2 * p, W + 2 * p)
        want_dx = windows.unpad_hw(windows.col2im(dcols, padded, HH, WW, s), p)
        arg = np.ascontiguousarray(dcols.transpose(1, 0, 2)) if channel_major else dcols
        dx = np.full(x.shape, np.nan, dtype)
        conv._col2im(arg, HH, WW, s, p, H_out, W_out, dx, channel_major, 1, 0, N)
        _equal(dx, np.ascontiguousarray(want_dx))


def test_conv_with_mixed_or_other_dtypes_and_integer_weights_is_the_reference() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 5))
    for w, b in [
        (rng.standard_normal((3, 2, 3, 3)).astype(np.float32), np.zeros(3, np.float32)),
        (np.ones((3, 2, 3, 3), dtype=np.int64), np.arange(3)),
    ]:
        out, cache = conv.conv_forward_fused(x, w, b, {"stride": 1, "pad": 1})
        ref, ref_cache = fast.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
        _equal(out, ref)
        dout = rng.standard_normal(out.shape)
        for got, want in zip(
            conv.conv_backward_fused(dout, cache),
            fast.conv_backward_fast(dout, ref_cache),
            strict=True,
        ):
            _equal(got, want)
    x16, w16 = x.astype(np.float16), rng.standard_normal((3, 2, 3, 3)).astype(np.float16)
    b16 = np.zeros(3, np.float16)
    _equal(
        conv.conv_forward_fused(x16, w16, b16, {"stride": 1, "pad": 1})[0],
        fast.conv_forward_fast(x16, w16, b16, {"stride": 1, "pad": 1})[0],
    )


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (
            lambda x, w, b: conv.conv_forward_fused(x, w, b, {"stride": 1, "padding": 1}),
            ValueError,
            "unknown key 'padding'",
        ),
        (
            lambda x, w, b: conv.conv_forward_fused(x, w[:, :1], b, {"stride": 1, "pad": 1}),
            ValueError,
            "x has 2 channels",
        ),
        (
            lambda x, w, b: conv.conv_forward_fused(x.tolist(), w, b, {"stride": 1, "pad": 1}),
            TypeError,
            "x must be a numpy",
        ),
        (
            lambda x, w, b: conv.conv_backward_fused(np.ones(3), None),
            TypeError,
            "needs the cache that conv_forward_fast returns",
        ),
    ],
)
def test_conv_says_what_the_reference_says(call, exc, match) -> None:
    x, w, b = np.ones((2, 2, 4, 4)), np.ones((3, 2, 3, 3)), np.zeros(3)
    with pytest.raises(exc, match=match):
        call(x, w, b)


def _pool_input(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, :2, :2] = 1.5  # a tie: the first maximum in row-major order wins
    x[-1, -1, 0, 0] = np.nan  # NaN wins, as in np.argmax
    x[0, -1, :2, :2] = -1.0  # a window with no positive value (ReLU ties at 0)
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,pool_param",
    [
        ((2, 3, 8, 6), {"pool_height": 2, "pool_width": 2, "stride": 2}),
        ((2, 2, 9, 9), {"pool_height": 3, "pool_width": 3, "stride": 3}),
        ((2, 2, 7, 8), {"pool_height": 1, "pool_width": 2, "stride": 2}),
        ((8, 32, 32, 32), {"pool_height": 2, "pool_width": 2, "stride": 2}),
        ((2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2}),  # overlapping
    ],
)
def test_pooling_and_relu_are_the_reference_bit_for_bit(dtype, shape, pool_param) -> None:
    x = _pool_input(shape, dtype, 2)
    out, cache = pool.max_pool_forward_fused(x, pool_param)
    ref, ref_cache = fast.max_pool_forward_fast(x, pool_param)
    _equal(out, ref)
    _equal(cache.argmax, ref_cache.argmax)
    dout = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    _equal(pool.max_pool_backward_fused(dout, cache), fast.max_pool_backward_fast(dout, ref_cache))
    # ReLU, then pooling: one pass each way, the same as the two reference layers
    s, relu_cache = act.relu_forward(x)
    ref, ref_cache = fast.max_pool_forward_fast(s, pool_param)
    out, cache = pool.relu_pool_forward(x, pool_param)
    _equal(out, ref)
    _equal(cache.argmax, ref_cache.argmax)
    want = act.relu_backward(fast.max_pool_backward_fast(dout, ref_cache), relu_cache)
    _equal(pool.relu_pool_backward(dout, cache), want)
    big = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    _equal(pool.relu_backward_fused(big, x), act.relu_backward(big, x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "ph,pw,stride", [(2, 2, 2), (3, 3, 3), (3, 3, 2), (2, 3, 1), (1, 1, 1), (4, 2, 2)]
)
def test_pooling_with_nan_inf_and_ties_anywhere_is_the_reference(dtype, ph, pw, stride) -> None:
    """Values from a small set (ties everywhere, -0.0 beside 0.0), with NaN, inf and -inf
    at random places (not only a window's first value), so every winner rule is met at
    every offset: fused and reference agree on outputs (signs of zero included), winners
    and gradients, with and without ReLU. ReLU of -inf is 0, as np.maximum makes it."""
    rng = np.random.default_rng(ph * 100 + pw * 10 + stride)
    H = W = 12 if stride > 1 else 7
    H, W = H - (H - ph) % stride, W - (W - pw) % stride  # windows that tile
    x = rng.choice(np.array([-2.0, -1.0, -0.0, 0.0, 1.0, 1.0, 2.0]), (6, 3, H, W)).astype(dtype)
    for bad in (np.nan, np.inf, -np.inf):
        x[rng.random(x.shape) < 0.04] = bad
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    for relu in (False, True):
        src = act.relu_forward(x)[0] if relu else x
        ref, ref_cache = fast.max_pool_forward_fast(src, param)
        out, cache = (pool.relu_pool_forward if relu else pool.max_pool_forward_fused)(x, param)
        _equal(out, ref)
        assert np.array_equal(np.signbit(out), np.signbit(ref))  # -0.0 too (ReLU makes it +0)
        _equal(cache.argmax, ref_cache.argmax)
        dout = rng.standard_normal(out.shape).astype(dtype)
        want = fast.max_pool_backward_fast(dout, ref_cache)
        if relu:
            want = act.relu_backward(want, x)
            _equal(pool.relu_pool_backward(dout, cache), want)
        else:
            _equal(pool.max_pool_backward_fused(dout, cache), want)


def test_pooling_and_relu_say_what_the_reference_says() -> None:
    x = np.ones((2, 2, 4, 4))
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = pool.max_pool_forward_fused(x, pp)
    cases = [
        (
            lambda: pool.max_pool_forward_fused(x, {**pp, "size": 2}),
            ValueError,
            "unknown key 'size'",
        ),
        (lambda: pool.max_pool_forward_fused(x, {**pp, "stride": 3}), ValueError, "do not tile"),
        (lambda: pool.relu_pool_forward(x.astype(int), pp), TypeError, "floating dtype"),
        (
            lambda: pool.max_pool_backward_fused(np.ones((2, 2, 3, 2)), cache),
            ValueError,
            "dout must have shape",
        ),
        (lambda: pool.max_pool_backward_fused(out, None), TypeError, "needs the cache"),
        (lambda: pool.relu_backward_fused(np.ones(3), x), ValueError, "dout must have shape"),
        (lambda: pool.relu_backward_fused(x, (x,)), TypeError, "relu_backward needs the cache"),
        (
            lambda: pool.relu_backward_fused(x.astype(int), x),
            TypeError,
            "dout must have a floating",
        ),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


@pytest.mark.parametrize("window", [2, 3])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (-1, -1, -1, -1), (5, 2, 1, 3)])
@pytest.mark.parametrize("bad", [-1, 9, 10**6])
def test_a_corrupt_pool_cache_is_refused_not_written_through(window, where, bad) -> None:
    """The backward trusts the cache's winners to index dx: a winner outside its window
    (a cache built by hand, or changed since) would write out of bounds in the compiled
    kernels. Every backward, the reference included, raises ValueError instead, and a
    cache of the wrong dtype or shape is refused before any work."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 4, 12, 12))  # 4608 values: one chunk per sample group
    pp = {"pool_height": window, "pool_width": window, "stride": window}
    for backward in (
        fast.max_pool_backward_fast,
        pool.max_pool_backward_fused,
        pool.relu_pool_backward,
    ):
        forward = (
            pool.relu_pool_forward
            if backward is pool.relu_pool_backward
            else fast.max_pool_forward_fast
        )
        out, cache = forward(x, pp)
        dout = rng.standard_normal(out.shape)
        good = backward(dout, cache)  # the cache as made works
        assert good.shape == x.shape
        argmax = cache.argmax.copy()
        argmax[where] = bad
        with pytest.raises(ValueError, match="winners outside"):
            backward(dout, cache._replace(argmax=argmax))
        with pytest.raises(TypeError, match="integer array of window winners"):
            backward(dout, cache._replace(argmax=cache.argmax.astype(np.float64)))
        with pytest.raises(ValueError, match="the cache's argmax must have shape"):
            backward(dout, cache._replace(argmax=cache.argmax[:, :, :1]))


@pytest.mark.parametrize("where", [(0, 0, 0, 0), (-1, -1, -1, -1)])
def test_a_corrupt_one_kernel_cache_is_refused(where) -> None:
    """The same for batch norm + ReLU + pool in one kernel (``kernels.planes_pool``)."""
    from normgrad.kernels import spatial  # noqa: PLC0415

    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 4, 12, 12))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = spatial.spatial_batchnorm_relu_pool_forward_fused(
        x, gamma, beta, {"mode": "train"}, pp
    )
    dout = rng.standard_normal(out.shape)
    argmax = cache.argmax.copy()
    argmax[where] = 4
    for d in (dout, dout.astype(np.float32)):  # the one-kernel path, and the layered one
        with pytest.raises(ValueError, match="winners outside"):
            spatial.spatial_batchnorm_relu_pool_backward_fused(d, cache._replace(argmax=argmax))
    wide = cache._replace(argmax=cache.argmax.astype(np.int64))  # another integer dtype works
    for got, want in zip(
        spatial.spatial_batchnorm_relu_pool_backward_fused(dout, wide),
        spatial.spatial_batchnorm_relu_pool_backward_fused(dout, cache),
        strict=True,
    ):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_sandwiches_give_the_same_bits_with_the_fused_ops(dtype) -> None:
    # conv, ReLU and pooling are bit-identical, so in float64 (reference norms) every
    # sandwich is the same with the fused kernels on and off.
    from normgrad import kernels
    from normgrad.models import blocks

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 6, 6)).astype(dtype)
    w, b = rng.standard_normal((4, 2, 3, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)
    conv_param, pp = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    results = []
    for enabled in (True, False):
        previous = kernels.use_fused(enabled)
        try:
            out, cache = blocks.conv_relu_pool_forward(x, w, b, conv_param, pp)
            dout = np.random.default_rng(6).standard_normal(out.shape).astype(dtype)
            grads = blocks.conv_relu_pool_backward(dout, cache)
            out2, cache2 = blocks.conv_relu_forward(x, w, b, conv_param)
            dout2 = np.random.default_rng(7).standard_normal(out2.shape).astype(dtype)
            grads2 = blocks.conv_relu_backward(dout2, cache2)
            results.append([out, *grads, out2, *grads2])
        finally:
            kernels.use_fused(previous)
    for got, want in zip(*results, strict=True):
        _equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,M", [((4, 5), 3), ((256, 3, 32, 32), 100), ((0, 6), 2)])
def test_affine_is_the_reference_bit_for_bit(dtype, shape, M) -> None:
    from normgrad.kernels import affine
    from normgrad.ops import affine as ref

    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    D = int(np.prod(shape[1:]))
    w, b = rng.standard_normal((D, M)).astype(dtype), rng.standard_normal(M).astype(dtype)
    out, cache = affine.affine_forward_fused(x, w, b)
    want, want_cache = ref.affine_forward(x, w, b)
    _equal(out, want)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for need_dx in (True, False):
        got = affine.affine_backward_fused(dout, cache, need_dx)
        exp = ref.affine_backward(dout, want_cache, need_dx)
        for g, e in zip(got, exp, strict=True):
            if e is None:
                assert g is None
            else:
                _equal(g, e)


def test_affine_mixed_dtypes_and_bad_inputs_are_the_reference() -> None:
    from normgrad.kernels import affine
    from normgrad.ops import affine as ref

    x = np.ones((3, 4), np.float32)
    w, b = np.ones((4, 2)), np.arange(2)  # float64 w, integer b: NumPy's promotion
    _equal(affine.affine_forward_fused(x, w, b)[0], ref.affine_forward(x, w, b)[0])
    with pytest.raises(ValueError, match="w must have shape"):
        affine.affine_forward_fused(x, np.ones((5, 2)), b)
    _, cache = affine.affine_forward_fused(x, np.ones((4, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="need_dx must be True or False"):
        affine.affine_backward_fused(np.ones((3, 2), np.float32), cache, 1)
    with pytest.raises(ValueError, match="dout must have shape"):
        affine.affine_backward_fused(np.ones((3, 3), np.float32), cache)
