"""Sandwich layers: common stacks of layers, with any registered normalization in them.

Each forward chains layers and keeps their caches in a tuple; each backward runs the
same layers in reverse, passing the gradient down. No new maths: every formula lives in
``normgrad.ops`` and ``normgrad.norms``. As in the course, the conv sandwiches use the
fast (im2col) convolution and pooling.

- ``affine_relu``:          x -> affine -> ReLU
- ``affine_norm_act``:      x -> affine -> [normalization] -> ReLU | sigmoid
- ``affine_norm_relu``:     ``affine_norm_act`` with ReLU
- ``conv_relu``:            x -> conv -> ReLU
- ``conv_bn_relu``:         x -> conv -> spatial batch norm -> ReLU
- ``conv_relu_pool``:       x -> conv -> ReLU -> max pool
- ``conv_norm_relu_pool``:  x -> conv -> [normalization] -> ReLU -> max pool

Which normalizations each kind of sandwich takes is read from the registry
(``NormSpec.blocks``): ``FC_BLOCKS`` for (N, M) activations, ``CONV_BLOCKS`` for
(N, C, H, W) feature maps, each mapping the name the models use (``"batchnorm"``,
``"layernorm"``, ``"groupnorm"``...) to its ``Block``. ``NORMALIZATIONS`` and
``CONV_NORMALIZATIONS`` give the same as (forward, backward) pairs.

Fused kernels. With numba installed the sandwiches run ``normgrad.kernels``: the
convolution (im2col and col2im without copies), max pooling and ReLU kernels in every
dtype (they give the reference's results bit for bit), and the normalizations' fused
routes for float32 activations (batch norm and ReLU in one pass where both are there;
float64 keeps the reference norms, bit for bit the course's values). With spatial batch
norm, ``conv_norm_relu_pool`` goes further: the convolution is one channel-major product
for the whole batch (``FusedBlock.channel_major``), read in place by one kernel that
normalizes, applies ReLU and pools (``FusedBlock.relu_pool``), and whose backward hands
the conv's weight gradient its input in that layout. Which runs is
decided by ``normgrad.kernels.choose``; ``normgrad.kernels.use_fused(False)`` (or
``NORMGRAD_FUSED=0``) makes everything run the reference. A cache remembers the routes
that made it, so its backward always matches its forward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.params import float_params
from normgrad._internal.validate import flag
from normgrad.kernels import choose
from normgrad.norms import registry
from normgrad.norms.spatial import spatial_batchnorm_backward, spatial_batchnorm_forward
from normgrad.norms.spec import Block, FusedBlock
from normgrad.ops.activations import ACTIVATIONS, relu_forward
from normgrad.ops.affine import AffineCache
from normgrad.ops.fast import (
    FastConvCache,
    FastPoolCache,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normgrad.ops.windows import conv_geometry, pool_sizes

Grads3 = tuple[np.ndarray, np.ndarray, np.ndarray]
Grads5 = tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]

FC_BLOCKS: dict[str, Block] = registry.blocks("fc")
CONV_BLOCKS: dict[str, Block] = registry.blocks("conv")
NORMALIZATIONS = {name: (b.forward, b.backward) for name, b in FC_BLOCKS.items()}
CONV_NORMALIZATIONS = {name: (b.forward, b.backward) for name, b in CONV_BLOCKS.items()}


_affine_forward, _affine_backward = choose.affine_forward, choose.affine_backward
_conv_forward, _conv_backward = choose.conv_forward, choose.conv_backward
_relu_backward = choose.relu_backward


def _act_backward(activation: str, dout: np.ndarray, cache: Any) -> np.ndarray:
    if activation == "relu":
        return _relu_backward(dout, cache)
    return ACTIVATIONS[activation][1](dout, cache)


# Each sandwich's cache is a NamedTuple of its layers' caches, so its backward can check
# that it got what its forward returned (``v.cache_of``) instead of failing on unpacking.


class AffineNormActCache(NamedTuple):
    """What ``affine_norm_act_backward`` (and ``affine_relu_backward``) needs."""

    fc: AffineCache  # affine_backward's cache: x, w, b
    norm: Any  # the normalization's cache (its backward checks it); None without one
    act: Any  # the activation's cache (x for ReLU, out for sigmoid; it checks it); or None
    normalization: str | None  # which normalization's backward to run, or None
    activation: str | None  # which activation's backward to run, or None
    fused: FusedBlock | None = None  # the fused pair that made ``norm``; None: the block's


class ConvReluCache(NamedTuple):
    """What ``conv_relu_backward`` needs."""

    conv: FastConvCache  # conv_backward_fast's cache
    relu: np.ndarray  # relu_backward's cache: the conv output


class ConvBnReluCache(NamedTuple):
    """What ``conv_bn_relu_backward`` needs."""

    conv: FastConvCache  # conv_backward_fast's cache
    bn: Any  # spatial_batchnorm_backward's cache (it checks it)
    relu: np.ndarray  # relu_backward's cache: the normalized conv output (or its ReLU)
    fused: FusedBlock | None = None  # the fused pair that made ``bn``; None: the reference


class ConvNormReluPoolCache(NamedTuple):
    """What ``conv_norm_relu_pool_backward`` (and ``conv_relu_pool_backward``) needs."""

    conv: FastConvCache  # conv_backward_fast's cache
    norm: Any  # the normalization's cache (its backward checks it); None without one
    relu: np.ndarray | None  # relu_backward's cache: the (normalized) conv output
    pool: FastPoolCache | None  # max_pool_backward_fast's (its x: relu's input if relu_pool)
    normalization: str | None  # which normalization's backward to run, or None
    fused: FusedBlock | None = None  # the fused pair that made ``norm``; None: the block's
    relu_pool: bool = False  # ReLU and pooling ran as one kernel (``kernels.pool``)
    # pool None: the norm, ReLU and pooling ran as one kernel (``FusedBlock.relu_pool``),
    # whose cache ``norm`` is


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """Affine then ReLU. x: (N, d_1, ..., d_k), w: (D, M), b: (M,) -> out: (N, M).

    ``affine_norm_relu_forward`` with no normalization layer.
    """
    return affine_norm_act_forward(x, w, b, None, None, None, None)


def affine_relu_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads3:
    """Backward through ``affine_relu_forward``: dout (N, M) -> dx, dw, db.

    ``need_dx=False`` returns dx = None and skips its matrix product (as
    ``affine_backward``). A cache from anything but ``affine_relu_forward`` (or
    ``affine_norm_act_forward``) raises ``TypeError``.
    """
    v.cache_of(cache, AffineNormActCache, "affine_relu_backward", "affine_relu_forward")
    return _affine_norm_act_backward(dout, cache, need_dx)[:3]  # type: ignore[return-value]


def affine_norm_act_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    norm_param: dict[str, Any] | None,
    normalization: str | None,
    activation: str | None = "relu",
) -> tuple[np.ndarray, Any]:
    """Affine, then a normalization (or nothing), then an activation (or nothing).

    Args:
        x: (N, d_1, ..., d_k) input; w: (D, M); b: (M,).
        gamma, beta: the normalization's scale and shift, ``FC_BLOCKS[name].param_shape(M)``
            each ((M,) for every layer registered today); beta is None for a layer
            without a shift (RMS norm). Ignored when ``normalization`` is None.
        norm_param: the normalization's parameter dict (``bn_param`` for batch norm, whose
            running statistics are written back; ``ln_param`` for layer norm...), ignored
            for None.
        normalization: a key of ``FC_BLOCKS`` (``"batchnorm"``, ``"layernorm"``, ...) or
            None, as the course's ``FullyConnectedNet(normalization=...)`` spells them.
        activation: ``"relu"`` (default), ``"sigmoid"``, or None for none.

    Returns:
        out: (N, M), and the cache, an ``AffineNormActCache``.

    Raises:
        ValueError: an unknown normalization or activation, besides the layers' own errors.
    """
    v.choice(normalization, "normalization", (*FC_BLOCKS, None))
    v.choice(activation, "activation", (*ACTIVATIONS, None))
    a, fc_cache = _affine_forward(x, w, b)  # (N, M)
    norm_cache = fused = None
    if normalization is not None:
        block = FC_BLOCKS[normalization]
        fused = choose.norm(block, a)
        if fused is not None and fused.forward_relu is not None and activation == "relu":
            # one pass for both; ReLU's backward reads only the sign of its input, out's
            out, norm_cache = fused.forward_relu(a, gamma, beta, norm_param)  # (N, M)
            return out, AffineNormActCache(fc_cache, norm_cache, out, normalization, "relu", fused)
        a, norm_cache = (block if fused is None else fused).forward(a, gamma, beta, norm_param)
    out, act_cache = (a, None) if activation is None else ACTIVATIONS[activation][0](a)
    cache = AffineNormActCache(fc_cache, norm_cache, act_cache, normalization, activation, fused)
    return out, cache


def affine_norm_act_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads5:
    """Backward through ``affine_norm_act_forward``: dout (N, M) -> dx, dw, db, dgamma, dbeta.

    dgamma and dbeta take gamma's and beta's shapes, or are None when ``normalization``
    was None (dbeta also for a layer without a shift). Batch norm uses its closed-form
    route ``batchnorm_backward_alt``. ``need_dx=False`` returns dx = None and skips its
    matrix product (a network's first layer: the data needs none).

    Raises:
        TypeError: cache is not an ``affine_norm_act_forward`` cache (None, a tuple from
            another sandwich...), or dout is not a floating ndarray.
        ValueError: dout is not the forward output's shape (N, M).
    """
    v.cache_of(cache, AffineNormActCache, "affine_norm_act_backward", "affine_norm_act_forward")
    return _affine_norm_act_backward(dout, cache, need_dx)


def _affine_norm_act_backward(dout: np.ndarray, cache: AffineNormActCache, need_dx: bool) -> Grads5:
    """``affine_norm_act_backward`` once its cache is known to be the right kind."""
    fc_cache, norm_cache, act_cache, normalization, activation, fused = cache
    da = dout if activation is None else _act_backward(activation, dout, act_cache)  # (N, M)
    dgamma = dbeta = None
    if normalization is not None:
        backward = FC_BLOCKS[normalization].backward if fused is None else fused.backward
        da, dgamma, dbeta = backward(da, norm_cache)  # (N, M), ...
    dx, dw, db = _affine_backward(da, fc_cache, need_dx)
    return dx, dw, db, dgamma, dbeta


def affine_norm_relu_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    norm_param: dict[str, Any] | None,
    normalization: str | None,
) -> tuple[np.ndarray, Any]:
    """Affine, then a normalization (or nothing), then ReLU: ``affine_norm_act_forward``."""
    return affine_norm_act_forward(x, w, b, gamma, beta, norm_param, normalization, "relu")


def affine_norm_relu_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads5:
    """Backward through ``affine_norm_relu_forward``: dout (N, M) -> dx, dw, db, dgamma, dbeta."""
    v.cache_of(cache, AffineNormActCache, "affine_norm_relu_backward", "affine_norm_relu_forward")
    return _affine_norm_act_backward(dout, cache, need_dx)


def conv_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, Any]:
    """Convolution then ReLU. x: (N, C, H, W), w: (F, C, HH, WW) -> out: (N, F, H', W')."""
    a, conv_cache = _conv_forward(x, w, b, conv_param)  # (N, F, H', W')
    out, relu_cache = relu_forward(a)
    return out, ConvReluCache(conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: Any) -> Grads3:
    """Backward through ``conv_relu_forward``: dout (N, F, H', W') -> dx, dw, db."""
    v.cache_of(cache, ConvReluCache, "conv_relu_backward", "conv_relu_forward")
    conv_cache, relu_cache = cache
    da = _relu_backward(dout, relu_cache)
    return _conv_backward(da, conv_cache)


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
    a, conv_cache = _conv_forward(x, w, b, conv_param)  # (N, F, H', W')
    fused = choose.norm(CONV_BLOCKS["batchnorm"], a)
    if fused is not None and fused.forward_relu is not None:  # one pass for both
        out, bn_cache = fused.forward_relu(a, gamma, beta, bn_param)  # (N, F, H', W')
        return out, ConvBnReluCache(conv_cache, bn_cache, out, fused)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)  # (N, F, H', W')
    out, relu_cache = relu_forward(an)
    return out, ConvBnReluCache(conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward through ``conv_bn_relu_forward``: dout -> dx, dw, db, dgamma, dbeta."""
    v.cache_of(cache, ConvBnReluCache, "conv_bn_relu_backward", "conv_bn_relu_forward")
    conv_cache, bn_cache, relu_cache, fused = cache
    dan = _relu_backward(dout, relu_cache)
    backward = spatial_batchnorm_backward if fused is None else fused.backward
    da, dgamma, dbeta = backward(dan, bn_cache)
    dx, dw, db = _conv_backward(da, conv_cache)
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


def conv_relu_pool_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads3:
    """Backward through ``conv_relu_pool_forward``: dout (N, F, H'', W'') -> dx, dw, db.

    ``need_dx=False`` returns dx = None and skips its product and col2im (as
    ``conv_backward_fast`` does): a network's first layer needs no gradient for its images.
    """
    v.cache_of(cache, ConvNormReluPoolCache, "conv_relu_pool_backward", "conv_relu_pool_forward")
    return _conv_norm_relu_pool_backward(dout, cache, need_dx)[:3]  # type: ignore[return-value]


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
    """Convolution, a normalization (or nothing), ReLU, then max pooling.

    Args:
        x: (N, C, H, W) input; w: (F, C, HH, WW); b: (F,).
        gamma, beta: the normalization's scale and shift, ``CONV_BLOCKS[name].param_shape(F)``:
            (F,) for batch and instance norm, (1, F, 1, 1) for group norm (the course's
            shapes); ignored for None.
        conv_param, pool_param: as for ``conv_forward_fast`` and ``max_pool_forward_fast``.
        norm_param: the normalization's parameter dict (``bn_param`` for batch norm, its
            running statistics written back in train mode; ``gn_param`` for group norm),
            ignored for None.
        normalization: a key of ``CONV_BLOCKS`` (``"batchnorm"``, ``"groupnorm"``,
            ``"instancenorm"``) or None (then this is ``conv_relu_pool_forward``).
        G: the number of channel groups, a divisor of F; for group norm only (the layers
            that take no G ignore it).

    Returns:
        out: (N, F, H'', W''), and the cache, a ``ConvNormReluPoolCache``.

    Raises:
        ValueError: an unknown normalization, or group norm without G, besides the
            layers' own errors. conv_param and pool_param are checked before any layer
            runs, so a bad pool_param never leaves batch norm's running statistics
            updated.
    """
    v.choice(normalization, "normalization", (*CONV_BLOCKS, None))
    wf, bf = float_params(x, w=w, b=b)
    _, _, H_conv, W_conv = conv_geometry(x, wf, bf, conv_param)
    pool_sizes((x.shape[0], wf.shape[0], H_conv, W_conv), pool_param)
    block = None if normalization is None else CONV_BLOCKS[normalization]
    dtype = np.result_type(x, wf, bf)  # the conv output's
    a, conv_cache = _conv_for(block, dtype, x, w, b, conv_param)  # (N, F, H', W')
    norm_cache = fused = None
    if block is not None:
        options = {"G": G} if "G" in block.options else {}
        fused = choose.norm(block, a)
        if fused is not None and fused.relu_pool is not None:  # one pass for all three
            out, norm_cache = fused.relu_pool[0](a, gamma, beta, norm_param, pool_param, **options)
            cache = ConvNormReluPoolCache(conv_cache, norm_cache, None, None, normalization, fused)
            return out, cache
        forward = block.forward if fused is None else fused.forward
        a, norm_cache = forward(a, gamma, beta, norm_param, **options)  # (N, F, H', W')
    fast = choose.ops("pool")
    if fast is not None:  # ReLU and pooling in one pass: max(x, 0) is never written
        out, pool_cache = fast.relu_pool_forward(a, pool_param)  # (N, F, H'', W'')
        cache = ConvNormReluPoolCache(
            conv_cache, norm_cache, a, pool_cache, normalization, fused, True
        )
        return out, cache
    s, relu_cache = relu_forward(a)  # (N, F, H', W')
    out, pool_cache = max_pool_forward_fast(s, pool_param)  # (N, F, H'', W'')
    cache = ConvNormReluPoolCache(
        conv_cache, norm_cache, relu_cache, pool_cache, normalization, fused
    )
    return out, cache


def _conv_for(
    block: Block | None,
    dtype: np.dtype,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    conv_param: dict[str, Any],
) -> tuple[np.ndarray, FastConvCache]:
    """The convolution, in the layout the normalization after it reads best: one
    channel-major product for the whole batch when its fused route reads that in place
    (``FusedBlock.channel_major``: spatial batch norm), else the per-sample NCHW one."""
    fast = choose.ops("conv")
    if fast is not None and block is not None:
        fused = choose.norm_for(block, dtype)
        if fused is not None and fused.channel_major:
            return fast.conv_forward_channel_major(x, w, b, conv_param)
    return _conv_forward(x, w, b, conv_param)


def conv_norm_relu_pool_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Grads5:
    """Backward through ``conv_norm_relu_pool_forward``: dout -> dx, dw, db, dgamma, dbeta.

    dout: (N, F, H'', W''). dgamma and dbeta take gamma's shape, or are None when
    ``normalization`` was None. ``need_dx=False`` returns dx = None and skips its product
    and col2im (the ConvNet's first layer needs no gradient for its images).

    Raises:
        TypeError: cache is not a ``conv_norm_relu_pool_forward`` cache, or dout is not
            a floating ndarray.
        ValueError: dout is not the forward output's shape.
    """
    v.cache_of(
        cache, ConvNormReluPoolCache, "conv_norm_relu_pool_backward", "conv_norm_relu_pool_forward"
    )
    return _conv_norm_relu_pool_backward(dout, cache, need_dx)


def _conv_norm_relu_pool_backward(
    dout: np.ndarray, cache: ConvNormReluPoolCache, need_dx: bool
) -> Grads5:
    """``conv_norm_relu_pool_backward`` once its cache is known to be the right kind."""
    flag(need_dx, "need_dx")
    conv_cache, norm_cache, relu_cache, pool_cache, normalization, fused, relu_pool = cache
    if pool_cache is None:  # norm, ReLU and pooling as one kernel: its backward gives all three
        if fused is None or fused.relu_pool is None:
            raise TypeError(
                "conv_norm_relu_pool_backward needs the cache that "
                "conv_norm_relu_pool_forward returns; got one with no pool cache and no "
                "one-kernel norm that made it (fused None)"
            )
        da, dgamma, dbeta = fused.relu_pool[1](dout, norm_cache)
        dx, dw, db = _conv_backward(da, conv_cache, need_dx)
        return dx, dw, db, dgamma, dbeta
    if relu_pool:  # the pool cache's x is ReLU's input: one pass for both backwards
        v.float_array(dout, "dout")
        v.shape(dout, "dout", pool_cache.argmax.shape, "the shape of the forward output")
        da = choose.pool_module().relu_pool_backward(dout, pool_cache)  # (N, F, H', W')
    else:
        ds = max_pool_backward_fast(dout, pool_cache)  # (N, F, H', W')
        da = _relu_backward(ds, relu_cache)  # (N, F, H', W')
    dgamma = dbeta = None
    if normalization is not None:
        backward = CONV_BLOCKS[normalization].backward if fused is None else fused.backward
        da, dgamma, dbeta = backward(da, norm_cache)
    dx, dw, db = _conv_backward(da, conv_cache, need_dx)
    return dx, dw, db, dgamma, dbeta
