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
- non-finite losses: by default the course's behaviour, kept exactly: the loss (NaN or
  inf) is recorded in ``loss_history`` and the update is made with whatever gradients
  came, so a learning-rate sweep that checks ``np.isnan(solver.loss_history[-1])``
  runs through. Beyond the course, one ``RuntimeWarning`` per ``train()`` names the
  first such iteration and says how to stop instead. With ``stop_on_nonfinite=True``,
  ``train()`` stops at the first non-finite loss: it sets ``diverged`` and raises
  ``NonFiniteLossError`` (a ``FloatingPointError``, carrying ``loss``, ``iteration``
  and ``epoch``), with everything as before the failing step (below) and the best
  model *not* swapped in (``best_params`` holds it); the last checkpoint is the last
  good one;
- every step is a transaction (``normgrad.training.step``). A step may change NumPy's
  global RNG (the minibatch, dropout), the params, the normalization param dicts
  (modes, running statistics) and ``dropout_param``, the optim configs and
  ``loss_history``; all of that is recorded first and put back, exactly, when the step
  fails: a non-finite loss with ``stop_on_nonfinite=True``, or an exception of any kind
  (in ``model.loss`` after a layer wrote its running statistics, in the update rule
  halfway through the parameters, a bad return value, Ctrl-C);
- ``model.loss``'s return value and a custom update rule's are checked: ``(loss,
  grads)`` with a real loss and a gradient of each parameter's shape;
  ``(next_w, config)`` with next_w an ndarray of w's shape and config a dict;
- ``lr_decay`` multiplies ``learning_rate`` in the configs that have one (with
  ``lr_decay`` 1 a custom rule's configs may lack it; the course's loop raises
  ``KeyError`` there). With another ``lr_decay``, a config without a numeric
  ``learning_rate`` after the update rule ran is an error, explained, raised in the
  first step that shows it (and so undone);
