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
    inv   = 1 / sqrt(var + eps)             # var + eps outside [lo, HI]: flag the chunk
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
to about 1e-6, data at 1e6 times its spread included. A flagged call is redone by the
reference (extreme statistics, NaN or inf, eps = 0 on a constant row).
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels._runtime import (
    HI,
    LO,
    empty_like,
    height,
    inline,
    kernel,
    n_chunks,
    reduction,
    run,
)

#: Values per span of a row summed in x's dtype (vectorized: 32 partial sums, so about
#: 64 terms each) before the sum goes on in float64.
SPAN = 2048
#: Rows per block of the column partials kept in x's dtype.
BLOCK = 32
#: The one-pass variance may lose at most this many bits to its shift.
CANCEL = 6
#: The backward's float64 partials hold at most this many values (chunks * G * P): a
#: layer norm over (C, H, W) has huge rows, and few chunks of them are enough.
_PARTIALS = 1 << 20
#: The lower end of the plain range for statistics summed in float32 (their squares
#: below 2**-100 have lost bits to underflow); float64 uses ``_runtime.LO``.
LO32 = 2.0**-100


# Every helper below loops over a whole (sliced) view from index 0: numba then knows the
# index is never negative (no wraparound select per access), and LLVM vectorizes.


@reduction
def _span_sum(a, k):  # pragma: no cover - compiled
    """sum(a - k), in a's dtype."""
    s = k - k
    for i in range(a.shape[0]):
        s += a[i] - k
    return s


@reduction
def _span_moments(a, k):  # pragma: no cover - compiled
    """(sum(a - k), sum((a - k)^2)), in a's dtype."""
    s1 = k - k
    s2 = k - k
    for i in range(a.shape[0]):
        d = a[i] - k
        s1 += d
        s2 += d * d
    return s1, s2


@reduction
def _span_sq(a, m):  # pragma: no cover - compiled
    """sum((a - m)^2), in a's dtype."""
    s = m - m
    for i in range(a.shape[0]):
        d = a[i] - m
        s += d * d
    return s


@reduction
def _grad_cols(g, a, m, delta, inv, gamma, bdg, bdb):  # pragma: no cover - compiled
    """Q = 1: bdg += g xhat, bdb += g; returns (sum gamma g, sum gamma g xhat), in x's dtype."""
    s1 = m - m
    s2 = m - m
    for p in range(a.shape[0]):
        xh = ((a[p] - m) - delta) * inv
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
        s2 += gk * (((a[k] - m) - delta) * inv)
    return s1, s2


@inline
def _normalize(a, m, delta, inv, gamma, beta, out):  # pragma: no cover - compiled
    """out = ((a - m) - delta) * inv * gamma + beta."""
    for k in range(a.shape[0]):
        out[k] = ((a[k] - m) - delta) * inv * gamma[k] + beta[k]


@inline
def _normalize_slice(a, m, delta, inv, gamma, beta, out):  # pragma: no cover - compiled
    """``_normalize`` with one gamma and beta for the whole slice."""
    for k in range(a.shape[0]):
        out[k] = ((a[k] - m) - delta) * inv * gamma + beta


@inline
def _dx(g, a, m, delta, inv, gamma, m1, m2, dx):  # pragma: no cover - compiled
    """dx = inv * (g * gamma - m1 - xhat * m2)."""
    for k in range(a.shape[0]):
        xh = ((a[k] - m) - delta) * inv
        dx[k] = inv * (g[k] * gamma[k] - m1 - xh * m2)


@inline
def _dx_slice(g, a, m, delta, inv, gamma, m1, m2, dx):  # pragma: no cover - compiled
    """``_dx`` with one gamma for the whole slice."""
    for k in range(a.shape[0]):
        xh = ((a[k] - m) - delta) * inv
        dx[k] = inv * (g[k] * gamma - m1 - xh * m2)


@inline
def _stats(xi, center, buf):  # pragma: no cover - compiled
    """(mu, var) of one row in float64; buf: (2,) of x's dtype, set to (m, delta).

    One pass: S1, S2 of x - K (K = x[0]), var = (S2 - S1^2 / M) / M. Where that loses more
    than ``CANCEL`` bits (K far from the mean), a second pass centres at m exactly."""
    M = xi.shape[0]
    k = xi[0] if center else xi[0] - xi[0]
    s1 = 0.0
    s2 = 0.0
    for k0 in range(0, M, SPAN):
        a1, a2 = _span_moments(xi[k0 : k0 + SPAN], k)
        s1 += a1
        s2 += a2
    mu = k + s1 / M if center else 0.0
    buf[0] = mu
    m = buf[0]
    delta = mu - m
    buf[1] = delta
    if not center:
        return 0.0, s2 / M
    m2 = s2 - s1 * s1 / M
    if m2 * 2.0**CANCEL >= s2:  # NaN fails too: the second pass, then the range check
        return mu, m2 / M
    q = 0.0
    for k0 in range(0, M, SPAN):
        q += _span_sq(xi[k0 : k0 + SPAN], m)
    return mu, max(q / M - delta * delta, 0.0)


