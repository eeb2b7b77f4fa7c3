"""Fused batch-norm kernels: the reference maths in fewer passes over memory (numba).

Same contract as ``normgrad.norms.batch`` (same input checks, running statistics and
results, to rounding), for x: (N, D) C-contiguous float32 or float64. The maths is the
reference's; only the loop structure changes:

Forward, train mode (two passes over x instead of the reference's five)::

    pass 1  mu, var per feature: block-wise Welford. Each block of B rows is reduced
            two-pass while it sits in cache (sum, then centred squares), and blocks are
            merged with Chan et al.'s update, M2 += M2_b + delta^2 n n_b / (n + n_b).
            Never E[x^2] - E[x]^2; accumulated in float64 whatever x's dtype.
    pass 2  out = (x - mu) * (gamma / sqrt(var + eps)) + beta

Backward (two passes over dout and x instead of the reference's six)::

    pass 1  dbeta = sum_i dout_i,  dgamma = sum_i dout_i * (x_i - mu) * inv_std
    pass 2  dx_i  = gamma * inv_std * (dout_i - (dbeta + xhat_i * dgamma) / N)

which is ``batchnorm_backward_alt``'s closed form with xhat_i = (x_i - mu) * inv_std
recomputed on the fly, so the forward pass stores no (N, D) xhat. Work is split into
contiguous row ranges across numba's threads (``numba.set_num_threads``), each with
partial statistics of its own, merged at the end.

Never a different answer from the reference. Checks and errors are the reference's
(``batch.parse_inputs``: same accepted inputs, same messages, nothing written on
error). The kernels are compiled for float32 and float64 (in native byte order); any
other dtype (float16, longdouble, big-endian) and empty inputs (N = 0 or D = 0) run the
reference route inside the same call. So does every call whose result the plain
formulas cannot give, found by a cheap check:

- train mode: a float64 var + eps outside ``core.plain_range`` (about 1e-173 to 1e173:
  spreads beyond ~1e+-86, |x| up to 1.8e308, NaN or inf in x), checked on the (D,)
  statistics; the reference then rescales, or keeps those features' running statistics;
- test mode: an output that came out non-finite (x - mu overflowing near +-1.8e308, NaN
  in x). Test mode's kernels add out * 0 into one accumulator, NaN iff some output is
  inf or NaN, so this costs no extra pass over memory.

The backward accepts both caches and refuses anything else (``TypeError``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms.batch import (
    BatchNormCache,
    batchnorm_backward_alt,
    batchnorm_forward,
    parse_inputs,
)
from normgrad.norms.core import plain_range

try:
    import numba
    from numba import njit, prange
except ImportError as exc:  # pragma: no cover - exercised only without the `fast` extra
    raise ImportError("normgrad.kernels needs numba: pip install 'normgrad[fast]'") from exc

# Bytes of float64 row data per Welford block: block_rows = _BLOCK_BYTES // (8 * D), so one
# block (256 KiB) is still in cache when its centred squares are summed.
_BLOCK_BYTES = 1 << 18
# The dtypes the kernels are compiled for; any other (float16, longdouble) and empty
# arrays take the reference route, with the same checks and results.
_COMPILED = (np.dtype(np.float32), np.dtype(np.float64))
# var + eps in [_LO, _HI] (float64) is where the plain formulas, the backward's ~1/var
# coefficient included, are exact to rounding (``core.plain_range``).
_LO, _HI = plain_range(np.dtype(np.float64))


class FusedBatchNormCache(NamedTuple):
    """What the fused backward needs: no (N, D) array beyond the input itself."""

    x: np.ndarray  # (N, D) input: xhat is recomputed from it on the fly
    mu: np.ndarray  # (D,) float64 mean x was centred by (batch in train, running in test)
    inv_std: np.ndarray  # (D,) float64 1 / sqrt(var + eps)
    gamma: np.ndarray  # (D,) scale: dL/dxhat = dout * gamma
    train: bool  # in test mode mu and inv_std are constants: dx = dout * gamma * inv_std


def _column_stats(x, n_chunks, block_rows):  # pragma: no cover - compiled
    """Mean and M2 = sum_i (x_i - mu)^2 per column, float64, by block-wise Welford.

    Each thread takes a contiguous range of rows (so it streams memory, and its partial
    statistics live in a row of their own); the partials are merged with Chan's update.
    """
    N, D = x.shape
    means = np.zeros((n_chunks, D))  # one row of partial statistics per thread
    m2s = np.zeros((n_chunks, D))
    counts = np.zeros(n_chunks)
    height = (N + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        mean_c = means[c]  # (D,) this thread's running statistics (views)
        m2_c = m2s[c]
        bmean = np.empty(D)  # one block's mean and M2
        bm2 = np.empty(D)
        n = 0
        for r0 in range(c * height, min(N, (c + 1) * height), block_rows):
            r1 = min(N, (c + 1) * height, r0 + block_rows)
            nb = r1 - r0
            bmean[:] = 0.0
            for i in range(r0, r1):
                row = x[i]
                for j in range(D):
                    bmean[j] += row[j]
            for j in range(D):
                bmean[j] /= nb
            bm2[:] = 0.0
            for i in range(r0, r1):  # the block is still in cache: centre exactly
                row = x[i]
                for j in range(D):
                    d = row[j] - bmean[j]
                    bm2[j] += d * d
            total = n + nb
            for j in range(D):  # Chan et al.: merge the block into the running stats
                delta = bmean[j] - mean_c[j]
                mean_c[j] += delta * nb / total
                m2_c[j] += bm2[j] + delta * delta * (n * nb / total)
            n = total
        counts[c] = n
    mean = means[0].copy()  # (D,) merge the threads' partials, in order
    m2 = m2s[0].copy()  # (D,)
    n = counts[0]
    for c in range(1, n_chunks):
        nb = counts[c]
        if nb == 0:
            continue
        total = n + nb
        for j in range(D):
            delta = means[c, j] - mean[j]
            mean[j] += delta * nb / total
            m2[j] += m2s[c, j] + delta * delta * (n * nb / total)
        n = total
    return mean, m2


def _normalize(x, mu, scale, beta, out):  # pragma: no cover - compiled
    """out = (x - mu) * scale + beta, row by row; scale = gamma * inv_std."""
    N, D = x.shape
    for i in prange(N):
        row = x[i]
        out_row = out[i]
        for j in range(D):
            out_row[j] = (row[j] - mu[j]) * scale[j] + beta[j]


def _normalize_checked(x, mu, scale, beta, out):  # pragma: no cover - compiled
    """``_normalize`` for test mode, whose x - mu may overflow: also returns the sum of
    out * 0 over every element, 0.0, or NaN iff some output is inf or NaN (branch-free,
    so the loop still vectorizes)."""
    N, D = x.shape
    flag = 0.0
    for i in prange(N):
        row = x[i]
        out_row = out[i]
        acc = 0.0
        for j in range(D):
            value = (row[j] - mu[j]) * scale[j] + beta[j]
            out_row[j] = value
            acc += value * 0.0
        flag += acc
    return flag


def _grad_sums(dout, x, mu, n_chunks):  # pragma: no cover - compiled
    """sum_i dout_i and sum_i dout_i * (x_i - mu) per column, float64.

    Each thread sums a contiguous range of rows into a row of partial sums of its own.
    """
    N, D = x.shape
    dbetas = np.zeros((n_chunks, D))  # (threads, D)
    dcents = np.zeros((n_chunks, D))  # (threads, D): dgamma / inv_std
    height = (N + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        dbeta_c = dbetas[c]
        dcent_c = dcents[c]
        for i in range(c * height, min(N, (c + 1) * height)):
            g_row = dout[i]
            x_row = x[i]
            for j in range(D):
                g = g_row[j] * 1.0  # float64 accumulation
                dbeta_c[j] += g
                dcent_c[j] += g * (x_row[j] - mu[j])
    return dbetas.sum(axis=0), dcents.sum(axis=0)


def _input_grad(dout, x, mu, a, b, c, dx):  # pragma: no cover - compiled
    """dx_i = a * dout_i - b * (x_i - mu) - c, row by row (coefficients (D,))."""
    N, D = x.shape
    for i in prange(N):
        g_row = dout[i]
        x_row = x[i]
        dx_row = dx[i]
        for j in range(D):
            dx_row[j] = a[j] * g_row[j] - b[j] * (x_row[j] - mu[j]) - c[j]


def _scale_shift(x, scale, shift, out):  # pragma: no cover - compiled
    """out = x * scale + shift, row by row: one fused multiply-add per element.

    Used for float32 input only, with float64 scale and shift = beta - mu * scale: the
    cancellation between x * scale and shift costs ~1e-16 * |mean| / spread, far below
    float32's resolution, and the kernel is twice as fast as the centred form.
    """
    N, D = x.shape
    for i in prange(N):
        row = x[i]
        out_row = out[i]
        for j in range(D):
            out_row[j] = row[j] * scale[j] + shift[j]


def _scale_shift_checked(x, scale, shift, out):  # pragma: no cover - compiled
    """``_scale_shift`` for test mode, returning ``_normalize_checked``'s flag."""
    N, D = x.shape
    flag = 0.0
    for i in prange(N):
        row = x[i]
        out_row = out[i]
        acc = 0.0
        for j in range(D):
            value = row[j] * scale[j] + shift[j]
            out_row[j] = value
            acc += value * 0.0
        flag += acc
    return flag


