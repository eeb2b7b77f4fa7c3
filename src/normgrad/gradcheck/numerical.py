"""Numerical gradients: the cs231n API, and the stencils ``check_layer`` shares.

The course functions keep their signatures and behaviour: centred differences,
perturbing ``x`` in place and restoring it after every evaluation, with the course's
arithmetic, so printed errors match its notebooks to the digit. On top of the course:

- every argument is checked before anything is evaluated (``gradcheck.inputs``): ``f``
  callable, ``x`` a numpy array of real numbers, ``h`` a finite number > 0, ``df`` finite
  and, once f has run, of f's output shape; a scalar ``f`` must return one number;
- an integer ``x`` is copied to float64 and the copy is perturbed (in place, an integer
  array would round every ``x + h`` back to ``x``): the caller's integer array is never
  written. A closure that ignores its argument and reads the caller's integer array
  sees no perturbation: cast that array to float first;
- ``x`` is restored in a ``finally``: element by element as the course does, and as a
  whole at the end, so it is bit for bit what it was even when ``f`` raises midway;
- a step lost to rounding (``x + h == x`` in x's dtype: float16, or float32 far from 0)
  raises ``ValueError`` instead of returning a zero partial derivative.

``rel_error`` is the course's elementwise relative error; ``norm_rel_error`` is the
normwise one ``check_layer`` reports, ||a - n||_2 / (||a||_2 + ||n||_2): the elementwise
error divides by |a_i| + |n_i|, which blows up on components that are near zero, and
batch norm's dx has many (its components sum to zero per feature).
"""

from __future__ import annotations

from collections.abc import Callable
from random import randrange
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.validate import flag
from normgrad.gradcheck import inputs as arg

# Central-difference stencils: (offset k in units of h, integer weight w) and a
# denominator c; the derivative is sum(w * f(x + k h)) / (c h). Order 2 is the course's,
# (f(x + h) - f(x - h)) / (2 h); order 4 cuts truncation error from O(h^2) to O(h^4), so a
# larger h can be used and rounding error shrinks with it.
_STENCILS: dict[int, tuple[tuple[tuple[int, float], ...], float]] = {
    2: (((1, 1.0), (-1, -1.0)), 2.0),
    4: (((2, -1.0), (1, 8.0), (-1, -8.0), (-2, 1.0)), 12.0),
}


