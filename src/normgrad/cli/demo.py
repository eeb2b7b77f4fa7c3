"""``normgrad demo``: what ``make demo`` runs (gradient checks, then the deep experiment)."""

from __future__ import annotations

import argparse
from pathlib import Path

from normgrad.cli import _args

NAME = "demo"
HELP = "the main job, what `make demo` runs: gradient checks, then batch norm vs none"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=_args.seed, default=0)
    p.add_argument("--out", default="results", help="folder for demo.png (default results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # test-suite size


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import demo

    _args.output_dir("--out", args.out)
    return demo.run(Path(args.out), seed=args.seed, progress=not args.quiet, tiny=args.tiny)
