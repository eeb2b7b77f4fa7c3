"""Input checks shared by every layer.

Each check raises before anything is computed or written, so a layer that rejects
its input leaves its parameter dict exactly as it was. Messages say what was
expected, what arrived, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def float_array(value: Any, name: str) -> np.ndarray:
    """Return ``value`` if it is a floating-point ndarray, else raise ``TypeError``."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of floats; got {type(value).__name__}. "
            f"Wrap it with np.asarray({name}, dtype=np.float64)."
        )
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(
            f"{name} must have a floating dtype (float32 or float64); got {value.dtype}. "
            f"Convert it with {name}.astype(np.float64)."
        )
    return value


def float_param(value: Any, name: str, dtype: np.dtype) -> np.ndarray:
    """A learnable parameter (gamma, beta, w, b) as a floating array.

    Floating arrays are returned as they are. Integer and bool arrays, which the course's
    notebooks pass (``gamma = np.asarray([3, 4, 5])``), are cast to ``dtype`` (the input's
    floating dtype), so gradients that take the parameter's dtype are never truncated.
    Anything else raises ``TypeError``.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray; got {type(value).__name__}. "
            f"Wrap it with np.asarray({name}, dtype=np.float64)."
        )
    if np.issubdtype(value.dtype, np.floating):
        return value
    if np.issubdtype(value.dtype, np.integer) or value.dtype == np.bool_:
        return value.astype(dtype)
    raise TypeError(
        f"{name} must have a real numeric dtype; got {value.dtype}. "
        f"Convert it with {name}.astype(np.float64)."
    )


def ndim(x: np.ndarray, name: str, expected: int, layout: str, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``x.ndim == expected``; ``layout`` reads like ``(N, D)``.

    ``hint`` says how to fix it; without one the message suggests a reshape.
    """
    if x.ndim != expected:
        fix = hint or f"Reshape {name} to {expected} axes {layout} with {name}.reshape(...)."
        raise ValueError(f"{name} must be {expected}-D {layout}; got shape {tuple(x.shape)}. {fix}")


def shape(x: np.ndarray, name: str, expected: Sequence[int], why: str = "") -> None:
    """Raise ``ValueError`` unless ``x.shape == expected``."""
    expected = tuple(int(s) for s in expected)
    if tuple(x.shape) != expected:
        extra = f" ({why})" if why else ""
        raise ValueError(
            f"{name} must have shape {expected}{extra}; got {tuple(x.shape)}. Pass an array "
            f"of shape {expected}."
        )


def choice(value: Any, name: str, allowed: Sequence[Any]) -> Any:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        options = " or ".join(repr(a) for a in allowed)
        raise ValueError(
            f"{name} must be {options}; got {value!r}. Set it to one of these, e.g. "
            f"{name} = {allowed[0]!r}."
        )
    return value


def nonnegative(value: Any, name: str, example: float = 1.0) -> float:
    """Return ``value`` as a float, raising ``ValueError`` if it is negative or not finite.

    ``example`` is a valid value the message suggests (eps passes its default, 1e-5).
    """
    fix = f"Pass a finite float >= 0, e.g. {name} = {example!r}."
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}. {fix}") from None
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}. {fix}")
    return v


def unit_interval(value: Any, name: str, example: float = 0.5) -> float:
    """Return ``value`` as a float in [0, 1], else raise ``ValueError``."""
    v = nonnegative(value, name, example)
    if v > 1:
        raise ValueError(
            f"{name} must lie in [0, 1]; got {value!r}. Pass a value in [0, 1], e.g. "
            f"{name} = {example!r}."
        )
    return v


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype statistics are accumulated in: float64, or wider if the input is wider.

    float32 and float16 inputs are centred and reduced in float64 and the result is
    cast back, so data whose mean is 1e6 times its spread still normalizes correctly.
    """
    return np.promote_types(dtype, np.float64)
