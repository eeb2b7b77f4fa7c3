"""2-D convolution (cross-correlation, as in every deep-learning library), naive reference.

Formula, for x: (N, C, H, W), w: (F, C, HH, WW), b: (F,), stride s and zero padding p,
with xp = x zero-padded by p on both sides of H and W::

    H' = 1 + (H + 2p - HH) / s,   W' = 1 + (W + 2p - WW) / s      # must be integers
    out[n, f, i, j] = b[f] + sum_{c, di, dj} w[f, c, di, dj] * xp[n, c, s i + di, s j + dj]

Backward, with dout: (N, F, H', W')::

    db[f]             = sum_{n, i, j} dout[n, f, i, j]
    dw[f, c, di, dj]  = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, s i + di, s j + dj]
    dxp[n, c, s i + di, s j + dj] += sum_f dout[n, f, i, j] * w[f, c, di, dj]
    dx = dxp without its padding

This module is the readable reference: it loops over samples and output pixels, each
step one window against every filter at once. ``normgrad.ops.fast`` computes the same
sums as matrix products (im2col). Train and test behaviour are the same.
cs231n assignment 2, ``conv_forward_naive``; LeCun et al. 1998 for the layer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.params import float_params
from normgrad.ops.windows import conv_geometry, pad_hw, unpad_hw


class ConvCache(NamedTuple):
    """What ``conv_backward_naive`` needs (the course caches (x, w, b, conv_param))."""

    x: np.ndarray  # (N, C, H, W) input: dw sums dout against its windows
    w: np.ndarray  # (F, C, HH, WW) filters: dx sums dout against them
    b: np.ndarray  # (F,) bias: kept for the course's cache layout; db needs only dout
    conv_param: dict[str, Any]  # stride and pad, to revisit the same windows


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, ConvCache]:
    """Convolution forward, by the definition (cs231n signature and semantics).

    Args:
        x: (N, C, H, W) input.
        w: (F, C, HH, WW) filters; integer or bool filters (the course's kitten/puppy
            cell) are cast to np.result_type(x, w, b), so the gradients are floating.
        b: (F,) biases; likewise.
        conv_param: dict with ``stride`` (int >= 1) and ``pad`` (int >= 0, zeros added on
            each side of H and W); integral floats such as 1.0 are accepted.

    Returns:
        out: (N, F, H', W') with H' = 1 + (H + 2 pad - HH) / stride and likewise W',
        and the cache.

    Raises:
        TypeError: x is not a floating ndarray, w or b is not a real numeric ndarray,
            conv_param is not a dict, or stride or pad is not a number.
        ValueError: wrong dimensions or channel count, filters smaller than 1x1, b not
            (F,), an unknown key in conv_param, stride or pad not a valid integer, or an
            output size that is not an integer. An empty batch (N = 0) is valid: out is
            (0, F, H', W').
    """
    w, b = float_params(x, w=w, b=b)  # integer w, b -> floating: float gradients
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    N = x.shape[0]
    F, C, HH, WW = w.shape
    xp = pad_hw(x, pad)  # (N, C, H + 2p, W + 2p)
    w_rows = w.reshape(F, C * HH * WW)  # (F, C*HH*WW); explicit sizes: F or C may be 0
    out = np.empty((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                window = xp[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                out[n, :, i, j] = w_rows @ window.ravel() + b  # (F,)
    return out, ConvCache(x, w, b, conv_param)


def conv_backward_naive(
    dout: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convolution backward, by the definition (cs231n signature).

    Args:
        dout: (N, F, H', W') upstream gradient.
        cache: from ``conv_forward_naive``.

    Returns:
        dx: (N, C, H, W), dw: (F, C, HH, WW), db: (F,).

    Raises:
        TypeError: cache is not a ``conv_forward_naive`` cache (None, or another layer's,
            such as ``conv_forward_fast``'s), or dout is not a floating ndarray.
        ValueError: dout is not the forward output's shape (N, F, H', W').
    """
    v.cache_of(cache, ConvCache, "conv_backward_naive", "conv_forward_naive")
    x, w, b, conv_param = cache
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    N = x.shape[0]
    F, C, HH, WW = w.shape
    v.float_array(dout, "dout")
    v.shape(dout, "dout", (N, F, H_out, W_out), "the shape of the forward output")
    xp = pad_hw(x, pad)  # (N, C, Hp, Wp)
    w_rows = w.reshape(F, C * HH * WW)  # (F, C*HH*WW)
    dt = np.result_type(dout, x, w)
    dxp = np.zeros(xp.shape, dtype=dt)  # (N, C, Hp, Wp)
    dw_rows = np.zeros(w_rows.shape, dtype=dt)  # (F, C*HH*WW)
    db = dout.sum(axis=(0, 2, 3)).astype(dt, copy=False)  # (F,)
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                rows = slice(i * stride, i * stride + HH)
                cols = slice(j * stride, j * stride + WW)
                g = dout[n, :, i, j]  # (F,)
                dw_rows += np.outer(g, xp[n, :, rows, cols].ravel())  # (F, C*HH*WW)
                dxp[n, :, rows, cols] += (g @ w_rows).reshape(w.shape[1:])  # (C, HH, WW)
    dx = unpad_hw(dxp, pad).copy()  # (N, C, H, W)
    return dx, dw_rows.reshape(w.shape), db
