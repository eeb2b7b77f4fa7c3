"""Fused im2col convolution: ``conv_forward_fast`` / ``conv_backward_fast`` without copies.

The same maths, the same matrix products and the same cache (``ops.fast.FastConvCache``)
as ``normgrad.ops.fast``; only the two data movements around the products change::

    im2col   cols[n, (c*HH + di)*WW + dj, i*W' + j] = x[n, c, s*i + di - p, s*j + dj - p]
             (0 outside x), and the row of ones below (the bias's): written straight
             from x, one pass, no padded copy of x and no transposed copy of a strided
             window view
    col2im   dx[n, c, s*i + di - p, s*j + dj - p] += dcols[n, (c*HH + di)*WW + dj, i*W' + j]
             accumulated straight into the unpadded dx, in the reference's (di, dj) order,
             starting from 0: no padded buffer, no unpad copy

Every value moved is copied or summed exactly as ``ops.windows`` does it, and the products
(``np.matmul``, BLAS) are the same calls on the same operands, so results are the
reference's bit for bit, in every dtype. Samples are split over threads (``_runtime.run``:
fixed chunks of samples, no reductions across them). Anything the kernels are not
compiled for (dtypes other than float32 and float64, mixed dtypes, empty arrays) runs
the reference functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad._internal.params import float_params
from normgrad.kernels._runtime import compiled, contiguous, empty, height, inline, kernel, run
from normgrad.ops.fast import (
    FastConvCache,
    check_conv_gradient_inputs,
    conv_backward_fast,
    conv_forward_fast,
    conv_weight_grad,
    with_bias,
)
from normgrad.ops.windows import conv_geometry

# Flat indices below are cast to unsigned: numba then emits no negative-index
# wraparound select per access, and the short row copies vectorize (a view per row
# instead costs two atomic reference counts, more than copying its 32 values).


@inline
def _inside(d, s, p, size, n_out):  # pragma: no cover - compiled
    """The outputs t in [t0, t1) whose input index s*t + d - p lies in [0, size): a tap's
    whole valid range, so the loops below copy it without a bounds test per element."""
    t0 = max(0, -((d - p) // s))  # ceil((p - d) / s)
    t1 = min(n_out, (size - 1 + p - d) // s + 1)
    return t0, max(t0, t1)


@inline
def _zero(a, e0, e1):  # pragma: no cover - compiled
    """a[e0:e1] = 0 for a flat a."""
    for e in range(e0, e1):
        a[np.uint64(e)] = 0


@kernel
def _im2col(x, HH, WW, s, p, H_out, W_out, cols, cm, h, c0, c1):  # pragma: no cover - compiled
    """cols (N, C*HH*WW + 1, H'*W') from x (N, C, H, W) for the samples of chunks c0..c1:
    the windows, then a row of ones (the bias's row). cm: cols is (C*HH*WW + 1, N, H'*W')
    instead (channel-major: one matrix for the whole batch)."""
    N, C, H, W = x.shape
    K = C * HH * WW
    L = H_out * W_out
    for c in range(c0, c1):
        for n in range(c * h, min(N, (c + 1) * h)):
            ones = cols[K, n] if cm else cols[n, K]
            for j in range(ones.size):
                ones[j] = 1
            for ch in range(C):
                plane = x[n, ch].reshape(-1)  # (H * W,)
                for di in range(HH):
                    i0, i1 = _inside(di, s, p, H, H_out)
                    for dj in range(WW):
                        j0, j1 = _inside(dj, s, p, W, W_out)
                        k = (ch * HH + di) * WW + dj
                        out = cols[k, n] if cm else cols[n, k]  # (H' * W',)
                        _zero(out, 0, i0 * W_out)  # window rows above x
                        for i in range(i0, i1):
                            xb = (s * i + di - p) * W + dj - p  # plane's index at j = 0
                            ob = i * W_out
                            _zero(out, ob, ob + j0)
                            if s == 1:
                                for j in range(j0, j1):
                                    out[np.uint64(ob + j)] = plane[np.uint64(xb + j)]
                            else:
                                for j in range(j0, j1):
                                    out[np.uint64(ob + j)] = plane[np.uint64(xb + s * j)]
                            _zero(out, ob + j1, ob + W_out)
                        _zero(out, i1 * W_out, L)  # and below it


@kernel
def _col2im(dcols, HH, WW, s, p, H_out, W_out, dx, cm, h, c0, c1):  # pragma: no cover - compiled
    """dx (N, C, H, W) += every window's column, for the samples of chunks c0..c1, in
    the reference's order: tap by tap (di, dj), starting from 0 (within one tap no two
    outputs meet one input, so each value's sum runs in that order). cm: dcols is
    (C*HH*WW, N, H'*W') instead of (N, C*HH*WW, H'*W')."""
    N, C, H, W = dx.shape
    for c in range(c0, c1):
        for n in range(c * h, min(N, (c + 1) * h)):
            for ch in range(C):
                plane = dx[n, ch].reshape(-1)  # (H * W,)
                _zero(plane, 0, H * W)
                for di in range(HH):
                    i0, i1 = _inside(di, s, p, H, H_out)
                    for dj in range(WW):
                        j0, j1 = _inside(dj, s, p, W, W_out)
                        k = (ch * HH + di) * WW + dj
                        col = dcols[k, n] if cm else dcols[n, k]  # (H' * W',)
                        for i in range(i0, i1):
                            xb = (s * i + di - p) * W + dj - p  # plane's index at j = 0
                            ob = i * W_out
                            if s == 1:
                                for j in range(j0, j1):
                                    plane[np.uint64(xb + j)] += col[np.uint64(ob + j)]
                            else:
                                for j in range(j0, j1):
                                    plane[np.uint64(xb + s * j)] += col[np.uint64(ob + j)]


def _chunks(N: int) -> int:
    return max(1, min(N, 64))


def conv_forward_fused(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, FastConvCache]:
    """``conv_forward_fast`` with a copy-free im2col: same arguments, checks, result, cache.

    x: (N, C, H, W), w: (F, C, HH, WW), b: (F,) -> out: (N, F, H', W').
    """
    return _forward(x, w, b, conv_param, False)


def conv_forward_channel_major(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, FastConvCache]:
    """``conv_forward_fused`` as one matrix product for the whole batch, channel-major.

    x: (N, C, H, W), w: (F, C, HH, WW), b: (F,) -> out: (N, F, H', W') with the same
    values to rounding, as a view of (F, N, H', W') memory: ``[w | b] @ [cols; 1]`` with
    cols (C*HH*WW, N*H'*W'), one product instead of N (no per-sample calls into BLAS, and
    no transposed copy of its result). For a consumer that reads that layout in place
    (spatial batch norm's fused route, ``FusedBlock.channel_major``); any other reader
    gets an ordinary, if strided, array. The cache's cols are an (N, C*HH*WW, H'*W') view
    of channel-major memory; ``conv_backward_fused`` sees that and forms dw and db as one
    product and one sum too (the reference's ``conv_backward_fast`` accepts the cache as
    well). Calls the kernels do not take run the reference, ``conv_forward_fast``.
    """
    return _forward(x, w, b, conv_param, True)


def _forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any], cm: bool
) -> tuple[np.ndarray, FastConvCache]:
    """Both forwards: per-sample products (cols (N, K + 1, L)) or, cm, one product
    (cols (K + 1, N, L)); K = C*HH*WW, L = H'*W'."""
    w, b = float_params(x, w=w, b=b)
    stride, pad, H_out, W_out = conv_geometry(x, w, b, conv_param)
    if not compiled(x) or x.dtype != w.dtype or x.dtype != b.dtype or x.size == 0 or w.size == 0:
        return conv_forward_fast(x, w, b, conv_param)
    N = x.shape[0]
    F, C, HH, WW = w.shape
    K, L = C * HH * WW, H_out * W_out
    cols_ones = empty((K + 1, N, L) if cm else (N, K + 1, L), x.dtype)  # [cols; 1]
    chunks = _chunks(N)
    args = (contiguous(x), HH, WW, stride, pad, H_out, W_out, cols_ones, cm, height(N, chunks))
    run(_im2col, args, chunks, cols_ones.size)
    wb = with_bias(w, b)  # (F, K + 1)
    if not cm:
        out = np.matmul(wb, cols_ones, out=empty((N, F, L), x.dtype))
        cols = cols_ones[:, :K]  # (N, K, H'*W'), what the backward needs
        return out.reshape(N, F, H_out, W_out), FastConvCache(x, w, b, conv_param, cols)
    out = np.matmul(wb, cols_ones.reshape(K + 1, N * L), out=empty((F, N * L), x.dtype))
    cols = cols_ones[:K].transpose(1, 0, 2)  # (N, K, H'*W') view, what the backward needs
    out4 = out.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3)  # (N, F, H', W') view
    return out4, FastConvCache(x, w, b, conv_param, cols)


def _channel_major(a: np.ndarray) -> bool:
    """a (N, ...) is a view of memory laid out with its first two axes swapped."""
    return not a.flags.c_contiguous and np.swapaxes(a, 0, 1).flags.c_contiguous


def conv_backward_fused(
    dout: np.ndarray, cache: FastConvCache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``conv_backward_fast`` with a copy-free col2im: dx (N, C, H, W) or None, dw, db.

    Same checks, errors and results as the reference (it accepts the same cache);
    ``need_dx=False`` skips dx's product and col2im, as there.
    """
    x, w, b, cols, stride, pad, H_out, W_out = check_conv_gradient_inputs(dout, cache, need_dx)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    if not compiled(x) or dout.dtype != x.dtype or x.size == 0 or w.size == 0:
        return conv_backward_fast(dout, cache, need_dx)
    if _channel_major(cols):
        return _backward_channel_major(dout, x, w, cols, stride, pad, H_out, W_out, need_dx)
    dout_cols = dout.reshape(N, F, H_out * W_out)  # (N, F, H'*W')
    db = dout_cols.sum(axis=(0, 2))  # (F,)
    dw = conv_weight_grad(dout_cols, cols, w.shape)
    if not need_dx:
        return None, dw, db
    w_rows = w.reshape(F, C * HH * WW)
    dcols = np.matmul(w_rows.T, dout_cols, out=empty(cols.shape, x.dtype))  # (N, C*HH*WW, H'*W')
    dx = empty(x.shape, dcols.dtype)
    chunks = _chunks(N)
    args = (dcols, HH, WW, stride, pad, H_out, W_out, dx, False, height(N, chunks))
    run(_col2im, args, chunks, dcols.size)
    return dx, dw, db


def _backward_channel_major(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    cols: np.ndarray,
    stride: int,
    pad: int,
    H_out: int,
    W_out: int,
    need_dx: bool,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The backward of ``conv_forward_channel_major``: with D = dout as (F, N*H'*W') and
    cols as (C*HH*WW, N*H'*W'), dw = (cols @ D.T).T, db = D.sum(1), dcols = w.T @ D:
    one product each. dout in that layout is read in place (spatial batch norm's fused
    backward returns it so); any other is copied into it once."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    K, L = C * HH * WW, H_out * W_out
    d = np.swapaxes(dout, 0, 1)  # (F, N, H', W')
    d2 = (d if d.flags.c_contiguous else np.ascontiguousarray(d)).reshape(F, N * L)
    cols2 = np.swapaxes(cols, 0, 1).reshape(K, N * L)  # no copy: channel-major
    db = d2.sum(axis=1)  # (F,)
    dw = np.ascontiguousarray(np.matmul(cols2, d2.T).T).reshape(w.shape)
    if not need_dx:
        return None, dw, db
    dcols = np.matmul(w.reshape(F, K).T, d2, out=empty((K, N * L), x.dtype))
    dx = empty(x.shape, x.dtype)
    chunks = _chunks(N)
    args = (dcols.reshape(K, N, L), HH, WW, stride, pad, H_out, W_out, dx, True, height(N, chunks))
    run(_col2im, args, chunks, dcols.size)
    return dx, dw, db
