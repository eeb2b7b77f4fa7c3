"""What ``normgrad train`` runs: train a FullyConnectedNet or ThreeLayerConvNet, score it.

Data: the embedded digits (the default) or CIFAR-10 from a folder, both prepared by
``normgrad.data.prepare``. The model is trained by ``normgrad.training.solver.Solver``;
at the end the best-validation model (weights and running statistics) is scored on
train, val and test, and a summary is returned.

The defaults give a good digits run: an FC net [100, 100] with batch norm, Adam at 1e-3,
20 epochs of batch 100, about 97% test accuracy in a few seconds. Outputs (plot, JSON)
are written only after training succeeded, each to a temporary file renamed into place,
so a failed run leaves no partial files.

Data parallel: with ``distributed`` (``normgrad train --distributed``, every rank of an
mpiexec job running the same command) the Solver is ``normgrad.distributed.
DistributedSolver``: every minibatch of ``batch_size`` rows is split over the ranks, and
rank 0 alone prints, writes checkpoints, the plot and the JSON. ``ranks``
(``normgrad train --ranks N``) is for the command line: it starts that job itself
(``config_argv`` is the rank's command).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from normgrad._internal import paths
from normgrad._internal.io import atomic_write
from normgrad._internal.plotting import pyplot, save_figure
from normgrad._internal.threads import blas_limit
from normgrad.data import prepare
from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.models.fc_net import FullyConnectedNet
from normgrad.training.rules import UPDATE_RULES
from normgrad.training.solver import Solver

MODELS: dict[str, type[FullyConnectedNet] | type[ThreeLayerConvNet]] = {
    "fc": FullyConnectedNet,
    "cnn": ThreeLayerConvNet,
}


class ResumeError(ValueError):
    """The checkpoint to resume from is unreadable or belongs to another model or run."""


class SplitError(ValueError):
    """``batch_size`` does not split evenly over the ranks of a distributed run."""


RULES = tuple(UPDATE_RULES)
# Each model's normalizations (its NORMALIZATIONS), with None spelled "none".
NORMS_BY_MODEL = {
    name: tuple("none" if n is None else n for n in net.NORMALIZATIONS)
    for name, net in MODELS.items()
}
NORMS = tuple(dict.fromkeys(n for norms in NORMS_BY_MODEL.values() for n in norms))


@dataclass
class TrainConfig:
    """Every setting of one ``normgrad train`` run (the CLI's flags, same names)."""

    data: str = "digits"
    data_dir: str | None = None
    num_train: int | None = None
    model: str = "fc"
    hidden: list[int] = field(default_factory=lambda: [100, 100])
    norm: str = "batchnorm"
    groups: int = 4
    filters: int = 32
    dropout: float = 1.0
    reg: float = 1e-4
    weight_scale: float | None = None
    update_rule: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 0.95
    epochs: int = 20
    batch_size: int = 100
    seed: int = 0
    plot: str | None = None
    checkpoint: str | None = None
    resume: str | None = None
    json: str | None = None
    threads: int | None = None
    quiet: bool = False
    distributed: bool = False
    ranks: int | None = None

    def problems(self) -> list[str]:
        """What is wrong with this configuration, before any work (empty when fine)."""
        out = []
        if self.data not in prepare.DATASETS:
            out.append(f"--data must be one of {', '.join(prepare.DATASETS)}; got {self.data!r}.")
        if self.model not in MODELS:
            out.append(f"--model must be one of {', '.join(MODELS)}; got {self.model!r}.")
        elif self.norm not in NORMS_BY_MODEL[self.model]:
            out.append(
                f"--norm {self.norm} does not apply to --model {self.model}; choose "
                f"one of {'|'.join(NORMS_BY_MODEL[self.model])}."
            )
        if self.model == "cnn" and self.dropout != 1:
            out.append("--dropout applies to --model fc only (ThreeLayerConvNet has none).")
        if self.data_dir and self.data != "cifar10":
            out.append("--data-dir is for --data cifar10; the digits are embedded.")
        problems = (
            paths.file_problem("--plot", self.plot, (".png", ".pdf", ".svg")),
            paths.file_problem("--json", self.json),
            paths.dir_problem("--checkpoint", self.checkpoint),
        )
        out.extend(p for p in problems if p)
        if self.resume and not Path(self.resume).is_file():
            out.append(f"--resume {self.resume}: no such checkpoint file.")
        if self.ranks is not None:
            if self.distributed:
                out.append(
                    "--ranks N starts the mpiexec job itself; --distributed is for a command "
                    "already run by mpiexec on every rank. Pass one of them."
                )
            if self.ranks < 1:
                out.append(f"--ranks must be >= 1; got {self.ranks}.")
            elif self.batch_size % self.ranks:
                out.append(_split_problem(self.batch_size, self.ranks))
        return out


def _split_problem(batch_size: int, ranks: int) -> str:
    return (
        f"--batch-size {batch_size} must be a multiple of the number of ranks ({ranks}): "
        f"each rank trains on batch_size / ranks rows of every minibatch."
    )


def config_argv(config: TrainConfig) -> list[str]:
    """The ``normgrad train`` flags that give ``config`` (every field but ``ranks`` and
    ``distributed``; defaults left out), e.g. for the ranks of ``--ranks N``."""
    default = TrainConfig()
    out: list[str] = []
    for f in fields(TrainConfig):
        if f.name in ("ranks", "distributed"):
            continue
        value = getattr(config, f.name)
        if value == getattr(default, f.name) or value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag)
        elif isinstance(value, list):
            out += [flag, ",".join(map(str, value))]
        else:
            out += [flag, repr(value) if isinstance(value, float) else str(value)]
    return out


