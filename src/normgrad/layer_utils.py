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
- ``conv_norm_relu_pool``: x -> conv -> spatial batch norm | group norm | nothing -> ReLU
  -> max pool

``NORMALIZATIONS`` and ``CONV_NORMALIZATIONS`` are the one list of the normalizations
each kind of sandwich supports; the models and ``normgrad train`` derive theirs from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad import _validate as v
from normgrad.norms.batch import batchnorm_backward_alt, batchnorm_forward
from normgrad.norms.group import spatial_groupnorm_backward, spatial_groupnorm_forward
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
Grads5 = tuple[
    np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None
]

# For (N, M) activations (affine_norm_relu, FullyConnectedNet): normalization name ->
# (forward, backward); None, meaning no normalization layer, is always allowed too.
NORMALIZATIONS = {
    "batchnorm": (batchnorm_forward, batchnorm_backward_alt),
    "layernorm": (layernorm_forward, layernorm_backward),
}



def _spatial_batchnorm(
    x: np.ndarray, gamma: Any, beta: Any, norm_param: Any, G: int | None = None
) -> tuple[np.ndarray, Any]:
    """spatial_batchnorm_forward in the conv sandwiches' one signature (G is unused)."""
    return spatial_batchnorm_forward(x, gamma, beta, norm_param)


def _groupnorm(
    x: np.ndarray, gamma: Any, beta: Any, norm_param: Any, G: int | None = None
) -> tuple[np.ndarray, Any]:
    """spatial_groupnorm_forward in the conv sandwiches' one signature; G is required."""
    if G is None:
        raise ValueError(
            "normalization='groupnorm' needs G, the number of channel groups; pass G as a "
            "divisor of the number of filters F = w.shape[0], e.g. G=1 (one group)."
        )
    return spatial_groupnorm_forward(x, gamma, beta, G, norm_param)


# For (N, C, H, W) activations (conv_norm_relu_pool, ThreeLayerConvNet), likewise; every
# forward is called as forward(x, gamma, beta, norm_param, G) (G: group norm's groups).
CONV_NORMALIZATIONS = {
    "batchnorm": (_spatial_batchnorm, spatial_batchnorm_backward),
    "groupnorm": (_groupnorm, spatial_groupnorm_backward),
}


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """Affine then ReLU. x: (N, d_1, ..., d_k), w: (D, M), b: (M,) -> out: (N, M).

    ``affine_norm_relu_forward`` with no normalization layer.
    """
    return affine_norm_relu_forward(x, w, b, None, None, None, None)


def affine_relu_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads3:
    """Backward through ``affine_relu_forward``: dout (N, M) -> dx, dw, db.

    ``need_dx=False`` returns dx = None and skips its matrix product (as
    ``affine_backward``).
    """
    return affine_norm_relu_backward(dout, cache, need_dx)[:3]  # type: ignore[return-value]


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


def affine_norm_relu_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads5:
    """Backward through ``affine_norm_relu_forward``: dout (N, M) -> dx, dw, db, dgamma, dbeta.

    dgamma and dbeta are (M,), or None when ``normalization`` was None. Batch norm uses
    the closed-form route ``batchnorm_backward_alt``. ``need_dx=False`` returns dx =
    None and skips its matrix product (a network's first layer: the data needs none).
    """
    fc_cache, norm_cache, relu_cache, normalization = cache
    da = relu_backward(dout, relu_cache)  # (N, M)
    dgamma = dbeta = None
    if normalization is not None:
        _, norm_backward = NORMALIZATIONS[normalization]
        da, dgamma, dbeta = norm_backward(da, norm_cache)  # (N, M), (M,), (M,)
    dx, dw, db = affine_backward(da, fc_cache, need_dx)
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
    """Convolution, ReLU, then max pooling. x: (N, C, H, W) -> out: (N, F, H'', W'').

    ``conv_norm_relu_pool_forward`` with no normalization layer.
    """
    return conv_norm_relu_pool_forward(x, w, b, None, None, conv_param, pool_param, None, None)


def conv_relu_pool_backward(dout: np.ndarray, cache: Any) -> Grads3:
    """Backward through ``conv_relu_pool_forward``: dout (N, F, H'', W'') -> dx, dw, db."""
    return conv_norm_relu_pool_backward(dout, cache)[:3]  # type: ignore[return-value]


def conv_norm_relu_pool_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    conv_param: dict[str, Any],
    pool_param: dict[str, Any],
    norm_param: dict[str, Any] | None,
    normalization: str | None,
    G: int | None = None,
) -> tuple[np.ndarray, Any]:
    """Convolution, spatial batch norm or group norm (or nothing), ReLU, then max pooling.

    Args:
        x: (N, C, H, W) input; w: (F, C, HH, WW); b: (F,).
        gamma, beta: the normalization's scale and shift: (F,) for batch norm,
            (1, F, 1, 1) for group norm (the course's shapes); ignored for None.
        conv_param, pool_param: as for ``conv_forward_fast`` and ``max_pool_forward_fast``.
        norm_param: ``bn_param`` for batch norm (its running statistics are written back
            in train mode), ``gn_param`` for group norm, ignored for None.
        normalization: ``"batchnorm"``, ``"groupnorm"`` or None (then this is
            ``conv_relu_pool_forward``).
        G: the number of channel groups, a divisor of F; required for group norm only.

    Returns:
        out: (N, F, H'', W''), and cache = (conv cache, norm cache or None, relu cache,
        pool cache, normalization).

    Raises:
        ValueError: an unknown normalization, or group norm without G, besides the
            layers' own errors.
    """
    v.choice(normalization, "normalization", (*CONV_NORMALIZATIONS, None))
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)  # (N, F, H', W')
    norm_cache = None
    if normalization is not None:
        norm_forward, _ = CONV_NORMALIZATIONS[normalization]
        a, norm_cache = norm_forward(a, gamma, beta, norm_param, G)  # (N, F, H', W')
    s, relu_cache = relu_forward(a)  # (N, F, H', W')
    out, pool_cache = max_pool_forward_fast(s, pool_param)  # (N, F, H'', W'')
    return out, (conv_cache, norm_cache, relu_cache, pool_cache, normalization)


def conv_norm_relu_pool_backward(dout: np.ndarray, cache: Any) -> Grads5:
    """Backward through ``conv_norm_relu_pool_forward``: dout -> dx, dw, db, dgamma, dbeta.

    dout: (N, F, H'', W''). dgamma and dbeta take gamma's shape, or are None when
    ``normalization`` was None.
    """
    conv_cache, norm_cache, relu_cache, pool_cache, normalization = cache
    ds = max_pool_backward_fast(dout, pool_cache)  # (N, F, H', W')
    da = relu_backward(ds, relu_cache)  # (N, F, H', W')
    dgamma = dbeta = None
    if normalization is not None:
        _, norm_backward = CONV_NORMALIZATIONS[normalization]
        da, dgamma, dbeta = norm_backward(da, norm_cache)  # (N, F, H', W'), gamma's shape
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta
