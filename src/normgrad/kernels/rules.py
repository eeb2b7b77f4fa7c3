"""Fused update rules: each of ``training.rules``' steps in one pass, bit for bit.

The reference rules take a dozen NumPy operations, each a pass over the weights with a
temporary; these kernels take one pass, reading w, dw and the state once and writing
the next weights and state once. The arithmetic is the reference's, operation for
operation in the same order and dtype (no fused multiply-add, no reassociation), with
each Python float hyperparameter rounded to the arrays' dtype exactly as NumPy rounds a
Python scalar against an array, so the results are the reference's bit for bit::

    sgd           next_w = w - lr * dw
    sgd_momentum  vel = mom * vel - lr * dw;  next_w = w + vel
    rmsprop       cache = dr * cache + (1 - dr) * (dw * dw)
                  next_w = w - lr * dw / (sqrt(cache) + eps)
    adam          m = b1 * m + (1 - b1) * dw;  v = b2 * v + (dw * dw) * (1 - b2)
                  next_w = w - (m / (1 - b1**t)) * lr / (sqrt(v / (1 - b2**t)) + eps)

``training.rules`` calls them only where that holds: w, dw and the state arrays
C-contiguous of one dtype, float32 or float64, and every hyperparameter a Python float
(a NumPy scalar would change NumPy's promotion); it runs its own code otherwise. The
inputs are never written: the results are new arrays, as the reference's are.
Elements are split over threads above ``_runtime.PARALLEL_MIN`` (no reductions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.kernels._runtime import COMPILED, empty, kernel, run

_CHUNK = 1 << 16  # elements per chunk


@kernel
def _sgd(w, dw, lr, out, c0, c1):  # pragma: no cover - compiled
    n = w.shape[0]
    for i in range(c0 * _CHUNK, min(n, c1 * _CHUNK)):
        out[i] = w[i] - lr * dw[i]


@kernel
def _momentum(w, dw, vel, mom, lr, out, vout, c0, c1):  # pragma: no cover - compiled
    n = w.shape[0]
    for i in range(c0 * _CHUNK, min(n, c1 * _CHUNK)):
        v = mom * vel[i] - lr * dw[i]
        vout[i] = v
        out[i] = w[i] + v


@kernel
def _rmsprop(w, dw, cache, dr, keep, lr, eps, out, cout, c0, c1):  # pragma: no cover
    n = w.shape[0]
    for i in range(c0 * _CHUNK, min(n, c1 * _CHUNK)):
        g = dw[i]
        c = dr * cache[i] + keep * (g * g)
        cout[i] = c
        out[i] = w[i] - lr * g / (np.sqrt(c) + eps)


@kernel
def _adam(
    w, dw, m, v, b1, k1, b2, k2, bc1, bc2, lr, eps, out, mout, vout, c0, c1
):  # pragma: no cover
    n = w.shape[0]
    for i in range(c0 * _CHUNK, min(n, c1 * _CHUNK)):
        g = dw[i]
        mi = b1 * m[i] + k1 * g
        vi = b2 * v[i] + (g * g) * k2
        mout[i] = mi
        vout[i] = vi
        step = mi / bc1
        step = step * lr
        out[i] = w[i] - step / (np.sqrt(vi / bc2) + eps)


def fusable(w: np.ndarray, *arrays: Any) -> bool:
    """w and every other array: C-contiguous ndarrays of w's dtype, float32 or float64."""
    if w.dtype not in COMPILED or not w.flags.c_contiguous:
        return False
    return all(
        type(a) is np.ndarray and a.dtype == w.dtype and a.flags.c_contiguous and a.shape == w.shape
        for a in arrays
    )


def _go(body: Any, w: np.ndarray, args: tuple[Any, ...], outs: int) -> list[np.ndarray]:
    results = [empty(w.shape, w.dtype) for _ in range(outs)]
    flat = [a.reshape(-1) for a in results]
    chunks = max(1, -(-w.size // _CHUNK))
    run(body, (*args, *flat), chunks, w.size)
    return results


def sgd(w: np.ndarray, dw: np.ndarray, lr: float) -> np.ndarray:
    """next_w = w - lr * dw."""
    t = w.dtype.type
    return _go(_sgd, w, (w.reshape(-1), dw.reshape(-1), t(lr)), 1)[0]


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, velocity: np.ndarray, momentum: float, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    """(next_w, velocity)."""
    t = w.dtype.type
    flat = (w.reshape(-1), dw.reshape(-1), velocity.reshape(-1))
    out, vel = _go(_momentum, w, (*flat, t(momentum), t(lr)), 2)
    return out, vel


def rmsprop(
    w: np.ndarray, dw: np.ndarray, cache: np.ndarray, decay: float, lr: float, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """(next_w, cache)."""
    t = w.dtype.type
    flat = (w.reshape(-1), dw.reshape(-1), cache.reshape(-1))
    out, c = _go(_rmsprop, w, (*flat, t(decay), t(1 - decay), t(lr), t(eps)), 2)
    return out, c


def adam(
    w: np.ndarray,
    dw: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: float,
    beta2: float,
    t_step: int,
    lr: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(next_w, m, v) after step number t_step (already incremented)."""
    t = w.dtype.type
    flat = (w.reshape(-1), dw.reshape(-1), m.reshape(-1), v.reshape(-1))
    scalars = (
        *(t(beta1), t(1 - beta1), t(beta2), t(1 - beta2)),
        *(t(1 - beta1**t_step), t(1 - beta2**t_step), t(lr), t(eps)),
    )
    out, mo, vo = _go(_adam, w, (*flat, *scalars), 3)
    return out, mo, vo
