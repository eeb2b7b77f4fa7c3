"""The "Done when" grid: every normalization's fused route against PyTorch, in one run.

    python benchmarks/bench_norms.py [--threads 1] [--repeats 7] [--rounds 3] [--reference]
        [--json F] [--md F]

For every registered normalization with a fused route, forward and backward, float32 and
float64, at the transformer-like (16384, 768) and (4096, 1024) for the (N, D) layers and
the conv-like (64, 64, 56, 56) and (256, 256, 14, 14) for the (N, C, H, W) ones (layer
norm over (C, H, W) among them; group norm with 32 groups), and batch norm at (100, 500)
too (its per-call overhead): the median time of the fused
route and of PyTorch's CPU kernels (``normgrad.tools.bench.run_norm``, both on the same
arrays, same thread count, checked to agree first), their ratio (fused / torch, the
goal <= 0.7, the requirement <= 1.0), and the fused route's achieved GB/s and its ratio to
the two-pass memory floor measured against this run's copy bandwidth. Prints a markdown
table (and writes it with ``--md``); ``--json`` keeps every record.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from normgrad.cli._args import positive_int
from normgrad.norms import registry
from normgrad.tools import bench, timing


def grid(names, dtypes, threads: int, warmup: int, repeats: int, reference: bool, rounds: int = 1):
    records = []
    for name in names:
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        shapes = bench.default_shapes(name)
        if name == "batchnorm":  # the grid's (N, D) shapes, and the small call
            shapes = ((100, 500), *bench.ROW_SHAPES)
        records += bench.run_norm(
            name,
            shapes,
            dtypes,
            warmup=warmup,
            repeats=repeats,
            threads=threads,
            with_reference=reference,
            rounds=rounds,
        )
    return records


def table(records) -> str:
    t = {(r.op, r.impl, r.dtype, tuple(r.shape)): r for r in records}
    lines = [
        "| norm | shape | dtype | fwd fused ms | fwd torch ms | fwd ratio | fwd GB/s | fwd x floor "
        "| bwd fused ms | bwd torch ms | bwd ratio | bwd GB/s | bwd x floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cells = sorted(
        {(r.op.rsplit("_", 1)[0], r.dtype, tuple(r.shape)) for r in records if r.op != "copy"}
    )
    worst = 0.0
    for name, dtype, shape in cells:
        row = [name, "x".join(map(str, shape)), dtype]
        copy = t.get(("copy", "numpy", dtype, shape))
        for direction in ("forward", "backward"):
            fused = t.get((f"{name}_{direction}", "fused", dtype, shape))
            torch = t.get((f"{name}_{direction}", "torch", dtype, shape))
            if fused is None:
                row += ["", "", "", "", ""]
                continue
            gbps, floor = bench.bandwidth(fused, copy.median_s if copy else None)
            ratio = fused.median_s / torch.median_s if torch else float("nan")
            worst = max(worst, ratio)
            mark = "**" if ratio > 1.0 else ""
            row += [
                f"{fused.median_s * 1e3:.2f}",
                f"{torch.median_s * 1e3:.2f}" if torch else "",
                f"{mark}{ratio:.2f}{mark}",
                f"{gbps:.1f}",
                "" if floor is None else f"{floor:.2f}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        f"ratio: fused median / torch median (<= 0.7 the goal, <= 1.0 required; bold: above "
        f"1.0). Worst ratio in this run: {worst:.2f}. GB/s: the two-pass byte count (3 arrays "
        "of x's size forward, 5 backward) / median; x floor: median / those bytes at this "
        "run's copy bandwidth."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    fused = [s.name for s in registry.SPECS if s.fused is not None]
    ap.add_argument("--norms", default=",".join(fused), help="comma-separated (default: all)")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="alternate fused and torch this many times per cell; each keeps its median round",
    )
    ap.add_argument("--reference", action="store_true", help="also time the NumPy reference")
    ap.add_argument("--json", help="write every record here")
    ap.add_argument("--md", help="write the markdown table here")
    args = ap.parse_args(argv)
    records = grid(
        args.norms.split(","),
        [d.strip() for d in args.dtypes.split(",")],
        args.threads,
        args.warmup,
        args.repeats,
        args.reference,
        args.rounds,
    )
    text = (
        f"threads: {args.threads}; per cell and side, the median of {args.rounds} rounds "
        f"(the sides alternate), each the median of {args.repeats} samples (one call, or calls "
        f"back to back for {timing.SAMPLE_S * 1e3:g} ms), after at least {args.warmup} "
        f"warm-up calls and {timing.WARMUP_S} s; each side after {timing.SETTLE_S} s idle\n\n"
    )
    text += table(records)
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in records], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
