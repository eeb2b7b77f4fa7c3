"""The ``normgrad`` command line (also ``python -m normgrad``): one module per command.

Each command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) ->
exit status``; the work itself lives in ``normgrad.tools`` (and ``normgrad.symbolic``).

    check       finite-difference check of every layer's every backward route
    bench       time the batch-norm routes (or convolution) against PyTorch
    demo        what ``make demo`` runs: gradient checks, then the deep experiment
    experiment  deep | weight-scale | batch-size | paper-fig1: plots, summary.json, a table
    derive      exact SymPy proofs of every backward route, and the seed's formulas
    train       train a FullyConnectedNet or ThreeLayerConvNet (digits, or CIFAR-10)

Exit status: 0 success; 1 a check, proof or run failed, or an unexpected error (with its
traceback); 2 a usage error (``UsageError``, or argparse's own), in one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from normgrad._internal.threads import quiet_blas_spin

quiet_blas_spin()  # before anything imports NumPy (see there)

from normgrad import __version__  # noqa: E402
from normgrad._internal.errors import UsageError  # noqa: E402
from normgrad.cli import bench, check, demo, derive, experiment, grade, train  # noqa: E402

COMMANDS = (check, bench, demo, experiment, derive, grade, train)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, each added by its own module."""
    parser = argparse.ArgumentParser(
        prog="normgrad",
        description="Normalization layers with hand-derived backward passes, proved three ways.",
    )
    parser.add_argument("--version", action="version", version=f"normgrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"normgrad {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
