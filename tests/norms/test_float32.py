"""float32 data with a mean 1e4 to 1e6 times its spread, for every normalization.

DESIGN.md, Numerics: such data must still normalize to within 1e-3, which plain float32
arithmetic cannot do; every layer accumulates and centres in float64 and casts back. One
test, parametrized over the norms: the output matches the float64 layer on the same
(rounded) float32 values, each normalization group comes out with unit spread, and the
backward pass keeps float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from normgrad.layers import (
    batchnorm_backward_alt,
    batchnorm_forward,
    instancenorm_backward,
    instancenorm_forward,
    layernorm_backward,
    layernorm_forward,
    rmsnorm_backward,
    rmsnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)


@dataclass(frozen=True)
class Float32Case:
    """One normalization: its input shape, parameter shape, layer and unit-spread check."""

    shape: tuple[int, ...]  # x's shape
    p_shape: tuple[int, ...]  # gamma's (and beta's) shape
    forward: Callable  # (x, gamma, beta) -> (out, cache)
    backward: Callable  # (dout, cache) -> dx and the parameter gradients
    spread: Callable  # (out, gamma) -> the per-group spread, which must be 1
    seed: int
    random_gamma: bool = False  # RMS norm: a random scale (there is no shift)


def _std(*axes: int) -> Callable:
    return lambda out, gamma: out.std(axis=axes)


def _group_std(G: int) -> Callable:
    return lambda out, gamma: out.reshape(out.shape[0], G, -1).std(axis=2)


def _rms_of_unscaled(out: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((out / gamma) ** 2, axis=1))  # (N,): xhat has unit RMS per row


CASES = {
    "batch": Float32Case(
        (256, 8),
        (8,),
        lambda x, g, b: batchnorm_forward(x, g, b, {"mode": "train"}),
        batchnorm_backward_alt,
        _std(0),
        seed=14,
    ),
    "spatial batch": Float32Case(
        (8, 4, 6, 6),
        (4,),
        lambda x, g, b: spatial_batchnorm_forward(x, g, b, {"mode": "train"}),
        spatial_batchnorm_backward,
        _std(0, 2, 3),
        seed=12,
    ),
    "layer": Float32Case(
        (16, 64),
        (64,),
        lambda x, g, b: layernorm_forward(x, g, b, {}),
        layernorm_backward,
        _std(1),
        seed=13,
    ),
    "group": Float32Case(
        (4, 8, 6, 6),
        (1, 8, 1, 1),
        lambda x, g, b: spatial_groupnorm_forward(x, g, b, 4, {}),
        spatial_groupnorm_backward,
        _group_std(4),
        seed=8,
    ),
    "instance": Float32Case(
        (4, 3, 8, 8),
        (3,),
        lambda x, g, b: instancenorm_forward(x, g, b, {}),
        instancenorm_backward,
        _std(2, 3),
        seed=7,
    ),
    "rms": Float32Case(
        (8, 64),
        (64,),
        lambda x, g, b: rmsnorm_forward(x, g, {}),
        rmsnorm_backward,
        _rms_of_unscaled,
        seed=9,
        random_gamma=True,
    ),
}


@pytest.mark.parametrize("mean_over_spread", [1e4, 1e5, 1e6])
@pytest.mark.parametrize("name", list(CASES))
def test_float32_large_mean_normalizes(name, mean_over_spread):
    case = CASES[name]
    rng = np.random.default_rng(case.seed)
    x32 = (mean_over_spread + rng.standard_normal(case.shape)).astype(np.float32)
    gamma = rng.standard_normal(case.p_shape) if case.random_gamma else np.ones(case.p_shape)
    g32, b32 = gamma.astype(np.float32), np.zeros(case.p_shape, np.float32)
    out32, cache32 = case.forward(x32, g32, b32)
    # The float64 reference normalizes the same (rounded) float32 values.
    out64, _ = case.forward(x32.astype(np.float64), g32.astype(np.float64), b32.astype(np.float64))
    assert out32.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3
    np.testing.assert_allclose(case.spread(out32, gamma), 1.0, atol=1e-3)
    grads = case.backward(rng.standard_normal(case.shape).astype(np.float32), cache32)
    assert all(g.dtype == np.float32 for g in grads), [g.dtype for g in grads]
    assert all(np.all(np.isfinite(g)) for g in grads)
