"""Per-call overhead of the fused routes, and their compile time, measured on their own.

    python benchmarks/bench_overhead.py [--json F] [--no-compile]

1. Validation and running-statistics bookkeeping on batch norm's fused path, each timed
   alone (best of many calls) for an ordinary (100, 500) float32 call: the quick
   validation (``kernels.batchnorm.plain_call``: the arrays, the bn_param and its running
   statistics' values) against the reference's ``batch.parse_inputs``; the bookkeeping
   (``_bnparam.blend``, the running-statistics update, and ``_bnparam.write``) against
   ``RunningStats.update`` and ``write``. The target is <= 8 us for the two together.
   The quick validations of the other fused routes are timed too.
2. Whole calls at (100, 500) float32, fused forward and backward against PyTorch's
   native batch norm kernels (the target: <= 1.25x).
3. Compile time: a fresh process with an empty numba cache directory calls every fused
   route (forward and backward, float32 and float64, train and test); a second process
   with the same directory does the same and compiles nothing. Both are timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np


def best(fn, n: int = 2000, rounds: int = 7) -> float:
    """Seconds per call: the best of ``rounds`` rounds of ``n`` calls."""
    fn()
    out = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out = min(out, (time.perf_counter() - t0) / n)
    return out


def overheads() -> dict[str, float]:
    import numba

    from normgrad.kernels import _bnparam as bnp
    from normgrad.kernels import _quick as q
    from normgrad.kernels import batchnorm as kbn
    from normgrad.norms import batch, group, layer

    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = (5 * rng.standard_normal((100, 500)) + 12).astype(np.float32)
    g, b = np.ones(500, np.float32), np.zeros(500, np.float32)
    param = {
        "mode": "train",
        "momentum": 0.9,
        "running_mean": np.zeros(500, np.float32),
        "running_var": np.ones(500, np.float32),
    }
    p = kbn.plain_call(x, g, b, param)
    assert p is not None
    mu, var = x.mean(0).astype(np.float64), x.var(0).astype(np.float64)
    stats = batch.parse_inputs(x, g, b, param).stats
    scratch: dict[str, Any] = dict(param)
    _, mean, new_var = bnp.blend(p, mu, var, 100)
    r: dict[str, float] = {
        "fused validation (plain_call)": best(lambda: kbn.plain_call(x, g, b, param)),
        "reference validation (parse_inputs)": best(lambda: batch.parse_inputs(x, g, b, param)),
        "fused bookkeeping (blend + write)": best(
            lambda: bnp.write(scratch, p, *bnp.blend(p, mu, var, 100)[1:])
        ),
        "reference bookkeeping (update + write)": best(
            lambda: stats.update(mu, var, 100).write(scratch)
        ),
        "layernorm quick validation": best(
            lambda: q.array(x) and q.param_of(g, (500,)) and q.param_of(b, (500,)) and q.eps_of({})
        ),
        "layernorm reference validation (parse_inputs)": best(
            lambda: layer.parse_inputs(x, g, b, {})
        ),
        "groupnorm reference validation (parse_inputs)": best(
            lambda: group.parse_inputs(
                x.reshape(100, 20, 25, 1),
                g[:20].reshape(1, 20, 1, 1),
                b[:20].reshape(1, 20, 1, 1),
                4,
                {},
            )
        ),
    }
    del mean, new_var
    r["fused validation + bookkeeping"] = (
        r["fused validation (plain_call)"] + r["fused bookkeeping (blend + write)"]
    )
    return r


def whole_calls() -> dict[str, float]:
    import numba
    import torch

    from normgrad.kernels import batchnorm as kbn

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    x = (5 * rng.standard_normal((100, 500)) + 12).astype(np.float32)
    g, b = np.ones(500, np.float32), np.zeros(500, np.float32)
    d = rng.standard_normal((100, 500)).astype(np.float32)
    out, cache = kbn.batchnorm_forward_fused(x, g, b, {"mode": "train"})
    tx, tg, tb, td = (torch.from_numpy(a) for a in (x, g, b, d))
    rm, rv = torch.zeros(500), torch.ones(500)
    _, sm, si = torch.ops.aten.native_batch_norm(tx, tg, tb, rm, rv, True, 0.1, 1e-5)
    with torch.no_grad():
        r = {
            "fused forward (100, 500) float32": best(
                lambda: kbn.batchnorm_forward_fused(x, g, b, {"mode": "train"}), 500
            ),
            "torch forward": best(
                lambda: torch.ops.aten.native_batch_norm(tx, tg, tb, rm, rv, True, 0.1, 1e-5), 500
            ),
            "fused backward": best(lambda: kbn.batchnorm_backward_fused(d, cache), 500),
            "torch backward": best(
                lambda: torch.ops.aten.native_batch_norm_backward(
                    td, tx, tg, rm, rv, sm, si, True, 1e-5, [True, True, True]
                ),
                500,
            ),
        }
    r["forward ratio (fused / torch)"] = r["fused forward (100, 500) float32"] / r["torch forward"]
    r["backward ratio (fused / torch)"] = r["fused backward"] / r["torch backward"]
    return r


SCRIPT = r"""
import time
t0 = time.perf_counter()
import numpy as np
from normgrad.norms import registry
from normgrad.kernels import conv, pool, rules
t_import = time.perf_counter() - t0
times = {}
for spec in registry.SPECS:
    if spec.fused is None:
        continue
    route = spec.all_routes()["fused"]
    for dtype in (np.float64, np.float32):
        for case in spec.cases:
            inputs = {k: a.astype(dtype) for k, a in case.draw(np.random.default_rng(0)).items()}
            t = time.perf_counter()
            out, cache = spec.call(route, **case.options)(*inputs.values())
            route.backward(np.ones_like(out), cache)
            times[spec.name] = times.get(spec.name, 0.0) + time.perf_counter() - t
