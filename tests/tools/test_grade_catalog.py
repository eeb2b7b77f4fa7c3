"""Each catalog mistake, planted into a copy of a correct student solution, is named.

The plants are student code (edits of ``tools.grade.sample``, written as a student would
slip), not the catalog's NumPy mutants: the test is that the grader recognizes the real
slip. Graded in-process (the same grade the subprocess runs) to stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from normgrad.tools.grade import catalog, sample, sandbox, worker
from normgrad.tools.grade.result import GradeResult

PAPER = """
def batchnorm_backward(dout, cache):
    x, mu, var, eps, xhat, gamma, bn_param = cache
    N = dout.shape[0]
    dxhat = dout * gamma
    dvar = np.sum(dxhat * (x - mu), axis=0) * -0.5 * (var + eps) ** -0.5
    dmu = np.sum(-dxhat / np.sqrt(var + eps), axis=0) + dvar * np.mean(-2 * (x - mu), axis=0)
    dx = dxhat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / N + dmu / N
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    return dx, dgamma, dbeta
"""
SPATIAL_N = """
def spatial_batchnorm_backward(dout, cache):
    x, mu, var, eps, xhat, gamma, bn_param = cache
    N, C, H, W = dout.shape
    drows = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    std = np.sqrt(var + eps)
    dbeta = np.sum(drows, axis=0)
    dgamma = np.sum(drows * xhat, axis=0)
    dx = gamma / std * (drows - (dbeta + xhat * dgamma) / N)
    dx = dx.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return dx, dgamma, dbeta
"""
A, G, F, L = (
    "batchnorm_backward_alt",
    "batchnorm_backward",
    "batchnorm_forward",
    "layernorm_backward",
)
CLOSED = "(dout - (dbeta + xhat * dgamma) / N)"
RET = "return dx, dgamma, dbeta"
STD = "std = np.sqrt(var + eps)"

# catalog key -> (the function it breaks, the output, edits of the sample, or overrides)
PLANTS: dict[str, tuple[str, str, dict]] = {
    "x_for_xhat": (A, "dx", {A: [("(dbeta + xhat * dgamma)", "(dbeta + x * dgamma)")]}),
    "missing_1_over_N": (
        A,
        "dx",
        {A: [("(dbeta + xhat * dgamma) / N", "(dbeta + xhat * dgamma)")]},
    ),
    "dvar_power_minus_half": (G, "dx", {"override": PAPER}),
    "missing_factor_2": (G, "dx", {G: [("dxmu2 = 2 * xmu * dsq", "dxmu2 = xmu * dsq")]}),
    "missing_factor_half": (G, "dx", {G: [("dvar = 0.5 * 1.0 / sqrtvar", "dvar = 1.0 / sqrtvar")]}),
    "mean_path_dropped": (G, "dx", {G: [("dx = dx1 + dx2", "dx = dx1")]}),
    "variance_path_dropped": (G, "dx", {G: [("dx1 = dxmu1 + dxmu2", "dx1 = dxmu1")]}),
    "n_minus_1_backward": (G, "dx", {G: [("dsq = 1.0 / N *", "dsq = 1.0 / (N - 1) *")]}),
    "eps_dropped_backward": (A, "dx", {A: [(STD, "std = np.sqrt(var)")]}),
    "sqrt_forgotten": (A, "dx", {A: [(STD, "std = var + eps")]}),
    "scale_dropped": (A, "dx", {A: [("dx = gamma / std * (", "dx = gamma * (")]}),
    "gamma_left_out": (A, "dx", {A: [("dx = gamma / std * (", "dx = 1 / std * (")]}),
    "sign_mean_term": (A, "dx", {A: [(CLOSED, "(dout + dbeta / N - xhat * dgamma / N)")]}),
    "sign_variance_term": (A, "dx", {A: [(CLOSED, "(dout - dbeta / N + xhat * dgamma / N)")]}),
    "test_backward_in_train": (A, "dx", {A: [(" * " + CLOSED, " * dout")]}),
    "running_var_in_backward": (
        A,
        "dx",
        {A: [(STD, "std = np.sqrt(bn_param['running_var'] + eps)")]},
    ),
    "dgamma_with_x": (A, "dgamma", {A: [(RET, "return dx, np.sum(dout * x, axis=0), dbeta")]}),
    "dgamma_wrong_axis": (
        A,
        "dgamma",
        {A: [(RET, "return dx, np.sum(dout * xhat, axis=1), dbeta")]},
    ),
    "dgamma_not_summed": (A, "dgamma", {A: [(RET, "return dx, dout * xhat, dbeta")]}),
    "dbeta_wrong_axis": (A, "dbeta", {A: [(RET, "return dx, dgamma, np.sum(dout, axis=1)")]}),
    "dbeta_not_summed": (A, "dbeta", {A: [(RET, "return dx, dgamma, dout")]}),
    "layer_batch_closed_form": (
        L,
        "dx",
        {
            L: [
                (
                    "dx = (dxhat - mean_dxhat - xhat * proj) / std",
                    "dx = gamma / std * (dout - (dbeta + xhat * dgamma) / x.shape[1])",
                )
            ]
        },
    ),
    "layer_batch_axis": (
        L,
        "dx",
        {
            L: [
                ("np.mean(dxhat, axis=1,", "np.mean(dxhat, axis=0,"),
                ("np.mean(dxhat * xhat, axis=1,", "np.mean(dxhat * xhat, axis=0,"),
            ]
        },
    ),
    "spatial_count_batch_only": ("spatial_batchnorm_backward", "dx", {"override": SPATIAL_N}),
    "forward_unbiased_var": (F, "out", {F: [("np.var(x, axis=0)", "np.var(x, axis=0, ddof=1)")]}),
    "forward_eps_ignored": (F, "out", {F: [('eps = bn_param.get("eps", 1e-5)', "eps = 1e-5")]}),
    "forward_eps_dropped": (F, "out", {F: [(STD, "std = np.sqrt(var)")]}),
    "running_momentum_swapped": (
        F,
        "running_mean",
        {
            F: [
                (
                    "running_mean = momentum * running_mean + (1 - momentum) * mu",
                    "running_mean = (1 - momentum) * running_mean + momentum * mu",
                )
            ]
        },
    ),
    "running_var_unbiased": (
        F,
        "running_var",
        {F: [("+ (1 - momentum) * var", "+ (1 - momentum) * var * N / (N - 1)")]},
    ),
}


def grade_text(tmp_path: Path, text: str, select: str | None = None, seed: int = 0) -> GradeResult:
    """Write ``text`` as a student's file and grade it (in-process, no time limit)."""
    path = tmp_path / f"student_{abs(hash(text)) % 10**8}.py"
    path.write_text(text)
    return worker.grade_modules([sandbox.load(path.stem, path, None)], select=select, seed=seed)


