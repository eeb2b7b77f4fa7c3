"""The per-row statistics every rows kernel shares (``rows``, ``flatrows``): constants, the
moment sums and how a row's (mu, var) is finished from them.

For a row x_r of M values in x's dtype, with a shift K (a sample of the row, or 0 for
the uncentred RMS norm)::

    S1, S2 = sum(x_r - K), sum((x_r - K)^2)   # x's dtype over spans of SPAN, then float64
    mu     = K + S1 / M;  var = (S2 - S1^2 / M) / M
    m      = mu in x's dtype; delta = mu - m  # x - m is exact for offset float32 data

Where the one-pass variance cancels more than ``CANCEL`` bits (K far from the mean, or a
NaN), a second pass gives var = sum((x_r - m)^2) / M - delta^2.
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels._runtime import HI, inline, reduction

#: Values per span of a row summed in x's dtype before the sum goes on in float64.
SPAN = 2048
#: Rows per block of the backward's column partials kept in x's dtype.
BLOCK = 32
#: The one-pass variance may lose at most this many bits to its shift.
CANCEL = 6
#: The lower end of the plain range for statistics summed in float32 (their squares
#: below 2**-100 have lost bits to underflow); float64 uses ``_runtime.LO``.
LO32 = 2.0**-100
#: Outputs must stay below these (a quarter of the largest float32 and float64): else the
#: reference decides (inf, NaN).
BIG32 = float(np.finfo(np.float32).max) / 4
BIG64 = float(np.finfo(np.float64).max) / 4


# Every helper below loops over a whole (sliced) view from index 0: numba then knows the
# index is never negative (no wraparound select per access), and LLVM vectorizes.


@reduction
def span_moments(a, k):  # pragma: no cover - compiled
    """(sum(a - k), sum((a - k)^2)), in a's dtype."""
    s1 = k - k
    s2 = k - k
    for i in range(a.shape[0]):
        d = a[i] - k
        s1 += d
        s2 += d * d
    return s1, s2


@reduction
def span_sq(a, m):  # pragma: no cover - compiled
    """sum((a - m)^2), in a's dtype."""
    s = m - m
    for i in range(a.shape[0]):
        d = a[i] - m
        s += d * d
    return s


@inline
def shift_of(xi, center):  # pragma: no cover - compiled
    """The row's shift K in x's dtype: its first value, or 0 for an uncentred row."""
    return xi[0] if center else xi[0] - xi[0]


@inline
def finish(xi, center, k, s1, s2, buf):  # pragma: no cover - compiled
    """(mu, var) in float64 from S1, S2 of xi - k; buf: (2,) of x's dtype, set to (m, delta).

    Where the one-pass variance loses more than ``CANCEL`` bits, a second pass over xi
    centres at m exactly."""
    M = xi.shape[0]
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
        q += span_sq(xi[k0 : k0 + SPAN], m)
    return mu, max(q / M - delta * delta, 0.0)


@inline
def stats(xi, center, buf):  # pragma: no cover - compiled
    """(mu, var) of one row in float64, by ``span_moments`` and ``finish``."""
    M = xi.shape[0]
    k = shift_of(xi, center)
    s1 = 0.0
    s2 = 0.0
    for k0 in range(0, M, SPAN):
        a1, a2 = span_moments(xi[k0 : k0 + SPAN], k)
        s1 += a1
        s2 += a2
    return finish(xi, center, k, s1, s2, buf)


@inline
def xhat(a, m, delta, inv):  # pragma: no cover - compiled
    """The standardized value ((a - m) - delta) * inv: a - m is exact for offset float32
    data, and delta = mu - m carries what m could not hold of the float64 mean."""
    return ((a - m) - delta) * inv


@inline
def value(a, m, delta, inv, g, b):  # pragma: no cover - compiled
    """The layer's output for one value: xhat * g + b."""
    return xhat(a, m, delta, inv) * g + b


@inline
def row_scale(i, mu, var, eps, lo, mean, rstd, buf):  # pragma: no cover - compiled
    """Row i's mean[i] = mu and rstd[i] = buf[2] = 1 / sqrt(var + eps); False (nothing
    stored) when var + eps leaves [lo, HI], NaN included: the call goes to the reference."""
    denom = var + eps
    if not (denom >= lo and denom <= HI):
        return False
    inv = 1.0 / np.sqrt(denom)
    mean[i] = mu
    rstd[i] = inv
    buf[2] = inv
    return True


@inline
def absmax(a):  # pragma: no cover - compiled
    """max |a| in float64; NaN when a holds a NaN."""
    m = 0.0
    for k in range(a.shape[0]):
        v = abs(a[k])
        if v > m or v != v:  # once NaN, m stays NaN (no finite v compares above it)
            m = v
    return m


@inline
def params_bounded(gamma, beta, M, big):  # pragma: no cover - compiled
    """max|gamma| sqrt(M) + max|beta| < big (|xhat| <= sqrt(M)); False on NaN."""
    return absmax(gamma) * np.sqrt(M) + absmax(beta) < big
