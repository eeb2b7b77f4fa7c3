"""Where a formula is evaluated: one group at a fixed size, or one group of every size.

A parsed formula (``language.Program``) holds per-element symbols (``x[i]``, ``x[k]``),
the group's scalars (``mu``, ``var``, ...) and unevaluated ``BatchSum(body)`` nodes. A
world gives them values:

- ``FixedWorld(kind, n)``: the group of the library's own symbolic problem at size n
  (``batch.build(n, 1)``'s column, or the one row of layer / RMS norm's (1, n) problem),
  so the counterexamples are those of ``derive seed``; a claim about a per-element
  quantity is evaluated at every i;
- ``AllWorld(kind)``: the group of symbolic size N through its power sums
  (``sums.GroupAlgebra``), evaluated once at a generic element i.

``evaluate`` reduces the sums bottom-up (the innermost sum binds its elements), then
substitutes sample i and the scalars. ``exact`` is each claimable gradient's exact value:
dL/dx_i, dL/dgamma and dL/dbeta (layer and RMS norm: the group's per-element share),
dxhat = dy * gamma, y, and the paper's partials dL/dmu and dL/dvar at the batch
statistics (``seed``'s definitions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.symbolic import batch, core, registry
from normgrad.symbolic.core import sp
from normgrad.symbolic.language import (
    BatchSum,
    FormulaError,
    Program,
    scalar_symbol,
)
from normgrad.symbolic.sums import GroupAlgebra


class _World:
    """What both worlds share: element values, scalars, partials, and evaluation."""

    kind: str
    center: bool
    g_shared: bool
    scalars: dict[str, Any]
    eps: Any

    def element(self, name: str, where: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def total(self, body: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _partials(self, dy: Any, x: Any, gamma: Any, beta: Any, total: Any) -> None:
        """dmu and dvar as seed.py defines them, from F(m, v) = sum dy * y(x, m, v)."""
        m, v = sp.Symbol("m_", real=True), sp.Symbol("v_", positive=True)
        F = total(dy * (gamma * (x - m) / sp.sqrt(v + self.eps) + beta))
        mu, var = self.scalars["mu"], self.scalars["var"]
        self.scalars["dvar"] = sp.diff(F, v).subs({v: var, m: mu})
        if self.center:
            var_m = total((x - m) * (x - m)) / self.scalars["N"]
            self.scalars["dmu"] = sp.diff(F.subs(v, var_m), m).subs(m, mu)

    def _element_values(self, base: dict[str, Any]) -> dict[str, Any]:
        """xhat, dxhat, y and the per-element shares, from x, dy, gamma, beta."""
        s = self.scalars
        out = dict(base)
        out["xhat"] = (base["x"] - s["mu"]) / s["std"]
        out["dxhat"] = base["dy"] * base["gamma"]
        out["y"] = base["gamma"] * out["xhat"] + base.get("beta", 0)
        if not self.g_shared:
            out["dgamma"], out["dbeta"] = base["dy"] * out["xhat"], base["dy"]
        return out

    def evaluate(self, expr: Any, i: Any) -> Any:
        """``expr`` with every sum reduced, at sample ``i``, scalars substituted."""

        def reduce(e: Any) -> Any:
            if not e.args:
                return e
            args = [reduce(a) for a in e.args]
            if isinstance(e, BatchSum):
                return self.total(args[0])
            return e.func(*args)

        e = reduce(sp.sympify(expr))
        swap = {s: self.element(s.name[:-3], i) for s in e.free_symbols if s.name.endswith("[i]")}
        swap.update({scalar_symbol(n): v for n, v in self.scalars.items()})
        return e.xreplace(swap)

    def _k_swap(self, body: Any, where: Any) -> Any:
        ks = {s for s in body.free_symbols if s.name.endswith("[k]")}
        return body.xreplace({s: self.element(s.name[:-3], where) for s in ks})


class FixedWorld(_World):
    """One group of the library's symbolic problem at size ``n``."""

    def __init__(self, kind: str, n: int) -> None:
        self.kind, self.n = kind, n
        self.center, self.g_shared = kind != "rms", kind == "batch"
        if kind == "batch":
            p = batch.build(n, 1)
            c: batch.Cache = p.cache
            x, dy = c.x[:, 0], p.dout[:, 0]
            gamma, beta = c.gamma[0], p.params["beta"][0]
            mu, var = c.mu[0], c.var[0]
        else:
            p = registry.build(kind, N=1, D=n)
            x, dy, gamma = p.params["x"][0], p.dout[0], p.params["gamma"]
            beta = p.params["beta"] if "beta" in p.params else None
            mu, var = p.group.mu, p.group.var
        self.problem, self.eps, self.radicals = p, p.eps, p.radicals
        N = sp.Integer(n)
        self.scalars = {"mu": mu, "var": var, "std": sp.sqrt(var + p.eps), "eps": p.eps, "N": N}
        base = {"x": x, "dy": dy, "gamma": gamma}
        if beta is not None:
            base["beta"] = beta
        self.values = self._element_values(base)
        self.values["dx"] = p.exact["dx"][:, 0] if kind == "batch" else p.exact["dx"][0]
        if kind == "batch":
            self.values["xhat"] = c.xhat[:, 0]  # the forward's own expressions
            self.values["y"] = gamma * c.xhat[:, 0] + beta
            self.scalars["dgamma"] = sp.Add(*(dy * c.xhat[:, 0]))
            self.scalars["dbeta"] = sp.Add(*dy)
            self.scalars["running_mean"] = sp.Symbol("running_mean", real=True)
            self.scalars["running_var"] = sp.Symbol("running_var", positive=True)
        self._fixed_partials([x[k] for k in range(n)], dy, gamma, beta)

    def _fixed_partials(self, xs: list, dy: Any, gamma: Any, beta: Any) -> None:
        g = [gamma] * self.n if self.g_shared else list(gamma)
        b = [beta] * self.n if self.g_shared else (list(beta) if beta is not None else [0] * self.n)
        m, v = sp.Symbol("m_", real=True), sp.Symbol("v_", positive=True)
        mu = m if self.center else 0
        F = sp.Add(
            *(dy[k] * (g[k] * (xs[k] - mu) / sp.sqrt(v + self.eps) + b[k]) for k in range(self.n))
        )
        at = {v: self.scalars["var"], **({m: self.scalars["mu"]} if self.center else {})}
        self.scalars["dvar"] = sp.diff(F, v).subs(at)
        if self.center:
            var_m = sp.Add(*((xk - m) ** 2 for xk in xs)) / self.n
            self.scalars["dmu"] = sp.diff(F.subs(v, var_m), m).subs(m, self.scalars["mu"])

    def element(self, name: str, where: Any) -> Any:
        value = self.values[name]
        return value[where] if isinstance(value, np.ndarray) else value

    def total(self, body: Any) -> Any:
        return sp.Add(*(self._k_swap(body, k) for k in range(self.n)))

    def exact(self, target: str) -> Any:
        """The exact value of ``target``: an (n,) object array or one expression."""
        p = self.problem
        if target == "dx":
            return p.exact["dx"][:, 0] if self.kind == "batch" else p.exact["dx"][0]
        if target in ("dgamma", "dbeta"):
            if target not in p.exact:
                raise FormulaError(f"{self.kind} norm has no {target[1:]}.")
            ex = p.exact[target]
            return ex[0] if self.g_shared else ex
        if target in ("dxhat", "y"):
            return self.values[target]
        return self.scalars[target]  # dmu, dvar: the paper's partials


