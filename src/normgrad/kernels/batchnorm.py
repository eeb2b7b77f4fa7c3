"""Fused batch norm: the reference maths in fewer passes over memory (numba).

Same contract as ``normgrad.norms.batch`` (same input checks, running statistics and
results, to rounding), for x: (N, D), float32 or float64. Only the loop structure and
the float32 arithmetic change (``kernels.columns`` and ``kernels._affine`` hold them):

Forward, train mode (two passes over x instead of the reference's five)::

    pass 1  mu, var per feature: x - K and (x - K)^2, K a sample of each feature,
            summed over blocks of 32 rows in x's dtype, the block sums carried on in
            float64 (fixed chunks, merged in order); mu = K + S1/N, M2 = S2 - S1^2/N
    pass 2  out = (x - m) * s + b,  s = gamma / sqrt(var + eps), m = mu in x's dtype,
            b = beta - (mu - m) * s

Backward (two passes over dout and x instead of the reference's six)::

    pass 1  dbeta = sum_i dout_i,  dcent = sum_i dout_i * (x_i - m)   (blocked, merged)
    pass 2  dx_i  = a * dout_i - c1 * (x_i - m) - c0

``batchnorm_backward_alt``'s closed form with xhat recomputed from the cached x, so the
forward stores no (N, D) xhat. Results are the same bits for any thread count
(``_runtime``: fixed chunks, merged in order).

Overhead. An ordinary call (``_quick``, ``_bnparam.quick``: plain arrays and a plain
``bn_param``) skips the reference's checks, which would cost tens of microseconds, and
updates the running statistics in one compiled pass; anything else runs the
reference's ``parse_inputs`` (its errors, its messages, nothing written on error).

Never a different answer from the reference. Other dtypes (float16, longdouble,
big-endian) and empty inputs run the reference route inside the same call, and so does
every call whose result the plain formulas cannot give, found by a cheap check on the
(D,) statistics and coefficients: var + eps outside ``core.plain_range`` (or below
2**-100 for float32 sums: ``_affine.LO32``), NaN or inf in x, gamma or beta, and in test
mode an output that came out inf or NaN. The backward accepts both caches and refuses
anything else (``TypeError``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _affine, columns
from normgrad.kernels import _bnparam as bnp
from normgrad.kernels import _quick as q
from normgrad.kernels._runtime import F32, F64, PARALLEL_MIN, as64, compiled, contiguous
from normgrad.norms.batch import (
    BatchNormCache,
    batchnorm_backward_alt,
    batchnorm_forward,
    parse_inputs,
)


class FusedBatchNormCache(NamedTuple):
    """What the fused backward needs: no (N, D) array beyond the input itself."""

    x: np.ndarray  # (N, D) C-contiguous input: xhat is recomputed from it
    mu: np.ndarray  # (D,) float64 mean x was centred by (batch in train, running in test)
    m: np.ndarray  # (D,) mu rounded to x's dtype: the element-wise passes subtract it
    inv_std: np.ndarray  # (D,) float64 1 / sqrt(var + eps)
    gamma: np.ndarray  # (D,) scale: dL/dxhat = dout * gamma; the gradients' dtype
    train: bool  # in test mode mu and inv_std are constants: dx = dout * gamma * inv_std


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
    return _forward(x, gamma, beta, bn_param, False)


def batchnorm_relu_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, FusedBatchNormCache | BatchNormCache]:
    """max(batchnorm_forward_fused(...), 0) in the same pass: batch norm, then ReLU.

    Returns (out, cache) with out: (N, D) = ``np.maximum(bn_out, 0)`` exactly, and batch
    norm's cache (for ``batchnorm_backward_fused``). The ReLU's own backward needs only
    the sign of its input, which out has: pass out to ``relu_backward`` as its cache.
    """
    return _forward(x, gamma, beta, bn_param, True)


def _forward(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool
) -> tuple[np.ndarray, FusedBatchNormCache | BatchNormCache]:
    p = plain_call(x, gamma, beta, bn_param)
    if p is None:
        return _checked(x, gamma, beta, bn_param, relu)
    xc = contiguous(x)
    N = xc.shape[0]
    if p.train and xc.size < PARALLEL_MIN:  # one compiled call: the least overhead
        return _train_small(x, xc, gamma, beta, bn_param, p, relu)
    result = compute(xc, gamma, beta, p.train, p.eps, p.mean, p.var, relu)
    if result is None:  # the plain formulas cannot give it: nothing has been written yet
        return _reference(x, gamma, beta, bn_param, relu)
    out, cache, var = result
    bnp.commit(bn_param, p, cache.mu, var, N, lambda: parse_inputs(x, gamma, beta, bn_param).stats)
    return out, cache


def _train_small(
    x: np.ndarray, xc: np.ndarray, gamma: Any, beta: Any, bn_param: Any, p: bnp.Plain, relu: bool
) -> tuple[np.ndarray, FusedBatchNormCache | BatchNormCache]:
    """A plain train-mode call below the thread threshold: ``columns.train_small``."""
    N = xc.shape[0]
    lo = _affine.LO32 if xc.dtype == F32 else _affine.LO
    ratio = N / (N - 1) if p.unbiased else 1.0
    g64, b64 = as64(gamma), as64(beta)
    status, out, mu, var, inv, m, mean, new_var = columns.train_small(
        xc, g64, b64, p.eps, lo, relu, p.mean, p.var, p.keep, p.w, ratio
    )
    if status == columns.NOT_PLAIN:
        return _reference(x, gamma, beta, bn_param, relu)
    stats = lambda: parse_inputs(x, gamma, beta, bn_param).stats  # noqa: E731
    bnp.commit(bn_param, p, mu, var, N, stats, blended=(status, mean, new_var))
    return out, FusedBatchNormCache(xc, mu, m, inv, gamma, True)


def _reference(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool
) -> tuple[np.ndarray, BatchNormCache]:
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    return (np.maximum(out, 0) if relu else out), cache


def plain_call(x: Any, gamma: Any, beta: Any, bn_param: Any) -> bnp.Plain | None:
    """``bn_param`` read when the whole call is plainly valid (``_quick``), else None.

    In test mode the running statistics are also checked to be finite, the variance >= 0
    (in train mode ``_bnparam.blend`` checks them before anything is written).
    """
    if not (q.array(x) and x.ndim == 2):
        return None
    N, D = x.shape
    if N == 0 or D == 0 or not (q.param_of(gamma, (D,)) and q.param_of(beta, (D,))):
        return None
    p = bnp.quick(bn_param, D, x.dtype, N)
    if p is None or (not p.train and not bnp.valid(p)):
        return None
    return p


def _checked(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool
) -> tuple[np.ndarray, FusedBatchNormCache | BatchNormCache]:
    """The unusual call: the reference's checks first, then the kernels where they apply."""
    gamma, beta, train, eps, stats = parse_inputs(x, gamma, beta, bn_param)
    if not compiled(x, gamma, beta) or x.size == 0:
        return _reference(x, gamma, beta, bn_param, relu)
    xc = contiguous(x)
    result = compute(xc, gamma, beta, train, eps, stats.mean, stats.var, relu)
    if result is None:
        return _reference(x, gamma, beta, bn_param, relu)
    out, cache, var = result
    (stats.update(cache.mu, var, xc.shape[0]) if train else stats).write(bn_param)
    return out, cache


