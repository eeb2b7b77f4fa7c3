"""Vectorized convolution and max pooling: the same sums as the naive references.

Convolution by im2col (Chellapilla et al. 2006, "High Performance Convolutional Neural
Networks for Document Processing"): every window of the padded input becomes one column of
``cols``, so the whole layer is one matrix product, run by BLAS::

    cols = im2col(xp)                              # (N, C*HH*WW, H'*W')
    out  = [w.reshape(F, -1) | b] @ [cols; 1]      # (N, F, H'*W'), per sample n

    dw    = (sum_n cols_n @ dout_n.T).T            # (F, C*HH*WW) -> (F, C, HH, WW)
    dcols = w.reshape(F, -1).T @ dout_n            # (N, C*HH*WW, H'*W')
    dx    = col2im(dcols) without the padding      # (N, C, H, W)
    db    = sum of dout over N, H', W'             # (F,)

with dout_n = dout[n] as (F, H'*W'). ``dw`` is formed transposed, (C*HH*WW, F) per
sample: OpenBLAS runs that product 1.4x faster than dout_n @ cols_n.T (float32, the
course's 50 x 147 x 1024 x 32: 3.6 ms against 5.0 on 2 threads). The batched products
leave every result in the (N, F, H', W') layout already, so no large transpose is copied.

Max pooling takes the argmax of every window of a strided view at once, and its backward
scatters dout onto the winners with one ``np.bincount`` (which adds up the windows that
share a winner when they overlap).

No Python loop runs over pixels: ``col2im`` loops over the HH * WW offsets inside a
window only. Results equal ``normgrad.ops.conv`` and ``normgrad.ops.pool`` to rounding,
ties in pooling included (both pick the first maximum of a window in row-major order).
cs231n ``fast_layers``: ``conv_forward_fast`` and friends, same signatures.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.params import float_params
from normgrad._internal.validate import flag
from normgrad.ops.windows import (
    col2im,
    conv_geometry,
    im2col,
    pad_hw,
    pool_geometry,
    unpad_hw,
    window_view,
)


class FastConvCache(NamedTuple):
    """What ``conv_backward_fast`` needs."""

    x: np.ndarray  # (N, C, H, W) input: its shape, and the geometry, for dx
    w: np.ndarray  # (F, C, HH, WW) filters: dcols = w.reshape(F, -1).T @ dout
    b: np.ndarray  # (F,) bias: re-validates the geometry; db needs only dout
    conv_param: dict[str, Any]  # stride and pad
    cols: np.ndarray  # (N, C*HH*WW, H'*W') every window as a column, for dw


class FastPoolCache(NamedTuple):
    """What ``max_pool_backward_fast`` needs."""

    x: np.ndarray  # (N, C, H, W) input: its shape and dtype for dx
    pool_param: dict[str, Any]  # pool_height, pool_width, stride
    argmax: np.ndarray  # (N, C, H', W') int: the winner's flat offset within its window


def conv_forward_fast(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, FastConvCache]:
    """Convolution forward by im2col and one matrix product (cs231n signature).

    Same arguments, result and errors as ``conv_forward_naive`` (empty batches included):
    x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param with ``stride`` and ``pad``;
    out (N, F, H', W').
    The cache differs (it holds the im2col matrix), so pair it with ``conv_backward_fast``.
    Integer or bool w and b are cast to np.result_type(x, w, b), as in the naive layer.
    """
    w, b = float_params(x, w=w, b=b)  # integer w, b -> floating: float gradients
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    N = x.shape[0]
    F, C, HH, WW = w.shape
    K = C * HH * WW
    cols_ones = np.empty((N, K + 1, H_out * W_out), x.dtype)
    cols = im2col(pad_hw(x, pad), HH, WW, stride, out=cols_ones[:, :K])  # (N, K, H'*W')
    cols_ones[:, K] = 1
    out = np.matmul(with_bias(w, b), cols_ones)  # (N, F, H'*W'), bias included
    return out.reshape(N, F, H_out, W_out), FastConvCache(x, w, b, conv_param, cols)


def with_bias(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[w.reshape(F, K) | b]: (F, K + 1), the filters with the bias as one more column.

    The forward product runs on im2col's matrix with a row of ones below it, so
    ``out = [w | b] @ [cols; 1]`` adds the bias inside the product: one pass over the
    output instead of two (0.4 ms of the course's 6.5 MB output on 2 threads).
    """
    F, C, HH, WW = w.shape  # explicit sizes: F or C may be 0
    return np.concatenate([w.reshape(F, C * HH * WW), b.reshape(F, 1).astype(w.dtype)], axis=1)


