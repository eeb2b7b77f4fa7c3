"""Fused RMS norm: ``rmsnorm_forward`` / ``rmsnorm_backward`` in one pass per direction.

Same contract as ``normgrad.norms.rms`` (its ``parse_inputs``: same checks, messages and
the ``eps=None`` default of ``F.rms_norm``), for x: (*, *S) with S = gamma.shape, viewed
as (R, M) rows, M = prod(S). ``kernels.rows`` uncentred (mu = 0)::

    forward   ms = sum(x_r^2) / M (float64);  out = x_r * (1 / sqrt(ms + eps)) * gamma
    backward  s2 = sum(dout * gamma * xhat);  dx = inv * (dout * gamma - xhat * s2 / M)

with the chunks' partial dgamma merged in order. Where a row's ms + eps leaves
``core.plain_range``, x is not float32 or float64, or x is empty, the reference forward
runs inside the same call (and the fused backward accepts its cache).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _quick as q
from normgrad.kernels import rows
from normgrad.kernels._runtime import compiled, contiguous
from normgrad.norms import core, rms
from normgrad.norms.rms import RMSNormCache


class FusedRMSNormCache(NamedTuple):
    """What the fused backward needs: the input's rows and two numbers per row."""

    x: np.ndarray  # (R, M) the input's rows: xhat = x * rstd is recomputed from it
    rstd: np.ndarray  # (R,) float64 1 / sqrt(mean(x^2) + eps) of each row
    gamma: np.ndarray  # S: dxhat = dout * gamma; dgamma's shape and dtype
    shape: tuple[int, ...]  # x's shape: dout must have it, dx gets it


def rmsnorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, rms_param: dict[str, Any] | None = None
) -> tuple[np.ndarray, FusedRMSNormCache | RMSNormCache]:
    """RMS norm forward, fused; arguments, checks and result as ``rmsnorm_forward``.

    x: (*, *S), gamma: S. Returns out: x's shape and dtype, and the cache for
    ``rmsnorm_backward_fused``.
    """
    eps = None
    if q.array(x) and q.array(gamma) and 0 < gamma.ndim <= x.ndim and gamma.size > 0:
        if x.shape[x.ndim - gamma.ndim :] == gamma.shape:
            eps = q.eps_of(rms_param)
    if eps is None:
        gamma, eps = rms.parse_inputs(x, gamma, rms_param)
    if not compiled(x, gamma) or x.size == 0:
        return rms.rmsnorm_forward(x, gamma, rms_param)
    M = gamma.size
    x2 = contiguous(x).reshape(-1, M)  # (R, M)
    result = rows.forward(x2, gamma, None, M, 1, 1, eps, False)
    if result is None:  # extreme mean squares, non-finite x, or eps = 0 on a zero row
        return rms.rmsnorm_forward(x, gamma, rms_param)
    out, _, rstd = result
    return out.reshape(x.shape), FusedRMSNormCache(x2, rstd, gamma, tuple(x.shape))


def rmsnorm_backward_fused(
    dout: np.ndarray, cache: FusedRMSNormCache | RMSNormCache
) -> tuple[np.ndarray, np.ndarray]:
    """RMS norm backward, fused closed form: dx (x's shape, x's dtype), dgamma (S).

    Accepts the fused forward's cache, or the reference's when the forward took it.
    """
    v.cache_of(
        cache, (FusedRMSNormCache, RMSNormCache), "rmsnorm_backward_fused", "rmsnorm_forward_fused"
    )
    if isinstance(cache, RMSNormCache):
        return rms.rmsnorm_backward(dout, cache)
    x2, rstd, gamma, shape = cache
    core.check_dout(dout, shape)
    R, M = x2.shape
    g = contiguous(dout).reshape(R, M)  # (R, M)
    if g.dtype != x2.dtype:  # one compiled signature per dtype
        g = g.astype(x2.dtype)
    dx, dgam, _ = rows.backward(g, x2, None, rstd, gamma, M, 1, 1, False)
    return dx.reshape(shape), dgam.reshape(gamma.shape).astype(gamma.dtype)


def block_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: None, rms_param: dict[str, Any]
) -> tuple[np.ndarray, FusedRMSNormCache | RMSNormCache]:
    """The model blocks' signature: RMS norm has no shift, so beta is None."""
    return rmsnorm_forward_fused(x, gamma, rms_param)


def block_backward_fused(
    dout: np.ndarray, cache: FusedRMSNormCache | RMSNormCache
) -> tuple[np.ndarray, np.ndarray, None]:
    """The model blocks' signature: (dx, dgamma, None)."""
    dx, dgamma = rmsnorm_backward_fused(dout, cache)
    return dx, dgamma, None
