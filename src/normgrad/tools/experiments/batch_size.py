"""``batch-size``: the course's "batch normalization and batch size" study (and layer norm's).

A ``FullyConnectedNet`` with 5 hidden layers of 100 ReLUs, weight scale 2e-2, Adam at
10**-3.5, 10 epochs on 1000 training rows (the course's settings). Arms:

- ``baseline_b5``: no normalization, batch 5;
- ``<norm>_b5``, ``<norm>_b10``, ``<norm>_b50``: the normalization (``batchnorm`` by
  default, ``layernorm`` with ``--norm layernorm``) at batches 5, 10 and 50.

Every arm runs the same number of epochs, so smaller batches take more steps. Batch norm
estimates its statistics from the minibatch: at batch 5 they are noisy and the train-test
mismatch (batch statistics in training, running averages at test time) is largest. Layer
norm normalizes each sample by itself, so it does not depend on the batch at all.

The number: ``batch_size_sensitivity`` is the spread (max - min) of the normalized arms'
final held-out accuracy over the batch sizes, per seed, averaged over seeds; smaller is
better. ``train_acc_sensitivity`` is the same for the final training accuracy.

Equal-updates control. With epochs fixed, batch 50 takes 10x fewer steps than batch 5,
so the main number mixes batch-statistics noise with the step count. The control trains
every normalized arm for the batch-5 arm's number of iterations (epochs scaled by the
batch size; ``arms_equal_steps``, the batch-5 runs shared with the main protocol) and
reports ``batch_size_sensitivity_equal_steps``, the same spread over those arms. The
fixed-epoch protocol (the course's) stays the main one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.models.blocks import FC_BLOCKS
from normgrad.tools.experiments import common as c

NAME = "batch-size"
NORMS = tuple(FC_BLOCKS)  # every normalization a fully connected net can use
HIDDEN = [100] * 5
WEIGHT_SCALE = 2e-2
LEARNING_RATE = 10**-3.5
BATCH_SIZES = (5, 10, 50)
BASELINE_BATCH = 5


def hyperparameters(ctx: c.Context, norm: str) -> dict[str, Any]:
    """Every setting of this run; quick and tiny train fewer epochs and seeds."""
    return {
        **c.course_settings(HIDDEN, LEARNING_RATE, WEIGHT_SCALE),
        "normalization": norm,
        "num_epochs": ctx.pick(10, 5, 1),
        "batch_sizes": list(BATCH_SIZES),
        "baseline_batch_size": BASELINE_BATCH,
        "num_train": ctx.pick(1000, 1000, 100),
        "num_seeds": ctx.pick(3, 2, 1),
        "seeds_from": ctx.seed,
    }


def arm_specs(norm: str) -> list[tuple[str, str | None, int]]:
    """(arm name, normalization, batch size), baseline first."""
    return [
        (f"baseline_b{BASELINE_BATCH}", None, BASELINE_BATCH),
        *((f"{norm}_b{b}", norm, b) for b in BATCH_SIZES),
    ]


def _shade(name: str) -> Any:
    """Baseline red; the normalized arms darker as the batch grows (blue or green)."""
    if name.startswith("baseline"):
        return c.color(name)
    import matplotlib

    cmap = matplotlib.colormaps["Blues" if name.startswith("batchnorm") else "Greens"]
    batch = int(name.rsplit("_b", 1)[-1])
    return cmap(0.45 + 0.5 * BATCH_SIZES.index(batch) / (len(BATCH_SIZES) - 1))


def plot(
    runs: dict[str, list[c.Arm]],
    arms: dict[str, dict[str, Any]],
    equal: dict[str, dict[str, Any]],
    norm: str,
    path: Any,
    title: str,
) -> Any:
    """Training and held-out accuracy by epoch for every arm (mean over seeds), and the
    normalized arms' final accuracies against batch size (the sensitivity, zoomed in),
    with the equal-updates control's held-out accuracy."""
    plt = c.pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 11))
    styles = {5: "-o", 10: "--s", 50: ":^"}
    for name, group in runs.items():
        batch = int(name.rsplit("_b", 1)[-1])
        for ax, key in zip(axes[:2], ("train_acc", "val_acc"), strict=True):
            acc = c.mean_curve(group, key)
            n = len(acc)
            ax.plot(
                np.arange(n),
                acc,
                styles.get(batch, "-o"),
                color=_shade(name),
                label=name.replace("_b", ", batch "),
            )
    axes[0].set(title=f"{title}\nTraining accuracy", xlabel="epoch", ylabel="accuracy")
    axes[1].set(title="Held-out accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in axes[:2]:
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    x = np.arange(len(BATCH_SIZES))
    for key, label, style in (
        ("final_train_acc", "final training accuracy", "--s"),
        ("final_acc", "final held-out accuracy", "-o"),
    ):
        y = [arms[f"{norm}_b{b}"][key] for b in BATCH_SIZES]
        axes[2].plot(x, y, style, color=c.color(norm), label=f"{norm}: {label}")
    y = [equal[f"{norm}_b{b}"]["final_acc"] for b in BATCH_SIZES]
    axes[2].plot(x, y, ":^", color="black", label=f"{norm}: final held-out accuracy, equal updates")
    axes[2].set_xticks(x, [str(b) for b in BATCH_SIZES])
    axes[2].set(
        title=f"{norm}: final accuracy against batch size (zoomed)",
        xlabel="batch size",
        ylabel="accuracy",
    )
    axes[2].grid(alpha=0.3)
    axes[2].legend(loc="best", fontsize="small")
    return c.save_figure(fig, path)


def sensitivity(arms: dict[str, dict[str, Any]], norm: str, key: str = "final_acc") -> float:
    """Per seed, max - min over the batch sizes of the ``norm`` arms' ``<key>_by_seed``;
    the mean over seeds."""
    by_batch = [arms[f"{norm}_b{b}"][f"{key}_by_seed"] for b in BATCH_SIZES]
    return float(np.mean([max(v) - min(v) for v in zip(*by_batch, strict=True)]))


def equal_steps_epochs(batch: int, iterations: int, num_train: int) -> int:
    """Epochs for ``batch`` to take ``iterations`` Solver steps on ``num_train`` rows
    (the Solver runs epochs x (num_train // batch) steps; rounded up, so never fewer)."""
    per_epoch = max(num_train // batch, 1)
    return max(1, -(-iterations // per_epoch))


def run(ctx: c.Context, norm: str = "batchnorm") -> dict[str, Any]:
    """Train every arm over the seeds, then the equal-updates control; write
    batch_size_<norm>.png and summary.json."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}.")
    hp = hyperparameters(ctx, norm)
    data, desc = c.load_data(ctx, hp["num_train"])
    seeds = [ctx.seed + k for k in range(hp["num_seeds"])]
    specs = arm_specs(norm)
    runs: dict[str, list[c.Arm]] = {name: [] for name, _, _ in specs}
    equal_runs: dict[str, list[c.Arm]] = {f"{norm}_b{b}": [] for b in BATCH_SIZES}
    n_train = len(data["X_train"])
    for seed in seeds:
        for name, normalization, batch in specs:
            runs[name].append(
                c.train_fc_arm(
                    name,
                    data,
                    HIDDEN,
                    normalization,
                    WEIGHT_SCALE,
                    LEARNING_RATE,
                    hp["num_epochs"],
                    batch,
                    seed,
                    progress=ctx.progress,
                )
            )
        steps = runs[f"{norm}_b{BATCH_SIZES[0]}"][-1].metrics["iterations"]
        for b in BATCH_SIZES:
            name = f"{norm}_b{b}"
            equal_runs[name].append(
                runs[name][-1]
                if b == BATCH_SIZES[0]
                else c.train_fc_arm(
                    name,
                    data,
                    HIDDEN,
                    norm,
                    WEIGHT_SCALE,
                    LEARNING_RATE,
                    equal_steps_epochs(b, steps, n_train),
                    b,
                    seed,
                    progress=ctx.progress,
                )
            )
    arms: dict[str, dict[str, Any]] = {}
    for (name, normalization, batch), group in zip(specs, runs.values(), strict=True):
        arms[name] = {
            "normalization": normalization or "none",
            "batch_size": batch,
            **c.aggregate_seeds(group),
            "iterations": group[0].metrics["iterations"],
        }
    equal = {
        name: {
            "batch_size": int(name.rsplit("_b", 1)[-1]),
            "num_epochs": len(group[0].curves["val_acc"]) - 1,
            **c.aggregate_seeds(group),
            "iterations": group[0].metrics["iterations"],
        }
        for name, group in equal_runs.items()
    }
    sens, train_sens = sensitivity(arms, norm), sensitivity(arms, norm, "final_train_acc")
    sens_equal = sensitivity(equal, norm)
    ctx.out.mkdir(parents=True, exist_ok=True)
    png = plot(
        runs,
        arms,
        equal,
        norm,
        ctx.out / f"batch_size_{norm}.png",
        f"Batch size: {norm} vs baseline (5x100 ReLU) on {ctx.data}, mean of {len(seeds)} seed(s)",
    )
    summary = {
        "experiment": NAME,
        "data": desc,
        "scale": ctx.scale,
        "seeds": seeds,
        "hyperparameters": hp,
        "arms": arms,
        "arms_equal_steps": equal,
        "figures": [png.name],
        "batch_size_sensitivity": sens,
        "train_acc_sensitivity": train_sens,
        "batch_size_sensitivity_equal_steps": sens_equal,
        "sensitivity_definition": (
            "max - min over batch sizes 5, 10, 50 of the "
            f"{norm} arms' final accuracy, per seed, averaged"
        ),
        "equal_steps_definition": (
            "the same spread when every batch size trains for the batch-5 arm's number of "
            "iterations (epochs scaled up for the larger batches; arms_equal_steps)"
        ),
        "conclusion": (
            f"{norm}: final held-out accuracy varies by {sens:.3f} over "
            f"batch sizes {', '.join(map(str, BATCH_SIZES))} at equal epochs "
            f"(training accuracy by {train_sens:.3f}); by {sens_equal:.3f} at "
            "equal updates"
        ),
    }
    c.write_summary(ctx.out, summary)
    return summary


def table(summary: dict[str, Any]) -> str:
    """One row per arm (the equal-updates control's marked), then both sensitivities."""
    keys = ("batch_size", "iterations", "final_acc", "final_train_acc", "best_val_acc")
    rows = [[name, *(m[k] for k in keys)] for name, m in summary["arms"].items()]
    rows += [
        [f"{name} (equal updates)", *(m[k] for k in keys)]
        for name, m in summary["arms_equal_steps"].items()
    ]
    return (
        c.format_table(rows, ["arm", *keys])
        + "\n\nbatch_size_sensitivity (held-out, equal epochs): "
        + f"{summary['batch_size_sensitivity']:.4f}"
        + "\nbatch_size_sensitivity_equal_steps (held-out, equal updates): "
        + f"{summary['batch_size_sensitivity_equal_steps']:.4f}"
        + f"\ntrain_acc_sensitivity (equal epochs): {summary['train_acc_sensitivity']:.4f}"
    )
