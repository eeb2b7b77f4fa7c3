"""normgrad.symbolic: exact proofs of every route, the code tie, planted errors, the seed, CLI."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sympy")

from normgrad.cli import main  # noqa: E402
from normgrad.norms import batch as nb  # noqa: E402
from normgrad.symbolic import batch, core, registry, seed, tie  # noqa: E402
from normgrad.symbolic.core import Radical, sp  # noqa: E402

CASES = [
    (layer, tuple(sorted(kw.items())))
    for layer in registry.layers()
    for kw in registry.default_shapes(layer)
]


@functools.cache
def problem(layer: str, shape: tuple) -> object:
    return registry.build(layer, **dict(shape))


@pytest.mark.parametrize("layer,shape", CASES)
def test_every_route_is_proved(layer: str, shape: tuple) -> None:
    p = problem(layer, shape)
    assert set(p.routes) == set(registry.spec_of(layer).routes)  # a twin for every route
    for route in p.routes:
        v = p.prove(route)
        assert v.status == "proved", core.format_verdict(v)


@pytest.mark.parametrize("layer,shape", CASES)
def test_library_matches_exact_gradient_at_random_points(layer: str, shape: tuple) -> None:
    p = problem(layer, shape)
    errors = tie.tie(p, points=3, seed=1)
    assert set(errors) == set(p.routes)
    assert max(errors.values()) < 1e-12, errors


def test_batch_shapes_cover_n_2_3_4_and_two_features() -> None:
    shapes = {(kw["N"], kw["D"]) for kw in registry.default_shapes("batch")}
    assert {n for n, _ in shapes} == {2, 3, 4} and {d for _, d in shapes} == {1, 2}


@pytest.mark.parametrize("kind", ["drop_1/N", "x_for_xhat"])
def test_planted_wrong_formula_is_refuted_with_a_counterexample(kind: str) -> None:
    p = batch.build(3, 2)
    v = p.check(kind, batch.planted(p, kind))
    assert v.status == "refuted", core.format_verdict(v)
    cex = v.counterexample
    assert sp.Rational(cex["formula gives"]) != sp.Rational(cex["exact gradient"])
    # The counterexample is real: the library's own route disagrees with the planted value.
    vals = {k: float(sp.Rational(val)) for k, val in cex.items() if "_" in k or k == "epsilon"}
    x = np.array([[vals.get(f"x_{i}{d}", 0.0) for d in range(2)] for i in range(3)])
    gamma = np.array([vals.get(f"gamma_{d}", 1.0) for d in range(2)])
    dout = np.array([[vals.get(f"dout_{i}{d}", 0.0) for d in range(2)] for i in range(3)])
    _, cache = nb.batchnorm_forward(
        x, gamma, np.zeros(2), {"mode": "train", "eps": vals["epsilon"]}
    )
    dx = nb.batchnorm_backward_alt(dout, cache)[0]
    row, col = (int(t) for t in v.detail.split("[")[1].split("]")[0].split(","))
    assert dx[row, col] == pytest.approx(float(sp.Rational(cex["exact gradient"])), abs=1e-12)


def test_planted_error_in_a_grouped_layer_is_refuted() -> None:
    p = registry.build("rms", N=2, D=3)
    good = p.routes["closed"]
    xhat = p.y / p.params["gamma"]  # x / sqrt(ms + eps)
    wrong_dx = good["dx"] - np.mean(p.dout * p.params["gamma"], axis=1, keepdims=True) / (
        p.params["x"] / xhat
    )  # a stray centring term, as if RMS norm subtracted the mean
    assert p.check("rms centred", {"dx": wrong_dx, "dgamma": good["dgamma"]}).status == "refuted"


def test_identity_needing_s_squared_equals_var_plus_eps_is_proved() -> None:
    # docs/derivation.md 6.2: sum_i dx_i * xhat_i = gamma * dgamma * eps / (var + eps)^(3/2);
    # this needs the reduction modulo s^2 - (var + eps), not just expansion.
    p = batch.build(3, 1)
    c = p.cache
    dx, dgamma = p.exact["dx"][:, 0], p.exact["dgamma"][0]
    lhs = sp.Add(*(dx * c.xhat[:, 0]))
    rhs = c.gamma[0] * dgamma * p.eps / (c.var[0] + p.eps) ** sp.Rational(3, 2)
    assert core.normal_form(lhs - rhs, p.radicals) == 0
    assert core.normal_form(lhs, p.radicals) != 0  # and it is not trivially zero


def test_normal_form_refutes_a_false_radical_identity() -> None:
    x, e = sp.Symbol("x", real=True), sp.Symbol("e", positive=True)
    r = Radical(x**2 + e, sp.Symbol("s", positive=True))
    assert core.normal_form(sp.sqrt(x**2 + e) ** 2 - x**2 - e, [r]) == 0
    assert core.normal_form(sp.sqrt(x**2 + e) - x, [r]) != 0


def test_drifted_library_route_fails_the_tie(monkeypatch: pytest.MonkeyPatch) -> None:
    def drifted(dout, cache):  # the alt route without its 1/N
        dx, dgamma, dbeta = nb.batchnorm_backward_alt(dout, cache)
        N = dout.shape[0]
        scale = cache.gamma / np.sqrt(cache.var + cache.eps)
        return dx - scale * (dbeta + cache.xhat * dgamma) * (1 - 1 / N), dgamma, dbeta

    _set_batch_routes(monkeypatch, {**nb.ROUTES, "alt": drifted})
    errors = tie.tie(batch.build(3, 2), points=2)
    assert errors["alt"] > 1e-3 and errors["graph"] < 1e-12
    assert main(["derive", "batch", "--check"]) == 1


def test_seed_verdicts() -> None:
    verdicts = {sv.formula.key: sv for sv in seed.check_seed(3)}
    assert set(verdicts) == {f.key for f in seed.FORMULAS}
    refuted = {k for k, sv in verdicts.items() if sv.verdict.status == "refuted"}
    assert refuted == {"dx_simplified_1"}
    assert all(sv.verdict.proved for k, sv in verdicts.items() if k not in refuted)
    assert verdicts["dx_simplified_1"].corrected.proved


def test_seed_counterexample_by_hand() -> None:
    # x = (-2, -1): mu = -3/2, var = 1/4; eps = 3/4 makes sqrt(var + eps) = 1.
    # xhat = (-1/2, 1/2); gamma = 2, dy = (2, 1): dxhat = (4, 2), sum = 6, sum dxhat*xhat = -1.
    xhat, dxhat, x = np.array([-0.5, 0.5]), np.array([4.0, 2.0]), np.array([-2.0, -1.0])
    seed_form = dxhat - dxhat.sum() / 2 - x / 2 * (dxhat * xhat).sum()
    fixed = dxhat - dxhat.sum() / 2 - xhat / 2 * (dxhat * xhat).sum()
    _, cache = nb.batchnorm_forward(
        x[:, None], np.array([2.0]), np.zeros(1), {"mode": "train", "eps": 0.75}
    )
    dx = nb.batchnorm_backward(np.array([[2.0], [1.0]]), cache)[0][:, 0]
    np.testing.assert_allclose(dx, fixed, atol=1e-12)
    assert abs(seed_form[0] - dx[0]) > 0.5  # 0 against 3/4


def test_cli_seed_prints_one_verdict_per_formula(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "seed"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith(("proved", "refuted"))]
    assert len(lines) == len(seed.FORMULAS)
    assert sum(ln.startswith("refuted") for ln in lines) == 1


def test_cli_layer_prints_derivation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "group", "--shape", "1x4x1x2", "--groups", "2"]) == 0
    out = capsys.readouterr().out
    assert "closed form" in out and "proved" in out and "FAILED" not in out
    assert "checked  ∂x̂ᵢ/∂xⱼ" in out


@pytest.mark.slow
def test_cli_all_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive", "--all", "--check"]) == 0
    n = sum(len(registry.spec_of(layer).routes) for layer, _ in CASES)
    assert f"{n}/{n} routes proved" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["derive", "batchnorm"], "unknown layer"),
        (["derive", "batch", "--shape", "9x3"], "at most 8 values"),
        (["derive", "layer", "--shape", "3"], "2 positive integers"),
        (["derive"], "--all"),
    ],
)
def test_cli_bad_input(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.slow
def test_missing_sympy_names_the_fix() -> None:
    code = (
        "import sys; sys.modules['sympy'] = None\n"
        "from normgrad.cli import main\n"
        "sys.exit(main(['derive', 'batch']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2
    assert "pip install normgrad[symbolic]" in r.stderr


# --- review fixes: incomplete candidates, missing ties, robust radicals, exit codes ---


def test_compare_refuses_a_candidate_missing_gradients() -> None:
    p = batch.build(2, 1)
    alt = p.routes["alt"]
    assert p.check("empty", {}).status != "proved"
    only_dgamma = p.check("dgamma only", {"dgamma": alt["dgamma"]})
    assert only_dgamma.status == "incomplete" and "dx" in only_dgamma.detail
    extra = p.check("extra", {**alt, "dmu": alt["dbeta"]})
    assert extra.status == "incomplete" and "dmu" in extra.detail
    assert p.check("all three", dict(alt)).status == "proved"


def _set_batch_routes(monkeypatch: pytest.MonkeyPatch, routes: dict) -> None:
    """Give batch norm's registered spec these backward routes (name -> function)."""
    import dataclasses

    from normgrad.norms import registry as norm_registry
    from normgrad.norms.spec import Route

    new = dataclasses.replace(nb.SPEC, routes={k: Route(f) for k, f in routes.items()})
    monkeypatch.setattr(
        norm_registry, "SPECS", tuple(new if s is nb.SPEC else s for s in norm_registry.SPECS)
    )


