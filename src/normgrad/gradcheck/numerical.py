"""Numerical gradients: the cs231n API, and the stencils ``check_layer`` shares.

The course functions keep their signatures and behaviour: centred differences,
perturbing ``x`` in place and restoring it after every evaluation, with the course's
arithmetic, so printed errors match its notebooks to the digit.

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

# Central-difference stencils: (offset k in units of h, integer weight w) and a
# denominator c; the derivative is sum(w * f(x + k h)) / (c h). Order 2 is the course's,
# (f(x + h) - f(x - h)) / (2 h); order 4 cuts truncation error from O(h^2) to O(h^4), so a
# larger h can be used and rounding error shrinks with it.
_STENCILS: dict[int, tuple[tuple[tuple[int, float], ...], float]] = {
    2: (((1, 1.0), (-1, -1.0)), 2.0),
    4: (((2, -1.0), (1, 8.0), (-1, -8.0), (-2, 1.0)), 12.0),
}


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """The course's relative error: max_i |x_i - y_i| / max(1e-8, |x_i| + |y_i|).

    x and y broadcast against each other, as in the course.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    try:
        diff = np.abs(x - y)
    except ValueError:
        raise ValueError(
            f"rel_error needs arrays that broadcast together; got {x.shape} and {y.shape}."
        ) from None
    if diff.size == 0:
        return 0.0
    return float(np.max(diff / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def norm_rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """Normwise relative error ||a - n||_2 / (||a||_2 + ||n||_2), and 0 when both are 0."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def _differences(f: Callable[[np.ndarray], Any], x: np.ndarray, ix: tuple, h: float, order: int):
    """sum_k w_k f(x + k h e_ix), unscaled, perturbing x[ix] in place and restoring it.

    For order 2 this is exactly the course's f(x + h) - f(x - h), in f's dtype.
    """
    old = x[ix].copy()
    total = None
    try:
        for k, w in _STENCILS[order][0]:
            x[ix] = old + k * h
            term = w * np.array(f(x), copy=True)
            total = term if total is None else total + term
    finally:
        x[ix] = old
    return total


def _partial(f: Callable[[np.ndarray], Any], x: np.ndarray, ix: tuple, h: float, order: int):
    """d f / d x[ix] by a central stencil (x is restored afterwards)."""
    return _differences(f, x, ix, h, order) / (_STENCILS[order][1] * h)


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of a scalar function ``f`` at ``x`` (cs231n).

    Args:
        f: takes x: (any shape) and returns a float.
        x: the point; perturbed in place and restored.
        verbose: print each index and its partial derivative, as the course does.
        h: the step.

    Returns:
        grad: same shape as x.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        grad[ix] = _partial(f, x, ix, h, 2)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of sum(f(x) * df) with respect to x, for an array-valued f.

    Args:
        f: takes x and returns an array of df's shape.
        x: the point; perturbed in place and restored.
        df: the upstream gradient, f(x)'s shape.
        h: the step.

    Returns:
        grad: same shape as x.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        # The course's arithmetic, sum((pos - neg) * df) / (2 h), so printed errors match
        # its notebooks to the digit.
        grad[ix] = np.sum(_differences(f, x, ix, h, 2) * df) / (2 * h)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
) -> None:
    """Compare ``analytic_grad`` with the numerical gradient at random indices (cs231n).

    Prints one line per check: numerical, analytic, relative error.
    """
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        numerical = float(_partial(f, x, ix, h, 2))
        analytic = float(analytic_grad[ix])
        denom = abs(numerical) + abs(analytic)
        err = abs(numerical - analytic) / denom if denom > 0 else 0.0
        print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {err:e}")
