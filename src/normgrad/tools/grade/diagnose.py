"""Why an output is wrong: the named mistake, the wrong path, hints, a counterexample.

For every failing row of a family (``compare.Outcome``), in this order:

1. the catalog (``catalog.match``): the entries whose mutant equals the student's output
   on every failing case, to 1e-6;
2. for a normalization's dx, the invariants and the path fit (``invariants``), on the
   failing case with the largest groups;
3. generic hints that hold for any layer: a shape that is the transpose or a reduction
   over the wrong axis, an output that is a constant multiple of the right one (-1, N,
   1/N ...), an error so small it is float32 arithmetic, NaN, a forward that is wrong too;
4. the smallest counterexample (``counterexample.find``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.tools.grade import catalog, counterexample, invariants
from normgrad.tools.grade.compare import Outcome, Sample, Track, normwise
from normgrad.tools.grade.result import Finding, Mistake


def _multiple(got: np.ndarray, want: np.ndarray) -> float | None:
    den = float(np.vdot(want, want))
    if den == 0 or got.shape != want.shape:
        return None
    k = float(np.vdot(got, want)) / den
    return k if normwise(got, k * want) < 1e-9 and abs(k - 1) > 1e-6 else None


def hints(track: Track, samples: list[Sample], tol: float, forward_wrong: bool) -> list[str]:
    """Layer-independent observations about the failing samples."""
    out: list[str] = []
    s = samples[0]
    got, want = s.got, s.want
    if got is None:
        return out
    if got.shape != want.shape:
        if got.shape == want.shape[::-1]:
            out.append(
                f"your {track.output} is transposed: shape {got.shape}, expected {want.shape}"
            )
        elif got.size != want.size:
            out.append(
                f"your {track.output} has shape {got.shape}, expected {want.shape}: summed over "
                "the wrong axis, or not summed (a parameter's gradient sums over every axis it "
                "was broadcast along)"
            )
        return out
    if not np.all(np.isfinite(got)):
        out.append(f"your {track.output} contains NaN or inf")
        return out
    if not np.any(got) and np.any(want):
        out.append(f"your {track.output} is all zeros")
    found = [_multiple(x.got, x.want) for x in samples if x.got is not None]
    ks = [k for k in found if k is not None]
    sizes = [float(x.case.inputs["x"].shape[0]) for x in samples if x.got is not None]
    if ks and len(ks) == len(found) and track.function.startswith("dropout"):
        pass  # dropout's notes say what its scale means
    elif (
        ks
        and len(ks) == len(found)
        and all(
            abs(k - n) < 1e-6 * n or abs(k * n - 1) < 1e-6 for k, n in zip(ks, sizes, strict=True)
        )
    ):
        big = abs(ks[0] - sizes[0]) < 1e-6 * sizes[0]
        out.append(
            f"your {track.output} is N times {'too large' if big else 'too small'} (N = the batch "
            "size of each case): a loss or gradient that is a mean over the batch carries "
            f"exactly one 1/N ({'missing' if big else 'twice'} here)"
        )
    elif ks and len(ks) == len(found):
        k0 = ks[0]
        if all(abs(k - k0) < 1e-6 * max(1, abs(k0)) for k in ks):
            what = (
                "the sign is flipped" if abs(k0 + 1) < 1e-6 else f"{k0:.6g} times the right value"
            )
            out.append(f"your {track.output} is the correct one times a constant: {what}")
        else:
            out.append(
                f"your {track.output} is the correct one times a factor that changes with the "
                f"case ({', '.join(f'{k:.4g}' for k in ks[:4])}): a size such as N or N*H*W?"
            )
    worst = max(x.error for x in samples)
    if worst < 1e-4:
        out.append(
            f"the error is small ({worst:.1g}): float32 arithmetic somewhere (np.float32, "
            "astype), or a constant that differs slightly (is eps read from the param dict?)"
        )
    if track.output.endswith("(test)"):
        out.append(
            "test mode normalizes by the running statistics (running_mean, running_var), "
            "not by the batch's own (docs/derivation.md, section 5)"
        )
    if forward_wrong and track.output.startswith("d"):
        out.append(
            "your forward is wrong too, and this backward got its cache: see the row "
            "'vs your forward' (does the backward match the forward it was given?)"
        )
    return out


def _error_hints(track: Track) -> list[str]:
    text = " ".join(track.errors).lower()
    out = []
    if "cython" in text or "col2im" in text or "im2col" in text:
        out.append(
            "the course's fast layers need their compiled extension: in the cs231n folder run "
            "`python setup.py build_ext --inplace`"
        )
    if "did not finish" in text:
        out.append("a call ran past the time limit; its remaining cases were skipped")
    if "in place" in text:
        out.append(
            "callers reuse their arrays after the call: compute into new arrays "
            "(xmu = x - mu), never in place (x -= mu)"
        )
    return out


def findings(
    outcome: Outcome,
    fns: dict[str, Any],
    tol: float,
    *,
    limit: float | None = None,
    files: tuple[str, ...] = (),
    seed: int = 0,
) -> list[Finding]:
    """One ``Finding`` per failing row of ``outcome``."""
    fam = outcome.family
    out = []
    for track in outcome.tracks.values():
        bad = track.failing(tol)
        if track.errors:
            extra = _error_hints(track)
            if extra:
                out.append(Finding(track.function, track.output, track.errors[0], hints=extra))
            continue
        if not bad or track.output == "vs your forward":
            continue
        n = len(track.samples) + track.todo
        worst = max(s.error for s in bad)
        f = Finding(
            track.function,
            track.output,
            f"{track.output} is wrong on {len(bad)} of {n} cases (worst error {worst:.2g})",
        )
        with_view = [(s.view, s.got) for s in bad if s.view is not None and s.got is not None]
        if fam.view and with_view and not track.output.endswith("(test)"):
            for m, d in catalog.match(fam.view, track.output, with_view):
                f.mistakes.append(Mistake(m.key, m.title, m.why, m.pointer, d))
        if fam.view and track.output == "dx" and track.function != fam.forward:
            sample = max(
                (
                    s
                    for s in bad
                    if s.view is not None and s.got is not None and s.got.shape == s.want.shape
                ),
                key=lambda s: s.view.M if s.view else 0,
                default=None,
            )
            if sample is not None and sample.view is not None and sample.got is not None:
                rep = invariants.analyse(sample.view, sample.got)
                if rep is not None:
                    f.paths, f.invariants = invariants.lines(rep, sample.view.M)
        f.hints = list(dict.fromkeys(track.notes)) + hints(track, bad, tol, outcome.forward_wrong)
        if not track.output.endswith("(test)") and track.output != "inputs":
            f.counterexample = counterexample.find(
                fam, track.function, track.output, fns, limit=limit, files=files, seed=seed
            )
        out.append(f)
    return out
