"""Batch norm, ReLU and a 2x2 max pool over (N, C, L) planes in one pass each way.

The per-channel planes of ``kernels.planes`` (NCHW or channel-major rows, the same ``cm``
flag), each an H x W image (L = H * W), with batch norm's (C,) coefficients m, s, b in
x's dtype. The normalized value v = (x - m_c) * s_c + b_c is never written: the forward
keeps only each 2x2 window's maximum of max(v, 0) and where it was, and the backward
recomputes v at that winner from x (the same expression, so the same bits)::

    forward     out[n, c, i, j] = max over the window (2i.., 2j..) of max(v, 0)
                argmax          = its first offset 2 di + dj (ties: the first, NaN wins
                                  as in np.argmax), uint8; check: flags any inf/NaN v
    grad_sums   dbeta_c += g, dcent_c += g * (x - m_c)   at each winner with v > 0
    input_grad  dx = a_c * da - c1_c * (x - m_c) - c0_c, da = g at those winners, else 0

which is ``planes.normalize`` (with ReLU), ``pool.relu_pool_forward``, ``relu_pool_backward``,
``planes.grad_sums`` and ``planes.input_grad`` composed, with two passes over the
activations fewer forward and three fewer backward. The forward's values are the
composition's bit for bit; the gradients agree to rounding (their sums run over the
winners only, in float64). 2x2 windows at stride 2 tile H x W exactly (``pool_geometry``
refuses odd sizes). Chunks and merges as ``kernels.planes``: the bits do not depend on
the thread count.
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels._runtime import (
    empty,
    height,
    inline,
    kernel,
    n_chunks,
    nonfinite,
    run,
    zero_of,
)
from normgrad.kernels.planes import _plane, grad_value, value
from normgrad.kernels.pool import best_of_four


@inline
def _live_winner(row, W, i, j, k, mc, sc, bc):  # pragma: no cover - compiled
    """The flat offset in the H x W plane ``row`` of window (i, j)'s winner (offset k =
    2 di + dj) when ReLU passed it (v > 0, v recomputed as the forward made it), else -1."""
    q = (2 * i + k // 2) * W + 2 * j + k % 2
    return q if value(row[np.uint64(q)], mc, sc, bc) > 0 else -1


@kernel
def _forward(x, cm, W, m, s, b, out, argmax, check, flags, h, c0, c1):  # pragma: no cover
    """Pooled max(v, 0) and its offsets for the rows of chunks c0..c1 (out, argmax:
    (N, C, H', W')); with ``check``, flags[c] is 1 iff some v of chunk c is inf or NaN."""
    R, L = x.shape
    C = m.shape[0]
    N = R // C
    H_out, W_out = out.shape[2], out.shape[3]
    z = zero_of(x)
    for c in range(c0, c1):
        bad = False
        for r in range(c * h, min(R, (c + 1) * h)):
            n, ch = _plane(r, N, C, cm)
            mc, sc, bc = m[ch], s[ch], b[ch]
            row = x[r]
            if check:
                for i in range(L):
                    bad |= nonfinite(value(row[i], mc, sc, bc))
            for i in range(H_out):
                o = out[n, ch, i]
                am = argmax[n, ch, i]
                top = 2 * i * W
                bottom = top + W
                for j in range(W_out):
                    v0 = value(row[np.uint64(top + 2 * j)], mc, sc, bc)
                    v1 = value(row[np.uint64(top + 2 * j + 1)], mc, sc, bc)
                    v2 = value(row[np.uint64(bottom + 2 * j)], mc, sc, bc)
                    v3 = value(row[np.uint64(bottom + 2 * j + 1)], mc, sc, bc)
                    o[j], am[j] = best_of_four(v0, v1, v2, v3, True, z)
        flags[c] = bad


@kernel
def _grad_sums(g, x, cm, W, m, s, b, argmax, dbetas, dcents, h, c0, c1):  # pragma: no cover
    """Rows of chunks c0..c1: per channel, float64 sums of da and da * (x - m_c), da
    being g (N, C, H', W') at each winner whose v is > 0. Returns 1 at the first offset
    above 3 (a corrupt cache: nothing is read out of bounds), else 0."""
    R, L = x.shape
    C = m.shape[0]
    N = R // C
    H_out, W_out = g.shape[2], g.shape[3]
    for c in range(c0, c1):
        for r in range(c * h, min(R, (c + 1) * h)):
            n, ch = _plane(r, N, C, cm)
            mc, sc, bc = m[ch], s[ch], b[ch]
            row = x[r]
            t1 = 0.0
            t2 = 0.0
            for i in range(H_out):
                gi = g[n, ch, i]
                am = argmax[n, ch, i]
                for j in range(W_out):
                    if am[j] > 3:
                        return 1
                    q = _live_winner(row, W, i, j, am[j], mc, sc, bc)
                    if q >= 0:
                        t1 += gi[j]
                        t2 += gi[j] * (row[np.uint64(q)] - mc)
            dbetas[c, ch] += t1
            dcents[c, ch] += t2
    return 0


@kernel
def _input_grad(g, x, cm, W, m, s, b, argmax, a, c1, c0, dx, h, lo, hi):  # pragma: no cover
    """dx (x's rows and order) = a_c * da - c1_c * (x - m_c) - c0_c for chunks lo..hi."""
    R, L = x.shape
    C = m.shape[0]
    N = R // C
    H_out, W_out = g.shape[2], g.shape[3]
    zero = zero_of(x)  # da = 0 off the winners: a_c * 0, as the composition computes it
    for c in range(lo, hi):
        for r in range(c * h, min(R, (c + 1) * h)):
            n, ch = _plane(r, N, C, cm)
            ac, bc1, cc, mc = a[ch], c1[ch], c0[ch], m[ch]
            sc, bc = s[ch], b[ch]
            row = x[r]
            d = dx[r]
            for i in range(L):
                d[i] = grad_value(zero, row[i], mc, ac, bc1, cc)
            for i in range(H_out):
                gi = g[n, ch, i]
                am = argmax[n, ch, i]
                for j in range(W_out):
                    q = _live_winner(row, W, i, j, am[j], mc, sc, bc)
                    if q >= 0:
                        d[np.uint64(q)] = grad_value(gi[j], row[np.uint64(q)], mc, ac, bc1, cc)


def normalize_pool(
    x: np.ndarray,
    C: int,
    W: int,
    m: np.ndarray,
    s: np.ndarray,
    b: np.ndarray,
    check: bool,
    cm: bool = False,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(out, argmax, ok) for x: (N * C, H * W) planes (channel-major when ``cm``):
    out (N, C, H // 2, W // 2) in x's dtype, argmax uint8, ok as ``planes.normalize``."""
    R, L = x.shape
    N, H = R // C, L // W
    chunks = n_chunks(R, L)
    out = empty((N, C, H // 2, W // 2), x.dtype)
    argmax = np.empty((N, C, H // 2, W // 2), np.uint8)
    flags = np.zeros(chunks)
    args = (x, cm, W, m, s, b, out, argmax, check, flags, height(R, chunks))
    run(_forward, args, chunks, x.size)
    return out, argmax, not check or bool(np.sum(flags) == 0.0)


def grad_sums(
    g: np.ndarray,
    x: np.ndarray,
    W: int,
    m: np.ndarray,
    s: np.ndarray,
    b: np.ndarray,
    argmax: np.ndarray,
    cm: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(sum da, sum da * (x - m_c)) per channel, (C,) float64 each; g: (N, C, H', W').
    None when argmax holds an offset above 3 (``input_grad`` must not run then)."""
    R, L = x.shape
    C = m.shape[0]
    chunks = n_chunks(R, L)
    dbetas = np.zeros((chunks, C))
    dcents = np.zeros((chunks, C))
    args = (g, x, cm, W, m, s, b, argmax, dbetas, dcents, height(R, chunks))
    if run(_grad_sums, args, chunks, x.size):
        return None
    return dbetas.sum(axis=0), dcents.sum(axis=0)


def input_grad(
    g: np.ndarray,
    x: np.ndarray,
    W: int,
    m: np.ndarray,
    s: np.ndarray,
    b: np.ndarray,
    argmax: np.ndarray,
    a: np.ndarray,
    c1: np.ndarray,
    c0: np.ndarray,
    cm: bool = False,
) -> np.ndarray:
    """dx: x's shape (rows), order and dtype."""
    R, L = x.shape
    chunks = n_chunks(R, L)
    dx = empty(x.shape, x.dtype, avoid=x)
    args = (g, x, cm, W, m, s, b, argmax, a, c1, c0, dx, height(R, chunks))
    run(_input_grad, args, chunks, x.size)
    return dx
