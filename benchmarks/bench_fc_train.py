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


_torch_category = tc.torch_categories(
    (("batch_norm",), "batch norm (+ ReLU fused)"),
    (("relu", "threshold", "clamp_min"), "relu"),
)


BENCH = tc.Bench(
    title=f"FullyConnectedNet {HIDDEN} + batch norm, float32, batch {BATCH}, Adam",
    model=_model,
    torch_model=_torch_model,
    row_shape=(D,),
    classes=C,
    batch=BATCH,
    targets=TARGETS,
    torch_category=_torch_category,
    steps=10,
    warmup=5,
)


run = BENCH.run  # what the smoke test calls


if __name__ == "__main__":
    sys.exit(tc.main(BENCH, __doc__.split("\n\n")[0]))
