"""A symbolic problem (one layer at one small shape), and the symbolic twin of norms.core.

``standardize`` and ``standardize_backward`` below repeat ``normgrad.norms.core`` line by
line on object arrays of SymPy expressions, so the formula proved is the formula the
NumPy code runs. Layer, group, instance and RMS norm all reach their backward pass
through those two functions, exactly as their NumPy modules do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad.symbolic import core
from normgrad.symbolic.core import Grads, Radical, Verdict, sp


@dataclass
class Group:
    """The first normalization group, for the printed derivation."""

    xs: list[Any]  # its M input symbols
    mu: Any  # its mean (0 when uncentred)
    var: Any  # its variance (mean square when uncentred)


@dataclass
class Problem:
    """One normalization at one shape: symbols, forward, exact gradient, routes."""

    layer: str
    shape: tuple[int, ...]
    params: dict[str, np.ndarray]  # "x", "gamma", and "beta" when the layer has one
    dout: np.ndarray  # upstream gradient symbols, y's shape
    eps: Any  # positive symbol
    y: np.ndarray  # forward output
    radicals: list[Radical]
    group: Group
    center: bool = True
    routes: dict[str, Grads] = field(default_factory=dict)
    exact: Grads = field(default_factory=dict)
    options: dict[str, int] = field(default_factory=dict)  # layer options, e.g. {"G": 2}
    reduction: tuple[str, str] = ("", "")  # (what the statistics run over, what M is)
    param_form: bool = False  # print the closed form in dgamma and dbeta (batch norm)
    cache: Any = None  # batch norm's symbolic forward cache (``batch.Cache``), else None

    def __post_init__(self) -> None:
        if not self.exact:
            self.exact = core.exact_gradients(
                self.y, self.dout, {f"d{k}": v for k, v in self.params.items()}
            )

    def prove(self, route: str) -> Verdict:
        """Prove that one backward route equals the exact gradient."""
        return core.compare(
            f"{self.layer} {route}", self.routes[route], self.exact, self.eps, self.radicals
        )

    def check(self, name: str, candidate: Grads) -> Verdict:
        """Check any candidate gradients (e.g. a planted wrong formula) against the exact ones."""
        return core.compare(name, candidate, self.exact, self.eps, self.radicals)

    def symbols(self) -> list[Any]:
        """Every free symbol, in the order lambdified functions take them."""
        arrays = [*self.params.values(), self.dout]
        return [s for a in arrays for s in a.ravel()] + [self.eps]

    def describe(self) -> str:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in self.params.items())
        extra = "".join(f", {k} = {v}" for k, v in self.options.items())
        return f"{shapes}{extra}, eps > 0 symbolic"


def make_symbols(shape: Sequence[int], pshape: Sequence[int], beta: bool = True) -> tuple:
    """x, gamma, beta (or None), dout and eps symbols for an input ``shape``."""
    x = core.symbol_array("x", shape)
    gamma = core.symbol_array("gamma", pshape)
    b = core.symbol_array("beta", pshape) if beta else None
    dout = core.symbol_array("dout", shape)
    eps = sp.Symbol("epsilon", positive=True)
    return x, gamma, b, dout, eps


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: Any, center: bool = True) -> tuple:
    """Mirror of ``norms.core.standardize``: (xhat, mu, var, inv_std), object arrays."""
    if center:
        mu = x.mean(axis=axes, keepdims=True)  # 1 along R
        xmu = x - mu  # x's shape
    else:
        mu = np.zeros([1 if a in axes else s for a, s in enumerate(x.shape)], dtype=object)
        mu[...] = sp.Integer(0)
        xmu = x  # x's shape
    var = np.mean(xmu * xmu, axis=axes, keepdims=True)  # 1 along R
    inv_std = 1 / core.sqrt(var + eps)  # 1 along R
    xhat = xmu * inv_std  # x's shape
    return xhat, mu, var, inv_std


def standardize_backward(
    dxhat: np.ndarray,
    xhat: np.ndarray,
    inv_std: np.ndarray,
    axes: tuple[int, ...],
    center: bool = True,
) -> np.ndarray:
    """Mirror of ``norms.core.standardize_backward`` (the closed form), object arrays."""
    proj = np.mean(dxhat * xhat, axis=axes, keepdims=True)  # mean_R(dxhat * xhat)
    dx = dxhat - xhat * proj  # x's shape
    if center:
        dx = dx - np.mean(dxhat, axis=axes, keepdims=True)  # - mean_R(dxhat)
    return dx * inv_std  # x's shape


def sum_to_shape(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Mirror of ``norms.core.sum_to_shape``: sum over the axes ``shape`` was broadcast on."""
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1
    )
    return a.sum(axis=axes).reshape(shape) if axes else a.reshape(shape)


