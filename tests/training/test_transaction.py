"""A failed Solver step changes nothing: params, running stats, configs, histories, RNG.

A step is a transaction (``Solver._step``): whatever fails in it (a non-finite loss
with ``stop_on_nonfinite=True``, ``model.loss`` raising after a layer wrote its running
statistics, an update rule raising halfway through the parameters, a bad return value,
Ctrl-C) leaves the whole state exactly as before the step, compared here by deep copies.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

from normgrad.norms.batch import batchnorm_backward_alt, batchnorm_forward
from normgrad.ops.dropout import dropout_backward, dropout_forward
from normgrad.training import rules
from normgrad.training.solver import NonFiniteLossError, Solver

D, C = 4, 3


class Probe:
    """x -> batch norm -> dropout -> affine -> softmax, failing on request.

    ``fail`` is called after the batch-norm layer wrote its running statistics and the
    dropout mask was drawn from the global RNG, with the call count; it may raise or
    return a replacement loss (NaN...).
    """

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.params = {
            "gamma": np.ones(D),
            "beta": np.zeros(D),
            "W": 0.1 * rng.standard_normal((D, C)),
            "b": np.zeros(C),
        }
        self.bn_params = [{"mode": "train"}]
        self.dropout_param = {"mode": "train", "p": 0.7}
        self.calls = 0
        self.fail = None

    def loss(self, X, y=None):
        p = self.params
        mode = "test" if y is None else "train"
        self.bn_params[0]["mode"] = self.dropout_param["mode"] = mode
        h, bn_cache = batchnorm_forward(X, p["gamma"], p["beta"], self.bn_params[0])
        h, drop_cache = dropout_forward(h, self.dropout_param)
        scores = h @ p["W"] + p["b"]
        if y is None:
            return scores
        self.calls += 1
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = X.shape[0]
        loss = -logp[np.arange(n), y].mean()
        dscores = np.exp(logp)
        dscores[np.arange(n), y] -= 1
        dscores /= n
        dh = dropout_backward(dscores @ p["W"].T, drop_cache)
        _, dgamma, dbeta = batchnorm_backward_alt(dh, bn_cache)
        grads = {"gamma": dgamma, "beta": dbeta, "W": h.T @ dscores, "b": dscores.sum(axis=0)}
        if self.fail is not None:
            loss = self.fail(self.calls, loss)
            if isinstance(loss, tuple):
                return loss
        return loss, grads


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    return {
        "X_train": 3.0 + rng.standard_normal((40, D)),
        "y_train": rng.integers(0, C, 40),
        "X_val": 3.0 + rng.standard_normal((10, D)),
        "y_val": rng.integers(0, C, 10),
    }


def _trained(update_rule="adam", **kwargs) -> Solver:
    """A Solver mid-life: one epoch trained (running stats, configs, histories, best)."""
    np.random.seed(0)
    solver = Solver(
        Probe(),
        _data(),
        update_rule=update_rule,
        optim_config={"learning_rate": 1e-2},
        batch_size=10,
        num_epochs=1,
        verbose=False,
        **kwargs,
    )
    solver.train()
    np.random.seed(5)
    solver.iteration = 4  # as if 4 steps into a run
    return solver


def _expect_unchanged(solver, state_of, assert_same, error, match=None) -> None:
    before = state_of(solver)
    assert "running_mean" in before["bn_params"][0] and before["loss_history"]
    with pytest.raises(error, match=match):
        solver._step()
    assert_same(before, state_of(solver))


# ---------------------------------------------------------------- what makes a step fail
def test_a_planted_nan_loss_with_stop_on_nonfinite(state_of, assert_same) -> None:
    solver = _trained(stop_on_nonfinite=True)
    solver.model.fail = lambda calls, loss: np.nan
    before = state_of(solver)
    assert solver._step() is False  # the step declined, after the forward pass wrote
    assert_same(before, state_of(solver))
    assert np.isnan(solver._stopped_loss)


@pytest.mark.parametrize("error", [RuntimeError, MemoryError, KeyboardInterrupt])
def test_model_loss_raising_after_the_first_layer_wrote_running_stats(
    error, state_of, assert_same
) -> None:
    solver = _trained()
    written = []

    def fail(calls, loss):
        written.append(solver.model.bn_params[0]["running_mean"].copy())
        raise error("boom")

    solver.model.fail = fail
    _expect_unchanged(solver, state_of, assert_same, error, "boom")
    before = state_of(solver)["bn_params"][0]["running_mean"]
    assert not np.array_equal(written[0], before)  # the layer had written; it was undone


@pytest.mark.parametrize("rule_name", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_a_builtin_rule_raising_halfway_through_the_parameters(
    rule_name, state_of, assert_same
) -> None:
    solver = _trained(rule_name)
    seen = []
    real = solver.update_rule

    def spy(w, dw, config):
        seen.append(w)
        return real(w, dw, config)

    solver.update_rule = spy  # still treated as built-in: the library's own rule
    # the third parameter's config gets a bad value: gamma and beta are updated first
    solver.optim_configs["W"]["learning_rate"] = float("nan")
    _expect_unchanged(solver, state_of, assert_same, ValueError, r"learning_rate")
    assert len(seen) == 3


def test_a_custom_rule_that_writes_in_place_then_raises(state_of, assert_same) -> None:
    calls = []
    failing = {"on": False}

    def course_sgd(w, dw, config=None):  # the course's own sgd writes w in place
        config = {} if config is None else config
        config.setdefault("learning_rate", 1e-2)
        calls.append(1)
        if failing["on"] and len(calls) % 4 == 0:
            raise ArithmeticError("the fourth parameter fails")
        w -= config["learning_rate"] * dw
        config["steps"] = config.get("steps", 0) + 1
        return w, config

    solver = _trained(course_sgd)
    assert solver.optim_configs["W"]["steps"] == 4
    failing["on"] = True
    held = {k: w for k, w in solver.model.params.items()}  # the arrays themselves
    _expect_unchanged(solver, state_of, assert_same, ArithmeticError, "fourth")
    for k, w in solver.model.params.items():
        assert w is held[k]  # put back in place, the same arrays


def test_a_custom_rule_writing_its_state_array_in_place(state_of, assert_same) -> None:
    failing = {"on": False}

    def momentum_in_place(w, dw, config):
        v = config.setdefault("velocity", np.zeros_like(w))
        v *= 0.9
        v -= 1e-2 * dw
        if failing["on"] and w.ndim == 2:
            raise OverflowError("after the velocity was written")
        return w + v, config

    np.random.seed(0)
    solver = Solver(Probe(), _data(), update_rule=momentum_in_place, batch_size=10, verbose=False)
    solver._step()  # a good step creates the velocities
    failing["on"] = True
    _expect_unchanged(solver, state_of, assert_same, OverflowError, "velocity")


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        (None, TypeError, r"for 'gamma' it returned NoneType"),
        ("w", TypeError, r"returned str"),
        ((1, 2, 3), TypeError, r"returned tuple"),
        (("list", {}), TypeError, r"next_w is a str"),
        ((np.zeros(2), {}), ValueError, r"next_w has shape \(2,\)"),
        ((np.zeros((D, 1)), {}), ValueError, r"next_w has shape"),
        ((np.zeros(D), None), TypeError, r"config is a NoneType"),
        ((np.zeros(D), [("learning_rate", 1)]), TypeError, r"config is a list"),
        ((1.5, {}), TypeError, r"next_w is a float"),
    ],
)
def test_a_custom_rule_returning_something_else_is_refused(
    returned, error, match, state_of, assert_same
) -> None:
    def rule(w, dw, config):
        return returned

    np.random.seed(0)
    solver = Solver(Probe(), _data(), update_rule=rule, batch_size=10, verbose=False)
    solver.loss_history.append(2.0)
    with pytest.raises(error, match=r"update_rule 'rule' must return \(next_w, config\)"):
        solver._step()
    solver.model.loss(solver.X_train[:10], solver.y_train[:10])  # running stats exist now
    _expect_unchanged(solver, state_of, assert_same, error, match)


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        ("loss", TypeError, r"it returned str"),
        ((1.0,), TypeError, r"it returned tuple"),
        (("1.0", {}), TypeError, r"its loss is '1\.0'"),
        ((None, {}), TypeError, r"its loss is None"),
        ((np.ones(2), {}), TypeError, r"its loss is array"),
        ((1.0, [np.zeros(D)]), TypeError, r"its grads are a list"),
        ((1.0, {}), ValueError, r"grads\['gamma'\] is missing"),
        (
            (1.0, {"gamma": np.zeros(D), "beta": np.zeros(D), "W": np.zeros((C, D))}),
            ValueError,
            r"grads\['W'\] is ndarray \(3, 4\), params\['W'\] is \(4, 3\)",
        ),
        ((True, {}), TypeError, r"its loss is True"),
    ],
)
def test_model_loss_returning_something_else_is_refused(
    returned, error, match, state_of, assert_same
) -> None:
    solver = _trained()
    solver.model.fail = lambda calls, loss: returned if isinstance(returned, tuple) else (returned,)
    if not isinstance(returned, tuple):  # a bare value, not a tuple at all
        original = solver.model.loss

        def bare(X, y=None):
            out = original(X, y)
            return returned if y is not None else out

        solver.model.fail = None
        solver.model.loss = bare
    _expect_unchanged(solver, state_of, assert_same, error, match)


# ---------------------------------------------------------------- consequences
def test_after_a_failed_step_the_retry_is_bit_identical_to_a_run_that_never_failed() -> None:
    clean = _trained()
    retried = _trained()
    flaky = {"left": 1}
    real = retried.update_rule

    def once(w, dw, config):
        if w.ndim == 2 and flaky["left"]:
            flaky["left"] -= 1
            raise OSError("transient")
        return real(w, dw, config)

    retried.update_rule = once
    np.random.seed(5)  # the two solvers share the global generator: same start for each
    for _ in range(3):
        clean._step()
    np.random.seed(5)
    with pytest.raises(OSError):
        retried._step()
    for _ in range(3):
        retried._step()  # the same minibatches and dropout masks: the RNG was put back
    assert clean.loss_history == retried.loss_history
    for k in clean.model.params:
        np.testing.assert_array_equal(clean.model.params[k], retried.model.params[k])
    for key in ("running_mean", "running_var"):
        np.testing.assert_array_equal(
            clean.model.bn_params[0][key], retried.model.bn_params[0][key]
        )
    assert clean.optim_configs["W"]["t"] == retried.optim_configs["W"]["t"]


def test_train_stops_cleanly_and_a_successful_step_still_changes_what_it_should() -> None:
    solver = _trained(stop_on_nonfinite=True)
    before = {k: w.copy() for k, w in solver.model.params.items()}
    mean = solver.model.bn_params[0]["running_mean"].copy()
    assert solver._step() is True  # the control: a step that succeeds changes the state
    assert all(not np.array_equal(before[k], w) for k, w in solver.model.params.items())
    assert not np.array_equal(mean, solver.model.bn_params[0]["running_mean"])
    solver.model.fail = lambda calls, loss: np.inf if calls == solver.model.calls else loss
    solver._start_iteration = 0
    with pytest.raises(NonFiniteLossError, match="iteration 1 "):
        solver.train()
    assert solver.diverged


def test_the_builtin_rules_return_new_arrays_so_shallow_copies_suffice() -> None:
    # What the Solver's savepoint relies on for the built-in rules: w, dw and the old
    # state arrays are never written; the config is written only after every check.
    rng = np.random.default_rng(0)
    for name, rule in rules.UPDATE_RULES.items():
        w, dw = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
        _, config = rule(w.copy(), dw.copy())
        snapshot = {k: (val, np.copy(val)) for k, val in config.items()}
        w0, dw0 = w.copy(), dw.copy()
        next_w, new_config = rule(w, dw, config)
        assert next_w is not w and new_config is config, name
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(dw, dw0)
        for val, copy in snapshot.values():
            np.testing.assert_array_equal(val, copy)
