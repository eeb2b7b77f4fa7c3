"""Cheap recognizers of the ordinary call, so the fused routes skip most of the checks.

Each function here answers "is this plainly a valid call?" with a few type and shape
tests, and returns what the full checks would return, or None. None never means an
error: the caller then runs the reference's own checks (``parse_inputs`` of the layer's
module), which raise exactly the reference's errors, or accept the unusual-but-valid
input (integer gamma, a NumPy float eps, float64 running statistics for float32 x...).
So a fused route accepts and rejects exactly what its reference does, with the same
messages, and the common call costs a few microseconds instead of tens.

What "plain" means, everywhere: arrays are exactly ``np.ndarray`` of a compiled dtype
(float32 or float64, native byte order); a parameter dict is a ``dict`` holding only
known keys; eps is a Python float in (0, inf) or absent; mode a ``str``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.kernels._runtime import COMPILED

_INF = float("inf")
#: The keys a parameter dict of a layer without modes may hold ("mode" is ignored).
EPS_KEYS = frozenset(("eps", "mode"))


def array(a: Any) -> bool:
    """a is a plain float32 or float64 ndarray."""
    return type(a) is np.ndarray and a.dtype in COMPILED


def param_of(a: Any, shape: tuple[int, ...]) -> bool:
    """a is a plain float32 or float64 ndarray of ``shape``."""
    return type(a) is np.ndarray and a.dtype in COMPILED and a.shape == shape


def eps_of(param: Any, default: float = 1e-5, keys: frozenset[str] = EPS_KEYS) -> float | None:
    """eps from a parameter dict that holds only ``keys`` and a plain eps, else None.

    None (no dict) reads as {}, as ``core.read_param`` does. eps = 0 is valid but not
    plain (a constant group is then an error): it returns None too.
    """
    if param is None:
        return default
    if type(param) is not dict:
        return None
    for k in param:
        if k not in keys:
            return None
    eps = param.get("eps", default)
    if type(eps) is float and 0.0 < eps < _INF:
        return eps
    return None
