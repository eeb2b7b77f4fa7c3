"""The affine layer for the model sandwiches, its products written into pooled arrays.

``ops.affine``'s maths and checks (``check_inputs`` / ``check_gradient_inputs``), the same
matrix products (so the results are the reference's bit for bit), with every large
result (out, dx, dw: a CIFAR net's first dw is 6 MB) written into an array from
``_runtime.empty``'s pool instead of a fresh one, whose pages would fault in on the
first write, every step::

    out = x.reshape(N, D) @ w + b       # (N, M)
    dx  = dout @ w.T,  dw = x.T @ dout,  db = sum_i dout_i
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels._runtime import COMPILED, empty
from normgrad.ops.affine import (
    AffineCache,
    affine_backward,
    affine_forward,
    check_gradient_inputs,
    check_inputs,
)


def affine_forward_fused(
    x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, AffineCache]:
    """``affine_forward``: x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M), cache."""
    w, b, N, D = check_inputs(x, w, b)
    if x.dtype not in COMPILED or x.dtype != w.dtype or x.dtype != b.dtype:
        return affine_forward(x, w, b)
    out = np.matmul(x.reshape(N, D), w, out=empty((N, w.shape[1]), x.dtype))  # (N, M)
    out += b
    return out, AffineCache(x, w, b)


def affine_backward_fused(
    dout: np.ndarray, cache: AffineCache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``affine_backward``: dout (N, M) -> dx (x's shape, or None), dw (D, M), db (M,)."""
    x, w, N, D, M = check_gradient_inputs(dout, cache, need_dx)
    if x.dtype not in COMPILED or dout.dtype != x.dtype or w.dtype != x.dtype:
        return affine_backward(dout, cache, need_dx)
    dx = None
    if need_dx:
        dx = np.matmul(dout, w.T, out=empty((N, D), x.dtype)).reshape(x.shape)
    dw = np.matmul(x.reshape(N, D).T, dout, out=empty((D, M), x.dtype))  # (D, M)
    db = dout.sum(axis=0)  # (M,)
    return dx, dw, db
