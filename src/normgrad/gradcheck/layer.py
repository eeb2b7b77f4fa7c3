"""``check_layer``: check every gradient of a layer against finite differences.

It takes a layer's forward and backward functions, copies the inputs to float64, draws
a random upstream gradient itself (never ones: for batch norm a ones upstream gradient
makes the true dx exactly zero and hides every bug), differentiates
L = sum(dout * forward(...)) numerically with a fourth-order stencil, and reports the
normwise relative error (``numerical.norm_rel_error``) of every gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.gradcheck import inputs as arg
from normgrad.gradcheck.numerical import _STENCILS, _partial, norm_rel_error

_DOUT_STREAM = 0x646F7574  # "dout": the spawn key of the upstream gradient's random stream


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
        inputs: name -> array of real numbers, finite (floating or integer: each is
            copied to float64, so the caller's arrays are never touched).
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

    Raises:
        TypeError: forward or backward not callable; inputs not a dict of real numpy
            arrays (bool, complex and object arrays are refused); seed or order not an
            int; h or tol not a number; forward not returning (out, cache); backward not
            returning one real array per input.
        ValueError: seed < 0; order not 2 or 4; h or tol <= 0 or non-finite; no
            inputs; an input or forward's out with NaN or inf; a gradient of the wrong
            shape; a step lost to rounding at some input.
    """
    arg.callable_arg(forward, "forward", "lambda x, gamma, beta: batchnorm_forward(...)")
    arg.callable_arg(backward, "backward", "batchnorm_backward")
    seed = v.integer(seed, "seed", example=0, low=0)
    h = arg.step(h, example=1e-3)
    order = v.integer(order, "order", example=4)
    v.choice(order, "order", sorted(_STENCILS))
    tol = v.real(tol, "tol", example=1e-8, low=0.0, low_open=True)
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"inputs must be a dict mapping each input's name to its array; got "
            f"{type(inputs).__name__}. Pass e.g. {{'x': x, 'gamma': gamma, 'beta': beta}}."
        )
    if not inputs:
        raise ValueError("inputs must name at least one array to differentiate.")
    names = list(inputs)
    arrays = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"inputs' keys must be the inputs' names (str); got {name!r}. They name "
                "the gradients in the report (d<name>)."
            )
        a = inputs[name]
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf":
            desc = f"dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(
                f"inputs[{name!r}] must be a numpy array of real numbers (floating or "
                f"integer; both are copied to float64); got {desc}. Convert it with "
                f"np.asarray(..., dtype=np.float64)."
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"inputs[{name!r}] holds NaN or inf: there is no derivative to check there. "
                "Pass finite inputs."
            )
        arrays.append(np.array(a, dtype=np.float64, copy=True))

    out, cache = _forward(forward, arrays)
    # A stream of its own: seeded like the inputs, dout would equal them (for batch norm,
    # dout = (x - 12) / 5 makes the true dx of order eps, and the check would prove nothing).
    dout_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DOUT_STREAM,)))
    dout = dout_rng.standard_normal(np.shape(out))
    analytic = backward(dout, cache)
    if len(names) == 1 and isinstance(analytic, np.ndarray):
        analytic = (analytic,)
    if not isinstance(analytic, (tuple, list)):
        raise TypeError(
            f"backward must return one gradient per input {names}, as a tuple; got "
            f"{type(analytic).__name__}."
        )
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
            return float(np.sum(_forward(forward, args)[0] * dout))

        target = arrays[i]
        spread = float(np.std(target)) if target.size > 1 else 0.0
        step = h * (spread if spread > 0 else 1.0)
        numerical = np.zeros_like(target)
        for ix in np.ndindex(*target.shape):
            numerical[ix] = _partial(loss, target, ix, step, order, name=name)
        a = np.asarray(analytic[i])
        if a.dtype.kind not in "iuf":
            raise TypeError(
                f"backward's d{name} must be an array of real numbers; got "
                f"{analytic[i]!r:.60} (dtype {a.dtype})."
            )
        a = a.astype(np.float64)
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


def _forward(forward: Callable[..., Any], arrays: list[np.ndarray]) -> tuple[np.ndarray, Any]:
    """``forward(*arrays)``, checked to be ``(out, cache)`` with out finite real numbers."""
    result = forward(*arrays)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(
            f"forward must return (out, cache), as the course's layers do; got "
            f"{type(result).__name__}. For a function without a cache bind it as "
            "lambda *a: (f(*a), None)."
        )
    out = np.asarray(result[0])
    if out.dtype.kind not in "iuf":
        raise TypeError(f"forward's out must be an array of real numbers; got dtype {out.dtype}.")
    if not np.all(np.isfinite(out)):
        raise ValueError(
            "forward's out holds NaN or inf at the inputs (or a step away from them): "
            "finite differences need a point where the layer is finite."
        )
    return out, result[1]
