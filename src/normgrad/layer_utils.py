"""cs231n-compatible sandwich layers (``cs231n.layer_utils``), over ``models.blocks``.

``affine_relu``, ``conv_relu``, ``conv_bn_relu`` and ``conv_relu_pool`` have the course's
signatures; ``affine_norm_relu`` / ``affine_norm_act`` and ``conv_norm_relu_pool`` take
any registered normalization by name (``FC_BLOCKS``, ``CONV_BLOCKS``).
"""

from normgrad.models.blocks import (
    CONV_BLOCKS,
    CONV_NORMALIZATIONS,
    FC_BLOCKS,
    NORMALIZATIONS,
    affine_norm_act_backward,
    affine_norm_act_forward,
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_norm_relu_pool_backward,
    conv_norm_relu_pool_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)

__all__ = [
    "CONV_BLOCKS",
    "CONV_NORMALIZATIONS",
    "FC_BLOCKS",
    "NORMALIZATIONS",
    "affine_norm_act_backward",
    "affine_norm_act_forward",
    "affine_norm_relu_backward",
    "affine_norm_relu_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "conv_bn_relu_backward",
    "conv_bn_relu_forward",
    "conv_norm_relu_pool_backward",
    "conv_norm_relu_pool_forward",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
]
