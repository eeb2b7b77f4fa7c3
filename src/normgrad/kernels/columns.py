"""Per-column kernels for x: (N, D): batch norm's and batch renorm's fused maths.

Statistics, one pass over memory, shifted by K: (D,), a sample value of each feature (the
median of rows 0, N/2 and N-1, so one outlying row cannot be it)::

    d = x - K                                   # exact for offset float32 data (Sterbenz)
    per block of B rows, in x's dtype:  b1 += d,  b2 += d * d
    per block, into the chunk's float64 rows:  S1 += b1,  S2 += b2   (the compensated merge)
    chunks summed in chunk order;  mu = K + S1 / N,  M2 = S2 - S1^2 / N

For float32 x every per-element operation is float32 (no conversions, full-width
vectors): the shift removes the offset exactly, so the blocked float32 sums only see
values of the order of the spread, and each block's sums, of at most B = 32 terms, are
carried on in float64. The one subtraction that cancels, S2 - S1^2 / N, loses
log2(1 + z^2) bits for z = (mu - K) / sigma, about 1 bit for a sample K; a feature where
it would lose more than 6 (M2 < S2 / 64: K more than 8 spreads from the mean) is not
plain, and the call goes to the reference. float32 data whose mean is 1e6 times its
spread thus normalizes to about 1e-6, with no float64 arithmetic per element. float64 x
takes the same path in float64.

Output and gradient passes are element-wise with (D,) coefficients in x's dtype::

    normalize   out = (x - m) * s + b                      (test mode: also flags inf/NaN)
    grad_sums   dbeta = sum dout,  dcent = sum dout * (x - m)  (blocked, merged in float64)
    input_grad  dx = a * dout - c1 * (x - m) - c0

with m a float representable in x's dtype near the mean, so x - m is exact for offset
float32 data; the callers fold the remainder mu - m into b and c0 (``_affine``). Chunks
are fixed row ranges (``_runtime.n_chunks``): the same bits for every thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.kernels._runtime import (
    HI,
    height,
    kernel,
    map_rows,
    n_chunks,
    nonfinite,
    run,
    zero_of,
)
from normgrad.kernels._runtime import relu as relu_of

#: Rows per block of the float32 sums: their rounding error grows with it.
BLOCK = 32
#: M2 below S2 / 2**CANCEL lost more than CANCEL bits to the shift: not plain.
CANCEL = 6


@kernel
def _stats(x, shift, s1s, s2s, h, c0, c1):  # pragma: no cover - compiled
    """Chunks c0..c1: sum(x - shift) and sum((x - shift)^2) per column into s1s[c], s2s[c]
    (float64), from float32 (x's dtype) sums over blocks of ``BLOCK`` rows."""
    N, D = x.shape
    b1 = np.empty_like(shift)  # (D,) x's dtype: one block's sums
    b2 = np.empty_like(shift)
    for c in range(c0, c1):
        s1 = s1s[c]
        s2 = s2s[c]
        hi = min(N, (c + 1) * h)
        for r0 in range(c * h, hi, BLOCK):
            b1[:] = 0
            b2[:] = 0
            for i in range(r0, min(hi, r0 + BLOCK)):
                row = x[i]
                for j in range(D):
                    d = row[j] - shift[j]
                    b1[j] += d
                    b2[j] += d * d
            for j in range(D):
                s1[j] += b1[j]
                s2[j] += b2[j]


@kernel
def _merge(s1s, s2s, shift, n):  # pragma: no cover - compiled
    """(mu, M2, ok): the chunks' sums merged in chunk order, (D,) float64 each; ok is
    False when some feature's M2 lost more than ``CANCEL`` bits (or is not finite)."""
    chunks, D = s1s.shape
    s1 = s1s[0].copy()
    s2 = s2s[0].copy()
    for c in range(1, chunks):
        for j in range(D):
            s1[j] += s1s[c, j]
            s2[j] += s2s[c, j]
    mu = np.empty(D)
    m2 = np.empty(D)
    ok = True
    for j in range(D):
        mu[j] = shift[j] + s1[j] / n
        m2[j] = s2[j] - s1[j] * s1[j] / n
        if not (m2[j] * 2.0**CANCEL >= s2[j]):  # cancellation, or NaN / inf
            if not (s2[j] == 0.0):
                ok = False
            m2[j] = max(m2[j], 0.0)
    return mu, m2, ok


@kernel
def _shift(x):  # pragma: no cover - compiled
    """(D,) in x's dtype: the median of rows 0, N // 2 and N - 1 of each column."""
    N, D = x.shape
    out = np.empty_like(x[0])
    a, b, c = x[0], x[N // 2], x[N - 1]
    for j in range(D):
        lo = min(a[j], b[j])
        hi = max(a[j], b[j])
        out[j] = max(lo, min(hi, c[j]))
    return out


@kernel
def _normalize(x, m, s, b, out, check, relu, flags, h, c0, c1):  # pragma: no cover - compiled
    """out = (x - m) * s + b for the rows of chunks c0..c1. With ``check``, flags[c] is
    1 iff some output of chunk c is inf or NaN (``_runtime.nonfinite``), else 0. ``relu``:
    out = max(out, 0), as ``np.maximum`` (``_runtime.relu``)."""
    N, D = x.shape
    z = zero_of(x)
    for c in range(c0, c1):
        bad = False
        for i in range(c * h, min(N, (c + 1) * h)):
            row = x[i]
            orow = out[i]
            if check:
                for j in range(D):
                    value = (row[j] - m[j]) * s[j] + b[j]
                    orow[j] = value
                    bad |= nonfinite(value)
            elif relu:  # then max(out, 0): batch norm and ReLU in one pass
                for j in range(D):
                    value = (row[j] - m[j]) * s[j] + b[j]
                    orow[j] = relu_of(value, z)
            else:
                for j in range(D):
                    orow[j] = (row[j] - m[j]) * s[j] + b[j]
        flags[c] = bad


@kernel
def _grad_sums(g, x, m, B, dbetas, dcents, h, c0, c1):  # pragma: no cover - compiled
    """Chunks c0..c1: sum dout and sum dout * (x - m) per column, blocked in x's dtype
    and added into the float64 rows dbetas[c], dcents[c]."""
    N, D = x.shape
    bs = np.empty_like(m)
    bc = np.empty_like(m)
    for c in range(c0, c1):
        db_c = dbetas[c]
        dc_c = dcents[c]
        hi = min(N, (c + 1) * h)
        for r0 in range(c * h, hi, B):
            bs[:] = 0
            bc[:] = 0
            for i in range(r0, min(hi, r0 + B)):
                g_row = g[i]
                x_row = x[i]
                for j in range(D):
                    gj = g_row[j]
                    bs[j] += gj
                    bc[j] += gj * (x_row[j] - m[j])
            for j in range(D):
                db_c[j] += bs[j]
                dc_c[j] += bc[j]


@kernel
def _input_grad(g, x, m, a, c1, c0, dx, h, lo, hi):  # pragma: no cover - compiled
    """dx = a * dout - c1 * (x - m) - c0 for the rows of chunks lo..hi."""
    N, D = x.shape
    for c in range(lo, hi):
        for i in range(c * h, min(N, (c + 1) * h)):
            g_row = g[i]
            x_row = x[i]
            dx_row = dx[i]
            for j in range(D):
                dx_row[j] = a[j] * g_row[j] - c1[j] * (x_row[j] - m[j]) - c0[j]


@kernel
def _coefficients(mu, var, eps, lo, gamma, beta, inv, m, s, b):  # pragma: no cover - compiled
    """Fill inv (float64) and m, s, b (x's dtype); False if some feature is not plain:
    var + eps outside [lo, HI], or a coefficient that is not finite (gamma, beta)."""
    ok = True
    for j in range(mu.shape[0]):
        denom = var[j] + eps
        if not (denom >= lo and denom <= HI):
            ok = False
            continue
        iv = 1.0 / np.sqrt(denom)
        inv[j] = iv
        sj = gamma[j] * iv
        m[j] = mu[j]
        corr = mu[j] - m[j]
        s[j] = sj
        b[j] = beta[j] - corr * sj if corr != 0.0 else beta[j]
        if not (np.isfinite(s[j]) and np.isfinite(b[j]) and np.isfinite(m[j])):
            ok = False
    return ok


@kernel
def _grad_coefficients(
    dbeta, dcent, mu, m, inv, gamma, n, train, dgamma, a, c1, c0
):  # pragma: no cover
    """Fill dgamma (float64) and a, c1, c0 (x's dtype) from the gradient pass's sums;
    False if a coefficient is not finite in x's dtype (float32 beyond 3.4e38)."""
    ok = True
    for j in range(mu.shape[0]):
        # The correction for m != mu, skipped where it is 0 (float64 x) or dbeta is not
        # finite (an inf in dout): the reference's inf, not inf - inf = NaN, there.
        shift = mu[j] - m[j] if np.isfinite(dbeta[j]) else 0.0
        dg = (dcent[j] - shift * dbeta[j] if shift != 0 else dcent[j]) * inv[j]
        dgamma[j] = dg
        aj = gamma[j] * inv[j]
        a[j] = aj
        if train:
            c1j = aj * inv[j] * dg / n
            c0j = aj * dbeta[j] / n
        else:
            c1j = 0.0
            c0j = 0.0
        c1[j] = c1j
        c0[j] = c0j - c1j * shift if shift != 0 else c0j
        if not (np.isfinite(a[j]) and np.isfinite(c1[j]) and np.isfinite(c0[j])):
            ok = False
    return ok


@kernel
def _valid(mean, var):  # pragma: no cover - compiled
    """Every running mean and variance finite, every variance >= 0."""
    for j in range(mean.shape[0]):
        if not (np.isfinite(mean[j]) and np.isfinite(var[j]) and var[j] >= 0):
            return False
    return True


@kernel
def _blend(old_mean, old_var, mu, var, keep, w, ratio, new_mean, new_var):  # pragma: no cover
    """RunningStats.update: keep * old (old's dtype) + w * batch (float64), rounded to old's
    dtype; keep is the Python float, rounded first to old's dtype as NumPy rounds it
    against an array; ratio = n / (n - 1) when unbiased, else 1. Returns 1 if an old value
    is not finite or an old variance < 0 (nothing is computed), 2 if a result is not
    finite, else 0.
    """
    k = np.empty(1, dtype=old_mean.dtype)
    k[0] = keep
    keep = k[0]
    D = old_mean.shape[0]
    for j in range(D):
        if not (np.isfinite(old_mean[j]) and np.isfinite(old_var[j]) and old_var[j] >= 0):
            return 1
    status = 0
    for j in range(D):
        new_mean[j] = keep * old_mean[j] + w * mu[j]
        new_var[j] = keep * old_var[j] + w * (var[j] * ratio)
        if not (np.isfinite(new_mean[j]) and np.isfinite(new_var[j])):
            status = 2
    return status


@kernel
def blend_new(old_mean, old_var, mu, var, keep, w, ratio):  # pragma: no cover - compiled
    """``_blend`` into new arrays: (status, new_mean, new_var), in one compiled call
    (instead of two allocations and a dispatch from Python)."""
    new_mean = np.empty_like(old_mean)
    new_var = np.empty_like(old_var)
    status = _blend(old_mean, old_var, mu, var, keep, w, ratio, new_mean, new_var)
    return status, new_mean, new_var


@kernel
def _chunk_sum(parts):  # pragma: no cover - compiled
    """(D,) float64: the rows of parts (chunks, D) added in chunk order."""
    total = parts[0].copy()
    for c in range(1, parts.shape[0]):
        for j in range(parts.shape[1]):
            total[j] += parts[c, j]
    return total


#: ``train_small``'s status when the plain formulas cannot give the result.
NOT_PLAIN = 3


@kernel
def _train_small(
    x, chunks, h, gamma, beta, eps, lo, relu, old_mean, old_var, keep, w, ratio
):  # pragma: no cover
    """Batch norm's train-mode forward in one compiled call, for problems that run on the
    calling thread anyway: the threaded path's kernels, in its order (the same bits).
    Returns (status, out, mu, var, inv, m, new_mean, new_var), status 0, ``NOT_PLAIN``
    or ``_blend``'s."""
    N, D = x.shape
    shift = _shift(x)
    s1s = np.zeros((chunks, D))
    s2s = np.zeros((chunks, D))
    _stats(x, shift, s1s, s2s, h, 0, chunks)
    mu, m2, ok = _merge(s1s, s2s, shift, float(N))
    var = m2 / N
    inv = np.empty(D)
    m = np.empty_like(shift)
    s = np.empty_like(shift)
    b = np.empty_like(shift)
    out = np.empty_like(x)
    new_mean = np.empty_like(old_mean)
    new_var = np.empty_like(old_var)
    if not (ok and _coefficients(mu, var, eps, lo, gamma, beta, inv, m, s, b)):
        return NOT_PLAIN, out, mu, var, inv, m, new_mean, new_var
    flags = np.zeros(chunks)
    _normalize(x, m, s, b, out, False, relu, flags, h, 0, chunks)
    status = _blend(old_mean, old_var, mu, var, keep, w, ratio, new_mean, new_var)
    return status, out, mu, var, inv, m, new_mean, new_var


@kernel
def _backward_small(g, x, mu, m, inv, gamma, train, chunks, h):  # pragma: no cover
    """Batch norm's backward in one compiled call (the threaded path's kernels, in its
    order). Returns (ok, dx, dgamma, dbeta); ok False: a coefficient overflowed x's
    dtype, and dx is not computed."""
    N, D = x.shape
    dbetas = np.zeros((chunks, D))
    dcents = np.zeros((chunks, D))
    _grad_sums(g, x, m, BLOCK, dbetas, dcents, h, 0, chunks)
    dbeta = _chunk_sum(dbetas)
    dcent = _chunk_sum(dcents)
    dgamma = np.empty(D)
    a = np.empty_like(m)
    c1 = np.empty_like(m)
    c0 = np.empty_like(m)
    dx = np.empty_like(x)
    ok = _grad_coefficients(dbeta, dcent, mu, m, inv, gamma, float(N), train, dgamma, a, c1, c0)
    if ok:
        _input_grad(g, x, m, a, c1, c0, dx, h, 0, chunks)
    return ok, dx, dgamma, dbeta


def train_small(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, lo: float,
                relu: bool, old_mean: np.ndarray, old_var: np.ndarray, keep: float, w: float,
                ratio: float) -> tuple[Any, ...]:  # fmt: skip
    """``_train_small`` for x: (N, D) below ``_runtime.PARALLEL_MIN`` elements."""
    N, D = x.shape
    chunks = n_chunks(N, D)
    args = (gamma, beta, float(eps), float(lo), relu, old_mean, old_var, float(keep), float(w))
    return _train_small(x, chunks, height(N, chunks), *args, float(ratio))


def backward_small(
    g: np.ndarray,
    x: np.ndarray,
    mu: np.ndarray,
    m: np.ndarray,
    inv: np.ndarray,
    gamma: np.ndarray,
    train: bool,
) -> tuple[Any, ...]:
    """``_backward_small`` for x: (N, D) below ``_runtime.PARALLEL_MIN`` elements."""
    N, D = x.shape
    chunks = n_chunks(N, D)
    return _backward_small(g, x, mu, m, inv, gamma, train, chunks, height(N, chunks))


def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mu, M2) of every column of x: (N, D), C-contiguous, N >= 1; both (D,) float64.

    None when the shifted sums cancel too much for some feature (see the module
    docstring), or x holds NaN or inf: the caller runs the reference route.
    """
    N, D = x.shape
    chunks = n_chunks(N, D)
    s1s = np.zeros((chunks, D))
    s2s = np.zeros((chunks, D))
    shift = _shift(x)  # (D,) x's dtype: a sample of each feature
    run(_stats, (x, shift, s1s, s2s, height(N, chunks)), chunks, x.size)
    return merge(s1s, s2s, shift, N)


def merge(
    s1s: np.ndarray, s2s: np.ndarray, shift: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(mu, M2), (D,) float64, from the chunks' shifted sums over n values per feature;
    None when some feature's M2 cancelled too much or is not finite."""
    mu, m2, ok = _merge(s1s, s2s, shift, float(n))
    return (mu, m2) if ok else None


def normalize(
    x: np.ndarray, m: np.ndarray, s: np.ndarray, b: np.ndarray, check: bool, relu: bool = False
) -> tuple[np.ndarray, bool]:
    """(out, ok): out = (x - m) * s + b, (N, D) in x's dtype; m, s, b (D,) in x's dtype.

    With ``check``, ok is False when some output is inf or NaN (else always True); with
    ``relu`` (and not ``check``), out = max(out, 0) as ``np.maximum`` gives it.
    """
    flags = np.zeros(n_chunks(*x.shape))
    out = map_rows(_normalize, x, (x, m, s, b), (check, relu, flags))
    return out, not check or bool(np.sum(flags) == 0.0)


def grad_sums(g: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum_i dout_i, sum_i dout_i * (x_i - m)), (D,) float64 each; g, x: (N, D), m (D,)."""
    N, D = x.shape
    chunks = n_chunks(N, D)
    dbetas = np.zeros((chunks, D))
    dcents = np.zeros((chunks, D))
    run(_grad_sums, (g, x, m, BLOCK, dbetas, dcents, height(N, chunks)), chunks, x.size)
    return _chunk_sum(dbetas), _chunk_sum(dcents)


def input_grad(
    g: np.ndarray, x: np.ndarray, m: np.ndarray, a: np.ndarray, c1: np.ndarray, c0: np.ndarray
) -> np.ndarray:
    """dx = a * dout - c1 * (x - m) - c0: (N, D) in x's dtype; coefficients (D,) likewise."""
    return map_rows(_input_grad, x, (g, x, m, a, c1, c0))
