"""Proofs for every group size: each backward route written through the group's power sums.

``normgrad.symbolic.sums`` explains the method. Each twin below repeats its library route
statement by statement, as ``batch.py`` and ``model.py`` do at fixed shapes, but on ONE
normalization group of symbolic size M: a per-element quantity is an expression in the
generic element's symbols, ``A.total(...)`` is a sum over the group, and ``A.at_i(...)``
reads a per-element result at element i. The exact gradient is ``sympy.diff`` of the
group's loss with respect to x_i (and gamma, beta), written through the same sums.

What "for all M" covers, per route (``TWINS``):

- batch ``graph``, ``paper``, ``alt`` and batch renorm ``closed``: one feature column of
  N samples; the D columns never mix, so every (N, D) with N >= 2;
- spatial ``alt``: batch norm's ``alt`` on the (N*H*W, C) pixel matrix, for every
  N*H*W >= 2; the transpose and reshape into that matrix are proved at fixed shapes;
- layer, layer_nd, group, instance, RMS ``closed``: ``core.affine_norm_backward`` on one
  group of M values with a gamma (and beta) per element, which covers a gamma shared
  inside a group as a special case. The parameter gradients are proved per group (the
  group's share of dgamma and dbeta); the library sums those shares over the groups.
  The reshapes into groups are proved at fixed shapes.

Each twin is also tied to the library at sizes beyond the fixed-shape proofs (``tie``):
lambdified, evaluated on random data of M = 5 and 9, against the NumPy route.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad.norms import registry as norms_registry
from normgrad.norms import spec
from normgrad.symbolic import registry, sums
from normgrad.symbolic.core import HALF, sp
from normgrad.symbolic.sums import GroupAlgebra

Twin = dict[str, Any]  # gradient name -> expression at element i (or the group's scalar)


@dataclass
class AllSizes:
    """One layer's group for every size: the forward's quantities, exact gradient, twins."""

    layer: str
    A: GroupAlgebra
    base: Any  # the radicand var + eps, through the power sums
    exact: Twin
    routes: dict[str, Twin] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)  # renorm's r and d

    def prove(self, route: str) -> tuple[str, float, str]:
        """("proved" or "unproved", seconds, detail) for ``route`` against the exact gradient."""
        t0 = time.perf_counter()
        for key, ex in self.exact.items():
            r = sums.reduce(self.routes[route][key] - ex, self.base)
            if not r.zero:
                why = "a radical outside var + eps" if r.opaque else "a non-zero remainder"
                return "unproved", time.perf_counter() - t0, f"{key}: {why}"
        return "proved", time.perf_counter() - t0, ", ".join(self.exact)


def _forward(A: GroupAlgebra, center: bool = True) -> tuple[Any, Any, Any, Any]:
    """(mu, var, inv_std, xhat) of the group: two-pass, biased, as ``core.standardize``."""
    mu = A.mean(A.X) if center else sp.Integer(0)  # the group's scalar
    xmu = A.X - mu  # per element
    var = A.mean(xmu * xmu)  # the group's scalar
    inv_std = 1 / sp.sqrt(var + A.eps)
    return mu, var, inv_std, xmu * inv_std


def _exact(A: GroupAlgebra, y: Any, shift: bool = True) -> Twin:
    """dL/dx_i, dL/dgamma and dL/dbeta (the group's share) for L = sum over the group dy*y."""
    L = A.total(A.Y * y)
    wrt = A.params if A.shared else {"gamma": A.at["gamma"], "beta": A.at["beta"]}
    out = {"dx": sp.diff(L, A.at["x"]), "dgamma": sp.diff(L, wrt["gamma"])}
    if shift:
        out["dbeta"] = sp.diff(L, wrt["beta"])
    return out


def batch(size: str = "N") -> AllSizes:
    """Batch norm's column: the three routes of ``norms.batch``, statement by statement."""
    A = GroupAlgebra(shared=True, size=size)
    g, N, eps = A.params["gamma"], A.M, A.eps
    mu, var, _, xhat = _forward(A)
    p = AllSizes("batch", A, var + eps, _exact(A, g * xhat + A.params["beta"]))
    dbeta, dgamma = A.total(A.Y), A.total(A.Y * xhat)  # _reduce_dgamma_dbeta

    xmu = A.X - mu  # graph route
    sqrtvar = sp.sqrt(var + eps)
    ivar = 1 / sqrtvar
    dxhat = A.Y * g
    divar = A.total(dxhat * xmu)
    dxmu1 = dxhat * ivar
    dsqrtvar = -divar / sqrtvar**2
    dvar = HALF * dsqrtvar / sqrtvar
    dxmu2 = 2 * xmu * (dvar / N)
    dxmu = dxmu1 + dxmu2
    dmu = -A.total(dxmu)
    graph = A.at_i(dxmu + dmu / N)

    dvar_p = A.total(dxhat * xmu) * -HALF * (var + eps) ** sp.Rational(-3, 2)  # paper
    dmu_p = A.total(dxhat * (-1 / sp.sqrt(var + eps))) + dvar_p * A.total(-2 * xmu) / N
    paper = A.at_i(dxhat / sp.sqrt(var + eps) + dvar_p * 2 * xmu / N + dmu_p / N)

    scale = g / sp.sqrt(var + eps)  # alt route
    alt = A.at_i((A.Y - (xhat * (dgamma / N) + dbeta / N)) * scale)
    grads = {"dgamma": dgamma, "dbeta": dbeta}
    p.routes = {
        "graph": {"dx": graph, **grads},
        "paper": {"dx": paper, **grads},
        "alt": {"dx": alt, **grads},
    }
    return p


def spatial() -> AllSizes:
    p = batch(size="M")
    p.layer, p.routes = "spatial", {"alt": p.routes["alt"]}
    return p


def sync() -> AllSizes:
    """``norms.sync``: one shard of the whole batch; its backward is batch norm's closed form
    (``alt``) on the all-reduced sums, so the twin is batch norm's, under the name ``closed``."""
    p = batch(size="N")
    p.layer, p.routes = "sync", {"closed": p.routes["alt"]}
    return p


def standardize(layer: str, size: str = "M", center: bool = True, shift: bool = True) -> AllSizes:
    """``core.affine_norm_backward`` on one group, gamma (and beta) per element."""
    A = GroupAlgebra(shared=False, size=size)
    _, var, inv_std, xhat = _forward(A, center)
    y = A.gamma() * xhat + (A.beta() if shift else 0)
    p = AllSizes(layer, A, var + A.eps, _exact(A, y, shift))
    dxhat = A.Y * A.gamma()
    proj = A.mean(dxhat * xhat)  # standardize_backward
    dx = dxhat - xhat * proj
    if center:
        dx = dx - A.mean(dxhat)
    route = {"dx": A.at_i(dx * inv_std), "dgamma": A.at_i(A.Y * xhat)}
    if shift:
        route["dbeta"] = A.at["dy"]
    p.routes = {"closed": route}
    return p


def renorm() -> AllSizes:
    """``batchrenorm_backward``: batch norm's closed form, r and d constant (stop_gradient)."""
    A = GroupAlgebra(shared=True, size="N")
    g, N, eps = A.params["gamma"], A.M, A.eps
    r, d = sp.Symbol("r", positive=True), sp.Symbol("d", real=True)
    _, var, _, xbn = _forward(A)
    p = AllSizes("renorm", A, var + eps, _exact(A, g * (xbn * r + d) + A.params["beta"]))
    p.constants = {"r": r, "d": d}
    dbeta = A.total(A.Y)
    proj = A.total(A.Y * xbn)
    dgamma = r * proj + d * dbeta
    scale = g * r / sp.sqrt(var + eps)
    dx = A.at_i((A.Y - (xbn * (proj / N) + dbeta / N)) * scale)
    p.routes = {"closed": {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}}
    return p


def layer() -> AllSizes:
    """Layer norm's row of D features."""
    return standardize("layer", "D")


def layer_nd() -> AllSizes:
    """Layer norm over trailing axes: one sample's A x B values."""
    return standardize("layer_nd")


def group() -> AllSizes:
    """Group norm: one group of C/G channels x H x W."""
    return standardize("group")


def instance() -> AllSizes:
    """Instance norm: one channel's H x W."""
    return standardize("instance")


def rms() -> AllSizes:
    """RMS norm: a row of D features, uncentred, no shift."""
    return standardize("rms", "D", center=False, shift=False)


def _twins() -> dict[str, spec.AllSizes]:
    """derive layer -> its ``Symbolic.all_sizes``, from the registry (one list)."""
    found = {}
    for s in norms_registry.SPECS:
        if s.symbolic is not None and s.symbolic.all_sizes is not None:
            found[s.symbolic.name] = s.symbolic.all_sizes
    return found


#: Every layer with a proof for all sizes: the registry's ``Symbolic.all_sizes``.
TWINS: dict[str, spec.AllSizes] = _twins()


def build(layer: str) -> AllSizes | None:
    """The all-sizes problem of ``layer``, or None when it has no twin (fixed shapes only)."""
    entry = TWINS.get(layer)
    return entry.builder(layer)() if entry else None


def _library(layer: str, p: AllSizes, shape: dict[str, int], vals: dict, eps: float) -> dict:
    """The library's route outputs, flattened over the one group, and renorm's r and d."""
    spec = registry.spec_of(layer)
    dims = [shape[d] for d in spec.symbolic.dims] if spec.symbolic else []
    x = vals["x"].reshape(dims)
    pshape = TWINS[layer].param_shape(shape)
    size = int(np.prod(pshape))
    params = [vals["gamma"][:size].reshape(pshape)]
    if "dbeta" in p.exact:
        params.append(vals["beta"][:size].reshape(pshape))
    options = {k: v for k, v in shape.items() if k == "G"}
    out: dict[str, dict[str, Any]] = {}
    for name, route in spec.routes.items():
        _, cache = spec.call(route, eps=eps, **options)(x, *params)
        grads = route.backward(vals["dy"].reshape(dims), cache)
        keys = ["dx", "dgamma", "dbeta"][: len(grads)]
        out[name] = {
            k: np.asarray(g, dtype=float).ravel() for k, g in zip(keys, grads, strict=True)
        }
        if layer == "renorm":
            out[name]["r"], out[name]["d"] = float(cache.r[0]), float(cache.d[0])
    return out


def tie(p: AllSizes, sizes: tuple[int, ...] = (5, 9), seed: int = 0) -> dict[str, float]:
    """Worst normwise rel error of each twin against the library route, at sizes ``sizes``."""
    from normgrad.gradcheck.numerical import norm_rel_error

    rng = np.random.default_rng(seed)
    A = p.A
    worst: dict[str, float] = {}
    for M in sizes:
        shape = dict(TWINS[p.layer].group_shape(M))
        vals = {n: rng.standard_normal(M) for n in ("x", "dy", "gamma", "beta")}
        vals["x"] = 5 * vals["x"] + 12
        if A.shared:
            vals["gamma"], vals["beta"] = vals["gamma"][:1], vals["beta"][:1]
        elif int(np.prod(TWINS[p.layer].param_shape(shape))) == 1:  # one gamma for the group
            vals["gamma"], vals["beta"] = np.full(M, vals["gamma"][0]), np.full(M, vals["beta"][0])
        eps = float(rng.uniform(0.01, 1.0))
        library = _library(p.layer, p, shape, vals, eps)
        for name, twin in p.routes.items():
            lib = library.get(name)
            if lib is None:
                continue
            got: dict[str, list[float]] = {k: [] for k in twin}
            for i in range(M):
                point = {A.M: M, A.eps: eps, **A.power_sums(vals, i)}
                point.update({A.at[n]: vals[n][i] for n in A.at})
                point.update({sym: vals[n][0] for n, sym in A.params.items()})
                point.update({sym: lib.get(n, 0.0) for n, sym in p.constants.items()})
                for k, e in twin.items():
                    got[k].append(float(sp.sympify(e).xreplace(point)))
            err = 0.0
            for k, values in got.items():
                a = np.asarray(values)
                if A.shared and k != "dx":
                    a = a[:1]  # the group's scalar, the same at every i
                elif k != "dx" and lib[k].size == 1:
                    a = a.sum(keepdims=True)  # a gamma shared by the group: shares add up
                err = max(err, norm_rel_error(a, lib[k]))
            worst[name] = max(worst.get(name, 0.0), err)
    return worst
