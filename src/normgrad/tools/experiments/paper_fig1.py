"""``paper-fig1``: Ioffe & Szegedy 2015 (arXiv 1502.03167), Figure 1, on normgrad's layers.

The paper's net: 3 fully-connected hidden layers of 100 sigmoid units and a softmax
output, trained on minibatches of 60, with and without batch norm before each sigmoid:

    baseline:  {affine - sigmoid} x 3 - affine - softmax
    batchnorm: {affine - batch norm - sigmoid} x 3 - affine - softmax

(a) held-out accuracy against training steps; (b, c) the 15th, 50th and 85th percentiles
of the input to one sigmoid of the last hidden layer, over training, for each arm.

The paper leaves the optimizer, learning rate, initial scale and step count unstated;
the choices, and why, are in ``CHOICES`` (printed and written to summary.json).

Percentiles are taken over a fixed batch of held-out rows at every evaluation, with the
statistics the network uses *in training* (batch norm normalizes that batch by its own
mean and variance; a copy of bn_param is used, so the running averages are untouched).
Held-out accuracy is measured as at test time (batch norm with its running averages).

Inputs: on every data set the features are divided by the training rows' overall std
(``common.standardize``), so they have std 1 and the init's reasoning (sigmoid inputs of
order 1 at the start) holds: the digits already have std 1, CIFAR-10 minus its mean
image has ~60, which would start every first-layer sigmoid saturated.

``steps_to_target``: the first evaluated step *after step 0* at which an arm's held-out
accuracy reaches the baseline's final held-out accuracy (None: never); the untrained
net at step 0 does not count. ``percentile_drift``: for each of the three percentile
curves, its range (max - min) over training after the first evaluation (step 0 left out),
in units of the sigmoid's input; ``mean`` averages the three.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from normgrad._internal.progress import progress_bar
from normgrad.models.fc_net import FullyConnectedNet
from normgrad.tools.experiments import common as c
from normgrad.training import rules

NAME = "paper-fig1"
HIDDEN = [100, 100, 100]
BATCH_SIZE = 60
PERCENTILES = (15, 50, 85)
WATCHED_UNIT = 0  # which sigmoid of the last hidden layer is watched (any is "typical")
CHOICES = {
    "optimizer": "plain SGD (no momentum): the simplest rule, so differences between the "
    "arms come from the network, not from an optimizer that rescales each "
    "weight's step (as Adam does)",
    "learning_rate": "2.0, the same for both arms, tuned for the BASELINE on the embedded "
    "DIGITS only (not re-tuned for CIFAR-10): on the quick digits "
    "setting we tried 0.1, 0.5, 1, 2 and 4; the baseline's final held-out "
    "accuracy rose 0.954, 0.963, 0.967, 0.974, 0.974, so 2 is the smallest "
    "rate at its best (batch norm was ahead at every rate tried)",
    "init": "W ~ N(0, 1/fan_in) (LeCun), biases 0: 'small random Gaussian values' that "
    "keep every sigmoid input of order 1 at the start, out of saturation, so the "
    "baseline gets a fair start; this needs inputs of std 1, so every data set's "
    "features are divided by the training std",
    "steps": "enough for the baseline to plateau on this data (the paper ran 50k steps on "
    "MNIST's 60k images; digits has 1257 training images)",
}


def build_net(
    input_dim: int, batchnorm: bool, seed: int, num_classes: int = 10
) -> FullyConnectedNet:
    """The paper's 3x100-sigmoid net, with or without batch norm before each sigmoid.

    A course ``FullyConnectedNet(activation="sigmoid")``, float64, whose weights are then
    redrawn as the paper's init: W{i} ~ N(0, 1/fan_in) from a generator seeded with
    ``seed``, in layer order; biases 0, gamma 1, beta 0.
    """
    net = FullyConnectedNet(
        HIDDEN,
        input_dim=input_dim,
        num_classes=num_classes,
        normalization="batchnorm" if batchnorm else None,
        activation="sigmoid",
        dtype=np.float64,
    )
    rng = np.random.default_rng(seed)
    for i in range(1, net.num_layers + 1):
        fan_in, fan_out = net.params[f"W{i}"].shape
        net.params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
    return net


def hyperparameters(ctx: c.Context) -> dict[str, Any]:
    """Every setting of this run; quick and tiny train fewer steps."""
    steps = ctx.pick(6000, 2500, 60)
    return {
        "hidden_dims": HIDDEN,
        "activation": "sigmoid",
        "batch_size": BATCH_SIZE,
        "update_rule": "sgd",
        "learning_rate": 2.0,
        "momentum": 0.0,
        "weight_init": "N(0, 1/fan_in), biases 0",
        "num_steps": steps,
        "eval_every": ctx.pick(50, 25, 10),
        "percentiles": list(PERCENTILES),
        "watched_unit": f"hidden layer {len(HIDDEN)}, unit {WATCHED_UNIT}",
        "percentile_batch": "all held-out rows, train-mode statistics",
        "bn_route": "batchnorm_backward_alt",
        "bn_momentum": 0.9,
        "bn_eps": 1e-5,
        "minibatches": "drawn with replacement (the course's Solver sampling)",
        "seed": ctx.seed,
        "dtype": "float64",
        "choices": CHOICES,
        "input_scaling": "features divided by the training rows' overall std (std 1)",
    }


def train_arm(
    name: str, data: dict[str, np.ndarray], hp: dict[str, Any], seed: int, progress: bool = False
) -> dict[str, Any]:
    """Train one arm with SGD; record accuracy and the watched sigmoid's percentiles."""
    model = build_net(data["X_train"].shape[1], name == "batchnorm", seed)
    rng = np.random.default_rng(seed + 1)  # minibatches: the same for both arms
    configs = {p: {"learning_rate": hp["learning_rate"]} for p in model.params}
    X_val, y_val = data["X_val"], data["y_val"]
    steps_seen, accs, pcts, losses = [], [], [], []

    def evaluate(step: int) -> None:
        accs.append(float(np.mean(np.argmax(model.loss(X_val), axis=1) == y_val)))
        # train-mode statistics, on copies: the running averages are left as they are
        watched = model.preactivations(X_val, mode="train")[-1][:, WATCHED_UNIT]  # (N,)
        pcts.append(np.percentile(watched, PERCENTILES).tolist())
        steps_seen.append(step)

    bar = progress_bar(hp["num_steps"], name, "step") if progress else None
    start = time.perf_counter()
    evaluate(0)
    for step in range(1, hp["num_steps"] + 1):
        batch = rng.integers(0, len(data["X_train"]), BATCH_SIZE)
        loss, grads = model.loss(data["X_train"][batch], data["y_train"][batch])
        losses.append(loss)
        for p in model.params:
            model.params[p], configs[p] = rules.sgd(model.params[p], grads[p], configs[p])
        if step % hp["eval_every"] == 0 or step == hp["num_steps"]:
            evaluate(step)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {
        "final_acc": accs[-1],
        "best_val_acc": max(accs),
        "final_loss": float(np.mean(losses[-max(1, len(losses) // 20) :])),
        "percentile_drift": percentile_drift(pcts),
        "percentiles_start": pcts[1] if len(pcts) > 1 else pcts[0],
        "percentiles_end": pcts[-1],
        "seconds": round(time.perf_counter() - start, 3),
        "curves": {"step": steps_seen, "val_acc": accs, "percentiles": pcts},
    }


def percentile_drift(pcts: list[list[float]]) -> dict[str, float]:
    """Range (max - min) of each percentile curve after the first evaluation (step 0).

    Args:
        pcts: one row per evaluation, (evals, 3): the 15th, 50th and 85th percentiles.

    Returns:
        {"p15", "p50", "p85": range of that column over rows 1.., "mean": their mean};
        all 0.0 with fewer than two evaluations.
    """
    p = np.array(pcts, dtype=float).reshape(len(pcts), len(PERCENTILES))  # (evals, 3)
    drift = {
        f"p{q}": float(np.ptp(p[1:, k])) if len(p) > 1 else 0.0 for k, q in enumerate(PERCENTILES)
    }
    drift["mean"] = float(np.mean(list(drift.values())))
    return drift


def steps_to(curve: dict[str, list], target: float) -> int | None:
    """The first evaluated step > 0 whose held-out accuracy is >= target (None: never);
    step 0, the untrained net, never counts."""
    for step, acc in zip(curve["step"], curve["val_acc"], strict=True):
        if step > 0 and acc >= target - 1e-12:
            return int(step)
    return None


def plot(arms: dict[str, dict[str, Any]], path: Any, title: str) -> Any:
    """Figure 1's three panels: (a) accuracy vs steps, (b, c) percentiles per arm."""
    plt = c.pyplot()
    fig = plt.figure(figsize=(14, 5.6))
    ax_a = fig.add_subplot(1, 3, 1)
    target = arms["baseline"]["final_acc"]
    for name, arm in arms.items():
        cur = arm["curves"]
        label = "with batch norm" if name == "batchnorm" else "without batch norm"
        hit = arm.get("steps_to_target")
        if hit is not None:
            label += f" (reaches target at step {hit})"
        ax_a.plot(cur["step"][1:], cur["val_acc"][1:], color=c.color(name), label=label)
        if hit is not None:
            ax_a.axvline(max(hit, 1), color=c.color(name), linestyle=":", linewidth=1)
    ax_a.axhline(
        target,
        color="gray",
        linestyle="--",
        linewidth=1,
        label=f"target: baseline's final accuracy {target:.3f}",
    )
    ax_a.set_xscale("log")
    ax_a.set(title="(a) held-out accuracy", xlabel="training step (log scale)", ylabel="accuracy")
    ax_a.grid(alpha=0.3)
    # legends below the panels, outside the axes, so no curve is hidden
    ax_a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="small")
    lims = [np.inf, -np.inf]
    panels = []
    for k, (name, label) in enumerate(
        (("baseline", "(b) without batch norm"), ("batchnorm", "(c) with batch norm")), start=2
    ):
        ax = fig.add_subplot(1, 3, k)
        cur = arms[name]["curves"]
        p = np.array(cur["percentiles"])  # (evals, 3)
        for j, (q, style) in enumerate(zip(PERCENTILES, (":", "-", "--"), strict=True)):
            ax.plot(cur["step"], p[:, j], style, color=c.color(name), label=f"{q}th percentile")
        ax.set(
            title=f"{label}: input to one\nlast-layer sigmoid",
            xlabel="training step",
            ylabel="sigmoid input",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize="small")
        lims = [min(lims[0], p.min()), max(lims[1], p.max())]
        panels.append(ax)
    pad = 0.05 * (lims[1] - lims[0] + 1e-12)
    for ax in panels:  # one y scale for (b) and (c), so their drifts compare by eye
        ax.set_ylim(lims[0] - pad, lims[1] + pad)
    fig.suptitle(title)
    return c.save_figure(fig, path)


def run(ctx: c.Context) -> dict[str, Any]:
    """Train both arms; write paper_fig1.png and summary.json; return the summary."""
    hp = hyperparameters(ctx)
    data, desc = c.load_data(ctx)
    data = c.standardize(data)
    desc += "; paper-fig1 then divides by the overall train std (to std 1)"
    arms = {
        name: train_arm(name, data, hp, ctx.seed, ctx.progress)
        for name in ("baseline", "batchnorm")
    }
    target = arms["baseline"]["final_acc"]
    for arm in arms.values():
        arm["steps_to_target"] = steps_to(arm["curves"], target)
    ctx.out.mkdir(parents=True, exist_ok=True)
    png = plot(
        arms,
        ctx.out / "paper_fig1.png",
        f"Ioffe & Szegedy 2015, Figure 1, on {ctx.data}: 3x100 sigmoid, batch "
        f"{BATCH_SIZE}, SGD lr {hp['learning_rate']:g}",
    )
    bn, base = arms["batchnorm"], arms["baseline"]
    faster = bn["steps_to_target"] is not None and bn["steps_to_target"] < (
        base["steps_to_target"] or np.inf
    )
    summary = {
        "experiment": NAME,
        "data": desc,
        "scale": ctx.scale,
        "hyperparameters": hp,
        "target_acc": target,
        "arms": arms,
        "figures": [png.name],
        "steps_to_target": {n: a["steps_to_target"] for n, a in arms.items()},
        "percentile_drift": {n: a["percentile_drift"] for n, a in arms.items()},
        "batchnorm_reaches_target_faster": bool(faster),
        "batchnorm_drifts_less": bn["percentile_drift"]["mean"] < base["percentile_drift"]["mean"],
    }
    c.write_summary(ctx.out, summary)
    return summary


def table(summary: dict[str, Any]) -> str:
    """One row per arm, then the stated choices."""
    rows = [
        [
            n,
            a["final_acc"],
            a["steps_to_target"],
            a["percentile_drift"]["mean"],
            *(f"{v:.2f}" for v in a["percentiles_start"]),
            *(f"{v:.2f}" for v in a["percentiles_end"]),
        ]
        for n, a in summary["arms"].items()
    ]
    header = [
        "arm",
        "final_acc",
        f"steps to {summary['target_acc']:.3f}",
        "drift (mean)",
        "p15@1st",
        "p50@1st",
        "p85@1st",
        "p15@end",
        "p50@end",
        "p85@end",
    ]
    choices = "\n".join(f"  {k}: {v}" for k, v in CHOICES.items())
    return c.format_table(rows, header) + "\n\nChoices the paper leaves open:\n" + choices
