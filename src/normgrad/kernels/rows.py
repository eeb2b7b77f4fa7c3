"""Per-row standardization kernels: the fused maths of layer, RMS, group and instance norm.

Each of those layers normalizes groups of values that are contiguous in memory, so x is
viewed as x: (R, M), one row per group, with M = P * Q values laid out as (P, Q). The
scale and shift are flat (G * P,) arrays indexed by (r % G) * P + p and constant along q:

- layer norm, x: (N, D):                R = N,     G = 1, P = D,     Q = 1
- layer norm over normalized_shape S:   R = prod of the leading axes, G = 1, P = prod(S), Q = 1
- RMS norm: as layer norm, uncentred (mu = 0, var = mean(x^2)), no shift
- group norm, x: (N, C, H, W), G groups: R = N * G, G = G, P = C / G, Q = H * W
- instance norm, x: (N, C, *S):         R = N * C, G = C, P = 1,     Q = prod(S)

Forward, per row r (one thread reads the row once from memory; it stays in cache),
every per-element operation in x's dtype (float32: full-width vectors, no conversions)::

    K     = x_r[0]                          # a sample of the row
    S1, S2 = sum(x_r - K), sum((x_r - K)^2) # float64 from spans of 2048 in x's dtype
    mu    = K + S1 / M;  var = (S2 - S1^2 / M) / M      # one pass, shifted by a sample
          (where that cancels more than 6 bits, K far from the mean: a second pass,
           var = sum((x_r - m)^2) / M - delta^2; never E[x^2] - E[x]^2 unshifted)
    m     = mu in x's dtype; delta = mu - m # x - m is exact for offset float32 data
    inv   = 1 / sqrt(var + eps)             # var + eps outside [lo, HI]: flag the call
    out_r = ((x_r - m) - delta) * inv * gamma + beta

Backward, per row, with xhat = ((x_r - m) - delta) * inv recomputed from the cached x
and dxhat = dout * gamma::

    pass 1  s1 = sum(dxhat), s2 = sum(dxhat * xhat); the chunk's partial dgamma += dout *
            xhat and dbeta += dout (x's dtype over blocks of 32 rows, then float64; one row
            of partials per chunk, merged in chunk order)
    pass 2  dx = inv * (dxhat - s1 / M - xhat * s2 / M)     (no s1 term when uncentred)

The row sums are ``reduction`` kernels (vectorized in a fixed lane order). Chunks are
fixed row ranges (``_runtime.n_chunks``), so results are the same for any thread count.
float64 x takes the same path in float64 (delta = 0), accurate to about 1e-15; float32
to about 1e-6, data at 1e6 times its spread included. The forward also checks that
gamma and beta cannot take an output near x's largest float. A flagged call is redone
by the reference (extreme statistics, NaN or inf, eps = 0 on a constant row).
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels import flatrows
from normgrad.kernels._rowmath import (
    BIG32,
    BIG64,
    BLOCK,
    LO32,
    SPAN,
    params_bounded,
    row_scale,
    stats,
    value,
    xhat,
)
from normgrad.kernels._runtime import (
    F32,
    LO,
    contiguous_as,
    empty_like,
    height,
    inline,
    kernel,
    n_chunks,
    reduction,
    run,
)

#: The backward's float64 partials hold at most this many values (chunks * G * P): a
#: layer norm over (C, H, W) has huge rows, and few chunks of them are enough.
_PARTIALS = 1 << 20
# Every helper below loops over a whole (sliced) view from index 0: numba then knows the
# index is never negative (no wraparound select per access), and LLVM vectorizes.


@reduction
def _grad_cols(g, a, m, delta, inv, gamma, bdg, bdb):  # pragma: no cover - compiled
    """Q = 1: bdg += g xhat, bdb += g; returns (sum gamma g, sum gamma g xhat), in x's dtype."""
    s1 = m - m
    s2 = m - m
    for p in range(a.shape[0]):
        xh = xhat(a[p], m, delta, inv)
        gp = g[p]
        bdg[p] += gp * xh
        bdb[p] += gp
        dxh = gp * gamma[p]
        s1 += dxh
        s2 += dxh * xh
    return s1, s2


