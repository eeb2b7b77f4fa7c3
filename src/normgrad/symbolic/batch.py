"""Batch norm, symbolically: the forward pass and the three backward routes of norms.batch.

Each route below repeats its NumPy function in ``normgrad.norms.batch`` statement by
statement (same node names, same order), on object arrays of SymPy expressions, with
the float constants written as exact rationals (0.5 -> 1/2, -1.5 -> -3/2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.symbolic import core
from normgrad.symbolic.core import Grads, sp
from normgrad.symbolic.model import Problem, first_group, make_symbols


class Cache:
    """Symbolic twin of ``BatchNormCache`` (train mode)."""

    def __init__(
        self,
        x: np.ndarray,
        xhat: np.ndarray,
        mu: np.ndarray,
        var: np.ndarray,
        eps: Any,
        gamma: np.ndarray,
    ) -> None:
        self.x, self.xhat, self.mu, self.var, self.eps, self.gamma = x, xhat, mu, var, eps, gamma


def forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: Any) -> tuple:
    """Mirror of ``batchnorm_forward`` in train mode: (out, cache)."""
    mu = x.mean(axis=0)  # (D,)
    xmu = x - mu  # (N, D)
    var = np.mean(xmu * xmu, axis=0)  # (D,) two-pass variance
    inv_std = 1 / core.sqrt(var + eps)  # (D,)
    xhat = xmu * inv_std  # (N, D)
    out = gamma * xhat + beta  # (N, D)
    return out, Cache(x, xhat, mu, var, eps, gamma)


def _reduce_dgamma_dbeta(dout: np.ndarray, xhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = np.sum(dout * xhat, axis=0)  # (D,)
    return dgamma, dbeta


def backward_graph(dout: np.ndarray, c: Cache) -> Grads:
    """Mirror of ``batchnorm_backward``: the staged computation graph, node by node."""
    x, xhat, mu, var, eps, gamma = c.x, c.xhat, c.mu, c.var, c.eps, c.gamma
    N = x.shape[0]
    xmu = x - mu  # (N, D)
    sqrtvar = core.sqrt(var + eps)  # (D,)
    ivar = 1 / sqrtvar  # (D,)
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, xhat)
    dxhat = dout * gamma  # (N, D)
    divar = np.sum(dxhat * xmu, axis=0)  # (D,)
    dxmu1 = dxhat * ivar  # (N, D)
    dsqrtvar = -divar / sqrtvar**2  # (D,)
    dvar = core.HALF * dsqrtvar / sqrtvar  # (D,)
    dsq = np.broadcast_to(dvar / N, x.shape)  # (N, D)
    dxmu2 = 2 * xmu * dsq  # (N, D)
    dxmu = dxmu1 + dxmu2  # (N, D)
    dx1 = dxmu  # (N, D)
    dmu = -np.sum(dxmu, axis=0)  # (D,)
    dx2 = np.broadcast_to(dmu / N, x.shape)  # (N, D)
    dx = dx1 + dx2  # (N, D)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def backward_paper(dout: np.ndarray, c: Cache) -> Grads:
    """Mirror of ``batchnorm_backward_paper``: the paper's equations, unsimplified."""
    x, xhat, mu, var, eps, gamma = c.x, c.xhat, c.mu, c.var, c.eps, c.gamma
    N = x.shape[0]
    xmu = x - mu  # (N, D)
    dxhat = dout * gamma  # (N, D)
    dvar = np.sum(dxhat * xmu, axis=0) * -core.HALF * (var + eps) ** sp.Rational(-3, 2)  # (D,)
    dmu = (
        np.sum(dxhat * (-1 / core.sqrt(var + eps)), axis=0) + dvar * np.sum(-2 * xmu, axis=0) / N
    )  # (D,)
    dx = dxhat / core.sqrt(var + eps) + dvar * 2 * xmu / N + dmu / N  # (N, D)
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, xhat)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def backward_alt(dout: np.ndarray, c: Cache) -> Grads:
    """Mirror of ``batchnorm_backward_alt``: the simplified closed form."""
    N = c.x.shape[0]
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, c.xhat)
    scale = c.gamma / core.sqrt(c.var + c.eps)  # (D,)
    dx = c.xhat * (dgamma / N)  # (N, D)
    dx = dx + dbeta / N  # (N, D)
    dx = dout - dx  # (N, D)
    dx = dx * scale  # (N, D)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


