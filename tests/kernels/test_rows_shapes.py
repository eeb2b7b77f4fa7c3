"""The per-row kernels' Q = 1 path (``kernels.rows``) at the shapes its loops split on.

Row lengths below, at and above a vector's width and ``_rowmath.SPAN`` (vector tails, several
spans, a span tail), chunks of one row and of more rows than a ``BLOCK`` of column
partials, and per-group scales (group norm with H = W = 1 is Q = 1 with G > 1): every
result against the reference, float64 to 1e-12 and float32 to 1e-5 relative. Every
forward runs each of ``flatrows``' loops (pipelined, two-pass, two-pass with a prefetch of
the next row), whatever x's size and dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

from normgrad.kernels import flatrows, rows
from normgrad.kernels import group as fgroup
from normgrad.kernels import layer as flayer
from normgrad.kernels import rms as frms
from normgrad.kernels._rowmath import BLOCK, SPAN
from normgrad.norms import group, layer, rms

L = flatrows.LANES  # the pipelined forward's partial sums
ROW_SHAPES = [(1, 1), (2, L - 1), (3, L), (5, L + 3), (BLOCK + 7, 70), (130, 257),
              (4, SPAN), (3, 2 * SPAN + L + 5), (2100, 24)]  # fmt: skip


LOOPS = flatrows.LOOPS
LOOP_OF = flatrows.loop_of  # the real rule (the fixture below replaces it)


@pytest.fixture(params=list(LOOPS), autouse=True)
def loop(request, monkeypatch) -> str:
    """Each test once with every Q = 1 forward in each of flatrows' loops."""
    monkeypatch.setattr(flatrows, "loop_of", lambda x: LOOPS[request.param])
    return request.param


def _draw(shape, dtype, seed=0, offset=7.0):
    rng = np.random.default_rng(seed)
    D = shape[-1]
    x = 3.0 * rng.standard_normal(shape) + offset
    g, b, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal(shape)
    return [a.astype(dtype) for a in (x, g, b, dout)]


def _close(got, want, dtype, scale=None):
    """Equal to rounding: relative to ``scale``, the size of the terms that make ``want``
    (dx's terms are inv * dout * gamma: they cancel to nearly 0 in a row of one value)."""
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert got.dtype == want.dtype and got.shape == want.shape
    scale = float(np.abs(want).max()) if scale is None else scale
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def _dx_scale(dout, g, cache):
    return float(np.abs(dout * g).max() * cache.rstd.max())


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_matches_the_reference(shape, dtype) -> None:
    x, g, b, dout = _draw(shape, dtype)
    want, cache_r = layer.layernorm_forward(x, g, b, {})
    got, cache = flayer.layernorm_forward_fused(x, g, b, {})
    assert type(cache).__name__ == "FusedLayerNormCache"  # the kernel ran
    _close(got, want, dtype)
    dx, dgamma, dbeta = flayer.layernorm_backward_fused(dout, cache)
    dx_r, dgamma_r, dbeta_r = layer.layernorm_backward(dout, cache_r)
    _close(dx, dx_r, dtype, _dx_scale(dout, g, cache))
    _close(dgamma, dgamma_r, dtype)
    _close(dbeta, dbeta_r, dtype)


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rms_norm_matches_the_reference(shape, dtype) -> None:
    x, g, _, dout = _draw(shape, dtype, offset=0.5)
    want, cache_r = rms.rmsnorm_forward(x, g, {})
    got, cache = frms.rmsnorm_forward_fused(x, g, {})
    assert type(cache).__name__ == "FusedRMSNormCache"
    _close(got, want, dtype)
    dx, dgamma = frms.rmsnorm_backward_fused(dout, cache)
    dx_r, dgamma_r = rms.rmsnorm_backward(dout, cache_r)
    _close(dx, dx_r, dtype, _dx_scale(dout, g, cache))
    _close(dgamma, dgamma_r, dtype)


@pytest.mark.parametrize("N,C,G", [(3, 6, 2), (70, 8, 4), (40, 2 * L + 2, 2)])
def test_per_group_scales_with_one_value_per_channel(N, C, G) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, 1, 1)) + 4.0
    g, b = rng.standard_normal((1, C, 1, 1)), rng.standard_normal((1, C, 1, 1))
    dout = rng.standard_normal(x.shape)
    want, cache_r = group.spatial_groupnorm_forward(x, g, b, G, {})
    got, cache = fgroup.spatial_groupnorm_forward_fused(x, g, b, G, {})
    assert type(cache).__name__ == "FusedGroupNormCache"
    _close(got, want, np.float64)
    grads = fgroup.spatial_groupnorm_backward_fused(dout, cache)
    for a, w in zip(grads, group.spatial_groupnorm_backward(dout, cache_r), strict=True):
        _close(a, w, np.float64)


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_float32_rows_far_from_zero_keep_the_contract(offset) -> None:
    """float32 data at 1e4 and 1e6 times its spread normalizes to within 1e-3 of float64."""
    rng = np.random.default_rng(2)
    x64 = offset + rng.standard_normal((300, 3 * L + 1))
    x32 = x64.astype(np.float32)
    g, b = np.ones(x64.shape[1]), np.zeros(x64.shape[1])
    want, _ = layer.layernorm_forward(x32.astype(np.float64), g, b, {})
    got, cache = flayer.layernorm_forward_fused(x32, g.astype(np.float32), b.astype(np.float32), {})
    assert type(cache).__name__ == "FusedLayerNormCache"
    assert float(np.abs(got - want).max()) < 1e-3


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_loops_agree(shape, dtype, loop, monkeypatch) -> None:
    """The pipelined and two-pass loops sum in different orders: equal to rounding. The
    prefetch changes no value: its results are the two-pass loop's bits. (For the
    two-pass loop itself: the same bits on a second call.)"""
    x, g, b, _ = _draw(shape, dtype)
    runs = {}
    for name in ("two-pass", loop):
        monkeypatch.setattr(flatrows, "loop_of", lambda a, name=name: LOOPS[name])
        runs[name] = rows.forward(x, g, b, shape[-1], 1, 1, 1e-5, True)
        assert runs[name] is not None
    for a, w in zip(runs[loop], runs["two-pass"], strict=True):
        if loop == "piped":
            _close(a, w, dtype)
        else:
            assert a.dtype == w.dtype and np.array_equal(a, w)


@pytest.mark.parametrize(
    ("dtype", "big", "want"),
    [(np.float64, False, (False, False)), (np.float32, False, (False, False)),
     (np.float64, True, (True, False)), (np.float32, True, (False, True))],
)  # fmt: skip
def test_the_loop_is_chosen_by_size_and_dtype(dtype, big, want, monkeypatch, loop_calls) -> None:
    """x below ``OUT_OF_CACHE`` bytes takes two passes; at it, float64 is pipelined and
    float32 takes two passes with a prefetch, whatever the thread count (the choice never
    changes a result's bits across thread counts)."""
    monkeypatch.setattr(flatrows, "loop_of", LOOP_OF)
    x, g, b, _ = _draw((64, 96), dtype)
    monkeypatch.setattr(flatrows, "OUT_OF_CACHE", x.nbytes if big else x.nbytes + 1)
    assert flatrows.loop_of(x) == want
    rows.forward(x, g, b, 96, 1, 1, 1e-5, True)
    assert loop_calls == [want]
