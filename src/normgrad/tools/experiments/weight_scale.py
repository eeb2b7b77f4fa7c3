"""``weight-scale``: the course's "batch normalization and initialization" sweep.

A ``FullyConnectedNet`` with 7 hidden layers of 50 ReLUs is trained at 20 weight scales,
``np.logspace(-4, 0, 20)``, with and without batch norm (the course's settings: 1000
training rows, Adam at 1e-3, 10 epochs of batch 50). For each scale the run records the
best held-out accuracy, the best training accuracy and the final training loss (mean of
the last tenth of the iterations), the course's three panels.

Without normalization the net trains only in a narrow band of scales: too small and the
signal vanishes through 7 layers, too large and it explodes (a non-finite loss is
recorded as a diverged point, not raised). Batch norm re-standardizes every layer, so
the initial scale hardly matters.

summary.json: ``arms.<arm>`` holds per-scale lists (``*_by_scale``) and scalars:
``final_acc`` is the held-out accuracy at the end of training *averaged over the
scales* (a robustness score: 1.0 would mean every scale trains perfectly), and
``best_final_acc`` is the end-of-training held-out accuracy at the arm's best scale (the
scale with the highest best held-out accuracy), comparable with ``final_acc`` in the
other experiments; ``scales_within_5pts_of_best`` counts the scales whose best held-out
accuracy is within 0.05 of the arm's best. ``metric_notes`` in summary.json says so too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad._internal.tables import fmt
from normgrad.tools.experiments import common as c

NAME = "weight-scale"
HIDDEN = [50] * 7
LEARNING_RATE = 1e-3
ARMS = {"batchnorm": "batchnorm", "baseline": None}
METRIC_NOTES = {
    "final_acc": "UNLIKE the other experiments: the end-of-training held-out accuracy "
    "averaged over all the weight scales (a robustness score)",
    "best_final_acc": "the end-of-training held-out accuracy at the arm's best scale (the "
    "other experiments' final_acc, at best_scale)",
    "best_val_acc": "the highest held-out accuracy at any check, at any scale",
    "best_scale": "the scale with the highest best held-out accuracy",
    "final_acc_by_scale": "end-of-training held-out accuracy at each scale (at divergence "
    "for a diverged scale)",
}


def hyperparameters(ctx: c.Context) -> dict[str, Any]:
    """Every setting of this run; quick and tiny use fewer scales and epochs."""
    num_scales = ctx.pick(20, 10, 3)
    return {
        **c.course_settings(HIDDEN, LEARNING_RATE, None),
        "num_epochs": ctx.pick(10, 6, 1),
        "batch_size": 50,
        "num_train": ctx.pick(1000, 1000, 100),
        "weight_scales": np.logspace(-4, 0, num_scales).tolist(),
        "seed": ctx.seed,
        "normalization_by_arm": {k: v or "none" for k, v in ARMS.items()},
        "final_loss": "mean training loss over the last tenth of the finite iterations",
    }


def plot(arms: dict[str, dict[str, Any]], scales: list[float], path: Any, title: str) -> Any:
    """Best held-out accuracy, best training accuracy and final loss against weight scale."""
    plt = c.pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 10))
    panels = (
        ("best_val_acc_by_scale", "Best held-out accuracy vs weight scale", "accuracy"),
        ("best_train_acc_by_scale", "Best training accuracy vs weight scale", "accuracy"),
        ("final_loss_by_scale", "Final training loss vs weight scale", "training loss"),
    )
    for ax, (key, name, ylabel) in zip(axes, panels, strict=True):
        for arm, m in arms.items():
            y = np.array([np.nan if v is None else v for v in m[key]], dtype=float)
            ax.semilogx(scales, y, "-o", color=c.color(arm), label=arm)
            bad = np.array(m["diverged_by_scale"], dtype=bool)
            if bad.any():
                ax.semilogx(
                    np.array(scales)[bad],
                    np.nan_to_num(y[bad]),
                    "x",
                    markersize=10,
                    color="black",
                    label=f"{arm}: diverged (non-finite loss)",
                )
        ax.set(title=name, xlabel="weight scale (std of the initial weights)", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best")
    axes[0].set_title(f"{title}\n{axes[0].get_title()}")
    for ax in axes[:2]:
        ax.set_ylim(0, 1.02)
    axes[2].set_yscale("log")
    return c.save_figure(fig, path)


def run(ctx: c.Context) -> dict[str, Any]:
    """Sweep the scales for both arms; write weight_scale.png and summary.json."""
    hp = hyperparameters(ctx)
    data, desc = c.load_data(ctx, hp["num_train"])
    scales = hp["weight_scales"]
    arms: dict[str, dict[str, Any]] = {}
    for name, norm in ARMS.items():
        runs = [
            c.train_fc_arm(
                name,
                data,
                HIDDEN,
                norm,
                ws,
                LEARNING_RATE,
                hp["num_epochs"],
                hp["batch_size"],
                ctx.seed,
                progress=ctx.progress,
            )
            for ws in scales
        ]
        m: dict[str, Any] = {
            f"{k}_by_scale": [r.metrics[k] for r in runs]
            for k in ("final_acc", "best_val_acc", "best_train_acc", "final_loss", "diverged")
        }
        best = max(m["best_val_acc_by_scale"])
        at = int(np.argmax(m["best_val_acc_by_scale"]))  # the arm's best scale
        m["final_acc"] = float(np.mean(m["final_acc_by_scale"]))
        m["best_final_acc"] = m["final_acc_by_scale"][at]
        m["best_val_acc"] = best
        m["best_scale"] = scales[at]
        m["scales_within_5pts_of_best"] = sum(v >= best - 0.05 for v in m["best_val_acc_by_scale"])
        m["diverged_scales"] = sum(m["diverged_by_scale"])
        m["seconds"] = round(sum(r.metrics["seconds"] for r in runs), 3)
        arms[name] = m
    ctx.out.mkdir(parents=True, exist_ok=True)
    png = plot(
        arms, scales, ctx.out / "weight_scale.png", f"Weight-scale sweep (7x50 ReLU) on {ctx.data}"
    )
    bn, base = arms["batchnorm"], arms["baseline"]
    summary = {
        "experiment": NAME,
        "data": desc,
        "scale": ctx.scale,
        "hyperparameters": hp,
        "arms": arms,
        "figures": [png.name],
        "metric_notes": METRIC_NOTES,
        "conclusion": (
            f"batch norm trains within 0.05 of its best at {bn['scales_within_5pts_of_best']}"
            f"/{len(scales)} scales, the baseline at {base['scales_within_5pts_of_best']}"
            f"/{len(scales)}; mean final held-out accuracy over the scales "
            f"{bn['final_acc']:.3f} vs {base['final_acc']:.3f}"
        ),
    }
    c.write_summary(ctx.out, summary)
    return summary


def table(summary: dict[str, Any]) -> str:
    """Per scale: each arm's best held-out accuracy and final loss; then the totals."""
    scales = summary["hyperparameters"]["weight_scales"]
    arms = summary["arms"]
    rows = []
    for i, ws in enumerate(scales):
        row: list[Any] = [f"{ws:.2e}"]
        for m in arms.values():
            tag = " (diverged)" if m["diverged_by_scale"][i] else ""
            row += [m["best_val_acc_by_scale"][i], f"{fmt(m['final_loss_by_scale'][i])}{tag}"]
        rows.append(row)
    header = ["weight scale"]
    for name in arms:
        header += [f"{name} best acc", f"{name} final loss"]
    totals = c.format_table(
        [
            [
                n,
                m["final_acc"],
                m["best_final_acc"],
                m["best_val_acc"],
                f"{m['best_scale']:.2e}",
                m["scales_within_5pts_of_best"],
                m["diverged_scales"],
            ]
            for n, m in arms.items()
        ],
        [
            "arm",
            "final_acc (mean over scales)",
            "final_acc at best scale",
            "best_val_acc",
            "best scale",
            "scales within 0.05",
            "diverged",
        ],
    )
    return c.format_table(rows, header) + "\n\n" + totals
