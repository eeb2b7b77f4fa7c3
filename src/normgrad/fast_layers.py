"""cs231n-compatible fast layers (``cs231n.fast_layers``), a thin surface over ``ops.fast``.

``conv_forward_fast`` / ``conv_backward_fast`` compute the convolution by im2col and one
matrix product; ``max_pool_forward_fast`` / ``max_pool_backward_fast`` pool over a strided
view of every window. Same signatures and results as the naive layers in
``normgrad.layers``; the caches differ, so pair each forward with its own backward.

The course's other names for its implementations are here too, all on the same code:

- ``conv_forward_im2col`` / ``conv_backward_im2col`` and ``conv_forward_strides`` /
  ``conv_backward_strides``: the fast convolution;
- ``max_pool_forward_im2col`` / ``max_pool_backward_im2col``: the fast pooling, any
  window and stride that tile the input;
- ``max_pool_forward_reshape`` / ``max_pool_backward_reshape``: the fast pooling under
  the course's reshape contract: square windows with stride equal to their size
  (pool_height == pool_width == stride) that tile x exactly; anything else raises
  ``ValueError``, where the course's version fails an assertion.
"""

from normgrad.ops.fast import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_reshape,
)

# The course's fast_layers exposes its two implementations under their own names too.
conv_forward_im2col = conv_forward_fast
conv_backward_im2col = conv_backward_fast
conv_forward_strides = conv_forward_fast
conv_backward_strides = conv_backward_fast
max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_im2col = max_pool_backward_fast

__all__ = [
    "conv_backward_fast",
    "conv_backward_im2col",
    "conv_backward_strides",
    "conv_forward_fast",
    "conv_forward_im2col",
    "conv_forward_strides",
    "max_pool_backward_fast",
    "max_pool_backward_im2col",
    "max_pool_backward_reshape",
    "max_pool_forward_fast",
    "max_pool_forward_im2col",
    "max_pool_forward_reshape",
]
