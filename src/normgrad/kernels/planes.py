"""Per-channel kernels for x: (N, C, L), L = H * W: spatial batch norm without a transpose.

Each (n, c) plane of L values is contiguous in NCHW memory, so x is read as N * C rows of
L values and every reduction runs along a row, the channel being c = row % C. Channel-major
memory, (C, N, H, W) seen as an (N, C, H, W) view (what the conv sandwich's one matrix
product leaves), is read as C * N rows instead, c = row // N, with no copy either: each
array's flag (``cm`` for x, ``gcm`` for dout) says which order its rows are in. Chunks are
fixed ranges of rows (``_runtime.n_chunks``), each with one (C,) row of partial sums,
merged in chunk order (``columns.merge``), so the bits never depend on the thread count.

Statistics, one pass over memory, shifted by K: (C,), a sample value of each channel::

    d = x - K_c;  per plane, sub-blocks of ``SPAN`` values summed in x's dtype (a vectorized
    reduction), then added in float64:  S1_c += sum d,  S2_c += sum d^2
    mu = K + S1 / (N L),  M2 = S2 - S1^2 / (N L)          (``columns.merge``, same checks)

Output and gradient passes, per plane, with (C,) coefficients in x's dtype::

    normalize   out = (x - m_c) * s_c + b_c              (test mode: also flags inf/NaN)
    grad_sums   dbeta_c += sum dout,  dcent_c += sum dout * (x - m_c)
    input_grad  dx = a_c * dout - c1_c * (x - m_c) - c0_c

The numerics are ``kernels.columns``' (see there): float32 arithmetic per element for
float32 x, float64 for float64, and the same fallbacks.
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels._runtime import (
    height,
    inline,
    kernel,
    map_rows,
    n_chunks,
    nonfinite,
    reduction,
    run,
    zero_of,
)
from normgrad.kernels._runtime import relu as relu_of

#: Values per float32 sub-block of a plane's sums (then carried on in float64).
SPAN = 512


@reduction
def _sums(a, k, k0, k1):  # pragma: no cover - compiled
    """(sum(a - k), sum((a - k)^2)) over k0 <= i < k1, in a's dtype."""
    s1 = k - k  # 0 in a's dtype
    s2 = k - k
    for i in range(k0, k1):
        d = a[i] - k
        s1 += d
        s2 += d * d
    return s1, s2


@reduction
def _gsums(g, a, m, k0, k1):  # pragma: no cover - compiled
    """(sum(g), sum(g * (a - m))) over k0 <= i < k1, in a's dtype."""
    s1 = m - m  # 0 in a's dtype
    s2 = m - m
    for i in range(k0, k1):
        gi = g[i]
        s1 += gi
        s2 += gi * (a[i] - m)
    return s1, s2


@inline
def _row(n, c, N, C, cm):  # pragma: no cover - compiled
    """The row of plane (n, c): n * C + c in NCHW order, c * N + n channel-major."""
    return c * N + n if cm else n * C + c


@inline
def value(xv, mc, sc, bc):  # pragma: no cover - compiled
    """v = (x - m_c) * s_c + b_c, batch norm's output: the one expression of every kernel
    that makes v or recomputes it (``planes_pool``), so that they give the same bits."""
    return (xv - mc) * sc + bc


@inline
def grad_value(gv, xv, mc, ac, c1c, c0c):  # pragma: no cover - compiled
    """dx = a_c * g - c1_c * (x - m_c) - c0_c, for every kernel that writes dx."""
    return ac * gv - c1c * (xv - mc) - c0c


@inline
def _plane(r, N, C, cm):  # pragma: no cover - compiled
    """(n, c) of row r, the inverse of ``_row``."""
    if cm:
        return r % N, r // N
    return r // C, r % C


@kernel
def _stats(x, cm, shift, s1s, s2s, h, c0, c1):  # pragma: no cover - compiled
    """Rows of chunks c0..c1: per channel, float64 sums of x - K and (x - K)^2."""
    R, L = x.shape
    C = shift.shape[0]
    N = R // C
    for c in range(c0, c1):
        for r in range(c * h, min(R, (c + 1) * h)):
            ch = _plane(r, N, C, cm)[1]
            row = x[r]
            k = shift[ch]
            t1 = 0.0
            t2 = 0.0
            for k0 in range(0, L, SPAN):
                a1, a2 = _sums(row, k, k0, min(L, k0 + SPAN))
                t1 += a1
                t2 += a2
            s1s[c, ch] += t1
            s2s[c, ch] += t2


