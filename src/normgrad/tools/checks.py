"""What ``normgrad check`` runs: every layer, every backward route, every gradient.

The cases are every registered normalization's (``NormSpec.check_cases``, in registry
order), then the course's other layers (``tools.op_cases``), then the sandwiches with
every registered normalization in them (``tools.block_cases``). Each ``CheckCase`` names a
layer and one of its backward routes, its forward and backward functions, and how to
draw float64 inputs; ``run_checks`` runs ``gradcheck.check_layer`` on each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from normgrad._internal.tables import format_table as _format_table
from normgrad.gradcheck.layer import LayerCheck, check_layer
from normgrad.norms import registry
from normgrad.norms.spec import CheckCase
from normgrad.tools import block_cases, op_cases


@dataclass(frozen=True)
class CheckRow:
    """One line of the table: one gradient of one route of one layer."""

    layer: str
    route: str
    gradient: str
    rel_error: float
    passed: bool


def cases() -> list[CheckCase]:
    """Every check case: the normalizations, the other layers, then the sandwiches."""
    norms = [c for spec in registry.SPECS for c in spec.check_cases()]
    return [*norms, *op_cases.CASES, *block_cases.CASES]


def layers() -> list[str]:
    """The layer names ``normgrad check --layer`` accepts, in table order."""
    return list(dict.fromkeys(c.layer for c in cases()))


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
    for case in cases():
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
    body = [
        (r.layer, r.route, r.gradient, f"{r.rel_error:.2e}", "pass" if r.passed else "FAIL")
        for r in rows
    ]
    return _format_table(body, ("layer", "route", "gradient", "rel error", "result"))


def report(rows: list[CheckRow], tol: float) -> tuple[str, bool]:
    """The table and its summary line, and whether every row passed."""
    failed = sum(not r.passed for r in rows)
    summary = (
        f"{len(rows) - failed} passed, {failed} failed (finite differences, float64, "
        f"random upstream gradient, tol {tol:g})"
    )
    return f"{format_table(rows)}\n\n{summary}", failed == 0
