"""Fused batch renormalization: batch norm's fused kernels with gamma * r and gamma * d.

Same contract as ``normgrad.norms.renorm`` (its ``parse_inputs``: every batch norm check
plus r_max and d_max; the same running statistics, results to rounding), for x: (N, D)
float32 or float64. With r and d constants of the backward pass (the paper's
stop_gradient), batch renorm is batch norm with an effective scale and shift::

    out = gamma * ((x - mu) / sigma_B * r + d) + beta
        = (x - mu) * (gamma r / sigma_B) + (gamma d + beta)

so the forward runs ``kernels.columns``' statistics and normalize passes with
gamma' = gamma * r and beta' = gamma * d + beta (r, d from ``renorm_corrections`` on the
(D,) statistics), and the backward is ``kernels.batchnorm.backward`` with gamma', whose
dgamma, sum dout * xbn, gives dgamma = r * sum(dout * xbn) + d * dbeta. At r_max = 1,
d_max = 0 (r = 1, d = 0 exactly) the results are the fused batch norm's, bit for bit.

Fallbacks as batch norm's: other dtypes, empty inputs, and statistics outside the plain
range (or NaN/inf) run the reference forward inside the same call; the fused backward
accepts its cache too.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _affine, columns
from normgrad.kernels import batchnorm as bn
from normgrad.kernels._runtime import as64, compiled, contiguous
from normgrad.norms import renorm
from normgrad.norms.renorm import BatchRenormCache


class FusedBatchRenormCache(NamedTuple):
    """What the fused backward needs: batch norm's fused cache, and r and d."""

    bn: bn.FusedBatchNormCache  # x, mu, m, inv_std (of the batch, or running in test), gamma
    r: np.ndarray  # (D,) float64 scale correction, a constant (ones in test mode)
    d: np.ndarray  # (D,) float64 shift correction, a constant (zeros in test mode)


def batchrenorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, FusedBatchRenormCache | BatchRenormCache]:
    """Batch renorm forward, fused; arguments, checks, running statistics and result as
    ``batchrenorm_forward``. x: (N, D); gamma, beta: (D,). Returns out (N, D) in x's
    dtype, and the cache for ``batchrenorm_backward_fused``."""
    gamma, beta, train, eps, stats, r_max, d_max = renorm.parse_inputs(x, gamma, beta, bn_param)
    if not compiled(x, gamma, beta) or x.size == 0:
        return renorm.batchrenorm_forward(x, gamma, beta, bn_param)
    xc = contiguous(x)
    N, D = xc.shape
    g64, b64 = as64(gamma), as64(beta)
    r, d = np.ones(D), np.zeros(D)  # the corrections: the identity in test mode

    def scale_shift(mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        nonlocal r, d
        if train:
            with np.errstate(all="ignore"):  # extreme statistics: the reference's to solve
                r, d = renorm.renorm_corrections(mu, var, stats.mean, stats.var, eps, r_max, d_max)
        if not (np.isfinite(r).all() and np.isfinite(d).all()):
            return None
        return g64 * r, g64 * d + b64

    moments, normalize = partial(columns.stats, xc), partial(columns.normalize, xc)
    args = (train, eps, gamma, beta, stats.mean, stats.var, False, scale_shift)
    result = _affine.normalize_batch(moments, N, normalize, xc.dtype, *args)
    if result is None:
        return renorm.batchrenorm_forward(x, gamma, beta, bn_param)
    out, mu, m, inv, var = result
    (stats.update(mu, var, N) if train else stats).write(bn_param)
    cache = bn.FusedBatchNormCache(xc, mu, m, inv, gamma, train)
    return out, FusedBatchRenormCache(cache, r, d)


def batchrenorm_backward_fused(
    dout: np.ndarray, cache: FusedBatchRenormCache | BatchRenormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch renorm backward, fused closed form with r and d held constant.

    dout: (N, D). Returns dx (N, D) in x's dtype, dgamma and dbeta (D,) in gamma's dtype.
    Accepts the fused forward's cache, or the reference's when the forward took it.
    """
    v.cache_of(
        cache,
        (FusedBatchRenormCache, BatchRenormCache),
        "batchrenorm_backward_fused",
        "batchrenorm_forward_fused",
    )
    if isinstance(cache, BatchRenormCache):
        return renorm.batchrenorm_backward(dout, cache)
    fcache, r, d = cache
    v.float_array(dout, "dout")
    v.shape(dout, "dout", fcache.x.shape, "the shape of the forward output")
    dx, proj, dbeta = bn.backward(dout, fcache, as64(fcache.gamma) * r)
    dgamma = r * proj + d * dbeta  # (D,) sum dout * (xbn * r + d)
    pdt = fcache.gamma.dtype
    return dx, dgamma.astype(pdt), dbeta.astype(pdt)
