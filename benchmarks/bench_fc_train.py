"""Training speed: normgrad's FullyConnectedNet against the same torch.nn model, on CPU.

    python benchmarks/bench_fc_train.py [--steps 10] [--repeats 7] [--warmup 5] [--json F]

The model is a FullyConnectedNet [512, 512, 512] with batch norm, float32, trained with
Adam (lr 1e-3) on minibatches of 256 CIFAR-shaped random rows (3072 features, 10
classes). One training step is forward + backward + an Adam update of every parameter:

- ours: ``model.loss(X, y)`` then ``normgrad.optim.adam`` per parameter (what Solver does);
- torch: Linear-BatchNorm1d-ReLU x 3 - Linear, CrossEntropyLoss, torch.optim.Adam,
  ``zero_grad(); loss.backward(); step()``.

Both run in this process with the same thread count: torch.set_num_threads is set to the
number of threads NumPy's BLAS uses (threadpoolctl). Rounds alternate ours / torch so
machine load hits both alike; each round times ``--steps`` steps, and the median round
gives the seconds per step. Then each side is profiled by category (affine/matmul, batch
norm, ReLU, loss, Adam, rest): ours by timing the layer functions the net calls, torch
with torch.profiler's self CPU time per operator.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import normgrad.models.blocks as lu_module
import normgrad.models.fc_net as fc_module
from normgrad.classifiers.fc_net import FullyConnectedNet
from normgrad.ops.activations import ACTIVATIONS
from normgrad.optim import adam

D, C, HIDDEN, BATCH = 3 * 32 * 32, 10, [512, 512, 512], 256


def blas_threads() -> int:
    """Threads of the BLAS NumPy loaded (1 if threadpoolctl cannot tell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return 1
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else 1


class OursStep:
    """One Solver-style step of normgrad's net: loss and grads, then Adam per parameter."""

    def __init__(self, seed: int = 0) -> None:
        np.random.seed(seed)  # noqa: NPY002  (the net draws from the global generator)
        self.model = FullyConnectedNet(
            HIDDEN,
            input_dim=D,
            num_classes=C,
            normalization="batchnorm",
            weight_scale=2e-2,
            dtype=np.float32,
        )
        self.configs: dict[str, dict[str, Any]] = {
            p: {"learning_rate": 1e-3} for p in self.model.params
        }

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.model.loss(X, y)
        for p, w in self.model.params.items():
            self.model.params[p], self.configs[p] = adam(w, grads[p], self.configs[p])
        return loss


class TorchStep:
    """One step of the equivalent torch.nn model with torch.optim.Adam."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        layers: list[torch.nn.Module] = []
        dims = [D, *HIDDEN]
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [torch.nn.Linear(a, b), torch.nn.BatchNorm1d(b), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(dims[-1], C))
        self.model = torch.nn.Sequential(*layers).train()
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def __call__(self, X: torch.Tensor, y: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(X), y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def time_rounds(
    sides: dict[str, tuple[Callable, list]], warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds per step, one value per round; rounds alternate between the sides."""
    for step, batches in sides.values():
        for X, y in batches[:warmup]:
            step(X, y)
    per_step: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for name, (step, batches) in sides.items():
            start = time.perf_counter()
            for X, y in batches:
                step(X, y)
            per_step[name].append((time.perf_counter() - start) / len(batches))
    return per_step


# Category of each function FullyConnectedNet and layer_utils call, by name.
_OURS_CATEGORIES = {
    "affine_forward": "affine (matmul + bias)",
    "affine_backward": "affine (matmul + bias)",
    "batchnorm_forward": "batch norm",
    "batchnorm_backward_alt": "batch norm",
    "relu_forward": "relu",
    "relu_backward": "relu",
    "softmax_loss": "softmax loss",
}


def profile_ours(step: OursStep, batches: list) -> dict[str, float]:
    """Milliseconds per step by category, timing the layer functions the net calls."""
    spent: dict[str, float] = defaultdict(float)
    children: list[float] = []  # time spent in timed callees of each active timed call

    def timed(fn: Callable, category: str) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            children.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                spent[category] += elapsed - children.pop()  # exclusive time
                if children:
                    children[-1] += elapsed

        return wrapper

    patched: list[tuple[Any, str, Any]] = []
    for module in (fc_module, lu_module):
        for name, category in _OURS_CATEGORIES.items():
            if hasattr(module, name):
                patched.append((module, name, getattr(module, name)))
                setattr(module, name, timed(getattr(module, name), category))
    blocks = dict(lu_module.FC_BLOCKS)
    bn = blocks["batchnorm"]
    lu_module.FC_BLOCKS["batchnorm"] = dataclasses.replace(
        bn, forward=timed(bn.forward, "batch norm"), backward=timed(bn.backward, "batch norm")
    )
    acts = dict(ACTIVATIONS)
    ACTIVATIONS["relu"] = tuple(timed(f, "relu") for f in acts["relu"])  # type: ignore[assignment]
    global adam
    plain_adam = adam
    adam = timed(plain_adam, "adam update")
    try:
        start = time.perf_counter()
        for X, y in batches:
            step(X, y)
        total = time.perf_counter() - start
    finally:
        adam = plain_adam
        lu_module.FC_BLOCKS.update(blocks)
        ACTIVATIONS.update(acts)
        for module, name, fn in patched:
            setattr(module, name, fn)
    out = {k: 1e3 * v / len(batches) for k, v in sorted(spent.items())}
    out["rest (python, casts, bookkeeping)"] = 1e3 * (total - sum(spent.values())) / len(batches)
    out["total"] = 1e3 * total / len(batches)
    return out


def _torch_category(op: str) -> str:
    if any(k in op for k in ("addmm", "aten::mm", "matmul", "linear", "aten::t")):
        return "affine (matmul + bias)"
    if "batch_norm" in op:
        return "batch norm"
    if "relu" in op or "threshold" in op or "clamp_min" in op:  # relu runs as clamp_min
        return "relu"
    if any(k in op for k in ("log_softmax", "nll_loss", "cross_entropy")):
        return "softmax loss"
    # torch.optim.Adam's CPU loop: lerp_ (m), mul_ + addcmul_ (v), sqrt, div, add_ and
    # addcdiv_ (the step). Autograd's gradient accumulation also uses add_; it is small.
    adam_ops = (
        "lerp_",
        "addcmul_",
        "addcdiv_",
        "aten::sqrt",
        "aten::div",
        "aten::mul_",
        "aten::add_",
        "_foreach",
        "Optimizer",
    )
    if any(k in op for k in adam_ops):
        return "adam update"
    return "rest (python, casts, bookkeeping)"


def profile_torch(step: TorchStep, batches: list) -> dict[str, float]:
    """Milliseconds per step by category: torch.profiler self CPU time per operator."""
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for X, y in batches:
            step(X, y)
    total = time.perf_counter() - start
    spent: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith("ProfilerStep"):
            continue
        spent[_torch_category(event.key)] += event.self_cpu_time_total / 1e6
    out = {k: 1e3 * v / len(batches) for k, v in sorted(spent.items())}
    out["total (with profiler overhead)"] = 1e3 * total / len(batches)
    return out


def run(
    steps: int, repeats: int, warmup: int, threads: int | None, profile: bool
) -> dict[str, Any]:
    threads = threads or blas_threads()
    if threads != blas_threads():
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    pool_X = rng.standard_normal((4 * BATCH, D), dtype=np.float32)
    pool_y = rng.integers(0, C, 4 * BATCH)
    idx = [rng.integers(0, len(pool_X), BATCH) for _ in range(max(steps, warmup))]
    np_batches = [(pool_X[i], pool_y[i]) for i in idx]
    torch_batches = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in np_batches]
    ours, theirs = OursStep(), TorchStep()
    rounds = time_rounds(
        {"normgrad": (ours, np_batches[:steps]), "torch": (theirs, torch_batches[:steps])},
        warmup,
        repeats,
    )
    result: dict[str, Any] = {
        "threads": threads,
        "batch": BATCH,
        "steps_per_round": steps,
        "repeats": repeats,
        "torch_version": torch.__version__,
    }
    for name, values in rounds.items():
        med = statistics.median(values)
        result[name] = {
            "ms_per_step": 1e3 * med,
            "samples_per_s": BATCH / med,
            "rounds_ms": [round(1e3 * v, 2) for v in values],
        }
    result["ratio_ours_over_torch"] = (
        result["normgrad"]["samples_per_s"] / result["torch"]["samples_per_s"]
    )
    # Rounds i of both sides ran back to back, under about the same machine load.
    result["paired_ratio_median"] = statistics.median(
        t / o for o, t in zip(rounds["normgrad"], rounds["torch"], strict=True)
    )
    if profile:
        result["profile_ms_per_step"] = {
            "normgrad": profile_ours(ours, np_batches[:steps]),
            "torch": profile_torch(theirs, torch_batches[:steps]),
        }
    return result


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"FullyConnectedNet {HIDDEN} + batch norm, float32, batch {BATCH}, Adam; "
        f"{r['threads']} thread(s) for NumPy's BLAS and torch; median of "
        f"{r['repeats']} rounds of {r['steps_per_round']} steps",
        f"{'':10}{'ms/step':>10}{'samples/s':>12}",
    ]
    for name in ("normgrad", "torch"):
        lines.append(f"{name:10}{r[name]['ms_per_step']:10.1f}{r[name]['samples_per_s']:12.0f}")
    ratio = r["ratio_ours_over_torch"]
    verdict = "meets" if ratio >= 0.8 else "MISSES"
    lines.append(
        f"ours / torch = {ratio:.2f} ({verdict} the 0.8 target); median of the "
        f"per-round ratios {r['paired_ratio_median']:.2f}"
    )
    if "profile_ms_per_step" in r:
        p = r["profile_ms_per_step"]
        cats = sorted({k for side in p.values() for k in side if not k.startswith("total")})
        lines.append(f"\nwhere the time goes (ms per step){'':6}{'normgrad':>10}{'torch':>10}")
        for cat in cats:
            a, b = p["normgrad"].get(cat, 0.0), p["torch"].get(cat, 0.0)
            lines.append(f"  {cat:36}{a:10.2f}{b:10.2f}")
        lines.append(
            f"  {'total':36}{p['normgrad']['total']:10.2f}"
            f"{p['torch']['total (with profiler overhead)']:10.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per side")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per side first")
    ap.add_argument("--threads", type=int, help="default: the threads NumPy's BLAS uses")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    result = run(args.steps, args.repeats, args.warmup, args.threads, not args.no_profile)
    print(format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
