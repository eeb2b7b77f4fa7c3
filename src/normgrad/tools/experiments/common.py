"""Shared machinery of the experiments: data, one training arm, summary.json, tables, plots.

An *arm* is one configuration trained once (``batchnorm``, ``baseline``, ...). Every
experiment module builds its arms with ``train_fc_arm`` (the course's
``FullyConnectedNet`` and ``Solver``) or its own loop, then writes

- PNG figures through ``save_figure`` (matplotlib's Agg backend, written atomically);
- ``summary.json`` through ``write_summary`` (atomic): ``{"experiment", "data",
  "hyperparameters", "arms": {name: {metric: value}}, ...}``, every arm holding at least
  ``final_acc``, the held-out accuracy of the model as it is at the end of training;
- a fixed-width table through ``format_table``.

Held-out data: the validation and test splits together (540 digits, 2000 CIFAR-10
images), since no experiment selects a model on them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from normgrad._internal.io import atomic_write
from normgrad._internal.plotting import pyplot, save_figure
from normgrad._internal.tables import format_table
from normgrad.data import prepare
from normgrad.models.blocks import FC_BLOCKS
from normgrad.training.solver import NonFiniteLossError, Solver

__all__ = ["pyplot", "save_figure", "format_table"]  # re-exported for the experiments
SCALES = ("full", "quick", "tiny")  # tiny: the test suite's smoke setting


@dataclass
class Context:
    """What every experiment is given: where the data is, where results go, how big to run.

    Attributes:
        data: "digits" (embedded, default) or "cifar10".
        data_dir: the cifar-10-batches-py folder (CIFAR-10 only; None reads
            $NORMGRAD_CIFAR10).
        out: folder for the PNGs and summary.json (created if missing).
        scale: "full", "quick" (under ~2 minutes on 2 cores) or "tiny" (tests only).
        seed: NumPy's global seed for the first arm; each arm reseeds with it, so arms
            start from the same random stream.
        progress: show tqdm progress bars while training.
    """

    data: str = "digits"
    data_dir: str | None = None
    out: Path = field(default_factory=lambda: Path("results"))
    scale: str = "full"
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.data not in prepare.DATASETS:
            raise ValueError(
                f"data must be one of {', '.join(prepare.DATASETS)}; got {self.data!r}."
            )
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {self.scale!r}.")
        self.out = Path(self.out)

    def pick(self, full: Any, quick: Any, tiny: Any) -> Any:
        """The value for this run's scale."""
        return {"full": full, "quick": quick, "tiny": tiny}[self.scale]


def load_data(ctx: Context, num_train: int | None = None) -> tuple[dict[str, np.ndarray], str]:
    """The data dict (X flattened to (N, D), float64) and a one-line description of it.

    Args:
        ctx: which data set; for CIFAR-10, where it is.
        num_train: keep only the first ``num_train`` training rows (None: all), as the
            course's ``small_data`` does.

    Returns:
        ({X_train: (N, D), y_train: (N,), X_val: (M, D), y_val: (M,)}, description).
        X_val/y_val are every held-out row: the validation and test splits together,
        since no experiment selects a model on them (``data.prepare.held_out``).

    Raises:
        CIFAR10NotFoundError (a FileNotFoundError): CIFAR-10 missing, with how to get it.
    """
    data, desc = prepare.load(
        ctx.data, ctx.data_dir, num_train=num_train, layout="flat", dtype=np.float64
    )
    return prepare.held_out(data), desc + "; held out: the validation and test rows"


