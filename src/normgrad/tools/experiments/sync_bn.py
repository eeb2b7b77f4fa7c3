"""``sync-bn``: local vs synchronized batch norm when every minibatch is split over 4 ranks.

Data-parallel training with 4 ranks (an mpiexec job started by this experiment) and
per-rank batches of 2, 4 and 8 rows (whole minibatches of 8, 16 and 32). Three arms,
the same ``FullyConnectedNet`` (3 hidden layers of 100 ReLUs with batch norm, weight
scale 5e-2, Adam at 1e-3), the same seeds, data and epochs:

- ``local``: ``batchnorm`` on each rank, over its own 2, 4 or 8 rows: the usual
  data-parallel batch norm (running statistics and evaluation: rank 0's);
- ``sync``: ``sync_batchnorm``: every rank normalizes by the statistics of the whole
  minibatch (one all-reduce forward, one backward, per layer and step);
- ``single``: one process, batch norm on the whole minibatch of 8, 16 or 32 rows.

``sync`` computes what ``single`` computes, to rounding, so its curves lie on top of
single's (``sync_vs_single`` in summary.json measures the gap); ``local`` normalizes
by 2 rows at per-rank batch 2, where batch norm's statistics are nearly meaningless
(with 2 rows every normalized value is -1 or +1) and its running statistics are far
from the ones it trained with, and it falls behind. The gap closes as the per-rank
batch grows.

summary.json: ``arms.<local|sync|single>.final_acc`` (the held-out accuracy at the end
of training, mean over the per-rank batches and seeds), ``final_acc_by_batch`` (per
per-rank batch), the curves, and every hyperparameter. The ranks run in
``rank_main`` (``python -m normgrad.distributed.worker``), the single arm in this
process.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from normgrad.tools.experiments import common as c

NAME = "sync-bn"
RANKS = 4
PER_RANK = (2, 4, 8)
HIDDEN = [100] * 3
WEIGHT_SCALE = 5e-2
LEARNING_RATE = 1e-3
ARMS = {"local": "batchnorm", "sync": "sync_batchnorm", "single": "batchnorm"}
_TIMEOUT = 1800.0  # seconds the ranks may take at full scale before they are stopped


def hyperparameters(ctx: c.Context) -> dict[str, Any]:
    """Every setting of this run; quick and tiny train fewer epochs, seeds and rows."""
    return {
        **c.course_settings(HIDDEN, LEARNING_RATE, WEIGHT_SCALE),
        "ranks": RANKS,
        "per_rank_batch_sizes": list(PER_RANK),
        "batch_sizes": [RANKS * b for b in PER_RANK],
        "num_epochs": ctx.pick(10, 4, 1),
        "num_train": ctx.pick(1000, 1000, 64),
        "num_seeds": ctx.pick(3, 2, 1),
        "seeds_from": ctx.seed,
        "normalization_by_arm": dict(ARMS),
    }


def _train(
    norm: str, data: dict[str, np.ndarray], batch: int, epochs: int, seed: int, comm: Any
) -> dict[str, Any]:
    """One arm at one batch and seed: the course's FC net and Solver (``DistributedSolver``
    when ``comm`` is given, with ``batch`` the whole minibatch over its ranks)."""
    from normgrad.distributed import DistributedSolver
    from normgrad.training.solver import NonFiniteLossError, Solver

    model = c.course_fc_net(HIDDEN, data, norm, WEIGHT_SCALE, seed)
    kwargs: dict[str, Any] = {
        "update_rule": "adam",
        "optim_config": {"learning_rate": LEARNING_RATE},
        "num_epochs": epochs,
        "batch_size": batch,
        "num_train_samples": None,
        "verbose": False,
        "stop_on_nonfinite": True,
    }
    solver = (
        Solver(model, data, **kwargs)
        if comm is None
        else DistributedSolver(model, data, comm=comm, **kwargs)
    )
    start = time.perf_counter()
    diverged = False
    try:
        solver.train()
    except NonFiniteLossError:
        diverged = True
    seconds = time.perf_counter() - start
    losses = [float(v) for v in solver.loss_history]
    return {
        "final_acc": float(solver.val_acc_history[-1]),
        "final_train_acc": float(solver.train_acc_history[-1]),
        "best_val_acc": float(solver.best_val_acc),
        "final_loss": float(np.mean(losses[-max(1, len(losses) // 10) :])),
        "iterations": len(losses),
        "diverged": diverged,
        "seconds": round(seconds, 3),
        "curves": {
            "loss": losses,
            "train_acc": list(solver.train_acc_history),
            "val_acc": list(solver.val_acc_history),
        },
    }


def rank_main(out: str, settings: dict[str, Any]) -> int:
    """One rank of the mpiexec job: the local and sync arms at every per-rank batch and
    seed; rank 0 writes them to ``out`` (JSON)."""
    from normgrad._internal.io import atomic_write
    from normgrad._internal.threads import blas_limit
    from normgrad.distributed import world

    comm = world()
    if comm.size != RANKS:
        raise ValueError(f"the sync-bn arms run on {RANKS} ranks; this job has {comm.size}.")
    ctx = c.Context(data=settings["data"], data_dir=settings["data_dir"], scale=settings["scale"])
    hp = hyperparameters(ctx)
    data, _ = c.load_data(ctx, hp["num_train"])
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"local": {}, "sync": {}}
    with blas_limit(1):
        for arm in runs:
            for b in PER_RANK:
                runs[arm][str(b)] = [
                    _train(ARMS[arm], data, RANKS * b, hp["num_epochs"], seed, comm)
                    for seed in settings["seeds"]
                ]
    if comm.rank == 0:
        text = json.dumps(runs)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    return 0


def _ranks(ctx: c.Context, seeds: list[int]) -> dict[str, Any]:
    """Run the local and sync arms on 4 ranks (mpiexec) and read what rank 0 wrote."""
    from normgrad.distributed import launch

    ctx.out.mkdir(parents=True, exist_ok=True)
    out = ctx.out / ".sync_bn_ranks.json"
    settings = {"data": ctx.data, "data_dir": ctx.data_dir, "scale": ctx.scale, "seeds": seeds}
    args = [
        "-m",
        "normgrad.distributed.worker",
        f"{__name__}:rank_main",
        json.dumps({"out": str(out), "settings": settings}),
    ]
    done = launch.run(RANKS, args, capture=True, timeout=_TIMEOUT)
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join((done.stderr or "").strip().splitlines()[-25:])
        raise RuntimeError(
            f"the {RANKS} ranks of the sync-bn experiment failed (exit status "
            f"{done.returncode}):\n{tail}"
        )
    runs: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return runs


def _aggregate(by_batch: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One arm: its means over the per-rank batches and seeds, and per per-rank batch."""
    keys = ("final_acc", "final_train_acc", "best_val_acc", "final_loss")
    per = {
        b: {k: float(np.mean([r[k] for r in runs])) for k in keys} for b, runs in by_batch.items()
    }
    return {
        **{k: float(np.mean([per[b][k] for b in per])) for k in keys},
        **{f"{k}_by_batch": {b: per[b][k] for b in per} for k in keys},
        "final_acc_by_seed": {b: [r["final_acc"] for r in runs] for b, runs in by_batch.items()},
        "iterations_by_batch": {b: runs[0]["iterations"] for b, runs in by_batch.items()},
        "diverged_runs": sum(r["diverged"] for runs in by_batch.values() for r in runs),
        "seconds": round(sum(r["seconds"] for runs in by_batch.values() for r in runs), 3),
    }


