"""``normgrad derive``: exact SymPy proofs of every backward route, and the seed's formulas.

Exit status: 0 when everything asked for holds, 1 on any failure (see
``normgrad.symbolic.report``), 2 on a usage error, SymPy missing included.
"""

from __future__ import annotations

import argparse

from normgrad._internal.errors import UsageError
from normgrad.cli import _args

NAME = "derive"
HELP = "exact SymPy proofs of every backward route, and verdicts on the seed's formulas"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from normgrad.norms import registry

    names = ", ".join(registry.symbolic_specs())
    p.add_argument("layer", nargs="?", help=f"{names}, or seed")
    p.add_argument("--all", action="store_true", help="every layer, default shapes, and seed")
    p.add_argument("--check", action="store_true", help="verdicts only, no derivation")
    p.add_argument("--shape", help="e.g. 3x2 (N x D) or 1x4x1x2 (N x C x H x W)")
    p.add_argument("--groups", type=_args.positive_int, help="G, for group norm with --shape")
    p.add_argument(
        "--n", type=_args.number(int, low=2), default=3, help="batch size for `derive seed`"
    )


def run(args: argparse.Namespace) -> int:
    try:
        from normgrad.symbolic import registry, report
    except ImportError as exc:  # SymPy missing: the message names the extra to install
        raise UsageError(str(exc)) from None
    if args.all:
        if args.layer:
            raise UsageError("give a LAYER or --all, not both.")
        return report.derive_all(quiet=args.check)
    if not args.layer:
        raise UsageError(f"name a layer ({', '.join(registry.layers())}, seed) or pass --all.")
    if args.layer == "seed":
        from normgrad.symbolic.core import check_size

        try:  # the seed is checked on batch norm x: (n, 1)
            check_size("seed", (args.n, 1), args.n)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return report.derive_seed(args.n)
    if args.layer not in registry.layers():
        raise UsageError(
            f"unknown layer {args.layer!r}; choose one of {', '.join(registry.layers())}, or seed."
        )
    try:
        shape = registry.parse_shape(args.layer, args.shape, args.groups) if args.shape else None
        if shape is None and args.groups is not None:
            raise ValueError("--groups needs --shape NxCxHxW as well.")
        problem = registry.build(args.layer, **(shape or {}))
    except ValueError as exc:  # a shape the prover refuses, with the reason
        raise UsageError(str(exc)) from None
    return report.derive_problem(problem, quiet=args.check)