def planted(key: str) -> str:
    function, _, spec = PLANTS[key]
    if "override" in spec:
        return sample.render(overrides={function: spec["override"]})
    return sample.render(edits=spec)


def test_every_catalog_entry_has_a_plant() -> None:
    assert set(PLANTS) == set(catalog.BY_KEY)


@pytest.mark.parametrize("key", sorted(PLANTS))
def test_planted_mistake_fails_the_right_function_and_is_named(key: str, tmp_path: Path) -> None:
    function, output, _ = PLANTS[key]
    result = grade_text(tmp_path, planted(key), select=function)
    failing = {(r.function, r.output) for r in result.rows if not r.ok}
    assert (function, output) in failing, [(r.function, r.output, r.status) for r in result.rows]
    assert not result.ok
    finding = next(f for f in result.findings if (f.function, f.output) == (function, output))
    assert finding.mistakes and finding.mistakes[0].key == key, [m.key for m in finding.mistakes]
    m = catalog.BY_KEY[key]
    assert finding.mistakes[0].pointer == m.pointer and m.anchor in m.pointer


@pytest.mark.parametrize("key", ["x_for_xhat", "mean_path_dropped", "forward_eps_dropped"])
def test_the_same_plant_is_named_on_other_seeds(key: str, tmp_path: Path) -> None:
    function, output, _ = PLANTS[key]
    for seed in (1, 7):
        result = grade_text(tmp_path, planted(key), select=function, seed=seed)
        f = next(f for f in result.findings if (f.function, f.output) == (function, output))
        assert f.mistakes[0].key == key


def test_catalog_mutants_are_pairwise_distinct() -> None:
    """No two entries compute the same wrong output, so a match names one mistake."""
    import numpy as np

    from normgrad.tools.grade import views

    rng = np.random.default_rng(3)
    x = 5 * rng.standard_normal((6, 3)) + 12
    inputs = {"x": x, "gamma": rng.standard_normal(3), "beta": rng.standard_normal(3)}
    running = {
        "momentum": 0.9,
        "old_mean": np.ones(3),
        "old_var": np.full(3, 20.0),
        "new_mean": np.ones(3),
        "new_var": np.full(3, 21.0),
    }
    v = views.view("batch", inputs, rng.standard_normal((6, 3)), 0.3, running=running)
    seen: dict[tuple[str, bytes], str] = {}
    for m in catalog.MISTAKES:
        if "batch" not in m.kinds:
            continue
        value = np.round(np.asarray(m.mutant(v)[0], dtype=float), 10)
        key = (m.output, value.tobytes())
        assert key not in seen, (m.key, seen.get(key))
        seen[key] = m.key
