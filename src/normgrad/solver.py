"""``Solver``: trains a classification model by minibatch gradient descent (cs231n API).

The model follows the course's interface:

- ``model.params``: dict, parameter name -> ndarray;
- ``model.loss(X, y=None)``: with ``y`` it runs in train mode and returns
  ``(loss, grads)``, grads keyed like params; without ``y`` it runs in test mode and
  returns scores ``(N, C)``;
- optionally ``bn_params`` / ``ln_params`` / ``gn_params``: lists of per-layer dicts
  holding running statistics (see ``normgrad.checkpoint``).

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
- a tqdm progress bar when ``verbose`` (kwarg ``progress_bar`` overrides), alongside the
  course's periodic prints;
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

from normgrad import _validate as v
from normgrad import optim
from normgrad.checkpoint import (
    STAT_ATTRS,
    check_model_state,
    load_checkpoint,
    load_model_state,
    model_state,
    optim_configs_from,
    optim_state,
    rng_state_arrays,
    rng_state_from_arrays,
    save_checkpoint,
)

__all__ = ["Solver"]

_DEFAULTS: dict[str, Any] = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
    "progress_bar": None,
    "resume_from": None,
    "stop_on_nonfinite": True,
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_data(
    model: Any, data: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Check the data dict against itself and the model; return its arrays and C.

    The number of classes C is ``model.num_classes`` when the model has it; it is also
    read from the scores of a 2-row test-mode forward pass on ``X_train``, which checks
    that the rows have the shape the model expects (NumPy's global RNG state is saved
    and restored around it, so the run's random stream is untouched).
    """
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict; got {type(data).__name__}.")
    keys = ("X_train", "y_train", "X_val", "y_val")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"data is missing {missing}; it needs {', '.join(keys)}.")
    X_train, y_train, X_val, y_val = (data[k] for k in keys)
    for split, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
        for name, arr in ((f"X_{split}", X), (f"y_{split}", y)):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"data['{name}'] must be a numpy.ndarray; got "
                                f"{type(arr).__name__}. Wrap it with np.asarray.")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"data['y_{split}'] must be 1-D integer class labels (N,); got "
                             f"shape {y.shape} dtype {y.dtype}.")
        if X.ndim < 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"data['X_{split}'] {X.shape} and data['y_{split}'] {y.shape} must "
                             "have the same number of rows N >= 1, one label per row.")
    if X_train.shape[1:] != X_val.shape[1:]:
        raise ValueError(f"X_train rows {X_train.shape[1:]} and X_val rows {X_val.shape[1:]} "
                         "must have the same shape.")
    rng = np.random.get_state()  # noqa: NPY002
    # The probe must leave the model as it found it: test mode sets each param dict's
    # mode and writes running stats back, so their contents are restored in place.
    dicts = [d for attr in (*STAT_ATTRS, "dropout_param")
             for d in _as_list(getattr(model, attr, None)) if isinstance(d, dict)]
    saved = [dict(d) for d in dicts]
    try:
        scores = model.loss(X_train[:2])
    except Exception as e:
        raise ValueError(f"the model rejects rows of shape {X_train.shape[1:]} from "
                         f"data['X_train']: {e}") from e
    finally:
        np.random.set_state(rng)  # noqa: NPY002
        for d, before in zip(dicts, saved, strict=True):
            d.clear()
            d.update(before)
    rows = min(2, X_train.shape[0])
    if not isinstance(scores, np.ndarray) or scores.ndim != 2 or scores.shape[0] != rows:
        raise ValueError(f"model.loss(X) without y must return scores (N, C); for {rows} rows "
                         f"it returned {getattr(scores, 'shape', type(scores).__name__)}.")
    C = int(scores.shape[1])
    declared = getattr(model, "num_classes", None)
    if isinstance(declared, (int, np.integer)) and int(declared) != C:
        raise ValueError(f"model.num_classes is {declared} but its scores have {C} columns.")
    for split, y in (("train", y_train), ("val", y_val)):
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= C:
            raise ValueError(f"data['y_{split}'] has labels in [{lo}, {hi}], outside [0, {C}) "
                             f"for a model with {C} classes. Relabel to 0..{C - 1}.")
    return X_train, y_train, X_val, y_val, C


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