- every keyword argument, the data (shapes, dtypes, finite inputs, labels in [0, C))
  and ``check_accuracy``'s arguments are checked before anything is set
  (``normgrad.training.options``); a checkpoint to resume from is checked whole,
  checksum, header and model fingerprint included, before any of it is assigned
  (``normgrad.training.resume``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.progress import progress_bar
from normgrad.training.checkpoint import (
    load_model_state,
    model_state,
    optim_state,
    rng_state_arrays,
    save_checkpoint,
    sub_state,
)
from normgrad.training.fingerprint import model_fingerprint
from normgrad.training.options import check_accuracy_args, check_data, check_options
from normgrad.training.resume import read_run_state
from normgrad.training.rules import UPDATE_RULES
from normgrad.training.step import checked_update, loss_and_grads, savepoint

__all__ = ["NonFiniteLossError", "Solver", "check_data"]


class NonFiniteLossError(FloatingPointError):
    """``train()`` stopped at a non-finite loss (``stop_on_nonfinite=True``).

    Attributes:
        loss: the non-finite loss (NaN or inf); not in ``loss_history``.
        iteration: the 1-based iteration whose forward pass gave it.
        epoch: the epoch it fell in.
    """

    def __init__(self, message: str, loss: float, iteration: int, epoch: int) -> None:
        super().__init__(message)
        self.loss, self.iteration, self.epoch = loss, iteration, epoch


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
        stop_on_nonfinite: False (default, the course's behaviour): a non-finite loss
            is recorded and training goes on, with one ``RuntimeWarning`` per
            ``train()``. True: ``train()`` stops at the first one, sets ``diverged`` and
            raises ``NonFiniteLossError`` (a ``FloatingPointError``), with the model,
            optim configs, histories and RNG exactly as before that step.

    Raises:
        TypeError: a keyword argument or data of the wrong type.
        ValueError: unrecognized keyword arguments, an unknown update rule, a value out
            of range, bad data, or a checkpoint that is unreadable, corrupt or from
            another model (nothing is changed).
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
        self.diverged = False  # set when a non-finite loss stopped train()
        self.last_checkpoint: str | None = None
        # The built-in rules never write w or their config's arrays in place.
        self._builtin_rule = UPDATE_RULES.get(self.update_rule_name) is self.update_rule
        self._warned_nonfinite = False  # one warning per train()
        self._stopped_loss: Any = None  # the loss that stopped the last step

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
        """One minibatch gradient step, as a transaction.

        Returns True when the step was taken (its loss appended to ``loss_history``, a
        non-finite one included unless ``stop_on_nonfinite``). Returns False, with
        everything put back as it was before the step, when the loss is not finite and
        ``stop_on_nonfinite`` is set. Anything the step raises is re-raised after
        everything was put back the same way.
        """
        rollback = savepoint(self)
        try:
            taken = self._take_step()
        except BaseException:
            rollback()
            raise
        if not taken:
            rollback()
        return taken

    def _take_step(self) -> bool:
        X_batch, y_batch = self._minibatch()
        loss, grads = self._loss_and_grads(X_batch, y_batch)
        if not np.isfinite(loss):
            if self.stop_on_nonfinite:
                self._stopped_loss = loss
                return False
            self._warn_nonfinite(loss)
        self.loss_history.append(loss)
        for p, w in self.model.params.items():
            result = self.update_rule(w, grads[p], self.optim_configs[p])
            next_w, next_config = checked_update(self.update_rule_name, p, w, result)
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config
        if self.lr_decay != 1.0:
            self._decayable()  # a custom rule that keeps no learning_rate: undone, explained
        return True

    def _minibatch(self) -> tuple[np.ndarray, np.ndarray]:
        """The step's rows, drawn with replacement as the course draws them.

        ``normgrad.distributed.DistributedSolver`` keeps this rank's share of them.
        """
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)  # noqa: NPY002  (course)
        return self.X_train[batch_mask], self.y_train[batch_mask]

    def _loss_and_grads(
        self, X_batch: np.ndarray, y_batch: np.ndarray
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """``model.loss`` on the minibatch, checked (``step.loss_and_grads``).

        ``normgrad.distributed.DistributedSolver`` averages the result over the ranks.
        """
        return loss_and_grads(self.model.loss(X_batch, y_batch), self.model.params)

    def _warn_nonfinite(self, loss: Any) -> None:
        """Warn once per ``train()`` that the loss is not finite (the course keeps going)."""
        if self._warned_nonfinite:
            return
        self._warned_nonfinite = True
        warnings.warn(
            f"loss is {loss} at iteration {self.iteration + 1} (epoch {self.epoch}); "
            "training goes on with the update from its gradients, as the course's Solver "
            "does, so the params may become NaN (this is warned once per train()). Pass "
            "stop_on_nonfinite=True to stop at the first non-finite loss with the model as "
            "it was before that step; lower the learning rate or weight_scale to avoid it.",
            RuntimeWarning,
            stacklevel=5,
        )

    def check_accuracy(
        self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None, batch_size: int = 100
    ) -> float:
        """Fraction of rows of ``X: (N, ...)`` whose argmax score equals ``y: (N,)``.

        With ``num_samples`` < N, that many rows are drawn with replacement by
        ``np.random.choice`` (as the course does). Scores come from ``model.loss(X)`` in
        test mode, ``batch_size`` rows at a time.
        """
        num_samples, batch_size = check_accuracy_args(X, y, num_samples, batch_size)
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
        self._warned_nonfinite = False
        bar = self._progress(num_iterations, start)
        say = print if bar is None else bar.write
        try:
            for t in range(start, num_iterations):
                self.iteration = t
                if not self._step():
                    self.diverged = True
                    raise self._stop_error(t)
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
                    for config in self._decayable():
                        config["learning_rate"] *= self.lr_decay
                    self.epoch += 1
                if t == 0 or t == num_iterations - 1 or epoch_end:
                    self._check_and_snapshot(num_iterations, say)
        finally:
            if bar is not None:
                bar.close()
        if self._best_state:
            load_model_state(self.model, self._best_state, "the best-model snapshot")

    def _stop_error(self, t: int) -> NonFiniteLossError:
        loss = self._stopped_loss
        last = self.last_checkpoint
        where = f" The last checkpoint, {last}, is the last good one." if last else ""
        return NonFiniteLossError(
            f"loss is {loss} at iteration {t + 1} (epoch {self.epoch}); training stopped "
            "(stop_on_nonfinite=True) before that step changed anything: the params, "
            "running statistics, optimizer state, histories and random state are those "
            f"after iteration {t}.{where} Lower the learning rate or weight_scale, or check "
            "the data for NaN or inf; pass stop_on_nonfinite=False to keep training "
            "through it, as the course's Solver does.",
            loss,
            t + 1,
            self.epoch,
        )

    def _decayable(self) -> list[dict[str, Any]]:
        """The optim configs ``lr_decay`` applies to: those with a numeric ``learning_rate``.

        Raises (before any config is changed) when ``lr_decay`` is not 1 and a config
        lacks ``learning_rate`` (a custom rule that keeps none), or when one holds a
        non-number. ``_take_step`` calls it after every update when ``lr_decay`` is not
        1, so the step that shows the problem is rolled back.
        """
        configs = [
            c
            for c in self.optim_configs.values()
            if "learning_rate" in c and v.is_real(c["learning_rate"])
        ]
        if self.lr_decay == 1.0:
            return configs  # a no-op for the rest: nothing to refuse
        lacking = [p for p, c in self.optim_configs.items() if "learning_rate" not in c]
        if lacking:
            raise ValueError(
                f"lr_decay={self.lr_decay} multiplies each parameter's 'learning_rate' at "
                f"every epoch end, but after update_rule {self.update_rule_name!r} ran, the "
                f"optim configs of {lacking[:3]} have no 'learning_rate'. Put it in "
                "optim_config (e.g. optim_config={'learning_rate': 1e-3}), keep it in the "
                "rule's config, or pass lr_decay=1.0."
            )
        wrong = [
            (p, c["learning_rate"])
            for p, c in self.optim_configs.items()
            if "learning_rate" in c and not v.is_real(c["learning_rate"])
        ]
        if wrong:
            p, value = wrong[0]
            raise TypeError(
                f"optim_configs[{p!r}]['learning_rate'] is {value!r} "
                f"({type(value).__name__}); lr_decay needs a real number to multiply. Make "
                f"update_rule {self.update_rule_name!r} keep a number there."
            )
        return configs

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
            "model": model_fingerprint(self.model),
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
            TypeError: ``path`` is not a str or os.PathLike.
            FileNotFoundError: no such file.
            ValueError: the file is corrupt or truncated (its checksum does not match),
                of format version 1, malformed, written for another model (its
                fingerprint: class, sizes, normalization, dtype, parameter names and
                shapes), or from a run with another batch size, data size or update
                rule; the message names the difference. Then neither the model, the
                solver nor the RNG has been changed.
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
