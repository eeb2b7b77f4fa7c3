"""``normgrad bench``: time batch norm's routes (or convolution), against PyTorch."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from normgrad._internal.errors import UsageError
from normgrad.cli import _args

NAME = "bench"
HELP = "time batch norm's forward and backward routes (or --op conv), against PyTorch"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--op",
        choices=("batchnorm", "conv"),
        default="batchnorm",
        help="batchnorm (default), or conv: naive vs fast convolution on x "
        "(50, 3, 32, 32), 32 filters 3x3, pad 1 (--threads caps BLAS too)",
    )
    p.add_argument("--shapes", help="e.g. 4096x1024,100x500 (default: 100x500,4096x1024,65536x256)")
    p.add_argument("--dtypes", help="e.g. float64 (default: float32,float64)")
    p.add_argument(
        "--repeats", type=_args.positive_int, default=7, help="timed calls; the median is kept"
    )
    p.add_argument("--warmup", type=_args.nonnegative_int, default=2, help="untimed calls first")
    p.add_argument(
        "--threads",
        type=_args.positive_int,
        default=1,
        help="torch and numba threads (NumPy's element-wise work is single-threaded)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    p.add_argument("--json", help="write the records to this file")


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import bench

    _args.output_file("--json", args.json)
    records: Sequence[Any]
    if args.op == "conv":
        from normgrad.tools import bench_conv

        conv_records, agree = bench_conv.run(
            warmup=args.warmup,
            repeats=args.repeats,
            blas_threads=args.threads,
            with_torch=not args.no_torch,
        )
        print(bench_conv.format_report(conv_records, agree))
        records = conv_records
    else:
        try:
            shapes = bench.parse_shapes(args.shapes) if args.shapes else bench.DEFAULT_SHAPES
            dtypes = bench.parse_dtypes(args.dtypes) if args.dtypes else bench.DEFAULT_DTYPES
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        records = bench.run(
            shapes,
            dtypes,
            warmup=args.warmup,
            repeats=args.repeats,
            with_torch=not args.no_torch,
            threads=args.threads,
        )
        print(bench.format_report(records))
    if args.json:
        bench.write_json(records, args.json)
        print(f"wrote {args.json}")
    return 0