@reduction
def _grad_slice(g, a, m, delta, inv):  # pragma: no cover - compiled
    """(sum g, sum g xhat) over one slice, in x's dtype."""
    s1 = m - m
    s2 = m - m
    for k in range(a.shape[0]):
        gk = g[k]
        s1 += gk
        s2 += gk * xhat(a[k], m, delta, inv)
    return s1, s2


@inline
def _normalize_slice(a, m, delta, inv, gamma, beta, out):  # pragma: no cover - compiled
    """out = xhat * gamma + beta, one gamma and beta for the whole slice (Q > 1)."""
    for k in range(a.shape[0]):
        out[k] = value(a[k], m, delta, inv, gamma, beta)


@inline
def _dx(g, a, m, delta, inv, gamma, m1, m2, dx):  # pragma: no cover - compiled
    """dx = inv * (g * gamma - m1 - xhat * m2)."""
    for k in range(a.shape[0]):
        xh = xhat(a[k], m, delta, inv)
        dx[k] = inv * (g[k] * gamma[k] - m1 - xh * m2)


@inline
def _dx_slice(g, a, m, delta, inv, gamma, m1, m2, dx):  # pragma: no cover - compiled
    """``_dx`` with one gamma for the whole slice."""
    for k in range(a.shape[0]):
        xh = xhat(a[k], m, delta, inv)
        dx[k] = inv * (g[k] * gamma - m1 - xh * m2)


@kernel
def _forward(
    x, gamma, beta, P, Q, G, eps, lo, big, center, out, mean, rstd, h, c0, c1
):  # pragma: no cover
    """Q > 1 rows of chunks c0..c1: statistics, then the normalized output. Returns 1, with the
    work left undone, when gamma and beta could take an output to ``big`` or beyond
    (|xhat| <= sqrt(M)), or when some row's var + eps leaves [lo, HI] (NaN included):
    the caller then runs the reference route for the whole call; else 0."""
    R, M = x.shape
    if not params_bounded(gamma, beta, M, big):  # NaN fails too
        return 1
    buf = np.empty(3, dtype=x.dtype)  # (m, delta, inv) in x's dtype
    for c in range(c0, c1):
        for i in range(c * h, min(R, (c + 1) * h)):
            xi = x[i]
            mu, var = stats(xi, center, buf)
            if not row_scale(i, mu, var, eps, lo, mean, rstd, buf):
                return 1
            base = (i % G) * P
            m, delta, iv = buf[0], buf[1], buf[2]
            oi = out[i]
            for p in range(P):
                sl = slice(p * Q, (p + 1) * Q)
                gp, bp = gamma[base + p], beta[base + p]
                _normalize_slice(xi[sl], m, delta, iv, gp, bp, oi[sl])
    return 0


@kernel
def _backward(
    g, x, mean, rstd, gamma, P, Q, G, center, dx, dgam, dbet, h, c0, c1
):  # pragma: no cover
    """dx for the rows of chunks c0..c1; partial dgamma, dbeta in row c of dgam, dbet."""
    R, M = x.shape
    buf = np.empty(5, dtype=x.dtype)  # (m, delta, inv, m1, m2) in x's dtype
    bdg = np.zeros(G * P, dtype=x.dtype)  # one block's column partials
    bdb = np.zeros(G * P, dtype=x.dtype)
    for c in range(c0, c1):
        dg = dgam[c]
        db = dbet[c]
        dg[:] = 0
        db[:] = 0
        lo = c * h
        hi = min(R, (c + 1) * h)
        for i in range(lo, hi):
            gi = g[i]
            xi = x[i]
            mu = mean[i]
            buf[0] = mu
            buf[1] = mu - buf[0]
            buf[2] = rstd[i]
            m, delta, inv = buf[0], buf[1], buf[2]
            base = (i % G) * P
            gam = gamma[base : base + P]
            s1 = 0.0
            s2 = 0.0
            if Q == 1:
                cg = bdg[base : base + P]
                cb = bdb[base : base + P]
                for k0 in range(0, P, SPAN):
                    sl = slice(k0, k0 + SPAN)
                    a1, a2 = _grad_cols(gi[sl], xi[sl], m, delta, inv, gam[sl], cg[sl], cb[sl])
                    s1 += a1
                    s2 += a2
                if (i - lo) % BLOCK == BLOCK - 1 or i == hi - 1:  # flush the block
                    for k in range(G * P):
                        dg[k] += bdg[k]
                        db[k] += bdb[k]
                        bdg[k] = 0
                        bdb[k] = 0
            else:
                for p in range(P):
                    a1 = 0.0
                    a2 = 0.0
                    for k0 in range(p * Q, (p + 1) * Q, SPAN):
                        sl = slice(k0, min((p + 1) * Q, k0 + SPAN))
                        b1, b2 = _grad_slice(gi[sl], xi[sl], m, delta, inv)
                        a1 += b1
                        a2 += b2
                    db[base + p] += a1
                    dg[base + p] += a2
                    s1 += gam[p] * a1
                    s2 += gam[p] * a2
            buf[3] = s1 / M if center else 0.0
            buf[4] = s2 / M
            m1, m2 = buf[3], buf[4]
            di = dx[i]
            if Q == 1:
                _dx(gi, xi, m, delta, inv, gam, m1, m2, di)
            else:
                for p in range(P):
                    sl = slice(p * Q, (p + 1) * Q)
                    _dx_slice(gi[sl], xi[sl], m, delta, inv, gam[p], m1, m2, di[sl])


def forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    P: int,
    Q: int,
    G: int,
    eps: float,
    center: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Normalize the rows of x: (R, M), C-contiguous float32 or float64.

    gamma, beta: G * P values in any shape, float32 or float64 (used in x's dtype); None
    is ones or zeros. Returns (out (R, M) in x's dtype, mean (R,), rstd (R,) float64),
    or None when some row's var + eps is outside the plain range or gamma and beta could
    take an output beyond x's dtype (NaN, inf, or max|gamma| sqrt(M) + max|beta| near
    the largest float): the caller then runs the reference route, which rescales,
    reports eps = 0 errors or propagates NaN. Q = 1 rows take the loop
    ``flatrows.loop_of`` picks for x's size and dtype.
    """
    R, M = x.shape
    dt = x.dtype
    chunks = n_chunks(R, M)
    out = empty_like(x)
    mean = np.empty(R)
    rstd = np.empty(R)
    gam = _flat_param(gamma, G * P, dt, 1.0)
    bet = _flat_param(beta, G * P, dt, 0.0)
    lo, big = (LO32, BIG32) if dt == F32 else (LO, BIG64)
    numerics = (float(eps), lo, big, center)
    results = (out, mean, rstd, height(R, chunks))
    if Q == 1:  # a scale per element: flatrows' loops
        args = (x, gam, bet, G, *numerics, *flatrows.loop_of(x), *results)
        flagged = run(flatrows._forward, args, chunks, x.size)
    else:
        flagged = run(_forward, (x, gam, bet, P, Q, G, *numerics, *results), chunks, x.size)
    if flagged:
        return None
    return out, mean, rstd


def _flat_param(a: np.ndarray | None, size: int, dtype: np.dtype, fill: float) -> np.ndarray:
    """gamma or beta as a flat C-contiguous (size,) array of x's dtype; None: ``fill``."""
    return np.full(size, fill, dtype) if a is None else contiguous_as(a, dtype).reshape(-1)


def backward(
    dout: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray | None,
    rstd: np.ndarray,
    gamma: np.ndarray | None,
    P: int,
    Q: int,
    G: int,
    center: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx (R, M) in x's dtype, and dgamma, dbeta (G * P,) float64, for ``forward``'s rows.

    dout: (R, M) C-contiguous, of x's dtype; gamma: G * P values, float32 or float64, or
    None (ones); mean: None for uncentred rows (zeros).
    """
    R, M = x.shape
    # one (G * P,) row of float64 partials per chunk: at most _PARTIALS values in all
    chunks = min(n_chunks(R, M), max(8, _PARTIALS // (G * P)))
    dx = empty_like(x)
    dgam = np.empty((chunks, G * P))  # each chunk zeroes its row first
    dbet = np.empty((chunks, G * P))
    gam = _flat_param(gamma, G * P, x.dtype, 1.0)
    mu = np.zeros(R) if mean is None else mean
    args = (dout, x, mu, rstd, gam, P, Q, G, center, dx, dgam, dbet, height(R, chunks))
    run(_backward, args, chunks, x.size)
    return dx, dgam.sum(axis=0), dbet.sum(axis=0)