class _Compiled(NamedTuple):
    column_stats: Any
    normalize: Any
    scale_shift: Any
    normalize_checked: Any
    scale_shift_checked: Any
    grad_sums: Any
    input_grad: Any


_KERNELS = (
    _column_stats,
    _normalize,
    _scale_shift,
    _normalize_checked,
    _scale_shift_checked,
    _grad_sums,
    _input_grad,
)


def _compile(parallel: bool) -> _Compiled:
    jit = njit(parallel=parallel, cache=True)
    return _Compiled(*(jit(f) for f in _KERNELS))


# Small arrays skip the thread pool: launching it costs more than the work.
_PARALLEL, _SERIAL = _compile(True), _compile(False)
_PARALLEL_MIN_SIZE = 1 << 17


def _kernels(x: np.ndarray) -> _Compiled:
    return _PARALLEL if x.size >= _PARALLEL_MIN_SIZE else _SERIAL


def _chunks(N: int) -> int:
    """Row ranges for the reductions: one per thread, at most one per row."""
    return max(1, min(numba.get_num_threads(), N))


def batchnorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, FusedBatchNormCache | BatchNormCache]:
    """Batch norm forward pass, fused: y = gamma * (x - mu) / sqrt(var + eps) + beta.

    Same arguments, checks, running-statistics update and result as
    ``normgrad.layers.batchnorm_forward`` (see it for every ``bn_param`` key).

    Args:
        x: (N, D) floating input. float32 and float64 run the compiled kernels; any
            other floating dtype, and an empty x, run the reference ``batchnorm_forward``
            (whose cache ``batchnorm_backward_fused`` accepts too).
        gamma, beta: (D,) scale and shift. Read, never modified.
        bn_param: as for ``batchnorm_forward``; its running stats are written back.

    Returns:
        out: (N, D) in x's dtype, and the cache for ``batchnorm_backward_fused``.

    Raises:
        TypeError, ValueError: exactly as ``batchnorm_forward`` (the same
            ``parse_inputs``); bn_param is then left exactly as it was.
    """
    gamma, beta, train, eps, stats = parse_inputs(x, gamma, beta, bn_param)
    if x.dtype not in _COMPILED or x.size == 0:
        return batchnorm_forward(x, gamma, beta, bn_param)
    xc = np.ascontiguousarray(x)
    N, D = xc.shape
    k = _kernels(xc)
    if train:
        block_rows = max(1, _BLOCK_BYTES // (8 * D))
        mu, m2 = k.column_stats(xc, _chunks(N), block_rows)  # (D,), (D,)
        var = m2 / N  # (D,) biased
    else:
        mu = stats.mean.astype(np.float64)  # (D,)
        var = stats.var.astype(np.float64)  # (D,)
    with np.errstate(all="ignore"):  # extreme statistics are handed to the reference
        denom = var + eps  # (D,)
    if train and not np.all((denom >= _LO) & (denom <= _HI)):
        # Over- or underflow, or NaN/inf in x: the reference rescales (or keeps the
        # running statistics of non-finite features); nothing has been written yet.
        return batchnorm_forward(x, gamma, beta, bn_param)
    inv_std = 1.0 / np.sqrt(denom)  # (D,)
    scale = gamma * inv_std  # (D,) float64
    out = np.empty_like(xc)  # (N, D)
    shift = beta - mu * scale  # (D,) float32 input: one multiply-add per element
    if train:  # statistics within plain_range: every output is finite (or NaN from gamma)
        if xc.dtype == np.float32:
            k.scale_shift(xc, scale, shift, out)
        else:
            k.normalize(xc, mu, scale, beta.astype(np.float64), out)
    else:  # x - mu may overflow: the checked kernels say whether any output is not finite
        if xc.dtype == np.float32:
            flag = k.scale_shift_checked(xc, scale, shift, out)
        else:
            flag = k.normalize_checked(xc, mu, scale, beta.astype(np.float64), out)
        if flag != 0.0:  # an output is inf or NaN: the reference decides what it should be
            return batchnorm_forward(x, gamma, beta, bn_param)
    (stats.update(mu, var, N) if train else stats).write(bn_param)
    return out, FusedBatchNormCache(xc, mu, inv_std, gamma, train)


def batchnorm_backward_fused(
    dout: np.ndarray, cache: FusedBatchNormCache | BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm backward pass, fused closed form (``batchnorm_backward_alt``'s maths)::

        dx_i = gamma * inv_std * (dout_i - (dbeta + xhat_i * dgamma) / N)

    Args:
        dout: (N, D) upstream gradient dL/dy.
        cache: from ``batchnorm_forward_fused``.

    Returns:
        dx: (N, D) in x's dtype, dgamma: (D,), dbeta: (D,) in gamma's dtype.

    Raises:
        TypeError: cache is neither ``batchnorm_forward_fused``'s nor ``batchnorm_forward``'s,
            or dout is not a floating array. ValueError: dout's shape is not x's.
    """
    v.cache_of(
        cache,
        (FusedBatchNormCache, BatchNormCache),
        "batchnorm_backward_fused",
        "batchnorm_forward_fused",
    )
    if isinstance(cache, BatchNormCache):  # the forward took the reference route
        return batchnorm_backward_alt(dout, cache)
    x, mu, inv_std, gamma, train = cache
    v.float_array(dout, "dout")
    v.shape(dout, "dout", x.shape, "the shape of the forward output")
    N, D = x.shape
    g = np.ascontiguousarray(dout)
    k = _kernels(x)
    dbeta, dcent = k.grad_sums(g, x, mu, _chunks(N))  # (D,), (D,)
    dgamma = dcent * inv_std  # (D,)
    a = gamma * inv_std  # (D,) gamma / std
    if train:
        b = a * inv_std * dgamma / N  # (D,) so that b * (x - mu) = a * xhat * dgamma / N
        c = a * dbeta / N  # (D,)
    else:
        b = np.zeros(D)
        c = np.zeros(D)
    dx = np.empty_like(x)  # (N, D)
    k.input_grad(g, x, mu, a.astype(np.float64), b, c, dx)
    return dx, dgamma.astype(gamma.dtype), dbeta.astype(gamma.dtype)
