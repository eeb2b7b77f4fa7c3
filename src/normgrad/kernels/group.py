"""Fused group norm: ``spatial_groupnorm_forward`` / ``_backward`` in one pass each way.

Same contract as ``normgrad.norms.group`` (its ``parse_inputs``: same checks, messages),
for x: (N, C, H, W) in G groups of C/G channels, viewed as (N * G, C/G * H * W) rows:
each (sample, group) is contiguous in memory. ``kernels.rows`` with P = C/G channels of
Q = H * W values per row, the per-channel gamma and beta constant along Q::

    forward   mu, var of the row (two passes, float64); out = (x - mu) * inv * gamma_c + beta_c
    backward  per channel: sum(dout), sum(dout * xhat) -> the chunk's dbeta, dgamma and
              the row's s1 = sum(dxhat), s2 = sum(dxhat * xhat); then
              dx = inv * (dout * gamma_c - s1 / M - xhat * s2 / M)

Where some group's var + eps leaves ``core.plain_range`` (extreme magnitudes, NaN or inf,
eps = 0 on a constant group), x is not float32 or float64, or N = 0, the reference
forward runs inside the same call, and the fused backward accepts its cache.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _quick as q
from normgrad.kernels import rows
from normgrad.kernels._runtime import compiled, contiguous
from normgrad.norms import core, group
from normgrad.norms.group import GroupNormCache


class FusedGroupNormCache(NamedTuple):
    """What the fused backward needs: the input's rows and two numbers per group."""

    x: np.ndarray  # (N * G, C/G * H * W) the input, one row per (sample, group)
    mean: np.ndarray  # (N * G,) float64 mean of each group
    rstd: np.ndarray  # (N * G,) float64 1 / sqrt(var + eps) of each group
    gamma: np.ndarray  # (1, C, 1, 1): dxhat = dout * gamma; dgamma's dtype
    G: int  # the number of groups
    shape: tuple[int, int, int, int]  # (N, C, H, W): dout must have it, dx gets it


def spatial_groupnorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, FusedGroupNormCache | GroupNormCache]:
    """Group norm forward, fused; arguments, checks and result as the reference's.

    x: (N, C, H, W); gamma, beta: (1, C, 1, 1); G divides C. Returns out: x's shape and
    dtype, and the cache for ``spatial_groupnorm_backward_fused``.
    """
    eps = None
    if q.array(x) and x.ndim == 4 and type(G) is int and G > 0:
        N, C, H, W = x.shape
        if C * H * W > 0 and C % G == 0:
            if q.param_of(gamma, (1, C, 1, 1)) and q.param_of(beta, (1, C, 1, 1)):
                eps = q.eps_of(gn_param)
    if eps is None:
        gamma, beta, eps = group.parse_inputs(x, gamma, beta, G, gn_param)
    N, C, H, W = x.shape
    if not compiled(x, gamma, beta) or x.size == 0:
        return group.spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    G = int(G)
    x2 = contiguous(x).reshape(N * G, -1)  # (N * G, C/G * H * W)
    result = rows.forward(x2, gamma, beta, C // G, H * W, G, eps, True)
    if result is None:  # extreme statistics, non-finite x, or eps = 0 on a constant group
        return group.spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    out, mean, rstd = result
    return out.reshape(x.shape), FusedGroupNormCache(x2, mean, rstd, gamma, G, (N, C, H, W))


def spatial_groupnorm_backward_fused(
    dout: np.ndarray, cache: FusedGroupNormCache | GroupNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group norm backward, fused closed form: dx (N, C, H, W), dgamma, dbeta (1, C, 1, 1).

    Accepts the fused forward's cache, or the reference's when the forward took it.
    """
    v.cache_of(
        cache,
        (FusedGroupNormCache, GroupNormCache),
        "spatial_groupnorm_backward_fused",
        "spatial_groupnorm_forward_fused",
    )
    if isinstance(cache, GroupNormCache):
        return group.spatial_groupnorm_backward(dout, cache)
    x2, mean, rstd, gamma, G, shape = cache
    core.check_dout(dout, shape)
    N, C, H, W = shape
    g = contiguous(dout).reshape(x2.shape)  # (N * G, C/G * H * W)
    if g.dtype != x2.dtype:  # one compiled signature per dtype
        g = g.astype(x2.dtype)
    dx, dgam, dbet = rows.backward(g, x2, mean, rstd, gamma, C // G, H * W, G, True)
    pshape = (1, C, 1, 1)
    return (
        dx.reshape(shape),
        dgam.reshape(pshape).astype(gamma.dtype),
        dbet.reshape(pshape).astype(gamma.dtype),
    )


def block_forward_fused(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    gn_param: dict[str, Any],
    G: int | None = None,
) -> tuple[np.ndarray, FusedGroupNormCache | GroupNormCache]:
    """The conv blocks' signature (G as a keyword, required), as ``group``'s block."""
    return spatial_groupnorm_forward_fused(x, gamma, beta, group.block_groups(G), gn_param)
