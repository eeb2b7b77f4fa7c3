"""What the training-step benchmarks share: timing rounds, thread setup, and profiles.

``bench_fc_train.py`` and ``bench_cnn_train.py`` time one Solver-style step of a
normgrad model (``model.loss`` then ``normgrad.optim.adam`` per parameter) against the
equivalent ``torch.nn`` model with ``torch.optim.Adam``, in one process, with one thread
count for NumPy's BLAS, numba and torch. Three sides alternate round by round so machine
load hits them alike:

- ``normgrad``: the models as they run by default (fused kernels: numba installed);
- ``reference``: the same model and step with ``normgrad.kernels.use_fused(False)``, the
  NumPy reference routes (the "before" of the fused kernels);
- ``torch``.

Profiles by category: ours by timing the functions the step calls (exclusive of timed
callees), torch by ``torch.profiler`` self CPU time per operator.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from normgrad import kernels
from normgrad.kernels import choose
from normgrad.optim import adam
from normgrad.tools import timing


def blas_threads() -> int:
    """Threads of the BLAS NumPy loaded (1 if threadpoolctl cannot tell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return 1
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else 1


def set_threads(threads: int | None) -> int:
    """One thread count for BLAS, numba and torch; returns it."""
    threads = threads or blas_threads()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover
        pass
    return threads


class OursStep:
    """One Solver-style step: loss and grads, then Adam per parameter (``fused``: the
    default routes; False: ``use_fused(False)`` around the step)."""

    def __init__(self, model: Any, fused: bool = True) -> None:
        self.model = model
        self.fused = fused
        self.configs = {p: {"learning_rate": 1e-3} for p in model.params}

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        previous = kernels.use_fused(self.fused)
        try:
            loss, grads = self.model.loss(X, y)
            for p, w in self.model.params.items():
                self.model.params[p], self.configs[p] = adam(w, grads[p], self.configs[p])
        finally:
            kernels.use_fused(previous)
        return float(loss)


class TorchStep:
    """One step of a torch.nn model with CrossEntropyLoss and torch.optim.Adam."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.train()
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def __call__(self, X: torch.Tensor, y: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(X), y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


#: Untimed steps at the start of each round, after the idle: the first one or two steps
#: after 0.3 s of sleep run 1.3-1.8x slower than the steady state on this VM (idle vCPUs
#: descheduled, caches and thread pools cold), for either side. A training loop runs its
#: steps back to back, so the steady state is what a round times; ``--lead 0`` times the
#: cold steps too (docs in benchmarks/README.md give both).
LEAD_STEPS = 2


def time_rounds(
    sides: dict[str, tuple[Callable, list]], warmup: int, repeats: int, lead: int = LEAD_STEPS
):
    """Seconds per step, one value per round; the sides take turns
    (``normgrad.tools.timing.alternate``). Each round idles ``timing.SETTLE_S`` (long
    enough for the pools of the side that ran before, OpenBLAS's and torch's OpenMP
    workers, to go to sleep), runs ``lead`` untimed steps, then times its batches.
    Within a round each side pays for its own pools' spinning, as it would alone."""
    for step, batches in sides.values():
        for X, y in batches[:warmup]:
            step(X, y)

    def block(step: Callable, batches: list) -> float:
        for X, y in batches[:lead]:
            step(X, y)
        start = time.perf_counter()
        for X, y in batches:
            step(X, y)
        return (time.perf_counter() - start) / len(batches)

    blocks = {name: functools.partial(block, *side) for name, side in sides.items()}
    return timing.alternate(blocks, repeats, timing.SETTLE_S)


def summarize(rounds: dict[str, list[float]], batch: int) -> dict[str, Any]:
    """Median ms/step and samples/s per side, and the paired ratios to torch."""
    out: dict[str, Any] = {}
    for name, values in rounds.items():
        med = statistics.median(values)
        out[name] = {
            "ms_per_step": 1e3 * med,
            "samples_per_s": batch / med,
            "rounds_ms": [round(1e3 * v, 2) for v in values],
        }
    for name in rounds:
        if name != "torch":
            pairs = [t / o for o, t in zip(rounds[name], rounds["torch"], strict=True)]
            out[name]["throughput_vs_torch"] = (
                out["torch"]["ms_per_step"] / out[name]["ms_per_step"]
            )
            out[name]["paired_ratio_median"] = statistics.median(pairs)
    return out


@contextmanager
def timed(targets: list[tuple[Any, str, str]], spent: dict[str, float]):
    """Replace ``module.name`` by a timer charging category ``cat`` (exclusive time)."""
    children: list[float] = []
    saved = []

    def wrap(fn: Callable, category: str) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            children.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                spent[category] += elapsed - children.pop()
                if children:
                    children[-1] += elapsed

        return wrapper

    for holder, name, category in targets:
        if isinstance(holder, dict):  # a registry dict: a Block, or a (forward, backward) pair
            value = holder[name]
            if isinstance(value, tuple):
                new = tuple(wrap(f, category) for f in value)
            else:
                new = dataclasses.replace(
                    value,
                    forward=wrap(value.forward, category),
                    backward=wrap(value.backward, category),
                )
            saved.append((holder, name, value))
            holder[name] = new
        elif hasattr(holder, name):
            saved.append((holder, name, getattr(holder, name)))
            setattr(holder, name, wrap(getattr(holder, name), category))
    choose._BLOCKS.clear()  # the fused pairs are looked up again: through the timers
    try:
        yield
    finally:
        for holder, name, fn in reversed(saved):
            if isinstance(holder, dict):
                holder[name] = fn
            else:
                setattr(holder, name, fn)
        choose._BLOCKS.clear()


def profile_ours(step: OursStep, batches: list, targets: list[tuple[Any, str, str]]):
    """Milliseconds per step by category."""
    spent: dict[str, float] = defaultdict(float)
    with timed(targets, spent):
        start = time.perf_counter()
        for X, y in batches:
            step(X, y)
        total = time.perf_counter() - start
    out = {k: 1e3 * v / len(batches) for k, v in sorted(spent.items())}
    out["rest (python, casts, bookkeeping)"] = 1e3 * (total - sum(spent.values())) / len(batches)
    out["total"] = 1e3 * total / len(batches)
    return out


def profile_torch(step: TorchStep, batches: list, category: Callable[[str], str]):
    """Milliseconds per step by category: torch.profiler self CPU time per operator."""
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for X, y in batches:
            step(X, y)
    total = time.perf_counter() - start
    spent: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if not event.key.startswith("ProfilerStep"):
            spent[category(event.key)] += event.self_cpu_time_total / 1e6
    out = {k: 1e3 * v / len(batches) for k, v in sorted(spent.items())}
    out["total (with profiler overhead)"] = 1e3 * total / len(batches)
    return out


ADAM_OPS = (
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


#: torch.profiler operator names -> category, after each benchmark's own rules.
COMMON_TORCH_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("addmm", "aten::mm", "matmul", "linear", "aten::t"), "affine (matmul + bias)"),
    (("log_softmax", "nll_loss", "cross_entropy"), "softmax loss"),
    (ADAM_OPS, "adam update"),
)


