"""Every formula the seed notebook states, as formulas of ``derive check``'s language.

(seed/batch_norm_derivation.ipynb.) The notebook works per feature (vectors multiply
elementwise), so each formula is checked on one feature of batch norm, x: (N, 1), with
eps a positive symbol, and, through the group's power sums, for every N. The notebook's
partial derivatives are made precise as in the paper's graph (the language's ``dxhat``,
``dvar`` and ``dmu``): L is a function of (x, mu, var) with
xhat = (x - mu) / sqrt(var + eps), so

- dL/dxhat_i treats the xhat_i as independent inputs of y = gamma * xhat + beta;
- dL/dvar is the partial derivative with x and mu held fixed;
- dL/dmu is the derivative through xhat and through var = 1/N sum (x_i - mu)^2,
  x held fixed;

each evaluated at the batch statistics. dL/dx is the exact gradient of the whole layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from normgrad.symbolic import check, core, worlds
from normgrad.symbolic.core import Verdict
from normgrad.symbolic.language import parse


@dataclass
class SeedFormula:
    """One formula of the notebook: where it is, what it says, and its corrected form."""

    key: str
    cell: int  # the notebook cell that states it
    text: str  # the formula, in the notebook's notation
    formula: str  # the same, in derive check's language
    correction: str = ""  # the corrected formula (notebook notation), when it is wrong
    fix: str = ""  # the corrected formula in the language


@dataclass
class SeedVerdict:
    formula: SeedFormula
    verdict: Verdict
    corrected: Verdict | None = None  # the corrected formula's proof, when refuted
    every_n: bool | None = None  # proved for every N through the power sums


FORMULAS = [
    SeedFormula("dgamma", 8, "dL/dgamma = sum_i dL/dy_i * xhat_i", "dgamma = sum(dy * xhat)"),
    SeedFormula("dxhat", 14, "dL/dxhat_i = dL/dy_i * gamma", "dxhat = dy * gamma"),
    SeedFormula(
        "dx_unsimplified",
        23,
        "dL/dx_i = dL/dxhat_i / sqrt(var+eps) + dL/dvar * 2(x_i - mu)/N + dL/dmu / N",
        "dx = dxhat/sqrt(var + eps) + dvar * 2(x - mu)/N + dmu/N",
    ),
    SeedFormula("sum_centred", 25, "sum_i (x_i - mu) = 0", "sum(x - mu) = 0"),
    SeedFormula(
        "dx_simplified_1",
        26,
        "dL/dx_i = 1/sqrt(var+eps) * (dL/dxhat_i - 1/N sum_s dL/dxhat_s"
        " - x_i/N sum_s dL/dxhat_s * xhat_s)",
        "dx = 1/sqrt(var + eps) * (dxhat - 1/N sum(dxhat) - x/N sum(dxhat * xhat))",
        "dL/dx_i = 1/sqrt(var+eps) * (dL/dxhat_i - 1/N sum_s dL/dxhat_s"
        " - xhat_i/N sum_s dL/dxhat_s * xhat_s)",
        "dx = 1/sqrt(var + eps) * (dxhat - 1/N sum(dxhat) - xhat/N sum(dxhat * xhat))",
    ),
    SeedFormula(
        "dx_simplified_2",
        26,
        "dL/dx_i = gamma/sqrt(var+eps) * (dL/dy_i - 1/N (dL/dgamma * xhat_i + dL/dbeta))",
        "dx = gamma/sqrt(var + eps) * (dy - 1/N (dgamma * xhat + dbeta))",
    ),
    SeedFormula(
        "second_term_is_dmu",
        27,
        "1/N dL/dmu = -1/(N sqrt(var+eps)) sum_s dL/dxhat_s  (the 2nd term of simplified form 1)",
        "dmu/N = -1/(N sqrt(var + eps)) sum(dxhat)",
    ),
    SeedFormula(
        "dmu",
        28,
        "dL/dmu = -1/sqrt(var+eps) sum_s dL/dxhat_s",
        "dmu = -1/sqrt(var + eps) sum(dxhat)",
    ),
]


def check_seed(N: int = 3, every: bool = False) -> list[SeedVerdict]:
    """A verdict on every formula in ``FORMULAS`` at batch size N (one feature); with
    ``every``, also whether each formula (or its correction) holds for every N."""
    core.check_size("seed", (N, 1), N)
    world = worlds.FixedWorld("batch", N)
    out = []
    for f in FORMULAS:
        program = parse(f.formula, "batch")
        verdict = worlds.compare_fixed(f.key, program, world)
        corrected = None
        if f.fix:
            corrected = worlds.compare_fixed(f"{f.key} (corrected)", parse(f.fix), world)
        sv = SeedVerdict(f, verdict, corrected)
        if every:
            sv.every_n = check.every_n(parse(f.fix or f.formula))[0] is True
        out.append(sv)
    return out


def format_seed(verdicts: list[SeedVerdict], N: int) -> str:
    """One line per formula with 'proved' or 'refuted', then counterexamples and fixes;
    under each, the formula in derive check's language (and its every-N verdict)."""
    lines = [f"Seed notebook formulas, checked exactly for batch norm x: ({N}, 1), eps > 0:"]
    for sv in verdicts:
        f, v = sv.formula, sv.verdict
        lines.append(f"{v.status:<8} [cell {f.cell}] {f.key}: {f.text}")
        if v.status != "proved":
            cex = ", ".join(f"{k}={val}" for k, val in v.counterexample.items())
            lines.append(f"         counterexample ({v.detail}): {cex}")
        if sv.corrected is not None and v.status != "proved":
            lines.append(f"         corrected: {f.correction}  [{sv.corrected.status}]")
        every = ""
        if sv.every_n is not None:
            every = f"  [{'proved for all N' if sv.every_n else 'not proved for all N'}]"
        lines.append(f"         as a formula: {f.formula}{'' if f.fix else every}")
        if f.fix:
            lines.append(f"         corrected, as a formula: {f.fix}{every}")
    return "\n".join(lines)
