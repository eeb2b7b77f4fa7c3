"""cs231n-compatible layer functions (``cs231n.layers``), a thin surface over ``norms/``.

Every function keeps the course's signature and semantics: ``*_forward(...) -> (out,
cache)`` and ``*_backward(dout, cache) -> gradients``. The maths lives in
``normgrad.norms`` and ``normgrad.ops``; this module only names it the way the course does.
"""

from normgrad.norms.batch import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_backward_paper,
    batchnorm_forward,
)
from normgrad.norms.group import spatial_groupnorm_backward, spatial_groupnorm_forward
from normgrad.norms.instance import instancenorm_backward, instancenorm_forward
from normgrad.norms.layer import (
    layernorm_backward,
    layernorm_forward,
    layernorm_nd_backward,
    layernorm_nd_forward,
)
from normgrad.norms.rms import rmsnorm_backward, rmsnorm_forward
from normgrad.norms.running import torch_bn_param
from normgrad.norms.spatial import spatial_batchnorm_backward, spatial_batchnorm_forward
from normgrad.ops.activations import (
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.conv import conv_backward_naive, conv_forward_naive
from normgrad.ops.dropout import dropout_backward, dropout_forward
from normgrad.ops.losses import softmax_loss, svm_loss
from normgrad.ops.pool import max_pool_backward_naive, max_pool_forward_naive

__all__ = [
    "instancenorm_backward",
    "instancenorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "layernorm_nd_backward",
    "layernorm_nd_forward",
    "rmsnorm_backward",
    "rmsnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_backward_paper",
    "batchnorm_forward",
    "torch_bn_param",
    # the course's other layers (normgrad.ops)
    "affine_backward",
    "affine_forward",
    "conv_backward_naive",
    "conv_forward_naive",
    "dropout_backward",
    "dropout_forward",
    "max_pool_backward_naive",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "svm_loss",
]
