"""Fused spatial batch norm: batch norm over (N, H, W) of NCHW, with no transpose.

Same contract as ``normgrad.norms.spatial`` (its ``parse_inputs``: x's checks, then batch
norm's ``bn_param`` checks; same running statistics, results to rounding), for x:
(N, C, H, W) float32 or float64. The reference moves the channel axis last (a copy) and
runs batch norm on the (N*H*W, C) pixel rows; here every (n, c) plane of H*W values is
reduced in place (``kernels.planes``). x may also be a view of channel-major (C, N, H, W)
memory (the conv sandwich's layout): it is read in place too, and dx comes back laid out
as x was (a view of channel-major memory), ready for the convolution's weight gradient::

    forward   per channel: S1, S2 of x - K_c over its N planes (one pass over memory),
              mu = K + S1 / (N H W), var = (S2 - S1^2 / (N H W)) / (N H W);
              out = (x - m_c) * s_c + b_c   (``_affine``: s = gamma / sqrt(var + eps))
    backward  per channel: dbeta = sum dout, dcent = sum dout * (x - m_c);
              dx = a_c * dout - c1_c * (x - m_c) - c0_c

Running statistics, fast-path checks and fallbacks are batch norm's
(``kernels.batchnorm``): an ordinary call skips the reference's checks, anything else
runs them; calls whose statistics leave the plain range, other dtypes and empty inputs
run the reference forward inside the same call, and the fused backward accepts its cache.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import _affine, columns, planes
from normgrad.kernels import _bnparam as bnp
from normgrad.kernels import _quick as q
from normgrad.kernels._runtime import F64, as64, compiled, contiguous
from normgrad.norms import spatial
from normgrad.norms.spatial import SpatialBatchNormCache


class FusedSpatialBatchNormCache(NamedTuple):
    """What the fused backward needs: the input's planes and (C,) coefficients."""

    x: np.ndarray  # (N * C, H * W) the input's planes: xhat is recomputed from them
    mu: np.ndarray  # (C,) float64 mean each channel was centred by
    m: np.ndarray  # (C,) mu rounded to x's dtype: the element-wise passes subtract it
    inv_std: np.ndarray  # (C,) float64 1 / sqrt(var + eps)
    gamma: np.ndarray  # (C,) scale: dL/dxhat = dout * gamma; the gradients' dtype
    train: bool  # in test mode the statistics are constants: dx = dout * gamma * inv_std
    shape: tuple[int, int, int, int]  # (N, C, H, W): dout must have it, dx gets it
    cm: bool = False  # x's planes are channel-major, (C * N, H * W): dx is laid out so too


def spatial_batchnorm_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, FusedSpatialBatchNormCache | SpatialBatchNormCache]:
    """Spatial batch norm forward, fused; arguments, checks, running statistics and
    result as ``spatial_batchnorm_forward``.

    x: (N, C, H, W); gamma, beta: (C,). Returns out: x's shape and dtype, and the cache
    for ``spatial_batchnorm_backward_fused``.
    """
    return _forward(x, gamma, beta, bn_param, False)


def spatial_batchnorm_relu_forward_fused(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, FusedSpatialBatchNormCache | SpatialBatchNormCache]:
    """max(spatial_batchnorm_forward_fused(...), 0) in the same pass (see
    ``batchnorm_relu_forward_fused``): out = ``np.maximum(bn_out, 0)`` and the norm's cache."""
    return _forward(x, gamma, beta, bn_param, True)


def _forward(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool
) -> tuple[np.ndarray, FusedSpatialBatchNormCache | SpatialBatchNormCache]:
    p = None
    if q.array(x) and x.ndim == 4:
        N, C, H, W = x.shape
        if N * C * H * W > 0 and q.param_of(gamma, (C,)) and q.param_of(beta, (C,)):
            p = bnp.quick(bn_param, C, x.dtype, N * H * W)
            if p is not None and not p.train and not bnp.valid(p):
                p = None
    if p is None:
        return _checked(x, gamma, beta, bn_param, relu)
    n = x.size // x.shape[1]  # N * H * W values per channel
    result = _compute(x, gamma, beta, p.train, p.eps, p.mean, p.var, relu)
    if result is None:  # the plain formulas cannot give it: nothing has been written yet
        return _reference(x, gamma, beta, bn_param, relu)
    out, cache, var = result
    stats = lambda: spatial.parse_inputs(x, gamma, beta, bn_param).stats  # noqa: E731
    bnp.commit(bn_param, p, cache.mu, var, n, stats)
    return out, cache


def _reference(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool
) -> tuple[np.ndarray, SpatialBatchNormCache]:
    out, cache = spatial.spatial_batchnorm_forward(x, gamma, beta, bn_param)
    return (np.maximum(out, 0) if relu else out), cache


