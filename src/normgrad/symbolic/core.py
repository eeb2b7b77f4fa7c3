"""The prover: symbol builders, the exact gradient of L = sum(dout * y), and exact comparison.

Every normalization here divides by a radical sqrt(B_k), one per normalization group,
with B_k = var_k + eps (or mean square + eps). The proof of ``candidate == exact`` runs:

1. Differentiate L = sum(dout * y) exactly with ``sympy.diff`` (eps a positive symbol).
2. Replace every radicand B_k, wherever it occurs, by s_k**2 with s_k a positive symbol,
   so sqrt(B_k) -> s_k and (B_k)**(-3/2) -> s_k**-3. This is an exact rewriting of the
   same expression (no derivative is taken after it), so it is legitimate. A radicand is
   recognized by its expanded polynomial, not by how it was written: any power
   C**(p/2) whose base C expands to the same polynomial as some B_k becomes s_k**p
   (so sqrt(eps + E[x^2] - mu^2) is recognized as sqrt(var + eps) too).
3. ``expand`` the difference: it is now a Laurent polynomial in the s_k with polynomial
   coefficients in x, gamma, beta, dout. If it is 0 the identity is proved.
4. Otherwise clear denominators and reduce the numerator modulo s_k**2 - B_k (polynomial
   remainder in s_k). When every radical was recognized in step 2, what remains is
   linear in each s_k with coefficients in Q(x, eps, ...); since no B_k is a square
   there, it is zero only if every coefficient is, so a non-zero remainder means the
   formula is wrong, and a concrete counterexample at small integers (with eps chosen
   so that sqrt(B_1) is rational) is searched for.

Scope: the procedure decides identities whose only radicals are powers of the B_k (in
any polynomially equal spelling). Any other radical (a radicand that is not a B_k, a
nested radical) is kept as an opaque atom. A zero normal form is still a proof (every
step is an exact rewriting), but a non-zero one then only means "not proved by this
normal form": ``compare`` reports "refuted" only with a concrete counterexample at exact
rational points, and "unproved" otherwise. It never reports a false "proved".

This normal form is used instead of ``simplify`` (same verdicts on these identities,
about 50x faster).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad._internal.deps import require_sympy

sp = require_sympy()

Grads = dict[str, np.ndarray]  # gradient name ("dx", "dgamma", ...) -> object array

#: The largest normalization group (values per mean/variance) and the largest input the
#: prover accepts. The exact gradient of a group of M values has O(M^2) terms per entry
#: and its expansion about O(M^4): measured, one route takes 0.1 s at M = 4, 2-5 s at
#: M = 8 and 9 s at M = 12, growing fast, so larger shapes would stall the command.
MAX_GROUP = 8
MAX_ELEMENTS = 24

HALF = sp.Rational(1, 2)
sqrt = np.frompyfunc(sp.sqrt, 1, 1)  # elementwise sympy sqrt over object arrays


def symbol_array(name: str, shape: Sequence[int], **assumptions: Any) -> np.ndarray:
    """An object array of distinct SymPy symbols named ``name`` plus their index digits."""
    out = np.empty(tuple(shape), dtype=object)
    for idx in np.ndindex(*out.shape):
        suffix = "".join(str(i) for i in idx)
        out[idx] = sp.Symbol(f"{name}_{suffix}" if suffix else name, real=True, **assumptions)
    return out


def check_size(layer: str, shape: Sequence[int], group: int) -> None:
    """Refuse shapes too large to prove quickly, saying the limit and why.

    Raises:
        ValueError: the group (values per statistic) or the whole input is too large.
    """
    total = int(np.prod(shape))
    if group > MAX_GROUP or total > MAX_ELEMENTS:
        raise ValueError(
            f"{layer}: shape {tuple(shape)} has {total} inputs in groups of {group}; the "
            f"symbolic prover accepts at most {MAX_GROUP} values per normalization group "
            f"and {MAX_ELEMENTS} inputs in all, because the exact gradient of a group of "
            f"M values expands to about O(M^4) terms (M = 8 already takes seconds). "
            f"Use a smaller shape, such as 3x2 for batch norm."
        )
    if group < 2:
        raise ValueError(
            f"{layer}: shape {tuple(shape)} gives groups of {group} value; a normalization "
            f"group needs at least 2 values for the proof to say anything."
        )


@dataclass(frozen=True)
class Radical:
    """One normalization group's radicand B = var + eps, and the positive symbol s = sqrt(B)."""

    base: Any  # sympy Expr: var_k + eps, exactly as the forward pass built it
    s: Any  # sympy Symbol, positive