def _real_values(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array, refusing what is not real numbers (complex, strings)."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be real numbers (an array or a number); got {value!r:.60} "
            f"(dtype {a.dtype})."
        )
    return a.astype(np.float64, copy=False)


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """The course's relative error: max_i |x_i - y_i| / max(1e-8, |x_i| + |y_i|).

    x and y broadcast against each other, as in the course.

    Edge cases: empty arrays give 0.0 (no component differs). A NaN anywhere, or an inf
    (inf - inf and inf / inf are NaN), gives NaN, as ``np.max`` propagates it, so
    ``rel_error(a, b) < tol`` is False: a NaN never passes a check.

    Raises:
        TypeError: x or y is not real numbers (complex, strings, objects).
        ValueError: x and y do not broadcast together.
    """
    x = _real_values(x, "x")
    y = _real_values(y, "y")
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"rel_error needs arrays that broadcast together; got {x.shape} and {y.shape}."
        ) from None
    with np.errstate(invalid="ignore"):  # NaN and inf give NaN, as documented
        diff = np.abs(x - y)
        if diff.size == 0:
            return 0.0
        return float(np.max(diff / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def norm_rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """Normwise relative error ||a - n||_2 / (||a||_2 + ||n||_2), and 0 when both are 0.

    a and n must have the same shape (an analytic and a numerical gradient). Empty arrays
    give 0.0; a NaN or inf anywhere gives NaN, which fails every ``< tol`` comparison.
    """
    a = _real_values(a, "a")
    n = _real_values(n, "n")
    if a.shape != n.shape:
        raise ValueError(
            f"norm_rel_error compares two gradients of one shape; got {a.shape} and "
            f"{n.shape}. Pass the analytic and the numerical gradient of the same array."
        )
    with np.errstate(invalid="ignore"):
        denom = np.linalg.norm(a) + np.linalg.norm(n)
        if denom == 0:
            return 0.0
        return float(np.linalg.norm(a - n) / denom)


def _lost_step(name: str, x: np.ndarray, ix: tuple, old: Any, step: float) -> ValueError:
    return ValueError(
        f"the step h = {step:g} is lost to rounding at {name}[{ix}] = {old!r}: in "
        f"{x.dtype}, {name} + h == {name}, so the difference would be 0. Use a larger h, "
        f"or differentiate at a float64 copy ({name}.astype(np.float64))."
    )


def _differences(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    ix: tuple,
    h: float,
    order: int,
    check: Callable[[Any], Any] | None = None,
    name: str = "x",
) -> Any:
    """sum_k w_k f(x + k h e_ix), unscaled, perturbing x[ix] in place and restoring it.

    For order 2 this is exactly the course's f(x + h) - f(x - h), in f's dtype. ``check``
    validates each value of f (and may normalize it). x[ix] is restored in a ``finally``,
    also when f or ``check`` raises.
    """
    old = x[ix].copy()
    total = None
    try:
        for k, w in _STENCILS[order][0]:
            x[ix] = old + k * h
            if x[ix] == old:
                raise _lost_step(name, x, ix, old, k * h)
            value = f(x)
            if check is not None:
                value = check(value)
            term = w * np.array(value, copy=True)
            total = term if total is None else total + term
    finally:
        x[ix] = old
    return total


def _partial(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    ix: tuple,
    h: float,
    order: int,
    check: Callable[[Any], Any] | None = None,
    name: str = "x",
) -> Any:
    """d f / d x[ix] by a central stencil (x is restored afterwards)."""
    return _differences(f, x, ix, h, order, check, name) / (_STENCILS[order][1] * h)


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of a scalar function ``f`` at ``x`` (cs231n).

    As the course: f is evaluated once at x, then at x +- h e_i for every index i, and
    grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h).

    Args:
        f: takes x: (any shape) and returns one real number (a one-element array too).
        x: the point, a floating array perturbed in place and restored (an integer x is
            copied to float64 and the copy perturbed).
        verbose: print each index and its partial derivative, as the course does.
        h: the step, a finite number > 0.

    Returns:
        grad: same shape as x (float64 for an integer x, else x's dtype).

    Raises:
        TypeError: f is not callable or returns a non-number, x is not a real numpy
            array, verbose is not a bool, h is not a number.
        ValueError: f returns an array of several elements, h <= 0 or non-finite, x is
            read-only, or h is lost to rounding in x's dtype.
    """
    arg.callable_arg(f, "f", "lambda x: np.sum(x ** 2)")
    flag(verbose, "verbose")
    arg.step(h)
    work, copied = arg.point(x)
    saved = None if copied else work.copy()

    def check(value: Any) -> Any:
        return arg.scalar_output(value, "f")

    try:
        check(f(work))  # the course evaluates f at x first (and does not use the value)
        grad = np.zeros_like(work)
        for ix in np.ndindex(*work.shape):
            grad[ix] = _partial(f, work, ix, h, 2, check)
            if verbose:
                print(ix, grad[ix])
    finally:
        if saved is not None:
            np.copyto(work, saved)  # exactly as it was, whatever f did to it
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of sum(f(x) * df) with respect to x, for an array-valued f.

    Args:
        f: takes x and returns an array of df's shape.
        x: the point; perturbed in place and restored (an integer x is copied to float64).
        df: the upstream gradient: finite real numbers, f(x)'s shape.
        h: the step, a finite number > 0.

    Returns:
        grad: same shape as x (float64 for an integer x, else x's dtype).

    Raises:
        TypeError: f not callable or returning non-numbers; x or df not real arrays.
        ValueError: f(x) and df differ in shape (checked at f's first value, before any
            difference is taken), df is not finite, h <= 0, x read-only, h lost to rounding.
    """
    arg.callable_arg(f, "f", "lambda x: affine_forward(x, w, b)[0]")
    arg.step(h)
    arg.upstream(df, "df")
    work, copied = arg.point(x)
    saved = None if copied else work.copy()
    shape = tuple(df.shape)

    def check(value: Any) -> np.ndarray:
        return arg.array_output(value, "f(x)", shape)

    grad = np.zeros_like(work)
    try:
        for ix in np.ndindex(*work.shape):
            # The course's arithmetic, sum((pos - neg) * df) / (2 h), so printed errors
            # match its notebooks to the digit.
            grad[ix] = np.sum(_differences(f, work, ix, h, 2, check) * df) / (2 * h)
    finally:
        if saved is not None:
            np.copyto(work, saved)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
) -> None:
    """Compare ``analytic_grad`` with the numerical gradient at random indices (cs231n).

    Prints one line per check: numerical, analytic, relative error (0 when both are 0).
    Indices come from Python's ``random.randrange``, as in the course. x is perturbed
    and restored as in ``eval_numerical_gradient`` (an integer x is copied to float64).

    Raises:
        TypeError, ValueError: as ``eval_numerical_gradient``; also when analytic_grad is
            not a real array of x's shape, num_checks is not an int >= 0, or x is empty
            while checks are asked for.
    """
    arg.callable_arg(f, "f", "lambda W: loss(W)")
    work, copied = arg.point(x)
    arg.real_array(analytic_grad, "analytic_grad")
    v.shape(analytic_grad, "analytic_grad", work.shape, "the shape of x")
    num_checks = v.integer(num_checks, "num_checks", example=10, low=0)
    arg.step(h)
    if num_checks and work.size == 0:
        raise ValueError(
            f"x is empty (shape {tuple(work.shape)}): there is no index to check. Pass a "
            "non-empty x, or num_checks=0."
        )
    saved = None if copied else work.copy()

    def check(value: Any) -> Any:
        return arg.scalar_output(value, "f")

    try:
        for _ in range(num_checks):
            ix = tuple(randrange(m) for m in work.shape)
            numerical = float(_partial(f, work, ix, h, 2, check))
            analytic = float(analytic_grad[ix])
            denom = abs(numerical) + abs(analytic)
            err = abs(numerical - analytic) / denom if denom > 0 else 0.0
            print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {err:e}")
    finally:
        if saved is not None:
            np.copyto(work, saved)
