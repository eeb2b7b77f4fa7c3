"""Argument checks the data loaders share: dtypes, flags, folders, counts.

Each raises before anything is read, with a message that names the argument, what was
expected, what came, and how to fix it.

The dtype rule: data that is mean-subtracted or standardized holds fractions and negative
numbers, so it needs a floating dtype (an integer dtype would truncate or wrap them:
``int8`` turns pixel 200 into -56). Raw pixels (``subtract_mean=False``) are the integers
0..255 and may also be stored in an integer dtype that holds all of them exactly (uint8,
int16, int32, int64, uint16, ...; not int8 and not bool).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def data_dtype(dtype: Any, name: str = "dtype", *, raw_pixels: bool = False) -> np.dtype:
    """``dtype`` as a NumPy dtype the data fits in, else a clear error.

    Args:
        dtype: anything ``np.dtype`` accepts (``np.float32``, ``"float64"``...).
        name: how messages name the argument.
        raw_pixels: the data is unprocessed pixels 0..255 (no mean subtracted), so an
            integer dtype that holds 0..255 exactly is allowed too.

    Raises:
        TypeError: not a dtype at all.
        ValueError: a dtype that cannot hold the data (integers for processed data, int8
            or bool for raw pixels, complex, strings, objects...).
    """
    if isinstance(dtype, (bool, int, float)) or dtype is None:
        # np.dtype(None) is float64 and np.dtype(0) fails obscurely: neither is meant.
        raise TypeError(
            f"{name} must be a NumPy floating dtype such as np.float32 or np.float64; got "
            f"{dtype!r} ({type(dtype).__name__})."
        )
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{name} must be a NumPy dtype such as np.float32 or np.float64; got "
            f"{dtype!r:.60} ({type(dtype).__name__})."
        ) from None
    if dt.kind == "f":
        return dt
    if raw_pixels and dt.kind in "iu" and np.can_cast(np.uint8, dt):
        return dt
    if raw_pixels:
        allowed = "a floating dtype, or an integer dtype that holds 0..255 (e.g. np.uint8)"
    else:
        allowed = (
            "a floating dtype (the data is mean-subtracted, so it holds fractions and "
            "negative numbers that an integer dtype would truncate or wrap)"
        )
    raise ValueError(f"{name} must be {allowed}; got {dt}. Pass e.g. {name}=np.float32.")


def path_arg(value: Any, name: str, what: str) -> Path:
    """``value`` as a Path: a non-empty str or os.PathLike (``what`` says what it names)."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be {what} (a str or pathlib.Path); got {value!r:.60} "
            f"({type(value).__name__})."
        )
    if str(value) == "":
        raise ValueError(f"{name} is the empty string; pass {what}, e.g. {name}='data/...'.")
    return Path(value).expanduser()


class NotACountError(TypeError, ValueError):
    """A row count that is not an int (a float, a string, a bool).

    Both a ``TypeError`` (the kind of mistake) and a ``ValueError`` (what the loaders
    raised for every bad count before), so either ``except`` catches it.
    """


def count(value: Any, name: str, *, example: int, low: int = 0) -> int:
    """A number of rows: an int (never a bool or a float) >= ``low``.

    Raises:
        NotACountError (a TypeError and a ValueError): not an int.
        ValueError: below ``low``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise NotACountError(
            f"{name} must be an int >= {low}; got {value!r:.60} ({type(value).__name__}). "
            f"Pass a whole number, e.g. {name}={example}."
        )
    if value < low:
        raise ValueError(
            f"{name} must be an int >= {low}; got {value!r}. Pass e.g. {name}={example}."
        )
    return int(value)


class DataFileError(ValueError):
    """A data file or folder exists but its contents are not what its format says."""


def is_label(value: Any) -> bool:
    """True for an integer class label: a Python or NumPy int, never a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
