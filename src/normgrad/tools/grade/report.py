"""The grade as a student reads it: the table, then every failing function explained.

First one row per function and output (cases passed, worst normwise error, pass or
FAIL), then for each failing output, in order: the named mistake with its one-line
explanation and the step of ``docs/derivation.md`` it breaks; the path diagnosis and
the invariants (normalizations); hints; and the smallest counterexample with the
correct value. Notes (what the code printed, input() calls, modules that stopped
importing) come last.
"""

from __future__ import annotations

import math
import os

from normgrad._internal.tables import format_table
from normgrad.tools.grade.result import Finding, GradeResult, Row

_WIDTH = 60  # longest note printed in the table


def _short(path: str) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _err(r: Row) -> str:
    return "-" if not math.isfinite(r.worst) and r.status != "FAIL" else f"{r.worst:.1e}"


def table(result: GradeResult) -> str:
    rows = []
    for r in result.rows:
        note = r.note if len(r.note) <= _WIDTH else r.note[: _WIDTH - 3] + "..."
        rows.append([r.function, r.output, f"{r.passed}/{r.total}", _err(r), r.status, note])
    return format_table(
        rows, ["function", "output", "cases", "worst error", "result", "note"], "<<>><<"
    )


def _finding(f: Finding) -> list[str]:
    out = [f"{f.function}: {f.summary}"]
    if f.mistakes:
        best = f.mistakes[0]
        out += [
            f"  mistake: {best.key}: {best.title}",
            f"    why: {best.why}",
            f"    see: {best.pointer}",
        ]
        if len(f.mistakes) > 1:
            others = ", ".join(m.key for m in f.mistakes[1:])
            out.append(f"    (it also matches: {others})")
    elif f.paths:
        out.append("  mistake: not in the catalog; the paths below say where it is")
    out += ["  " + line for line in f.paths]
    out += ["  " + line for line in f.invariants]
    out += [f"  hint: {h}" for h in f.hints]
    out += ["  " + line for line in f.counterexample]
    return out


def format_result(result: GradeResult) -> str:
    """The whole report (see the module docstring)."""
    head = (
        f"normgrad grade {result.target}: float64, seed {result.seed}, "
        f"a row passes below normwise error {result.tol:g}"
    )
    lines = [head]
    if result.modules:
        lines.append("modules: " + ", ".join(_short(m) for m in result.modules))
    if result.fatal:
        lines += ["", f"could not grade: {result.fatal}"]
    if result.rows:
        n_ok = sum(r.ok for r in result.rows)
        lines += ["", table(result), "", f"{n_ok}/{len(result.rows)} rows pass"]
    if result.import_errors:
        lines += [
            "",
            "FAIL: not every module imported to its end (what it defined before was graded):",
        ]
        lines += [f"  {e}" for e in result.import_errors]
    for f in result.findings:
        lines += ["", *_finding(f)]
    if result.notes:
        lines += ["", "notes:"] + [f"  {n}" for n in result.notes]
    lines += ["", *summary(result)]
    return "\n".join(lines)


def summary(result: GradeResult) -> list[str]:
    """The closing lines: counts by result, and what to do first."""
    if result.rows and result.ok:
        return ["every function matches normgrad's reference."]
    counts = {s: sum(r.status == s for r in result.rows) for s in ("pass", "FAIL", "ERROR", "todo")}
    out = [", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing was graded"]
    failing = [r for r in result.rows if not r.ok]
    forwards = [r for r in failing if "forward" in r.function or r.output.startswith("out")]
    if forwards:
        out.append(
            f"start with {forwards[0].function}: a backward is graded through its forward's "
            "cache, so a wrong forward makes its backward look wrong too"
        )
    elif failing:
        out.append(f"start with {failing[0].function} ({failing[0].output}), explained above")
    if result.import_errors:
        out.append("and make every module import cleanly (see above)")
    if failing:
        out.append(
            'rerun with --seed to draw other cases; `normgrad derive check "FORMULA"` '
            "proves or refutes a formula for dx"
        )
    return out
