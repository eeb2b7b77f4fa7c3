"""Check cases for the normalizations beyond batch norm (layer, group, instance, RMS...).

Inputs are offset and scaled (x = 5 randn + 12, as the course's batch-norm check), so a
missing centring or scaling shows up at once; shapes are small, since every element is
differentiated numerically.
"""

from __future__ import annotations

import numpy as np

from normgrad.checkcases import CheckCase, Inputs
from normgrad.norms import group, instance, layer, rms, spatial


def _x(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return 5.0 * rng.standard_normal(shape) + 12.0


def _affine(rng: np.random.Generator, x_shape: tuple[int, ...], p_shape: tuple[int, ...]) -> Inputs:
    return {
        "x": _x(rng, x_shape),
        "gamma": rng.standard_normal(p_shape),
        "beta": rng.standard_normal(p_shape),
    }


def _layernorm(x, gamma, beta):
    return layer.layernorm_forward(x, gamma, beta, {})


def _layernorm_nd(x, gamma, beta):
    return layer.layernorm_nd_forward(x, gamma, beta, (3, 4), {})


def _spatial_batchnorm(x, gamma, beta):
    return spatial.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})


def _groupnorm(x, gamma, beta):
    return group.spatial_groupnorm_forward(x, gamma, beta, 2, {})


def _instancenorm(x, gamma, beta):
    return instance.instancenorm_forward(x, gamma, beta, {})


def _rmsnorm(x, gamma):
    return rms.rmsnorm_forward(x, gamma, {"eps": 1e-5})


CASES: list[CheckCase] = [
    CheckCase("layernorm", "closed-form", _layernorm, layer.layernorm_backward,
              lambda rng: _affine(rng, (4, 6), (6,))),
    CheckCase("layernorm_nd", "closed-form", _layernorm_nd, layer.layernorm_nd_backward,
              lambda rng: _affine(rng, (2, 2, 3, 4), (3, 4))),
    CheckCase("spatial_batchnorm", "batch-alt", _spatial_batchnorm,
              spatial.spatial_batchnorm_backward, lambda rng: _affine(rng, (2, 3, 2, 3), (3,))),
    CheckCase("groupnorm", "closed-form", _groupnorm, group.spatial_groupnorm_backward,
              lambda rng: _affine(rng, (2, 4, 2, 3), (1, 4, 1, 1))),
    CheckCase("instancenorm", "closed-form", _instancenorm, instance.instancenorm_backward,
              lambda rng: _affine(rng, (2, 3, 2, 3), (3,))),
    CheckCase("rmsnorm", "closed-form", _rmsnorm, rms.rmsnorm_backward,
              lambda rng: {"x": _x(rng, (4, 6)), "gamma": rng.standard_normal(6)}),
]
