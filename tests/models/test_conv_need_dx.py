"""need_dx=False on the conv backward and its sandwiches: dx skipped, dw and db unchanged.

The ConvNet's first layer passes need_dx=False (its images need no gradient); these tests
pin that the skip changes nothing else, on the reference and the fused routes alike.
"""

from __future__ import annotations

import numpy as np
import pytest

from normgrad import kernels
from normgrad.models import blocks
from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.ops.fast import conv_backward_fast, conv_forward_fast

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _conv_inputs(dtype: type, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 2, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_backward_without_dx_gives_the_same_dw_and_db(fused: bool, dtype: type) -> None:
    if fused and not kernels.available():
        pytest.skip("numba is not installed")
    from normgrad.kernels import choose

    x, w, b = _conv_inputs(dtype)
    prev = kernels.use_fused(fused)
    try:
        out, cache = choose.conv_forward(x, w, b, CONV)
        dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        dx, dw, db = choose.conv_backward(dout, cache, True)
        none, dw2, db2 = choose.conv_backward(dout, cache, False)
    finally:
        kernels.use_fused(prev)
    assert dx is not None and dx.shape == x.shape
    assert none is None
    assert np.array_equal(dw, dw2) and np.array_equal(db, db2)


@pytest.mark.parametrize("bad", ["no", 0, None, 1.0])
def test_need_dx_must_be_a_bool(bad: object) -> None:
    x, w, b = _conv_inputs(np.float64)
    out, cache = conv_forward_fast(x, w, b, CONV)
    with pytest.raises(TypeError, match="need_dx"):
        conv_backward_fast(np.zeros_like(out), cache, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("norm", [None, "batchnorm", "groupnorm"])
def test_sandwich_without_dx(norm: str | None) -> None:
    x, w, b = _conv_inputs(np.float64, seed=3)
    gamma = beta = None
    param: dict | None = None
    if norm is not None:
        shape = blocks.CONV_BLOCKS[norm].param_shape(4)
        gamma, beta = np.full(shape, 1.5), np.full(shape, -0.25)
        param = {"mode": "train"}
    out, cache = blocks.conv_norm_relu_pool_forward(
        x, w, b, gamma, beta, CONV, POOL, param, norm, G=2
    )
    dout = np.random.default_rng(4).standard_normal(out.shape)
    full = blocks.conv_norm_relu_pool_backward(dout, cache)
    skip = blocks.conv_norm_relu_pool_backward(dout, cache, need_dx=False)
    assert full[0] is not None and skip[0] is None
    for got, want in zip(skip[1:], full[1:], strict=True):
        assert (got is None and want is None) or np.array_equal(got, want)
    with pytest.raises(TypeError, match="need_dx"):
        blocks.conv_norm_relu_pool_backward(dout, cache, need_dx="False")  # type: ignore[arg-type]


def test_convnet_gradients_are_unchanged_by_the_skip() -> None:
    """The model's grads equal those from the full sandwich backward, bit for bit."""
    model = ThreeLayerConvNet(
        input_dim=(2, 6, 6),
        num_filters=4,
        filter_size=3,
        hidden_dim=5,
        num_classes=3,
        normalization="batchnorm",
        dtype=np.float64,
        reg=0.1,
    )
    rng = np.random.default_rng(7)
    X = rng.standard_normal((4, 2, 6, 6))
    y = rng.integers(0, 3, size=4)
    _, grads = model.loss(X, y)
    original = blocks.conv_norm_relu_pool_backward
    calls: list[bool] = []

    def spy(dout, cache, need_dx=True):  # type: ignore[no-untyped-def]
        calls.append(need_dx)
        return original(dout, cache, True)

    import normgrad.models.cnn as cnn

    cnn.conv_norm_relu_pool_backward = spy  # type: ignore[assignment]
    try:
        _, grads_full = model.loss(X, y)
    finally:
        cnn.conv_norm_relu_pool_backward = original  # type: ignore[assignment]
    assert calls == [False]
    assert grads.keys() == grads_full.keys()
    for name in grads:
        assert np.array_equal(grads[name], grads_full[name]), name
