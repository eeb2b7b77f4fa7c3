"""Solver: course behaviour, the best-state swap with running stats, resume, bad input.

The model is a tiny softmax regression on batch-normalized inputs, defined here, so the
tests depend on no other classifier: x (N, D) -> batchnorm -> affine (D, C) -> softmax.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import os

import numpy as np
import pytest

from normgrad import optim
from normgrad.norms.batch import batchnorm_backward_alt, batchnorm_forward
from normgrad.solver import Solver
from normgrad.training.solver import NonFiniteLossError

N_TRAIN, N_VAL, D, C, BATCH = 200, 60, 6, 3, 20  # 10 iterations per epoch


class TinyBNNet:
    """Softmax regression on batch-normalized inputs; running stats in ``bn_params``.

    ``drift`` is added to the running mean after every train step, so the running
    statistics get worse with time and the best validation epoch is an early one.
    ``nan_at`` makes the loss NaN on that (1-based) train call.
    """

    def __init__(self, seed: int = 0, d: int = D, drift: float = 0.0, nan_at: int | None = None):
        rng = np.random.default_rng(seed)
        self.params = {
            "gamma1": np.ones(d),
            "beta1": np.zeros(d),
            "W1": 0.1 * rng.standard_normal((d, C)),
            "b1": np.zeros(C),
        }
        self.bn_params = [{"mode": "train"}]
        self.num_classes = C
        self.drift, self.nan_at, self.calls = drift, nan_at, 0
        self.nan_after = False
        self.batches: list[np.ndarray] = []
        self.last_train_stats: dict[str, np.ndarray] = {}

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        p, bn = self.params, self.bn_params[0]
        bn["mode"] = "test" if y is None else "train"
        h, cache = batchnorm_forward(X, p["gamma1"], p["beta1"], bn)  # (N, D)
        scores = h @ p["W1"] + p["b1"]  # (N, C)
        if y is None:
            return scores
        self.calls += 1
        self.batches.append(X.copy())
        bn["running_mean"] = bn["running_mean"] + self.drift
        self.last_train_stats = {k: bn[k].copy() for k in ("running_mean", "running_var")}
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
        n = X.shape[0]
        loss = -logp[np.arange(n), y].mean()
        dscores = np.exp(logp)
        dscores[np.arange(n), y] -= 1
        dscores /= n  # (N, C)
        dh = dscores @ p["W1"].T  # (N, D)
        _, dgamma, dbeta = batchnorm_backward_alt(dh, cache)
        grads = {"W1": h.T @ dscores, "b1": dscores.sum(axis=0), "gamma1": dgamma, "beta1": dbeta}
        if self.nan_at == self.calls or (self.nan_after and self.nan_at <= self.calls):
            loss = np.nan
        return loss, grads


def make_data(seed: int = 1, d: int = D) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((C, d))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, C, size=n)
        return 5.0 + centres[y] + rng.standard_normal((n, d)), y

    X_train, y_train = split(N_TRAIN)
    X_val, y_val = split(N_VAL)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def solver_for(model: TinyBNNet, **kwargs) -> Solver:
    opts = dict(
        update_rule="adam",
        optim_config={"learning_rate": 5e-2},
        batch_size=BATCH,
        num_epochs=2,
        num_train_samples=50,
        verbose=False,
    )
    opts.update(kwargs)
    return Solver(model, make_data(), **opts)


# ---------------------------------------------------------------- course behaviour
def test_minibatches_are_drawn_with_replacement_from_the_global_rng() -> None:
    np.random.seed(3)
    model = TinyBNNet()
    solver = solver_for(model, num_train_samples=None, num_epochs=1)  # no sampled checks
    solver.train()
    np.random.seed(3)
    data = make_data()
    for X in model.batches:
        np.testing.assert_array_equal(X, data["X_train"][np.random.choice(N_TRAIN, BATCH)])
    assert len(model.batches) == N_TRAIN // BATCH


def test_accuracy_checks_lr_decay_and_attributes() -> None:
    np.random.seed(0)
    solver = solver_for(TinyBNNet(), num_epochs=3, lr_decay=0.5)
    solver.train()
    assert solver.epoch == 3
    assert len(solver.loss_history) == 3 * N_TRAIN // BATCH
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4  # first + 3 ends
    assert solver.best_val_acc == max(solver.val_acc_history)
    for name, config in solver.optim_configs.items():
        assert config["learning_rate"] == 5e-2 * 0.5**3
        assert config["t"] == 30 and config["m"].shape == solver.model.params[name].shape


def test_verbose_prints_course_lines_and_a_progress_bar(capsys, tmp_path) -> None:
    np.random.seed(0)
    solver_for(
        TinyBNNet(),
        verbose=True,
        print_every=10,
        num_epochs=2,
        checkpoint_name=str(tmp_path / "run"),
    ).train()
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [ln.split(")")[0] for ln in lines if ln.startswith("(Iteration")] == [
        "(Iteration 1 / 20",
        "(Iteration 11 / 20",
    ]
    epochs = [i for i, ln in enumerate(lines) if ln.startswith("(Epoch ")]
    assert len(epochs) == 3 and all("; val_acc: " in lines[i] for i in epochs)
    for i, e in zip(epochs, (0, 1, 2)):  # the course announces the checkpoint first
        assert lines[i - 1] == f'Saving checkpoint to "{tmp_path / "run"}_epoch_{e}.npz"'
    assert lines[-1].startswith("(Epoch 2 / 2) train acc: ")
    assert "20/20" not in err and "it/s" not in err  # not a terminal: no bar at all


def test_progress_bar_is_drawn_only_on_a_terminal(capsys, monkeypatch) -> None:
    import sys

    np.random.seed(0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    solver_for(TinyBNNet(), verbose=True, print_every=10, num_epochs=2).train()
    assert "20/20" in capsys.readouterr().err  # tqdm's bar, on stderr
    solver_for(TinyBNNet(), verbose=True, progress_bar=False, num_epochs=1).train()
    assert "it/s" not in capsys.readouterr().err


def test_update_rule_may_be_a_callable() -> None:
    seen = []

    def halve(w, dw, config=None):
        seen.append(config["learning_rate"])
        return w - config["learning_rate"] * dw, config

    solver_for(
        TinyBNNet(), update_rule=halve, optim_config={"learning_rate": 1e-3}, num_epochs=1
    ).train()
    assert seen and set(seen) == {1e-3}


def test_unknown_kwargs_and_rules_raise() -> None:
    with pytest.raises(ValueError, match='Unrecognized arguments "learning_rate"'):
        solver_for(TinyBNNet(), learning_rate=1e-3)
    with pytest.raises(ValueError, match='Invalid update_rule "nesterov"'):
        solver_for(TinyBNNet(), update_rule="nesterov")
    assert set(optim.UPDATE_RULES) == {"sgd", "sgd_momentum", "rmsprop", "adam"}


# ---------------------------------------------------------------- best-state swap
def test_restored_best_model_scores_exactly_best_val_acc() -> None:
    np.random.seed(0)
    model = TinyBNNet(drift=0.4)
    solver = solver_for(model, num_epochs=4)
    solver.train()
    best_check = int(np.argmax(solver.val_acc_history))
    assert best_check < len(solver.val_acc_history) - 1, "the drift should make an early best"
    assert solver.check_accuracy(solver.X_val, solver.y_val) == solver.best_val_acc
    for k, w in solver.best_params.items():
        np.testing.assert_array_equal(model.params[k], w)
    # The course restores params only: best weights with the last running stats score worse.
    model.bn_params[0].update({k: v.copy() for k, v in model.last_train_stats.items()})
    assert solver.check_accuracy(solver.X_val, solver.y_val) < solver.best_val_acc


# ---------------------------------------------------------------- resume
def _state(solver: Solver) -> dict:
    m = solver.model
    return {
        "loss": np.asarray(solver.loss_history),
        "train": np.asarray(solver.train_acc_history),
        "val": np.asarray(solver.val_acc_history),
        "best": solver.best_val_acc,
        **{f"p/{k}": w for k, w in m.params.items()},
        **{f"bn/{k}": v for k, v in m.bn_params[0].items() if isinstance(v, np.ndarray)},
        **{f"o/{p}/{k}": v for p, c in solver.optim_configs.items() for k, v in c.items()},
    }


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_resume_is_bit_identical_to_an_unbroken_run(tmp_path, rule: str) -> None:
    np.random.seed(0)
    straight = solver_for(
        TinyBNNet(), update_rule=rule, lr_decay=0.9, checkpoint_name=str(tmp_path / "a")
    )
    straight.train()

    np.random.seed(0)
    first = solver_for(
        TinyBNNet(),
        update_rule=rule,
        lr_decay=0.9,
        num_epochs=1,
        checkpoint_name=str(tmp_path / "b"),
    )
    first.train()
    np.random.seed(12345)  # resume must restore the RNG state itself
    resumed_model = TinyBNNet(seed=99)  # and the params: start from other weights
    resumed = solver_for(
        resumed_model,
        update_rule=rule,
        lr_decay=0.9,
        resume_from=str(tmp_path / "b_epoch_1.npz"),
        checkpoint_name=str(tmp_path / "c"),
    )
    assert resumed.epoch == 1 and len(resumed.loss_history) == N_TRAIN // BATCH
    resumed.train()

    a, c = _state(straight), _state(resumed)
    assert a.keys() == c.keys()
    for key in a:
        assert np.array_equal(a[key], c[key]), key
        assert type(a[key]) is type(c[key]) or isinstance(a[key], np.ndarray), key
    with np.load(tmp_path / "a_epoch_2.npz") as fa, np.load(tmp_path / "c_epoch_2.npz") as fc:
        assert fa.files == fc.files
        for key in fa.files:
            assert np.array_equal(fa[key], fc[key]), key


def test_bad_checkpoints_raise_and_change_nothing(tmp_path) -> None:
    np.random.seed(0)
    solver_for(TinyBNNet(), num_epochs=1, checkpoint_name=str(tmp_path / "run")).train()
    good = (tmp_path / "run_epoch_1.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 3 : len(good) // 3 + 64] = bytes(64)
    (tmp_path / "corrupt.npz").write_bytes(bytes(flipped))
    (tmp_path / "garbage.npz").write_bytes(b"not a checkpoint at all" * 10)
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))

    model = TinyBNNet(seed=5)
    solver = solver_for(model, num_epochs=1)
    solver.loss_history.append(1.5)
    before = {k: w.copy() for k, w in model.params.items()}
    np.random.seed(7)
    rng_before = np.random.get_state()[1].copy()
    for name in ("truncated", "corrupt", "garbage", "foreign"):
        with pytest.raises(ValueError, match="checkpoint"):
            solver.restore(tmp_path / f"{name}.npz")
        with pytest.raises(ValueError):
            solver_for(model, resume_from=str(tmp_path / f"{name}.npz"))
    wider = TinyBNNet(d=D + 1)
    wide_data = make_data(d=D + 1)
    with pytest.raises(ValueError, match=r"W1: checkpoint \(6, 3\) float64, this model \(7, 3\)"):
        Solver(
            wider,
            wide_data,
            update_rule="adam",
            batch_size=BATCH,
            verbose=False,
            resume_from=str(tmp_path / "run_epoch_1.npz"),
        )
    with pytest.raises(ValueError, match="batch_size"):
        solver_for(TinyBNNet(), batch_size=10, resume_from=str(tmp_path / "run_epoch_1.npz"))
    assert wider.bn_params == [{"mode": "train"}]  # as built: the probe restored it, nothing loaded
    assert solver.loss_history == [1.5] and solver.epoch == 0
    for k, w in model.params.items():
        np.testing.assert_array_equal(w, before[k])
    assert "running_mean" not in model.bn_params[0]
    np.testing.assert_array_equal(np.random.get_state()[1], rng_before)
    with pytest.raises(FileNotFoundError):
        solver.restore(tmp_path / "missing.npz")


def test_stop_on_nonfinite_stops_with_the_iteration_and_keeps_the_checkpoint(tmp_path) -> None:
    np.random.seed(0)
    model = TinyBNNet(nan_at=15)
    solver = solver_for(
        model, num_epochs=3, checkpoint_name=str(tmp_path / "run"), stop_on_nonfinite=True
    )
    assert solver.diverged is False
    with pytest.raises(NonFiniteLossError, match="iteration 15 ") as stop:
        solver.train()
    assert isinstance(stop.value, FloatingPointError)
    assert stop.value.iteration == 15 and stop.value.epoch == 1 and np.isnan(stop.value.loss)
    assert solver.diverged is True and solver.iteration == 14
    assert len(solver.loss_history) == 14  # the failed step recorded nothing
    assert all(np.isfinite(w).all() for w in model.params.values())
    assert solver.last_checkpoint == str(tmp_path / "run_epoch_1.npz")
    assert solver.last_checkpoint in str(stop.value)
    resumed = solver_for(TinyBNNet(), num_epochs=3, resume_from=solver.last_checkpoint)
    assert resumed.epoch == 1 and len(resumed.loss_history) == 10
    assert not (tmp_path / "run_epoch_2.npz").exists()


def test_by_default_a_nonfinite_loss_is_recorded_warned_once_and_training_goes_on() -> None:
    # The course's Solver keeps training: a learning-rate sweep that checks
    # np.isnan(solver.loss_history[-1]) must run through.
    np.random.seed(0)
    model = TinyBNNet(nan_at=15)
    model.nan_after = True  # every loss from call 15 on is NaN
    solver = solver_for(model, num_epochs=3)
    with pytest.warns(RuntimeWarning, match=r"iteration 15 .*stop_on_nonfinite=True") as seen:
        solver.train()
    ours = [w for w in seen if "stop_on_nonfinite" in str(w.message)]
    assert len(ours) == 1  # once per train(), not once per NaN
    assert solver.diverged is False
    assert len(solver.loss_history) == 30 and np.isnan(solver.loss_history[-1])
    assert all(np.isfinite(h) for h in solver.loss_history[:14])
    assert all(np.isnan(h) for h in solver.loss_history[14:])
    assert solver.iteration == 30 and solver.epoch == 3
    with pytest.warns(RuntimeWarning, match="once per train"):  # a new train() warns again
        solver.train()


# ---------------------------------------------------------------- bad data
def _bad(**changes) -> dict[str, np.ndarray]:
    data = make_data()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_bad(y_train=np.zeros(N_TRAIN - 1, dtype=int)), "same number of rows"),
        (_bad(X_val=np.zeros((N_VAL, D + 1))), "same shape"),
        (
            _bad(X_train=np.zeros((N_TRAIN, D + 1)), X_val=np.zeros((N_VAL, D + 1))),
            "model rejects rows of shape",
        ),
        (_bad(y_train=np.full(N_TRAIN, C)), r"outside \[0, 3\)"),
        (_bad(y_val=np.full(N_VAL, -1)), r"outside \[0, 3\)"),
        (_bad(y_train=np.zeros(N_TRAIN)), "integer class labels"),
        ({"X_train": np.zeros((2, D))}, "missing"),
    ],
)
def test_bad_data_is_rejected_before_training(data, message: str) -> None:
    model = TinyBNNet()
    with pytest.raises(ValueError, match=message):
        Solver(model, data, verbose=False)
    assert model.calls == 0


def test_checkpoint_folder_is_created_and_only_final_files_remain(tmp_path) -> None:
    np.random.seed(0)
    prefix = tmp_path / "deep" / "dir" / "run"
    solver_for(TinyBNNet(), checkpoint_name=str(prefix)).train()
    assert sorted(os.listdir(prefix.parent)) == [
        "run_epoch_0.npz",
        "run_epoch_1.npz",
        "run_epoch_2.npz",
    ]


# ---------------------------------------------------------------- with the real net
def test_fully_connected_net_overfits_small_data_and_resumes_bit_identically(tmp_path) -> None:
    fc_net = pytest.importorskip("normgrad.classifiers.fc_net")
    rng = np.random.default_rng(2)
    small = {
        "X_train": rng.standard_normal((50, 32)),
        "y_train": rng.integers(0, 3, 50),
        "X_val": rng.standard_normal((30, 32)),
        "y_val": rng.integers(0, 3, 30),
    }

    def run(epochs: int, **kwargs) -> Solver:
        np.random.seed(0)
        model = fc_net.FullyConnectedNet(
            [100, 100],
            input_dim=32,
            num_classes=3,
            normalization="batchnorm",
            dtype=np.float64,
            weight_scale=5e-2,
        )
        solver = Solver(
            model,
            small,
            update_rule="adam",
            optim_config={"learning_rate": 1e-2},
            batch_size=25,
            num_epochs=epochs,
            verbose=False,
            **kwargs,
        )
        solver.train()
        return solver

    # The course's "overfit 50 examples" check (random labels), with batch norm: the
    # training accuracy reaches 1 within 20 epochs.
    solver = run(20)
    assert solver.train_acc_history[-1] == 1.0
    assert solver.check_accuracy(small["X_val"], small["y_val"]) == solver.best_val_acc

    straight = run(4)
    run(2, checkpoint_name=str(tmp_path / "b"))
    np.random.seed(0)
    model = fc_net.FullyConnectedNet(
        [100, 100], input_dim=32, num_classes=3, normalization="batchnorm", dtype=np.float64
    )
    resumed = Solver(
        model,
        small,
        update_rule="adam",
        batch_size=25,
        num_epochs=4,
        verbose=False,
        resume_from=str(tmp_path / "b_epoch_2.npz"),
    )
    resumed.train()
    assert np.array_equal(straight.loss_history, resumed.loss_history)
    assert straight.val_acc_history == resumed.val_acc_history
    for k, w in straight.model.params.items():
        assert np.array_equal(w, resumed.model.params[k]), k
    for mine, theirs in zip(straight.model.bn_params, resumed.model.bn_params):
        assert np.array_equal(mine["running_mean"], theirs["running_mean"])
        assert np.array_equal(mine["running_var"], theirs["running_var"])


def test_building_a_solver_leaves_the_model_and_rng_untouched():
    # The shape probe runs the model in test mode: it must not switch modes, write
    # running stats back, or reseed the global generator (dropout with a seed does).
    from normgrad.classifiers.fc_net import FullyConnectedNet

    rng = np.random.default_rng(0)
    data = {
        "X_train": rng.standard_normal((20, 6)),
        "y_train": rng.integers(0, 3, 20),
        "X_val": rng.standard_normal((8, 6)),
        "y_val": rng.integers(0, 3, 8),
    }
    model = FullyConnectedNet(
        [5],
        input_dim=6,
        num_classes=3,
        normalization="batchnorm",
        dropout_keep_ratio=0.5,
        seed=3,
        dtype=np.float64,
    )
    bn_before = [dict(p) for p in model.bn_params]
    drop_before = dict(model.dropout_param)
    np.random.seed(11)
    state = np.random.get_state()[1].copy()
    Solver(model, data, verbose=False)
    assert model.bn_params == bn_before
    assert model.dropout_param == drop_before
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# ---------------------------------------------------------------- review fixes
def _everything(solver: Solver) -> dict:
    """Deep copies of all the state restore() may write, to compare before and after."""
    import copy

    return copy.deepcopy(
        {
            "loss": solver.loss_history,
            "train": solver.train_acc_history,
            "val": solver.val_acc_history,
            "epoch": solver.epoch,
            "iteration": solver.iteration,
            "start": solver._start_iteration,
            "best_acc": solver.best_val_acc,
            "best_params": solver.best_params,
            "best_state": solver._best_state,
            "optim": solver.optim_configs,
            "params": solver.model.params,
            "bn": solver.model.bn_params,
            "rng": np.random.get_state(),
        }
    )


def _assert_same(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert type(a) is type(b) and a == b, where


def test_restore_of_a_valid_checkpoint_from_a_wider_model_changes_nothing(tmp_path) -> None:
    np.random.seed(0)
    Solver(
        TinyBNNet(d=D + 1),
        make_data(d=D + 1),
        update_rule="adam",
        batch_size=BATCH,
        num_epochs=1,
        num_train_samples=50,
        verbose=False,
        checkpoint_name=str(tmp_path / "wide"),
    ).train()  # same N, batch size and rule
    np.random.seed(1)
    solver = solver_for(TinyBNNet(drift=0.1), num_epochs=1)
    solver.train()  # an existing solver, mid-life: histories, best snapshot, running stats
    before = _everything(solver)
    assert before["loss"] and "running_mean" in before["bn"][0] and before["best_params"]
    with pytest.raises(ValueError, match=r"W1: checkpoint \(7, 3\) float64, this model \(6, 3\)"):
        solver.restore(tmp_path / "wide_epoch_1.npz")
    _assert_same(before, _everything(solver))


def test_restore_rejects_optimizer_state_of_another_shape_and_changes_nothing(tmp_path) -> None:
    from normgrad.training import checkpoint as ck

    np.random.seed(0)
    solver_for(TinyBNNet(), num_epochs=1, checkpoint_name=str(tmp_path / "run")).train()
    arrays, meta = ck.load_checkpoint(tmp_path / "run_epoch_1.npz")
    arrays["optim/W1/m"] = np.zeros((D + 1, C))  # params fit; Adam's state does not
    ck.save_checkpoint(tmp_path / "bad.npz", arrays, meta)
    solver = solver_for(TinyBNNet(seed=4), num_epochs=1)
    solver.train()
    before = _everything(solver)
    with pytest.raises(ValueError, match=r"W1\['m'\] \(7, 3\) for W1 \(6, 3\)"):
        solver.restore(tmp_path / "bad.npz")
    _assert_same(before, _everything(solver))


class ShiftOnly:
    """Linear scores ``X @ W + b`` whose gradient moves only ``b``, equally for every class.

    Each step then shifts all scores of a row by the same amount: the predictions, and so
    every validation accuracy, stay the same while the params change.
    """

    def __init__(self) -> None:
        self.params = {"W": np.random.default_rng(0).standard_normal((D, C)), "b": np.zeros(C)}

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        scores = X @ self.params["W"] + self.params["b"]  # (N, C)
        if y is None:
            return scores
        return 1.0, {"W": np.zeros((D, C)), "b": np.ones(C)}


def test_a_tied_validation_accuracy_keeps_the_first_best_snapshot() -> None:
    model = ShiftOnly()
    data = make_data()
    data["y_val"] = np.argmax(data["X_val"] @ model.params["W"], axis=1)  # accuracy 1.0
    solver = Solver(
        model,
        data,
        update_rule="sgd",
        optim_config={"learning_rate": 0.25},
        batch_size=BATCH,
        num_epochs=2,
        num_train_samples=None,
        verbose=False,
    )
    solver.train()
    assert solver.val_acc_history == [1.0, 1.0, 1.0]  # first iteration, then each epoch end
    # The course keeps the first best (val_acc > best): the check after step 1, b = -0.25.
    first = np.full(C, -0.25)
    np.testing.assert_array_equal(solver.best_params["b"], first)
    np.testing.assert_array_equal(model.params["b"], first)  # swapped in at the end


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"batch_size": 0},
            r"batch_size must be an integer >= 1; got 0\. Pass a whole number "
            r"such as batch_size=100\.",
        ),
        ({"num_epochs": -1}, r"num_epochs must be an integer >= 0; got -1\. .*num_epochs=10"),
        ({"num_val_samples": 2.5}, r"num_val_samples=1000, or None to use every row"),
        (
            {"update_rule": "nesterov"},
            r'Invalid update_rule "nesterov"; expected one of "sgd", "sgd_momentum", "rmsprop", '
            r"\"adam\" .* or a callable rule\(w, dw, config\).*update_rule='adam'",
        ),
        ({"update_rule": 3}, r"update_rule must be a rule name .*; got 3\. Pass e\.g\."),
        (
            {"optim_config": [("learning_rate", 1e-3)]},
            r"Pass optim_config as a dict like \{'learning_rate': 1e-3\}",
        ),
        ({"learning_rate": 1e-3}, r"go in optim_config, e\.g\. optim_config="),
    ],
)
def test_bad_options_say_what_was_expected_and_how_to_fix_it(kwargs, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        solver_for(TinyBNNet(), **kwargs)


def test_check_data_is_still_importable_from_the_solver_module() -> None:
    from normgrad.solver import check_data
    from normgrad.training import options as solver_checks

    assert check_data is solver_checks.check_data
    *_, num_classes = check_data(TinyBNNet(), make_data())
    assert num_classes == C
