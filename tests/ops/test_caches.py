"""Every op's backward checks that its cache came from the matching forward.

A None cache, another layer's cache, a plain or shortened tuple, or a cache from the
other implementation of the same layer (naive vs fast) raises ``TypeError`` naming the
forward to call, before anything is computed, instead of an AttributeError or an
unpacking error from deep inside the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from normgrad.ops.activations import relu_backward, relu_forward, sigmoid_backward, sigmoid_forward
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.conv import conv_backward_naive, conv_forward_naive
from normgrad.ops.dropout import dropout_backward, dropout_forward
from normgrad.ops.fast import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_reshape,
)
from normgrad.ops.pool import max_pool_backward_naive, max_pool_forward_naive

RNG = np.random.default_rng(0)
X2 = RNG.standard_normal((4, 6))
W2, B2 = RNG.standard_normal((6, 3)), RNG.standard_normal(3)
X4 = RNG.standard_normal((2, 3, 4, 4))
W4, B4 = RNG.standard_normal((2, 3, 3, 3)), RNG.standard_normal(2)
CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}

# name -> (backward, forward name, a valid (out, cache) from the forward)
LAYERS: dict[str, tuple[Callable[..., Any], str, tuple[np.ndarray, Any]]] = {
    "affine": (affine_backward, "affine_forward", affine_forward(X2, W2, B2)),
    "relu": (relu_backward, "relu_forward", relu_forward(X2)),
    "sigmoid": (sigmoid_backward, "sigmoid_forward", sigmoid_forward(X2)),
    "dropout": (
        dropout_backward,
        "dropout_forward",
        dropout_forward(X2, {"mode": "train", "p": 0.5, "seed": 0}),
    ),
    "conv naive": (conv_backward_naive, "conv_forward_naive", conv_forward_naive(X4, W4, B4, CONV)),
    "conv fast": (conv_backward_fast, "conv_forward_fast", conv_forward_fast(X4, W4, B4, CONV)),
    "pool naive": (
        max_pool_backward_naive,
        "max_pool_forward_naive",
        max_pool_forward_naive(X4, POOL),
    ),
    "pool fast": (max_pool_backward_fast, "max_pool_forward_fast", max_pool_forward_fast(X4, POOL)),
    "pool reshape": (
        max_pool_backward_reshape,
        "max_pool_forward_reshape",
        max_pool_forward_reshape(X4, POOL),
    ),
}

# Another layer's cache for each (chosen to have a plausible type: a tuple, or an array).
OTHER = {
    "affine": "conv naive",
    "relu": "affine",
    "sigmoid": "dropout",
    "dropout": "affine",
    "conv naive": "conv fast",
    "conv fast": "conv naive",
    "pool naive": "pool fast",
    "pool fast": "pool naive",
    "pool reshape": "pool naive",
}


def _bad_caches(name: str) -> dict[str, Any]:
    cache = LAYERS[name][2][1]
    bad: dict[str, Any] = {
        "None": None,
        "list": [1, 2],
        "dict": {"x": X2},
        "string": "cache",
        "another layer's": LAYERS[OTHER[name]][2][1],
        "the out array": LAYERS["affine"][2][0] if name not in ("relu", "sigmoid") else None,
    }
    if isinstance(cache, tuple):
        bad["plain tuple"] = tuple(cache)  # the right items, not the forward's cache type
        bad["short tuple"] = tuple(cache)[:-1]
        bad["long tuple"] = (*cache, None)
    else:  # relu, sigmoid: a bare array; an integer array cannot come from their forward
        bad["int array"] = np.ones(X2.shape, dtype=np.int64)
        bad["a tuple"] = (cache,)
    return {k: c for k, c in bad.items() if not (k == "the out array" and c is None)}


CASES = [(name, kind) for name in LAYERS for kind in _bad_caches(name)]


@pytest.mark.parametrize("name, kind", CASES)
def test_wrong_cache_names_the_forward(name, kind):
    backward, forward, (out, _) = LAYERS[name]
    cache = _bad_caches(name)[kind]
    dout = np.random.default_rng(1).standard_normal(out.shape)
    with pytest.raises(TypeError, match=rf"needs the cache that {forward} returns.*{forward}\("):
        backward(dout, cache)


@pytest.mark.parametrize("name", LAYERS)
def test_the_right_cache_still_works(name):
    backward, _, (out, cache) = LAYERS[name]
    dout = np.random.default_rng(2).standard_normal(out.shape)
    grads = backward(dout, cache)
    first = grads[0] if isinstance(grads, tuple) else grads
    assert isinstance(first, np.ndarray) and np.all(np.isfinite(first))


def test_case_count():
    assert len(CASES) >= 60, len(CASES)
