"""The registry behind ``normgrad check``: every layer, every backward route, every gradient.

Each ``CheckCase`` names a layer and one of its backward routes, the forward and
backward functions, and how to draw float64 inputs. ``run_checks`` runs
``gradient_check.check_layer`` on each and returns the rows of the table the CLI prints.
A layer joins ``normgrad check`` by adding its cases to its area's list in
``normgrad.checkcases`` (batch norm, the other normalizations, the course's ops).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from normgrad.checkcases import CheckCase
from normgrad.checkcases import batch as batch_cases
from normgrad.checkcases import norms as norm_cases
from normgrad.checkcases import ops as op_cases
from normgrad.gradient_check import LayerCheck, check_layer


@dataclass(frozen=True)
class CheckRow:
    """One line of the table: one gradient of one route of one layer."""

    layer: str
    route: str
    gradient: str
    rel_error: float
    passed: bool


# Registry order is table order: batch norm, the other normalizations, the course's ops.
CASES: list[CheckCase] = [*batch_cases.CASES, *norm_cases.CASES, *op_cases.CASES]


def layers() -> list[str]:
    """The layer names ``normgrad check --layer`` accepts, in registry order."""
    return list(dict.fromkeys(c.layer for c in CASES))


def run_checks(
    selected: Iterable[str] | None = None, seed: int = 0, tol: float = 1e-8
) -> list[CheckRow]:
    """Check every case of the selected layers (all when None) at one random point each.

    Raises:
        ValueError: a selected layer name is not registered.
    """
    known = layers()
    chosen = known if selected is None else list(selected)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; choose from {known}.")
    rows: list[CheckRow] = []
    for case in CASES:
        if case.layer not in chosen:
            continue
        inputs = case.make_inputs(np.random.default_rng(seed))
        report: LayerCheck = check_layer(case.forward, case.backward, inputs, seed=seed, tol=tol)
        rows.extend(
            CheckRow(case.layer, case.route, g.name, g.rel_error, g.passed) for g in report.grads
        )
    return rows


def format_table(rows: list[CheckRow]) -> str:
    """Rows as a fixed-width table: layer, route, gradient, rel error, pass/fail."""
    header = ("layer", "route", "gradient", "rel error", "result")
    body = [(r.layer, r.route, r.gradient, f"{r.rel_error:.2e}", "pass" if r.passed else "FAIL")
            for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*line) for line in body]
    return "\n".join(lines)
