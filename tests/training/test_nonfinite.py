"""Non-finite losses: the course's behaviour by default, a clean stop on request.

The course's Solver records a NaN loss and keeps training; a student's learning-rate
sweep that checks ``np.isnan(solver.loss_history[-1])`` relies on it. With
``stop_on_nonfinite=True`` (what ``normgrad train`` and the experiments use) ``train()``
raises ``NonFiniteLossError`` with everything as before the failing step.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import warnings

import numpy as np
import pytest

from normgrad.models.fc_net import FullyConnectedNet
from normgrad.training.solver import NonFiniteLossError, Solver


def _sweep_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "X_train": rng.standard_normal((100, 20)),
        "y_train": rng.integers(0, 5, 100),
        "X_val": rng.standard_normal((30, 20)),
        "y_val": rng.integers(0, 5, 30),
    }


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_a_diverging_learning_rate_sweep_runs_through_as_in_the_course(normalization) -> None:
    data = _sweep_data()
    diverged = {}
    for lr in (1e-3, 1e30):
        np.random.seed(0)
        model = FullyConnectedNet(
            [50, 50],
            input_dim=20,
            num_classes=5,
            normalization=normalization,
            weight_scale=1e3,
            dtype=np.float64,
        )
        solver = Solver(
            model,
            data,
            update_rule="sgd",
            optim_config={"learning_rate": lr},
            num_epochs=3,
            batch_size=25,
            verbose=False,
        )
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            solver.train()  # no raise: the course keeps going
        ours = [w for w in seen if "stop_on_nonfinite=True" in str(w.message)]
        assert len(solver.loss_history) == 3 * 4  # every iteration ran
        diverged[lr] = bool(np.isnan(solver.loss_history[-1]))  # the student's check
        assert len(ours) == int(diverged[lr])  # warned once, only when it diverged
        if ours:
            assert issubclass(ours[0].category, RuntimeWarning)
            assert "iteration " in str(ours[0].message)
        assert solver.diverged is False  # only a stop sets it
    assert diverged == {1e-3: False, 1e30: True}


def test_the_printed_lines_for_a_nan_loss_are_the_courses(capsys) -> None:
    class NaNAfter:
        def __init__(self) -> None:
            self.params = {"W": np.zeros((4, 2))}
            self.calls = 0
            self.seen: list[float] = []  # W[0, 0] at each train call

        def loss(self, X, y=None):
            scores = X @ self.params["W"]
            if y is None:
                return scores
            self.calls += 1
            self.seen.append(float(self.params["W"][0, 0]))
            loss = 0.5 if self.calls < 3 else np.nan
            return loss, {"W": np.ones((4, 2))}

    rng = np.random.default_rng(0)
    data = {
        "X_train": rng.standard_normal((20, 4)),
        "y_train": rng.integers(0, 2, 20),
        "X_val": rng.standard_normal((5, 4)),
        "y_val": rng.integers(0, 2, 5),
    }
    solver = Solver(NaNAfter(), data, batch_size=5, num_epochs=1, print_every=1)
    with pytest.warns(RuntimeWarning, match="iteration 3 "):
        solver.train()
    out = capsys.readouterr().out.splitlines()
    lines = [ln for ln in out if ln.startswith("(Iteration")]
    # The course prints "(Iteration %d / %d) loss: %f", and %f of NaN is "nan".
    assert lines == [
        "(Iteration 1 / 4) loss: 0.500000",
        "(Iteration 2 / 4) loss: 0.500000",
        "(Iteration 3 / 4) loss: nan",
        "(Iteration 4 / 4) loss: nan",
    ]
    assert np.isnan(solver.loss_history[-1]) and len(solver.loss_history) == 4
    # each update was made with the gradients that came (ones), the NaN step's included
    assert solver.model.seen == pytest.approx([0.0, -1e-2, -2e-2, -3e-2], abs=1e-15)


def test_stop_on_nonfinite_leaves_the_real_nets_running_stats_as_before_the_step(
    fc_solver, state_of, assert_same
) -> None:
    # reg * sum(W**2) overflows: the forward pass is finite and has updated the running
    # statistics of both batch-norm layers, but the loss is inf.
    solver = fc_solver("batchnorm", stop_on_nonfinite=True, model_kwargs={"reg": 1.0})
    solver.num_epochs = 1
    solver.train()  # a finite run first: running stats, histories, configs, a best model
    solver.model.params["W3"][0, 0] = 1e200
    solver._start_iteration = 0
    before = state_of(solver)
    assert "running_mean" in before["bn_params"][0] and before["loss_history"]
    with (
        np.errstate(over="ignore"),
        pytest.raises(NonFiniteLossError, match=r"loss is inf at iteration 1 ") as stop,
    ):
        solver.train()
    assert stop.value.iteration == 1 and np.isinf(stop.value.loss)
    assert solver.diverged is True
    after = state_of(solver)
    before["iteration"] = after["iteration"] = None  # train() set it to 0, the step count
    assert_same(before, after)


def test_without_the_fix_the_failing_forward_would_have_moved_the_running_stats(
    fc_solver,
) -> None:
    # The control for the test above: the same forward pass, outside a Solver step,
    # does write the running statistics, so the test above can fail.
    solver = fc_solver("batchnorm", model_kwargs={"reg": 1.0})
    model = solver.model
    model.loss(solver.X_train[:10], solver.y_train[:10])
    model.params["W3"][0, 0] = 1e200
    before = model.bn_params[0]["running_mean"].copy()
    with np.errstate(over="ignore"):
        loss, _ = model.loss(solver.X_train[10:20], solver.y_train[10:20])
    assert not np.isfinite(loss)
    assert not np.array_equal(before, model.bn_params[0]["running_mean"])


def test_a_new_train_call_warns_again_and_a_stop_is_not_a_warning() -> None:
    class Always:
        params = {"W": np.zeros((3, 2))}

        def loss(self, X, y=None):
            if y is None:
                return X @ self.params["W"]
            return np.inf, {"W": np.zeros((3, 2))}

    rng = np.random.default_rng(1)
    data = {
        "X_train": rng.standard_normal((10, 3)),
        "y_train": rng.integers(0, 2, 10),
        "X_val": rng.standard_normal((4, 3)),
        "y_val": rng.integers(0, 2, 4),
    }
    solver = Solver(Always(), data, batch_size=5, num_epochs=2, verbose=False)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            solver.train()
        assert sum("stop_on_nonfinite" in str(w.message) for w in seen) == 1
    assert len(solver.loss_history) == 8 and all(np.isinf(solver.loss_history))
    stopping = Solver(Always(), data, batch_size=5, verbose=False, stop_on_nonfinite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, an exception
        with pytest.raises(FloatingPointError, match="stop_on_nonfinite=False"):
            stopping.train()
    assert stopping.loss_history == [] and stopping.iteration == 0


def test_normgrad_train_stops_at_a_diverging_run() -> None:
    from normgrad.tools import train

    config = train.TrainConfig(
        epochs=1, lr=1e30, update_rule="sgd", weight_scale=1e3, quiet=True, num_train=200
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # batch norm's, on inf inputs
        with pytest.raises(FloatingPointError, match=r"iteration \d+ "):
            train.train(config)


def test_a_diverged_experiment_arm_keeps_its_metrics_meaning() -> None:
    from normgrad.tools.experiments import common as c

    data, _ = c.load_data(c.Context(scale="tiny"), 100)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # batch norm's, on inf inputs
        arm = c.train_fc_arm(
            "baseline", data, [20] * 3, "batchnorm", 1e3, 1e30, 2, 10, seed=0, update_rule="sgd"
        )
    m = arm.metrics
    assert m["diverged"] is True
    losses = arm.curves["loss"]
    assert not np.isfinite(losses[-1]) and all(np.isfinite(losses[:-1]))  # it ends at the NaN
    assert m["iterations"] == len(losses) < 2 * 100 // 10
    assert 0.0 <= m["final_acc"] <= 1.0 and 0.0 <= m["final_train_acc"] <= 1.0