class Solver:
    """Trains ``model`` on ``data`` with one of ``normgrad.optim``'s update rules.

    Args:
        model: the course's model interface (see the module docstring).
        data: ``X_train: (N, ...)``, ``y_train: (N,)``, ``X_val: (M, ...)``, ``y_val: (M,)``.
        update_rule: a rule name in ``normgrad.optim`` (default ``"sgd"``) or a callable
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
        unknown = [k for k in kwargs if k not in _DEFAULTS]
        if unknown:
            extra = ", ".join(f'"{k}"' for k in unknown)
            raise ValueError(
                f"Unrecognized arguments {extra}. Solver accepts {', '.join(_DEFAULTS)}."
            )
        opts = {**_DEFAULTS, **kwargs}
        self.model = model
        self.X_train, self.y_train, self.X_val, self.y_val, self.num_classes = check_data(
            model, data
        )

        rule = opts["update_rule"]
        if isinstance(rule, str):
            if rule not in optim.UPDATE_RULES:
                raise ValueError(
                    f'Invalid update_rule "{rule}"; choose one of '
                    f"{', '.join(optim.UPDATE_RULES)} or pass a callable."
                )
            self.update_rule_name = rule
            self.update_rule: Callable = optim.UPDATE_RULES[rule]
        elif callable(rule):
            self.update_rule_name = getattr(rule, "__name__", type(rule).__name__)
            self.update_rule = rule
        else:
            raise ValueError(f"update_rule must be a name or a callable; got {rule!r}.")
        config = opts["optim_config"]
        if config is not None and not isinstance(config, dict):
            raise ValueError(f"optim_config must be a dict; got {type(config).__name__}.")
        self.optim_config: dict[str, Any] = {} if config is None else config
        self.lr_decay = v.nonnegative(opts["lr_decay"], "lr_decay")
        self.batch_size = _positive_int(opts["batch_size"], "batch_size")
        self.num_epochs = _positive_int(opts["num_epochs"], "num_epochs", minimum=0)
        self.num_train_samples = opts["num_train_samples"]
        self.num_val_samples = opts["num_val_samples"]
        for name in ("num_train_samples", "num_val_samples"):
            if getattr(self, name) is not None:
                _positive_int(getattr(self, name), name)
        self.checkpoint_name = opts["checkpoint_name"]
        self.print_every = _positive_int(opts["print_every"], "print_every")
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
        self.best_val_acc = 0
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
                        say(f"(Iteration {t + 1} / {num_iterations}) loss is "
                            f"{self.loss_history[-1]}: diverged, training stopped")
                    break
                self.iteration = t + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(self.loss_history[-1]):.4f}", refresh=False)
                if self.verbose and t % self.print_every == 0:
                    say(f"(Iteration {t + 1} / {num_iterations}) loss: "
                        f"{float(self.loss_history[-1]):f}")

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
            self.best_params = _sub(self._best_state, "params/")
        self._save_checkpoint(say)  # prints 'Saving checkpoint to ...' first, as the course
        if self.verbose:
            say(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                f"val_acc: {val_acc:f}")

    def _progress(self, total: int, initial: int) -> Any:
        if not self.progress_bar:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional (extra "train"); the prints remain
            return None
        return tqdm(total=total, initial=initial, desc="train", unit="it", leave=False)

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
            "epoch": self.epoch, "iteration": self.iteration,
            "best_val_acc": float(self.best_val_acc), "optim_kinds": kinds,
            "update_rule": self.update_rule_name, "batch_size": self.batch_size,
            "num_train": int(self.X_train.shape[0]), "num_epochs": self.num_epochs,
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
        arrays, meta = load_checkpoint(path)
        src = f"checkpoint {os.fspath(path)!r}"
        try:
            current = _sub(arrays, "model/")
            best = _sub(arrays, "best/")
            kinds = meta["optim_kinds"]
            configs = optim_configs_from(arrays, kinds)
            history = [arrays[f"history/{h}"].tolist() for h in ("loss", "train_acc", "val_acc")]
            rng = rng_state_from_arrays(arrays)
            epoch, iteration = int(meta["epoch"]), int(meta["iteration"])
            best_val_acc = float(meta["best_val_acc"])
            settings = {k: meta[k] for k in ("update_rule", "batch_size", "num_train")}
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{src} is incomplete or malformed ({e!r}); it may be "
                             "corrupt. Resume from an earlier checkpoint.") from e
        ours = {"update_rule": self.update_rule_name, "batch_size": self.batch_size,
                "num_train": int(self.X_train.shape[0])}
        differ = [f"{k}: {settings[k]!r} there, {ours[k]!r} here" for k in ours
                  if settings[k] != ours[k]]
        if differ:
            raise ValueError(f"{src} comes from a run with other settings ({'; '.join(differ)}); "
                             "resume with the same data, batch_size and update_rule.")
        if set(configs) != set(self.model.params):
            raise ValueError(f"{src} has optimizer state for {sorted(configs)}, but the model "
                             f"has parameters {sorted(self.model.params)}.")
        check_model_state(self.model, current, src)
        if best:
            check_model_state(self.model, best, f"the best snapshot in {src}")
        # Every check has passed: from here on nothing can fail halfway.
        load_model_state(self.model, current, src)
        self.optim_configs = {p: configs[p] for p in self.model.params}
        self.loss_history, self.train_acc_history, self.val_acc_history = history
        self._best_state = best
        self.best_params = _sub(best, "params/")
        self.best_val_acc = best_val_acc
        self.epoch, self.iteration, self._start_iteration = epoch, iteration, iteration
        np.random.set_state(rng)  # noqa: NPY002


def _sub(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}
