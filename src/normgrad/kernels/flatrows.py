"""The per-row forward for rows whose scale varies along the row (Q = 1): layer, RMS norm.

The maths is ``kernels.rows``' (see there, and ``_rowmath`` for the statistics); this
module is its loop structure for Q = 1, x: (R, M) with gamma, beta indexed by
(r % G) * M + k, software-pipelined across rows. A row's two passes (its statistics,
then its output) are otherwise back to back: the first waits on memory, the second on
arithmetic, and neither overlaps the other. Here one loop writes row r's output while
it reads row r + 1 for the first time::

    out_r = ((x_r - m) - delta) * inv * gamma + beta   and   S1, S2 of x_{r+1}

so every element's memory traffic meets some arithmetic. That pays only out of cache:
an A/B in one process (2026-12-04, 1 thread; the machine is noisy) gave pipelined /
two-pass 0.87 to 0.91 for float64 (4096, 1024), 0.94 to 1.16 for float32 (4096, 1024),
but 1.2 to 1.5 for problems that fit in cache, (64, 1024) to (1024, 1024), where the
two-pass loop's sums (``_rowmath.stats``: vectorized reductions) are faster than the
lanes below. For float32 out of cache a third loop beats both: the two-pass loop with
a software prefetch of row r + 1 before row r is read (``_prefetch``: a row of 1024
float32 is one 4 KiB page, and the hardware prefetchers stop at a page's end). An A/B
in one process (2026-12-04, (4096, 1024) float32, medians of 15 rounds) gave two-pass
3.44, pipelined 3.27, prefetched 2.98 ms on 1 thread (torch 3.16) and 2.04, 3.22, 1.77
on 2 (torch 1.95); (16384, 768) float32 11.5, 12.3, 10.9 ms on 1. For float64 the
prefetch did not pay (7.31 two-pass, 7.47 prefetched, 6.51 pipelined): its rows are
two pages, and the pipelined loop keeps it. So ``loop_of`` picks by x's size and dtype
alone (never the thread count), and results are still the same bits for every run and
thread count; the prefetch changes no value, and the pipelined and two-pass orders of
summation agree to rounding (1e-15 float64, 1e-7 float32), not bit for bit. The backward keeps
``rows``' two passes: the same pipelining of its wider loop (nine arrays) did not
vectorize and ran 2.7x slower. The pipelined sums run in ``LANES`` independent partial
sums in x's dtype (element-wise updates: they vectorize with no reassociation, so the
element-wise arithmetic stays exactly as written), merged in lane order into float64
once per span of ``SPAN`` values. Chunks are fixed row ranges and
the pipeline restarts at each chunk's first row, so results are the same bits on every
run and for every thread count.
"""

from __future__ import annotations

import numpy as np

from normgrad.kernels._prefetch import prefetch_row
from normgrad.kernels._rowmath import (
    SPAN,
    finish,
    params_bounded,
    row_scale,
    shift_of,
    stats,
    value,
)
from normgrad.kernels._runtime import inline, kernel

#: Independent partial sums per row sum (in x's dtype): 4 AVX2 vectors of float32. With
#: 16 the in-cache forward was 1.3x the two-pass one's time (64 x 1024: 35 against
#: 26 us); with 32 it is 1.1x to 1.25x (48 against 38 us, 87 against 80 us at 256 x 768),
#: and out of cache it is 0.85x to 0.93x (4096 x 1024: 2.35 against 2.78 ms float32).
LANES = 32
#: x of at least this many bytes (16 MiB: half this machine's L3 with its output) is
#: out of cache: ``loop_of`` picks its loop by dtype; smaller x takes the two-pass loop.
OUT_OF_CACHE = 1 << 24
#: ``_forward``'s loops, as its (piped, pf) flags.
LOOPS = {"piped": (True, False), "two-pass": (False, False), "prefetch": (False, True)}


def loop_of(x: np.ndarray) -> tuple[bool, bool]:
    """``LOOPS``' (piped, pf) flags for ``_forward`` on x: (R, M), by size and dtype alone.

    Below ``OUT_OF_CACHE`` bytes x is in cache: two passes, no prefetch. Out of cache,
    float64 is pipelined and float32 takes two passes with a prefetch of the next row
    (see the module docstring for the measurements). Never by thread count, so a
    result's bits are the same for every run and thread count.
    """
    if x.nbytes < OUT_OF_CACHE:
        return LOOPS["two-pass"]
    return LOOPS["piped" if x.dtype == np.float64 else "prefetch"]


@inline
def _lanes_total(a):  # pragma: no cover - compiled
    """The lanes' sum in float64, in lane order; the lanes are then reset to 0."""
    s = 0.0
    for j in range(LANES):
        s += a[j]
        a[j] = 0
    return s


