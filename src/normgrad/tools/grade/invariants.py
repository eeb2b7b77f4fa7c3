"""Which path of the graph is wrong: invariants of dx, and dx split along its three paths.

In every group of M values, the exact gradient of a centred normalization is
(``docs/derivation.md``, section 9.1.1)

    dx = a * dxhat/s + b * 1 + c * xhat,   a = 1,  b = -mean(dxhat)/s,  c = -mean(dxhat*xhat)/s

one term per path from x_i to the loss: the direct path (through xhat_i with mu and var
held), the mean path (through mu: the direction 1) and the variance path (through var:
the direction xhat). A student's dx is fitted by least squares on {dxhat/s, 1, xhat} in
every group (they are independent for M >= 4 and a random dout); the error then splits
uniquely into a part along each path's direction and a remainder outside all three:

- a off: the direct path is wrong (a scale, a missing or extra factor on dxhat);
- b off: the mean path is wrong (missing, a sign, a 1/N);
- c off: the variance path is wrong (missing, a power, a factor 2, x for xhat: x - mu =
  s xhat lies along 1 and xhat, so that slip shows in b and c);
- a remainder: something no path produces (a reduction over the wrong axis, a
  per-element factor).

Two invariants say the same in numbers (sections 6.1, 6.2 and 9.1.4): sum_i dx_i = 0
over each group (shifting a group changes nothing), and
sum_i dx_i xhat_i = eps / (s (var + eps)) * sum_k dxhat_k xhat_k (for batch norm:
gamma * dgamma * eps / (var + eps)^(3/2)), which is 0 only at eps = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normgrad.tools.grade.views import NormView

PATHS = ("direct", "mean", "variance")
_COEFF = {"direct": "a = 1", "mean": "b = -mean(dxhat)/s", "variance": "c = -mean(dxhat*xhat)/s"}


@dataclass
class PathReport:
    """The fit: each path's share of the error, its coefficient ratio, and the remainder."""

    share: dict[str, float]  # path (or "other") -> norm of its part / norm of dx
    ratio: dict[str, float]  # path -> median over groups of the student's coeff / exact
    wrong: list[str]  # the paths (and "other") whose part is not negligible
    sum_dx: float  # max over groups of |sum dx| / max |dx_exact|
    sum_dx_xhat: float  # max over groups of |sum dx*xhat - exact value| / max |dx_exact|


def analyse(v: NormView, dx: np.ndarray, threshold: float = 1e-6) -> PathReport | None:
    """The path report of the student's ``dx`` (x's shape) on ``v``; None for M < 4."""
    if v.M < 4:
        return None
    got = v.groups(v.to_view(dx))
    u = v.groups(v.dxhat / v.std)
    xh = v.groups(v.xhat)
    ref = v.groups(v.to_view(v.dx()))
    exact = np.stack(
        [np.ones(len(u)), -u.mean(axis=1), -(u * xh).mean(axis=1)], axis=1
    )  # (groups, 3): a, b, c of the exact gradient
    parts = {k: 0.0 for k in (*PATHS, "other")}
    ratios: dict[str, list[float]] = {k: [] for k in PATHS}
    for g in range(len(u)):
        basis = np.stack([u[g], np.ones(v.M), xh[g]], axis=1)  # (M, 3)
        coef, *_ = np.linalg.lstsq(basis, got[g], rcond=None)
        delta = coef - exact[g]
        for k, name in enumerate(PATHS):
            parts[name] += float(np.sum((delta[k] * basis[:, k]) ** 2))
            if abs(exact[g, k]) > 1e-12 * max(1.0, np.abs(exact[g]).max()):
                ratios[name].append(float(coef[k] / exact[g, k]))
        parts["other"] += float(np.sum((got[g] - basis @ coef) ** 2))
    norm = float(np.linalg.norm(ref)) or 1.0
    share = {k: np.sqrt(p) / norm for k, p in parts.items()}
    total = sum(share.values()) or 1.0
    wrong = [k for k, s in share.items() if s > threshold and s > 0.05 * total]
    scale = float(np.abs(ref).max()) or 1.0
    sums = np.abs(got.sum(axis=1)).max() / scale
    dot_exact = (v.eps / (v.std * (v.var + v.eps))) * v.total(v.dxhat * v.xhat)  # per group
    dots = (got * xh).sum(axis=1) - v.groups(np.broadcast_to(dot_exact, v.x.shape))[:, 0]
    return PathReport(
        share,
        {k: float(np.median(r)) if r else float("nan") for k, r in ratios.items()},
        wrong,
        float(sums),
        float(np.abs(dots).max() / scale),
    )


def _ratio_words(r: float, M: int) -> str:
    if not np.isfinite(r):
        return ""
    for value, words in (
        (-1.0, "the sign is flipped"),
        (0.0, "the term is missing"),
        (float(M), f"N = {M} times too large (a 1/N missing)"),
        (1.0 / M, f"N = {M} times too small (an extra 1/N)"),
        (2.0, "twice the right value"),
        (0.5, "half the right value"),
    ):
        if abs(r - value) < 1e-6 * max(1.0, abs(value)):
            return f": {words}"
    return ""


def lines(rep: PathReport, M: int, threshold: float = 1e-6) -> tuple[list[str], list[str]]:
    """(path lines, invariant lines) for the report."""
    out = [f"paths (each group's dx fitted as a*dxhat/s + b*1 + c*xhat, M = {M} values):"]
    for name in PATHS:
        if name in rep.wrong:
            r = rep.ratio[name]
            words = _ratio_words(r, M)
            out.append(
                f"  {name:<9} WRONG  {_COEFF[name]}: yours is {r:.4g} times it{words} "
                f"({rep.share[name]:.2g} of |dx|)"
            )
        else:
            out.append(f"  {name:<9} ok     {_COEFF[name]}")
    if "other" in rep.wrong:
        out.append(
            f"  other     WRONG  {rep.share['other']:.2g} of |dx| lies outside every path's "
            "direction (a sum over the wrong axis? a per-element factor?)"
        )
    bad = [n for n in PATHS if n in rep.wrong]
    if bad:
        names = bad[0] if len(bad) == 1 else ", ".join(bad[:-1]) + " and " + bad[-1]
        out.append(f"  => the {names} path{'s are' if len(bad) > 1 else ' is'} wrong")
    elif "other" in rep.wrong:
        out.append("  => every path's coefficient is right; the error is in no path's direction")
    else:
        out.append(
            f"  => every path is right to {threshold:g}: the error is in the arithmetic "
            "(precision), not in the formula"
        )
    inv = [
        f"invariant sum_i dx_i = 0 (section 6.1): yours up to {rep.sum_dx:.2g} x max|dx|"
        + ("  VIOLATED" if rep.sum_dx > 1e-6 else "  holds"),
        "invariant sum_i dx_i*xhat_i = eps/(s(var+eps)) * sum(dxhat*xhat) (section 6.2): "
        f"yours off by {rep.sum_dx_xhat:.2g} x max|dx|"
        + ("  VIOLATED" if rep.sum_dx_xhat > 1e-6 else "  holds"),
    ]
    return out, inv
