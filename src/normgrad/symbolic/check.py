"""``normgrad derive check "FORMULA"``: proved, refuted (with a counterexample), or unproved.

A formula (``language``) is checked in two worlds (``worlds``):

1. for every group size at once, through the group's power sums (``sums``): a zero
   normal form proves it for every N, and the verdict is "proved for all N";
2. otherwise at the fixed sizes N = 2, 3, 4 with the library's own symbolic problems and
   ``core.compare``: a difference at exact rational inputs refutes it (the smallest N
   first, with the point and both values); agreement at all three sizes is "proved at
   N = 2, 3, 4", since the every-N normal form did not vanish (a formula whose sums are
   not polynomials, such as sum(1/x), has no power-sum form at all).

A refuted formula is compared with the catalog of known mistakes
(``normgrad.tools.grade.catalog``, pure data): first exactly, for every N; otherwise by
distance at random points, so the answer names the nearest known slip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad.symbolic import sums, worlds
from normgrad.symbolic.core import Verdict, sp
from normgrad.symbolic.language import FormulaError, Program, parse

SIZES = (2, 3, 4)


@dataclass
class Nearest:
    """The catalog mistake nearest a refuted formula."""

    key: str
    title: str
    step: str
    exact: bool  # the formula IS this mistake (for every N)
    distance: float  # normwise distance at random points (0 when exact)


@dataclass
class CheckResult:
    program: Program
    status: str  # "proved", "refuted" or "unproved"
    scope: str  # "for every N", "at N = 2, 3, 4", or where it failed
    detail: str = ""
    counterexample: dict[str, str] = field(default_factory=dict)
    nearest: Nearest | None = None
    seconds: float = 0.0

    @property
    def proved(self) -> bool:
        return self.status == "proved"


def every_n(program: Program) -> tuple[bool | None, str]:
    """(True: proved for every N; False: not proved; None: no power-sum form), and why."""
    try:
        w = worlds.AllWorld(program.kind)
        got, want = worlds.sides(program, w)
        r = sums.reduce(got - want, w.base)
    except ValueError as exc:  # a sum that is not a polynomial in the per-element values
        if isinstance(exc, FormulaError):
            raise
        return None, str(exc)
    if r.zero:
        return True, "normal form 0 with N symbolic"
    why = "a radical other than sqrt(var + eps)" if r.opaque else "non-zero normal form"
    return False, why


def check(
    text: str, kind: str = "batch", sizes: tuple[int, ...] = SIZES, with_nearest: bool = True
) -> CheckResult:
    """Check one formula for layer ``kind`` (batch, layer or rms); see the module docstring.

    ``with_nearest``: name the nearest catalog mistake of a refuted formula (a second or
    two more).

    Raises:
        FormulaError: the formula is not in the language (the message says why).
    """
    t0 = time.perf_counter()
    program = parse(text, kind)
    ok, why = every_n(program)
    if ok:
        return CheckResult(program, "proved", "for all N", why, seconds=_since(t0))
    verdicts: list[tuple[int, Verdict]] = []
    for n in sizes:
        v = worlds.compare_fixed(f"N = {n}", program, worlds.FixedWorld(kind, n))
        verdicts.append((n, v))
        if v.status == "refuted":
            res = CheckResult(
                program, "refuted", f"at N = {n}", v.detail, v.counterexample, seconds=0.0
            )
            res.nearest = nearest(program) if with_nearest else None
            res.seconds = _since(t0)
            return res
    if all(v.proved for _, v in verdicts):
        scope = "at N = " + ", ".join(str(n) for n, _ in verdicts)
        detail = f"not for all N ({why})" if ok is False else f"not for all N: {why}"
        return CheckResult(program, "proved", scope, detail, seconds=_since(t0))
    bad = next(v for _, v in verdicts if not v.proved)
    return CheckResult(program, "unproved", bad.name, bad.detail, seconds=_since(t0))


def _since(t0: float) -> float:
    return time.perf_counter() - t0


def _catalog() -> list[Any]:
    from normgrad.tools.grade import catalog

    return list(catalog.MISTAKES)


def nearest(program: Program, n: int = 3, points: int = 3, seed: int = 0) -> Nearest | None:
    """The catalog mistake equal to ``program`` for every N, else the closest at random points."""
    target = program.claim.target
    entries = [
        (m, parse(text, program.kind))
        for m in _catalog()
        for text in m.formulas.get(program.kind, ())
    ]
    entries = [(m, o) for m, o in entries if target is not None and o.claim.target == target]
    if not entries:
        return None
    try:
        w = worlds.AllWorld(program.kind)
        a, _ = worlds.sides(program, w)
        for m, other in entries:  # exactly this mistake, for every N
            try:
                b, _ = worlds.sides(other, w)
            except ValueError:
                continue
            if _maybe_zero(a - b) and sums.reduce(a - b, w.base).zero:
                return Nearest(m.key, m.title, m.step, True, 0.0)
    except ValueError:
        pass
    world = worlds.FixedWorld(program.kind, n)
    syms = sorted(
        set(world.problem.symbols())
        | {world.scalars[k] for k in ("running_mean", "running_var") if k in world.scalars},
        key=str,
    )
    f_prog = _lambda(program, world, syms)
    rng = np.random.default_rng(seed)
    pts = []
    for _ in range(points):
        pt = [
            float(rng.uniform(0.5, 2.0)) if _positive(s) else float(rng.standard_normal())
            for s in syms
        ]
        pts.append(pt)
    dist: dict[str, float] = {}
    for m, other in entries:
        f_other = _lambda(other, world, syms)
        for pt in pts:
            a, b = f_prog(*pt), f_other(*pt)
            d = float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b) + 1e-300))
            dist[m.key] = max(dist.get(m.key, 0.0), d)
    key = min(dist, key=lambda k: dist[k])
    m = next(m for m, _ in entries if m.key == key)
    return Nearest(m.key, m.title, m.step, False, dist[key])


def _maybe_zero(expr: Any, seed: int = 1) -> bool:
    """False when ``expr`` is clearly non-zero at a random point (a cheap screen before
    the exact normal form); True when it may be an identity."""
    rng = np.random.default_rng(seed)
    point = {
        s: (int(rng.integers(5, 12)) if s.is_integer else float(rng.uniform(0.5, 2.0)))
        if s.is_positive
        else float(rng.standard_normal())
        for s in sp.sympify(expr).free_symbols
    }
    try:
        value = complex(sp.sympify(expr).xreplace(point).evalf())
    except (TypeError, ValueError):
        return True
    return abs(value) < 1e-9


def _positive(s: Any) -> bool:
    return s.name.startswith("gamma") or s.name in ("running_var", "epsilon")


def _lambda(program: Program, world: worlds.FixedWorld, syms: list[Any]) -> Any:
    """The formula's values as a function of numbers for ``syms`` (exact substitution,
    then floats: cheaper than lambdify for the few points ``nearest`` needs)."""
    got, _ = worlds.sides(program, world)
    values = list(np.atleast_1d(np.asarray(got, dtype=object)))

    def f(*pt: float) -> np.ndarray:
        swap = {s: sp.Float(v) for s, v in zip(syms, pt, strict=True)}
        return np.array([float(sp.sympify(e).xreplace(swap)) for e in values])

    return f


def format_check(r: CheckResult) -> str:
    """The verdict, its scope, and for a refuted formula the point and the nearest mistake."""
    claim = r.program.claim
    what = f"{claim.target} = ..." if claim.target else "the identity"
    lines = [
        f"{r.status} {r.scope}: {r.program.text.strip()}",
        f"         ({r.program.kind} norm, {what}; eps > 0 symbolic; {r.seconds:.2f} s)",
    ]
    if r.detail and r.status != "refuted":
        lines.append(f"         {r.detail}")
    if r.counterexample:
        pts = ", ".join(f"{k}={v}" for k, v in r.counterexample.items())
        lines.append(f"         counterexample ({r.detail}): {pts}")
    if r.nearest is not None:
        nm = r.nearest
        how = "exactly" if nm.exact else f"nearest (distance {nm.distance:.2g} at random points)"
        lines.append(f"         known mistake, {how}: {nm.key}: {nm.title} [{nm.step}]")
    return "\n".join(lines)
