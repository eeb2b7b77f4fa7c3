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
final held-out accuracy over the batch sizes, averaged over seeds; smaller is better.
``train_acc_sensitivity`` is the same for the final training accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.experiments import common as c

NAME = "batch-size"
NORMS = ("batchnorm", "layernorm")
HIDDEN = [100] * 5
WEIGHT_SCALE = 2e-2
LEARNING_RATE = 10 ** -3.5
BATCH_SIZES = (5, 10, 50)
BASELINE_BATCH = 5


def hyperparameters(ctx: c.Context, norm: str) -> dict[str, Any]:
    """Every setting of this run; quick and tiny train fewer epochs and seeds."""
    return {
        "normalization": norm, "hidden_dims": HIDDEN, "activation": "relu",
        "weight_scale": WEIGHT_SCALE, "weight_init": "weight_scale * randn (the course's)",
        "update_rule": "adam", "learning_rate": LEARNING_RATE, "lr_decay": 1.0,
        "num_epochs": ctx.pick(10, 5, 1), "batch_sizes": list(BATCH_SIZES),
        "baseline_batch_size": BASELINE_BATCH, "num_train": ctx.pick(1000, 1000, 100),
        "num_seeds": ctx.pick(3, 2, 1), "seeds_from": ctx.seed, "dtype": "float64",
        "reg": 0.0, "bn_momentum": 0.9, "bn_eps": 1e-5,
    }


def arm_specs(norm: str) -> list[tuple[str, str | None, int]]:
    """(arm name, normalization, batch size), baseline first."""
    return [(f"baseline_b{BASELINE_BATCH}", None, BASELINE_BATCH),
            *((f"{norm}_b{b}", norm, b) for b in BATCH_SIZES)]


def _shade(name: str) -> Any:
    """Baseline red; the normalized arms darker as the batch grows (blue or green)."""
    if name.startswith("baseline"):
        return c.color(name)
    import matplotlib

    cmap = matplotlib.colormaps["Blues" if name.startswith("batchnorm") else "Greens"]
    batch = int(name.rsplit("_b", 1)[-1])
    return cmap(0.45 + 0.5 * BATCH_SIZES.index(batch) / (len(BATCH_SIZES) - 1))


def plot(runs: dict[str, list[c.Arm]], arms: dict[str, dict[str, Any]], norm: str,
         path: Any, title: str) -> Any:
    """Training and held-out accuracy by epoch for every arm (mean over seeds), and the
    normalized arms' final accuracies against batch size (the sensitivity, zoomed in)."""
    plt = c.pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 11))
    styles = {5: "-o", 10: "--s", 50: ":^"}
    for name, group in runs.items():
        batch = int(name.rsplit("_b", 1)[-1])
        for ax, key in zip(axes[:2], ("train_acc", "val_acc"), strict=True):
            n = min(len(r.curves[key]) for r in group)
            acc = np.mean([r.curves[key][:n] for r in group], axis=0)
            ax.plot(np.arange(n), acc, styles.get(batch, "-o"), color=_shade(name),
                    label=name.replace("_b", ", batch "))
    axes[0].set(title=f"{title}\nTraining accuracy", xlabel="epoch", ylabel="accuracy")
    axes[1].set(title="Held-out accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in axes[:2]:
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    x = np.arange(len(BATCH_SIZES))
    for key, label, style in (("final_train_acc", "final training accuracy", "--s"),
                              ("final_acc", "final held-out accuracy", "-o")):
        y = [arms[f"{norm}_b{b}"][key] for b in BATCH_SIZES]
        axes[2].plot(x, y, style, color=c.color(norm), label=f"{norm}: {label}")
    axes[2].set_xticks(x, [str(b) for b in BATCH_SIZES])
    axes[2].set(title=f"{norm}: final accuracy against batch size (zoomed)",
                xlabel="batch size", ylabel="accuracy")
    axes[2].grid(alpha=0.3)
    axes[2].legend(loc="lower right")
    return c.save_figure(fig, path)


def run(ctx: c.Context, norm: str = "batchnorm") -> dict[str, Any]:
    """Train every arm over the seeds; write batch_size_<norm>.png and summary.json."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}.")
    hp = hyperparameters(ctx, norm)
    data, desc = c.load_data(ctx, hp["num_train"])
    seeds = [ctx.seed + k for k in range(hp["num_seeds"])]
    specs = arm_specs(norm)
    runs: dict[str, list[c.Arm]] = {name: [] for name, _, _ in specs}
    for seed in seeds:
        for name, normalization, batch in specs:
            runs[name].append(c.train_fc_arm(
                name, data, HIDDEN, normalization, WEIGHT_SCALE, LEARNING_RATE,
                hp["num_epochs"], batch, seed, progress=ctx.progress))
    arms: dict[str, dict[str, Any]] = {}
    for (name, normalization, batch), group in zip(specs, runs.values(), strict=True):
        m: dict[str, Any] = {"normalization": normalization or "none", "batch_size": batch}
        for key in ("final_acc", "final_train_acc", "best_val_acc", "final_loss"):
            values = [r.metrics[key] for r in group]
            m[key], m[f"{key}_by_seed"] = float(np.mean(values)), values
        m["iterations"] = group[0].metrics["iterations"]
        m["seconds"] = round(sum(r.metrics["seconds"] for r in group), 3)
        arms[name] = m

    def spread(key: str) -> float:
        per_seed = [[arms[f"{norm}_b{b}"][f"{key}_by_seed"][s] for b in BATCH_SIZES]
                    for s in range(len(seeds))]
        return float(np.mean([max(v) - min(v) for v in per_seed]))

    sensitivity, train_sensitivity = spread("final_acc"), spread("final_train_acc")
    ctx.out.mkdir(parents=True, exist_ok=True)
    png = plot(runs, arms, norm, ctx.out / f"batch_size_{norm}.png",
               f"Batch size: {norm} vs baseline (5x100 ReLU) on {ctx.data}, "
               f"mean of {len(seeds)} seed(s)")
    summary = {
        "experiment": NAME, "data": desc, "scale": ctx.scale, "seeds": seeds,
        "hyperparameters": hp, "arms": arms, "figures": [png.name],
        "batch_size_sensitivity": sensitivity,
        "train_acc_sensitivity": train_sensitivity,
        "sensitivity_definition": ("max - min over batch sizes 5, 10, 50 of the "
                                   f"{norm} arms' final accuracy, per seed, averaged"),
        "conclusion": (f"{norm}: final held-out accuracy varies by {sensitivity:.3f} over "
                       f"batch sizes {', '.join(map(str, BATCH_SIZES))} (training accuracy "
                       f"by {train_sensitivity:.3f})"),
    }
    c.write_summary(ctx.out, summary)
    return summary


def table(summary: dict[str, Any]) -> str:
    """One row per arm, then the sensitivity."""
    keys = ("batch_size", "iterations", "final_acc", "final_train_acc", "best_val_acc")
    rows = [[name, *(m[k] for k in keys)] for name, m in summary["arms"].items()]
    return (c.format_table(rows, ["arm", *keys])
            + f"\n\nbatch_size_sensitivity (held-out): {summary['batch_size_sensitivity']:.4f}"
            + f"\ntrain_acc_sensitivity: {summary['train_acc_sensitivity']:.4f}")
