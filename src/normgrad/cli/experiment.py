"""``normgrad experiment NAME``: what normalization does, as plots, summary.json and a table."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from normgrad._internal.errors import UsageError
from normgrad.cli import _args
from normgrad.data.prepare import DATASETS
from normgrad.tools.experiments import EXPERIMENTS, Context, batch_size

NAME = "experiment"
HELP = "what normalization does: plots, summary.json and a table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name", choices=list(EXPERIMENTS), metavar="NAME", help=f"one of: {', '.join(EXPERIMENTS)}"
    )
    p.add_argument(
        "--data",
        choices=DATASETS,
        default="digits",
        help="digits: sklearn's 8x8 digits, embedded (default); cifar10: needs "
        "--data-dir or $NORMGRAD_CIFAR10",
    )
    p.add_argument("--data-dir", help="the cifar-10-batches-py folder (with --data cifar10)")
    p.add_argument("--out", help="output folder (default: results/NAME)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run (under ~2 minutes on 2 cores), same conclusion",
    )
    p.add_argument("--seed", type=_args.seed, default=0, help="first seed (default 0)")
    p.add_argument(
        "--norm",
        choices=batch_size.NORMS,
        help="batch-size only: which normalization to study (default batchnorm)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # test-suite size


def run(args: argparse.Namespace) -> int:
    from normgrad.data.cifar import CIFAR10NotFoundError
    from normgrad.tools import experiments

    if args.data_dir and args.data != "cifar10":
        raise UsageError("--data-dir is for --data cifar10; the digits are embedded.")
    if args.norm is not None and args.name != batch_size.NAME:
        raise UsageError(f"--norm applies to the batch-size experiment only, not {args.name!r}.")
    scale = "tiny" if args.tiny else "quick" if args.quick else "full"
    default = args.name + (f"-{args.norm}" if args.norm else "")
    out = Path(args.out or Path("results") / default)
    _args.output_dir("--out", str(out))
    ctx = Context(
        data=args.data,
        data_dir=args.data_dir,
        out=out,
        scale=scale,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(f"normgrad experiment {args.name} ({ctx.scale}) on {ctx.data}", flush=True)
    start = time.perf_counter()
    try:
        summary = experiments.run(args.name, ctx, norm=args.norm)
    except CIFAR10NotFoundError as exc:
        raise UsageError(str(exc)) from None
    seconds = time.perf_counter() - start
    print(f"data: {summary['data']}\n")
    print(experiments.table(summary))
    if "conclusion" in summary:
        print(f"\n{summary['conclusion']}")
    print(
        f"\n{seconds:.1f} s. Wrote {', '.join(str(ctx.out / f) for f in summary['figures'])} "
        f"and {ctx.out / 'summary.json'}"
    )
    return 0