def radicals_of(var_plus_eps: np.ndarray) -> list[Radical]:
    """One ``Radical`` per distinct element of an object array of radicands."""
    seen: dict[Any, Radical] = {}
    for b in np.asarray(var_plus_eps, dtype=object).ravel():
        if b not in seen:
            seen[b] = Radical(b, sp.Symbol(f"s{len(seen)}", positive=True))
    return list(seen.values())


def exact_gradients(y: np.ndarray, dout: np.ndarray, wrt: Mapping[str, np.ndarray]) -> Grads:
    """dL/dp for L = sum(dout * y), for each object array p in ``wrt``, exactly."""
    L = sp.Add(*(np.asarray(dout * y, dtype=object).ravel()))
    out: Grads = {}
    for name, arr in wrt.items():
        g = np.empty(arr.shape, dtype=object)
        for idx in np.ndindex(*arr.shape):
            g[idx] = sp.diff(L, arr[idx])
        out[name] = g
    return out


def _substitute_radicals(e: Any, radicals: Sequence[Radical]) -> Any:
    """Rewrite every power C**(p/2) whose base C expands to a radicand B_k as s_k**p."""
    e = e.xreplace({r.base: r.s**2 for r in radicals})  # fast path: B_k as built
    by_poly = {sp.expand(r.base): r for r in radicals}
    swap = {}
    for pw in e.atoms(sp.Pow):
        if pw.exp.is_Rational and pw.exp.q == 2 and not pw.base.is_Symbol:
            r = by_poly.get(sp.expand(pw.base))
            if r is not None:
                swap[pw] = r.s ** (2 * pw.exp)
    return e.xreplace(swap) if swap else e


def normal_form(expr: Any, radicals: Sequence[Radical]) -> Any:
    """The reduced form of ``expr`` described in the module docstring.

    0 proves ``expr == 0``. A non-zero result disproves it only when every radical of
    ``expr`` is a power of some ``radicals[k].base`` (up to expansion); otherwise it
    means "not proved by this normal form" (see the module docstring).
    """
    e = sp.expand(_substitute_radicals(sp.sympify(expr), radicals))
    if e == 0:
        return e
    num = sp.numer(sp.together(e))
    for r in radicals:
        if num.has(r.s):
            try:
                num = sp.rem(sp.expand(num), r.s**2 - r.base, r.s)
            except sp.PolynomialError:  # s_k inside an unrecognized radical: leave it
                continue
    return sp.expand(num)


@dataclass
class Verdict:
    """The outcome of comparing one candidate formula with the exact gradient."""

    name: str
    #: "proved"; "refuted" (with a counterexample); "unproved" (non-zero normal form and
    #: no counterexample: not proved by this normal form); or "incomplete" (the candidate
    #: does not give exactly the gradients the exact one has). Only "proved" passes.
    status: str
    seconds: float = 0.0
    detail: str = ""
    counterexample: dict[str, str] = field(default_factory=dict)

    @property
    def proved(self) -> bool:
        return self.status == "proved"


