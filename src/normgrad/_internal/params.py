"""Learnable parameters of the ops (w, b) as floating arrays, as the course accepts them.

The course's notebooks pass integer weights and biases (ConvolutionalNetworks.ipynb's
kitten/puppy cell builds ``b = np.array([0, 128])``); NumPy promotes them silently.
Here they are cast once, at the forward pass's entry, to ``np.result_type`` of the input
and every parameter (a floating dtype, since x must be floating), so the cache holds
floats and the backward pass returns floating gradients, never integer-truncated ones.
"""

from __future__ import annotations

import numpy as np

from normgrad._internal import validate as v


def float_params(x: np.ndarray, **params: np.ndarray) -> tuple[np.ndarray, ...]:
    """Validate x as floating and return ``params`` (in order) as floating arrays.

    Args:
        x: the layer's input, any shape; it must have a floating dtype.
        **params: name -> parameter array (float, integer or bool dtype).

    Returns:
        The parameters in the order given: floating ones unchanged, integer and bool
        ones cast to ``np.result_type(x, *params)``.

    Raises:
        TypeError: x is not a floating ndarray, or a parameter is not a real numeric
            ndarray (the message names it and says how to convert it).
    """
    v.float_array(x, "x")
    numeric = [p for p in params.values() if isinstance(p, np.ndarray) and p.dtype.kind in "biuf"]
    dtype = np.result_type(x, *numeric)  # floating: x is floating
    return tuple(v.float_param(p, name, dtype) for name, p in params.items())