def _gap(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float:
    """The largest relative difference between two arms' loss curves (same seeds)."""
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        la, lb = np.asarray(ra["curves"]["loss"]), np.asarray(rb["curves"]["loss"])
        n = min(la.size, lb.size)
        if n:
            worst = max(worst, float(np.max(np.abs(la[:n] - lb[:n]) / np.abs(lb[:n]))))
    return worst


def plot(
    runs: dict[str, dict[str, list[dict[str, Any]]]], arms: dict[str, Any], path: Any, title: str
) -> Any:
    """Final held-out accuracy against the per-rank batch; held-out accuracy by epoch and
    training loss at the smallest per-rank batch (mean over seeds)."""
    plt = c.pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 11))
    styles = {"local": ("tab:red", "-o"), "sync": ("tab:blue", "-s"), "single": ("black", ":^")}
    x = np.arange(len(PER_RANK))
    small = str(PER_RANK[0])
    for name, (colour, style) in styles.items():
        y = [arms[name]["final_acc_by_batch"][str(b)] for b in PER_RANK]
        axes[0].plot(x, y, style, color=colour, label=name, markersize=7)
        group = runs[name][small]
        n = min(len(r["curves"]["val_acc"]) for r in group)
        acc = np.mean([r["curves"]["val_acc"][:n] for r in group], axis=0)
        axes[1].plot(np.arange(n), acc, style, color=colour, label=name)
        m = min(len(r["curves"]["loss"]) for r in group)
        loss = np.mean([r["curves"]["loss"][:m] for r in group], axis=0)
        window = max(1, m // 40)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        axes[2].plot(
            np.arange(window - 1, m),
            smooth,
            style[0] if name != "single" else ":",
            color=colour,
            label=name,
        )
    axes[0].set_xticks(x, [f"{b} per rank\n({RANKS * b} in all)" for b in PER_RANK])
    axes[0].set(title=f"{title}\nFinal held-out accuracy", xlabel="batch", ylabel="accuracy")
    axes[1].set(
        title=f"Held-out accuracy, {small} rows per rank", xlabel="epoch", ylabel="accuracy"
    )
    axes[1].set_ylim(0, 1.02)
    axes[2].set(
        title=f"Training loss (smoothed), {small} rows per rank",
        xlabel="iteration",
        ylabel="training loss",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    return c.save_figure(fig, path)


def run(ctx: c.Context) -> dict[str, Any]:
    """The local and sync arms on 4 ranks, the single arm here; sync_bn.png, summary.json."""
    hp = hyperparameters(ctx)
    data, desc = c.load_data(ctx, hp["num_train"])
    seeds = [ctx.seed + k for k in range(hp["num_seeds"])]
    runs = _ranks(ctx, seeds)
    runs["single"] = {
        str(b): [_train(ARMS["single"], data, RANKS * b, hp["num_epochs"], s, None) for s in seeds]
        for b in PER_RANK
    }
    arms = {name: {"normalization": ARMS[name], **_aggregate(runs[name])} for name in ARMS}
    for name in ARMS:
        arms[name]["curves_by_batch"] = {
            b: [r["curves"] for r in group] for b, group in runs[name].items()
        }
    gap = max(_gap(runs["sync"][str(b)], runs["single"][str(b)]) for b in PER_RANK)
    acc_gap = max(
        abs(
            arms["sync"]["final_acc_by_batch"][str(b)]
            - arms["single"]["final_acc_by_batch"][str(b)]
        )
        for b in PER_RANK
    )
    small = str(PER_RANK[0])
    behind = {
        b: arms["single"]["final_acc_by_batch"][str(b)]
        - arms["local"]["final_acc_by_batch"][str(b)]
        for b in PER_RANK
    }
    png = plot(
        runs,
        arms,
        ctx.out / "sync_bn.png",
        f"Sync vs local batch norm, {RANKS} ranks, 3x100 ReLU on {ctx.data}, {len(seeds)} seed(s)",
    )
    summary: dict[str, Any] = {
        "experiment": NAME,
        "data": desc,
        "scale": ctx.scale,
        "seeds": seeds,
        "hyperparameters": hp,
        "arms": arms,
        "figures": [png.name],
        "sync_vs_single": {
            "max_rel_loss_difference": gap,
            "max_final_acc_difference": acc_gap,
        },
        "local_behind_single_by_batch": {str(b): float(v) for b, v in behind.items()},
        "conclusion": (
            f"at {small} rows per rank, local batch norm ends at held-out accuracy "
            f"{arms['local']['final_acc_by_batch'][small]:.3f}, synchronized "
            f"{arms['sync']['final_acc_by_batch'][small]:.3f}, one process "
            f"{arms['single']['final_acc_by_batch'][small]:.3f}; sync tracks one process "
            f"(losses within {gap:.1e} relative, final accuracies within {acc_gap:.3f}); "
            "local falls behind by "
            + ", ".join(f"{behind[b]:.3f} at {b}" for b in PER_RANK)
            + " rows per rank"
        ),
    }
    if not math.isfinite(gap):
        summary["sync_vs_single"]["note"] = "an arm diverged"
    c.write_summary(ctx.out, summary)
    return summary


def table(summary: dict[str, Any]) -> str:
    """One row per arm and per-rank batch, then how far sync is from one process."""
    rows = []
    for name, m in summary["arms"].items():
        for b in PER_RANK:
            k = str(b)
            rows.append(
                [
                    name,
                    b,
                    RANKS * b,
                    m["iterations_by_batch"][k],
                    m["final_acc_by_batch"][k],
                    m["final_train_acc_by_batch"][k],
                    m["final_loss_by_batch"][k],
                ]
            )
    head = [
        "arm",
        "per rank",
        "minibatch",
        "iterations",
        "final_acc",
        "final_train_acc",
        "final_loss",
    ]
    gap = summary["sync_vs_single"]
    return (
        c.format_table(rows, head)
        + f"\n\nsync vs single: losses within {gap['max_rel_loss_difference']:.2e} (relative), "
        + f"final accuracies within {gap['max_final_acc_difference']:.4f}"
    )
