"""Helpers the normalization tests share, handed to tests as the ``nh`` fixture.

pytest runs with ``--import-mode=importlib``, so test modules cannot import each other or
a helper module beside them; a fixture is the way to share code here.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st


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


# --- random shapes for every registered normalization (property tests) ---------------
# name -> strategy of (x_shape, gamma_shape, options for NormSpec.call). Each group holds at
# least 3 values, so xhat is never the degenerate +-sqrt(var / (var + eps)) of 2 values.
# tests/norms/test_extremes.py fails if a registered normalization is missing here.


def _rows(lo: int, hi: int) -> Any:
    return st.tuples(st.integers(lo, hi), st.integers(1, 4))


def _maps() -> Any:  # (N, C, H, W) with N * H * W >= 3 and H * W >= 2
    return st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2), st.integers(2, 3))


LAYOUTS: dict[str, Any] = {
    "batchnorm": _rows(3, 8).map(lambda t: ((t[0], t[1]), (t[1],), {})),
    "layernorm": st.tuples(st.integers(1, 4), st.integers(3, 6)).map(
        lambda t: ((t[0], t[1]), (t[1],), {})
    ),
    "layernorm_nd": st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(3, 4)).map(
        lambda t: (t, t[1:], {"ndim": 2})
    ),
    "spatial_batchnorm": _maps()
    .filter(lambda t: t[0] * t[2] * t[3] >= 3)
    .map(lambda t: (t, (t[1],), {})),
    "groupnorm": st.tuples(  # N, G, C/G, H, W
        *(st.integers(1, hi) for hi in (2, 3, 2, 2)), st.integers(2, 3)
    )
    .filter(lambda t: t[2] * t[3] * t[4] >= 3)
    .map(lambda t: ((t[0], t[1] * t[2], t[3], t[4]), (1, t[1] * t[2], 1, 1), {"G": t[1]})),
    "instancenorm": _maps().filter(lambda t: t[2] * t[3] >= 3).map(lambda t: (t, (t[1],), {})),
    "rmsnorm": st.tuples(st.integers(1, 4), st.integers(2, 5)).map(
        lambda t: ((t[0], t[1]), (t[1],), {})
    ),
    "batchrenorm": st.tuples(
        _rows(3, 8), st.sampled_from([{}, {"r_max": 1, "d_max": 0}, {"r_max": 2.0, "d_max": 1.0}])
    ).map(lambda t: ((t[0][0], t[0][1]), (t[0][1],), t[1])),
    "sync_batchnorm": st.tuples(_rows(3, 8), st.sampled_from([{}, {"P": 2}, {"P": 3}])).map(
        lambda t: ((t[0][0], t[0][1]), (t[0][1],), t[1])
    ),
}


@pytest.fixture(scope="session")
def layouts() -> dict[str, Any]:
    """``LAYOUTS``: a session fixture, so hypothesis tests may use it."""
    return LAYOUTS
