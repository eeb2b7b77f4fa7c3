"""``deep``: the course's "batch normalization for deep networks" (cs231n assignment 2).

Two arms of the course's ``FullyConnectedNet``, 5 hidden layers of 100 ReLUs, trained
identically on 1000 training rows (the course's ``small_data``):

- ``baseline``: affine - relu, no normalization;
- ``batchnorm``: affine - batch norm - relu.

Weights N(0, 2e-2^2), Adam at 1e-3, 10 epochs of batch 50 (200 iterations), exactly the
course's settings. At weight scale 2e-2 the baseline's signal shrinks by about
2e-2 * sqrt(100) / sqrt(2) ~ 0.14 per layer, so its gradients start tiny; batch norm
rescales every layer to unit variance and trains at once.

The run repeats each arm over several seeds (the same seeds for both) and reports the
mean; the figure shows the mean curves: training loss per iteration, and training and
held-out accuracy at the first iteration and each epoch end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.tools.experiments import common as c

NAME = "deep"
HIDDEN = [100] * 5
WEIGHT_SCALE = 2e-2
LEARNING_RATE = 1e-3
ARMS = {"baseline": None, "batchnorm": "batchnorm"}  # arm name -> normalization


def hyperparameters(ctx: c.Context) -> dict[str, Any]:
    """Every setting of this run (the course's, shrunk only at the tiny test scale)."""
    return {
        **c.course_settings(HIDDEN, LEARNING_RATE, WEIGHT_SCALE),
        "num_epochs": ctx.pick(10, 10, 2),
        "batch_size": 50,
        "num_train": ctx.pick(1000, 1000, 200),
        "num_seeds": ctx.pick(5, 2, 1),
        "seeds_from": ctx.seed,
        "normalization_by_arm": {k: v or "none" for k, v in ARMS.items()},
    }


def plot(arms: dict[str, list[c.Arm]], path: Any, title: str) -> Any:
    """Training loss, training accuracy and held-out accuracy of each arm (mean over seeds)."""
    plt = c.pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 10))
    for name, runs in arms.items():
        loss = c.mean_curve(runs, "loss")
        window = max(1, len(loss) // 40)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        axes[0].plot(loss, "o", markersize=2, alpha=0.3, color=c.color(name))
        axes[0].plot(np.arange(window - 1, len(loss)), smooth, color=c.color(name), label=name)
        for ax, key in ((axes[1], "train_acc"), (axes[2], "val_acc")):
            acc = c.mean_curve(runs, key)
            ax.plot(np.arange(len(acc)), acc, "-o", color=c.color(name), label=name)
    axes[0].set(title=f"{title}\nTraining loss", xlabel="iteration", ylabel="training loss")
    axes[1].set(title="Training accuracy", xlabel="epoch", ylabel="accuracy")
    axes[2].set(title="Held-out accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is not axes[0] else "upper right")
    for ax in axes[1:]:
        ax.set_ylim(0, 1.02)
    return c.save_figure(fig, path)


def run(ctx: c.Context, figure: Any = None) -> dict[str, Any]:
    """Train both arms over the seeds, write the figure and summary.json, return the summary.

    Args:
        ctx: data, output folder, scale, first seed, progress bars.
        figure: where to write the PNG (default ``ctx.out / "deep.png"``).
    """
    hp = hyperparameters(ctx)
    data, desc = c.load_data(ctx, hp["num_train"])
    seeds = [ctx.seed + k for k in range(hp["num_seeds"])]
    runs: dict[str, list[c.Arm]] = {name: [] for name in ARMS}
    for seed in seeds:
        for name, norm in ARMS.items():
            runs[name].append(
                c.train_fc_arm(
                    name,
                    data,
                    HIDDEN,
                    norm,
                    WEIGHT_SCALE,
                    LEARNING_RATE,
                    hp["num_epochs"],
                    hp["batch_size"],
                    seed,
                    progress=ctx.progress,
                )
            )
    arms = {name: c.aggregate_seeds(group) for name, group in runs.items()}
    gap = arms["batchnorm"]["final_acc"] - arms["baseline"]["final_acc"]
    wins = sum(
        b >= a
        for a, b in zip(
            arms["baseline"]["final_acc_by_seed"],
            arms["batchnorm"]["final_acc_by_seed"],
            strict=True,
        )
    )
    ctx.out.mkdir(parents=True, exist_ok=True)
    png = plot(
        runs,
        figure or ctx.out / "deep.png",
        f"Deep net (5x100 ReLU, weight scale {WEIGHT_SCALE:g}) on {ctx.data}, "
        f"mean of {len(seeds)} seed(s)",
    )
    summary = {
        "experiment": NAME,
        "data": desc,
        "scale": ctx.scale,
        "seeds": seeds,
        "hyperparameters": hp,
        "arms": arms,
        "batchnorm_minus_baseline_final_acc": gap,
        "seeds_where_batchnorm_final_acc_ge_baseline": f"{wins}/{len(seeds)}",
        "conclusion": conclusion(arms, len(seeds)),
        "figures": [png.name],
    }
    c.write_summary(ctx.out, summary)
    return summary


def conclusion(arms: dict[str, dict[str, Any]], num_seeds: int) -> str:
    """The printed one-line verdict, from the arms' mean ``final_acc`` alone."""
    bn, base = arms["batchnorm"]["final_acc"], arms["baseline"]["final_acc"]
    verdict = "ahead of" if bn > base else "level with" if bn == base else "BEHIND"
    return (
        f"batch norm is {verdict} the baseline: final held-out accuracy {bn:.3f} vs "
        f"{base:.3f} (mean of {num_seeds} seed(s))"
    )


def table(summary: dict[str, Any]) -> str:
    """The comparison table printed after the run."""
    keys = ("final_acc", "final_train_acc", "best_val_acc", "final_loss", "seconds")
    rows = [[name, *(m[k] for k in keys)] for name, m in summary["arms"].items()]
    return c.format_table(rows, ["arm", *keys])
