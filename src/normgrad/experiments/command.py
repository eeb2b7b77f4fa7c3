"""The ``normgrad experiment`` and ``normgrad demo`` commands (argparse glue).

Exit codes: 0 success; 1 the demo's gradient check failed; 2 bad arguments or missing
data (CIFAR-10 not found), with a message saying how to fix it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from normgrad.experiments import EXPERIMENTS, Context
from normgrad.experiments import run as run_experiment
from normgrad.experiments import table as experiment_table
from normgrad.experiments.common import DATASETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``normgrad experiment`` (argparse ``choices`` reject unknown values)."""
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                   help=f"one of: {', '.join(EXPERIMENTS)}")
    p.add_argument("--data", choices=DATASETS, default="digits",
                   help="digits: sklearn's 8x8 digits, embedded (default); cifar10: needs "
                        "--data-dir or $NORMGRAD_CIFAR10")
    p.add_argument("--data-dir", help="the cifar-10-batches-py folder (with --data cifar10)")
    p.add_argument("--out", help="output folder (default: results/NAME)")
    p.add_argument("--quick", action="store_true",
                   help="a smaller run (under ~2 minutes on 2 cores), same conclusion")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--norm", choices=("batchnorm", "layernorm"),
                   help="batch-size only: which normalization to study (default batchnorm)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # test-suite size


def _context(args: argparse.Namespace, out: Path) -> Context:
    if args.data_dir and args.data != "cifar10":
        raise ValueError("--data-dir is for --data cifar10; the digits are embedded.")
    scale = "tiny" if args.tiny else "quick" if args.quick else "full"
    return Context(data=args.data, data_dir=args.data_dir, out=out, scale=scale,
                   seed=args.seed, progress=not args.quiet)


def run(args: argparse.Namespace) -> int:
    """``normgrad experiment NAME``: run it, print its table, say where the files are."""
    prog = "normgrad experiment"
    try:
        default = args.name + (f"-{args.norm}" if args.norm else "")
        ctx = _context(args, Path(args.out or Path("results") / default))
        print(f"{prog} {args.name} ({ctx.scale}) on {ctx.data}", flush=True)
        start = time.perf_counter()
        summary = run_experiment(args.name, ctx, norm=args.norm)
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    print(f"data: {summary['data']}\n")
    print(experiment_table(summary))
    if "conclusion" in summary:
        print(f"\n{summary['conclusion']}")
    print(f"\n{seconds:.1f} s. Wrote {', '.join(str(ctx.out / f) for f in summary['figures'])} "
          f"and {ctx.out / 'summary.json'}")
    return 0


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``normgrad demo``."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results", help="folder for demo.png (default results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # test-suite size


def demo(args: argparse.Namespace) -> int:
    """``normgrad demo``: gradient checks, then the deep experiment (quick) on digits."""
    from normgrad import checks

    start = time.perf_counter()
    print("normgrad demo\n\n1. Batch norm's three backward routes and layer norm, checked "
          "against finite differences\n   (float64, random upstream gradient):\n")
    rows = checks.run_checks(["batchnorm", "layernorm"], seed=args.seed)
    print(checks.format_table(rows))
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print("normgrad demo: the gradient check FAILED; not training.", file=sys.stderr)
        return 1

    out = Path(args.out)
    ctx = Context(data="digits", out=out / "demo", scale="tiny" if args.tiny else "quick",
                  seed=args.seed, progress=not args.quiet)
    print("\n2. The course's deep-network experiment on the embedded digits (quick): "
          "5 hidden layers of 100,\n   weight scale 2e-2, Adam 1e-3, batch 50, 1000 "
          "training images; batch norm vs baseline:\n", flush=True)
    from normgrad.experiments import blas_limit, deep

    with blas_limit(1):
        summary = deep.run(ctx, figure=out / "demo.png")
    print(deep.table(summary))
    print(f"\n{summary['conclusion']}")
    print(f"\nPlot: {out / 'demo.png'}   (numbers: {ctx.out / 'summary.json'})")
    print(f"Done in {time.perf_counter() - start:.1f} s. Next: normgrad experiment "
          "paper-fig1 --quick")
    return 0
