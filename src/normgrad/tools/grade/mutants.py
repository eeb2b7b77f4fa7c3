"""The building blocks of the catalog's mutants: wrong outputs, computed on a ``NormView``.

Each catalog entry (``catalog``) is a small change to one of the reference's formulas,
all written on the group view of ``views`` (section 9.1 of ``docs/derivation.md``: one
group of M values per feature, channel, sample or (sample, group)). The changes are
few in kind, so the formulas live here once, with the knobs a slip turns:

- ``closed``: section 9.1.1's boxed closed form, dx = (dxhat - c1 sum(dxhat)/n -
  c2 xh sum(dxhat xh)/n) / s, with every piece replaceable (the gradient at xhat, the
  direction of the variance term, the scale, the two coefficients, the count n);
- ``paper``: section 3's unsimplified chain rule with a given dvar, the factor of its
  variance term and the count it divides by;
- ``dvar``: section 3's dL/dvar with a given power of (var + eps) and factor;
- ``out``: the forward output gamma * xhat + beta for a given xhat;
- ``running``: a running-statistics update from the case's momentum and old values.

``Mistake`` is the type of a catalog entry.

The anchors below are the headings of ``docs/derivation.md`` the entries point at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad.tools.grade.views import NormView

Mutant = Callable[[NormView], list[np.ndarray]]

DOC = "docs/derivation.md"
S1 = "#11-course-and-pytorch-conventions"
S2 = "#2-route-1-the-staged-computation-graph-batchnorm_backward"
S3 = "#3-route-2-the-papers-chain-rule-equations-batchnorm_backward_paper"
S4 = "#4-route-3-simplification-to-the-closed-form-batchnorm_backward_alt"
S5 = "#5-test-mode-frozen-statistics"
S9 = "#91-standardization-over-an-arbitrary-reduction-set"
S92 = "#92-layer-norm"
S93 = "#93-spatial-batch-norm"
CENTRED = ("batch", "spatial", "layer", "group")
BATCH = ("batch", "spatial")  # the layers with running statistics and one gamma per group
ND = ("batch", "layer")  # x: (N, D)
SCALE = "(dxhat - mean(dxhat) - xhat*mean(dxhat*xhat))"  # the exact bracket, in formulas


@dataclass(frozen=True)
class Mistake:
    key: str
    title: str  # what the student wrote, in one line
    why: str  # why it is wrong, in one line
    step: str  # the step of docs/derivation.md it breaks
    anchor: str  # that step's section anchor in docs/derivation.md
    kinds: tuple[str, ...]  # NormView kinds it applies to
    output: str  # "dx", "dgamma", "dbeta", "out", "running_mean" or "running_var"
    mutant: Mutant
    formulas: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def pointer(self) -> str:
        return f"{DOC}{self.anchor} ({self.step})"


def both(*texts: str) -> dict[str, tuple[str, ...]]:
    """The same formulas for batch norm and for layer norm (the dxhat form holds for both)."""
    return {"batch": texts, "layer": texts}


Array = Any  # an ndarray, or a number that broadcasts like one


def closed(
    v: NormView,
    *,
    g: Array = None,
    xh: Array = None,
    s: Array = None,
    c1: float = 1.0,
    c2: float = 1.0,
    n: float | None = None,
) -> np.ndarray:
    """dx = (g - c1 sum(g)/n - c2 xh sum(g xh)/n) / s in x's shape, the sums per group.

    Defaults give the exact gradient: g = dxhat, xh = xhat, s = sqrt(var + eps), c1 =
    c2 = 1, n = M (the group size).
    """
    g = v.dxhat if g is None else g
    xh = v.xhat if xh is None else xh
    s = v.std if s is None else s
    n = v.M if n is None else n
    return v.fold((g - c1 * v.total(g) / n - c2 * xh * v.total(g * xh) / n) / s)


def dvar_of(v: NormView, power: float = -1.5, half: float = 0.5) -> np.ndarray:
    """dL/dvar = sum(dxhat (x - mu)) * -half * (var + eps)**power, per group (section 3)."""
    return v.total(v.dxhat * (v.x - v.mu)) * -half * (v.var + v.eps) ** power


def paper(
    v: NormView, dvar: np.ndarray, two: float = 2.0, n_var: float | None = None
) -> np.ndarray:
    """dx = dxhat/s + dvar * two (x - mu)/n_var + dmu/M (section 3), with the given dvar.

    dmu = -sum(dxhat)/s + dvar * sum(-2 (x - mu))/M, the paper's, whose second term is 0.
    """
    xmu = v.x - v.mu
    dmu = -v.total(v.dxhat) / v.std + dvar * v.total(-2.0 * xmu) / v.M
    n_var = v.M if n_var is None else n_var
    return v.fold(v.dxhat / v.std + dvar * two * xmu / n_var + dmu / v.M)


def out(v: NormView, xhat: np.ndarray) -> np.ndarray:
    """The forward output gamma * xhat + beta, in x's shape."""
    return v.fold(v.gamma * xhat + v.beta)


def running(
    v: NormView, key: str, update: Callable[[float, np.ndarray, np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """[update(momentum, old, batch statistic)] for ``key`` ("running_mean" or
    "running_var"), or [] when the case has no running statistics (test mode, or a
    layer without them)."""
    r = v.running
    if not r:
        return []
    old = r["old_" + key[len("running_") :]]
    stat = {"running_mean": v.mu, "running_var": v.var}[key].reshape(old.shape)
    return [update(r["momentum"], old, stat)]
