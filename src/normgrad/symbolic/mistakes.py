"""Exact refutations of the catalog's mistakes that the formula language cannot state.

The grader's catalog (``normgrad.tools.grade.catalog``) states most mistakes as formulas,
which ``check`` refutes. The rest reduce over the wrong axis, leave a sum out, mix the
groups of layer norm, miscount spatial batch norm's values, or update the running
statistics wrongly: a claim about a whole (N, D) array, not one group. Each is written
here on the library's own symbolic problem (``batch.build``, the layer and spatial
problems), as the student would write it, and compared with the exact gradient by
``core.compare``: every one is refuted with an exact counterexample. Square shapes
(N = D) let a sum over the wrong axis have the right shape, so the verdict is a
difference in value, not just in shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from normgrad.symbolic import batch, core, registry
from normgrad.symbolic.core import Verdict, sp


def _batch_grads(kind: str) -> Verdict:
    p = batch.build(3, 3)
    c: batch.Cache = p.cache
    good = dict(p.routes["alt"])
    wrong = {
        "dgamma_wrong_axis": ("dgamma", np.sum(p.dout * c.xhat, axis=1)),
        "dgamma_not_summed": ("dgamma", p.dout * c.xhat),
        "dbeta_wrong_axis": ("dbeta", np.sum(p.dout, axis=1)),
        "dbeta_not_summed": ("dbeta", p.dout),
    }[kind]
    good[wrong[0]] = wrong[1]
    return p.check(kind, good)


def _layer(kind: str) -> Verdict:
    p = registry.build("layer", N=2, D=3)
    x, g, dout, eps = p.params["x"], p.params["gamma"], p.dout, p.eps
    mu = x.mean(axis=1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=1, keepdims=True)
    std = core.sqrt(var + eps)
    xhat = (x - mu) / std
    dxhat = dout * g
    if kind == "layer_batch_closed_form":
        dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
        dx = g / std * (dout - (dbeta + xhat * dgamma) / 3)
    else:  # layer_batch_axis: the means over the batch axis
        dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return p.check(kind, {**p.routes["closed"], "dx": dx})


def _spatial(kind: str) -> Verdict:
    p = batch.build_spatial(N=1, C=2, H=1, W=3)
    x, g, dout, eps = p.params["x"], p.params["gamma"], p.dout, p.eps
    rows = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, 2)  # noqa: E731
    xr, dr = rows(x), rows(dout)
    mu = xr.mean(axis=0)
    var = np.mean((xr - mu) ** 2, axis=0)
    std = core.sqrt(var + eps)
    xhat = (xr - mu) / std
    dbeta, dgamma = dr.sum(axis=0), (dr * xhat).sum(axis=0)
    dx = g / std * (dr - (dbeta + xhat * dgamma) / 1)  # N = 1 where N*H*W = 3 belongs
    folded = dx.reshape(1, 1, 3, 2).transpose(0, 3, 1, 2)
    return p.check(kind, {**p.routes["alt"], "dx": folded})


def _running(kind: str) -> Verdict:
    """The running update on one feature of x: (3, 1), against the course's rule."""
    p = batch.build(3, 1)
    c: batch.Cache = p.cache
    m = sp.Rational(9, 10)
    old = sp.Symbol("running", real=True)
    stat = c.mu[0] if kind == "running_momentum_swapped" else c.var[0]
    right = m * old + (1 - m) * stat
    if kind == "running_momentum_swapped":
        wrong = (1 - m) * old + m * stat
    else:
        wrong = m * old + (1 - m) * stat * sp.Rational(3, 2)  # N/(N-1) at N = 3
    vec = lambda e: np.array([e], dtype=object)  # noqa: E731
    return core.compare(kind, {"value": vec(wrong)}, {"value": vec(right)}, p.eps, p.radicals)


#: catalog key -> the refutation of that mistake (keys without a formula in the catalog).
REFUTATIONS: dict[str, Callable[[], Verdict]] = {
    "dgamma_wrong_axis": functools.partial(_batch_grads, "dgamma_wrong_axis"),
    "dgamma_not_summed": functools.partial(_batch_grads, "dgamma_not_summed"),
    "dbeta_wrong_axis": functools.partial(_batch_grads, "dbeta_wrong_axis"),
    "dbeta_not_summed": functools.partial(_batch_grads, "dbeta_not_summed"),
    "layer_batch_closed_form": functools.partial(_layer, "layer_batch_closed_form"),
    "layer_batch_axis": functools.partial(_layer, "layer_batch_axis"),
    "spatial_count_batch_only": functools.partial(_spatial, "spatial_count_batch_only"),
    "running_momentum_swapped": functools.partial(_running, "running_momentum_swapped"),
    "running_var_unbiased": functools.partial(_running, "running_var_unbiased"),
}


def refute(key: str) -> Verdict:
    """The exact verdict on catalog mistake ``key`` (which has no formula).

    Raises:
        KeyError: ``key`` has no refutation here (it has a formula: use ``check``).
    """
    return REFUTATIONS[key]()
