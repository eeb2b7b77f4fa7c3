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
from normgrad.kernels import _affine, columns, planes, planes_pool, pool
from normgrad.kernels import _bnparam as bnp
from normgrad.kernels import _quick as q
from normgrad.kernels._runtime import F64, as64, compiled, contiguous
from normgrad.norms import spatial
from normgrad.norms.spatial import SpatialBatchNormCache
from normgrad.ops.fast import FastPoolCache, bad_winners, check_winner_values, check_winners
from normgrad.ops.windows import pool_geometry

#: The pool ``spatial_batchnorm_relu_pool_forward_fused`` runs as one kernel.
POOL2 = {"pool_height": 2, "pool_width": 2, "stride": 2}


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


class FusedBnReluPoolCache(NamedTuple):
    """What ``spatial_batchnorm_relu_pool_backward_fused`` needs after the one-kernel
    forward: batch norm's cache, its (C,) scale and shift in x's dtype (v is recomputed
    at each window's winner) and the winners' offsets."""

    bn: FusedSpatialBatchNormCache
    s: np.ndarray  # (C,) v = (x - m) * s + b, x's dtype
    b: np.ndarray  # (C,)
    argmax: np.ndarray  # (N, C, H // 2, W // 2) uint8: 2 di + dj of each window's winner


class ComposedBnReluPoolCache(NamedTuple):
    """The same after a forward that ran the layers one by one (another pool, a
    reference fallback): batch norm's cache and the ReLU-and-pool cache."""

    bn: FusedSpatialBatchNormCache | SpatialBatchNormCache
    pool: FastPoolCache  # ``kernels.pool.relu_pool_forward``'s: its x is batch norm's output


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


def spatial_batchnorm_relu_pool_forward_fused(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    bn_param: dict[str, Any],
    pool_param: dict[str, Any],
) -> tuple[np.ndarray, FusedBnReluPoolCache | ComposedBnReluPoolCache]:
    """max_pool(max(spatial_batchnorm_forward(x, ...), 0), pool_param), batch norm's
    output never written: x: (N, C, H, W) -> out: (N, C, H', W') and the cache for
    ``spatial_batchnorm_relu_pool_backward_fused``.

    2x2 pools at stride 2 run as one pass (``kernels.planes_pool``); any other pool runs
    the fused batch norm, then ``kernels.pool.relu_pool_forward``. pool_param is checked
    before batch norm runs, so a bad one leaves the running statistics as they were.
    """
    pool_geometry(x, pool_param)
    if pool_param == POOL2:
        out, cache = _forward(x, gamma, beta, bn_param, True, True)
        return out, cache
    a, bn_cache = _forward(x, gamma, beta, bn_param, False)
    out, pool_cache = pool.relu_pool_forward(a, pool_param)
    return out, ComposedBnReluPoolCache(bn_cache, pool_cache)


def _forward(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool, pooled: bool = False
) -> tuple[np.ndarray, Any]:
    p = None
    if q.array(x) and x.ndim == 4:
        N, C, H, W = x.shape
        if N * C * H * W > 0 and q.param_of(gamma, (C,)) and q.param_of(beta, (C,)):
            p = bnp.quick(bn_param, C, x.dtype, N * H * W)
            if p is not None and not p.train and not bnp.valid(p):
                p = None
    if p is None:
        return _checked(x, gamma, beta, bn_param, relu, pooled)
    n = x.size // x.shape[1]  # N * H * W values per channel
    result = _compute(x, gamma, beta, p.train, p.eps, p.mean, p.var, relu, pooled)
    if result is None:  # the plain formulas cannot give it: nothing has been written yet
        return _reference(x, gamma, beta, bn_param, relu, pooled)
    out, cache, mu, var = result
    stats = lambda: spatial.parse_inputs(x, gamma, beta, bn_param).stats  # noqa: E731
    bnp.commit(bn_param, p, mu, var, n, stats)
    return out, cache


def _reference(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool, pooled: bool = False
) -> tuple[np.ndarray, Any]:
    out, cache = spatial.spatial_batchnorm_forward(x, gamma, beta, bn_param)
    if pooled:
        out, pool_cache = pool.relu_pool_forward(out, POOL2)
        return out, ComposedBnReluPoolCache(cache, pool_cache)
    return (np.maximum(out, 0) if relu else out), cache


