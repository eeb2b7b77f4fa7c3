"""``normgrad grade PATH``: grade a student's course layers, naming each mistake.

Exit status: 0 when every function and output passes; 1 when one fails (or the code
could not be imported or graded at all); 2 on a usage error (no such path, nothing
gradable in it, an unknown ``:function``).
"""

from __future__ import annotations

import argparse

from normgrad.cli import _args

NAME = "grade"
HELP = "grade a student's cs231n layers (file, folder or module:function) and name the mistakes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        help="a .py file (cs231n/layers.py), a course folder (cs231n/), a module "
        "(pkg.layers), optionally with :function (cs231n/layers.py:batchnorm_backward_alt)",
    )
    p.add_argument("--seed", type=_args.seed, default=0, help="of the random cases (default 0)")
    p.add_argument(
        "--tol",
        type=_args.positive_float,
        default=1e-8,
        help="an output passes below this normwise relative error (default 1e-8)",
    )
    p.add_argument(
        "--timeout",
        type=_args.number(float, low=1.0, high=3600.0),
        default=120.0,
        help="seconds for the whole grade, import included (default 120)",
    )


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import grade

    target = grade.resolve(args.path)  # UsageError: no such path, nothing gradable
    result = grade.run(target, seed=args.seed, tol=args.tol, timeout=args.timeout)
    print(grade.format_result(result))
    return 0 if result.ok else 1
