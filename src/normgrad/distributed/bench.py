"""Measure what synchronization costs: ``mpiexec -n P python -m normgrad.distributed.bench``.

On every rank of the job, with D features and ROWS rows per rank (default D = 1024,
256 rows, float64), it times:

- ``layer``: one batch-norm layer's train-mode forward and backward, local
  (``batchnorm_forward`` + ``batchnorm_backward_alt`` on this rank's rows) and
  synchronized (``sync_batchnorm_forward`` + ``_backward``: one all-reduce each way);
- ``step``: one ``DistributedSolver`` step of a ``FullyConnectedNet([D, D])`` on D
  inputs, batch ROWS per rank, with local and with sync batch norm (the forward and
  backward passes, the parameter all-reduce, Adam);
- ``allreduce``: the collectives alone, for the cost model: SUM of 1 value, of 2D
  values (the backward's), of the parameters (the step's), and the CHAN merge of
  2D + 1 values (the forward's); and one ``chan_merge`` call in this process.

Every time is a median over repeats after a warm-up, each repeat started together
(an all-reduce first) and taken as the slowest rank's (the step waits for it). Rank 0
prints a table and, with ``--json FILE``, writes the numbers (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from normgrad.distributed.comm import world
from normgrad.norms import batch, sync, sync_comm
from normgrad.norms.sync_comm import CHAN, MAX, SUM, Communicator


def _timed(comm: Communicator, fn: Callable[[], Any], repeats: int, inner: int = 1) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` blocks of ``inner`` calls, each
    block started together on every rank, as the slowest rank saw it."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        comm.allreduce(np.zeros(1), SUM)  # start together
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    mine = np.array([np.median(times)])
    return float(comm.allreduce(mine, MAX)[0])


def layer_times(comm: Communicator, D: int, rows: int, repeats: int) -> dict[str, float]:
    """Seconds per forward + backward of one layer, local and synchronized."""
    rng = np.random.default_rng(comm.rank)
    x = 5 * rng.standard_normal((rows, D)) + 12
    gamma, beta, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal(x.shape)

    def local() -> None:
        _, c = batch.batchnorm_forward(x, gamma, beta, {"mode": "train"})
        batch.batchnorm_backward_alt(dout, c)

    def synced() -> None:
        _, c = sync.sync_batchnorm_forward(x, gamma, beta, {"mode": "train"}, comm)
        sync.sync_batchnorm_backward(dout, c)

    return {
        "local": _timed(comm, local, repeats, 5),
        "sync": _timed(comm, synced, repeats, 5),
    }


def step_times(comm: Communicator, D: int, rows: int, repeats: int) -> dict[str, Any]:
    """Seconds per DistributedSolver step of FullyConnectedNet([D, D]), local and sync."""
    from normgrad.distributed.solver import DistributedSolver
    from normgrad.models.fc_net import FullyConnectedNet

    rng = np.random.default_rng(0)  # the same data on every rank
    n = 4 * rows * comm.size
    data = {
        "X_train": rng.standard_normal((n, D)),
        "y_train": rng.integers(0, 10, n),
        "X_val": rng.standard_normal((20, D)),
        "y_val": rng.integers(0, 10, 20),
    }
    out: dict[str, Any] = {}
    for name, norm in (("local", "batchnorm"), ("sync", "sync_batchnorm")):
        np.random.seed(0)  # noqa: NPY002  (the course's generator: the same model everywhere)
        model = FullyConnectedNet(
            [D, D], input_dim=D, num_classes=10, normalization=norm, dtype=np.float64
        )
        solver = DistributedSolver(
            model,
            data,
            comm=comm,
            update_rule="adam",
            optim_config={"learning_rate": 1e-4},
            batch_size=rows * comm.size,
            verbose=False,
        )
        out[name] = _timed(comm, solver._step, repeats)
        out["parameters"] = int(sum(w.size for w in model.params.values()))
    return out


def allreduce_times(comm: Communicator, D: int, params: int, repeats: int) -> dict[str, float]:
    """Seconds per collective (the cost model's terms) and per merge call."""
    rec = sync._local_moments(np.random.default_rng(comm.rank).standard_normal((4, D)))
    grads = np.ones(params + 1)
    out = {
        "sum_1": _timed(comm, lambda: comm.allreduce(np.ones(1), SUM), repeats, 20),
        "sum_2D": _timed(comm, lambda: comm.allreduce(np.ones(2 * D), SUM), repeats, 20),
        "chan_2D+1": _timed(comm, lambda: comm.allreduce(rec, CHAN), repeats, 20),
        "sum_params": _timed(comm, lambda: comm.allreduce(grads, SUM), repeats, 2),
    }
    t0 = time.perf_counter()
    for _ in range(200):
        sync_comm.chan_merge(rec, rec)
    out["merge_call"] = (time.perf_counter() - t0) / 200
    acc = np.zeros_like(grads)
    t0 = time.perf_counter()
    for _ in range(5):
        np.add(acc, grads, out=acc)
    out["add_params"] = (time.perf_counter() - t0) / 5  # the reduction's own arithmetic
    return out


def measure(D: int = 1024, rows: int = 256, repeats: int = 5) -> dict[str, Any]:
    """Every measurement on this job's ranks (see the module docstring)."""
    comm = world()
    step = step_times(comm, D, rows, repeats)
    return {
        "ranks": comm.size,
        "D": D,
        "rows_per_rank": rows,
        "layer": layer_times(comm, D, rows, repeats),
        "step": step,
        "allreduce": allreduce_times(comm, D, step["parameters"], repeats),
        "bytes_per_layer": {"forward": 8 * (2 * D + 1), "backward": 8 * 2 * D},
        "bytes_parameters": 8 * (step["parameters"] + 1),
    }


# ---- the cost model ---------------------------------------------------------------------


def calibrate(one: dict[str, Any], two: dict[str, Any]) -> dict[str, float]:
    """The model's constants from a 1-rank and a 2-rank measurement (same D and rows).

    On 2 ranks an all-reduce is one exchange: ``sum_1`` is the latency alpha, the extra
    time of the 2D-value sum over the 1-value one is 2D * 8 bytes * beta, and the CHAN
    merge's extra time over the sum of (nearly) the same size is gamma, its operator.
    From 1 rank: the layer's and the step's compute. From 2 ranks, the sync layer's
    extra local work (its second centring pass, x - mu with the whole batch's mean):
    its overhead over local batch norm less its two all-reduces.
    """
    D = one["D"]
    a2 = two["allreduce"]
    alpha = a2["sum_1"]
    beta = max(a2["sum_2D"] - alpha, 0.0) / (16 * D)
    extra = two["layer"]["sync"] - two["layer"]["local"] - a2["sum_2D"] - a2["chan_2D+1"]
    return {
        "alpha_shm": alpha,
        "beta_shm": beta,
        "gamma_merge": max(a2["chan_2D+1"] - a2["sum_2D"], one["allreduce"]["merge_call"]),
        "add_per_byte": one["allreduce"]["add_params"] / one["bytes_parameters"],
        "layer_local": one["layer"]["local"],
        "layer_extra": max(extra, 0.0),
        "step_local": one["step"]["local"],
    }


def predict(
    c: dict[str, float], P: int, D: int, params: int, alpha: float, beta: float, layers: int
) -> dict[str, float]:
    """Seconds per step on P ranks over a network of latency ``alpha`` (s) and inverse
    bandwidth ``beta`` (s/byte), with ``layers`` batch-norm layers of D features.

    Per layer: forward ceil(log2 P) rounds of (alpha + 8(2D+1) beta + gamma) (the CHAN
    record is one element: it cannot be split), backward ceil(log2 P) rounds of
    (alpha + 16 D beta), plus the extra local work. Parameters (S = 8(params + 1) bytes):
    reduce-scatter + allgather, 2 log2 P alpha + 2 (P-1)/P S beta + (P-1)/P S add.
    """
    rounds = math.ceil(math.log2(P)) if P > 1 else 0
    fwd = rounds * (alpha + 8 * (2 * D + 1) * beta + c["gamma_merge"])
    bwd = rounds * (alpha + 16 * D * beta)
    layer = fwd + bwd + (c["layer_extra"] if P > 1 else 0.0)
    S = 8 * (params + 1)
    frac = (P - 1) / P
    grads = 2 * rounds * alpha + 2 * frac * S * beta + frac * S * c["add_per_byte"]
    return {
        "layer_forward": fwd,
        "layer_backward": bwd,
        "layer_overhead": layer,
        "parameters": grads,
        "step_local": c["step_local"] + grads,
        "step_sync": c["step_local"] + grads + layers * layer,
    }


def format_report(r: dict[str, Any]) -> str:
    ms = 1e3
    lay, st, ar = r["layer"], r["step"], r["allreduce"]
    return "\n".join(
        [
            f"{r['ranks']} rank(s), D = {r['D']}, {r['rows_per_rank']} rows per rank (float64)",
            f"layer fwd+bwd: local {lay['local'] * ms:.3f} ms, sync {lay['sync'] * ms:.3f} ms "
            f"(overhead {(lay['sync'] - lay['local']) * ms:.3f} ms)",
            f"solver step FC[{r['D']}, {r['D']}]: local {st['local'] * ms:.1f} ms, sync "
            f"{st['sync'] * ms:.1f} ms ({st['parameters']} parameters)",
            f"allreduce: 1 value {ar['sum_1'] * 1e6:.1f} us, 2D sum {ar['sum_2D'] * 1e6:.1f} us, "
            f"2D+1 chan {ar['chan_2D+1'] * 1e6:.1f} us, parameters {ar['sum_params'] * ms:.2f} ms;"
            f" one chan_merge call {ar['merge_call'] * 1e6:.1f} us",
        ]
    )


def format_model(one: dict[str, Any], two: dict[str, Any], alpha: float, beta: float) -> str:
    """The calibrated constants, then one row per P from 8 to 1024 (milliseconds)."""
    c = calibrate(one, two)
    D, params = one["D"], one["step"]["parameters"]
    lines = [
        f"calibrated: alpha_shm {c['alpha_shm'] * 1e6:.1f} us, beta_shm "
        f"{c['beta_shm'] * 1e9:.3f} ns/B, gamma_merge {c['gamma_merge'] * 1e6:.1f} us, add "
        f"{c['add_per_byte'] * 1e9:.3f} ns/B, layer {c['layer_local'] * 1e3:.3f} ms (+"
        f"{c['layer_extra'] * 1e3:.3f} ms sync's local work), step {c['step_local'] * 1e3:.1f} ms",
        f"network: alpha {alpha * 1e6:g} us, bandwidth {1 / beta / 1e9:g} GB/s; D = {D}, "
        f"{params} parameters, 2 batch-norm layers",
    ]
    lines.append(
        "P     fwd ms  bwd ms  layer ms  params ms  step local ms  step sync ms  sync/local"
    )
    for k in range(3, 11):
        P = 2**k
        m = predict(c, P, D, params, alpha, beta, 2)
        lines.append(
            f"{P:<5} {m['layer_forward'] * 1e3:6.3f}  {m['layer_backward'] * 1e3:6.3f}  "
            f"{m['layer_overhead'] * 1e3:8.3f}  {m['parameters'] * 1e3:9.2f}  "
            f"{m['step_local'] * 1e3:13.1f}  {m['step_sync'] * 1e3:12.1f}  "
            f"{m['step_sync'] / m['step_local']:10.4f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from normgrad.distributed import faults

    p = argparse.ArgumentParser(prog="python -m normgrad.distributed.bench")
    p.add_argument("--D", type=int, default=1024)
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the numbers here (rank 0)")
    p.add_argument(
        "--model",
        nargs=2,
        metavar=("ONE.json", "TWO.json"),
        help="no measuring: print the cost model for 8 to 1024 ranks, calibrated on a "
        "1-rank and a 2-rank --json",
    )
    p.add_argument("--alpha", type=float, default=5e-6, help="network latency, s (5e-6)")
    p.add_argument(
        "--bandwidth", type=float, default=12.5e9, help="network bandwidth, B/s (12.5e9)"
    )
    args = p.parse_args(argv)
    if args.model:
        one, two = (json.loads(open(f).read()) for f in args.model)
        print(format_model(one, two, args.alpha, 1.0 / args.bandwidth))
        return 0

    def work() -> int:
        r = measure(args.D, args.rows, args.repeats)
        if world().rank == 0:
            print(format_report(r), flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(r, f, indent=2)
        return 0

    return faults.guard(work, command="normgrad.distributed.bench")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
