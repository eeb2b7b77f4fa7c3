"""The grading process: import the student's modules, grade every course function found.

``python -m normgrad.tools.grade.worker SPEC RESULT`` is what ``runner`` starts, in a
process of its own with stdin closed: SPEC is JSON (the modules to import, the sys.path
entries they need, the selected function, seed, tol, the per-call time limit), and the
``GradeResult`` is written as JSON to the file RESULT. Before each step a line goes to
RESULT + ".progress", so a process that dies (os._exit, a crash in native code) or
hangs can be reported with where it was.

``grade_modules`` is the same grade on modules already loaded, for in-process use.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from normgrad.tools.grade import compare, diagnose, sandbox
from normgrad.tools.grade.families import COURSE_NAMES, FAMILIES
from normgrad.tools.grade.result import GradeResult, Row
from normgrad.tools.grade.sandbox import Loaded

_progress: Path | None = None


def progress(text: str) -> None:
    """Record the step about to run (read by ``runner`` if this process dies)."""
    if _progress is not None:
        with open(_progress, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


def functions(loaded: Sequence[Loaded]) -> tuple[dict[str, Any], dict[str, str]]:
    """(course name -> function, course name -> the file defining it) over every module.

    A function re-exported by several modules (``from .layers import *``) counts once,
    under the module that defines it.
    """
    fns: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for mod in loaded:
        if mod.module is None:
            continue
        for name in COURSE_NAMES:
            obj = getattr(mod.module, name, None)
            if not callable(obj):
                continue
            own = getattr(obj, "__module__", None) == mod.name
            if name not in fns or own:
                fns[name], origin[name] = obj, Path(mod.path).name
    return fns, origin


def _order(fam: Any, track: Any) -> tuple[int, int, str]:
    """Forward rows first (out, out (test), running stats), then each backward's."""
    names = list(fam.names)
    fn = names.index(track.function) if track.function in names else len(names)
    outs = ["out", "out (test)", "loss", "running_mean", "running_var", *fam.grads]
    o = outs.index(track.output) if track.output in outs else len(outs)
    return fn, o, track.output


def grade_modules(
    loaded: Sequence[Loaded],
    *,
    target: str = "",
    select: str | None = None,
    seed: int = 0,
    tol: float = 1e-8,
    limit: float | None = None,
) -> GradeResult:
    """Grade every course function the loaded modules define (or only ``select``)."""
    result = GradeResult(target, [m.path for m in loaded], seed=seed, tol=tol)
    for mod in loaded:
        if mod.error:
            result.import_errors.append(mod.error)
    fns, origin = functions(loaded)
    if select is not None:
        fam = COURSE_NAMES[select]
        fns = {k: v for k, v in fns.items() if k in fam.names}
        if select not in fns:
            result.fatal = f"{select} is not defined by {target or 'the module'}"
            return result
    files = tuple(m.path for m in loaded)
    for index, fam in enumerate(FAMILIES):
        mine = {k: v for k, v in fns.items() if k in fam.names}
        if not mine:
            continue
        progress(f"grading {', '.join(mine)}")
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        try:
            outcome = compare.grade(fam, mine, rng, tol, limit, files)
        except Exception as exc:  # a grader bug on odd output must not lose the other rows
            result.rows.append(
                Row(fam.forward, "all", 0, 1, float("nan"), "ERROR", f"grader failed: {exc!r}")
            )
            continue
        keep = (lambda f: f == select) if select else (lambda f: True)
        for track in sorted(outcome.tracks.values(), key=lambda t: _order(fam, t)):
            if keep(track.function):
                result.rows.append(track.row(tol, origin.get(track.function, "")))
        progress(f"diagnosing {', '.join(mine)}")
        try:
            found = diagnose.findings(outcome, mine, tol, limit=limit, files=files, seed=seed)
        except Exception as exc:  # the rows stand; only the explanation is lost
            result.notes.append(f"the diagnosis of {fam.forward} failed: {exc!r}")
            found = []
        result.findings.extend(f for f in found if keep(f.function))
    if not result.rows and not result.fatal:
        failed = [m.error for m in loaded if m.error]
        result.fatal = failed[0] if failed else "no course function found (batchnorm_forward, ...)"
    log = sandbox.LOG
    if log.inputs:
        result.notes.append(
            f"the code called input() {log.inputs} time(s); it got an empty line (stdin is "
            "closed while grading): keep scripts under `if __name__ == '__main__':`"
        )
    if log.printed:
        shown = "; ".join(log.printed[:3])
        result.notes.append(f"the code printed {len(log.printed)} line(s), e.g.: {shown[:200]}")
    return result


def main(argv: Sequence[str]) -> int:
    """Run one grade as ``runner`` asks (see the module docstring)."""
    global _progress
    spec = json.loads(argv[0])
    out = Path(argv[1])
    _progress = Path(str(out) + ".progress")
    for entry in reversed(spec["sys_path"]):  # the student's folders first, as for a script
        if entry not in sys.path:
            sys.path.insert(0, entry)
    limit = spec["limit"]
    loaded = []
    for name, path in spec["modules"]:
        progress(f"importing {Path(path).name}")
        loaded.append(sandbox.load(name, Path(path), limit))
    result = grade_modules(
        loaded,
        target=spec["target"],
        select=spec["select"],
        seed=spec["seed"],
        tol=spec["tol"],
        limit=limit,
    )
    tmp = out.with_suffix(".tmp")
    tmp.write_text(result.to_json(), encoding="utf-8")
    os.replace(tmp, out)
    progress("done")
    return 0


if __name__ == "__main__":  # pragma: no cover - run by runner in a subprocess
    sys.exit(main(sys.argv[1:]))
