"""The catalog of known mistakes: each a mutant of the reference, named and explained.

Every entry says what a student wrote (``title``), why it is wrong (``why``), the step of
``docs/derivation.md`` it breaks (``step`` and ``anchor``), which layers it applies to
(``kinds``, the ``views`` kinds), which output it corrupts, and how to compute that wrong
output (``mutant``: NumPy on a ``NormView``; several variants when the slip can be made
in more than one natural way). Where the language of ``derive check`` can say it, the
entry also carries its ``formulas`` (per language kind, "batch" or "layer"):
``tests/symbolic`` refutes every entry exactly (formula or, for shape and running-stat
slips, a symbolic twin in ``normgrad.symbolic.mistakes``) and checks that ``mutant``
equals its formula, and ``tests/tools`` plants each one in a student file and checks
that ``normgrad grade`` names it. This module is pure data and NumPy (no SymPy).
"""

from __future__ import annotations

import numpy as np

from normgrad.tools.grade import mutants as mu
from normgrad.tools.grade.catalog_params import PARAMS
from normgrad.tools.grade.mutants import Mistake
from normgrad.tools.grade.views import NormView

__all__ = ["BY_KEY", "MISTAKES", "Mistake", "for_output", "match"]

#: The mistakes in dx, every normalization with centring.
DX: tuple[Mistake, ...] = (
    Mistake(
        "x_for_xhat",
        "the variance term multiplies x where xhat belongs",
        "it is dvar * 2(x_i - mu)/N = -xhat_i * mean(dxhat * xhat)/s: x - mu = s xhat, not x",
        "section 4, Step 4; the seed's slip, section 11",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [v.fold((v.dxhat - v.mean(v.dxhat) - v.x * v.mean(v.dxhat * v.xhat)) / v.std)],
        mu.both("dx = (dxhat - mean(dxhat) - x*mean(dxhat*xhat))/std"),
    ),
    Mistake(
        "missing_1_over_N",
        "the mean and variance terms are not divided by N",
        "mu = sum(x)/N and var = sum((x - mu)^2)/N: each sum over the batch carries a 1/N",
        "section 4, Steps 4 and 5",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, n=1)],
        mu.both("dx = (dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))/std"),
    ),
    Mistake(
        "dvar_power_minus_half",
        "dvar uses (var + eps)^(-1/2) where the derivative gives (var + eps)^(-3/2)",
        "d/dvar (var + eps)^(-1/2) = -1/2 (var + eps)^(-3/2): the power drops by one",
        "section 3, gradient at the variance",
        mu.S3,
        mu.CENTRED,
        "dx",
        lambda v: [mu.paper(v, mu.dvar_of(v, power=-0.5))],
        mu.both(
            "dvar = sum(dxhat*(x - mu))*(-1/2)*(var + eps)^(-1/2); "
            "dx = dxhat/std + dvar*2*(x - mu)/N + dmu/N"
        ),
    ),
    Mistake(
        "missing_factor_2",
        "the variance term lacks the 2 of dvar/dx_i = 2(x_i - mu)/N",
        "d/dx_i of sum_k (x_k - mu)^2 / N is 2(x_i - mu)/N (the square's derivative)",
        "section 3, gradient at the input",
        mu.S3,
        mu.CENTRED,
        "dx",
        lambda v: [mu.paper(v, mu.dvar_of(v), two=1.0)],
        mu.both("dx = dxhat/std + dvar*(x - mu)/N + dmu/N"),
    ),
    Mistake(
        "missing_factor_half",
        "dvar lacks the 1/2 of d sqrt(v)/dv = 1/(2 sqrt(v))",
        "sqrtvar = sqrt(var + eps) has local derivative 1/(2 sqrtvar), so dvar = dsqrtvar/(2 s)",
        "section 2, node 4",
        mu.S2,
        mu.CENTRED,
        "dx",
        lambda v: [mu.paper(v, mu.dvar_of(v, half=1.0))],
        mu.both(
            "dvar = -sum(dxhat*(x - mu))*(var + eps)^(-3/2); "
            "dx = dxhat/std + dvar*2*(x - mu)/N + dmu/N"
        ),
    ),
    Mistake(
        "mean_path_dropped",
        "the mean path is missing: no -mean(dxhat) term",
        "x_i reaches the loss through mu too; dmu/N = -mean(dxhat)/s is its share",
        "section 4, Step 5; invariant (a), section 6.1",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, c1=0.0)],
        mu.both("dx = (dxhat - xhat*mean(dxhat*xhat))/std"),
    ),
    Mistake(
        "variance_path_dropped",
        "the variance path is missing: no -xhat * mean(dxhat * xhat) term",
        "x_i reaches the loss through var too; dvar * 2(x_i - mu)/N is its share",
        "section 4, Step 4",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, c2=0.0)],
        mu.both("dx = (dxhat - mean(dxhat))/std"),
    ),
    Mistake(
        "n_minus_1_backward",
        "the backward divides by N - 1 (an unbiased variance) while the forward divides by N",
        "the forward's var is biased (1/N); its derivative must use the same N",
        "section 1.1, biased variance",
        mu.S1,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, c2=v.M / (v.M - 1.0)), mu.closed(v, n=v.M - 1.0)],
        mu.both(
            "dx = (dxhat - mean(dxhat) - xhat*sum(dxhat*xhat)/(N - 1))/std",
            "dx = (dxhat - sum(dxhat)/(N - 1) - xhat*sum(dxhat*xhat)/(N - 1))/std",
        ),
    ),
    Mistake(
        "eps_dropped_backward",
        "the backward divides by sqrt(var) where the forward used sqrt(var + eps)",
        "every 1/s of the backward is the forward's 1/sqrt(var + eps), eps included",
        "section 4: s = sqrt(var + eps) throughout",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [
            mu.closed(v, s=np.sqrt(v.var)),
            mu.closed(v, s=np.sqrt(v.var), xh=(v.x - v.mu) / np.sqrt(v.var)),
        ],
        mu.both(
            "dx = " + mu.SCALE + "/sqrt(var)",
            "t = (x - mu)/sqrt(var); dx = (dxhat - mean(dxhat) - t*mean(dxhat*t))/sqrt(var)",
        ),
    ),
    Mistake(
        "sqrt_forgotten",
        "dx is scaled by 1/(var + eps) instead of 1/sqrt(var + eps)",
        "xhat = (x - mu)/sqrt(var + eps): the scale is the inverse standard deviation",
        "section 2, nodes 4 and 5",
        mu.S2,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, s=v.var + v.eps)],
        mu.both("dx = " + mu.SCALE + "/(var + eps)"),
    ),
    Mistake(
        "scale_dropped",
        "the overall factor 1/sqrt(var + eps) is missing",
        "dxhat_i/dx_i carries 1/s: every term of dx is divided by sqrt(var + eps)",
        "section 4, Step 6",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, s=1.0)],
        mu.both("dx = " + mu.SCALE),
    ),
    Mistake(
        "gamma_left_out",
        "gamma is left out of dxhat (dxhat = dout instead of dout * gamma)",
        "y = gamma * xhat + beta, so dL/dxhat = dout * gamma",
        "section 3, gradient at the normalized input",
        mu.S3,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, g=v.dout)],
        mu.both("dx = (dy - mean(dy) - xhat*mean(dy*xhat))/std"),
    ),
    Mistake(
        "sign_mean_term",
        "the mean term is added instead of subtracted",
        "dmu = -sum(dxhat)/s: mu enters x - mu with a minus sign",
        "section 4, Step 5",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, c1=-1.0)],
        mu.both("dx = (dxhat + mean(dxhat) - xhat*mean(dxhat*xhat))/std"),
    ),
    Mistake(
        "sign_variance_term",
        "the variance term is added instead of subtracted",
        "dvar = -1/2 (var + eps)^(-3/2) sum(dxhat (x - mu)): the derivative of s^-1 is negative",
        "section 4, Step 2",
        mu.S4,
        mu.CENTRED,
        "dx",
        lambda v: [mu.closed(v, c2=-1.0)],
        mu.both("dx = (dxhat - mean(dxhat) + xhat*mean(dxhat*xhat))/std"),
    ),
    Mistake(
        "test_backward_in_train",
        "the test-mode gradient dx = dout * gamma / s is used in train mode",
        "in train mode mu and var depend on x: the mean and variance paths are part of dx",
        "section 5, test mode",
        mu.S5,
        mu.BATCH,
        "dx",
        lambda v: [v.fold(v.dxhat / v.std)],
        {"batch": ("dx = dxhat/std",)},
    ),
    Mistake(
        "running_var_in_backward",
        "the train-mode backward scales by the running variance, not the batch's",
        "in train mode the forward normalized by the batch variance, not the running one",
        "section 5, test mode; section 1.1",
        mu.S5,
        mu.BATCH,
        "dx",
        lambda v: [
            mu.closed(v, s=np.sqrt(v.running[k].reshape(v.gamma.shape) + v.eps))
            for k in ("old_var", "new_var")
            if v.running
        ],
        {"batch": ("dx = " + mu.SCALE + "/sqrt(running_var + eps)",)},
    ),
)

#: Every entry: dx's, then dgamma's, dbeta's, the layer-specific ones, the forward's and
#: the running statistics' (``catalog_params``).
MISTAKES: tuple[Mistake, ...] = DX + PARAMS

BY_KEY = {m.key: m for m in MISTAKES}


def for_output(kind: str, output: str) -> list[Mistake]:
    """The entries that apply to ``kind``'s ``output``."""
    return [m for m in MISTAKES if kind in m.kinds and m.output == output]


def match(
    kind: str, output: str, cases: list[tuple[NormView, np.ndarray]], tol: float = 1e-6
) -> list[tuple[Mistake, float]]:
    """The entries whose mutant equals the student's output on EVERY given case.

    ``cases`` pairs each failing case's view with the student's value of ``output``;
    returns (entry, worst normwise distance), best first.
    """
    from normgrad.tools.grade.compare import normwise

    found = []
    for m in for_output(kind, output):
        worst = 0.0
        for v, got in cases:
            variants = m.mutant(v)
            dists = [normwise(got, w) for w in variants if np.shape(w) == np.shape(got)]
            worst = max(worst, min(dists, default=np.inf))
        if cases and worst < tol:
            found.append((m, worst))
    return sorted(found, key=lambda t: t[1])