def conv_backward_fast(
    dout: np.ndarray, cache: FastConvCache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Convolution backward by matrix products and col2im (cs231n signature; ``need_dx``
    is beyond the course).

    Args:
        dout: (N, F, H', W') upstream gradient.
        cache: from ``conv_forward_fast``.
        need_dx: False skips dcols = w.T @ dout and col2im and returns None for dx: a
            network's first layer needs no gradient for its images, and those two are
            half the backward pass. dw and db are the same bits either way.

    Returns:
        dx: (N, C, H, W) (None when ``need_dx`` is False), dw: (F, C, HH, WW), db: (F,).

    Raises:
        TypeError: cache is not a ``conv_forward_fast`` cache (None, or another layer's,
            such as ``conv_forward_naive``'s), dout is not a floating ndarray, or need_dx
            is not a bool.
        ValueError: dout is not the forward output's shape (N, F, H', W').
    """
    x, w, b, cols, stride, pad, H_out, W_out = check_conv_gradient_inputs(dout, cache, need_dx)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    dout_cols = dout.reshape(N, F, H_out * W_out)  # (N, F, H'*W')
    db = dout_cols.sum(axis=(0, 2))  # (F,)
    dw = conv_weight_grad(dout_cols, cols, w.shape)
    if not need_dx:
        return None, dw, db
    dcols = np.matmul(w.reshape(F, C * HH * WW).T, dout_cols)  # (N, C*HH*WW, H'*W')
    dxp = col2im(dcols, (N, C, H + 2 * pad, W + 2 * pad), HH, WW, stride)  # (N, C, Hp, Wp)
    dx = np.ascontiguousarray(unpad_hw(dxp, pad))  # (N, C, H, W)
    return dx, dw, db


def conv_weight_grad(
    dout_cols: np.ndarray, cols: np.ndarray, w_shape: tuple[int, ...]
) -> np.ndarray:
    """dw = sum_n dout_n @ cols_n.T, formed as (sum_n cols_n @ dout_n.T).T (the faster
    product; module docstring). dout_cols: (N, F, H'*W'), cols: (N, C*HH*WW, H'*W')
    -> dw: w_shape (F, C, HH, WW), contiguous."""
    dw_t = np.matmul(cols, dout_cols.transpose(0, 2, 1)).sum(axis=0)  # (C*HH*WW, F)
    return np.ascontiguousarray(dw_t.T).reshape(w_shape)


def check_conv_gradient_inputs(
    dout: np.ndarray, cache: FastConvCache, need_dx: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int, int]:
    """``conv_backward_fast``'s checks: (x, w, b, cols, stride, pad, H', W') from the cache."""
    v.cache_of(cache, FastConvCache, "conv_backward_fast", "conv_forward_fast")
    flag(need_dx, "need_dx")
    x, w, b, conv_param, cols = cache
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    v.float_array(dout, "dout")
    v.shape(dout, "dout", (x.shape[0], w.shape[0], H_out, W_out), "the shape of the forward output")
    return x, w, b, cols, stride, pad, H_out, W_out


def max_pool_forward_fast(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, FastPoolCache]:
    """Max pooling forward over a strided view of every window (cs231n signature).

    Same arguments, result and errors as ``max_pool_forward_naive``; pair the cache with
    ``max_pool_backward_fast``.
    """
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C = x.shape[:2]
    win = window_view(x, ph, pw, stride)  # (N, C, H', W', ph, pw) view
    flat = win.reshape(N, C, H_out, W_out, ph * pw)  # copy, one window per row
    argmax = flat.argmax(axis=4)  # (N, C, H', W') first maximum in row-major order
    out = np.take_along_axis(flat, argmax[..., None], axis=4)[..., 0]  # (N, C, H', W')
    return out, FastPoolCache(x, pool_param, argmax)


def max_pool_backward_fast(dout: np.ndarray, cache: FastPoolCache) -> np.ndarray:
    """Max pooling backward: scatter dout onto each window's winner (cs231n signature).

    Args:
        dout: (N, C, H', W') upstream gradient.
        cache: from ``max_pool_forward_fast``.

    Returns:
        dx: (N, C, H, W).

    Raises:
        TypeError: cache is not a ``max_pool_forward_fast`` (or ``_reshape``) cache, or
            dout is not a floating ndarray.
        ValueError: dout is not the forward output's shape (N, C, H', W').
    """
    return _scatter_to_winners(dout, cache, "max_pool_backward_fast", "max_pool_forward_fast")


def _scatter_to_winners(
    dout: np.ndarray, cache: FastPoolCache, backward: str, forward: str
) -> np.ndarray:
    """``max_pool_backward_fast``, with the names its cache check reports."""
    v.cache_of(cache, FastPoolCache, backward, forward)
    x, pool_param, argmax = cache
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C, H, W = x.shape
    v.float_array(dout, "dout")
    v.shape(dout, "dout", (N, C, H_out, W_out), "the shape of the forward output")
    check_winners(argmax, (N, C, H_out, W_out), ph * pw, backward, forward)
    check_winner_values(argmax, ph * pw, backward, forward)
    di, dj = np.divmod(argmax, pw)  # (N, C, H', W') each: the winner's offset in its window
    rows = stride * np.arange(H_out)[:, None] + di  # (N, C, H', W')
    cols = stride * np.arange(W_out)[None, :] + dj  # (N, C, H', W')
    plane = (np.arange(N)[:, None] * C + np.arange(C)[None, :]) * (H * W)  # (N, C)
    flat = plane[:, :, None, None] + rows * W + cols  # (N, C, H', W') index into x.ravel()
    dx = np.bincount(flat.ravel(), weights=dout.ravel(), minlength=x.size)  # (N*C*H*W,)
    return dx.reshape(x.shape).astype(np.result_type(dout, x), copy=False)


def check_winners(
    argmax: Any, shape: tuple[int, ...], window: int, backward: str, forward: str
) -> None:
    """Raise unless a pool cache's argmax is an integer array of ``shape`` (one winner per
    window of the forward output; ``window`` offsets per window). Its values are
    ``check_winner_values``' (the fused kernels check them as they go instead)."""
    if not isinstance(argmax, np.ndarray) or not np.issubdtype(argmax.dtype, np.integer):
        got = getattr(argmax, "dtype", type(argmax).__name__)
        raise TypeError(
            f"{backward}'s cache must hold an integer array of window winners, as {forward} "
            f"makes; got {got}. Pass the cache that {forward} returned, unchanged."
        )
    v.shape(argmax, "the cache's argmax", shape, f"one winner per window of {forward}'s output")


def check_winner_values(argmax: np.ndarray, window: int, backward: str, forward: str) -> None:
    """Raise ``bad_winners`` unless every offset of the integer argmax is in [0, window)."""
    if argmax.size and (argmax.min() < 0 or argmax.max() >= window):
        raise bad_winners(window, backward, forward)


def bad_winners(window: int, backward: str, forward: str) -> ValueError:
    """The error for a pool cache whose argmax leaves its windows."""
    return ValueError(
        f"{backward}'s cache holds window winners outside [0, {window}): it was not made by "
        f"{forward} for these pools, or was changed since. Pass the cache that {forward} "
        f"returned, unchanged."
    )


def _check_reshape_pool(x: np.ndarray, pool_param: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless the pools are square, non-overlapping and tile x."""
    ph, pw, stride, _, _ = pool_geometry(x, pool_param)  # the usual checks first
    H, W = x.shape[2:]
    if not (ph == pw == stride) or H % ph or W % pw:
        raise ValueError(
            f"max_pool_forward_reshape needs square pools that tile x without overlap: "
            f"pool_height == pool_width == stride, dividing H and W; got pool "
            f"{ph}x{pw}, stride {stride}, x of shape {tuple(x.shape)}. Use "
            f"max_pool_forward_fast (or max_pool_forward_im2col), which takes any pools."
        )


def max_pool_forward_reshape(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, FastPoolCache]:
    """Max pooling forward for square, non-overlapping, tiling pools (cs231n signature).

    Args:
        x: (N, C, H, W) input.
        pool_param: ``pool_height`` == ``pool_width`` == ``stride``, dividing H and W.

    Returns:
        out: (N, C, H / stride, W / stride), and the cache for
        ``max_pool_backward_reshape``. Same values as ``max_pool_forward_fast``.

    Raises:
        ValueError: the pools are not square, overlap or leave gaps, or do not tile x
            (and every error of ``max_pool_forward_naive``).
    """
    _check_reshape_pool(x, pool_param)
    return max_pool_forward_fast(x, pool_param)


def max_pool_backward_reshape(dout: np.ndarray, cache: FastPoolCache) -> np.ndarray:
    """Backward of ``max_pool_forward_reshape``: dout (N, C, H', W') -> dx (N, C, H, W).

    Its cache is ``max_pool_forward_fast``'s kind, and the same checks apply.
    """
    return _scatter_to_winners(dout, cache, "max_pool_backward_reshape", "max_pool_forward_reshape")
