"""Numerical gradient checking: the cs231n API, and ``check_layer`` for whole layers.

The course functions keep their signatures and behaviour: centred differences,
perturbing ``x`` in place and restoring it after every evaluation.

``check_layer`` goes further: it takes a layer's forward and backward functions, copies
the inputs to float64, draws a random upstream gradient itself (never ones: for batch
norm a ones upstream gradient makes the true dx exactly zero and hides every bug),
differentiates L = sum(dout * forward(...)) numerically with a fourth-order stencil, and
reports the relative error of every gradient.

Its relative error is normwise, ||a - n||_2 / (||a||_2 + ||n||_2): the course's
elementwise ``rel_error`` divides by |a_i| + |n_i|, which blows up on components that
are near zero, and batch norm's dx has many (its components sum to zero per feature).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


_DOUT_STREAM = 0x646F7574  # "dout": the spawn key of the upstream gradient's random stream


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
    """Normwise relative error ||a - n||_2 / max(||a||_2 + ||n||_2, 1e-300); 0 when both are 0."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def _differences(f: Callable[[np.ndarray], Any], x: np.ndarray, ix: tuple, h: float,
                 order: int):
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


@dataclass(frozen=True)
class GradientCheck:
    """One gradient's comparison with finite differences."""

    name: str  # "dx", "dgamma", ...
    rel_error: float  # normwise: ||analytic - numerical|| / (||analytic|| + ||numerical||)
    abs_error: float  # max_i |analytic_i - numerical_i|
    passed: bool


@dataclass(frozen=True)
class LayerCheck:
    """Every gradient of one layer, checked at one point."""

    grads: tuple[GradientCheck, ...]
    tol: float

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.grads)

    @property
    def max_rel_error(self) -> float:
        return max((g.rel_error for g in self.grads), default=0.0)

    def __getitem__(self, name: str) -> GradientCheck:
        for g in self.grads:
            if g.name == name:
                return g
        raise KeyError(f"no gradient named {name!r}; have {[g.name for g in self.grads]}")


def check_layer(
    forward: Callable[..., tuple[np.ndarray, Any]],
    backward: Callable[[np.ndarray, Any], Any],
    inputs: Mapping[str, np.ndarray],
    *,
    seed: int = 0,
    h: float = 1e-3,
    order: int = 4,
    tol: float = 1e-8,
) -> LayerCheck:
    """Check every gradient of a layer against finite differences.

    Args:
        forward: called as ``forward(*inputs.values())``; returns ``(out, cache)``.
            Bind non-differentiable arguments (param dicts) with a lambda.
        backward: called as ``backward(dout, cache)``; returns one gradient per input,
            in the order of ``inputs`` (a bare array when there is one input).
        inputs: name -> array. Copied to float64; the caller's arrays are never touched.
        seed: seeds the random upstream gradient dout ~ N(0, 1), out's shape, from a
            stream of its own, so inputs drawn with the same seed stay independent of it.
        h: finite-difference step, relative to each input's spread: the step for an
            input a is h * std(a) (h when a is constant, e.g. beta = zeros), so inputs
            like 5 * randn + 12 and weights of scale 1e-3 both get a step that suits the
            curvature of the layer around them.
        order: 2 (the course's centred difference) or 4 (fourth-order stencil, the
            default: at h = 1e-3 its truncation error is ~h^4 and rounding ~1e-16 / h).
        tol: a gradient passes when its rel_error is below this.

    Returns:
        A ``LayerCheck`` with one ``GradientCheck`` per input, named ``d<name>``.
    """
    if order not in _STENCILS:
        raise ValueError(f"order must be one of {sorted(_STENCILS)}; got {order!r}.")
    if not inputs:
        raise ValueError("inputs must name at least one array to differentiate.")
    names = list(inputs)
    arrays = []
    for name in names:
        a = inputs[name]
        if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"inputs[{name!r}] must be a floating numpy array; got {a!r:.60}.")
        arrays.append(np.array(a, dtype=np.float64, copy=True))

    out, cache = forward(*arrays)
    # A stream of its own: seeded like the inputs, dout would equal them (for batch norm,
    # dout = (x - 12) / 5 makes the true dx of order eps, and the check would prove nothing).
    dout_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DOUT_STREAM,)))
    dout = dout_rng.standard_normal(np.shape(out))
    analytic = backward(dout, cache)
    if len(names) == 1 and isinstance(analytic, np.ndarray):
        analytic = (analytic,)
    if len(analytic) != len(names):
        raise ValueError(
            f"backward returned {len(analytic)} gradients for {len(names)} inputs {names}; "
            "it must return one per input, in order."
        )

    results = []
    for i, name in enumerate(names):
        def loss(a_i: np.ndarray, i: int = i) -> float:
            args = list(arrays)
            args[i] = a_i
            return float(np.sum(forward(*args)[0] * dout))

        target = arrays[i]
        spread = float(np.std(target)) if target.size > 1 else 0.0
        step = h * (spread if spread > 0 else 1.0)
        numerical = np.zeros_like(target)
        for ix in np.ndindex(*target.shape):
            numerical[ix] = _partial(loss, target, ix, step, order)
        a = np.asarray(analytic[i], dtype=np.float64)
        if a.shape != target.shape:
            raise ValueError(
                f"backward's d{name} has shape {a.shape}; expected {target.shape}, "
                f"the shape of {name}."
            )
        err = norm_rel_error(a, numerical)
        results.append(
            GradientCheck(
                name=f"d{name}",
                rel_error=err,
                abs_error=float(np.max(np.abs(a - numerical), initial=0.0)),
                passed=bool(err < tol),
            )
        )
    return LayerCheck(tuple(results), tol)
