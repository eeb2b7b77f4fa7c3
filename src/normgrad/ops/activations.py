"""ReLU, the rectified linear unit (Nair & Hinton 2010), as in cs231n assignment 2.

Formula, elementwise on x of any shape::

    out = max(0, x)
    dx  = dout * [x > 0]

The derivative at x = 0 is taken as 0 (the course's and PyTorch's convention).
Train and test behaviour are the same.
"""

from __future__ import annotations

import numpy as np

from normgrad import _validate as v


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ReLU forward: out = max(0, x), elementwise (cs231n signature).

    Args:
        x: input of any shape.

    Returns:
        out: x's shape and dtype, and the cache: x itself, whose sign picks which
        upstream gradients pass.
    """
    v.float_array(x, "x")
    out = np.maximum(x, 0)  # (any)
    return out, x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """ReLU backward: dx = dout where x > 0, else 0 (cs231n signature).

    Args:
        dout: upstream gradient, x's shape.
        cache: x, from ``relu_forward``.

    Returns:
        dx: x's shape.
    """
    x = cache
    v.float_array(dout, "dout")
    v.shape(dout, "dout", x.shape, "the shape of the forward input x")
    return np.where(x > 0, dout, 0).astype(dout.dtype, copy=False)
