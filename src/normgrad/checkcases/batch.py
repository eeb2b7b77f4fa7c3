"""Check cases for batch norm: every backward route, on the course's x = 5 randn + 12."""

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
