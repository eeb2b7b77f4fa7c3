"""Naive vs fast (im2col) convolution, forward + backward: the issue-3 speed claim.

    .venv/bin/python benchmarks/bench_conv.py [--repeats 7] [--threads 1] [--json out.json]

The same measurement as ``normgrad bench --op conv`` (see ``normgrad.tools.bench_conv``): x
(50, 3, 32, 32), 32 filters of 3x3, stride 1, pad 1, float64; medians after warm-up;
fast and naive are checked to agree (< 1e-9) before anything is timed. Exits 1 if the
fast forward + backward is not at least ``--min-speedup`` times faster than naive.
"""

from __future__ import annotations

import argparse
import sys

from normgrad.tools import bench, bench_conv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of the fast path")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    parser.add_argument("--naive-repeats", type=int, default=3, help="timed naive calls")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--no-torch", action="store_true", help="skip F.conv2d")
    parser.add_argument("--min-speedup", type=float, default=20.0)
    parser.add_argument("--json", help="write the records to this file")
    args = parser.parse_args(argv)

    records, agree = bench_conv.run(
        warmup=args.warmup,
        repeats=args.repeats,
        naive_repeats=args.naive_repeats,
        blas_threads=args.threads,
        with_torch=not args.no_torch,
    )
    print(bench_conv.format_report(records, agree))
    if args.json:
        bench.write_json(records, args.json)
        print(f"wrote {args.json}")
    t = {(r.op, r.impl): r.median_s for r in records}
    speedup = t["conv_forward_backward", "naive"] / t["conv_forward_backward", "fast"]
    ok = speedup >= args.min_speedup
    print(
        f"\nfast forward+backward is {speedup:.1f}x faster than naive "
        f"({'meets' if ok else 'MISSES'} the {args.min_speedup:g}x target)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