def _small_point(symbols: Iterable[Any], eps: Any, radicals: Sequence[Radical], seed: int) -> dict:
    """Small integers for every symbol, and eps > 0 making sqrt(B_1) an integer."""
    rng = np.random.default_rng(seed)
    point: dict[Any, Any] = {}
    for s in sorted(symbols, key=str):
        name = str(s)
        if s == eps:
            continue
        lo, hi = (1, 3) if name.startswith("gamma") else (-3, 3)
        point[s] = sp.Integer(int(rng.integers(lo, hi + 1)))
    v1 = radicals[0].base.subs(eps, 0).subs(point) if radicals else sp.Integer(0)
    k = math.isqrt(int(sp.floor(v1))) + 1
    point[eps] = sp.Rational(k * k) - v1  # > 0, and B_1 = k^2
    return point


def find_counterexample(
    candidate: Any, exact: Any, eps: Any, radicals: Sequence[Radical], tries: int = 25
) -> dict[str, str] | None:
    """Small numbers at which ``candidate != exact``, with both values, or None."""
    syms = (sp.sympify(candidate).free_symbols | sp.sympify(exact).free_symbols) | {eps}
    for r in radicals:
        syms |= r.base.free_symbols
    for seed in range(tries):
        pt = _small_point(syms, eps, radicals, seed)
        c = sp.sympify(candidate).subs(pt)  # exact numbers (rationals and radicals)
        x = sp.sympify(exact).subs(pt)
        # Decided on the exact values at 50 digits, far above any rounding, so a true
        # identity that the normal form could not reduce is never "refuted".
        if abs(sp.N(c - x, 50)) > 1e-20:
            c, x = sp.nsimplify(c), sp.nsimplify(x)
            out = {str(k): str(v) for k, v in sorted(pt.items(), key=lambda kv: str(kv[0]))}
            out["formula gives"] = str(sp.radsimp(c))
            out["exact gradient"] = str(sp.radsimp(x))
            return out
    return None


def compare(
    name: str,
    candidate: Mapping[str, np.ndarray],
    exact: Mapping[str, np.ndarray],
    eps: Any,
    radicals: Sequence[Radical],
) -> Verdict:
    """Prove (or refute) that ``candidate`` equals the exact gradient, key by key.

    The candidate must give exactly the gradients of ``exact`` (same keys): a missing or
    an extra gradient gives the failure verdict "incomplete", never "proved".
    """
    t0 = time.perf_counter()
    missing = [k for k in exact if k not in candidate]
    extra = [k for k in candidate if k not in exact]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        return Verdict(
            name,
            "incomplete",
            time.perf_counter() - t0,
            f"candidate gradients {sorted(candidate)} against exact "
            f"{sorted(exact)}: {'; '.join(parts)}",
        )
    for key, ex in exact.items():
        cand = candidate[key]
        if np.shape(cand) != np.shape(ex):
            return Verdict(
                name,
                "refuted",
                time.perf_counter() - t0,
                f"{key} has shape {np.shape(cand)}, the exact one {np.shape(ex)}",
            )
        for idx in np.ndindex(*np.shape(ex)):
            c, x = np.asarray(cand, dtype=object)[idx], ex[idx]
            if normal_form(c - x, radicals) == 0:
                continue
            where = f"{key}[{', '.join(map(str, idx))}]"
            cex = find_counterexample(c, x, eps, radicals)
            if cex is not None:
                status, detail = "refuted", f"{where} differs from the exact gradient"
            else:
                status, detail = (
                    "unproved",
                    (
                        f"{where}: not proved by this normal form (non-zero remainder, no "
                        f"counterexample found)"
                    ),
                )
            return Verdict(name, status, time.perf_counter() - t0, detail, cex or {})
    return Verdict(
        name,
        "proved",
        time.perf_counter() - t0,
        ", ".join(f"{k} {tuple(np.shape(exact[k]))}" for k in exact),
    )


def format_verdict(v: Verdict) -> str:
    """One line: status, name, and what was compared or where it failed."""
    line = f"{v.status:<8} {v.name}: {v.detail} ({v.seconds:.2f} s)"
    if v.counterexample:
        pts = ", ".join(f"{k}={val}" for k, val in v.counterexample.items())
        line += f"\n         counterexample: {pts}"
    return line