def torch_categories(*rules: tuple[tuple[str, ...], str]) -> Callable[[str], str]:
    """A torch operator's profile category: the first rule (substrings, category) that
    matches, the benchmark's own ``rules`` before ``COMMON_TORCH_RULES``; else "rest"."""
    ordered = (*rules, *COMMON_TORCH_RULES)

    def category(op: str) -> str:
        for keys, name in ordered:
            if any(k in op for k in keys):
                return name
        return "rest (python, casts, bookkeeping)"

    return category


def format_report(title: str, r: dict[str, Any]) -> str:
    lines = [title, f"{'':11}{'ms/step':>10}{'samples/s':>12}{'vs torch':>10}"]
    for name in ("normgrad", "reference", "torch"):
        s = r[name]
        ratio = f"{s['throughput_vs_torch']:.2f}" if "throughput_vs_torch" in s else "1.00"
        lines.append(f"{name:11}{s['ms_per_step']:10.1f}{s['samples_per_s']:12.0f}{ratio:>10}")
    lines.append(
        "vs torch: torch's ms/step / this row's (throughput ratio, above 1 is faster); median "
        f"of the per-round ratios: normgrad {r['normgrad']['paired_ratio_median']:.2f}, "
        f"reference {r['reference']['paired_ratio_median']:.2f}"
    )
    if "profile_ms_per_step" in r:
        p = r["profile_ms_per_step"]
        cats = sorted({k for side in p.values() for k in side if not k.startswith("total")})
        lines.append(
            f"\nwhere the time goes (ms per step){'':5}"
            f"{'normgrad':>10}{'reference':>10}{'torch':>10}"
        )
        for cat in cats:
            vals = [p[s].get(cat, 0.0) for s in ("normgrad", "reference", "torch")]
            lines.append(f"  {cat:35}" + "".join(f"{v:10.2f}" for v in vals))
        tot = [
            p["normgrad"]["total"],
            p["reference"]["total"],
            p["torch"]["total (with profiler overhead)"],
        ]
        lines.append(f"  {'total':35}" + "".join(f"{v:10.2f}" for v in tot))
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Bench:
    """One training benchmark: its models, its input shape and how to read its profile."""

    title: str  # the report's first line, before the thread count
    model: Callable[[], Any]  # a fresh normgrad model (same seed every call)
    torch_model: Callable[[], torch.nn.Module]
    row_shape: tuple[int, ...]  # one input sample's shape
    classes: int
    batch: int
    targets: list[tuple[Any, str, str]]  # (module, function, category) of our profile
    torch_category: Callable[[str], str]
    steps: int = 10  # default steps per timed round
    warmup: int = 5  # default untimed steps per side

    def run(
        self,
        steps: int,
        repeats: int,
        warmup: int,
        threads: int | None,
        profile: bool,
        lead: int = LEAD_STEPS,
    ) -> dict[str, Any]:
        """Time normgrad (fused), normgrad (reference) and torch on the same minibatches."""
        threads = set_threads(threads)
        rng = np.random.default_rng(0)
        pool_X = rng.standard_normal((4 * self.batch, *self.row_shape), dtype=np.float32)
        pool_y = rng.integers(0, self.classes, 4 * self.batch)
        idx = [rng.integers(0, len(pool_X), self.batch) for _ in range(max(steps, warmup))]
        np_batches = [(np.ascontiguousarray(pool_X[i]), pool_y[i]) for i in idx]
        torch_batches = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in np_batches]
        ours = OursStep(self.model())
        ref = OursStep(self.model(), False)
        theirs = TorchStep(self.torch_model())
        rounds = time_rounds(
            {
                "normgrad": (ours, np_batches[:steps]),
                "reference": (ref, np_batches[:steps]),
                "torch": (theirs, torch_batches[:steps]),
            },
            warmup,
            repeats,
            lead,
        )
        result: dict[str, Any] = {
            "threads": threads,
            "batch": self.batch,
            "steps_per_round": steps,
            "lead_steps": lead,
            "repeats": repeats,
        }
        result.update(summarize(rounds, self.batch))
        if profile:
            result["profile_ms_per_step"] = {
                "normgrad": profile_ours(ours, np_batches[:steps], self.targets),
                "reference": profile_ours(ref, np_batches[:steps], self.targets),
                "torch": profile_torch(theirs, torch_batches[:steps], self.torch_category),
            }
        return result


def main(bench: Bench, description: str, argv: list[str] | None = None) -> int:
    """The command line both training benchmarks share."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--steps", type=int, default=bench.steps, help="steps per timed round")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per side")
    ap.add_argument("--warmup", type=int, default=bench.warmup, help="untimed steps first")
    ap.add_argument(
        "--lead", type=int, default=LEAD_STEPS, help="untimed steps after each round's idle"
    )
    ap.add_argument("--threads", type=int, help="default: the threads NumPy's BLAS uses")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    r = bench.run(
        args.steps, args.repeats, args.warmup, args.threads, not args.no_profile, args.lead
    )
    title = (
        f"{bench.title}; {r['threads']} thread(s) for BLAS, numba and torch; median of "
        f"{r['repeats']} rounds of {r['steps_per_round']} steps, each after "
        f"{r['lead_steps']} untimed"
    )
    print(format_report(title, r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0
