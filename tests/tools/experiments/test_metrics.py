"""The experiments' numbers against values computed independently, so faked metrics fail.

Each test recomputes a metric by a different route from the one in the module: by hand
on a small synthetic curve, or by hooking the training to measure the model itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from normgrad.tools.experiments import batch_size, deep, paper_fig1, weight_scale
from normgrad.tools.experiments import common as c
from normgrad.training import solver as solver_module

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them


def held_out_acc(model, X, y) -> float:
    """Test-mode accuracy of ``model`` on every row, computed here, not by the Solver."""
    return float(np.mean(np.argmax(model.loss(X), axis=1) == y))


def record_arms(monkeypatch, module) -> list[tuple[dict, c.Arm]]:
    """Wrap ``c.train_fc_arm`` as ``module`` sees it; return the (call, Arm) log."""
    log: list[tuple[dict, c.Arm]] = []
    original = c.train_fc_arm

    def wrapper(name, data, hidden, norm, ws, lr, epochs, batch, seed, **kw):
        arm = original(name, data, hidden, norm, ws, lr, epochs, batch, seed, **kw)
        log.append(
            (
                {"name": name, "epochs": epochs, "batch": batch, "seed": seed, "weight_scale": ws},
                arm,
            )
        )
        return arm

    monkeypatch.setattr(module.c, "train_fc_arm", wrapper)
    return log


# ---------------------------------------------------------------- paper-fig1, by hand
def test_steps_to_target_by_hand_and_step_0_never_counts():
    curve = {"step": [0, 10, 20, 30], "val_acc": [0.9, 0.5, 0.8, 0.95]}
    assert paper_fig1.steps_to(curve, 0.8) == 20  # step 0 is already at 0.9: ignored
    assert paper_fig1.steps_to(curve, 0.5) == 10
    assert paper_fig1.steps_to(curve, 0.95) == 30
    assert paper_fig1.steps_to(curve, 0.96) is None
    assert paper_fig1.steps_to({"step": [0], "val_acc": [1.0]}, 0.1) is None


def test_percentile_drift_by_hand():
    pcts = [
        [-9.0, 0.0, 9.0],  # step 0: left out
        [-1.0, 0.0, 1.0],
        [-2.0, 0.5, 3.0],
        [-1.5, -0.5, 2.0],
    ]
    drift = paper_fig1.percentile_drift(pcts)
    assert drift == pytest.approx({"p15": 1.0, "p50": 1.0, "p85": 2.0, "mean": 4.0 / 3.0})
    assert paper_fig1.percentile_drift([[1.0, 2.0, 3.0]]) == {
        "p15": 0.0,
        "p50": 0.0,
        "p85": 0.0,
        "mean": 0.0,
    }


def test_paper_fig1_summary_numbers_follow_the_curves(tmp_path):
    s = paper_fig1.run(c.Context(out=tmp_path, scale="tiny"))
    target = s["arms"]["baseline"]["curves"]["val_acc"][-1]
    assert s["target_acc"] == target
    for name, arm in s["arms"].items():
        cur = arm["curves"]
        p = np.array(cur["percentiles"])[1:]  # (evals - 1, 3), step 0 left out
        by_hand = [float(p[:, k].max() - p[:, k].min()) for k in range(3)]
        assert [arm["percentile_drift"][f"p{q}"] for q in (15, 50, 85)] == pytest.approx(by_hand)
        assert arm["percentile_drift"]["mean"] == pytest.approx(np.mean(by_hand))
        hits = [
            st for st, a in zip(cur["step"], cur["val_acc"], strict=True) if st > 0 and a >= target
        ]
        assert arm["steps_to_target"] == (hits[0] if hits else None), name
        assert s["steps_to_target"][name] == arm["steps_to_target"]


def test_paper_fig1_final_acc_is_the_trained_models(monkeypatch):
    made = []

    build = paper_fig1.build_net

    def recorded(*a, **k):
        made.append(build(*a, **k))
        return made[-1]

    monkeypatch.setattr(paper_fig1, "build_net", recorded)
    data = c.standardize(c.load_data(c.Context(scale="tiny"))[0])
    hp = paper_fig1.hyperparameters(c.Context(scale="tiny"))
    hp["num_steps"], hp["eval_every"] = 47, 20  # the last step is not an eval_every multiple
    for name in ("baseline", "batchnorm"):
        arm = paper_fig1.train_arm(name, data, hp, seed=0)
        model = made[-1]
        assert arm["curves"]["step"][-1] == 47
        assert arm["final_acc"] == held_out_acc(model, data["X_val"], data["y_val"]), name


def test_paper_fig1_standardizes_every_data_set(tmp_path, monkeypatch):
    from tests.tools.experiments.test_experiments import fake_cifar

    seen = []
    original = paper_fig1.train_arm

    def spy(name, data, *a, **k):
        seen.append(float(np.std(data["X_train"])))
        return original(name, data, *a, **k)

    monkeypatch.setattr(paper_fig1, "train_arm", spy)
    folder = fake_cifar(tmp_path)
    raw, _ = c.load_data(c.Context(data="cifar10", data_dir=str(folder), scale="tiny"))
    assert np.std(raw["X_train"]) > 10  # CIFAR minus its mean image: pixel units
    paper_fig1.run(
        c.Context(data="cifar10", data_dir=str(folder), out=tmp_path / "o", scale="tiny")
    )
    paper_fig1.run(c.Context(out=tmp_path / "d", scale="tiny"))
    assert seen == pytest.approx([1.0] * 4)
    assert "DIGITS" in paper_fig1.CHOICES["learning_rate"]


# ---------------------------------------------------------------- final_acc, hooked
def test_fc_arm_final_acc_is_the_model_at_the_end_of_training(monkeypatch):
    data, _ = c.load_data(c.Context(scale="tiny"), 100)
    at_end = []
    original = solver_module.load_model_state

    def hook(model, *a, **k):  # the Solver's swap to its best model, after the last step
        at_end.append(held_out_acc(model, data["X_val"], data["y_val"]))
        return original(model, *a, **k)

    monkeypatch.setattr(solver_module, "load_model_state", hook)
    # a learning rate high enough that the last model is not the best one
    arm = c.train_fc_arm("baseline", data, [20, 20], None, 5e-2, 3e-2, 4, 10, seed=1)
    assert not arm.metrics["diverged"]
    assert len(at_end) == 1 and arm.metrics["final_acc"] == at_end[0]
    assert arm.metrics["best_val_acc"] == max(arm.curves["val_acc"])


def test_fc_arm_final_acc_when_diverged_is_the_model_at_divergence(monkeypatch):
    data, _ = c.load_data(c.Context(scale="tiny"), 100)
    at_divergence = []
    original = solver_module.Solver._step

    def hook(self):
        ok = original(self)
        if not ok:  # stopped before the update: the model as it is at divergence
            at_divergence.append(held_out_acc(self.model, data["X_val"], data["y_val"]))
        return ok

    monkeypatch.setattr(solver_module.Solver, "_step", hook)
    with np.errstate(over="ignore", invalid="ignore"):  # the point: it overflows
        arm = c.train_fc_arm(
            "baseline", data, [20] * 3, None, 1.0, 1e3, 2, 10, seed=0, update_rule="sgd"
        )
    assert arm.metrics["diverged"] and len(at_divergence) == 1
    assert arm.metrics["final_acc"] == at_divergence[0]
    assert arm.metrics["final_acc"] != arm.curves["val_acc"][-1]  # not the last check


# ---------------------------------------------------------------- aggregation
def test_aggregate_seeds_and_mean_curve():
    runs = [
        c.Arm(
            "a",
            {"final_acc": 0.5, "x": 1.0, "diverged": False, "seconds": 1.0},
            {"val_acc": [0.1, 0.2, 0.3]},
        ),
        c.Arm(
            "a",
            {"final_acc": 0.7, "x": 3.0, "diverged": True, "seconds": 2.0},
            {"val_acc": [0.3, 0.4]},
        ),
    ]
    m = c.aggregate_seeds(runs, ("final_acc", "x"))
    assert m["final_acc"] == pytest.approx(0.6) and m["x"] == 2.0
    assert m["final_acc_by_seed"] == [0.5, 0.7] and m["x_by_seed"] == [1.0, 3.0]
    assert m["diverged_runs"] == 1 and m["seconds"] == 3.0
    np.testing.assert_allclose(c.mean_curve(runs, "val_acc"), [0.2, 0.3])


def test_deep_arms_are_the_runs_means(tmp_path, monkeypatch):
    log = record_arms(monkeypatch, deep)
    s = deep.run(c.Context(out=tmp_path, scale="tiny"))
    for name in ("baseline", "batchnorm"):
        mine = [arm.metrics["final_acc"] for call, arm in log if call["name"] == name]
        assert s["arms"][name]["final_acc_by_seed"] == mine
        assert s["arms"][name]["final_acc"] == pytest.approx(np.mean(mine))
    assert s["conclusion"] == deep.conclusion(s["arms"], len(s["seeds"]))


def test_deep_conclusion_follows_the_numbers():
    ahead = deep.conclusion({"batchnorm": {"final_acc": 0.9}, "baseline": {"final_acc": 0.8}}, 3)
    behind = deep.conclusion({"batchnorm": {"final_acc": 0.8}, "baseline": {"final_acc": 0.9}}, 3)
    level = deep.conclusion({"batchnorm": {"final_acc": 0.8}, "baseline": {"final_acc": 0.8}}, 3)
    assert "ahead of" in ahead and "0.900 vs 0.800" in ahead and "BEHIND" not in ahead
    assert "BEHIND" in behind and "0.800 vs 0.900" in behind and "ahead" not in behind
    assert "level with" in level


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_batch_size_sensitivities_match_their_definitions(tmp_path, monkeypatch, norm):
    original_hp = batch_size.hyperparameters

    def two_seeds(ctx, norm):
        return {**original_hp(ctx, norm), "num_seeds": 2}

    monkeypatch.setattr(batch_size, "hyperparameters", two_seeds)
    log = record_arms(monkeypatch, batch_size)
    s = batch_size.run(c.Context(out=tmp_path, scale="tiny"), norm)
    hp = s["hyperparameters"]
    fixed, equal = {}, {}
    for call, arm in log:  # recomputed from the runs themselves, not from summary.json
        key = (call["name"], call["seed"])
        if call["epochs"] == hp["num_epochs"]:
            fixed[key] = arm.metrics
        if call["name"] == f"{norm}_b5" or call["epochs"] != hp["num_epochs"]:
            equal[key] = arm.metrics
    seeds = s["seeds"]
    assert len(seeds) == 2

    def spread(table):
        return np.mean(
            [
                max(table[(f"{norm}_b{b}", sd)]["final_acc"] for b in (5, 10, 50))
                - min(table[(f"{norm}_b{b}", sd)]["final_acc"] for b in (5, 10, 50))
                for sd in seeds
            ]
        )

    assert s["batch_size_sensitivity"] == pytest.approx(spread(fixed))
    assert s["batch_size_sensitivity_equal_steps"] == pytest.approx(spread(equal))
    steps = {equal[(f"{norm}_b{b}", sd)]["iterations"] for b in (5, 10, 50) for sd in seeds}
    assert steps == {fixed[(f"{norm}_b5", seeds[0])]["iterations"]}  # equal updates
    for name, m in s["arms"].items():
        assert m["final_acc_by_seed"] == [fixed[(name, sd)]["final_acc"] for sd in seeds]
    assert "batch_size_sensitivity_equal_steps" in batch_size.table(s)


def test_equal_steps_epochs():
    assert batch_size.equal_steps_epochs(50, 200, 1000) == 10
    assert batch_size.equal_steps_epochs(5, 200, 1000) == 1
    assert batch_size.equal_steps_epochs(30, 100, 1000) == 4  # 33 per epoch: never fewer


# ---------------------------------------------------------------- weight-scale
def test_weight_scale_best_final_acc_and_notes(tmp_path, monkeypatch):
    log = record_arms(monkeypatch, weight_scale)
    s = weight_scale.run(c.Context(out=tmp_path, scale="tiny"))
    assert set(s["metric_notes"]) >= {"final_acc", "best_final_acc"}
    for name, m in s["arms"].items():
        finals = [arm.metrics["final_acc"] for call, arm in log if call["name"] == name]
        bests = [arm.metrics["best_val_acc"] for call, arm in log if call["name"] == name]
        assert m["final_acc_by_scale"] == finals
        assert m["final_acc"] == pytest.approx(np.mean(finals))
        assert m["best_final_acc"] == finals[int(np.argmax(bests))]


def test_weight_scale_best_final_acc_is_the_final_acc_at_the_best_scale(tmp_path, monkeypatch):
    # synthetic runs whose final and best accuracies differ, peaking at different scales
    finals = {"batchnorm": [0.3, 0.5, 0.4], "baseline": [0.2, 0.1, 0.25]}
    bests = {"batchnorm": [0.6, 0.9, 0.7], "baseline": [0.8, 0.3, 0.5]}
    calls = {"batchnorm": 0, "baseline": 0}

    def fake(name, data, hidden, norm, ws, *a, **k):
        i, calls[name] = calls[name], calls[name] + 1
        metrics = {
            "final_acc": finals[name][i],
            "best_val_acc": bests[name][i],
            "best_train_acc": 1.0,
            "final_loss": 0.1,
            "diverged": False,
            "seconds": 0.0,
        }
        return c.Arm(name, metrics, {"loss": [1.0], "train_acc": [0.5], "val_acc": [0.5]})

    monkeypatch.setattr(weight_scale.c, "train_fc_arm", fake)
    s = weight_scale.run(c.Context(out=tmp_path, scale="tiny"))
    assert s["arms"]["batchnorm"]["best_final_acc"] == 0.5  # scale 1: best 0.9
    assert s["arms"]["baseline"]["best_final_acc"] == 0.2  # scale 0: best 0.8
    assert s["arms"]["baseline"]["best_scale"] == s["hyperparameters"]["weight_scales"][0]
    assert s["arms"]["baseline"]["final_acc"] == pytest.approx(np.mean(finals["baseline"]))


def test_one_blas_limit_shared_with_the_conv_benchmark():
    from normgrad._internal.threads import blas_limit
    from normgrad.tools import bench_conv, experiments

    assert bench_conv.blas_limit is blas_limit and experiments.blas_limit is blas_limit
    with blas_limit(None) as applied:
        assert applied == "uncontrolled"
    with blas_limit(1) as applied:
        assert applied in ("1", "uncontrolled (threadpoolctl not installed)")
