"""``Solver``: trains a classification model by minibatch gradient descent (cs231n API).

The model follows the course's interface:

- ``model.params``: dict, parameter name -> ndarray;
- ``model.loss(X, y=None)``: with ``y`` it runs in train mode and returns
  ``(loss, grads)``, grads keyed like params; without ``y`` it runs in test mode and
  returns scores ``(N, C)``;
- optionally ``bn_params`` / ``ln_params`` / ``gn_params``: lists of per-layer dicts
  holding running statistics (see ``normgrad.training.checkpoint``).

The data dict holds ``X_train: (N_train, ...)``, ``y_train: (N_train,)``, ``X_val``,
``y_val``, with integer labels in [0, C).

Course behaviour, kept exactly (a course notebook's printed numbers reproduce):
minibatches drawn with replacement by ``np.random.choice(num_train, batch_size)``;
``iterations_per_epoch = max(num_train // batch_size, 1)``; accuracy checked on the
first iteration, at each epoch end and on the last, on ``num_train_samples`` training
rows drawn by ``np.random.choice`` and on the whole validation set (or
``num_val_samples``); ``learning_rate *= lr_decay`` in every optim config at each epoch
end; the best validation model swapped in at the end.

Beyond the course:

- the best-model snapshot and the end-of-training swap include the normalization
  running statistics, so the restored model scores exactly ``best_val_acc`` (the
  course swaps only ``params``, pairing the best weights with the last running stats);
- a tqdm progress bar when ``verbose`` (kwarg ``progress_bar`` overrides), drawn only
  on a terminal, alongside the course's periodic prints;
- checkpoints ``<checkpoint_name>_epoch_<e>.npz``, written at every accuracy check,
  atomically and without pickle; they hold params, every optim-config entry, running
  stats, the best snapshot, epoch, iteration, histories and NumPy's global RNG state;
- ``resume_from=PATH`` restores all of that (including the global RNG state) and
  continues the interrupted ``train()``: the loss history is bit-identical to a run
  that was never stopped, as long as the Solver gets the same data and settings;
- a non-finite loss stops training with ``FloatingPointError`` naming the iteration,
  before the update, so the params and the last checkpoint are the last good ones;
  with ``stop_on_nonfinite=False`` it instead ends ``train()`` quietly at that step
  (no update, ``diverged`` set to True, the loss recorded in ``loss_history``), so a
  sweep over settings can record a diverged arm and go on;
- data whose shapes disagree (with each other or with the model), and labels outside
  [0, C), are rejected before training.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad._internal.progress import progress_bar
from normgrad.training.checkpoint import (
    load_model_state,
    model_state,
    optim_state,
    rng_state_arrays,
    save_checkpoint,
    sub_state,
)
from normgrad.training.options import check_data, check_options, read_run_state

__all__ = ["Solver", "check_data"]


class Solver:
    """Trains ``model`` on ``data`` with one of ``normgrad.training.rules``'s update rules.

    Args:
        model: the course's model interface (see the module docstring).
        data: ``X_train: (N, ...)``, ``y_train: (N,)``, ``X_val: (M, ...)``, ``y_val: (M,)``.
        update_rule: a rule name in ``normgrad.training.rules`` (default ``"sgd"``) or a callable
            ``rule(w, dw, config) -> (next_w, config)``.
        optim_config: hyperparameters copied into each parameter's config (default {}).
        lr_decay: factor applied to every config's ``learning_rate`` each epoch (1.0).
        batch_size: minibatch size (100). num_epochs: epochs to train (10).
        num_train_samples: training rows sampled to check accuracy (1000; None: all).
        num_val_samples: validation rows sampled to check accuracy (None: all).
        checkpoint_name: path prefix; when set, a checkpoint
            ``<checkpoint_name>_epoch_<e>.npz`` is written at every accuracy check.
        print_every: print the loss every this many iterations when verbose (10).
        verbose: print progress (True). progress_bar: show a tqdm bar (default: verbose).
        resume_from: a checkpoint path; training continues from it.
        stop_on_nonfinite: True (default) raises ``FloatingPointError`` at a non-finite
            loss; False ends training at that step instead, without the update, and sets
            ``diverged`` (the non-finite loss is the last entry of ``loss_history``).

    Raises:
        ValueError: unrecognized keyword arguments, an unknown update rule, bad data, or
            a checkpoint that is unreadable or from another model (nothing is changed).
    """

    def __init__(self, model: Any, data: dict[str, np.ndarray], **kwargs: Any) -> None:
        opts = check_options(kwargs)  # every option checked before anything is set
        self.model = model
        self.X_train, self.y_train, self.X_val, self.y_val, self.num_classes = check_data(
            model, data
        )
        self.update_rule_name, self.update_rule = opts["update_rule"]
        self.optim_config: dict[str, Any] = opts["optim_config"]
        self.lr_decay = opts["lr_decay"]
        self.batch_size = opts["batch_size"]
        self.num_epochs = opts["num_epochs"]
        self.num_train_samples = opts["num_train_samples"]
        self.num_val_samples = opts["num_val_samples"]
        self.checkpoint_name = opts["checkpoint_name"]
        self.print_every = opts["print_every"]
        self.verbose = bool(opts["verbose"])
        bar = opts["progress_bar"]
        self.progress_bar = self.verbose if bar is None else bool(bar)
        self.stop_on_nonfinite = bool(opts["stop_on_nonfinite"])
        self.diverged = False  # set when a non-finite loss ended training (opt-out mode)
        self.last_checkpoint: str | None = None

        self._reset()
        if opts["resume_from"] is not None:
            self.restore(opts["resume_from"])

    # ------------------------------------------------------------------ bookkeeping
    def _reset(self) -> None:
        """Fresh histories, best snapshot and one optim config (a copy) per parameter."""
        self.epoch = 0
        self.iteration = 0  # steps taken in the current train() run
        self._start_iteration = 0  # where the next train() starts (set by restore)
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self._best_state: dict[str, np.ndarray] = {}  # params and running stats
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self) -> bool:
        """One minibatch gradient step; False (or a raise) before the update if the loss is
        not finite, True otherwise."""
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)  # noqa: NPY002  (course)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]
        loss, grads = self.model.loss(X_batch, y_batch)
        if not np.isfinite(loss):
            if not self.stop_on_nonfinite:
                self.loss_history.append(float(loss))
                self.diverged = True
                return False
            last = self.last_checkpoint
            where = f" Last good checkpoint: {last}." if last else ""
            raise FloatingPointError(
                f"loss is {loss} at iteration {self.iteration + 1} (epoch {self.epoch}); "
                f"training stopped before the update, so the params are those of the last "
                f"finite step.{where} Lower the learning rate or weight_scale, or check the "
                "data for NaN or inf."
            )
        self.loss_history.append(loss)
        for p, w in self.model.params.items():
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config
        return True

    def check_accuracy(
        self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None, batch_size: int = 100
    ) -> float:
        """Fraction of rows of ``X: (N, ...)`` whose argmax score equals ``y: (N,)``.

        With ``num_samples`` < N, that many rows are drawn with replacement by
        ``np.random.choice`` (as the course does). Scores come from ``model.loss(X)`` in
        test mode, ``batch_size`` rows at a time.
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)  # noqa: NPY002  (course)
            N = num_samples
            X = X[mask]
            y = y[mask]
        num_batches = -(-N // batch_size)
        y_pred = [
            np.argmax(self.model.loss(X[i * batch_size : (i + 1) * batch_size]), axis=1)
            for i in range(num_batches)
        ]
        return float(np.mean(np.hstack(y_pred) == y))

    # ------------------------------------------------------------------ training
    def train(self) -> None:
        """Run the optimization; afterwards the model holds its best validation state."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        start, self._start_iteration = self._start_iteration, 0
        bar = self._progress(num_iterations, start)
        say = print if bar is None else bar.write
        try:
            for t in range(start, num_iterations):
                self.iteration = t
                if not self._step():
                    if self.verbose:
                        say(
                            f"(Iteration {t + 1} / {num_iterations}) loss is "
                            f"{self.loss_history[-1]}: diverged, training stopped"
                        )
                    break
                self.iteration = t + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(self.loss_history[-1]):.4f}", refresh=False)
                if self.verbose and t % self.print_every == 0:
                    say(
                        f"(Iteration {t + 1} / {num_iterations}) loss: "
                        f"{float(self.loss_history[-1]):f}"
                    )

                epoch_end = (t + 1) % iterations_per_epoch == 0
                if epoch_end:
                    self.epoch += 1
                    for config in self.optim_configs.values():
                        config["learning_rate"] *= self.lr_decay
                if t == 0 or t == num_iterations - 1 or epoch_end:
                    self._check_and_snapshot(num_iterations, say)
        finally:
            if bar is not None:
                bar.close()
        if self._best_state:
            load_model_state(self.model, self._best_state, "the best-model snapshot")

    def _check_and_snapshot(self, num_iterations: int, say: Callable[[str], Any]) -> None:
        train_acc = self.check_accuracy(
            self.X_train, self.y_train, num_samples=self.num_train_samples
        )
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if val_acc > self.best_val_acc:  # before the checkpoint, so it holds the snapshot
            self.best_val_acc = val_acc
            self._best_state = model_state(self.model)
            self.best_params = sub_state(self._best_state, "params/")
        self._save_checkpoint(say)  # prints 'Saving checkpoint to ...' first, as the course
        if self.verbose:
            say(
                f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                f"val_acc: {val_acc:f}"
            )

    def _progress(self, total: int, initial: int) -> Any:
        if not self.progress_bar:
            return None
        return progress_bar(total, "train", "it", initial)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, say: Callable[[str], Any] = print) -> None:
        """Write ``<checkpoint_name>_epoch_<epoch>.npz`` atomically (no-op without a name)."""
        if self.checkpoint_name is None:
            return
        path = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"
        if self.verbose:
            say(f'Saving checkpoint to "{path}"')
        arrays: dict[str, Any] = {f"model/{k}": a for k, a in model_state(self.model).items()}
        arrays.update({f"best/{k}": a for k, a in self._best_state.items()})
        optim_arrays, kinds = optim_state(self.optim_configs)
        arrays.update(optim_arrays)
        arrays["history/loss"] = np.asarray(self.loss_history, dtype=np.float64)
        arrays["history/train_acc"] = np.asarray(self.train_acc_history, dtype=np.float64)
        arrays["history/val_acc"] = np.asarray(self.val_acc_history, dtype=np.float64)
        arrays.update(rng_state_arrays())
        meta = {
            "epoch": self.epoch,
            "iteration": self.iteration,
            "best_val_acc": float(self.best_val_acc),
            "optim_kinds": kinds,
            **self._run_settings(),
            "num_epochs": self.num_epochs,
        }
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        save_checkpoint(path, arrays, meta)
        self.last_checkpoint = path

    def restore(self, path: str | os.PathLike) -> None:
        """Load a checkpoint so the next ``train()`` continues the run it came from.

        Sets the model's params and running stats, every optim config, histories, best
        snapshot, epoch and iteration, and NumPy's global RNG state.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is corrupt or truncated, comes from a model of another
                shape, or from a run with another batch size, data size or update rule.
                Then neither the model nor the solver has been changed.
        """
        state = read_run_state(path, self.model, self._run_settings())
        # Every check has passed: from here on nothing can fail halfway.
        load_model_state(self.model, state.model_state, f"checkpoint {os.fspath(path)!r}")
        self.optim_configs = {p: state.optim_configs[p] for p in self.model.params}
        self.loss_history = state.loss_history
        self.train_acc_history = state.train_acc_history
        self.val_acc_history = state.val_acc_history
        self._best_state = state.best_state
        self.best_params = sub_state(state.best_state, "params/")
        self.best_val_acc = state.best_val_acc
        self.epoch, self.iteration = state.epoch, state.iteration
        self._start_iteration = state.iteration
        np.random.set_state(state.rng_state)  # noqa: NPY002

    def _run_settings(self) -> dict[str, Any]:
        """What a checkpoint must share with this solver to be resumed by it."""
        return {
            "update_rule": self.update_rule_name,
            "batch_size": self.batch_size,
            "num_train": int(self.X_train.shape[0]),
        }
