"""``normgrad train``: train a FullyConnectedNet or ThreeLayerConvNet from the command line.

Every flag is checked before any data is read or any file is written (a usage error
exits 2 in one line); a diverged run exits 1, naming the iteration.

``--distributed``: data parallel, on every rank of ``mpiexec -n P normgrad train
--distributed ...``; a failure on any rank ends every rank (``distributed.faults``),
showing that rank's error. ``--ranks N`` starts that job itself, with the mpiexec of
this environment, and returns its exit status.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from normgrad._internal.errors import UsageError
from normgrad.cli import _args

NAME = "train"
HELP = "train a net on the embedded digits or on CIFAR-10"


def _keep(text: str) -> float:
    """argparse type for ``--dropout``: the keep probability, in (0, 1]."""
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}") from None
    if not 0 < p <= 1:
        raise argparse.ArgumentTypeError(
            f"--dropout is the probability of KEEPING a unit, in (0, 1] (1: no dropout); got {text}"
        )
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``normgrad train`` (argparse ``choices`` reject unknown values)."""
    from normgrad.data.prepare import DATASETS
    from normgrad.tools.train import MODELS, NORMS, NORMS_BY_MODEL, RULES, TrainConfig

    d = TrainConfig()
    per_model = "; ".join(f"{m}: {'|'.join(n)}" for m, n in NORMS_BY_MODEL.items())
    p.add_argument(
        "--data",
        choices=DATASETS,
        default=d.data,
        help="digits: sklearn's 8x8 digits, embedded (default); cifar10: needs "
        "--data-dir or $NORMGRAD_CIFAR10",
    )
    p.add_argument("--data-dir", help="the cifar-10-batches-py folder")
    p.add_argument(
        "--num-train",
        type=_args.positive_int,
        help="use only the first N training images (default: all)",
    )
    p.add_argument("--model", choices=tuple(MODELS), default=d.model, help="fc (default) or cnn")
    p.add_argument(
        "--hidden",
        type=_args.sizes,
        default=d.hidden,
        help="hidden sizes: fc layers (default 100,100); cnn: its one hidden layer (default 100)",
    )
    p.add_argument("--norm", choices=NORMS, default=d.norm, help=f"default {d.norm}; {per_model}")
    p.add_argument(
        "--groups", type=_args.positive_int, default=d.groups, help="groups for groupnorm"
    )
    p.add_argument("--filters", type=_args.positive_int, default=d.filters, help="cnn filters")
    p.add_argument(
        "--dropout",
        type=_keep,
        default=d.dropout,
        metavar="KEEP",
        help="keep probability (default 1: no dropout)",
    )
    p.add_argument(
        "--reg",
        type=_args.number(float, low=0),
        default=d.reg,
        help="L2 strength, >= 0 (default 1e-4)",
    )
    p.add_argument(
        "--weight-scale",
        type=_args.positive_float,
        default=d.weight_scale,
        help="weight std (default: 5e-2 for fc, 1e-2 for cnn)",
    )
    p.add_argument("--update-rule", choices=RULES, default=d.update_rule)
    p.add_argument("--lr", type=_args.positive_float, default=d.lr, help="learning rate")
    p.add_argument("--lr-decay", type=_args.positive_float, default=d.lr_decay, help="per epoch")
    p.add_argument("--epochs", type=_args.positive_int, default=d.epochs)
    p.add_argument("--batch-size", type=_args.positive_int, default=d.batch_size)
    p.add_argument(
        "--seed", type=_args.seed, default=d.seed, help="NumPy's global seed (weights, batches)"
    )
    p.add_argument("--plot", metavar="FILE.png", help="loss and accuracy curves")
    p.add_argument("--checkpoint", metavar="DIR", help="write a checkpoint every epoch here")
    p.add_argument("--resume", metavar="FILE", help="continue from this checkpoint")
    p.add_argument("--json", metavar="FILE", help="write train/val/test accuracy and seconds")
    p.add_argument(
        "--threads",
        type=_args.positive_int,
        default=None,
        help="BLAS threads (default: 1 for digits, whose tiny matrix products "
        "only lose to thread hand-offs; the BLAS default for cifar10)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data parallel, on every rank of an mpiexec job: mpiexec -n 4 normgrad train "
        "--distributed --norm sync_batchnorm (each minibatch split over the ranks)",
    )
    p.add_argument(
        "--ranks",
        type=_args.positive_int,
        metavar="N",
        help="start that job itself: mpiexec -n N from this environment, --distributed",
    )


def run(args: argparse.Namespace) -> int:
    from normgrad.tools import train

    names = {f.name for f in fields(train.TrainConfig)}
    config = train.TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    if config.distributed:  # one rank's failure ends every rank, showing its error
        from normgrad.distributed import faults

        return faults.guard(lambda: _run(config), command=f"normgrad {NAME}")
    problems = config.problems()
    if problems:
        raise UsageError(" ".join(problems))
    if config.ranks is not None:
        return _launch(config)
    return _run(config)


def _launch(config: Any) -> int:
    """``--ranks N``: run this command on N ranks (mpiexec from this environment)."""
    from normgrad.distributed import launch
    from normgrad.tools import train

    argv = ["-m", "normgrad", NAME, "--distributed", *train.config_argv(config)]
    try:
        return launch.run(config.ranks, argv).returncode
    except FileNotFoundError as exc:  # no mpiexec: the extra is missing
        raise UsageError(str(exc)) from None


def _run(config: Any) -> int:
    from normgrad.data.cifar import CIFAR10NotFoundError
    from normgrad.tools import train

    problems = config.problems()
    if problems:
        raise UsageError(" ".join(problems))
    try:
        result = train.train(config)
    except (CIFAR10NotFoundError, train.ResumeError) as exc:
        raise UsageError(str(exc)) from None
    except FloatingPointError as exc:
        print(f"normgrad train: error: {exc}", file=sys.stderr)
        return 1
    except train.SplitError as exc:  # the batch does not split over this job's ranks
        raise UsageError(str(exc)) from None
    if result.get("ranks") is not None and _rank() != 0:
        return 0  # rank 0 alone prints
    print(train.format_summary(result))
    for flag in ("plot", "json"):
        if getattr(config, flag):
            print(f"wrote {getattr(config, flag)}")
    return 0


def _rank() -> int:
    from normgrad.distributed import world

    return world().rank