def _checked(
    x: np.ndarray, gamma: Any, beta: Any, bn_param: Any, relu: bool, pooled: bool = False
) -> tuple[np.ndarray, Any]:
    """The unusual call: the reference's checks first, then the kernels where they apply."""
    gamma, beta, train, eps, stats = spatial.parse_inputs(x, gamma, beta, bn_param)
    if not compiled(x, gamma, beta) or x.size == 0:
        return _reference(x, gamma, beta, bn_param, relu, pooled)
    result = _compute(x, gamma, beta, train, eps, stats.mean, stats.var, relu, pooled)
    if result is None:
        return _reference(x, gamma, beta, bn_param, relu, pooled)
    out, cache, mu, var = result
    n = x.size // x.shape[1]
    (stats.update(mu, var, n) if train else stats).write(bn_param)
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
    pooled: bool = False,
) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray] | None:
    """(out, cache, mu, var) for a checked call; None where the plain formulas cannot
    give it. ``pooled``: out is the 2x2 max pool of max(batch norm, 0) (``planes_pool``)."""
    N, C, H, W = x.shape
    x2, cm = planes_of(x)  # (N * C, H * W) planes, or (C * N, H * W) channel-major
    n = N * H * W  # values per channel
    moments = lambda: columns.merge(*planes.stats(x2, C, cm), n)  # noqa: E731  (mu, M2)
    kept: list[Any] = []

    def normalize_pool(m: Any, s: Any, b: Any, check: bool, relu: bool) -> Any:
        out, argmax, ok = planes_pool.normalize_pool(x2, C, W, m, s, b, check, cm)
        kept.extend((s, b, argmax))
        return out, ok

    normalize = normalize_pool if pooled else partial(planes.normalize, x2, cm=cm)
    args = (train, eps, gamma, beta, running_mean, running_var, relu and not pooled)
    result = _affine.normalize_batch(moments, n, normalize, x.dtype, *args)
    if result is None:
        return None
    out, mu, m, inv, var = result
    cache = FusedSpatialBatchNormCache(x2, mu, m, inv, gamma, train, (N, C, H, W), cm)
    if pooled:
        return out, FusedBnReluPoolCache(cache, *kept), mu, var
    return out.reshape(N, C, H, W), cache, mu, var


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
    dgamma, a, c1, c0, centre = _affine.backward_or_wide(
        dbeta, dcent, mu, m, inv, as64(gamma), n, train
    )
    if centre.dtype != x2.dtype:  # float32 coefficients overflow: the pass in float64
        g64, x64 = g.astype(F64), x2.astype(F64)
        dx = planes.input_grad(g64, x64, centre, a, c1, c0, gcm, cm).astype(x2.dtype)
    else:
        dx = planes.input_grad(g, x2, centre, a, c1, c0, gcm, cm)  # in x's order
    pdt = gamma.dtype
    return _layout(dx, cm, shape), dgamma.astype(pdt), dbeta.astype(pdt)


def spatial_batchnorm_relu_pool_backward_fused(
    dout: np.ndarray, cache: FusedBnReluPoolCache | ComposedBnReluPoolCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of ``spatial_batchnorm_relu_pool_forward_fused``: dout (N, C, H', W') ->
    dx (N, C, H, W; laid out as x was), dgamma, dbeta (C,)."""
    v.cache_of(
        cache,
        (FusedBnReluPoolCache, ComposedBnReluPoolCache),
        "spatial_batchnorm_relu_pool_backward_fused",
        "spatial_batchnorm_relu_pool_forward_fused",
    )
    if isinstance(cache, ComposedBnReluPoolCache):
        da = pool.relu_pool_backward(dout, cache.pool)
        return spatial_batchnorm_backward_fused(da, cache.bn)
    bn, s, b, argmax = cache
    x2, mu, m, inv, gamma, train, shape, cm = bn
    N, C, H, W = shape
    check_winners(argmax, (N, C, H // 2, W // 2), 4, *_RELU_POOL)
    v.float_array(dout, "dout")
    v.shape(dout, "dout", argmax.shape, "the shape of the forward output")
    layered = dout.dtype != x2.dtype or not dout.flags.c_contiguous  # one signature per dtype
    if layered or argmax.dtype != np.uint8 or not argmax.flags.c_contiguous:
        # not the forward's own winners, or not the one-kernel path (which checks them)
        check_winner_values(argmax, 4, *_RELU_POOL)
        argmax = np.ascontiguousarray(argmax, np.uint8)
        cache = cache._replace(argmax=argmax)
    if layered:
        return spatial_batchnorm_backward_fused(_pool_grad(dout, cache), bn)
    sums = planes_pool.grad_sums(dout, x2, W, m, s, b, argmax, cm)
    if sums is None:
        raise bad_winners(4, *_RELU_POOL)
    dbeta, dcent = sums
    n = x2.size // shape[1]
    dgamma, a, c1, c0, finite = _affine.backward(dbeta, dcent, mu, m, inv, as64(gamma), n, train)
    if not finite:  # a float32 coefficient overflows, or dout has NaN or inf: layer by layer
        return spatial_batchnorm_backward_fused(_pool_grad(dout, cache), bn)
    dx = planes_pool.input_grad(dout, x2, W, m, s, b, argmax, a, c1, c0, cm)
    pdt = gamma.dtype
    return _layout(dx, cm, shape), dgamma.astype(pdt), dbeta.astype(pdt)


#: (backward, forward) as the errors about a one-kernel cache name them.
_RELU_POOL = (
    "spatial_batchnorm_relu_pool_backward_fused",
    "spatial_batchnorm_relu_pool_forward_fused",
)


def _pool_grad(dout: np.ndarray, cache: FusedBnReluPoolCache) -> np.ndarray:
    """d(batch norm's output), (N, C, H, W), by the layers one by one: batch norm's output
    recomputed, then ``relu_pool_backward`` with the pool cache it would have made."""
    bn, s, b, argmax = cache
    out, _ = planes.normalize(bn.x, bn.m, s, b, check=False, cm=bn.cm)  # NCHW planes
    pool_cache = FastPoolCache(out.reshape(bn.shape), POOL2, argmax.astype(np.intp))
    return pool.relu_pool_backward(dout, pool_cache)
