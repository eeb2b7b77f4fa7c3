"""Grade one family: call the student's functions on every case, compare with normgrad.

A student's caches are their own (a tuple in their own order, a dict, anything), so each
backward is fed the cache of the student's OWN forward on the same case, and its
gradients are compared with normgrad's. normgrad's cache is never given to a student's
backward: its layout is normgrad's, and a backward that unpacks it by position would be
graded on a misreading. When the student's forward is wrong, their backward is
additionally checked against finite differences of their own forward (the row
"vs your forward"): a backward that is right for the forward it was given says so, and
the forward is the thing to fix.

Errors are normwise, ||got - want|| / (||got|| + ||want||) (0 when both are 0), in
float64; an output passes below ``tol`` (default 1e-8).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad.tools.grade import sandbox, views
from normgrad.tools.grade.cases import Case
from normgrad.tools.grade.families import Family
from normgrad.tools.grade.result import Row
from normgrad.tools.grade.sandbox import StudentError


def normwise(a: Any, b: Any) -> float:
    """||a - b|| / (||a|| + ||b||), 0 when both are 0, inf for shapes that differ."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    den = np.linalg.norm(a) + np.linalg.norm(b)
    if not np.isfinite(den):
        return float("nan")
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


@dataclass
class Sample:
    """One case's value of one output, kept for the diagnosis."""

    case: Case
    got: np.ndarray | None
    want: np.ndarray
    error: float
    view: views.NormView | None


@dataclass
class Track:
    """One row in the making."""

    function: str
    output: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    todo: int = 0
    tol: float | None = None  # this row's own threshold (None: the grade's tol)

    def add(self, got: Any, want: Any, case: Case, view: views.NormView | None, tol: float):
        if got is None:
            self.todo += 1
            return
        try:
            arr = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            self.errors.append(f"returned {type(got).__name__}, not numbers ({case.label})")
            return
        w = np.asarray(want, dtype=np.float64)
        err = normwise(arr, w)
        if arr.shape != w.shape:
            note = f"shape {arr.shape}, expected {w.shape} ({case.label})"
            if note not in self.notes:
                self.notes.append(note)
        self.samples.append(Sample(case, arr, w, err, view))

    def failing(self, tol: float) -> list[Sample]:
        t = self.tol if self.tol is not None else tol
        return [s for s in self.samples if not s.error < t]

    def row(self, tol: float, module: str = "") -> Row:
        n = len(self.samples) + len(self.errors) + self.todo
        passed = n - len(self.failing(tol)) - len(self.errors) - self.todo
        worst = max((s.error for s in self.samples), default=float("nan"))
        if self.errors:
            status, note = "ERROR", self.errors[0]
        elif self.todo and not self.samples:
            status, note = "todo", "returned None: not implemented yet"
        else:
            status = "pass" if passed == n else "FAIL"
            note = "; ".join(self.notes[:1]) + (
                "; returned None on some cases" if self.todo else ""
            )
        return Row(self.function, self.output, passed, n, worst, status, note.strip("; "), module)


@dataclass
class Outcome:
    """A family's tracks (rows), in order, and what the diagnosis needs."""

    family: Family
    tracks: dict[tuple[str, str], Track] = field(default_factory=dict)
    forward_wrong: bool = False

    def track(self, function: str, output: str) -> Track:
        key = (function, output)
        if key not in self.tracks:
            self.tracks[key] = Track(function, output)
        return self.tracks[key]


def make_view(
    family: Family, case: Case, ref_param: dict[str, Any] | None
) -> views.NormView | None:
    """The case's ``NormView`` (with its running statistics before and after), or None."""
    if family.view is None:
        return None
    param = case.param or {}
    running: dict[str, Any] = {}
    if family.running and case.mode == "train" and ref_param is not None:
        C = case.inputs["gamma"].shape[0]
        running = {
            "momentum": float(param.get("momentum", 0.9)),
            "old_mean": np.asarray(param.get("running_mean", np.zeros(C)), dtype=np.float64),
            "old_var": np.asarray(param.get("running_var", np.zeros(C)), dtype=np.float64),
            "new_mean": np.asarray(ref_param["running_mean"], dtype=np.float64),
            "new_var": np.asarray(ref_param["running_var"], dtype=np.float64),
        }
    return views.view(
        family.view,
        case.inputs,
        case.dout if case.dout is not None else case.inputs["x"] * 0,
        float(param.get("eps", 1e-5)),
        G=case.extra.get("G"),
        running=running,
    )


def _copy(cache: Any) -> Any:
    """A copy of a student's cache for one backward call (the cache itself if it cannot be
    copied), so a backward that writes into its cache cannot change the next one's."""
    try:
        return copy.deepcopy(cache)
    except Exception:  # an object deepcopy refuses (a module, a generator, ...)
        return cache


