"""``normgrad demo``: what ``make demo`` runs (gradient checks, then the deep experiment)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "the main job, what `make demo` runs: gradient checks, then batch norm vs none"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results", help="folder for demo.png (default results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # test-suite size


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import demo

    return demo.run(Path(args.out), seed=args.seed, progress=not args.quiet, tiny=args.tiny)
