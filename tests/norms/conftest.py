"""Helpers the normalization tests share, handed to tests as the ``nh`` fixture.

pytest runs with ``--import-mode=importlib``, so test modules cannot import each other or
a helper module beside them; a fixture is the way to share code here.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pytest


def inputs(x_shape: Sequence[int], p_shape: Sequence[int], seed: int = 0):
    """x = 5 randn + 12 (a mean well off 0), gamma and beta: p_shape, and a random dout.

    Returns (x, gamma, beta, dout), drawn in that order from ``default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal(x_shape) + 12.0
    gamma = rng.standard_normal(p_shape)
    beta = rng.standard_normal(p_shape)
    return x, gamma, beta, rng.standard_normal(x_shape)


def channel_inputs(x_shape: Sequence[int], seed: int = 0):
    """``inputs`` with one gamma and beta per channel, (C,) for x: (N, C, ...)."""
    return inputs(x_shape, (x_shape[1],), seed)


def channel4d_inputs(x_shape: Sequence[int], seed: int = 0):
    """``inputs`` with the course's group-norm parameter shape (1, C, 1, 1)."""
    return inputs(x_shape, (1, x_shape[1], 1, 1), seed)


def rms_inputs(x_shape: Sequence[int], g_shape: Sequence[int], seed: int = 0, offset: float = 2.0):
    """x = 3 randn + offset, gamma: g_shape and dout (RMS norm has no beta)."""
    rng = np.random.default_rng(seed)
    x = 3.0 * rng.standard_normal(x_shape) + offset
    return x, rng.standard_normal(g_shape), rng.standard_normal(x_shape)


def max_abs(a, b) -> float:
    """The largest absolute difference between two arrays (or tensors)."""
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.fixture
def nh() -> SimpleNamespace:
    """The shared helpers: ``nh.inputs``, ``nh.channel_inputs``, ``nh.max_abs``..."""
    return SimpleNamespace(
        inputs=inputs,
        channel_inputs=channel_inputs,
        channel4d_inputs=channel4d_inputs,
        rms_inputs=rms_inputs,
        max_abs=max_abs,
    )
