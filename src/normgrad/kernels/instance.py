"""Fused instance norm: ``instancenorm_forward`` / ``_backward`` in one pass each way.

Same contract as ``normgrad.norms.instance`` (its ``parse_inputs``: same checks and
messages), for x: (N, C, *S) viewed as (N * C, prod(S)) rows, one per (sample, channel),
each contiguous in memory. ``kernels.rows`` with G = C groups of P = 1 channel::

    forward   mu, var of the row (two passes, float64); out = (x - mu) * inv * gamma_c + beta_c
    backward  s1 = sum(dout), s2 = sum(dout * xhat) of the row (the chunk's dbeta_c,
              dgamma_c); dx = inv * gamma_c * (dout - s1 / M - xhat * s2 / M)

Where some slice's var + eps leaves ``core.plain_range``, x is not float32 or float64, or
x is empty, the reference forward runs inside the same call, and the fused backward
accepts its cache.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _quick as q
from normgrad.kernels import rows
from normgrad.kernels._runtime import compiled, contiguous
from normgrad.norms import core, instance
from normgrad.norms.instance import InstanceNormCache


class FusedInstanceNormCache(NamedTuple):
    """What the fused backward needs: the input's rows and two numbers per slice."""

    x: np.ndarray  # (N * C, prod(S)) the input, one row per (sample, channel)
    mean: np.ndarray  # (N * C,) float64 mean of each slice
    rstd: np.ndarray  # (N * C,) float64 1 / sqrt(var + eps) of each slice
    gamma: np.ndarray  # (C,): dxhat = dout * gamma; dgamma's dtype
    shape: tuple[int, ...]  # x's shape: dout must have it, dx gets it


def instancenorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, in_param: dict[str, Any]
) -> tuple[np.ndarray, FusedInstanceNormCache | InstanceNormCache]:
    """Instance norm forward, fused; arguments, checks and result as the reference's.

    x: (N, C, *S) with S non-empty; gamma, beta: (C,). Returns out: x's shape and dtype,
    and the cache for ``instancenorm_backward_fused``.
    """
    eps = None
    if q.array(x) and x.ndim >= 3 and 0 not in x.shape[2:]:
        C = x.shape[1]
        if q.param_of(gamma, (C,)) and q.param_of(beta, (C,)):
            eps = q.eps_of(in_param)
    if eps is None:
        gamma, beta, eps = instance.parse_inputs(x, gamma, beta, in_param)
    if not compiled(x, gamma, beta) or x.size == 0:
        return instance.instancenorm_forward(x, gamma, beta, in_param)
    N, C = x.shape[:2]
    x2 = contiguous(x).reshape(N * C, -1)  # (N * C, prod(S))
    result = rows.forward(x2, gamma, beta, 1, x2.shape[1], C, eps, True)
    if result is None:  # extreme statistics, non-finite x, or eps = 0 on a constant slice
        return instance.instancenorm_forward(x, gamma, beta, in_param)
    out, mean, rstd = result
    return out.reshape(x.shape), FusedInstanceNormCache(x2, mean, rstd, gamma, tuple(x.shape))


def instancenorm_backward_fused(
    dout: np.ndarray, cache: FusedInstanceNormCache | InstanceNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instance norm backward, fused closed form: dx (x's shape), dgamma, dbeta (C,).

    Accepts the fused forward's cache, or the reference's when the forward took it.
    """
    v.cache_of(
        cache,
        (FusedInstanceNormCache, InstanceNormCache),
        "instancenorm_backward_fused",
        "instancenorm_forward_fused",
    )
    if isinstance(cache, InstanceNormCache):
        return instance.instancenorm_backward(dout, cache)
    x2, mean, rstd, gamma, shape = cache
    core.check_dout(dout, shape)
    C = shape[1]
    g = contiguous(dout).reshape(x2.shape)  # (N * C, prod(S))
    if g.dtype != x2.dtype:  # one compiled signature per dtype
        g = g.astype(x2.dtype)
    dx, dgam, dbet = rows.backward(g, x2, mean, rstd, gamma, 1, x2.shape[1], C, True)
    return dx.reshape(shape), dgam.astype(gamma.dtype), dbet.astype(gamma.dtype)
