"""``normgrad train``: train a FullyConnectedNet or ThreeLayerConvNet from the command line.

Data: the embedded digits (``normgrad.data_utils.get_digits_data``, no download; the
default) or CIFAR-10 (``--data cifar10 --data-dir DIR``). The model is trained by
``normgrad.solver.Solver``; at the end the best-validation model (weights and running
statistics) is scored on train, val and test, and a summary is printed.

The defaults give a good digits run: ``normgrad train`` (an FC net [100, 100] with batch
norm, Adam at 1e-3, 20 epochs of batch 100) reaches about 97% test accuracy in a few
seconds. Outputs (``--plot``, ``--json``) are written only after training succeeded,
each to a temporary file renamed into place, so a failed run leaves no partial files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from normgrad._io import atomic_write
from normgrad._threads import blas_limit
from normgrad.classifiers import FullyConnectedNet, ThreeLayerConvNet

DATASETS = ("digits", "cifar10")
MODELS = ("fc", "cnn")
RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")
# Each model's own list (its NORMALIZATIONS), with None spelled "none" on the command line.
NORMS_BY_MODEL = {model: tuple("none" if n is None else n for n in net.NORMALIZATIONS)
                  for model, net in (("fc", FullyConnectedNet), ("cnn", ThreeLayerConvNet))}
NORMS = tuple(dict.fromkeys(n for norms in NORMS_BY_MODEL.values() for n in norms))


def _hidden(text: str) -> list[int]:
    """argparse type for ``--hidden 100,100``: positive ints separated by commas."""
    try:
        dims = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 100,100; got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 100,100; got {text!r}")
    return dims


def _keep(text: str) -> float:
    """argparse type for ``--dropout``: the keep probability, in (0, 1]."""
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}") from None
    if not 0 < p <= 1:
        raise argparse.ArgumentTypeError(
            f"--dropout is the probability of KEEPING a unit, in (0, 1] (1: no dropout); "
            f"got {text}")
    return p


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}; got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}; got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``normgrad train`` (argparse ``choices`` reject unknown values)."""
    p.add_argument("--data", choices=DATASETS, default="digits",
                   help="digits: sklearn's 8x8 digits, embedded (default); cifar10: needs "
                        "--data-dir or $NORMGRAD_CIFAR10")
    p.add_argument("--data-dir", help="the cifar-10-batches-py folder")
    p.add_argument("--num-train", type=_positive(int),
                   help="use only the first N training images (default: all)")
    p.add_argument("--model", choices=MODELS, default="fc", help="fc (default) or cnn")
    p.add_argument("--hidden", type=_hidden, default=[100, 100],
                   help="hidden sizes: fc layers (default 100,100); cnn: its one hidden "
                        "layer (default 100)")
    p.add_argument("--norm", choices=NORMS, default="batchnorm",
                   help="default batchnorm; fc: none|batchnorm|layernorm, "
                        "cnn: none|batchnorm|groupnorm")
    p.add_argument("--groups", type=_positive(int), default=4, help="groups for groupnorm")
    p.add_argument("--filters", type=_positive(int), default=32, help="cnn filters")
    p.add_argument("--dropout", type=_keep, default=1.0, metavar="KEEP",
                   help="keep probability (default 1: no dropout)")
    p.add_argument("--reg", type=float, default=1e-4, help="L2 strength (default 1e-4)")
    p.add_argument("--weight-scale", type=_positive(float), default=None,
                   help="weight std (default: 5e-2 for fc, 1e-2 for cnn)")
    p.add_argument("--update-rule", choices=RULES, default="adam")
    p.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate")
    p.add_argument("--lr-decay", type=_positive(float), default=0.95, help="per epoch")
    p.add_argument("--epochs", type=_positive(int), default=20)
    p.add_argument("--batch-size", type=_positive(int), default=100)
    p.add_argument("--seed", type=int, default=0, help="NumPy's global seed (weights, batches)")
    p.add_argument("--plot", metavar="FILE.png", help="loss and accuracy curves")
    p.add_argument("--checkpoint", metavar="DIR", help="write a checkpoint every epoch here")
    p.add_argument("--resume", metavar="FILE", help="continue from this checkpoint")
    p.add_argument("--json", metavar="FILE", help="write train/val/test accuracy and seconds")
    p.add_argument("--threads", type=_positive(int), default=None,
                   help="BLAS threads (default: 1 for digits, whose tiny matrix products "
                        "only lose to thread hand-offs; the BLAS default for cifar10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail before training, not after it, on outputs that cannot be written."""
    if args.norm not in NORMS_BY_MODEL[args.model]:
        raise ValueError(
            f"--norm {args.norm} does not apply to --model {args.model}; choose one of "
            f"{'|'.join(NORMS_BY_MODEL[args.model])}.")
    if args.data_dir and args.data != "cifar10":
        raise ValueError("--data-dir is for --data cifar10; the digits are embedded.")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"--plot needs a .png, .pdf or .svg file name; got {args.plot!r}.")
    for flag, path in (("--plot", args.plot), ("--json", args.json)):
        if path and not Path(path).resolve().parent.is_dir():
            raise ValueError(f"{flag} {path}: folder {Path(path).resolve().parent} does not exist.")
    if args.resume and not Path(args.resume).is_file():
        raise ValueError(f"--resume {args.resume}: no such checkpoint file.")


