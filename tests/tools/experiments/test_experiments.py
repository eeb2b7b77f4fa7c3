"""normgrad.tools.experiments end to end at the tiny test scale: files, summary.json, CIFAR path."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from normgrad.data_utils import CIFAR10_DIRNAME, TEST_BATCH, TRAIN_BATCHES
from normgrad.tools import experiments as E
from normgrad.tools.experiments import common as c
from normgrad.tools.experiments import paper_fig1

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them

CASES = [
    ("deep", None, ["deep.png"], {"baseline", "batchnorm"}),
    ("weight-scale", None, ["weight_scale.png"], {"baseline", "batchnorm"}),
    (
        "batch-size",
        None,
        ["batch_size_batchnorm.png"],
        {"baseline_b5", "batchnorm_b5", "batchnorm_b10", "batchnorm_b50"},
    ),
    (
        "batch-size",
        "layernorm",
        ["batch_size_layernorm.png"],
        {"baseline_b5", "layernorm_b5", "layernorm_b10", "layernorm_b50"},
    ),
    ("paper-fig1", None, ["paper_fig1.png"], {"baseline", "batchnorm"}),
    ("sync-bn", None, ["sync_bn.png"], {"local", "sync", "single"}),
]


def fake_cifar(tmp_path: Path, rows: int = 12) -> Path:
    """A CIFAR-10 folder in the course's pickle format, ``rows`` random images per batch."""
    rng = np.random.default_rng(0)
    folder = tmp_path / CIFAR10_DIRNAME
    folder.mkdir()
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        batch = {
            b"data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, rows)],
            b"batch_label": name.encode(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def check_outputs(out: Path, summary: dict, figures: list[str], arms: set[str]) -> None:
    for name in figures:
        png = out / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["figures"] == figures
    assert set(on_disk["arms"]) == arms
    for metrics in on_disk["arms"].values():
        assert 0.0 <= metrics["final_acc"] <= 1.0
    hp = on_disk["hyperparameters"]
    assert hp and all(k in hp for k in ("batch_size",) if "batch_sizes" not in hp)
    assert on_disk["experiment"] == summary["experiment"]
    assert not list(out.glob(".tmp-*"))  # atomic writes leave no temporaries


@pytest.mark.parametrize(
    ("name", "norm", "figures", "arms"),
    CASES,
    ids=[f"{n}-{m or 'default'}" for n, m, _, _ in CASES],
)
def test_each_experiment_on_digits(tmp_path, name, norm, figures, arms):
    ctx = c.Context(out=tmp_path, scale="tiny", seed=3)
    summary = E.run(name, ctx, norm=norm)
    check_outputs(tmp_path, summary, figures, arms)
    assert "digits" in summary["data"]
    table = E.table(summary)
    assert all(arm in table for arm in arms)


@pytest.mark.parametrize("name", list(E.EXPERIMENTS))
def test_each_experiment_on_a_fake_cifar_folder(tmp_path, name):
    folder = fake_cifar(tmp_path)
    out = tmp_path / "out"
    summary = E.run(name, c.Context(data="cifar10", data_dir=str(folder), out=out, scale="tiny"))
    expected = next(case for case in CASES if case[0] == name)
    check_outputs(out, summary, expected[2], expected[3])
    assert "cifar10" in summary["data"] and "(3072,)" in summary["data"]


def test_hyperparameters_are_the_issue_settings_at_full_scale():
    from normgrad.tools.experiments import batch_size, deep, weight_scale

    full = c.Context(scale="full")
    hp = deep.hyperparameters(full)
    assert (
        hp["hidden_dims"],
        hp["weight_scale"],
        hp["learning_rate"],
        hp["num_epochs"],
        hp["batch_size"],
        hp["num_train"],
    ) == ([100] * 5, 2e-2, 1e-3, 10, 50, 1000)
    hp = weight_scale.hyperparameters(full)
    assert hp["hidden_dims"] == [50] * 7
    np.testing.assert_allclose(hp["weight_scales"], np.logspace(-4, 0, 20))
    hp = batch_size.hyperparameters(full, "batchnorm")
    assert hp["batch_sizes"] == [5, 10, 50] and hp["baseline_batch_size"] == 5
    hp = paper_fig1.hyperparameters(full)
    assert hp["hidden_dims"] == [100] * 3 and hp["batch_size"] == 60
    assert hp["activation"] == "sigmoid" and set(hp["choices"]) >= {
        "optimizer",
        "learning_rate",
        "init",
        "steps",
    }


def test_paper_fig1_reports_steps_to_target_and_drift(tmp_path):
    summary = E.run("paper-fig1", c.Context(out=tmp_path, scale="tiny"))
    for name in ("baseline", "batchnorm"):
        arm = summary["arms"][name]
        assert set(arm["percentile_drift"]) == {"p15", "p50", "p85", "mean"}
        assert summary["steps_to_target"][name] == arm["steps_to_target"]
        pct = np.array(arm["curves"]["percentiles"])
        assert np.all(pct[:, 0] <= pct[:, 1]) and np.all(pct[:, 1] <= pct[:, 2])
    # the baseline reaches its own final accuracy by definition
    assert summary["steps_to_target"]["baseline"] is not None


def test_paper_net_gradients_match_finite_differences():
    from normgrad.gradient_check import eval_numerical_gradient

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 10, 6)
    for bn in (False, True):
        net = paper_fig1.build_net(5, bn, seed=1)
        _, grads = net.loss(X, y)
        # with batch norm, b1..b3 get exactly zero gradient (the batch mean cancels them)
        for name in ("W1", "W4", "b4", *(("gamma3", "beta1") if bn else ("b2",))):
            f = lambda _: net.loss(X, y)[0]  # noqa: E731
            num = eval_numerical_gradient(f, net.params[name], verbose=False, h=1e-5)
            err = np.linalg.norm(num - grads[name]) / (
                np.linalg.norm(num) + np.linalg.norm(grads[name])
            )  # normwise: tiny entries
            assert err < 1e-6, (bn, name, err)


def test_unknown_experiment_and_misplaced_norm_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment"):
        E.run("nope", c.Context(out=tmp_path, scale="tiny"))
    with pytest.raises(ValueError, match="--norm applies to the batch-size"):
        E.run("deep", c.Context(out=tmp_path, scale="tiny"), norm="layernorm")
    with pytest.raises(ValueError, match="data must be one of"):
        c.Context(data="mnist")


def test_write_summary_is_strict_json_and_atomic(tmp_path):
    path = c.write_summary(
        tmp_path,
        {
            "arms": {
                "a": {"final_acc": np.float64(0.5), "loss": float("nan"), "curve": np.arange(3)}
            }
        },
    )
    assert json.loads(path.read_text()) == {
        "arms": {"a": {"final_acc": 0.5, "loss": None, "curve": [0, 1, 2]}}
    }
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
