"""Every mistake of the grader's catalog is proved wrong exactly, and its NumPy mutant is the
formula it claims to be."""

from __future__ import annotations

import functools

import numpy as np
import pytest

pytest.importorskip("sympy")

from normgrad.symbolic import check, mistakes, worlds  # noqa: E402
from normgrad.symbolic.core import sp  # noqa: E402
from normgrad.symbolic.language import parse  # noqa: E402
from normgrad.tools.grade import catalog, views  # noqa: E402

FORMULAS = [
    (m.key, kind, n, text)
    for m in catalog.MISTAKES
    for kind, texts in m.formulas.items()
    for n, text in enumerate(texts)
]


def test_the_catalog_has_at_least_15_distinct_mistakes_and_covers_the_issue() -> None:
    keys = set(catalog.BY_KEY)
    assert len(keys) == len(catalog.MISTAKES) >= 15
    required = {
        "x_for_xhat", "missing_1_over_N", "dvar_power_minus_half", "missing_factor_2",
        "mean_path_dropped", "variance_path_dropped", "n_minus_1_backward",
        "eps_dropped_backward", "dgamma_wrong_axis", "dgamma_not_summed", "dbeta_wrong_axis",
        "dbeta_not_summed", "gamma_left_out", "running_var_in_backward", "sign_mean_term",
        "sign_variance_term",
    }  # fmt: skip
    assert required <= keys
    for m in catalog.MISTAKES:
        assert m.title and m.why and m.step and m.anchor.startswith("#")
        assert m.formulas or m.key in mistakes.REFUTATIONS  # each has an exact refutation


@functools.cache
def world(kind: str, n: int) -> worlds.FixedWorld:
    return worlds.FixedWorld(kind, n)


@pytest.mark.parametrize("key,kind,n,text", FORMULAS)
def test_each_formula_is_refuted_with_a_counterexample(
    key: str, kind: str, n: int, text: str
) -> None:
    v = worlds.compare_fixed(key, parse(text, kind), world(kind, 2))
    assert v.status == "refuted", v.detail
    assert v.counterexample["formula gives"] != v.counterexample["exact gradient"]


def test_check_refutes_a_catalog_formula_end_to_end() -> None:
    text = catalog.BY_KEY["sign_mean_term"].formulas["batch"][0]
    r = check.check(text, "batch", with_nearest=False)
    assert r.status == "refuted" and r.scope == "at N = 2"


@pytest.mark.parametrize("key", sorted(mistakes.REFUTATIONS))
def test_each_array_level_mistake_is_refuted(key: str) -> None:
    v = mistakes.refute(key)
    assert v.status == "refuted", v.detail
    assert key not in catalog.BY_KEY or not catalog.BY_KEY[key].formulas


def _point(world: worlds.FixedWorld, rng: np.random.Generator) -> dict:
    point = {}
    for s in world.problem.symbols():
        point[s] = (
            float(rng.uniform(0.5, 2.0))
            if s.name.startswith("gamma")
            else float(rng.standard_normal())
        )
    point[world.eps] = 0.3
    return point


@pytest.mark.parametrize("key,kind,n,text", FORMULAS)
def test_the_mutant_computes_its_formula(key: str, kind: str, n: int, text: str) -> None:
    w = world(kind, 4)
    program = parse(text, kind)
    rng = np.random.default_rng(0)
    point = _point(w, rng)
    running_var = 2.5
    point[sp.Symbol("running_var", positive=True)] = running_var
    got, _ = worlds.sides(program, w)
    want = np.array(
        [float(sp.sympify(e).xreplace(point)) for e in np.atleast_1d(np.asarray(got, dtype=object))]
    )
    p = w.problem
    arr = lambda a: np.array([point[s] for s in np.asarray(a).ravel()]).reshape(np.shape(a))  # noqa: E731
    inputs = {"x": arr(p.params["x"]), "gamma": arr(p.params["gamma"])}
    if "beta" in p.params:
        inputs["beta"] = arr(p.params["beta"])
    shape_kind = "batch" if kind == "batch" else "layer"
    running = {
        "momentum": 0.9,
        "old_var": np.full(1, running_var),
        "new_var": np.full(1, running_var),
    }
    v = views.view(shape_kind, inputs, arr(p.dout), point[w.eps], running=running)
    variants = catalog.BY_KEY[key].mutant(v)
    out = np.asarray(variants[min(n, len(variants) - 1)], dtype=np.float64).ravel()
    if out.size != want.size:  # batch norm's dgamma: one number per feature
        out = out[: want.size]
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
