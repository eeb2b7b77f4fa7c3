"""``normgrad derive``: exact SymPy proofs of every backward route, and the seed's formulas.

``normgrad derive check "FORMULA" [--layer batch|layer|rms]`` checks one formula of the
language in ``normgrad.symbolic.language`` (``docs/derivation.md``, section 13): proved
(for every N, or at N = 2, 3, 4), refuted with a counterexample and the nearest known
mistake, or unproved. A formula starting with ``-`` goes after ``--``.

Exit status: 0 when everything asked for holds (for ``check``: the formula is proved),
1 on any failure (see ``normgrad.symbolic.report``; for ``check``: refuted or
unproved), 2 on a usage error (SymPy missing, a formula the language refuses).
"""

from __future__ import annotations

import argparse

from normgrad._internal.errors import UsageError
from normgrad.cli import _args

NAME = "derive"
HELP = "exact SymPy proofs of every backward route, the seed's formulas, and `check FORMULA`"
KINDS = ("batch", "layer", "rms")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from normgrad.norms import registry

    names = ", ".join(registry.symbolic_specs())
    p.add_argument("layer", nargs="?", help=f"{names}, seed, or check")
    p.add_argument(
        "formula",
        nargs="?",
        help='with check: a formula, e.g. "dx = gamma/std * (dy - (dbeta + xhat*dgamma)/N)"',
    )
    p.add_argument(
        "--layer",
        dest="kind",
        choices=KINDS,
        default=None,
        help="with check: the layer the formula speaks about (default batch)",
    )
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
    if args.layer == "check":
        return _check(args)
    if args.formula is not None or args.kind is not None:
        raise UsageError(
            "a FORMULA and --layer go with `derive check`, as in derive check 'dx = ...'."
        )
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


def _check(args: argparse.Namespace) -> int:
    from normgrad.symbolic import check
    from normgrad.symbolic.language import FormulaError

    if not args.formula:
        raise UsageError(
            "derive check needs a FORMULA, e.g. derive check 'dx = dxhat/std' "
            "(docs/derivation.md, section 13, lists the names)."
        )
    try:
        result = check.check(args.formula, args.kind or "batch")
    except FormulaError as exc:
        raise UsageError(str(exc)) from None
    print(check.format_check(result))
    return 0 if result.proved else 1
