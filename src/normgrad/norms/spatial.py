"""Spatial batch normalization: batch norm for (N, C, H, W) feature maps.

Ioffe & Szegedy 2015, "Batch Normalization", arXiv:1502.03167, section 3.2: in a
convolutional layer, one mean and variance per channel, over the batch and every
spatial position, so that the normalization is convolutional too.

Formula, for x: (N, C, H, W), reducing over (N, H, W), per channel c::

    mu_c   = 1/(N H W) sum_{n,h,w} x_nchw              # (C,)
    var_c  = 1/(N H W) sum_{n,h,w} (x_nchw - mu_c)^2   # (C,)  biased
    y      = gamma_c * (x - mu_c) / sqrt(var_c + eps) + beta_c

That is exactly batch norm on the (N*H*W, C) matrix whose rows are the pixels, so this
module only moves the channel axis last, reshapes, and calls
``batch.batchnorm_forward`` and ``batch.batchnorm_backward_alt``: the maths, the
running statistics and both momentum conventions (``bn_param``) are batch norm's.
Train mode normalizes by the batch statistics and updates the running ones (with the
unbiased option dividing by N*H*W - 1, as torch.nn.BatchNorm2d); test mode uses the
running statistics.

Numerics, errors and edge cases are batch norm's (``norms.batch``): correct for any
finite x (power-of-two rescaling where a channel's statistics would over- or underflow),
NaN in a channel gives NaN there and keeps its running statistics, ``bn_param`` keys are
checked against ``batch.PARAM_KEYS``, and ``spatial_batchnorm_backward`` refuses any cache
but ``spatial_batchnorm_forward``'s (``TypeError``). C = 0 channels give an empty result.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import batch, spec


class SpatialBatchNormCache(NamedTuple):
    """What ``spatial_batchnorm_backward`` needs from the forward pass."""

    bn: batch.BatchNormCache  # batch norm's cache for the (N*H*W, C) view
    shape: tuple[int, int, int, int]  # (N, C, H, W): to fold dx back from (N*H*W, C)


def _to_rows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C): one row per pixel, one column per channel."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_rows(a: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """(N*H*W, C) -> (N, C, H, W), the inverse of ``_to_rows``."""
    N, C, H, W = shape
    return a.reshape(N, H, W, C).transpose(0, 3, 1, 2)


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> batch.BatchNormInputs:
    """Check spatial batch norm's inputs and read ``bn_param``. Writes nothing.

    x's own checks here, then batch norm's ``parse_inputs`` for its (N*H*W, C) rows
    (every ``bn_param`` key, with C features). Shared by the reference and the fused
    forward passes, so both accept and reject the same calls with the same messages.
    """
    v.float_array(x, "x")
    v.ndim(x, "x", 4, "(N, C, H, W)", "For (N, D) input use batchnorm_forward.")
    N, C, H, W = (int(s) for s in x.shape)
    gamma = v.float_param(gamma, "gamma", x.dtype)  # as batch norm: integer -> x's dtype
    beta = v.float_param(beta, "beta", x.dtype)
    v.shape(gamma, "gamma", (C,), "one scale per channel of x: (N, C, H, W)")
    v.shape(beta, "beta", (C,), "one shift per channel of x: (N, C, H, W)")
    if isinstance(bn_param, dict) and bn_param.get("mode") == "train" and N * H * W < 2:
        raise ValueError(
            f"spatial batch norm in train mode needs at least 2 values per channel "
            f"(N*H*W >= 2) to estimate a variance; got x of shape {tuple(x.shape)}. Use a "
            f"larger batch or feature map, or mode 'test'."
        )
    rows = np.broadcast_to(np.zeros((), x.dtype), (N * H * W, C))  # the rows' shape, no copy
    return batch.parse_inputs(rows, gamma, beta, bn_param)


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, SpatialBatchNormCache]:
    """Spatial batch normalization forward pass (cs231n signature and semantics).

    Args:
        x: (N, C, H, W) input, any floating dtype; N*H*W >= 2 in train mode.
        gamma: (C,) scale per channel. Read, never modified. An integer or bool array
            (the course's ``np.asarray([3, 4, 5])``) is cast to x's dtype by batch norm.
        beta: (C,) shift per channel. Read, never modified. Likewise.
        bn_param: exactly as for ``batchnorm_forward``: ``mode`` (required), ``eps``,
            ``momentum``, ``running_mean`` and ``running_var`` of shape (C,) (written
            back after each train step), ``momentum_convention``,
            ``unbiased_running_var``, ``num_batches_tracked``.

    Returns:
        out: (N, C, H, W) in x's dtype, and the cache for the backward pass.

    Raises:
        TypeError: x is not a floating ndarray, or gamma or beta not a real numeric
            ndarray.
        ValueError: x is not 4-D, gamma or beta is not (C,), or a bad bn_param entry
            (as ``batchnorm_forward``: unknown keys, eps, momentum, running statistics);
            bn_param is then left exactly as it was.
    """
    inputs = parse_inputs(x, gamma, beta, bn_param)
    N, C, H, W = (int(s) for s in x.shape)
    rows, bn_cache, mu, var = batch.forward_checked(_to_rows(x), inputs)  # (NHW, C)
    # Nothing above wrote to bn_param; the update is the last step, as in batch norm.
    stats = inputs.stats
    (stats.update(mu, var, N * H * W) if inputs.train else stats).write(bn_param)
    shape = (N, C, H, W)
    out = np.ascontiguousarray(_from_rows(rows, shape))  # (N, C, H, W)
    return out, SpatialBatchNormCache(bn_cache, shape)


def spatial_batchnorm_backward(
    dout: np.ndarray, cache: SpatialBatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial batch normalization backward pass: batch norm's closed form on pixels.

    Args:
        dout: (N, C, H, W) upstream gradient dL/dy.
        cache: from ``spatial_batchnorm_forward``.

    Returns:
        dx: (N, C, H, W), dgamma: (C,), dbeta: (C,).

    Raises:
        TypeError: cache is not ``spatial_batchnorm_forward``'s, or dout is not a
            floating array. ValueError: dout's shape is not x's.
    """
    v.cache_of(
        cache, SpatialBatchNormCache, "spatial_batchnorm_backward", "spatial_batchnorm_forward"
    )
    v.float_array(dout, "dout")
    v.shape(dout, "dout", cache.shape, "the shape of the forward output")
    drows, dgamma, dbeta = batch.batchnorm_backward_alt(_to_rows(dout), cache.bn)  # (NHW, C)
    dx = np.ascontiguousarray(_from_rows(drows, cache.shape))  # (N, C, H, W)
    return dx, dgamma, dbeta


# ---- specification ---------------------------------------------------------------------


def _bind(
    forward: spec.Forward, mode: str = "train", eps: float = 1e-5, **extra: Any
) -> spec.Forward:
    return lambda x, gamma, beta: forward(x, gamma, beta, {"mode": mode, "eps": eps, **extra})


SPEC = spec.NormSpec(
    name="spatial_batchnorm",
    title="spatial batch normalization",
    paper="Ioffe & Szegedy 2015, arXiv:1502.03167, section 3.2",
    layout="(N, C, H, W)",
    forward=spatial_batchnorm_forward,
    routes={"alt": spec.Route(spatial_batchnorm_backward)},
    bind=_bind,
    param_name="bn_param",
    param_keys=batch.PARAM_KEYS,
    cases=(spec.CaseInputs("train", spec.affine_inputs((2, 3, 2, 3), (3,))),),
    torch=batch.SPEC.torch,
    symbolic=spec.Symbolic(
        "spatial",
        ("N", "C", "H", "W"),
        ({"N": 1, "C": 2, "H": 1, "W": 3}, {"N": 2, "C": 1, "H": 2, "W": 1}),
        "normgrad.symbolic.batch:build_spatial",
        all_sizes=spec.AllSizes(
            lambda M: {"N": M, "C": 1, "H": 1, "W": 1},
            lambda s: (s["C"],),
        ),
    ),
    blocks=(
        spec.Block(
            "conv",
            "batchnorm",
            spatial_batchnorm_forward,
            spatial_batchnorm_backward,
            param_shape=lambda F: (F,),
            init_param=lambda: {"mode": "train"},
            train_mode=True,
            cancels_bias=True,
            fused=spec.lazy_block(
                "normgrad.kernels.spatial",
                "spatial_batchnorm_forward_fused",
                "spatial_batchnorm_backward_fused",
                "spatial_batchnorm_relu_forward_fused",
                channel_major=True,
                relu_pool=(
                    "spatial_batchnorm_relu_pool_forward_fused",
                    "spatial_batchnorm_relu_pool_backward_fused",
                ),
            ),
        ),
    ),
    bench=spec.Bench(maps=True, param_shape=lambda s: (s[1],)),
    fused=spec.lazy_route(
        "normgrad.kernels.spatial",
        "spatial_batchnorm_forward_fused",
        "spatial_batchnorm_backward_fused",
    ),
)