for dtype in (np.float64, np.float32):
    t = time.perf_counter()
    x = np.ones((2, 3, 8, 8), dtype); w = np.ones((4, 3, 3, 3), dtype); b = np.zeros(4, dtype)
    out, c = conv.conv_forward_fused(x, w, b, {"stride": 1, "pad": 1})
    conv.conv_backward_fused(out, c)
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    o, pc = pool.relu_pool_forward(out, pp); pool.relu_pool_backward(o, pc)
    o, pc = pool.max_pool_forward_fused(out, pp); pool.max_pool_backward_fused(o, pc)
    pool.relu_backward_fused(out, out)
    for name in ("sgd", "sgd_momentum", "rmsprop", "adam"):
        from normgrad.training import rules as r
        r.UPDATE_RULES[name](w, w, {})
    key = "conv, pool, relu, rules"
    times[key] = times.get(key, 0.0) + time.perf_counter() - t
print(repr({"import": t_import, **times, "total": time.perf_counter() - t0}))
"""


def compile_times() -> dict[str, dict[str, float]]:
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("first process (cold cache)", "second process (warm cache)"):
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
            )
            measured = eval(r.stdout.strip().splitlines()[-1])  # noqa: S307 (our own repr)
            measured["wall, interpreter included"] = time.perf_counter() - t0
            out[label] = measured
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time runs")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"overhead_s": overheads(), "whole_calls_s": whole_calls()}
    print("per-call overhead (best of 7 rounds of 2000 calls), microseconds:")
    for k, v in result["overhead_s"].items():
        print(f"  {k:48} {v * 1e6:8.2f}")
    print("whole calls, microseconds (ratios plain):")
    for k, v in result["whole_calls_s"].items():
        print(f"  {k:48} {v if 'ratio' in k else v * 1e6:8.2f}")
    if not args.no_compile:
        result["compile_s"] = compile_times()
        print("first call of every fused route, both dtypes, seconds:")
        for label, times in result["compile_s"].items():
            print(f"  {label}:")
            for k, v in times.items():
                print(f"    {k:44} {v:8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
