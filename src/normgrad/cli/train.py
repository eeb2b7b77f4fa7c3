"""``normgrad train``: train a FullyConnectedNet or ThreeLayerConvNet from the command line.

Every flag is checked before any data is read or any file is written (a usage error
exits 2 in one line); a diverged run exits 1, naming the iteration.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

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


def run(args: argparse.Namespace) -> int:
    from normgrad.data.cifar import CIFAR10NotFoundError
    from normgrad.tools import train

    names = {f.name for f in fields(train.TrainConfig)}
    config = train.TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
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
    print(train.format_summary(result))
    for flag in ("plot", "json"):
        if getattr(config, flag):
            print(f"wrote {getattr(config, flag)}")
    return 0
