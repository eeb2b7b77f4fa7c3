"""What the gradient checkers accept, checked before anything is perturbed.

Every function here raises a ``TypeError`` or ``ValueError`` that names the argument,
says what was expected and what came, and how to fix it. None of them changes its input.

The point ``x`` is perturbed in place by the course's functions (a notebook's ``f``
often ignores its argument and reads the same array through a model, so the perturbation
must land in the caller's array). That is only meaningful for a floating array: an
integer array would round every ``x + h`` back to ``x`` and every partial derivative to
zero. ``point`` therefore copies an integer ``x`` to float64 and the checker perturbs the
copy, never the caller's integer array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad._internal import validate as v


def callable_arg(value: Any, name: str, example: str) -> Callable[..., Any]:
    """``value`` if it can be called, else a ``TypeError``."""
    if not callable(value):
        raise TypeError(
            f"{name} must be a function; got {value!r:.80} ({type(value).__name__}). "
            f"Pass e.g. {example}."
        )
    return value


def step(h: Any, example: float = 1e-5) -> float:
    """The finite-difference step: a finite real number > 0 (h = 0 would divide by 0)."""
    return v.real(h, "h", example=example, low=0.0, low_open=True)


def point(x: Any, name: str = "x") -> tuple[np.ndarray, bool]:
    """The array to perturb: ``(x, False)`` for a writeable floating array, perturbed in
    place as the course does; ``(float64 copy of x, True)`` for an integer array.

    Raises:
        TypeError: x is not a numpy array, or not of a real numeric dtype (bool, complex,
            object and strings are refused).
        ValueError: x holds NaN or inf, or is a read-only floating array (it cannot be
            perturbed in place).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray, the point to differentiate at; got "
            f"{type(x).__name__}. Wrap it: {name} = np.asarray({name}, dtype=np.float64)."
        )
    if x.dtype.kind in "iuf" and not np.all(np.isfinite(x)):
        raise ValueError(
            f"{name} holds NaN or inf: there is no derivative to estimate there. Pass a "
            f"point with finite entries."
        )
    if x.dtype.kind == "f":
        if not x.flags.writeable:
            raise ValueError(
                f"{name} is read-only, and the checker perturbs {name} in place (then "
                f"restores it). Pass a writeable array, e.g. {name}.copy()."
            )
        return x, False
    if x.dtype.kind in "iu":
        # x + h rounds back to x in an integer array: differentiate at a float64 copy.
        return x.astype(np.float64), True
    raise TypeError(
        f"{name} must have a real numeric dtype (floating, or integer, which is copied to "
        f"float64); got {x.dtype}. Convert it: {name}.astype(np.float64)."
    )


def real_array(value: Any, name: str) -> np.ndarray:
    """``value`` as an ndarray of real numbers (integer or floating), never bool or complex."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of real numbers; got {type(value).__name__}. "
            f"Wrap it: np.asarray({name}, dtype=np.float64)."
        )
    if value.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must have a real numeric dtype (floating or integer); got "
            f"{value.dtype}. Convert it: {name}.astype(np.float64)."
        )
    return value


def upstream(df: Any, name: str = "df") -> np.ndarray:
    """An upstream gradient: a real numeric ndarray with finite entries."""
    real_array(df, name)
    if not np.all(np.isfinite(df)):
        raise ValueError(
            f"{name} must be finite (it weights f's outputs); it holds NaN or inf. Draw "
            f"it as e.g. {name} = np.random.randn(*out.shape)."
        )
    return df


def scalar_output(value: Any, what: str) -> Any:
    """A scalar function's value: a real number, or a real array of exactly one element.

    Returned unchanged (a one-element array as 0-d), so the course's arithmetic on it,
    ``(f(x + h) - f(x - h)) / (2 h)`` in f's dtype, is untouched.

    Raises:
        TypeError: not a number (None, a string, a bool, a complex number, a tuple such
            as ``model.loss``'s ``(loss, grads)``...).
        ValueError: an array of more than one element.
    """
    if v.is_real(value):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        if value.size == 1:
            return value.reshape(())
        raise ValueError(
            f"{what} must return a scalar (the loss); it returned an array of shape "
            f"{tuple(value.shape)}. Reduce it, e.g. np.sum(out * dout), or use "
            "eval_numerical_gradient_array(f, x, df) for an array-valued f."
        )
    hint = " model.loss(X, y) returns (loss, grads): take [0]." if isinstance(value, tuple) else ""
    raise TypeError(
        f"{what} must return a real number (the loss); it returned {value!r:.60} "
        f"({type(value).__name__}).{hint}"
    )


def array_output(value: Any, what: str, shape: tuple[int, ...], df_name: str = "df") -> np.ndarray:
    """An array function's value, copied: real numbers of the upstream gradient's shape."""
    out = np.array(value, copy=True)
    if out.dtype.kind not in "iuf":
        raise TypeError(
            f"{what} must return an array of real numbers; it returned {value!r:.60} "
            f"({type(value).__name__}, dtype {out.dtype})."
        )
    if out.shape != shape:
        raise ValueError(
            f"{what} returned shape {tuple(out.shape)}, but {df_name} has shape {shape}: "
            f"{df_name} is the upstream gradient of f's output and must have its shape. "
            f"Draw it as {df_name} = np.random.randn(*out.shape)."
        )
    return out
