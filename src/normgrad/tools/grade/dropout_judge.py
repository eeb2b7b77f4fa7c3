"""Dropout is judged by its rules, not against normgrad's draws.

A student's mask comes from their own random draws (``np.random.rand``, ``binomial``,
...), so their output cannot be compared with normgrad's number for number. Inverted
dropout with keep probability p (the course's convention) must instead:

- in train mode, give out = x * m with every m in {0, 1/p} (so E[out] = x), keep a
  fraction of the units within 5 standard deviations of p, and draw the same mask again
  for the same ``dropout_param['seed']``;
- in test mode, give out = x;
- in the backward, give dx = dout * m with the mask of the same forward call (train),
  and dx = dout (test).

The errors in the rows are normwise: out against x * [m > 0] / p, dx against dout * m.
Two common slips get their own message: a mask of {0, 1} (not inverted) and a keep
fraction near 1 - p (p read as the drop probability, PyTorch's convention).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from normgrad.tools.grade import sandbox
from normgrad.tools.grade.cases import Case
from normgrad.tools.grade.compare import _copy
from normgrad.tools.grade.sandbox import StudentError


def _mask_problem(x: np.ndarray, out: np.ndarray, p: float) -> tuple[str, np.ndarray]:
    """('' or what is wrong, the mask out / x)."""
    m = out / x  # x = 10 + randn: never 0
    kept = m != 0
    frac = float(kept.mean())
    n = m.size
    sigma = np.sqrt(p * (1 - p) / n)
    if kept.any() and not np.allclose(m[kept], 1.0 / p, rtol=1e-9, atol=0):
        if np.allclose(m[kept], 1.0, rtol=1e-9):
            return "not inverted: the kept units are not divided by p (out = x * mask)", m
        if p < 1 and np.allclose(m[kept], 1.0 / (1 - p), rtol=1e-9):
            return "p used as the DROP probability: the course's p is the keep probability", m
        return "the kept units are not scaled by exactly 1/p", m
    if abs(frac - p) > 5 * sigma + 1.0 / n:
        if p < 1 and abs(frac - (1 - p)) <= 5 * sigma + 1.0 / n:
            return (
                f"kept {frac:.0%} of the units for p = {p:g}: p is the KEEP probability "
                f"(mask = rand < p), not the drop probability",
                m,
            )
        return f"kept {frac:.0%} of the units; the keep probability p is {p:g}", m
    return "", m


def grade(
    out: Any,
    forward: Any,
    backs: dict[str, Any],
    cases: list[Case],
    tol: float,
    limit: float | None,
    files: tuple[str, ...],
) -> None:
    """Fill ``out`` (a ``compare.Outcome``) with dropout's rows."""
    from normgrad.ops.dropout import dropout_forward

    for case in cases:
        assert case.param is not None and case.dout is not None  # cases.dropout sets both
        x = case.inputs["x"]
        p = float(case.param["p"])
        tag = "" if case.mode == "train" else " (test)"
        track = out.track("dropout_forward", f"out{tag}")
        try:
            res = sandbox.call(forward, [x.copy(), copy.deepcopy(case.param)], limit, files)
            got, cache = np.asarray(res[0], dtype=np.float64), res[1]
        except (StudentError, TypeError, ValueError, IndexError) as exc:
            track.errors.append(f"{exc} ({case.label})")
            continue
        if got.shape != x.shape:
            track.add(got, x, case, None, tol)  # a shape mismatch: the row says so
            continue
        if case.mode == "test":
            track.add(got, x, case, None, tol)
            mask = np.ones_like(x)
        else:
            problem, mask = _mask_problem(x, got, p)
            if problem:
                track.notes.append(f"{problem} ({case.label})")
            ideal = x * (mask != 0) / p
            track.add(got, ideal, case, None, tol)
            if problem and track.samples:
                track.samples[-1].error = max(track.samples[-1].error, 1.0)
            try:
                again = sandbox.call(forward, [x.copy(), copy.deepcopy(case.param)], limit, files)
                if not np.array_equal(np.asarray(again[0]), got):
                    track.notes.append("the same dropout_param['seed'] drew a different mask")
                    track.samples[-1].error = max(track.samples[-1].error, 1.0)
            except (StudentError, TypeError, IndexError):
                pass
            ref, _ = dropout_forward(x.copy(), copy.deepcopy(case.param))
            if not problem and not np.array_equal(ref != 0, mask != 0):
                note = (
                    "your mask is not the course's draw (np.random.rand(*x.shape) < p), so "
                    "numbers printed in the course's notebook will differ (allowed)"
                )
                if note not in out.track("dropout_forward", "out").notes:
                    out.track("dropout_forward", "out").notes.append(note)
        for b, fn in backs.items():
            btrack = out.track(b, "dx")
            try:
                dx = sandbox.call(fn, [case.dout.copy(), _copy(cache)], limit, files)
            except StudentError as exc:
                btrack.errors.append(f"{exc} ({case.label})")
                continue
            btrack.add(dx, case.dout * mask, case, None, tol)
