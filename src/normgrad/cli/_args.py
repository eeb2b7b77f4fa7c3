"""Argument types and output-path checks the commands share.

The argparse types turn a bad flag value into argparse's own one-line error (exit 2);
the path checks raise ``UsageError`` (exit 2) before any work starts, so a run is never
lost to an output that could not be written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

from normgrad._internal import paths
from normgrad._internal.errors import UsageError

MAX_SEED = 2**32 - 1  # NumPy's legacy seed range, and default_rng's first word


def number(
    kind: type = float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], Any]:
    """argparse type: a finite ``kind`` (int or float) within the given bounds."""
    if low is not None and high is not None:
        want = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        want = ("> " if low_open else ">= ") + f"{low:g}"
    elif high is not None:
        want = ("< " if high_open else "<= ") + f"{high:g}"
    else:
        want = ""
    what = f"{'an integer' if kind is int else 'a finite number'}{' ' + want if want else ''}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        bad = not math.isfinite(value)
        if low is not None:
            bad = bad or value < low or (low_open and value == low)
        if high is not None:
            bad = bad or value > high or (high_open and value == high)
        if bad:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = number(int, low=0, low_open=True)
nonnegative_int = number(int, low=0)
positive_float = number(float, low=0, low_open=True)
seed = number(int, low=0, high=MAX_SEED)


def sizes(text: str) -> list[int]:
    """argparse type for ``--hidden 100,100``: positive ints separated by commas."""
    try:
        dims = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 100,100; got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 100,100; got {text!r}")
    return dims


def output_file(flag: str, path: str | None, suffixes: Sequence[str] = ()) -> None:
    """Raise ``UsageError`` unless ``path`` (if given) can be written as a file."""
    problem = paths.file_problem(flag, path, suffixes)
    if problem:
        raise UsageError(problem)


def output_dir(flag: str, path: str | None) -> None:
    """Raise ``UsageError`` unless ``path`` (if given) is, or can be made, a writable folder."""
    problem = paths.dir_problem(flag, path)
    if problem:
        raise UsageError(problem)