def load_data(config: TrainConfig) -> dict[str, np.ndarray]:
    """The data dict for the chosen data set and model (flattened for fc, images for cnn)."""
    data, _ = prepare.load(
        config.data,
        config.data_dir,
        num_train=config.num_train,
        layout="flat" if config.model == "fc" else "images",
        dtype=np.float32,
    )
    return data


def build_model(config: TrainConfig, data: dict[str, np.ndarray]) -> Any:
    """A FullyConnectedNet or ThreeLayerConvNet sized for ``data``; seeds NumPy first."""
    np.random.seed(config.seed)  # noqa: NPY002  (the course's global generator)
    num_classes = 10  # digits and CIFAR-10 alike; the Solver rejects labels outside
    norm = None if config.norm == "none" else config.norm
    if config.model == "fc":
        return FullyConnectedNet(
            config.hidden,
            input_dim=int(np.prod(data["X_train"].shape[1:])),
            num_classes=num_classes,
            dropout_keep_ratio=config.dropout,
            normalization=norm,
            reg=config.reg,
            weight_scale=config.weight_scale or 5e-2,
            dtype=np.float32,
        )
    return ThreeLayerConvNet(
        input_dim=data["X_train"].shape[1:],
        num_filters=config.filters,
        filter_size=3,
        hidden_dim=config.hidden[0],
        num_classes=num_classes,
        weight_scale=config.weight_scale or 1e-2,
        reg=config.reg,
        dtype=np.float32,
        normalization=norm,
        num_groups=config.groups,
    )


