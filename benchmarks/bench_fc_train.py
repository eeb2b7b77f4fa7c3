"""Training speed: normgrad's FullyConnectedNet against the same torch.nn model, on CPU.

    python benchmarks/bench_fc_train.py [--threads N] [--steps 10] [--repeats 7] [--json F]

The model is a FullyConnectedNet [512, 512, 512] with batch norm, float32, trained with
Adam (lr 1e-3) on minibatches of 256 CIFAR-shaped random rows (3072 features, 10
classes). One training step is forward + backward + an Adam update of every parameter:

- normgrad: ``model.loss(X, y)`` then ``normgrad.optim.adam`` per parameter (what Solver
  does), with the fused kernels (batch norm and ReLU in one pass, the fused Adam);
- reference: the same with ``normgrad.kernels.use_fused(False)``;
- torch: Linear-BatchNorm1d-ReLU x 3 - Linear, CrossEntropyLoss, torch.optim.Adam.

All in this process with one thread count (``--threads``, default: NumPy's BLAS's) for
BLAS, numba and torch; rounds alternate so machine load hits each side alike
(``train_common``). Then each side is profiled by category.
"""

from __future__ import annotations

import argparse
import json
import sys

from normgrad._internal.threads import quiet_blas_spin

quiet_blas_spin()  # as the normgrad command does: OpenBLAS threads sleep after a product

import numpy as np
import torch
import train_common as tc

import normgrad.models.blocks as blocks
import normgrad.models.fc_net as fc_module
from normgrad.classifiers.fc_net import FullyConnectedNet
from normgrad.kernels import affine as kaffine
from normgrad.kernels import batchnorm as kbn
from normgrad.kernels import choose
from normgrad.kernels import pool as kpool
from normgrad.ops import activations

D, C, HIDDEN, BATCH = 3 * 32 * 32, 10, [512, 512, 512], 256

# (module, function, category) for the profile of our step
TARGETS = [
    (fc_module, "affine_forward", "affine (matmul + bias)"),
    (fc_module, "affine_backward", "affine (matmul + bias)"),
    (choose, "_affine_forward", "affine (matmul + bias)"),
    (choose, "_affine_backward", "affine (matmul + bias)"),
    (kaffine, "affine_forward_fused", "affine (matmul + bias)"),
    (kaffine, "affine_backward_fused", "affine (matmul + bias)"),
    (fc_module, "softmax_loss", "softmax loss"),
    (kbn, "batchnorm_relu_forward_fused", "batch norm (+ ReLU fused)"),
    (kbn, "batchnorm_backward_fused", "batch norm (+ ReLU fused)"),
    (blocks.FC_BLOCKS, "batchnorm", "batch norm (+ ReLU fused)"),
    (kpool, "relu_backward_fused", "relu"),
    (choose, "_relu_backward", "relu"),
    (activations.ACTIVATIONS, "relu", "relu"),
    (tc, "adam", "adam update"),
]


def _model() -> FullyConnectedNet:
    np.random.seed(0)  # noqa: NPY002  (the net draws from the global generator)
    return FullyConnectedNet(
        HIDDEN,
        input_dim=D,
        num_classes=C,
        normalization="batchnorm",
        weight_scale=2e-2,
        dtype=np.float32,
    )


def _torch_model() -> torch.nn.Module:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    dims = [D, *HIDDEN]
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.BatchNorm1d(b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(dims[-1], C))
    return torch.nn.Sequential(*layers)


def _torch_category(op: str) -> str:
    if any(k in op for k in ("addmm", "aten::mm", "matmul", "linear", "aten::t")):
        return "affine (matmul + bias)"
    if "batch_norm" in op:
        return "batch norm (+ ReLU fused)"
    if "relu" in op or "threshold" in op or "clamp_min" in op:
        return "relu"
    if any(k in op for k in ("log_softmax", "nll_loss", "cross_entropy")):
        return "softmax loss"
    if any(k in op for k in tc.ADAM_OPS):
        return "adam update"
    return "rest (python, casts, bookkeeping)"


def run(steps: int, repeats: int, warmup: int, threads: int | None, profile: bool) -> dict:
    threads = tc.set_threads(threads)
    rng = np.random.default_rng(0)
    pool_X = rng.standard_normal((4 * BATCH, D), dtype=np.float32)
    pool_y = rng.integers(0, C, 4 * BATCH)
    idx = [rng.integers(0, len(pool_X), BATCH) for _ in range(max(steps, warmup))]
    np_batches = [(pool_X[i], pool_y[i]) for i in idx]
    torch_batches = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in np_batches]
    ours, ref, theirs = (
        tc.OursStep(_model()),
        tc.OursStep(_model(), False),
        tc.TorchStep(_torch_model()),
    )
    rounds = tc.time_rounds(
        {
            "normgrad": (ours, np_batches[:steps]),
            "reference": (ref, np_batches[:steps]),
            "torch": (theirs, torch_batches[:steps]),
        },
        warmup,
        repeats,
    )
    result = {"threads": threads, "batch": BATCH, "steps_per_round": steps, "repeats": repeats}
    result.update(tc.summarize(rounds, BATCH))
    if profile:
        result["profile_ms_per_step"] = {
            "normgrad": tc.profile_ours(ours, np_batches[:steps], TARGETS),
            "reference": tc.profile_ours(ref, np_batches[:steps], TARGETS),
            "torch": tc.profile_torch(theirs, torch_batches[:steps], _torch_category),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per side")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per side first")
    ap.add_argument("--threads", type=int, help="default: the threads NumPy's BLAS uses")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    r = run(args.steps, args.repeats, args.warmup, args.threads, not args.no_profile)
    title = (
        f"FullyConnectedNet {HIDDEN} + batch norm, float32, batch {BATCH}, Adam; {r['threads']} "
        f"thread(s) for BLAS, numba and torch; median of {r['repeats']} rounds of "
        f"{r['steps_per_round']} steps"
    )
    print(tc.format_report(title, r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
