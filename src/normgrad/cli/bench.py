"""``normgrad bench``: time a normalization's routes (or convolution), against PyTorch."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from normgrad._internal.errors import UsageError
from normgrad.cli import _args

NAME = "bench"
HELP = "time a normalization's routes and fused kernel (or --op conv), against PyTorch"


def _ops() -> list[str]:
    from normgrad.tools import bench

    return [*bench.ops(), "conv"]


def parse_shapes(text: str) -> list[tuple[int, ...]]:
    """``"4096x1024,64x64x56x56"`` -> [(4096, 1024), (64, 64, 56, 56)]."""
    shapes = []
    for part in text.split(","):
        try:
            shape = tuple(int(s) for s in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"shape {part!r} must look like NxD, e.g. 4096x1024.") from None
        if len(shape) not in (2, 4) or shape[0] < 2 or min(shape) < 1:
            raise ValueError(
                f"shape {part!r} needs N >= 2 and D >= 1: NxD, or NxCxHxW with C, H, W >= 1."
            )
        shapes.append(shape)
    return shapes


def parse_dtypes(text: str) -> list[str]:
    """``"float32,float64"`` -> ["float32", "float64"]."""
    dtypes = [s.strip() for s in text.split(",")]
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise ValueError(f"dtype {d!r} must be float32 or float64.")
    return dtypes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--op",
        choices=_ops(),
        default="batchnorm",
        help="batchnorm (default: its every route), any other registered normalization "
        "(reference, fused and PyTorch; e.g. layernorm, groupnorm with G=32), or conv: naive "
        "vs fast convolution on x (50, 3, 32, 32), 32 filters 3x3, pad 1 (--threads caps BLAS)",
    )
    p.add_argument(
        "--shapes",
        help="e.g. 4096x1024,64x64x56x56 (default: batchnorm 100x500,4096x1024,65536x256; "
        "(N, D) layers 16384x768,4096x1024; (N, C, H, W) layers 64x64x56x56,256x256x14x14)",
    )
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
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the reference NumPy route (--op other than batchnorm): fused vs torch only",
    )
    p.add_argument(
        "--rounds",
        type=_args.positive_int,
        default=1,
        help="a normalization's sides (reference, fused, torch) take this many turns; "
        "each keeps its median round (not for --op conv)",
    )
    p.add_argument("--json", help="write the records to this file")


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import bench

    _args.output_file("--json", args.json)
    if args.rounds > 1 and args.op == "conv":
        raise UsageError(
            "--rounds is for the normalizations (--op conv times naive, fast and torch "
            "once each); drop --rounds, or use it with e.g. --op layernorm."
        )
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
            shapes = parse_shapes(args.shapes) if args.shapes else None
            dtypes = parse_dtypes(args.dtypes) if args.dtypes else bench.DEFAULT_DTYPES
            if shapes and args.op == "batchnorm" and any(len(s) != 2 for s in shapes):
                raise ValueError("batchnorm takes (N, D) shapes such as 4096x1024.")

        except ValueError as exc:
            raise UsageError(str(exc)) from None
        common = dict(
            warmup=args.warmup,
            repeats=args.repeats,
            with_torch=not args.no_torch,
            threads=args.threads,
        )
        if args.op == "batchnorm":
            records = bench.run(
                shapes or bench.DEFAULT_SHAPES, dtypes, rounds=args.rounds, **common
            )
        else:
            records = bench.run_norm(
                args.op,
                shapes,
                dtypes,
                with_reference=not args.no_reference,
                rounds=args.rounds,
                **common,
            )
        print(bench.format_report(records))
    if args.json:
        bench.write_json(records, args.json)
        print(f"wrote {args.json}")
    return 0
