"""Check cases for batch norm: every backward route and the fused kernel, on x = 5 randn + 12."""

from __future__ import annotations

import numpy as np

from normgrad.checkcases import CheckCase, Inputs
from normgrad.norms import batch


def _inputs(rng: np.random.Generator) -> Inputs:
    # The course's check: x = 5 * randn + 12, so a missing centring shows up at once.
    N, D = 7, 5
    return {
        "x": 5.0 * rng.standard_normal((N, D)) + 12.0,
        "gamma": rng.standard_normal(D),
        "beta": rng.standard_normal(D),
    }


def _train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray):
    return batch.batchnorm_forward(x, gamma, beta, {"mode": "train"})


CASES: list[CheckCase] = [
    CheckCase("batchnorm", route, _train, backward, _inputs)
    for route, backward in batch.ROUTES.items()
]

try:  # the fused kernel needs numba (the `fast` extra)
    from normgrad.kernels import batchnorm_backward_fused, batchnorm_forward_fused
except ImportError:  # pragma: no cover
    pass
else:

    def _train_fused(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray):
        return batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})

    CASES.append(CheckCase("batchnorm", "fused", _train_fused, batchnorm_backward_fused, _inputs))
