"""cs231n-compatible sandwich layers (``cs231n.layer_utils``): common stacks of layers.

Each forward chains layers and keeps their caches in a tuple; each backward runs the
same layers in reverse, passing the gradient down. No new maths: every formula lives in
``normgrad.ops`` and ``normgrad.norms``. As in the course, the conv sandwiches use the
fast (im2col) convolution and pooling.

- ``affine_relu``:       x -> affine -> ReLU
- ``affine_norm_relu``:  x -> affine -> batch norm | layer norm | nothing -> ReLU
- ``conv_relu``:         x -> conv -> ReLU
- ``conv_bn_relu``:      x -> conv -> spatial batch norm -> ReLU
- ``conv_relu_pool``:    x -> conv -> ReLU -> max pool
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad import _validate as v
from normgrad.norms.batch import batchnorm_backward_alt, batchnorm_forward
from normgrad.norms.layer import layernorm_backward, layernorm_forward
from normgrad.norms.spatial import spatial_batchnorm_backward, spatial_batchnorm_forward
from normgrad.ops.activations import relu_backward, relu_forward
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.fast import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)

Grads3 = tuple[np.ndarray, np.ndarray, np.ndarray]

# normalization name -> (forward, backward); None means no normalization layer.
NORMALIZATIONS = {
    "batchnorm": (batchnorm_forward, batchnorm_backward_alt),
    "layernorm": (layernorm_forward, layernorm_backward),
}


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """Affine then ReLU. x: (N, d_1, ..., d_k), w: (D, M), b: (M,) -> out: (N, M).

    Returns out and cache = (affine cache, relu cache).
    """
    a, fc_cache = affine_forward(x, w, b)  # (N, M)
    out, relu_cache = relu_forward(a)  # (N, M)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Any) -> Grads3:
    """Backward through ``affine_relu_forward``: dout (N, M) -> dx, dw, db."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)  # (N, M)
    return affine_backward(da, fc_cache)


def affine_norm_relu_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    norm_param: dict[str, Any] | None,
    normalization: str | None,
) -> tuple[np.ndarray, Any]:
    """Affine, then batch norm or layer norm (or nothing), then ReLU.

    Args:
        x: (N, d_1, ..., d_k) input; w: (D, M); b: (M,).
        gamma, beta: (M,) the normalization's scale and shift (ignored when
            ``normalization`` is None).
        norm_param: ``bn_param`` for batch norm (its running statistics are written back),
            ``ln_param`` for layer norm, ignored for None.
        normalization: ``"batchnorm"``, ``"layernorm"`` or None (plain affine-ReLU), as
            the course's ``FullyConnectedNet(normalization=...)`` spells them.

    Returns:
        out: (N, M), and cache = (affine cache, norm cache or None, relu cache,
        normalization).

    Raises:
        ValueError: an unknown normalization, besides the layers' own errors.
    """
    v.choice(normalization, "normalization", (*NORMALIZATIONS, None))
    a, fc_cache = affine_forward(x, w, b)  # (N, M)
    norm_cache = None
    if normalization is not None:
        norm_forward, _ = NORMALIZATIONS[normalization]
        a, norm_cache = norm_forward(a, gamma, beta, norm_param)  # (N, M)
    out, relu_cache = relu_forward(a)  # (N, M)
    return out, (fc_cache, norm_cache, relu_cache, normalization)


def affine_norm_relu_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Backward through ``affine_norm_relu_forward``: dout (N, M) -> dx, dw, db, dgamma, dbeta.

    dgamma and dbeta are (M,), or None when ``normalization`` was None. Batch norm uses
    the closed-form route ``batchnorm_backward_alt``.
    """
    fc_cache, norm_cache, relu_cache, normalization = cache
    da = relu_backward(dout, relu_cache)  # (N, M)
    dgamma = dbeta = None
    if normalization is not None:
        _, norm_backward = NORMALIZATIONS[normalization]
        da, dgamma, dbeta = norm_backward(da, norm_cache)  # (N, M), (M,), (M,)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Convolution then ReLU. x: (N, C, H, W), w: (F, C, HH, WW) -> out: (N, F, H', W')."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)  # (N, F, H', W')
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: Any) -> Grads3:
    """Backward through ``conv_relu_forward``: dout (N, F, H', W') -> dx, dw, db."""
    conv_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return conv_backward_fast(da, conv_cache)


def conv_bn_relu_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    conv_param: dict[str, Any],
    bn_param: dict[str, Any],
) -> tuple[np.ndarray, Any]:
    """Convolution, spatial batch norm (gamma, beta: (F,)), then ReLU -> (N, F, H', W').

    bn_param is as for ``spatial_batchnorm_forward``; its running statistics are written
    back in train mode.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)  # (N, F, H', W')
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)  # (N, F, H', W')
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward through ``conv_bn_relu_forward``: dout -> dx, dw, db, dgamma, dbeta."""
    conv_cache, bn_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_pool_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    conv_param: dict[str, Any],
    pool_param: dict[str, Any],
) -> tuple[np.ndarray, Any]:
    """Convolution, ReLU, then max pooling. x: (N, C, H, W) -> out: (N, F, H'', W'')."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)  # (N, F, H', W')
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)  # (N, F, H'', W'')
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: Any) -> Grads3:
    """Backward through ``conv_relu_pool_forward``: dout (N, F, H'', W'') -> dx, dw, db."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache)
