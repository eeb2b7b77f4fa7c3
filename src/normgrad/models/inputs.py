"""Checks the models share: their constructor arguments, data that disagrees with them, labels.

The constructor checks run before a model draws a single random number, so a refused
call leaves NumPy's global generator (which the course's models draw their weights from)
exactly where it was. The data checks run before any layer, so the error names the
model's expectation (``input_dim``, ``num_classes``) rather than an inner layer's shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from normgrad._internal import validate as v

#: The dtypes of data the models take: integers (raw pixels, cast) and floats.
_DATA_KINDS = "iuf"


def positive_int(value: Any, name: str, example: int) -> int:
    """``value`` as an int >= 1: a Python or NumPy integer, never a float or a bool.

    The course passes sizes straight to ``np.random.randn``, which refuses floats too.
    """
    fix = f"Pass a whole number >= 1, e.g. {name}={example}."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be a positive int; got {value!r} ({type(value).__name__}). {fix}"
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1); got {value}. {fix}")
    return int(value)


def layer_sizes(value: Any, name: str, example: str) -> list[int]:
    """``value`` as a list of positive ints: a list, tuple, range or 1-D integer array.

    Raises:
        TypeError: not such a sequence (a bare int, a string, a dict...), or an item
            that is not an int (``100.0``, ``"100"``, ``True``).
        ValueError: an item < 1.
    """
    ok = isinstance(value, (list, tuple, range)) or (
        isinstance(value, np.ndarray) and value.ndim == 1
    )
    if not ok:
        hint = f" Wrap a single size in a list: [{value!r}]." if v.is_real(value) else ""
        raise TypeError(
            f"{name} must be a list of layer sizes such as {example}; got {value!r} "
            f"({type(value).__name__}).{hint}"
        )
    return [positive_int(h, f"{name}[{i}]", example=100) for i, h in enumerate(value)]


def float_dtype(value: Any, name: str = "dtype") -> np.dtype:
    """``value`` as a floating NumPy dtype (float16, float32, float64 or longdouble).

    Anything ``np.dtype`` reads is accepted (``np.float32``, ``"float64"``,
    ``np.dtype("f4")``); None, integer, bool, complex and object dtypes are refused.
    """
    fix = f"Pass a floating dtype, e.g. {name}=np.float32 (or np.float64 for gradient checks)."
    if value is None:
        raise TypeError(f"{name} must be a floating NumPy dtype; got None. {fix}")
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a floating NumPy dtype; got {value!r} ({type(value).__name__}), "
            f"which is not a dtype. {fix}"
        ) from None
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{name} must be a floating NumPy dtype; got {dtype}. {fix}")
    return dtype


def reg_strength(value: Any, name: str = "reg") -> float:
    """``value`` as the L2 strength: a finite real number >= 0."""
    return v.nonnegative(value, name, example=1e-3)


def weight_scale(value: Any, name: str = "weight_scale") -> float:
    """``value`` as the weights' standard deviation: a finite real number > 0."""
    return v.real(value, name, example=1e-2, low=0.0, low_open=True)


def check_X(
    X: np.ndarray, input_shape: Sequence[int], model: str, any_layout: bool = False
) -> None:
    """Raise unless X is real numeric with shape (N, *input_shape) or (N, prod(input_shape)).

    With ``any_layout`` any (N, d_1, ..., d_k) whose row size d_1 * ... * d_k is
    prod(input_shape) is accepted (a fully connected net flattens each row). NaN and
    infinite values are accepted, as in the course: they propagate to a NaN loss,
    which the Solver records.

    Raises:
        TypeError: X is not an ndarray, or its dtype is not an integer or floating one
            (bool, complex, object, strings).
        ValueError: X's shape does not fit the model, or X has no rows.
    """
    if not isinstance(X, np.ndarray):
        raise TypeError(
            f"{model}: X must be a numpy.ndarray of numbers; got {type(X).__name__}. "
            "Wrap it with np.asarray(X, dtype=np.float64)."
        )
    if X.dtype.kind not in _DATA_KINDS:
        raise TypeError(
            f"{model}: X must hold real numbers (a floating or integer dtype); got dtype "
            f"{X.dtype}. Convert it with X.astype(np.float64)."
        )
    input_shape = tuple(int(s) for s in input_shape)
    size = int(np.prod(input_shape))
    row = tuple(X.shape[1:])
    fits = row in (input_shape, (size,)) or (any_layout and int(np.prod(row)) == size)
    if X.ndim < 1 or not fits:
        raise ValueError(
            f"{model} expects X of shape (N, {', '.join(map(str, input_shape))})"
            f"{'' if len(input_shape) == 1 else f' or (N, {size})'}; got {tuple(X.shape)}. "
            "Build the model with input_dim matching the data (e.g. input_dim=64 for "
            "flattened 8x8 digits)."
        )
    if X.shape[0] == 0:
        raise ValueError(
            f"{model}: X has no rows; got shape {tuple(X.shape)}. Pass at least one sample."
        )


def check_y(y: np.ndarray, N: int, num_classes: int, model: str) -> None:
    """Raise unless y is an integer array (N,) with labels in [0, num_classes)."""
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer):  # bool too
        raise TypeError(
            f"{model}: y must be a numpy integer array of class labels; got "
            f"{getattr(y, 'dtype', type(y).__name__)}. Convert with np.asarray(y, np.int64)."
        )
    if y.shape != (N,):
        raise ValueError(
            f"{model}: y must have shape (N,) = ({N},), one label per row of X; got "
            f"{tuple(y.shape)}."
        )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise ValueError(
            f"{model}: labels must lie in [0, num_classes) = [0, {num_classes}); got "
            f"{bad.size} outside, e.g. {bad[:5].tolist()}. Build the model with "
            "num_classes = the number of classes in the data."
        )


def option(value: Any, name: str, options: Sequence[str | None], hint: str = "") -> Any:
    """``value`` if it is one of ``options`` (strings, or None), else a clear error.

    Raises:
        TypeError: neither a string nor None (a list, an array...).
        ValueError: a string (or None) that is not among ``options``; ``hint`` follows.
    """
    listed = ", ".join(repr(o) for o in options)
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{name} must be one of {listed}; got {value!r} ({type(value).__name__}). "
            f"Pass the name as a string.{' ' + hint if hint else ''}"
        )
    if value not in options:
        raise ValueError(
            f"{name} must be one of {listed}; got {value!r}.{' ' + hint if hint else ''}"
        )
    return value


State = tuple[dict[str, Any], list[dict[str, Any]]]


def snapshot(dropout_param: dict[str, Any], norm_params: list[dict[str, Any]]) -> State:
    """Copies of a model's mutable dicts (modes, running statistics), for ``restore``.

    The arrays in them are copied too (a few vectors of one value per feature), so a
    layer that updated them in place could still be undone.
    """

    def copy(param: dict[str, Any]) -> dict[str, Any]:
        return {k: a.copy() if isinstance(a, np.ndarray) else a for k, a in param.items()}

    return copy(dropout_param), [copy(p) for p in norm_params]


def restore(saved: State, dropout_param: dict[str, Any], norm_params: list[dict[str, Any]]) -> None:
    """Put the dicts back as ``snapshot`` saw them, in place (callers hold references)."""
    saved_dropout, saved_norms = saved
    for param, old in ((dropout_param, saved_dropout), *zip(norm_params, saved_norms, strict=True)):
        param.clear()
        param.update(old)
