"""Every group size at once: a normalization group written through its power sums.

A normalization group of M values (batch norm's column of N samples, layer norm's row of
D features) enters the loss L = sum_k dy_k * y_k only through sums over the group. Fix
one element i. For a polynomial f of the per-element values (x, dy, and gamma, beta when
they vary inside the group),

    sum_k f(x_k, dy_k, ...) = f(x_i, dy_i, ...) + sum_m c_m Q_m,

where m runs over the monomials x^a dy^b gamma^c beta^d of f, c_m is its coefficient
(an expression in the group's scalars: mu, sqrt(var + eps), ...), and
Q_m = sum_{k != i} x_k^a dy_k^b gamma_k^c beta_k^d is the power sum of m over the OTHER
elements. Q_m does not depend on x_i, and the constant monomial's is M - 1. So every
quantity of the group (mu, var, xhat_i, L itself) is an exact expression in x_i, dy_i,
..., the Q_m, M and eps; dL/dx_i is ``sympy.diff`` of that expression; and "route ==
exact gradient" becomes an identity between rational functions of free symbols, with M
a symbol. Proved there, it holds for every M and every data, because data only
specializes the free symbols.

``reduce`` decides such an identity: every power C**(p/2) whose base C expands to the
group's radicand B = var + eps is rewritten s**p (s a positive symbol), denominators are
cleared, and the numerator, a polynomial in s, is split as C0 + C1 * s with s**2 = B;
since B is of degree 1 in eps it is not the square of a rational function, so the
identity holds exactly when both numerators vanish. A radical with any other radicand
stays an opaque atom (then a non-zero result means "not proved", never "false").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from normgrad.symbolic.core import sp


@dataclass
class GroupAlgebra:
    """The symbols of one group, its power sums, and ``total`` (the sum over the group).

    ``shared``: gamma and beta are the group's scalars (batch norm), not per element
    (layer, group, instance and RMS norm, whose gamma varies inside a group).
    ``size``: the name of M in printed results ("N", "D", "M").
    """

    shared: bool = True
    size: str = "N"
    M: Any = field(init=False)
    eps: Any = field(init=False)
    generic: dict[str, Any] = field(init=False)  # per-element name -> generic symbol
    at: dict[str, Any] = field(init=False)  # per-element name -> element i's symbol
    params: dict[str, Any] = field(init=False)  # "gamma", "beta" when shared
    _q: dict[tuple[int, ...], Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.M = sp.Symbol(self.size, positive=True, integer=True)
        self.eps = sp.Symbol("epsilon", positive=True)
        names = ["x", "dy"] if self.shared else ["x", "dy", "gamma", "beta"]
        self.generic = {n: sp.Symbol(f"{n.upper()}_k", real=True) for n in names}
        self.at = {n: sp.Symbol(f"{n}_i", real=True) for n in names}
        self.params = (
            {"gamma": sp.Symbol("gamma", real=True), "beta": sp.Symbol("beta", real=True)}
            if self.shared
            else {}
        )
        self._q = {}

    @property
    def X(self) -> Any:
        return self.generic["x"]

    @property
    def Y(self) -> Any:
        return self.generic["dy"]

    def gamma(self) -> Any:
        """gamma as seen by a per-element expression (a scalar when shared)."""
        return self.params["gamma"] if self.shared else self.generic["gamma"]

    def beta(self) -> Any:
        return self.params["beta"] if self.shared else self.generic["beta"]

    def q(self, powers: tuple[int, ...]) -> Any:
        """Q_m: the power sum of monomial ``powers`` over the elements other than i."""
        if not any(powers):
            return self.M - 1
        if powers not in self._q:
            label = "".join(
                f"{n}{p}" if p > 1 else n for n, p in zip(self.generic, powers, strict=True) if p
            )
            self._q[powers] = sp.Symbol(f"Q[{label}]", real=True)
        return self._q[powers]

    def at_i(self, expr: Any) -> Any:
        """``expr`` (in the generic element's symbols) at element i."""
        return sp.sympify(expr).xreplace({self.generic[n]: self.at[n] for n in self.generic})

    def total(self, body: Any) -> Any:
        """sum over the group of ``body``, a polynomial in the generic element's symbols.

        Raises:
            ValueError: ``body`` is not a polynomial in them (1/x, sqrt(x), ...): such a
                sum is not a function of finitely many power sums.
        """
        body = sp.expand(sp.sympify(body))
        gens = list(self.generic.values())
        try:
            poly = sp.Poly(body, *gens)
        except sp.PolynomialError:
            raise ValueError(
                f"the sum of {body} over the group is not a polynomial in the per-element "
                "values, so it is not a function of finitely many power sums"
            ) from None
        out = self.at_i(body)
        for powers, coeff in poly.terms():
            out += coeff * self.q(tuple(powers))
        return out

    def mean(self, body: Any) -> Any:
        return self.total(body) / self.M

    def others(self) -> list[Any]:
        """The power-sum symbols made so far (inputs of lambdified expressions)."""
        return [self._q[k] for k in sorted(self._q)]

    def power_sums(self, values: dict[str, Any], i: int) -> dict[Any, Any]:
        """Numeric values of every Q made so far, from arrays ``values`` (name -> (M,))."""
        import numpy as np

        keep = np.arange(len(values["x"])) != i
        out = {}
        for powers, sym in self._q.items():
            term = np.ones(int(keep.sum()))
            for n, p in zip(self.generic, powers, strict=True):
                term = term * np.asarray(values[n], dtype=float)[keep] ** p
            out[sym] = float(term.sum())
        return out


@dataclass
class Reduced:
    """``expr`` as C0 + C1 * s with s = sqrt(B): zero exactly when both numerators are."""

    c0: Any
    c1: Any
    opaque: bool  # a radical of another radicand survived: non-zero is then undecided

    @property
    def zero(self) -> bool:
        return self.c0 == 0 and self.c1 == 0


def _radical_powers(expr: Any, base: Any, s: Any) -> Any:
    by_poly = sp.expand(base)
    swap = {}
    for pw in expr.atoms(sp.Pow):
        if pw.exp.is_Rational and pw.exp.q == 2 and sp.expand(pw.base) == by_poly:
            swap[pw] = s ** (2 * pw.exp)
    return expr.xreplace(swap) if swap else expr


def reduce(expr: Any, base: Any) -> Reduced:
    """Reduce ``expr`` modulo s**2 = ``base`` (the module docstring's decision procedure)."""
    s = sp.Symbol("s_B", positive=True)
    e = _radical_powers(sp.sympify(expr).xreplace({base: s**2}), base, s)
    # Clear every denominator (s can hide inside one, as in 1/(N*s*B)): the identity is
    # its numerator, a polynomial in s, = 0.
    e = sp.expand(sp.numer(sp.together(sp.expand(e))))
    c0: Any = sp.Integer(0)
    c1: Any = sp.Integer(0)
    for term in sp.Add.make_args(e):
        p = term.as_powers_dict().get(s, 0)
        coeff = term / s**p if p else term
        half, odd = divmod(int(p), 2)
        if odd:
            c1 += coeff * base**half
        else:
            c0 += coeff * base**half
    c0 = sp.expand(sp.numer(sp.together(c0)))
    c1 = sp.expand(sp.numer(sp.together(c1)))
    opaque = any(
        pw.exp.is_Rational and pw.exp.q != 1 for pw in (c0 + c1).atoms(sp.Pow) if pw.base != s
    )
    return Reduced(c0, c1, opaque)


def numerator_degree(r: Reduced, symbols: Sequence[Any]) -> int:
    """Total degree of C0 and C1 in ``symbols`` (for the Schwartz-Zippel bound)."""
    degs = [sp.Poly(c, *symbols).total_degree() for c in (r.c0, r.c1) if c != 0]
    return max(degs, default=0)