def _library_routes_without_alt(rename: bool) -> dict:
    routes = {k: v for k, v in nb.ROUTES.items() if k != "alt"}
    if rename:
        routes["alternative"] = nb.ROUTES["alt"]
    return routes


@pytest.mark.parametrize("rename", [False, True], ids=["dropped", "renamed"])
def test_missing_library_tie_is_a_failure(
    rename: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_batch_routes(monkeypatch, _library_routes_without_alt(rename))
    assert main(["derive", "batch", "--check"]) == 1
    out = capsys.readouterr().out
    assert "tie pending" not in out
    assert "no library route" in out
    if rename:
        assert "alternative" in out and "no symbolic twin" in out


def test_tie_routes_must_match_symbolic_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_batch_routes(monkeypatch, _library_routes_without_alt(True))
    missing, extra = tie.route_mismatch(batch.build(2, 1), tie.tie(batch.build(2, 1), points=1))
    assert missing == ["alt"] and extra == ["alternative"]


def _rewrite_radicand(p, new_base) -> dict:
    """The alt route of ``p`` with sqrt(var + eps) written over ``new_base`` instead."""
    old = p.radicals[0].base
    return {
        k: np.vectorize(lambda e: sp.sympify(e).xreplace({old: new_base}), otypes=[object])(v)
        for k, v in p.routes["alt"].items()
    }


def test_expanded_radicand_of_a_true_identity_is_proved() -> None:
    p = batch.build(3, 1)
    base = p.radicals[0].base
    expanded = _rewrite_radicand(p, sp.expand(base))
    assert core.normal_form(expanded["dx"][0, 0] - p.exact["dx"][0, 0], p.radicals) == 0
    assert p.check("expanded radicand", expanded).status == "proved"
    # One-pass variance, E[x^2] - mu^2 + eps: the same polynomial, written differently.
    x = p.params["x"][:, 0]
    one_pass = sp.Add(*(x * x)) / 3 - (sp.Add(*x) / 3) ** 2 + p.eps
    assert p.check("one-pass variance", _rewrite_radicand(p, one_pass)).status == "proved"


def test_unrecognized_radical_is_unproved_not_refuted() -> None:
    # sqrt(sqrt(B) + x) * sqrt(sqrt(B) - x) = sqrt(B - x^2) = sqrt(e) with B = x^2 + e:
    # true, but the nested radicals are outside what the normal form decides. The verdict
    # must be "unproved" (not proved by this normal form), never "refuted" or a crash.
    x, e = sp.Symbol("x", real=True), sp.Symbol("e", positive=True)
    r = Radical(x**2 + e, sp.Symbol("s", positive=True))
    root = sp.sqrt(x**2 + e)
    cand = np.array([sp.sqrt(root + x) * sp.sqrt(root - x)], dtype=object)
    exact = np.array([sp.sqrt(e)], dtype=object)
    v = core.compare("nested", {"v": cand}, {"v": exact}, e, [r])
    assert v.status == "unproved", core.format_verdict(v)
    assert "not proved by this normal form" in v.detail
    # The same shape of formula, made false, is refuted with a counterexample.
    wrong = np.array([sp.sqrt(root + x) * sp.sqrt(root - x) + x], dtype=object)
    assert core.compare("nested, wrong", {"v": wrong}, {"v": exact}, e, [r]).status == "refuted"


def test_failed_local_derivative_check_fails_derive_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from normgrad.symbolic.model import Group

    real_build = registry.build

    def wrong_variance(layer: str, **shape: int):
        p = real_build(layer, **shape)
        g = p.group
        p.group = Group(g.xs, g.mu, 2 * g.var)  # the printed d(var)/dx no longer holds
        return p

    monkeypatch.setattr(registry, "build", wrong_variance)
    assert main(["derive", "batch", "--check"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["derive", "batch"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_problem_carries_groups_and_cache_as_fields() -> None:
    import dataclasses

    from normgrad.symbolic.model import Problem

    names = {f.name for f in dataclasses.fields(Problem)}
    assert {"options", "cache"} <= names
    p = registry.build("group", N=1, C=4, H=1, W=2, G=2)
    assert p.options == {"G": 2} and "G = 2" in p.describe()
    assert batch.build(2, 1).cache is not None and registry.build("rms", N=2, D=3).cache is None
    # The tie reads G from the problem's options, not from a note string.
    errors = tie.tie(p, points=1)
    assert errors["closed"] < 1e-12
