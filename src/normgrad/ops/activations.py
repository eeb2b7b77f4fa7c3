"""Elementwise activations: ReLU (as in cs231n assignment 2) and the logistic sigmoid.

ReLU, the rectified linear unit (Nair & Hinton 2010), elementwise on x of any shape::

    out = max(0, x)
    dx  = dout * [x > 0]

The derivative at x = 0 is taken as 0 (the course's and PyTorch's convention).

Sigmoid, the logistic function (the units of Ioffe & Szegedy 2015, Figure 1)::

    out = 1 / (1 + exp(-x))
    dx  = dout * out * (1 - out)

Train and test behaviour are the same for both.
"""

from __future__ import annotations

import numpy as np

from normgrad._internal import validate as v
from normgrad.ops._checks import array_cache


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ReLU forward: out = max(0, x), elementwise (cs231n signature).

    Args:
        x: input of any shape (empty and 0-d arrays included), floating.

    Returns:
        out: x's shape and dtype, and the cache: x itself, whose sign picks which
        upstream gradients pass.

    Raises:
        TypeError: x is not a floating ndarray.
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

    Raises:
        TypeError: cache is not the array ``relu_forward`` returns (None, a tuple from
            another layer...), or dout is not a floating ndarray.
        ValueError: dout is not x's shape.
    """
    x = array_cache(cache, "relu_backward", "relu_forward")
    v.float_array(dout, "dout")
    v.shape(dout, "dout", x.shape, "the shape of the forward input x")
    return np.where(x > 0, dout, 0).astype(dout.dtype, copy=False)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid forward: out = 1 / (1 + exp(-x)), elementwise.

    Computed without overflow for any x: exp is only ever taken of -|x| <= 0, as
    out = 1 / (1 + e) for x >= 0 and out = e / (1 + e) for x < 0, with e = exp(-|x|).

    Args:
        x: input of any shape (empty and 0-d arrays included), floating.

    Returns:
        out: x's shape and dtype, in (0, 1) (exactly 0 or 1 only where float rounding
        saturates), and the cache: out itself, since the derivative is out * (1 - out).

    Raises:
        TypeError: x is not a floating ndarray.
    """
    v.float_array(x, "x")
    e = np.exp(-np.abs(x))  # (any) in (0, 1]: never overflows
    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Sigmoid backward: dx = dout * out * (1 - out).

    Args:
        dout: upstream gradient, x's shape.
        cache: out, from ``sigmoid_forward``.

    Returns:
        dx: x's shape.

    Raises:
        TypeError: cache is not the array ``sigmoid_forward`` returns, or dout is not a
            floating ndarray.
        ValueError: dout is not x's shape.
    """
    out = array_cache(cache, "sigmoid_backward", "sigmoid_forward")
    v.float_array(dout, "dout")
    v.shape(dout, "dout", out.shape, "the shape of the forward input x")
    return (dout * out * (1.0 - out)).astype(dout.dtype, copy=False)


#: Activation name -> (forward, backward), for the model blocks and their callers.
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}