def _checked(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool
) -> tuple[np.ndarray, FusedSpatialBatchNormCache | SpatialBatchNormCache]:
    """The unusual call: the reference's checks first, then the kernels where they apply."""
    gamma, beta, train, eps, stats = spatial.parse_inputs(x, gamma, beta, bn_param)
    if not compiled(x, gamma, beta) or x.size == 0:
        return _reference(x, gamma, beta, bn_param, relu)
    result = _compute(x, gamma, beta, train, eps, stats.mean, stats.var, relu)
    if result is None:
        return _reference(x, gamma, beta, bn_param, relu)
    out, cache, var = result
    n = x.size // x.shape[1]
    (stats.update(cache.mu, var, n) if train else stats).write(bn_param)
    return out, cache


def planes_of(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """(planes, cm): a (N, C, H, W) as (N * C, H * W) rows, or as (C * N, H * W) rows with
    cm True when a is a view of channel-major (C, N, H, W) memory; no copy in either case
    (any other layout is copied to NCHW)."""
    N, C, H, W = a.shape
    if not a.flags.c_contiguous:
        t = a.transpose(1, 0, 2, 3)
        if t.flags.c_contiguous:
            return t.reshape(C * N, H * W), True
    return contiguous(a).reshape(N * C, H * W), False


def _layout(a2: np.ndarray, cm: bool, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Rows back to an (N, C, H, W) array: a view of channel-major memory when cm."""
    N, C, H, W = shape
    return a2.reshape(C, N, H, W).transpose(1, 0, 2, 3) if cm else a2.reshape(shape)


def _compute(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    train: bool,
    eps: float,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    relu: bool,
) -> tuple[np.ndarray, FusedSpatialBatchNormCache, np.ndarray] | None:
    """(out, cache, var) for a checked call; None where the plain formulas cannot give it."""
    N, C, H, W = x.shape
    x2, cm = planes_of(x)  # (N * C, H * W) planes, or (C * N, H * W) channel-major
    n = N * H * W  # values per channel
    moments = lambda: columns.merge(*planes.stats(x2, C, cm), n)  # noqa: E731  (mu, M2)
    args = (train, eps, gamma, beta, running_mean, running_var, relu)
    normalize = partial(planes.normalize, x2, cm=cm)  # out: NCHW planes
    result = _affine.normalize_batch(moments, n, normalize, x.dtype, *args)
    if result is None:
        return None
    out, mu, m, inv, var = result
    cache = FusedSpatialBatchNormCache(x2, mu, m, inv, gamma, train, (N, C, H, W), cm)
    return out.reshape(N, C, H, W), cache, var


def spatial_batchnorm_backward_fused(
    dout: np.ndarray, cache: FusedSpatialBatchNormCache | SpatialBatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial batch norm backward, fused closed form: dx (N, C, H, W), dgamma, dbeta (C,).

    Accepts the fused forward's cache, or the reference's when the forward took it.
    """
    v.cache_of(
        cache,
        (FusedSpatialBatchNormCache, SpatialBatchNormCache),
        "spatial_batchnorm_backward_fused",
        "spatial_batchnorm_forward_fused",
    )
    if isinstance(cache, SpatialBatchNormCache):
        return spatial.spatial_batchnorm_backward(dout, cache)
    x2, mu, m, inv, gamma, train, shape, cm = cache
    if type(dout) is not np.ndarray or dout.shape != shape or dout.dtype.kind != "f":
        v.float_array(dout, "dout")
        v.shape(dout, "dout", shape, "the shape of the forward output")
    g, gcm = planes_of(dout)  # (N * C, H * W), or channel-major
    if g.dtype != x2.dtype:  # one compiled signature per dtype
        g = g.astype(x2.dtype)
    n = x2.size // shape[1]
    dbeta, dcent = planes.grad_sums(g, x2, m, gcm, cm)  # (C,), (C,) float64
    co = _affine.backward(dbeta, dcent, mu, m, inv, as64(gamma), n, train)
    if co is None:  # a float32 coefficient overflows: the same maths in float64
        dcent = dcent + (m.astype(F64) - mu) * dbeta  # sum dout * (x - mu)
        co = _affine.backward(dbeta, dcent, mu, mu, inv, as64(gamma), n, train)
        assert co is not None  # float64 coefficients of plain statistics are finite
        dgamma, a, c1, c0 = co
        g64, x64 = g.astype(F64), x2.astype(F64)
        dx = planes.input_grad(g64, x64, mu, a, c1, c0, gcm, cm).astype(x2.dtype)
    else:
        dgamma, a, c1, c0 = co
        dx = planes.input_grad(g, x2, m, a, c1, c0, gcm, cm)  # in x's order
    pdt = gamma.dtype
    return _layout(dx, cm, shape), dgamma.astype(pdt), dbeta.astype(pdt)