@kernel
def _shift(x, C, cm):  # pragma: no cover - compiled
    """(C,) in x's dtype: the median of three samples of each channel."""
    R, L = x.shape
    N = R // C
    out = np.empty(C, dtype=x.dtype)
    for ch in range(C):
        a = x[_row(0, ch, N, C, cm), 0]
        b = x[_row(N // 2, ch, N, C, cm), L // 2]
        c = x[_row(N - 1, ch, N, C, cm), L - 1]
        lo = min(a, b)
        hi = max(a, b)
        out[ch] = max(lo, min(hi, c))
    return out


@kernel
def _normalize(x, cm, m, s, b, out, check, relu, flags, h, c0, c1):  # pragma: no cover - compiled
    """out = (x - m_c) * s_c + b_c for the rows of chunks c0..c1 (out in NCHW order);
    with ``check``, flags[c] is 1 iff some output of chunk c is inf or NaN, else 0."""
    R, L = x.shape
    C = m.shape[0]
    N = R // C
    z = zero_of(x)
    for c in range(c0, c1):
        bad = False
        for r in range(c * h, min(R, (c + 1) * h)):
            n, ch = _plane(r, N, C, cm)
            mc, sc, bc = m[ch], s[ch], b[ch]
            row = x[r]
            orow = out[n * C + ch]
            if check:
                for i in range(L):
                    v = value(row[i], mc, sc, bc)
                    orow[i] = v
                    bad |= nonfinite(v)
            elif relu:  # then max(out, 0): batch norm and ReLU in one pass
                for i in range(L):
                    v = value(row[i], mc, sc, bc)
                    orow[i] = relu_of(v, z)
            else:
                for i in range(L):
                    orow[i] = value(row[i], mc, sc, bc)
        flags[c] = bad


@kernel
def _grad_sums(g, gcm, x, cm, m, dbetas, dcents, h, c0, c1):  # pragma: no cover - compiled
    """Rows of chunks c0..c1: per channel, float64 sums of dout and dout * (x - m_c)."""
    R, L = x.shape
    C = m.shape[0]
    N = R // C
    for c in range(c0, c1):
        for r in range(c * h, min(R, (c + 1) * h)):
            n, ch = _plane(r, N, C, cm)
            g_row = g[_row(n, ch, N, C, gcm)]
            t1 = 0.0
            t2 = 0.0
            for k0 in range(0, L, SPAN):
                a1, a2 = _gsums(g_row, x[r], m[ch], k0, min(L, k0 + SPAN))
                t1 += a1
                t2 += a2
            dbetas[c, ch] += t1
            dcents[c, ch] += t2


@kernel
def _input_grad(g, gcm, x, cm, m, a, c1, c0, dx, h, lo, hi):  # pragma: no cover - compiled
    """dx = a_c * dout - c1_c * (x - m_c) - c0_c for the rows of chunks lo..hi (dx in
    x's order)."""
    R, L = x.shape
    C = m.shape[0]
    N = R // C
    for c in range(lo, hi):
        for r in range(c * h, min(R, (c + 1) * h)):
            n, ch = _plane(r, N, C, cm)
            ac, bc, cc, mc = a[ch], c1[ch], c0[ch], m[ch]
            g_row = g[_row(n, ch, N, C, gcm)]
            x_row = x[r]
            dx_row = dx[r]
            for i in range(L):
                dx_row[i] = grad_value(g_row[i], x_row[i], mc, ac, bc, cc)


def stats(x: np.ndarray, C: int, cm: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s1s, s2s, shift): the chunks' shifted sums for x: (N * C, L) (channel-major
    (C * N, L) when ``cm``), to merge with ``columns.merge``; s1s, s2s (chunks, C)
    float64, shift (C,) in x's dtype."""
    R, L = x.shape
    chunks = n_chunks(R, L)
    s1s = np.zeros((chunks, C))
    s2s = np.zeros((chunks, C))
    shift = _shift(x, C, cm)
    run(_stats, (x, cm, shift, s1s, s2s, height(R, chunks)), chunks, x.size)
    return s1s, s2s, shift


def normalize(
    x: np.ndarray,
    m: np.ndarray,
    s: np.ndarray,
    b: np.ndarray,
    check: bool,
    relu: bool = False,
    cm: bool = False,
) -> tuple[np.ndarray, bool]:
    """(out, ok): out = (x - m_c) * s_c + b_c for x: (N * C, L), or (C * N, L) when
    ``cm``; out is always (N * C, L), NCHW order. Coefficients (C,); ``check`` and
    ``relu`` as ``columns.normalize``."""
    flags = np.zeros(n_chunks(*x.shape))
    out = map_rows(_normalize, x, (x, cm, m, s, b), (check, relu, flags))
    return out, not check or bool(np.sum(flags) == 0.0)


def grad_sums(
    g: np.ndarray, x: np.ndarray, m: np.ndarray, gcm: bool = False, cm: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(sum dout, sum dout * (x - m_c)) per channel, (C,) float64 each; g, x: (N * C, L)
    planes, each channel-major (C * N, L) instead when its flag (``gcm``, ``cm``) is set."""
    R, L = x.shape
    C = m.shape[0]
    chunks = n_chunks(R, L)
    dbetas = np.zeros((chunks, C))
    dcents = np.zeros((chunks, C))
    run(_grad_sums, (g, gcm, x, cm, m, dbetas, dcents, height(R, chunks)), chunks, x.size)
    return dbetas.sum(axis=0), dcents.sum(axis=0)


def input_grad(
    g: np.ndarray,
    x: np.ndarray,
    m: np.ndarray,
    a: np.ndarray,
    c1: np.ndarray,
    c0: np.ndarray,
    gcm: bool = False,
    cm: bool = False,
) -> np.ndarray:
    """dx = a_c * dout - c1_c * (x - m_c) - c0_c: x's shape, order and dtype (layout
    flags as ``grad_sums``)."""
    return map_rows(_input_grad, x, (g, gcm, x, cm, m, a, c1, c0))
