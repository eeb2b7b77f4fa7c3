"""The ``normgrad`` command line (also ``python -m normgrad``).

Subcommands:
    check   finite-difference check of every layer's every backward route (exit 1 on failure)
    bench   time batch norm's forward and backward routes, against PyTorch when installed;
            ``--op conv`` times the naive and fast (im2col) convolutions instead
    demo    what ``make demo`` runs: gradient checks, then the deep experiment (quick)
    experiment  deep | weight-scale | batch-size | paper-fig1: plots, summary.json, a table
    derive  exact SymPy proofs of every backward route, and verdicts on the seed's formulas
    train   train a FullyConnectedNet or ThreeLayerConvNet (digits embedded, or CIFAR-10)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from normgrad import __version__


def _cmd_check(args: argparse.Namespace) -> int:
    from normgrad import checks

    selected = args.layer.split(",") if args.layer else None
    rows = checks.run_checks(selected, seed=args.seed, tol=args.tol)
    print(checks.format_table(rows))
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"(finite differences, float64, random upstream gradient, tol {args.tol:g})")
    return 1 if failed else 0


def _cmd_bench_conv(args: argparse.Namespace) -> int:
    from normgrad import bench, bench_conv

    records, agree = bench_conv.run(warmup=args.warmup, repeats=args.repeats,
                                    blas_threads=args.threads, with_torch=not args.no_torch)
    print(bench_conv.format_report(records, agree))
    if args.json:
        bench.write_json(records, args.json)
        print(f"wrote {args.json}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from normgrad import bench

    if args.op == "conv":
        return _cmd_bench_conv(args)
    shapes = bench.parse_shapes(args.shapes) if args.shapes else bench.DEFAULT_SHAPES
    dtypes = bench.parse_dtypes(args.dtypes) if args.dtypes else bench.DEFAULT_DTYPES
    records = bench.run(shapes, dtypes, warmup=args.warmup, repeats=args.repeats,
                        with_torch=not args.no_torch, threads=args.threads)
    print(bench.format_report(records))
    if args.json:
        bench.write_json(records, args.json)
        print(f"wrote {args.json}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from normgrad import train

    return train.run(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from normgrad.experiments import command

    return command.demo(args)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from normgrad.experiments import command

    return command.run(args)


def _cmd_derive(args: argparse.Namespace) -> int:
    try:
        from normgrad.symbolic import command
    except ImportError as exc:  # SymPy missing: the message names `pip install normgrad[symbolic]`
        print(f"normgrad derive: error: {exc}", file=sys.stderr)
        return 2
    return command.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="normgrad",
        description="Normalization layers with hand-derived backward passes, proved three ways.",
    )
    parser.add_argument("--version", action="version", version=f"normgrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="finite-difference check of every layer and route")
    p.add_argument("--layer", help="comma-separated layer names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-8, help="pass below this rel error")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("bench", help="time batch norm forward and backward routes")
    p.add_argument("--op", choices=("batchnorm", "conv"), default="batchnorm",
                   help="batchnorm (default), or conv: naive vs fast convolution on x "
                        "(50, 3, 32, 32), 32 filters 3x3, pad 1 (--threads caps BLAS too)")
    p.add_argument("--shapes", help="e.g. 4096x1024,100x500 (default: 100x500,4096x1024,"
                                     "65536x256)")
    p.add_argument("--dtypes", help="e.g. float64 (default: float32,float64)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls; the median is kept")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (NumPy's element-wise work is single-threaded)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    p.add_argument("--json", help="write the records to this file")
    p.set_defaults(func=_cmd_bench)

    from normgrad.experiments.command import add_arguments as add_experiment_arguments
    from normgrad.experiments.command import add_demo_arguments

    p = sub.add_parser("demo", help="the main job: what `make demo` runs")
    add_demo_arguments(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("experiment", help="what normalization does: plots and summary.json")
    add_experiment_arguments(p)
    p.set_defaults(func=_cmd_experiment)

    p = sub.add_parser("derive", help="exact SymPy proofs of every backward route, and "
                                      "verdicts on the seed's formulas")
    p.add_argument("layer", nargs="?", help="batch, layer, group, instance, rms, or seed")
    p.add_argument("--all", action="store_true", help="every layer, default shapes, and seed")
    p.add_argument("--check", action="store_true", help="verdicts only, no derivation")
    p.add_argument("--shape", help="e.g. 3x2 (N x D) or 1x4x1x2 (N x C x H x W)")
    p.add_argument("--groups", type=int, help="G, for group norm with --shape")
    p.add_argument("--n", type=int, default=3, help="batch size for `derive seed`")
    p.set_defaults(func=_cmd_derive)

    from normgrad.train import add_arguments as add_train_arguments

    p = sub.add_parser("train", help="train a net on the embedded digits or on CIFAR-10")
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"normgrad {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