def _changed(args: list[Any], saved: list[Any], names: list[str]) -> str:
    for n, (a, s) in enumerate(zip(args, saved, strict=True)):
        if isinstance(s, np.ndarray) and (
            not isinstance(a, np.ndarray) or a.shape != s.shape or not np.array_equal(a, s)
        ):
            name = names[n] if n < len(names) else f"argument {n + 1}"
            return f"changed its input {name} in place"
    return ""


def grade(
    family: Family,
    fns: dict[str, Any],
    rng: np.random.Generator,
    tol: float,
    limit: float | None = None,
    files: tuple[str, ...] = (),
) -> Outcome:
    """Run ``family``'s cases through the student's functions ``fns`` (name -> callable)."""
    out = Outcome(family)
    forward = fns.get(family.forward)
    backs = {b: fns[b] for b in family.backwards if b in fns}
    if forward is None:
        for b in backs:
            out.track(b, "all").errors.append(
                f"needs its cache from {family.forward}, which this module does not define"
            )
        return out
    if family.name == "dropout":
        from normgrad.tools.grade import dropout_judge

        dropout_judge.grade(out, forward, backs, family.make_cases(rng), tol, limit, files)
        return out
    dead: set[str] = set()
    for case in family.make_cases(rng):
        ref_out, ref_grads, ref_param = family.reference(case)
        view = make_view(family, case, ref_param)
        param = family.fresh_param(case)
        args = family.args(case, param)
        saved = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
        if family.forward in dead:
            continue
        try:
            result = sandbox.call(forward, args, limit, files)
            named, cache = family.outputs(result, case, param)
        except StudentError as exc:
            out.track(family.forward, next(iter(ref_out))).errors.append(f"{exc} ({case.label})")
            if "did not finish" in str(exc):
                dead.add(family.forward)
            continue
        except (TypeError, ValueError):
            what = "(loss, dx)" if family.loss else "(out, cache)"
            out.track(family.forward, next(iter(ref_out))).errors.append(
                f"returned {type(result).__name__}, expected {what} ({case.label})"
            )
            continue
        changed = _changed(args, saved, list(case.inputs))
        if changed:
            out.track(family.forward, "inputs").errors.append(changed)
        for name, want in ref_out.items():
            out.track(family.forward, name).add(named.get(name), want, case, view, tol)
        if not case.backward or family.loss or case.dout is None:
            continue
        for b, fn in backs.items():
            if b in dead:
                continue
            try:
                got = sandbox.call(fn, [case.dout.copy(), _copy(cache)], limit, files)
            except StudentError as exc:
                out.track(b, family.grads[0]).errors.append(f"{exc} ({case.label})")
                if "did not finish" in str(exc):
                    dead.add(b)
                continue
            got = got if isinstance(got, (tuple, list)) else (got,)
            if len(got) != len(family.grads):
                out.track(b, family.grads[0]).errors.append(
                    f"returned {len(got)} values, expected {', '.join(family.grads)}"
                )
                continue
            for name, g in zip(family.grads, got, strict=True):
                out.track(b, name).add(g, ref_grads[name], case, view, tol)
    out.forward_wrong = any(
        t.failing(tol) for (f, o), t in out.tracks.items() if f == family.forward and o == "out"
    )
    if out.forward_wrong and family.smooth:
        _versus_own_forward(out, forward, backs, tol, limit, files)
    return out


def _versus_own_forward(
    out: Outcome, forward: Any, backs: dict[str, Any], tol: float, limit: float | None, files
) -> None:
    """Each backward against finite differences of the student's own (wrong) forward."""
    from normgrad.gradcheck.layer import check_layer

    fam = out.family
    bad = out.tracks[(fam.forward, "out")].failing(tol)
    case = min((s.case for s in bad), key=lambda c: c.inputs["x"].size)
    names = list(case.inputs)

    def bound(*arrays: np.ndarray) -> tuple[np.ndarray, Any]:
        c = Case(
            case.label,
            dict(zip(names, arrays, strict=True)),
            case.param,
            case.extra,
            case.dout,
            case.mode,
        )
        result = sandbox.call(forward, fam.args(c, fam.fresh_param(c)), limit, files)
        return np.asarray(result[0], dtype=np.float64), result[1]

    def backward_of(fn: Any) -> Any:
        return lambda d, c: sandbox.call(fn, [d, c], limit, files)

    for b, fn in backs.items():
        track = out.track(b, "vs your forward")
        track.tol = 1e-6  # finite differences (fourth order, float64) resolve ~1e-10
        try:
            res = check_layer(bound, backward_of(fn), case.inputs, tol=1e-6)
        except (StudentError, TypeError, ValueError) as exc:
            track.errors.append(f"finite differences of your forward failed: {exc}")
            continue
        err = res.max_rel_error
        track.samples.append(Sample(case, None, np.zeros(0), err, None))
        track.notes.append(
            "consistent with your forward: fix the forward first"
            if err < 1e-6
            else "not even the derivative of your own forward"
        )