def compute(
    xc: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    train: bool,
    eps: float,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    relu: bool = False,
) -> tuple[np.ndarray, FusedBatchNormCache, np.ndarray] | None:
    """(out, cache, var) for checked inputs, xc: (N, D) C-contiguous float32 or float64;
    None when the plain formulas cannot give the result. Writes nothing. ``relu``: out
    is max(out, 0)."""
    moments, normalize = partial(columns.stats, xc), partial(columns.normalize, xc)
    args = (train, eps, gamma, beta, running_mean, running_var, relu)
    result = _affine.normalize_batch(moments, xc.shape[0], normalize, xc.dtype, *args)
    if result is None:
        return None
    out, mu, m, inv, var = result
    return out, FusedBatchNormCache(xc, mu, m, inv, gamma, train), var


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
    if type(dout) is not np.ndarray or dout.shape != cache.x.shape or dout.dtype.kind != "f":
        v.float_array(dout, "dout")
        v.shape(dout, "dout", cache.x.shape, "the shape of the forward output")
    dx, dgamma, dbeta = backward(dout, cache)
    return dx, dgamma.astype(cache.gamma.dtype), dbeta.astype(cache.gamma.dtype)


def backward(
    dout: np.ndarray, cache: FusedBatchNormCache, gamma: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx in x's dtype, dgamma, dbeta float64) for a checked dout of x's shape.

    ``gamma`` (float64, (D,)) overrides the cache's: batch renorm passes gamma * r. Its
    dgamma is then sum dout * xbn, batch norm's.
    """
    x, mu, m, inv, cgamma, train = cache
    g = contiguous(dout)
    if g.dtype != x.dtype:  # one compiled signature per dtype
        g = g.astype(x.dtype)
    g64 = as64(cgamma) if gamma is None else gamma
    if x.size < PARALLEL_MIN:  # one compiled call: the least overhead
        ok, dx, dgamma, dbeta = columns.backward_small(g, x, mu, m, inv, g64, train)
        if ok:
            return dx, dgamma, dbeta
    dbeta, dcent = columns.grad_sums(g, x, m)  # (D,), (D,) float64
    dgamma, a, c1, c0, centre = _affine.backward_or_wide(
        dbeta, dcent, mu, m, inv, g64, x.shape[0], train
    )
    if centre.dtype != x.dtype:  # float32 coefficients overflow: the pass in float64
        dx = columns.input_grad(g.astype(F64), x.astype(F64), centre, a, c1, c0)
        return dx.astype(x.dtype), dgamma, dbeta
    return columns.input_grad(g, x, centre, a, c1, c0), dgamma, dbeta
