"""Fused layer norm: ``layernorm_*`` and ``layernorm_nd_*`` in one pass per direction.

Same contract as ``normgrad.norms.layer`` (same checks and messages, through its
``parse_inputs`` / ``parse_nd_inputs``; results to rounding), for x: (*, *S) viewed as
(R, M) rows, R the product of the leading axes and M = prod(S). The maths is
``kernels.rows``' (see there for the loop structure and numerics): per row, the mean and
variance by two passes over the row while it is in cache, accumulated in float64, then
out = (x - mu) * inv_std * gamma + beta rounded once; the backward recomputes xhat from
the cached x, so the forward stores no (R, M) array besides its output.

Never a different answer from the reference: dtypes other than float32 and float64 (and
their mixes with other parameter dtypes), empty inputs, and any call in which some row's
var + eps leaves ``core.plain_range`` (extreme magnitudes, NaN or inf in x, eps = 0 on a
constant row) run the reference forward inside the same call; the fused backward then
accepts its cache too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _quick as q
from normgrad.kernels import rows
from normgrad.kernels._runtime import compiled, contiguous
from normgrad.norms import core, layer
from normgrad.norms.layer import LayerNormCache


class FusedLayerNormCache(NamedTuple):
    """What the fused backward needs: no (R, M) array beyond the input itself."""

    x: np.ndarray  # (R, M) the input's rows: xhat is recomputed from it
    mean: np.ndarray  # (R,) float64 mean of each row
    rstd: np.ndarray  # (R,) float64 1 / sqrt(var + eps) of each row
    gamma: np.ndarray | None  # S: dxhat = dout * gamma, and dgamma's dtype; None: no scale
    has_beta: bool  # whether a shift was given, so dbeta is an array rather than None
    shape: tuple[int, ...]  # x's shape: dout must have it, dx gets it
    S: tuple[int, ...]  # normalized_shape: dgamma's and dbeta's shape
    nd: bool  # made by layernorm_nd_forward_fused: the course's backward refuses it


def layernorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, FusedLayerNormCache | LayerNormCache]:
    """Layer norm forward, fused; arguments, checks and result as ``layernorm_forward``.

    x: (N, D); gamma, beta: (D,); ln_param: ``eps`` (and the ignored ``mode``).
    Returns out: (N, D) in x's dtype, and the cache for ``layernorm_backward_fused``.
    """
    eps = None
    if q.array(x) and x.ndim == 2 and x.shape[1] > 0:
        D = x.shape[1]
        if q.param_of(gamma, (D,)) and q.param_of(beta, (D,)):
            eps = q.eps_of(ln_param)
    if eps is None:
        gamma, beta, eps = layer.parse_inputs(x, gamma, beta, ln_param)
    return _forward(x, gamma, beta, 1, eps, False, ln_param)


def layernorm_nd_forward_fused(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    normalized_shape: int | Sequence[int],
    ln_param: dict[str, Any] | None = None,
) -> tuple[np.ndarray, FusedLayerNormCache | LayerNormCache]:
    """``layernorm_nd_forward``, fused: normalize x: (*, *S) over its trailing S."""
    gamma, beta, S, eps = layer.parse_nd_inputs(x, gamma, beta, normalized_shape, ln_param)
    return _forward(x, gamma, beta, len(S), eps, True, ln_param, normalized_shape)


def _forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    k: int,
    eps: float,
    nd: bool,
    ln_param: Any,
    normalized_shape: Any = None,
) -> tuple[np.ndarray, FusedLayerNormCache | LayerNormCache]:
    """The checked call: the rows kernel, or the reference where the kernel cannot."""
    params = [p for p in (gamma, beta) if p is not None]
    if not compiled(x, *params) or x.size == 0:
        return _reference(x, gamma, beta, nd, ln_param, normalized_shape)
    M = math.prod(x.shape[x.ndim - k :])
    x2 = contiguous(x).reshape(-1, M)  # (R, M)
    result = rows.forward(x2, gamma, beta, M, 1, 1, eps, True)
    if result is None:  # extreme statistics, non-finite x, or eps = 0 on a constant row
        return _reference(x, gamma, beta, nd, ln_param, normalized_shape)
    out, mean, rstd = result
    S = tuple(x.shape[x.ndim - k :])
    cache = FusedLayerNormCache(x2, mean, rstd, gamma, beta is not None, tuple(x.shape), S, nd)
    return out.reshape(x.shape), cache


def _reference(x, gamma, beta, nd, ln_param, normalized_shape):
    if nd:
        return layer.layernorm_nd_forward(x, gamma, beta, normalized_shape, ln_param)
    return layer.layernorm_forward(x, gamma, beta, ln_param)


def layernorm_backward_fused(
    dout: np.ndarray, cache: FusedLayerNormCache | LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer norm backward, fused closed form (``layernorm_backward``'s maths).

    dout: (N, D). Returns dx: (N, D) in x's dtype, dgamma and dbeta: (D,) in gamma's.
    Accepts the fused forward's cache, or the reference's when the forward took it.
    """
    v.cache_of(
        cache,
        (FusedLayerNormCache, LayerNormCache),
        "layernorm_backward_fused",
        "layernorm_forward_fused",
    )
    nd = cache.nd if isinstance(cache, FusedLayerNormCache) else not layer.is_course_cache(cache)
    if nd:
        raise layer.nd_cache_error("layernorm", "_fused")
    if isinstance(cache, LayerNormCache):
        return layer.layernorm_backward(dout, cache)
    return _backward(dout, cache)  # type: ignore[return-value]


def layernorm_nd_backward_fused(
    dout: np.ndarray, cache: FusedLayerNormCache | LayerNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``layernorm_nd_backward``, fused: dx in x's shape, dgamma and dbeta in S (or None)."""
    v.cache_of(
        cache,
        (FusedLayerNormCache, LayerNormCache),
        "layernorm_nd_backward_fused",
        "layernorm_nd_forward_fused",
    )
    if isinstance(cache, LayerNormCache):
        return layer.layernorm_nd_backward(dout, cache)
    return _backward(dout, cache)


def _backward(
    dout: np.ndarray, cache: FusedLayerNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    x2, mean, rstd, gamma, has_beta, shape, S, _ = cache
    core.check_dout(dout, shape)
    R, M = x2.shape
    g = contiguous(dout).reshape(R, M)  # (R, M)
    if g.dtype != x2.dtype:  # one compiled signature per dtype
        g = g.astype(x2.dtype)
    dx, dgam, dbet = rows.backward(g, x2, mean, rstd, gamma, M, 1, 1, True)
    pdt = x2.dtype if gamma is None else gamma.dtype  # as the reference
    dgamma = None if gamma is None else dgam.reshape(S).astype(pdt)
    dbeta = dbet.reshape(S).astype(pdt) if has_beta else None
    return dx.reshape(shape), dgamma, dbeta
