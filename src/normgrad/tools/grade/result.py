"""What a grade is made of: the rows, the diagnoses, the notes, and their JSON form.

The worker process builds a ``GradeResult`` and writes it as JSON; the parent reads it
back with ``GradeResult.from_json`` (JSON, never pickle: the child runs a student's code,
and nothing it writes may run code in the parent).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("pass", "FAIL", "ERROR", "todo")


@dataclass
class Row:
    """One function and one of its outputs, over every case it was graded on."""

    function: str
    output: str
    passed: int
    total: int
    worst: float  # the worst normwise relative error (nan when nothing was compared)
    status: str  # "pass", "FAIL", "ERROR" (it raised or timed out), "todo" (returned None)
    note: str = ""
    module: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "pass"


@dataclass
class Mistake:
    """A catalog entry the wrong output matches."""

    key: str
    title: str
    why: str
    pointer: str
    distance: float


@dataclass
class Finding:
    """Why one output of one function is wrong: named mistake, paths, counterexample."""

    function: str
    output: str
    summary: str
    mistakes: list[Mistake] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    invariants: list[str] = field(default_factory=list)
    counterexample: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


@dataclass
class GradeResult:
    """Everything ``normgrad grade`` reports about one PATH."""

    target: str
    modules: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: str = ""  # the grade could not run at all (import failed before any function)
    import_errors: list[str] = field(default_factory=list)  # modules that stopped importing
    seed: int = 0
    tol: float = 1e-8

    @property
    def ok(self) -> bool:
        """Every row passes, and every module imported to its end."""
        return (
            not self.fatal
            and not self.import_errors
            and bool(self.rows)
            and all(r.ok for r in self.rows)
        )

    def to_json(self) -> str:
        def clean(o: Any) -> Any:
            if isinstance(o, float) and not math.isfinite(o):
                return repr(o)  # "nan", "inf": JSON has no such numbers
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            return o

        return json.dumps(clean(asdict(self)))

    @classmethod
    def from_json(cls, text: str) -> GradeResult:
        """Rebuild a result written by ``to_json``.

        Raises:
            ValueError: ``text`` is not such a result.
        """
        try:
            d = json.loads(text)
            rows = [Row(**{**r, "worst": float(r["worst"])}) for r in d.pop("rows")]
            findings = []
            for f in d.pop("findings"):
                ms = [Mistake(**{**m, "distance": float(m["distance"])}) for m in f.pop("mistakes")]
                findings.append(Finding(**f, mistakes=ms))
            return cls(**d, rows=rows, findings=findings)
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a grade result: {exc}") from None
