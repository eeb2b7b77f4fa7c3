"""Affine (fully connected) layer, with the course's reshaping of any input to (N, D).

Formula, for x: (N, d_1, ..., d_k) with D = d_1 * ... * d_k, w: (D, M), b: (M,)::

    xf  = x.reshape(N, D)                 # (N, D)
    out = xf @ w + b                      # (N, M)

Backward, with dout: (N, M)::

    dx  = (dout @ w.T).reshape(x.shape)   # (N, d_1, ..., d_k)
    dw  = xf.T @ dout                     # (D, M)
    db  = sum_i dout_i                    # (M,)  b is broadcast over the batch

Train and test behaviour are the same. cs231n assignment 2, ``affine_forward``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.params import float_params
from normgrad._internal.validate import flag


class AffineCache(NamedTuple):
    """What ``affine_backward`` needs (the course caches (x, w, b); so does this)."""

    x: np.ndarray  # (N, d_1, ..., d_k) input: dw = xf.T @ dout, and dx takes its shape
    w: np.ndarray  # (D, M) weights: dx = dout @ w.T
    b: np.ndarray  # (M,) bias: kept for the course's cache layout; db needs only dout


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, AffineCache]:
    """Affine layer forward: out = x.reshape(N, D) @ w + b (cs231n signature).

    Args:
        x: (N, d_1, ..., d_k) input; each row is flattened to D = d_1 * ... * d_k.
        w: (D, M) weights; integer or bool weights are cast to np.result_type(x, w, b).
        b: (M,) bias; likewise.

    Returns:
        out: (N, M), and the cache for ``affine_backward``.

    Raises:
        TypeError: x is not a floating ndarray, or w or b is not a real numeric ndarray.
        ValueError: x is 0-d, w is not 2-D, w's first axis is not D, or b is not (M,).
            An empty batch (N = 0) is valid: out is (0, M).
    """
    w, b, N, D = check_inputs(x, w, b)
    xf = x.reshape(N, D)  # (N, D)
    out = xf @ w + b  # (N, M)
    return out, AffineCache(x, w, b)


def check_inputs(
    x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``affine_forward``'s checks: returns (w, b as floating arrays, N, D). Writes nothing.

    Shared with the model sandwiches' fused affine (``normgrad.kernels.affine``).
    """
    w, b = float_params(x, w=w, b=b)  # integer w, b -> floating: float gradients
    if x.ndim < 1:
        raise ValueError(
            "x must have a batch axis: (N, d_1, ..., d_k); got a 0-d array. "
            "Use x.reshape(1, -1) for a single sample."
        )
    v.ndim(w, "w", 2, "(D, M)")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    if w.shape[0] != D:
        raise ValueError(
            f"w must have shape (D, M) with D = {D}, the size of one row of x "
            f"(x has shape {tuple(x.shape)}); got w of shape {tuple(w.shape)}."
        )
    M = w.shape[1]
    v.shape(b, "b", (M,), "one bias per output column of w: (D, M)")
    return w, b, N, D


def affine_backward(
    dout: np.ndarray, cache: AffineCache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Affine layer backward (cs231n signature; ``need_dx`` is beyond the course).

    Args:
        dout: (N, M) upstream gradient.
        cache: from ``affine_forward``.
        need_dx: False skips dx = dout @ w.T and returns None for it: a network's first
            layer needs no gradient for its data, and for CIFAR's D = 3072 that product
            is the largest of the backward pass.

    Returns:
        dx: (N, d_1, ..., d_k) in x's shape (None when ``need_dx`` is False),
        dw: (D, M), db: (M,).

    Raises:
        TypeError: cache is not an ``affine_forward`` cache, dout is not a floating
            ndarray, or need_dx is not a bool.
        ValueError: dout is not the forward output's shape (N, M).
    """
    x, w, N, D, M = check_gradient_inputs(dout, cache, need_dx)
    xf = x.reshape(N, D)  # (N, D); explicit D: an empty batch cannot infer it
    dx = (dout @ w.T).reshape(x.shape) if need_dx else None  # (N, d_1, ..., d_k)
    dw = xf.T @ dout  # (D, M)
    db = dout.sum(axis=0)  # (M,)
    return dx, dw, db


def check_gradient_inputs(
    dout: np.ndarray, cache: AffineCache, need_dx: bool
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """``affine_backward``'s checks: returns (x, w, N, D, M) from the cache."""
    v.cache_of(cache, AffineCache, "affine_backward", "affine_forward")
    flag(need_dx, "need_dx")
    x, w, _ = cache
    N = x.shape[0]
    D, M = w.shape
    v.float_array(dout, "dout")
    v.shape(dout, "dout", (N, M), "the shape of the forward output (N, M)")
    return x, w, N, D, M
