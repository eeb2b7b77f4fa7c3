"""The printed derivation of ``normgrad derive LAYER``: each step pretty-printed and checked.

Steps are stated for a generic group of M values (SymPy ``pretty``), and every local
derivative is also checked exactly on the first normalization group of the concrete
symbolic problem, so the printed maths is not just typed in.
"""

from __future__ import annotations

from typing import Any

from normgrad.symbolic import core
from normgrad.symbolic.core import Radical, sp
from normgrad.symbolic.model import Problem

_i, _j, _s = sp.symbols("i j s", integer=True, positive=True)
_M = sp.Symbol("M", integer=True, positive=True)
_x, _xh, _y, _dy = (sp.IndexedBase(n) for n in ("x", "x̂", "y", "dy"))
_dxh = sp.IndexedBase("dx̂")
_mu, _sigma, _eps = sp.Symbol("mu"), sp.Symbol("sigma"), sp.Symbol("epsilon", positive=True)
_gamma, _beta = sp.Symbol("gamma"), sp.Symbol("beta")
_dgamma, _dbeta = sp.Symbol("dγ"), sp.Symbol("dβ")


def _pretty(lhs: str, rhs: Any) -> str:
    return sp.pretty(sp.Eq(sp.Symbol(lhs), rhs, evaluate=False), use_unicode=True)


def _generic(center: bool, batch: bool) -> list[tuple[str, str, Any]]:
    """(title, lhs, rhs) of each step, for a group of M values."""
    S = lambda e: sp.Sum(e, (_s, 1, _M))  # noqa: E731
    var = _sigma**2
    base = var + _eps
    if center:
        steps = [
            ("mean", "μ", S(_x[_s]) / _M),
            ("variance (biased)", "σ²", S((_x[_s] - _mu) ** 2) / _M),
            ("normalized input", "x̂ᵢ", (_x[_i] - _mu) / sp.sqrt(base)),
        ]
    else:
        steps = [
            ("mean square (σ² here)", "σ²", S(_x[_s] ** 2) / _M),
            ("normalized input", "x̂ᵢ", _x[_i] / sp.sqrt(base)),
        ]
    steps.append(("output", "yᵢ", _gamma * _xh[_i] + (_beta if center else 0)))
    delta = sp.KroneckerDelta(_i, _j)
    if center:
        steps += [
            ("local derivative", "∂μ/∂xⱼ", 1 / _M),
            ("local derivative", "∂σ²/∂xⱼ", 2 * (_x[_j] - _mu) / _M),
            (
                "local derivative",
                "∂x̂ᵢ/∂xⱼ",
                (delta - 1 / _M) / sp.sqrt(base)
                - (_x[_i] - _mu) * (_x[_j] - _mu) / (_M * base ** sp.Rational(3, 2)),
            ),
        ]
    else:
        steps += [
            ("local derivative", "∂σ²/∂xⱼ", 2 * _x[_j] / _M),
            (
                "local derivative",
                "∂x̂ᵢ/∂xⱼ",
                delta / sp.sqrt(base) - _x[_i] * _x[_j] / (_M * base ** sp.Rational(3, 2)),
            ),
        ]
    steps += [
        ("local derivative", "∂yᵢ/∂x̂ᵢ", _gamma),
        ("chain rule, dx̂ = ∂L/∂x̂", "dx̂ᵢ", _dy[_i] * _gamma),
        (
            "parameter gradient, summed over every position sharing γ",
            "dγ",
            sp.Sum(_dy[_s] * _xh[_s], (_s, 1, sp.Symbol("P"))),
        ),
    ]
    mean_dxh = S(_dxh[_s]) / _M if center else 0
    closed = (_dxh[_i] - mean_dxh - _xh[_i] * S(_dxh[_s] * _xh[_s]) / _M) / sp.sqrt(base)
    steps.append(("closed form", "dxᵢ", closed))
    if batch:
        steps.append(
            (
                "closed form, in dγ and dβ",
                "dxᵢ",
                _gamma / sp.sqrt(base) * (_dy[_i] - (_dbeta + _xh[_i] * _dgamma) / _M),
            )
        )
    return steps


def local_checks(p: Problem) -> list[tuple[str, bool]]:
    """Check the generic local derivatives exactly on the problem's first group."""
    g, eps = p.group, p.eps
    xs, mu, var, M = g.xs, g.mu, g.var, len(g.xs)
    r = Radical(var + eps, sp.Symbol("s_g", positive=True))
    xh = [(xi - mu) / sp.sqrt(var + eps) for xi in xs]
    out = []
    if p.center:
        out.append(("∂μ/∂xⱼ", sp.expand(sp.diff(mu, xs[0]) - sp.Rational(1, M)) == 0))
        dvar = 2 * (xs[0] - mu) / M
    else:
        dvar = 2 * xs[0] / M
    out.append(("∂σ²/∂xⱼ", sp.expand(sp.diff(var, xs[0]) - dvar) == 0))
    ok = True
    for i, j in ((0, 0), (0, 1)):
        delta = 1 if i == j else 0
        formula = (delta - (sp.Rational(1, M) if p.center else 0)) / sp.sqrt(var + eps) - (
            (xs[i] - mu) * (xs[j] - mu) / (M * (var + eps) ** sp.Rational(3, 2))
        )
        ok &= core.normal_form(sp.diff(xh[i], xs[j]) - formula, [r]) == 0
    out.append(("∂x̂ᵢ/∂xⱼ (i = j and i != j)", bool(ok)))
    return out


def derivation(p: Problem, checks: list[tuple[str, bool]] | None = None) -> str:
    """The step-by-step derivation of ``p.layer`` as printable text.

    ``checks`` is ``local_checks(p)`` when the caller has run it already (to count a
    failed check in its exit status); otherwise the checks are run here.
    """
    where, m = p.reduction
    lines = [
        f"{p.layer} norm: {p.describe()}",
        f"statistics {where}; M = {m} = {len(p.group.xs)} values per group here.",
        "",
    ]
    for n, (title, lhs, rhs) in enumerate(_generic(p.center, p.param_form), 1):
        lines.append(f"{n}. {title}")
        lines.extend("   " + row for row in _pretty(lhs, rhs).splitlines())
        lines.append("")
    lines.append("Local derivatives, checked exactly on the first group:")
    for name, ok in local_checks(p) if checks is None else checks:
        lines.append(f"   {'checked' if ok else 'FAILED '}  {name}")
    return "\n".join(lines)
