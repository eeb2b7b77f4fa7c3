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

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.ops.fast import (
    FastPoolCache,
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normgrad.ops.windows import pool_geometry

# The course's fast_layers exposes its two implementations under their own names too.
conv_forward_im2col = conv_forward_fast
conv_backward_im2col = conv_backward_fast
conv_forward_strides = conv_forward_fast
conv_backward_strides = conv_backward_fast
max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_im2col = max_pool_backward_fast


def _check_reshape_pool(x: np.ndarray, pool_param: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless the pools are square, non-overlapping and tile x."""
    ph, pw, stride, _, _ = pool_geometry(x, pool_param)  # the usual checks first
    H, W = x.shape[2:]
    if not (ph == pw == stride) or H % ph or W % pw:
        raise ValueError(
            f"max_pool_forward_reshape needs square pools that tile x without overlap: "
            f"pool_height == pool_width == stride, dividing H and W; got pool "
            f"{ph}x{pw}, stride {stride}, x of shape {tuple(x.shape)}. Use "
            f"max_pool_forward_fast (or max_pool_forward_im2col), which takes any pools."
        )


def max_pool_forward_reshape(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, FastPoolCache]:
    """Max pooling forward for square, non-overlapping, tiling pools (cs231n signature).

    Args:
        x: (N, C, H, W) input.
        pool_param: ``pool_height`` == ``pool_width`` == ``stride``, dividing H and W.

    Returns:
        out: (N, C, H / stride, W / stride), and the cache for
        ``max_pool_backward_reshape``. Same values as ``max_pool_forward_fast``.

    Raises:
        ValueError: the pools are not square, overlap or leave gaps, or do not tile x
            (and every error of ``max_pool_forward_naive``).
    """
    _check_reshape_pool(x, pool_param)
    return max_pool_forward_fast(x, pool_param)


def max_pool_backward_reshape(dout: np.ndarray, cache: FastPoolCache) -> np.ndarray:
    """Backward of ``max_pool_forward_reshape``: dout (N, C, H', W') -> dx (N, C, H, W)."""
    return max_pool_backward_fast(dout, cache)


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