def load_data(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The data dict for the chosen data set and model (flattened for fc, images for cnn)."""
    from normgrad import data_utils

    if args.data == "digits":
        data = data_utils.get_digits_data(flatten=args.model == "fc", dtype=np.float32)
        if args.num_train:
            data["X_train"] = data["X_train"][: args.num_train]
            data["y_train"] = data["y_train"][: args.num_train]
    else:
        data = data_utils.get_CIFAR10_data(
            args.data_dir, num_training=args.num_train or 49000, dtype=np.float32)
        if args.model == "fc":
            data = {k: v.reshape(len(v), -1) if k.startswith("X") else v
                    for k, v in data.items()}
    return data


def build_model(args: argparse.Namespace, data: dict[str, np.ndarray]) -> Any:
    """A FullyConnectedNet or ThreeLayerConvNet sized for ``data``; seeds NumPy first."""
    from normgrad.classifiers import FullyConnectedNet, ThreeLayerConvNet

    np.random.seed(args.seed)  # noqa: NPY002  (the course's global generator)
    num_classes = 10  # digits and CIFAR-10 alike; the Solver rejects labels outside
    norm = None if args.norm == "none" else args.norm
    if args.model == "fc":
        return FullyConnectedNet(
            args.hidden, input_dim=int(np.prod(data["X_train"].shape[1:])),
            num_classes=num_classes, dropout_keep_ratio=args.dropout, normalization=norm,
            reg=args.reg, weight_scale=args.weight_scale or 5e-2, dtype=np.float32)
    if args.dropout != 1:
        raise ValueError("--dropout applies to --model fc only (ThreeLayerConvNet has none).")
    if data["X_train"].ndim != 4:
        raise ValueError(f"--model cnn needs images (N, C, H, W); got {data['X_train'].shape}.")
    return ThreeLayerConvNet(
        input_dim=data["X_train"].shape[1:], num_filters=args.filters, filter_size=3,
        hidden_dim=args.hidden[0], num_classes=num_classes, weight_scale=args.weight_scale
        or 1e-2, reg=args.reg, dtype=np.float32, normalization=norm, num_groups=args.groups)


def plot_history(solver: Any, path: str, title: str) -> None:
    """Loss per iteration and train/val accuracy per check, as in the course notebooks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(7, 7))
    ax_loss.plot(solver.loss_history, "o", markersize=2)
    ax_loss.set(xlabel="iteration", ylabel="training loss", title=title)
    ax_acc.plot(solver.train_acc_history, "-o", label="train")
    ax_acc.plot(solver.val_acc_history, "-o", label="val")
    ax_acc.set(xlabel="accuracy check (first iteration, then each epoch)", ylabel="accuracy")
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    finally:
        plt.close(fig)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Load data, build the model, train it, score it; returns the summary dict."""
    from normgrad.solver import Solver

    _check_outputs(args)
    data = load_data(args)
    model = build_model(args, data)
    checkpoint_name = None
    if args.checkpoint:
        os.makedirs(args.checkpoint, exist_ok=True)
        checkpoint_name = os.path.join(args.checkpoint, f"{args.data}_{args.model}")
    solver = Solver(
        model, data, update_rule=args.update_rule, optim_config={"learning_rate": args.lr},
        lr_decay=args.lr_decay, num_epochs=args.epochs, batch_size=args.batch_size,
        num_train_samples=None, checkpoint_name=checkpoint_name, resume_from=args.resume,
        print_every=10**9, verbose=not args.quiet)
    threads = args.threads or (1 if args.data == "digits" else None)
    with blas_limit(threads):
        start = time.perf_counter()
        solver.train()
        seconds = time.perf_counter() - start
    result = {
        "train_acc": solver.check_accuracy(data["X_train"], data["y_train"]),
        "val_acc": solver.check_accuracy(data["X_val"], data["y_val"]),
        "test_acc": solver.check_accuracy(data["X_test"], data["y_test"]),
        "seconds": round(seconds, 3),
        "blas_threads": threads,
        "best_val_acc": float(solver.best_val_acc),
        "iterations": len(solver.loss_history),
        "final_loss": float(solver.loss_history[-1]) if solver.loss_history else None,
        "config": {k: v for k, v in vars(args).items() if k not in ("func", "command")},
    }
    if solver.last_checkpoint:
        result["last_checkpoint"] = solver.last_checkpoint
    if args.plot:
        plot_history(solver, args.plot, f"{args.model} / {args.norm} on {args.data}")
    if args.json:
        text = json.dumps(result, indent=2) + "\n"
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text))
    return result


def format_summary(result: dict[str, Any]) -> str:
    c = result["config"]
    return (f"{c['model']} net ({c['norm']}) on {c['data']}: "
            f"train {result['train_acc']:.2%}, val {result['val_acc']:.2%}, "
            f"test {result['test_acc']:.2%} ({result['iterations']} iterations in "
            f"{result['seconds']:.1f} s; best-validation model)")


def run(args: argparse.Namespace) -> int:
    """The ``normgrad train`` command: 0 on success, 2 on bad input or missing data."""
    try:
        result = train(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"normgrad train: error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:
        print(f"normgrad train: error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(result))
    for flag in ("plot", "json"):
        if getattr(args, flag):
            print(f"wrote {getattr(args, flag)}")
    return 0
