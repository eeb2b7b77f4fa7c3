"""Tie the proofs to the code: the library's NumPy routes against the exact gradient.

The exact gradient of each ``Problem`` is lambdified to NumPy and evaluated at random
float64 points; the library's forward and backward run on the same numbers. A route
whose NumPy code drifts from the formula proved for it fails here even though its
symbolic twin still proves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad.gradcheck.numerical import rel_error
from normgrad.symbolic import registry
from normgrad.symbolic.core import sp
from normgrad.symbolic.model import Problem

#: The tie passes below this relative error (cs231n's elementwise rel_error), float64.
TIE_TOL = 1e-12

Numeric = dict[str, np.ndarray]


def _library_routes(p: Problem, vals: Numeric, eps: float) -> dict[str, Numeric]:
    """Run the library's forward and every reference backward route of ``p.layer``.

    The layer's spec (``registry.spec_of``) says how to call it: ``NormSpec.call`` binds
    eps and the problem's options (group norm's G); each route's gradients are named
    ``d<input>`` in the order of ``p.params``.
    """
    spec = registry.spec_of(p.layer)
    names = [f"d{k}" for k in p.params]
    inputs = [vals[k] for k in p.params]
    out = {}
    for route_name, route in spec.routes.items():
        _, cache = spec.call(route, eps=eps, **p.options)(*inputs)
        grads = route.backward(vals["dout"], cache)
        out[route_name] = dict(zip(names, grads, strict=True))
    return out


def exact_function(p: Problem) -> Callable[..., Numeric]:
    """The exact gradient as a NumPy function of the values of ``p.symbols()``."""
    keys = list(p.exact)
    flat = [list(p.exact[k].ravel()) for k in keys]
    f = sp.lambdify(p.symbols(), flat, modules="numpy", cse=True)

    def call(*args: float) -> Numeric:
        out = f(*args)
        return {
            k: np.asarray(o, dtype=np.float64).reshape(p.exact[k].shape)
            for k, o in zip(keys, out, strict=True)
        }

    return call


def random_point(p: Problem, rng: np.random.Generator) -> tuple[Numeric, float]:
    """Random float64 values for every input, the upstream gradient, and eps in [0.01, 1]."""
    vals = {k: rng.standard_normal(a.shape) for k, a in p.params.items()}
    vals["dout"] = rng.standard_normal(p.dout.shape)
    return vals, float(rng.uniform(0.01, 1.0))


def route_mismatch(p: Problem, errors: dict[str, float]) -> tuple[list[str], list[str]]:
    """(symbolic routes with no library route, library routes with no symbolic twin).

    ``errors`` is ``tie(p)``, keyed by the library's route names; both lists must be
    empty for every proof to be tied to the code.
    """
    return sorted(set(p.routes) - set(errors)), sorted(set(errors) - set(p.routes))


def tie(p: Problem, points: int = 3, seed: int = 0) -> dict[str, float]:
    """Worst rel error of each library route against the exact gradient, over ``points``.

    Keyed by the library's own route names (``NormSpec.routes``); ``route_mismatch``
    compares them with ``p.routes``.
    """
    rng = np.random.default_rng(seed)
    exact = exact_function(p)
    worst: dict[str, float] = {}
    for _ in range(points):
        vals, eps = random_point(p, rng)
        args: list[Any] = [
            *(v for k in p.params for v in vals[k].ravel()),
            *vals["dout"].ravel(),
            eps,
        ]
        want = exact(*args)
        for route, got in _library_routes(p, vals, eps).items():
            err = max(
                rel_error(np.asarray(got[k], dtype=np.float64).reshape(want[k].shape), want[k])
                for k in want
            )
            worst[route] = max(worst.get(route, 0.0), err)
    return worst