@kernel
def _forward(
    x, gamma, beta, P, Q, G, eps, lo, center, out, mean, rstd, flags, h, c0, c1
):  # pragma: no cover
    """Rows of chunks c0..c1: statistics, then the normalized output. A row whose
    var + eps leaves [lo, HI] (NaN included) sets flags[c]: the caller then runs the
    reference route for the whole call."""
    R, M = x.shape
    buf = np.empty(3, dtype=x.dtype)  # (m, delta, inv) in x's dtype
    for c in range(c0, c1):
        for i in range(c * h, min(R, (c + 1) * h)):
            xi = x[i]
            mu, var = _stats(xi, center, buf)
            denom = var + eps
            if not (denom >= lo and denom <= HI):
                flags[c] = 1
                continue
            inv = 1.0 / np.sqrt(denom)
            mean[i] = mu
            rstd[i] = inv
            buf[2] = inv
            base = (i % G) * P
            m, delta, iv = buf[0], buf[1], buf[2]
            oi = out[i]
            if Q == 1:
                _normalize(xi, m, delta, iv, gamma[base : base + P], beta[base : base + P], oi)
            else:
                for p in range(P):
                    sl = slice(p * Q, (p + 1) * Q)
                    gp, bp = gamma[base + p], beta[base + p]
                    _normalize_slice(xi[sl], m, delta, iv, gp, bp, oi[sl])


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
    gamma: np.ndarray,
    beta: np.ndarray,
    P: int,
    Q: int,
    G: int,
    eps: float,
    center: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Normalize the rows of x: (R, M), C-contiguous float32 or float64.

    gamma, beta: (G * P,), any float dtype (used in x's). Returns (out (R, M) in x's
    dtype, mean (R,), rstd (R,) float64), or None when some row's var + eps is outside
    the plain range or gamma and beta could take an output beyond x's dtype (NaN, inf,
    or max|gamma| sqrt(M) + max|beta| near the largest float): the caller then runs the
    reference route, which rescales, reports eps = 0 errors or propagates NaN.
    """
    R, M = x.shape
    if not _bounded(gamma, beta, M, x.dtype):
        return None
    chunks = n_chunks(R, M)
    out = empty_like(x)
    mean = np.empty(R)
    rstd = np.empty(R)
    flags = np.zeros(chunks, dtype=np.int64)
    lo = LO32 if x.dtype == np.float32 else LO
    params = (gamma.astype(x.dtype, copy=False), beta.astype(x.dtype, copy=False))
    args = (x, *params, P, Q, G, float(eps), lo, center, out, mean, rstd, flags)
    run(_forward, (*args, height(R, chunks)), chunks, x.size)
    if flags.any():
        return None
    return out, mean, rstd


def _bounded(gamma: np.ndarray, beta: np.ndarray, M: int, dtype: np.dtype) -> bool:
    """Every output is finite: |xhat| <= sqrt(M), so |out| <= max|gamma| sqrt(M) + max|beta|,
    which must stay well inside x's dtype (else the reference decides: inf, NaN)."""
    with np.errstate(all="ignore"):
        bound = float(np.max(np.abs(gamma))) * np.sqrt(M) + float(np.max(np.abs(beta)))
    return bool(bound < float(np.finfo(dtype).max) / 4)


def backward(
    dout: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray,
    rstd: np.ndarray,
    gamma: np.ndarray,
    P: int,
    Q: int,
    G: int,
    center: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx (R, M) in x's dtype, and dgamma, dbeta (G * P,) float64, for ``forward``'s rows.

    dout: (R, M) C-contiguous, of x's dtype; gamma: (G * P,), any float dtype.
    """
    R, M = x.shape
    # one (G * P,) row of float64 partials per chunk: at most _PARTIALS values in all
    chunks = min(n_chunks(R, M), max(8, _PARTIALS // (G * P)))
    dx = empty_like(x)
    dgam = np.zeros((chunks, G * P))
    dbet = np.zeros((chunks, G * P))
    gam = gamma.astype(x.dtype, copy=False)
    args = (dout, x, mean, rstd, gam, P, Q, G, center, dx, dgam, dbet, height(R, chunks))
    run(_backward, args, chunks, x.size)
    return dx, dgam.sum(axis=0), dbet.sum(axis=0)