@inline
def _accumulate(a1, a2, j, v, k):  # pragma: no cover - compiled
    """Lane j of the moments about k: a1[j] += v - k, a2[j] += (v - k)^2."""
    d = v - k
    a1[j] += d
    a2[j] += d * d


@inline
def _moments(xn, k, a1, a2):  # pragma: no cover - compiled
    """(sum(xn - k), sum((xn - k)^2)) of a whole row, in float64 from ``LANES`` lanes."""
    M = xn.shape[0]
    s1 = 0.0
    s2 = 0.0
    for k0 in range(0, M, SPAN):
        xs = xn[k0 : k0 + SPAN]
        n = xs.shape[0]
        full = n - n % LANES
        for b in range(0, full, LANES):
            for j in range(LANES):
                _accumulate(a1, a2, j, xs[b + j], k)
        for t in range(full, n):
            _accumulate(a1, a2, 0, xs[t], k)
        s1 += _lanes_total(a1)
        s2 += _lanes_total(a2)
    return s1, s2


@inline
def _norm_span(xi, m, delta, inv, gam, bet, oi, xn, k, a1, a2):  # pragma: no cover - compiled
    """One span (all views sliced to it): oi = ((xi - m) - delta) * inv * gam + bet, and
    xn's moments about k into the lanes."""
    n = xn.shape[0]
    full = n - n % LANES
    for b in range(0, full, LANES):
        for j in range(LANES):
            e = b + j
            oi[e] = value(xi[e], m, delta, inv, gam[e], bet[e])
            _accumulate(a1, a2, j, xn[e], k)
    for e in range(full, n):
        oi[e] = value(xi[e], m, delta, inv, gam[e], bet[e])
        _accumulate(a1, a2, 0, xn[e], k)


@inline
def _normalize_and_moments(
    xi, m, delta, inv, gam, bet, oi, xn, k, a1, a2
):  # pragma: no cover - compiled
    """oi = ((xi - m) - delta) * inv * gam + bet; returns ``_moments(xn, k)``."""
    M = xn.shape[0]
    s1 = 0.0
    s2 = 0.0
    for k0 in range(0, M, SPAN):
        sl = slice(k0, k0 + SPAN)
        _norm_span(xi[sl], m, delta, inv, gam[sl], bet[sl], oi[sl], xn[sl], k, a1, a2)
        s1 += _lanes_total(a1)
        s2 += _lanes_total(a2)
    return s1, s2


@inline
def _normalize(a, m, delta, inv, gamma, beta, out):  # pragma: no cover - compiled
    """out = ((a - m) - delta) * inv * gamma + beta."""
    for k in range(a.shape[0]):
        out[k] = value(a[k], m, delta, inv, gamma[k], beta[k])


@kernel
def _forward(
    x, gamma, beta, G, eps, lo, big, center, piped, pf, out, mean, rstd, h, c0, c1
):  # pragma: no cover
    """Rows of chunks c0..c1. ``piped``: row i's output with row i + 1's moments (lane
    sums); else each row's statistics (``_rowmath.stats``), then its output, and with
    ``pf`` a prefetch of row i + 1 before row i is read (``_prefetch``). Returns 1,
    with the work left undone, when gamma and beta could take an output to ``big`` or
    beyond, or some row's var + eps leaves [lo, HI] (NaN included); else 0."""
    R, M = x.shape
    if not params_bounded(gamma, beta, M, big):  # NaN fails too
        return 1
    buf = np.empty(3, dtype=x.dtype)  # (m, delta, inv) in x's dtype
    a1 = np.zeros(LANES, dtype=x.dtype)
    a2 = np.zeros(LANES, dtype=x.dtype)
    for c in range(c0, c1):
        first = c * h
        last = min(R, (c + 1) * h)
        if first >= last:
            continue
        k = x[first, 0] - x[first, 0]  # the pipeline's shift and sums of its next row
        s1 = s2 = 0.0
        if piped:
            k = shift_of(x[first], center)
            s1, s2 = _moments(x[first], k, a1, a2)
        for i in range(first, last):
            xi = x[i]
            if pf and i + 1 < R:  # row i + 1's lines arrive while row i is worked on
                prefetch_row(x[i + 1])
            if piped:
                mu, var = finish(xi, center, k, s1, s2, buf)
            else:
                mu, var = stats(xi, center, buf)
            if not row_scale(i, mu, var, eps, lo, mean, rstd, buf):
                return 1
            m, delta, iv = buf[0], buf[1], buf[2]
            base = (i % G) * M
            gam = gamma[base : base + M]
            bet = beta[base : base + M]
            if piped and i + 1 < last:
                xn = x[i + 1]
                k = shift_of(xn, center)
                s1, s2 = _normalize_and_moments(xi, m, delta, iv, gam, bet, out[i], xn, k, a1, a2)
            else:
                _normalize(xi, m, delta, iv, gam, bet, out[i])
    return 0
