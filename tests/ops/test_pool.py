"""Max pooling, naive and fast: finite differences, F.max_pool2d parity, agreement, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.fast_layers import max_pool_backward_fast, max_pool_forward_fast
from normgrad.gradient_check import check_layer
from normgrad.layers import max_pool_backward_naive, max_pool_forward_naive

IMPLS = {
    "naive": (max_pool_forward_naive, max_pool_backward_naive),
    "fast": (max_pool_forward_fast, max_pool_backward_fast),
}
# (x shape, pool_height, pool_width, stride): tiling, overlapping, non-square windows
GEOMETRIES = [
    ((2, 3, 4, 4), 2, 2, 2),
    ((2, 3, 5, 5), 3, 3, 2),
    ((1, 2, 6, 5), 2, 3, 1),
    ((2, 2, 7, 7), 3, 1, 2),
]


def _distinct(shape, seed):
    """Distinct values 0.1 apart in random order: no ties, so the max is differentiable."""
    n = int(np.prod(shape))
    return 0.1 * np.random.default_rng(seed).permutation(n).reshape(shape) - 3.0


def _param(ph, pw, stride):
    return {"pool_height": ph, "pool_width": pw, "stride": stride}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape, ph, pw, stride", GEOMETRIES)
def test_finite_differences(impl, shape, ph, pw, stride):
    forward, backward = IMPLS[impl]
    report = check_layer(
        lambda x: forward(x, _param(ph, pw, stride)), backward, {"x": _distinct(shape, 1)}, seed=2
    )
    assert report["dx"].rel_error < 1e-8, report["dx"].rel_error


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape, ph, pw, stride", GEOMETRIES)
def test_matches_torch_max_pool2d(impl, shape, ph, pw, stride):
    forward, backward = IMPLS[impl]
    x = _distinct(shape, 3) + 0.01 * np.random.default_rng(5).standard_normal(shape)
    out, cache = forward(x, _param(ph, pw, stride))
    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx = backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.max_pool2d(xt, (ph, pw), stride=stride)
    yt.backward(torch.tensor(dout))
    assert out.shape == tuple(yt.shape)
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    assert np.max(np.abs(dx - xt.grad.numpy())) < 1e-9


@pytest.mark.parametrize("shape, ph, pw, stride", GEOMETRIES)
def test_fast_agrees_with_naive_ties_included(shape, ph, pw, stride):
    # Integer-valued inputs have many ties; both versions send the gradient to the first
    # maximum of each window in row-major order.
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    out_n, cache_n = max_pool_forward_naive(x, _param(ph, pw, stride))
    out_f, cache_f = max_pool_forward_fast(x, _param(ph, pw, stride))
    np.testing.assert_array_equal(out_n, out_f)
    dout = rng.standard_normal(out_n.shape)
    dx_n = max_pool_backward_naive(dout, cache_n)
    dx_f = max_pool_backward_fast(dout, cache_f)
    assert np.max(np.abs(dx_n - dx_f)) < 1e-9
    np.testing.assert_allclose(dx_n.sum(), dout.sum())  # every dout lands somewhere once


def test_course_values():
    # The course's max_pool_forward_naive check.
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out, _ = max_pool_forward_naive(x, _param(2, 2, 2))
    correct = np.array(
        [
            [
                [[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]],
            ],
            [
                [[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                [[0.32631579, 0.34105263], [0.38526316, 0.4]],
            ],
        ]
    )
    assert np.max(np.abs(out - correct)) < 1e-7


@pytest.mark.parametrize("forward", [max_pool_forward_naive, max_pool_forward_fast])
def test_errors(forward):
    x = np.zeros((2, 3, 5, 5))
    with pytest.raises(
        ValueError,
        match=r"max pool: the windows do not tile the input along "
        r"its height: .*\(5 \+ 2\*0 - 2\) / 2 = 1.5",
    ):
        forward(x, _param(2, 2, 2))
    with pytest.raises(ValueError, match="along its width"):
        forward(np.zeros((2, 3, 4, 5)), _param(2, 2, 2))
    with pytest.raises(ValueError, match="larger than the padded input"):
        forward(x, _param(6, 2, 1))
    with pytest.raises(ValueError, match=r"pool_param\['stride'\] must be an integer >= 1"):
        forward(x, _param(2, 2, 0))
    with pytest.raises(ValueError, match="must contain 'pool_width'"):
        forward(x, {"pool_height": 2, "stride": 1})
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        forward(x[0], _param(1, 1, 1))
    with pytest.raises(TypeError, match="floating dtype"):
        forward(x.astype(np.int32), _param(1, 1, 1))


@pytest.mark.parametrize("impl", IMPLS)
def test_integral_float_pool_param(impl):
    forward, backward = IMPLS[impl]
    x = np.random.default_rng(13).standard_normal((2, 3, 4, 6))
    out, cache = forward(x, {"pool_height": 2.0, "pool_width": np.float32(2), "stride": 2.0})
    ref, ref_cache = forward(x, _param(2, 2, 2))
    np.testing.assert_array_equal(out, ref)
    dout = np.random.default_rng(14).standard_normal(out.shape)
    np.testing.assert_array_equal(backward(dout, cache), backward(dout, ref_cache))
    with pytest.raises(ValueError, match=r"pool_param\['pool_width'\] .*non-integral 2.5"):
        forward(x, {"pool_height": 2, "pool_width": 2.5, "stride": 2})


def test_course_reshape_and_im2col_pool_aliases():
    from normgrad import fast_layers as fl

    x = np.random.default_rng(15).standard_normal((2, 3, 8, 6))
    dout = np.random.default_rng(16).standard_normal((2, 3, 4, 3))
    param = _param(2, 2, 2)
    ref, ref_cache = max_pool_forward_naive(x, param)
    ref_dx = max_pool_backward_naive(dout, ref_cache)
    for fwd, bwd in (
        (fl.max_pool_forward_reshape, fl.max_pool_backward_reshape),
        (fl.max_pool_forward_im2col, fl.max_pool_backward_im2col),
    ):
        out, cache = fwd(x, param)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(bwd(dout, cache), ref_dx)
    # im2col takes any tiling pools; reshape only square, non-overlapping, tiling ones.
    out, cache = fl.max_pool_forward_im2col(x, _param(3, 2, 1))
    np.testing.assert_array_equal(out, max_pool_forward_naive(x, _param(3, 2, 1))[0])
    for bad, why in (
        (_param(2, 2, 1), "pool 2x2, stride 1"),
        (_param(2, 1, 1), "pool 2x1"),
        (_param(1, 2, 1), "pool 1x2, stride 1"),
    ):
        with pytest.raises(ValueError, match=f"pool_height == pool_width == stride.*{why}"):
            fl.max_pool_forward_reshape(x, bad)
    with pytest.raises(ValueError, match="do not tile"):  # 3 does not divide H = 8
        fl.max_pool_forward_reshape(x, _param(3, 3, 3))
    out, _ = fl.max_pool_forward_reshape(x[:, :, :6], _param(3, 3, 3))  # 6 x 6 tiles
    assert out.shape == (2, 3, 2, 2)
    assert {
        "max_pool_forward_reshape",
        "max_pool_backward_reshape",
        "max_pool_forward_im2col",
        "max_pool_backward_im2col",
    } <= set(fl.__all__)
