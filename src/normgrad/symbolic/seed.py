"""Every formula the seed notebook states, checked exactly (seed/batch_norm_derivation.ipynb).

The notebook works per feature (vectors are multiplied elementwise), so each formula is
checked on one feature of batch norm, x: (N, 1), with eps a positive symbol. The
notebook's partial derivatives are made precise as in the paper's graph: L is a
function of (x, mu, var) with xhat = (x - mu) / sqrt(var + eps), so

- dL/dxhat_i treats the xhat_i as independent inputs of y = gamma * xhat + beta;
- dL/dvar is the partial derivative with x and mu held fixed;
- dL/dmu is the derivative through xhat and through var = 1/N sum (x_i - mu)^2,
  x held fixed;

each evaluated at the batch statistics. dL/dx is the exact gradient of the whole layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from normgrad.symbolic import batch, core
from normgrad.symbolic.core import Verdict, sp


@dataclass
class SeedFormula:
    """One formula of the notebook: where it is, what it says, and its corrected form."""

    key: str
    cell: int  # the notebook cell that states it
    text: str  # the formula, in the notebook's notation
    correction: str = ""  # the corrected formula, when the stated one is wrong


@dataclass
class SeedVerdict:
    formula: SeedFormula
    verdict: Verdict
    corrected: Verdict | None = None  # the corrected formula's proof, when refuted


FORMULAS = [
    SeedFormula("dgamma", 8, "dL/dgamma = sum_i dL/dy_i * xhat_i"),
    SeedFormula("dxhat", 14, "dL/dxhat_i = dL/dy_i * gamma"),
    SeedFormula(
        "dx_unsimplified",
        23,
        "dL/dx_i = dL/dxhat_i / sqrt(var+eps) + dL/dvar * 2(x_i - mu)/N + dL/dmu / N",
    ),
    SeedFormula("sum_centred", 25, "sum_i (x_i - mu) = 0"),
    SeedFormula(
        "dx_simplified_1",
        26,
        "dL/dx_i = 1/sqrt(var+eps) * (dL/dxhat_i - 1/N sum_s dL/dxhat_s"
        " - x_i/N sum_s dL/dxhat_s * xhat_s)",
        "dL/dx_i = 1/sqrt(var+eps) * (dL/dxhat_i - 1/N sum_s dL/dxhat_s"
        " - xhat_i/N sum_s dL/dxhat_s * xhat_s)",
    ),
    SeedFormula(
        "dx_simplified_2",
        26,
        "dL/dx_i = gamma/sqrt(var+eps) * (dL/dy_i - 1/N (dL/dgamma * xhat_i + dL/dbeta))",
    ),
    SeedFormula(
        "second_term_is_dmu",
        27,
        "1/N dL/dmu = -1/(N sqrt(var+eps)) sum_s dL/dxhat_s  (the 2nd term of simplified form 1)",
    ),
    SeedFormula("dmu", 28, "dL/dmu = -1/sqrt(var+eps) sum_s dL/dxhat_s"),
]


def _vec(values: Any) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _cases(N: int) -> tuple[dict[str, Callable[..., tuple]], Any, list[core.Radical]]:
    """For each formula key, a function returning (candidate, exact[, corrected])."""
    p = batch.build(N, 1)
    c: batch.Cache = p.cache
    x, dy, eps = c.x[:, 0], p.dout[:, 0], p.eps
    gamma, beta = c.gamma[0], p.params["beta"][0]
    mu, var, xhat = c.mu[0], c.var[0], c.xhat[:, 0]
    root = sp.sqrt(var + eps)
    dxhat = dy * gamma  # (N,) the notebook's dL/dxhat, used inside the later formulas

    # L as a function of independent xhat: the exact dL/dxhat_i.
    xh = core.symbol_array("xhat", (N,))
    L_xhat = sp.Add(*(dy * (gamma * xh + beta)))
    exact_dxhat = _vec(sp.diff(L_xhat, s) for s in xh)
    # L as a function of (x, m, v): the exact dL/dvar and dL/dmu at the batch statistics.
    m, v = sp.Symbol("m", real=True), sp.Symbol("v", positive=True)
    F = sp.Add(*(dy * (gamma * (x - m) / sp.sqrt(v + eps) + beta)))
    exact_dvar = sp.diff(F, v).subs({v: var, m: mu})
    var_of_m = np.mean((x - m) * (x - m))  # var as a function of the mean node
    exact_dmu = sp.diff(F.subs(v, var_of_m), m).subs(m, mu)

    exact_dx = p.exact["dx"][:, 0]
    sum_dxhat = sp.Add(*dxhat)
    sum_dxhat_xhat = sp.Add(*(dxhat * xhat))
    dgamma, dbeta = sp.Add(*(dy * xhat)), sp.Add(*dy)
    cases: dict[str, Callable[..., tuple]] = {
        "dgamma": lambda: (_vec([dgamma]), p.exact["dgamma"]),
        "dxhat": lambda: (dxhat, exact_dxhat),
        "dx_unsimplified": lambda: (
            dxhat / root + exact_dvar * 2 * (x - mu) / N + exact_dmu / N,
            exact_dx,
        ),
        "sum_centred": lambda: (_vec([sp.Add(*(x - mu))]), _vec([sp.Integer(0)])),
        "dx_simplified_1": lambda: (
            (dxhat - sum_dxhat / N - x / N * sum_dxhat_xhat) / root,
            exact_dx,
            (dxhat - sum_dxhat / N - xhat / N * sum_dxhat_xhat) / root,
        ),
        "dx_simplified_2": lambda: (gamma / root * (dy - (dgamma * xhat + dbeta) / N), exact_dx),
        "second_term_is_dmu": lambda: (_vec([-sum_dxhat / (N * root)]), _vec([exact_dmu / N])),
        "dmu": lambda: (_vec([-sum_dxhat / root]), _vec([exact_dmu])),
    }
    return cases, eps, p.radicals


def check_seed(N: int = 3) -> list[SeedVerdict]:
    """A verdict on every formula in ``FORMULAS``, at batch size N (one feature)."""
    core.check_size("seed", (N, 1), N)
    cases, eps, radicals = _cases(N)
    out = []
    for f in FORMULAS:
        cand, exact, *fix = cases[f.key]()
        verdict = core.compare(f.key, {"value": cand}, {"value": exact}, eps, radicals)
        corrected = None
        if fix:
            corrected = core.compare(
                f"{f.key} (corrected)", {"value": fix[0]}, {"value": exact}, eps, radicals
            )
        out.append(SeedVerdict(f, verdict, corrected))
    return out


def format_seed(verdicts: list[SeedVerdict], N: int) -> str:
    """One line per formula with 'proved' or 'refuted', then counterexamples and fixes."""
    lines = [f"Seed notebook formulas, checked exactly for batch norm x: ({N}, 1), eps > 0:"]
    for sv in verdicts:
        f, v = sv.formula, sv.verdict
        lines.append(f"{v.status:<8} [cell {f.cell}] {f.key}: {f.text}")
        if v.status != "proved":
            cex = ", ".join(f"{k}={val}" for k, val in v.counterexample.items())
            lines.append(f"         counterexample ({v.detail}): {cex}")
        if sv.corrected is not None and v.status != "proved":
            lines.append(f"         corrected: {f.correction}  [{sv.corrected.status}]")
    return "\n".join(lines)