def standardize(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``data`` with every X divided by the training rows' overall std (one scalar).

    The inputs then have std 1 on every data set (CIFAR-10 minus its mean image has pixel
    std ~60; the digits already have std 1, so they are unchanged up to rounding). X_train
    is (N, D); the returned dict is new, the arrays are new copies.
    """
    std = float(np.std(data["X_train"]))
    std = std if std > 0 else 1.0
    return {k: (v / std if k.startswith("X_") else v) for k, v in data.items()}


@dataclass
class Arm:
    """One trained configuration and what was measured on it.

    Attributes:
        name: the arm's key in summary.json.
        metrics: scalar metrics (``final_acc``, ``final_train_acc``, ``best_val_acc``,
            ``final_loss``, ``diverged``, ``seconds``, ...).
        curves: per-iteration ``loss`` and per-check ``train_acc`` / ``val_acc`` (the
            Solver checks at the first iteration and at each epoch end).
    """

    name: str
    metrics: dict[str, Any]
    curves: dict[str, list[float]]


class _RecordingSolver(Solver):
    """The course ``Solver``, also measuring the model at divergence.

    With ``stop_on_nonfinite=True`` a step whose loss is not finite puts everything back
    as it was before it (the params and running statistics of the last finite step)
    and ``_step`` returns False; ``train()`` then raises ``NonFiniteLossError``. The
    accuracies at divergence are taken in between, in ``_step``, on every held-out and
    training row.
    """

    at_divergence: tuple[float, float] | None = None  # (held-out, train) accuracy

    def _step(self) -> bool:
        ok = super()._step()
        if not ok and self.at_divergence is None:
            self.at_divergence = (
                self.check_accuracy(self.X_val, self.y_val),
                self.check_accuracy(self.X_train, self.y_train),
            )
        return ok


def course_settings(hidden_dims: Any, learning_rate: float, weight_scale: float | None) -> dict:
    """The settings every FC experiment shares: the course's net, Adam, no decay, no reg,
    float64, batch norm's momentum and eps (``weight_scale`` None: the experiment sweeps it)."""
    settings: dict[str, Any] = {"hidden_dims": hidden_dims, "activation": "relu"}
    if weight_scale is not None:
        settings["weight_scale"] = weight_scale
    settings.update(
        {
            "weight_init": "weight_scale * randn (the course's)",
            "update_rule": "adam",
            "learning_rate": learning_rate,
            "lr_decay": 1.0,
            "dtype": "float64",
            "reg": 0.0,
            "bn_momentum": 0.9,
            "bn_eps": 1e-5,
        }
    )
    return settings


def course_fc_net(
    hidden_dims: Any, data: dict, normalization: str | None, weight_scale: float, seed: int
) -> Any:
    """The course's FullyConnectedNet in float64, weights drawn after ``np.random.seed(seed)``
    (the course's global generator, which the Solver's minibatches then use too)."""
    from normgrad.models.fc_net import FullyConnectedNet

    np.random.seed(seed)  # noqa: NPY002  (the course's global generator)
    return FullyConnectedNet(
        hidden_dims,
        input_dim=data["X_train"].shape[1],
        num_classes=10,
        normalization=normalization,
        weight_scale=weight_scale,
        dtype=np.float64,
    )


def train_fc_arm(
    name: str,
    data: dict[str, np.ndarray],
    hidden_dims: Sequence[int],
    normalization: str | None,
    weight_scale: float,
    learning_rate: float,
    num_epochs: int,
    batch_size: int,
    seed: int,
    progress: bool = False,
    update_rule: str = "adam",
) -> Arm:
    """Train a course ``FullyConnectedNet`` with the course ``Solver``; measure it.

    NumPy's global generator is seeded with ``seed`` first (weights and minibatches come
    from it, as in the course notebooks). A non-finite loss ends the arm instead of
    raising (the Solver runs with ``stop_on_nonfinite=True``): ``diverged`` is True, the
    non-finite loss is the last entry of ``curves["loss"]`` (and counts in
    ``iterations``), and ``final_acc`` / ``final_train_acc`` are the accuracies of the
    model *at divergence* (the params and running statistics of the last finite step,
    the ones whose forward pass gave the non-finite loss; usually near chance),
    measured then on every row, not the last per-epoch check.

    Args:
        data: from ``load_data``; X_train: (N, D).
        hidden_dims: hidden layer sizes, e.g. [100] * 5.
        normalization: None, "batchnorm" or "layernorm".

    Returns:
        the Arm; ``final_acc`` is the held-out accuracy of the model as it is when
        training ends (last iteration, or divergence), before the Solver swaps in its
        best-validation model, over every held-out row.
    """
    model = course_fc_net(hidden_dims, data, normalization, weight_scale, seed)
    solver = _RecordingSolver(
        model,
        data,
        update_rule=update_rule,
        optim_config={"learning_rate": learning_rate},
        num_epochs=num_epochs,
        batch_size=batch_size,
        num_train_samples=None,
        verbose=False,
        progress_bar=progress,
        stop_on_nonfinite=True,  # a diverged arm ends there; it is measured, not raised
    )
    start = time.perf_counter()
    stopped: list[float] = []  # the non-finite loss that ended the arm, if any
    try:
        solver.train()
    except NonFiniteLossError as stop:
        stopped.append(float(stop.loss))
    seconds = time.perf_counter() - start
    losses = [float(v) for v in solver.loss_history] + stopped
    finite = [v for v in losses if math.isfinite(v)]
    tail = finite[-max(1, len(finite) // 10) :] if finite else []
    if solver.at_divergence is not None:
        final_acc, final_train_acc = solver.at_divergence
    else:  # the Solver checks at its last iteration: the end of training
        final_acc, final_train_acc = solver.val_acc_history[-1], solver.train_acc_history[-1]
    metrics = {
        "final_acc": float(final_acc),
        "final_train_acc": float(final_train_acc),
        "best_val_acc": float(solver.best_val_acc),
        "best_train_acc": max(solver.train_acc_history, default=0.0),
        "final_loss": float(np.mean(tail)) if tail else float("nan"),
        "iterations": len(losses),
        "diverged": bool(solver.diverged),
        "seconds": round(seconds, 3),
    }
    curves = {
        "loss": losses,
        "train_acc": list(solver.train_acc_history),
        "val_acc": list(solver.val_acc_history),
    }
    return Arm(name, metrics, curves)


SEED_KEYS = ("final_acc", "final_train_acc", "best_val_acc", "final_loss")


def aggregate_seeds(group: Sequence[Arm], keys: Sequence[str] = SEED_KEYS) -> dict[str, Any]:
    """One arm's runs over several seeds as metrics: for each key its mean and
    ``<key>_by_seed`` (the runs' values, in order); ``diverged_runs``; total ``seconds``."""
    metrics: dict[str, Any] = {}
    for key in keys:
        values = [r.metrics[key] for r in group]
        metrics[key] = float(np.mean(values))
        metrics[f"{key}_by_seed"] = values
    metrics["diverged_runs"] = sum(bool(r.metrics["diverged"]) for r in group)
    metrics["seconds"] = round(sum(r.metrics["seconds"] for r in group), 3)
    return metrics


def mean_curve(group: Sequence[Arm], key: str) -> np.ndarray:
    """Elementwise mean of the runs' ``curves[key]``, cut to the shortest (a diverged run
    stops early), shape (n,)."""
    n = min(len(r.curves[key]) for r in group)
    return np.mean([r.curves[key][:n] for r in group], axis=0)


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays as Python values; non-finite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    """Write ``out/summary.json`` atomically (NaN and inf become null); return its path."""
    text = json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n"
    path = Path(out) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


# One colour per arm family, used by every plot: the baseline red, then one per fully
# connected normalization of the registry, in registry order.
_PALETTE = ("tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink")
COLORS = {
    "baseline": "tab:red",
    **{name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(FC_BLOCKS)},
}


def color(name: str) -> str:
    """The plot colour of an arm, from its family (the name's prefix)."""
    return COLORS.get(name.split("_")[0], "tab:gray")


def arm_table(arms: Sequence[Arm], keys: Sequence[str]) -> str:
    """One row per arm, one column per metric key."""
    return format_table([[a.name, *(a.metrics.get(k) for k in keys)] for a in arms], ["arm", *keys])
