"""Training speed: the course's ThreeLayerConvNet with spatial batch norm against torch.nn.

    python benchmarks/bench_cnn_train.py [--threads N] [--steps 5] [--repeats 7] [--json F]

The course's sizes: 32 filters of 7x7 (stride 1, pad 3), spatial batch norm, ReLU, 2x2
max pool, hidden 100, 10 classes, batch 50 of CIFAR-shaped (3, 32, 32) random images,
float32, Adam (lr 1e-3). One step is forward + backward + an Adam update per parameter:

- normgrad: ``ThreeLayerConvNet(normalization="batchnorm").loss`` then
  ``normgrad.optim.adam`` (the fused kernels: copy-free im2col and col2im, spatial batch
  norm on NCHW, ReLU and pooling in one pass, the fused Adam; the model's numerics are the
  reference's: conv, ReLU and pooling bit for bit, batch norm to float32 rounding);
- reference: the same with ``normgrad.kernels.use_fused(False)``;
- torch: Conv2d - BatchNorm2d - ReLU - MaxPool2d - Linear - ReLU - Linear,
  CrossEntropyLoss, torch.optim.Adam.

One process, one thread count for BLAS, numba and torch, rounds alternating
(``train_common``); then each side is profiled by category.
"""

from __future__ import annotations

import sys

from normgrad._internal.threads import quiet_blas_spin

quiet_blas_spin()  # as the normgrad command does: OpenBLAS threads sleep after a product

import numpy as np
import torch
import train_common as tc

import normgrad.models.blocks as blocks
import normgrad.models.cnn as cnn_module
from normgrad.kernels import affine as kaffine
from normgrad.kernels import choose
from normgrad.kernels import conv as kconv
from normgrad.kernels import pool as kpool
from normgrad.kernels import spatial as kspatial
from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.ops import activations

BATCH, F, K, HIDDEN, C = 50, 32, 7, 100, 10

TARGETS = [
    (kconv, "conv_forward_fused", "conv (im2col + matmul)"),
    (kconv, "conv_backward_fused", "conv (im2col + matmul)"),
    (kconv, "conv_forward_channel_major", "conv (im2col + matmul)"),
    (choose, "conv_forward_fast", "conv (im2col + matmul)"),
    (choose, "conv_backward_fast", "conv (im2col + matmul)"),
    (kspatial, "spatial_batchnorm_forward_fused", "spatial batch norm"),
    (kspatial, "spatial_batchnorm_backward_fused", "spatial batch norm"),
    (kspatial, "spatial_batchnorm_relu_pool_forward_fused", "bn + relu + pool (one kernel)"),
    (kspatial, "spatial_batchnorm_relu_pool_backward_fused", "bn + relu + pool (one kernel)"),
    (blocks.CONV_BLOCKS, "batchnorm", "spatial batch norm"),
    (kpool, "relu_pool_forward", "relu + max pool"),
    (kpool, "relu_pool_backward", "relu + max pool"),
    (kpool, "relu_backward_fused", "relu + max pool"),
    (blocks, "max_pool_forward_fast", "relu + max pool"),
    (blocks, "max_pool_backward_fast", "relu + max pool"),
    (choose, "_relu_backward", "relu + max pool"),
    (activations.ACTIVATIONS, "relu", "relu + max pool"),
    (blocks, "relu_forward", "relu + max pool"),
    (cnn_module, "affine_forward", "affine (matmul + bias)"),
    (cnn_module, "affine_backward", "affine (matmul + bias)"),
    (choose, "_affine_forward", "affine (matmul + bias)"),
    (choose, "_affine_backward", "affine (matmul + bias)"),
    (kaffine, "affine_forward_fused", "affine (matmul + bias)"),
    (kaffine, "affine_backward_fused", "affine (matmul + bias)"),
    (cnn_module, "softmax_loss", "softmax loss"),
    (tc, "adam", "adam update"),
]


def _model() -> ThreeLayerConvNet:
    np.random.seed(0)  # noqa: NPY002  (the net draws from the global generator)
    return ThreeLayerConvNet(
        num_filters=F,
        filter_size=K,
        hidden_dim=HIDDEN,
        normalization="batchnorm",
        weight_scale=1e-2,
        dtype=np.float32,
    )


def _torch_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, F, K, padding=K // 2),
        torch.nn.BatchNorm2d(F),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(),
        torch.nn.Linear(F * 16 * 16, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, C),
    )


_torch_category = tc.torch_categories(
    (("conv", "mkldnn_convolution", "im2col", "col2im"), "conv (im2col + matmul)"),
    (("batch_norm",), "spatial batch norm"),
    (("relu", "threshold", "clamp_min", "max_pool", "pool"), "relu + max pool"),
)


BENCH = tc.Bench(
    title=(
        f"ThreeLayerConvNet {F} filters {K}x{K} + spatial batch norm, hidden {HIDDEN}, "
        f"float32, batch {BATCH}, Adam"
    ),
    model=_model,
    torch_model=_torch_model,
    row_shape=(3, 32, 32),
    classes=C,
    batch=BATCH,
    targets=TARGETS,
    torch_category=_torch_category,
    steps=5,
    warmup=3,
)


run = BENCH.run  # what the smoke test calls


if __name__ == "__main__":
    sys.exit(tc.main(BENCH, __doc__.split("\n\n")[0]))
