"""The maths of the course's other layers, once: affine, ReLU, dropout, losses, conv, pool.

One module per job. ``normgrad.layers``, ``normgrad.fast_layers`` and
``normgrad.models.blocks`` re-export from here under the course's names; this package
re-exports every layer of its modules too (as ``normgrad.norms`` does for the norms),
and a test keeps ``__all__`` complete.

- ``affine``: fully connected layer; ``activations``: ReLU and sigmoid;
  ``dropout``: inverted dropout;
- ``losses``: softmax (cross-entropy) and multiclass SVM losses;
- ``conv``, ``pool``: naive references for convolution and max pooling;
- ``fast``: their vectorized versions (im2col, strided views);
- ``windows``: the sliding-window geometry and im2col / col2im they share, and the keys
  conv_param and pool_param may hold;
- ``_checks`` (private): input checks the ops and the models share beyond
  ``normgrad._internal.validate`` (bare-array caches, bool flags, seeds, param dicts).
"""

from normgrad.ops.activations import (
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from normgrad.ops.affine import AffineCache, affine_backward, affine_forward
from normgrad.ops.conv import ConvCache, conv_backward_naive, conv_forward_naive
from normgrad.ops.dropout import DropoutCache, dropout_backward, dropout_forward
from normgrad.ops.fast import (
    FastConvCache,
    FastPoolCache,
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normgrad.ops.losses import softmax_loss, svm_loss
from normgrad.ops.pool import PoolCache, max_pool_backward_naive, max_pool_forward_naive

__all__ = [
    "AffineCache",
    "ConvCache",
    "DropoutCache",
    "FastConvCache",
    "FastPoolCache",
    "PoolCache",
    "affine_backward",
    "affine_forward",
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
    "dropout_backward",
    "dropout_forward",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "svm_loss",
]
