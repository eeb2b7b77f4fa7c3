"""``normgrad check``: finite-difference check of every layer's every backward route."""

from __future__ import annotations

import argparse

from normgrad._internal.errors import UsageError
from normgrad.cli import _args

NAME = "check"
HELP = "finite-difference check of every layer and backward route (exit 1 on a failure)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layer", help="comma-separated layer names (default: all)")
    p.add_argument("--seed", type=_args.seed, default=0, help="of the inputs and upstream gradient")
    p.add_argument(
        "--tol",
        type=_args.positive_float,
        default=1e-8,
        help="a gradient passes below this normwise rel error (default 1e-8)",
    )


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import checks

    selected = [s.strip() for s in args.layer.split(",")] if args.layer else None
    known = checks.layers()
    unknown = [s for s in selected or () if s not in known]
    if unknown:
        raise UsageError(f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(known)}.")
    text, ok = checks.report(checks.run_checks(selected, seed=args.seed, tol=args.tol), args.tol)
    print(text)
    return 0 if ok else 1
