"""`derive check`: proved for every N, refuted with a counterexample and the nearest known
mistake, or proved at fixed sizes only; the CLI's exit codes; the seed as formulas."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sympy")

from normgrad.cli import main  # noqa: E402
from normgrad.norms import batch as nb  # noqa: E402
from normgrad.symbolic import check, seed  # noqa: E402
from normgrad.symbolic.core import sp  # noqa: E402

CORRECT = [
    ("batch", "dx = gamma/sqrt(var + eps) * (dy - (dbeta + xhat*dgamma)/N)"),
    ("batch", "dx = (dxhat - mean(dxhat) - xhat*mean(dxhat*xhat))/std"),
    ("batch", "dx = dxhat/std + dvar*2*(x - mu)/N + dmu/N"),
    ("batch", "dvar = sum(dxhat*(x - mu))*(-1/2)*(var + eps)^(-3/2)"),
    ("batch", "dmu = -sum(dxhat)/std + dvar*sum(-2*(x - mu))/N"),
    (
        "batch",
        "dgamma = sum(dy*xhat); dbeta = sum(dy); dx = gamma/std*(dy - dbeta/N - xhat*dgamma/N)",
    ),
    ("batch", "sum(xhat^2) = N*var/(var + eps)"),
    ("layer", "dx = (dxhat - mean(dxhat) - xhat*mean(dxhat*xhat))/std"),
    ("layer", "dgamma = dy*xhat"),
    ("rms", "dx = (dxhat - xhat*mean(dxhat*xhat))/std"),
    ("rms", "sum(dx_k*x_k) = eps/(var + eps)*sum(dxhat*xhat)"),
    ("batch", "sum(dx) = 0"),
    ("layer", "sum(dx) = 0"),
]


@pytest.mark.parametrize("kind,text", CORRECT)
def test_correct_closed_forms_are_proved_for_every_n(kind: str, text: str) -> None:
    r = check.check(text, kind)
    assert r.status == "proved" and r.scope == "for all N", check.format_check(r)


def test_the_seeds_slip_is_refuted_with_the_documented_counterexample() -> None:
    r = check.check("dx = 1/sqrt(var + eps) * (dxhat - 1/N sum(dxhat) - x/N sum(dxhat*xhat))")
    assert r.status == "refuted" and r.scope == "at N = 2"
    cex = r.counterexample  # docs/derivation.md, section 11
    assert (cex["x_00"], cex["x_10"], cex["epsilon"], cex["gamma_0"]) == ("-2", "-1", "3/4", "2")
    assert (cex["formula gives"], cex["exact gradient"]) == ("0", "3/4")
    assert r.nearest is not None and r.nearest.key == "x_for_xhat" and r.nearest.exact
    # The point is real: the library's route gives the exact value there.
    _, cache = nb.batchnorm_forward(
        np.array([[-2.0], [-1.0]]), np.array([2.0]), np.zeros(1), {"mode": "train", "eps": 0.75}
    )
    dx = nb.batchnorm_backward_alt(np.array([[2.0], [1.0]]), cache)[0]
    assert dx[0, 0] == pytest.approx(float(sp.Rational(cex["exact gradient"])), abs=1e-12)


@pytest.mark.parametrize(
    "kind,text,key",
    [
        ("batch", "dx = gamma/std*(dy - (dbeta + xhat*dgamma))", "missing_1_over_N"),
        ("batch", "dx = (dxhat - mean(dxhat))/std", "variance_path_dropped"),
        ("layer", "dx = (dxhat - xhat*mean(dxhat*xhat))/std", "mean_path_dropped"),
    ],
)
def test_a_known_slip_is_named_exactly(kind: str, text: str, key: str) -> None:
    r = check.check(text, kind)
    assert r.status == "refuted" and r.counterexample
    assert r.nearest is not None and (r.nearest.key, r.nearest.exact) == (key, True)


def test_an_unknown_slip_gets_the_nearest_mistake_by_distance() -> None:
    r = check.check("dx = gamma/std*(dy - dbeta/N - xhat*dgamma/(N + 1))")
    assert r.status == "refuted"
    assert r.nearest is not None and not r.nearest.exact and 0 < r.nearest.distance < 1
    assert "nearest" in check.format_check(r)


def test_no_power_sum_form_is_proved_at_fixed_sizes_only() -> None:
    r = check.check("sum(1/x) = sum(1/x_k)")
    assert r.status == "proved" and r.scope == "at N = 2, 3, 4"
    assert "not a polynomial" in r.detail


def test_rms_has_no_mean_term() -> None:
    r = check.check("dx = (dxhat - mean(dxhat) - xhat*mean(dxhat*xhat))/std", "rms")
    assert r.status == "refuted"


def test_cli_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["derive", "check", "dx = dxhat/std - mean(dxhat)/std - xhat*mean(dxhat*xhat)/std"])
        == 0
    )
    assert "proved for all N" in capsys.readouterr().out
    assert main(["derive", "check", "dx = dxhat/std", "--layer", "layer"]) == 1
    out = capsys.readouterr().out
    assert "refuted" in out and "counterexample" in out
    assert main(["derive", "check", "__import__('os').system('echo hacked')"]) == 2
    err = capsys.readouterr()
    assert "not allowed" in err.err and "hacked" not in err.out
    assert main(["derive", "check"]) == 2
    assert "needs a FORMULA" in capsys.readouterr().err
    assert main(["derive", "batch", "dx = x"]) == 2
    assert "derive check" in capsys.readouterr().err


def test_seed_is_a_list_of_formulas_with_every_n_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    verdicts = seed.check_seed(2, every=True)
    assert all(sv.every_n for sv in verdicts)  # every formula, or its correction, for all N
    assert main(["derive", "seed", "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n         as a formula:") == len(seed.FORMULAS)
    assert "corrected, as a formula" in out and "proved for all N" in out