def plot_history(solver: Solver, path: str, title: str) -> None:
    """Loss per iteration and train/val accuracy per check, as in the course notebooks."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(7, 7))
    ax_loss.plot(solver.loss_history, "o", markersize=2)
    ax_loss.set(xlabel="iteration", ylabel="training loss", title=title)
    ax_acc.plot(solver.train_acc_history, "-o", label="train")
    ax_acc.plot(solver.val_acc_history, "-o", label="val")
    ax_acc.set(xlabel="accuracy check (first iteration, then each epoch)", ylabel="accuracy")
    ax_acc.legend(loc="lower right")
    save_figure(fig, path, dpi=100)


def train(config: TrainConfig) -> dict[str, Any]:
    """Load data, build the model, train it, score it; returns the summary dict.

    Raises:
        ValueError: ``config.problems()`` is not empty (all of them, in one message),
            or the data or a checkpoint does not fit the model.
        CIFAR10NotFoundError: CIFAR-10 is not where the config says.
        ResumeError: the checkpoint to resume from does not fit this model or run.
        SplitError: distributed, and batch_size is not a multiple of the ranks.
        RanksDisagreeError: distributed, and the ranks do not hold the same model,
            data or settings at the first step.
        FloatingPointError: the loss became non-finite (``solver.NonFiniteLossError``,
            naming the iteration); training stopped there and no output is written.
    """
    problems = config.problems()
    if problems:
        raise ValueError(" ".join(problems))
    data = load_data(config)
    model = build_model(config, data)
    checkpoint_name = None
    if config.checkpoint:
        os.makedirs(config.checkpoint, exist_ok=True)
        checkpoint_name = os.path.join(config.checkpoint, f"{config.data}_{config.model}")
    extra: dict[str, Any] = {}
    solver_class: Any = Solver
    rank = 0
    if config.distributed:  # every rank of the job runs this, alike
        from normgrad.distributed import DistributedSolver, world

        comm = world()
        if config.batch_size % comm.size:
            raise SplitError(_split_problem(config.batch_size, comm.size))
        solver_class, extra, rank = DistributedSolver, {"comm": comm}, comm.rank
    solver = solver_class(
        model,
        data,
        **extra,
        update_rule=config.update_rule,
        optim_config={"learning_rate": config.lr},
        lr_decay=config.lr_decay,
        num_epochs=config.epochs,
        batch_size=config.batch_size,
        num_train_samples=None,
        checkpoint_name=checkpoint_name,
        print_every=10**9,
        verbose=not config.quiet,
        stop_on_nonfinite=True,  # a diverged run is an error here (exit 1), not a result
    )
    if config.resume:
        try:
            solver.restore(config.resume)
        except ValueError as exc:  # nothing was changed; say which file and why
            raise ResumeError(f"--resume {config.resume}: {exc}") from exc
    threads = config.threads or (1 if config.data == "digits" else None)
    with blas_limit(threads):
        start = time.perf_counter()
        solver.train()
        seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "train_acc": solver.check_accuracy(data["X_train"], data["y_train"]),
        "val_acc": solver.check_accuracy(data["X_val"], data["y_val"]),
        "test_acc": solver.check_accuracy(data["X_test"], data["y_test"]),
        "seconds": round(seconds, 3),
        "blas_threads": threads,
        "best_val_acc": float(solver.best_val_acc),
        "iterations": len(solver.loss_history),
        "final_loss": float(solver.loss_history[-1]) if solver.loss_history else None,
        "config": asdict(config),
    }
    if config.distributed:
        result["ranks"] = solver.comm.size
    if solver.last_checkpoint:
        result["last_checkpoint"] = solver.last_checkpoint
    if rank != 0:  # rank 0 alone writes the outputs
        return result
    if config.plot:
        plot_history(solver, config.plot, f"{config.model} / {config.norm} on {config.data}")
    if config.json:
        text = json.dumps(result, indent=2) + "\n"
        atomic_write(config.json, lambda tmp: Path(tmp).write_text(text))
    return result


def format_summary(result: dict[str, Any]) -> str:
    c = result["config"]
    ranks = f" over {result['ranks']} ranks" if "ranks" in result else ""
    return (
        f"{c['model']} net ({c['norm']}{ranks}) on {c['data']}: "
        f"train {result['train_acc']:.2%}, val {result['val_acc']:.2%}, "
        f"test {result['test_acc']:.2%} ({result['iterations']} iterations in "
        f"{result['seconds']:.1f} s; best-validation model)"
    )
