"""Max pooling, naive reference (cs231n assignment 2, ``max_pool_forward_naive``).

Formula, for x: (N, C, H, W), a pool_height x pool_width window and stride s::

    H' = 1 + (H - pool_height) / s,   W' = 1 + (W - pool_width) / s   # must be integers
    out[n, c, i, j] = max_{di, dj} x[n, c, s i + di, s j + dj]

Backward: each dout[n, c, i, j] flows to the one input that won its window, and windows
that overlap (stride < window) add up at the inputs they share::

    dx[n, c, s i + di*, s j + dj*] += dout[n, c, i, j],   (di*, dj*) = argmax of the window

Ties go to the first maximum in row-major order within the window, which is what
``np.argmax`` returns, and the fast version makes the same choice. The max is not
differentiable at a tie, so gradient checks use inputs without ties.
Train and test behaviour are the same.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.ops.windows import pool_geometry


class PoolCache(NamedTuple):
    """What ``max_pool_backward_naive`` needs (the course caches (x, pool_param))."""

    x: np.ndarray  # (N, C, H, W) input: backward re-finds each window's winner in it
    pool_param: dict[str, Any]  # pool_height, pool_width, stride: the same windows again


def max_pool_forward_naive(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, PoolCache]:
    """Max pooling forward, by the definition (cs231n signature and semantics).

    Args:
        x: (N, C, H, W) input.
        pool_param: dict with ``pool_height``, ``pool_width`` and ``stride``, ints >= 1
            (integral floats such as 2.0 are accepted).

    Returns:
        out: (N, C, H', W'), and the cache.

    Raises:
        TypeError: x is not a floating ndarray, pool_param is not a dict, or a size is
            not a number.
        ValueError: x not 4-D, a missing, unknown or non-integer parameter, or windows
            that do not tile the input ((H - pool_height) / stride not an integer,
            likewise W). An empty batch (N = 0) is valid: out is (0, C, H', W').
    """
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            out[:, :, i, j] = window.max(axis=(2, 3))  # (N, C)
    return out, PoolCache(x, pool_param)


def max_pool_backward_naive(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Max pooling backward, by the definition (cs231n signature).

    Args:
        dout: (N, C, H', W') upstream gradient.
        cache: from ``max_pool_forward_naive``.

    Returns:
        dx: (N, C, H, W).

    Raises:
        TypeError: cache is not a ``max_pool_forward_naive`` cache (None, or another
            layer's, such as ``max_pool_forward_fast``'s), or dout is not a floating ndarray.
        ValueError: dout is not the forward output's shape (N, C, H', W').
    """
    v.cache_of(cache, PoolCache, "max_pool_backward_naive", "max_pool_forward_naive")
    x, pool_param = cache
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    v.float_array(dout, "dout")
    v.shape(dout, "dout", (N, C, H_out, W_out), "the shape of the forward output")
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    n_idx, c_idx = np.indices((N, C))  # (N, C) each
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            k = window.reshape(N, C, ph * pw).argmax(axis=2)  # (N, C) first maximum
            di, dj = np.divmod(k, pw)  # (N, C) each: the winner's offset in the window
            dx[n_idx, c_idx, i * stride + di, j * stride + dj] += dout[:, :, i, j]
    return dx
