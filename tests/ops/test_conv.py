"""Convolution, naive and fast: finite differences, F.conv2d parity, agreement, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.fast_layers import conv_backward_fast, conv_forward_fast
from normgrad.gradient_check import check_layer
from normgrad.layers import conv_backward_naive, conv_forward_naive

IMPLS = {
    "naive": (conv_forward_naive, conv_backward_naive),
    "fast": (conv_forward_fast, conv_backward_fast),
}
# (x shape, w shape, stride, pad): square and non-square, overlapping and strided windows
GEOMETRIES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((2, 3, 5, 5), (4, 3, 3, 3), 2, 1),
    ((2, 2, 6, 4), (3, 2, 2, 2), 2, 0),
    ((1, 3, 7, 5), (2, 3, 3, 1), 2, 2),
    ((3, 1, 4, 4), (2, 1, 4, 4), 1, 0),
]


def _inputs(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", GEOMETRIES[:4])
def test_finite_differences(impl, x_shape, w_shape, stride, pad):
    forward, backward = IMPLS[impl]
    x, w, b = _inputs(x_shape, w_shape, seed=1)
    param = {"stride": stride, "pad": pad}
    report = check_layer(
        lambda x, w, b: forward(x, w, b, param), backward, {"x": x, "w": w, "b": b}, seed=2
    )
    assert [g.name for g in report.grads] == ["dx", "dw", "db"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", GEOMETRIES)
def test_matches_torch_conv2d(impl, x_shape, w_shape, stride, pad):
    forward, backward = IMPLS[impl]
    x, w, b = _inputs(x_shape, w_shape, seed=3)
    out, cache = forward(x, w, b, {"stride": stride, "pad": pad})
    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    yt.backward(torch.tensor(dout))
    assert out.shape == tuple(yt.shape)
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    for ours, theirs in [(dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert ours.shape == tuple(theirs.shape)
        assert np.max(np.abs(ours - theirs.numpy())) < 1e-9


def test_fast_agrees_with_naive_on_the_benchmark_shape():
    # The bench shape, with fewer samples to keep the naive loop quick.
    x, w, b = _inputs((4, 3, 32, 32), (32, 3, 3, 3), seed=5)
    param = {"stride": 1, "pad": 1}
    out_n, cache_n = conv_forward_naive(x, w, b, param)
    out_f, cache_f = conv_forward_fast(x, w, b, param)
    assert np.max(np.abs(out_n - out_f)) < 1e-9
    dout = np.random.default_rng(6).standard_normal(out_n.shape)
    for gn, gf in zip(conv_backward_naive(dout, cache_n), conv_backward_fast(dout, cache_f)):
        assert np.max(np.abs(gn - gf)) < 1e-9


def test_course_values():
    # The course's conv_forward_naive check: linspace inputs, stride 2, pad 1.
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    correct = np.array(
        [
            [
                [[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                [[0.50813986, 0.54309974], [0.64082444, 0.67101435]],
            ],
            [
                [[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                [[2.36270298, 2.36904306], [2.38090835, 2.38247847]],
            ],
        ]
    )
    assert np.max(np.abs(out - correct)) < 1e-7


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
def test_errors(forward):
    x, w, b = _inputs((2, 3, 5, 5), (4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"\(5 \+ 2\*0 - 3\) / 3 = 0.666667 is not an integer"):
        forward(x, w, b, {"stride": 3, "pad": 0})
    with pytest.raises(ValueError, match="along its width"):
        forward(np.zeros((2, 3, 5, 6)), w, b, {"stride": 2, "pad": 0})
    with pytest.raises(ValueError, match="larger than the padded input"):
        forward(x, np.zeros((4, 3, 7, 7)), b, {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match=r"x has 2 channels but w expects C = 3"):
        forward(x[:, :2], w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        forward(x, w, b[:3], {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        forward(x[0], w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"conv_param\['stride'\] must be an integer >= 1"):
        forward(x, w, b, {"stride": 0, "pad": 1})
    with pytest.raises(ValueError, match=r"conv_param\['pad'\] must be an integer >= 0"):
        forward(x, w, b, {"stride": 1, "pad": 0.5})
    with pytest.raises(ValueError, match="must contain 'pad'"):
        forward(x, w, b, {"stride": 1})
    with pytest.raises(TypeError, match="floating dtype"):
        forward(x.astype(np.int64), w, b, {"stride": 1, "pad": 1})


@pytest.mark.parametrize("impl", IMPLS)
def test_course_kitten_puppy_cell_integer_bias(impl):
    # ConvolutionalNetworks.ipynb, "Image processing via convolutions": float filters and
    # an integer bias b = np.array([0, 128]), with stride and pad 1.
    forward, backward = IMPLS[impl]
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 255, size=(2, 3, 6, 6))
    w = np.zeros((2, 3, 3, 3))
    w[0, 0] = [[0, 0, 0], [0, 0.3, 0], [0, 0, 0]]
    w[0, 1] = [[0, 0, 0], [0, 0.6, 0], [0, 0, 0]]
    w[0, 2] = [[0, 0, 0], [0, 0.1, 0], [0, 0, 0]]
    w[1, 2] = [[0, 0, 0], [-1, 2, -1], [0, 0, 0]]
    b = np.array([0, 128])
    out, cache = forward(x, w, b, {"stride": 1, "pad": 1})
    assert out.dtype == np.float64
    grey = 0.3 * x[:, 0] + 0.6 * x[:, 1] + 0.1 * x[:, 2]
    np.testing.assert_allclose(out[:, 0], grey, rtol=1e-12)
    xp = np.pad(x[:, 2], ((0, 0), (0, 0), (1, 1)))
    edges = 2 * x[:, 2] - xp[:, :, :-2] - xp[:, :, 2:] + 128
    np.testing.assert_allclose(out[:, 1], edges, rtol=1e-12, atol=1e-9)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    ref = backward(dout, forward(x, w, b.astype(np.float64), {"stride": 1, "pad": 1})[1])
    for ours, theirs in zip(grads, ref):
        assert ours.dtype == np.float64
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("impl", IMPLS)
def test_integer_filters_give_float_gradients(impl):
    forward, backward = IMPLS[impl]
    x, w, b = _inputs((2, 3, 5, 5), (4, 3, 3, 3), seed=9)
    wi, bi = np.round(2 * w).astype(np.int32), np.round(2 * b).astype(np.int16)
    out, cache = forward(x, wi, bi, {"stride": 2, "pad": 1})
    ref_out, ref_cache = forward(
        x, wi.astype(np.float64), bi.astype(np.float64), {"stride": 2, "pad": 1}
    )
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(10).standard_normal(out.shape)
    for ours, theirs in zip(backward(dout, cache), backward(dout, ref_cache)):
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        forward(x.astype(np.int64), wi, bi, {"stride": 1, "pad": 1})


@pytest.mark.parametrize("impl", IMPLS)
def test_integral_float_stride_and_pad(impl):
    forward, backward = IMPLS[impl]
    x, w, b = _inputs((2, 3, 5, 5), (4, 3, 3, 3), seed=11)
    out, cache = forward(x, w, b, {"stride": 2.0, "pad": np.float64(1)})
    ref, ref_cache = forward(x, w, b, {"stride": 2, "pad": 1})
    np.testing.assert_array_equal(out, ref)
    dout = np.random.default_rng(12).standard_normal(out.shape)
    for ours, theirs in zip(backward(dout, cache), backward(dout, ref_cache)):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match=r"conv_param\['stride'\] .*non-integral 1.5"):
        forward(x, w, b, {"stride": 1.5, "pad": 1})
    with pytest.raises(ValueError, match=r"conv_param\['pad'\] must be an integer"):
        forward(x, w, b, {"stride": 1, "pad": float("nan")})
    with pytest.raises(TypeError, match=r"conv_param\['stride'\] must be an integer"):
        forward(x, w, b, {"stride": True, "pad": 1})


@pytest.mark.parametrize(
    "geometry", [((2, 3, 6, 5), (4, 3, 3, 2), 1, 1), ((3, 2, 7, 7), (5, 2, 3, 3), 2, 0)]
)
def test_windows_im2col_writes_into_a_view_of_a_larger_matrix(geometry) -> None:
    """``ops.windows.im2col(out=)`` fills the first K rows of each sample's (K + 1)-row
    matrix exactly as the new array it would return, and leaves the last row alone."""
    from normgrad.ops.windows import im2col, pad_hw

    x_shape, w_shape, stride, pad = geometry
    rng = np.random.default_rng(3)
    x = pad_hw(rng.standard_normal(x_shape), pad)
    _, _, HH, WW = w_shape
    fresh = im2col(x, HH, WW, stride)
    N, K, P = fresh.shape
    big = np.full((N, K + 1, P), 7.0)
    got = im2col(x, HH, WW, stride, out=big[:, :K])
    assert np.shares_memory(got, big)
    np.testing.assert_array_equal(big[:, :K], fresh)
    np.testing.assert_array_equal(big[:, K], 7.0)
    for bad in (big, big[:1, :K], np.zeros((N, K, P + 1)), [[0.0]]):
        with pytest.raises(ValueError, match="out must be a writeable array of shape"):
            im2col(x, HH, WW, stride, out=bad)  # never a write past the end of out
    frozen = np.zeros((N, K, P))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        im2col(x, HH, WW, stride, out=frozen)


def test_bias_in_the_product_equals_adding_it_after() -> None:
    """[w | b] @ [cols; 1] is w @ cols + b (float64, to rounding), empty filters included."""
    from normgrad.ops.fast import with_bias

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 6, 6))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4) * 10
    conv_param = {"stride": 1, "pad": 1}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    plain = np.matmul(w.reshape(4, -1), cache.cols) + b[:, None]
    assert np.max(np.abs(out.reshape(3, 4, -1) - plain)) < 1e-12
    assert with_bias(np.zeros((0, 2, 3, 3)), np.zeros(0)).shape == (0, 19)
    assert with_bias(np.zeros((4, 0, 3, 3)), b).shape == (4, 1)
    out0, _ = conv_forward_fast(np.zeros((2, 0, 5, 5)), np.zeros((4, 0, 3, 3)), b, conv_param)
    np.testing.assert_array_equal(out0, np.broadcast_to(b[None, :, None, None], (2, 4, 5, 5)))
