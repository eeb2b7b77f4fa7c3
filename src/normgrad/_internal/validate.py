"""Input checks shared by every layer.

Each check raises before anything is computed or written, so a layer that rejects
its input leaves its parameter dict exactly as it was. Messages say what was
expected, what arrived, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
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
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``.

    Compared by identity or equality with each allowed value, so an array, whose ``==`` is
    elementwise, is refused like any other wrong value instead of raising NumPy's
    ambiguous-truth error.
    """
    if isinstance(value, np.ndarray) or not any(
        value is a
        or (type(value) is type(a) and value == a)
        or (isinstance(value, str) and isinstance(a, str) and value == a)
        for a in allowed
    ):
        options = " or ".join(repr(a) for a in allowed)
        raise ValueError(
            f"{name} must be {options}; got {value!r}. Set it to one of these, e.g. "
            f"{name} = {allowed[0]!r}."
        )
    return value


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool: only True or False (Python or NumPy), never 0, 1 or a string
    (``"False"`` would silently count as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be True or False; got {value!r:.60} ({type(value).__name__}). "
            f"Pass {name}=True or {name}=False."
        )
    return bool(value)


def is_real(value: Any) -> bool:
    """True for a real number: a Python or NumPy int or float, never a bool or a string."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def real(
    value: Any,
    name: str,
    *,
    example: float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the given bounds, else a clear error.

    Args:
        value: a Python or NumPy real number; bools, strings and arrays are refused.
        name: how the message names the argument, e.g. ``"bn_param['eps']"``.
        example: a valid value the message suggests.
        low, high: bounds (None: unbounded); ``low_open`` / ``high_open`` exclude them.

    Raises:
        TypeError: not a real number (a bool, a string, None, an array...).
        ValueError: NaN, infinite, or out of bounds.
    """
    if low is not None and high is not None:
        want = (
            f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}"
            f"{')' if high_open else ']'}"
        )
    elif low is not None:
        want = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        want = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        want = "a finite number"
    fix = f"Pass {want}, e.g. {name} = {example!r}."
    if not is_real(value):
        raise TypeError(
            f"{name} must be a real number; got {value!r} ({type(value).__name__}). {fix}"
        )
    x = float(value)
    bad = not np.isfinite(x)
    if low is not None:
        bad = bad or x < low or (low_open and x == low)
    if high is not None:
        bad = bad or x > high or (high_open and x == high)
    if bad:
        raise ValueError(f"{name} must be {want}; got {value!r}. {fix}")
    return x


def integer(value: Any, name: str, *, example: int, low: int | None = None) -> int:
    """``value`` as an int >= ``low``: a Python or NumPy integer, never a bool or a float.

    Raises:
        TypeError: not an integer. ValueError: below ``low``.
    """
    fix = f"Pass a whole number{'' if low is None else f' >= {low}'}, e.g. {name} = {example}."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__}). {fix}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}. {fix}")
    return int(value)


def nonnegative(value: Any, name: str, example: float = 1.0) -> float:
    """``value`` as a finite float >= 0 (``real`` with ``low=0``)."""
    return real(value, name, example=example, low=0.0)


def unit_interval(value: Any, name: str, example: float = 0.5) -> float:
    """``value`` as a finite float in [0, 1] (``real`` with ``low=0, high=1``)."""
    return real(value, name, example=example, low=0.0, high=1.0)


def known_keys(
    param: dict[str, Any], name: str, known: Iterable[str], ignored: Iterable[str] = ()
) -> None:
    """Raise ``ValueError`` if ``param`` has a key outside ``known`` and ``ignored``.

    A misspelt key (``momentun``, ``epsilon``) would otherwise be silently ignored. The
    message lists the known keys and suggests the closest one. ``ignored`` keys are
    accepted and not used (the course passes ``mode`` to layers without modes).
    """
    allowed = [*known, *ignored]
    unknown = [k for k in param if k not in allowed]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    raise ValueError(
        f"{name} has unknown key {key!r}{more}; "
        f"the keys it reads are {', '.join(repr(k) for k in known)}.{hint} Remove or rename it."
    )


def cache_of(cache: Any, expected: type | tuple[type, ...], backward: str, forward: str) -> None:
    """Raise ``TypeError`` unless ``cache`` is what ``forward`` returns for ``backward``.

    Without this, a wrong or missing cache fails deep inside the backward pass with an
    ``AttributeError`` or an unpacking error that names nothing the caller wrote.
    """
    if not isinstance(cache, expected):
        raise TypeError(
            f"{backward} needs the cache that {forward} returns; got "
            f"{type(cache).__name__}. Call out, cache = {forward}(...) and pass that cache "
            f"to {backward}(dout, cache)."
        )


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype statistics are accumulated in: float64, or wider if the input is wider.

    float32 and float16 inputs are centred and reduced in float64 and the result is
    cast back, so data whose mean is 1e6 times its spread still normalizes correctly.
    """
    return np.promote_types(dtype, np.float64)