class AllWorld(_World):
    """One group of symbolic size N, through its power sums."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.center, self.g_shared = kind != "rms", kind == "batch"
        A = GroupAlgebra(shared=self.g_shared, size="N")
        self.A, self.eps = A, A.eps
        mu = A.mean(A.X) if self.center else sp.Integer(0)
        var = A.mean((A.X - mu) ** 2)
        self.base = var + A.eps
        self.scalars = {"mu": mu, "var": var, "std": sp.sqrt(var + A.eps), "eps": A.eps, "N": A.M}
        self.generic = self._element_values(
            {
                "x": A.X,
                "dy": A.Y,
                "gamma": A.gamma(),
                **({} if kind == "rms" else {"beta": A.beta()}),
            }
        )
        g, xh = self.generic["dxhat"], self.generic["xhat"]
        centre = A.mean(g) if self.center else 0
        # The generic element's exact dx, in its closed form (proved equal to dL/dx_i).
        self.generic["dx"] = (g - centre - xh * A.mean(g * xh)) / self.scalars["std"]
        if self.g_shared:
            self.scalars["dgamma"] = A.total(A.Y * self.generic["xhat"])
            self.scalars["dbeta"] = A.total(A.Y)
            self.scalars["running_mean"] = sp.Symbol("running_mean", real=True)
            self.scalars["running_var"] = sp.Symbol("running_var", positive=True)
        self._partials(A.Y, A.X, A.gamma(), A.beta() if kind != "rms" else 0, A.total)
        L = A.total(A.Y * self.generic["y"])
        wrt = A.params if self.g_shared else A.at
        self._exact = {"dx": sp.diff(L, A.at["x"]), "dgamma": sp.diff(L, wrt["gamma"])}
        if kind != "rms":
            self._exact["dbeta"] = sp.diff(L, wrt["beta"])

    def element(self, name: str, where: Any) -> Any:
        value = self.generic[name]
        return self.A.at_i(value) if where == "i" else value

    def total(self, body: Any) -> Any:
        return self.A.total(self._k_swap(body, "generic"))

    def exact(self, target: str) -> Any:
        if target in self._exact:
            return self._exact[target]
        if target in ("dgamma", "dbeta"):
            raise FormulaError(f"{self.kind} norm has no {target[1:]}.")
        if target in ("dxhat", "y"):
            return self.element(target, "i")
        return self.scalars[target]


def per_element(program: Program) -> bool:
    """Whether the claim is about a per-element quantity (checked at every i)."""
    c = program.claim
    if c.target is not None:
        return c.target in ("dx", "dxhat", "y") or (
            program.kind != "batch" and c.target in ("dgamma", "dbeta")
        )
    outside = (c.lhs - c.rhs).replace(lambda e: isinstance(e, BatchSum), lambda e: sp.Integer(1))
    return any(s.name.endswith("[i]") for s in outside.free_symbols)


def sides(program: Program, world: FixedWorld | AllWorld) -> tuple[Any, Any]:
    """(formula's value, exact value): object arrays over i in a fixed world when the claim
    is per element, else single expressions."""
    c = program.claim
    cand, ref = c.rhs, c.lhs
    if isinstance(world, FixedWorld) and per_element(program):
        got = np.array([world.evaluate(cand, i) for i in range(world.n)], dtype=object)
        if c.target is None:
            want = np.array([world.evaluate(ref, i) for i in range(world.n)], dtype=object)
        else:
            want = np.asarray(world.exact(c.target), dtype=object)
        return got, want
    where: Any = "i" if isinstance(world, AllWorld) else 0
    got = world.evaluate(cand, where)
    want = world.exact(c.target) if c.target is not None else world.evaluate(ref, where)
    return got, want


def compare_fixed(name: str, program: Program, world: FixedWorld) -> core.Verdict:
    """``core.compare`` of the formula against the exact value, with a counterexample."""
    got, want = sides(program, world)
    got_a = np.atleast_1d(np.asarray(got, dtype=object))
    want_a = np.atleast_1d(np.asarray(want, dtype=object))
    return core.compare(name, {"value": got_a}, {"value": want_a}, world.eps, world.radicals)