def first_group(x: np.ndarray, mu: np.ndarray, var: np.ndarray, axes: tuple[int, ...]) -> Group:
    """The symbols and statistics of the group at index 0 along every kept axis."""
    index = tuple(slice(None) if a in axes else 0 for a in range(x.ndim))
    xs = list(np.asarray(x[index]).ravel())
    return Group(xs, mu.ravel()[0], var.ravel()[0])


def affine_norm_backward(
    dout: np.ndarray,
    xhat: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray,
    axes: tuple[int, ...],
    param_shape: Sequence[int],
    shift: bool = True,
    center: bool = True,
) -> Grads:
    """Mirror of ``norms.core.affine_norm_backward``: dx, dgamma (and dbeta), object arrays."""
    grads = {}
    if shift:
        grads["dbeta"] = sum_to_shape(dout, param_shape)  # param_shape
    grads["dgamma"] = sum_to_shape(dout * xhat, param_shape)  # param_shape
    grads["dx"] = standardize_backward(dout * gamma, xhat, inv_std, axes, center)  # x's shape
    return grads


def standardize_problem(
    layer: str,
    shape: tuple[int, ...],
    param_shape: tuple[int, ...],
    axes: tuple[int, ...],
    reduction: tuple[str, str],
    *,
    center: bool = True,
    shift: bool = True,
    view: tuple[int, ...] | None = None,
    param_view: tuple[int, ...] | None = None,
    options: dict[str, int] | None = None,
) -> Problem:
    """The problem of a layer built on ``norms.core``: y = gamma * standardize(x) + beta.

    Mirrors the NumPy modules of layer, group, instance and RMS norm: x (``shape``) is
    seen as ``view`` (group norm's (N, G, C/G, H, W); x itself when None), standardized
    over ``axes`` of that view, scaled by gamma (``param_shape``, seen as ``param_view``
    against the view) and shifted by beta; the backward is ``affine_norm_backward`` in
    the view, folded back to x's shape and the parameters' shapes. Its one route is
    ``closed``, as each of those modules has one backward function.
    """
    xv_shape = view or shape
    pv_shape = param_view or param_shape
    core.check_size(layer, shape, int(np.prod([xv_shape[a] for a in axes])))
    x, gamma, beta, dout, eps = make_symbols(shape, param_shape, beta=shift)
    xv = x.reshape(xv_shape)
    gv = gamma.reshape(pv_shape)
    xhat, mu, var, inv_std = standardize(xv, axes, eps, center)  # view's shape
    yv = gv * xhat + (beta.reshape(pv_shape) if shift else 0)
    params = {"x": x, "gamma": gamma, **({"beta": beta} if shift else {})}
    p = Problem(
        layer,
        shape,
        params,
        dout,
        eps,
        yv.reshape(shape),
        core.radicals_of(var + eps),
        first_group(xv, mu, var, axes),
        center=center,
        options=dict(options or {}),
        reduction=reduction,
    )
    grads = affine_norm_backward(
        dout.reshape(xv_shape), xhat, inv_std, gv, axes, pv_shape, shift, center
    )
    folded = {"dx": shape, "dgamma": param_shape, "dbeta": param_shape}
    p.routes = {"closed": {k: g.reshape(folded[k]) for k, g in grads.items()}}
    return p