# Route names as in ``normgrad.norms.batch.ROUTES``.
ROUTES = {"graph": backward_graph, "paper": backward_paper, "alt": backward_alt}


def build(N: int = 3, D: int = 2) -> Problem:
    """Batch norm on x: (N, D) with every route written out symbolically."""
    core.check_size("batch", (N, D), N)
    x, gamma, beta, dout, eps = make_symbols((N, D), (D,))
    y, cache = forward(x, gamma, beta, eps)
    p = Problem(
        "batch",
        (N, D),
        {"x": x, "gamma": gamma, "beta": beta},
        dout,
        eps,
        y,
        core.radicals_of(cache.var + eps),
        first_group(x, cache.mu[None], cache.var[None], (0,)),
        reduction=("per feature d, over the batch axis", "N"),
        param_form=True,
        cache=cache,
    )  # the cache: for the planted formulas below and the seed
    p.routes = {name: fn(dout, cache) for name, fn in ROUTES.items()}
    return p


def build_spatial(N: int = 1, C: int = 2, H: int = 1, W: int = 3) -> Problem:
    """Mirror of ``norms.spatial``: batch norm on the (N*H*W, C) pixel rows of x: (N, C, H, W).

    The same transpose and reshape as the NumPy module, then batch norm's forward and
    its ``alt`` route (the one spatial batch norm calls), folded back.
    """
    core.check_size("spatial", (N, C, H, W), N * H * W)
    x, gamma, beta, dout, eps = make_symbols((N, C, H, W), (C,))

    def rows(a: np.ndarray) -> np.ndarray:  # (N, C, H, W) -> (N*H*W, C)
        return a.transpose(0, 2, 3, 1).reshape(-1, C)

    def fold(a: np.ndarray) -> np.ndarray:  # (N*H*W, C) -> (N, C, H, W)
        return a.reshape(N, H, W, C).transpose(0, 3, 1, 2)

    y_rows, cache = forward(rows(x), gamma, beta, eps)
    p = Problem(
        "spatial",
        (N, C, H, W),
        {"x": x, "gamma": gamma, "beta": beta},
        dout,
        eps,
        fold(y_rows),
        core.radicals_of(cache.var + eps),
        first_group(rows(x), cache.mu[None], cache.var[None], (0,)),
        reduction=("per channel c, over (N, H, W)", "N*H*W"),
        param_form=True,
    )
    g = backward_alt(rows(dout), cache)
    p.routes = {"alt": {"dx": fold(g["dx"]), "dgamma": g["dgamma"], "dbeta": g["dbeta"]}}
    return p


def planted(p: Problem, kind: str) -> Grads:
    """A deliberately wrong closed form, for showing that the checker refutes it.

    ``kind``: ``"drop_1/N"`` (dx = scale * (dout - (dbeta + xhat * dgamma)), no 1/N) or
    ``"x_for_xhat"`` (dx = scale * (dout - (dbeta + x * dgamma) / N)).
    """
    c: Cache = p.cache
    dout, N = p.dout, c.x.shape[0]
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, c.xhat)
    scale = c.gamma / core.sqrt(c.var + c.eps)  # (D,)
    if kind == "drop_1/N":
        dx = scale * (dout - (dbeta + c.xhat * dgamma))
    elif kind == "x_for_xhat":
        dx = scale * (dout - (dbeta + c.x * dgamma) / N)
    else:
        raise ValueError(f"unknown planted error {kind!r}; use 'drop_1/N' or 'x_for_xhat'.")
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}
