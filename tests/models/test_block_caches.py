"""The sandwiches' backward passes check their caches; their forwards check before writing.

Each sandwich's cache is a NamedTuple of its layers' caches. A None cache, a plain or
shortened tuple, another sandwich's cache or a single layer's cache raises ``TypeError``
naming the sandwich forward to call. A conv sandwich checks conv_param and pool_param
before any layer runs, so a bad pool_param cannot leave batch norm's running statistics
updated.
"""

# ruff: noqa: E501  (the table of sandwiches keeps one call a line)

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from normgrad.models import blocks as lu
from normgrad.ops.affine import affine_forward

RNG = np.random.default_rng(0)
X2, W2, B2 = RNG.standard_normal((4, 6)), RNG.standard_normal((6, 3)), RNG.standard_normal(3)
G2, BETA2 = 1.0 + 0.1 * RNG.standard_normal(3), 0.1 * RNG.standard_normal(3)
X4 = RNG.standard_normal((2, 3, 4, 4))
W4, B4 = RNG.standard_normal((4, 3, 3, 3)), RNG.standard_normal(4)
G4, BETA4 = np.ones(4), np.zeros(4)
CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}

# sandwich -> (backward, forward's name, a valid (out, cache))
SANDWICHES: dict[str, tuple[Any, str, tuple[np.ndarray, Any]]] = {
    "affine_relu": (lu.affine_relu_backward, "affine_relu_forward", lu.affine_relu_forward(X2, W2, B2)),
    "affine_norm_act": (
        lu.affine_norm_act_backward,
        "affine_norm_act_forward",
        lu.affine_norm_act_forward(X2, W2, B2, G2, BETA2, {"mode": "train"}, "batchnorm", "sigmoid"),
    ),
    "affine_norm_relu": (
        lu.affine_norm_relu_backward,
        "affine_norm_relu_forward",
        lu.affine_norm_relu_forward(X2, W2, B2, G2, BETA2, {}, "layernorm"),
    ),
    "conv_relu": (lu.conv_relu_backward, "conv_relu_forward", lu.conv_relu_forward(X4, W4, B4, CONV)),
    "conv_bn_relu": (
        lu.conv_bn_relu_backward,
        "conv_bn_relu_forward",
        lu.conv_bn_relu_forward(X4, W4, B4, G4, BETA4, CONV, {"mode": "train"}),
    ),
    "conv_relu_pool": (
        lu.conv_relu_pool_backward,
        "conv_relu_pool_forward",
        lu.conv_relu_pool_forward(X4, W4, B4, CONV, POOL),
    ),
    "conv_norm_relu_pool": (
        lu.conv_norm_relu_pool_backward,
        "conv_norm_relu_pool_forward",
        lu.conv_norm_relu_pool_forward(X4, W4, B4, G4, BETA4, CONV, POOL, {"mode": "train"}, "batchnorm"),
    ),
}  # fmt: skip

OTHER = {
    "affine_relu": "conv_relu",
    "affine_norm_act": "conv_norm_relu_pool",
    "affine_norm_relu": "conv_bn_relu",
    "conv_relu": "affine_relu",
    "conv_bn_relu": "conv_norm_relu_pool",
    "conv_relu_pool": "conv_bn_relu",
    "conv_norm_relu_pool": "affine_norm_act",
}


def _bad(name: str) -> dict[str, Any]:
    cache = SANDWICHES[name][2][1]
    return {
        "None": None,
        "list": list(cache),
        "plain tuple": tuple(cache),  # the right items, but not the sandwich's cache
        "short tuple": tuple(cache)[:-1],
        "long tuple": (*cache, None),
        "another sandwich's": SANDWICHES[OTHER[name]][2][1],
        "one layer's": affine_forward(X2, W2, B2)[1],
        "its first layer's": cache[0],
    }


CASES = [(name, kind) for name in SANDWICHES for kind in _bad(name)]


@pytest.mark.parametrize("name, kind", CASES)
def test_wrong_sandwich_cache_names_the_forward(name, kind):
    backward, forward, (out, _) = SANDWICHES[name]
    dout = np.random.default_rng(1).standard_normal(out.shape)
    with pytest.raises(
        TypeError, match=rf"^{name}_backward needs the cache that {forward} returns"
    ):
        backward(dout, _bad(name)[kind])


@pytest.mark.parametrize("name", SANDWICHES)
def test_the_right_cache_still_works(name):
    backward, _, (out, cache) = SANDWICHES[name]
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dx = backward(dout, cache)[0]
    assert dx.shape == (X2 if name.startswith("affine") else X4).shape


@pytest.mark.parametrize("name", SANDWICHES)
def test_bad_dout_is_refused(name):
    backward, _, (out, cache) = SANDWICHES[name]
    with pytest.raises(ValueError, match="^dout must have shape"):
        backward(np.ones(out.shape[:-1] + (out.shape[-1] + 1,)), cache)
    with pytest.raises(TypeError, match="^dout must"):
        backward(np.ones(out.shape, dtype=np.int64), cache)


@pytest.mark.parametrize(
    "pool_param, match",
    [
        ({**POOL, "pool_size": 2}, "pool_param has unknown key 'pool_size'"),
        ({**POOL, "stride": 3}, "the windows do not tile"),
        ({**POOL, "stride": "2"}, r"pool_param\['stride'\] must be an integer"),
        ({"pool_height": 2, "pool_width": 2}, "pool_param must contain 'stride'"),
        (None, "pool_param must be a dict"),
    ],
)
def test_bad_pool_param_leaves_batch_norm_untouched(pool_param, match):
    bn_param: dict[str, Any] = {"mode": "train", "running_mean": np.full(4, 0.5)}
    before = copy.deepcopy(bn_param)
    with pytest.raises((TypeError, ValueError), match=match):
        lu.conv_norm_relu_pool_forward(
            X4, W4, B4, G4, BETA4, CONV, pool_param, bn_param, "batchnorm"
        )
    assert bn_param.keys() == before.keys()
    np.testing.assert_array_equal(bn_param["running_mean"], before["running_mean"])
    with pytest.raises((TypeError, ValueError), match=match):
        lu.conv_relu_pool_forward(X4, W4, B4, CONV, pool_param)


@pytest.mark.parametrize(
    "conv_param, match",
    [
        ({**CONV, "padding": 1}, "conv_param has unknown key 'padding'"),
        ({"stride": 1.5, "pad": 1}, "non-integral 1.5"),
        ({"stride": 3, "pad": 0}, "the windows do not tile"),
    ],
)
@pytest.mark.parametrize("name", ["conv_relu", "conv_bn_relu", "conv_norm_relu_pool"])
def test_bad_conv_param_in_every_conv_sandwich(conv_param, match, name):
    bn_param: dict[str, Any] = {"mode": "train"}
    with pytest.raises((TypeError, ValueError), match=match):
        if name == "conv_relu":
            lu.conv_relu_forward(X4, W4, B4, conv_param)
        elif name == "conv_bn_relu":
            lu.conv_bn_relu_forward(X4, W4, B4, G4, BETA4, conv_param, bn_param)
        else:
            lu.conv_norm_relu_pool_forward(
                X4, W4, B4, G4, BETA4, conv_param, POOL, bn_param, "batchnorm"
            )
    assert bn_param == {"mode": "train"}


def test_case_count():
    assert len(CASES) >= 50


def test_one_kernel_cache_without_its_kernel_is_refused():
    """float32 with batch norm runs norm, ReLU and pool as one kernel (pool cache None);
    the same cache with its fused pair taken away is a TypeError, not an assert."""
    pytest.importorskip("numba")
    x, w, b = (a.astype(np.float32) for a in (X4, W4, B4))
    g, beta = G4.astype(np.float32), BETA4.astype(np.float32)
    out, cache = lu.conv_norm_relu_pool_forward(
        x, w, b, g, beta, CONV, POOL, {"mode": "train"}, "batchnorm"
    )
    assert cache.pool is None and cache.fused is not None  # the one-kernel path ran
    dout = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
    with pytest.raises(
        TypeError,
        match="^conv_norm_relu_pool_backward needs the cache that conv_norm_relu_pool_forward returns",
    ):
        lu.conv_norm_relu_pool_backward(dout, cache._replace(fused=None))
    assert lu.conv_norm_relu_pool_backward(dout, cache)[1].shape == w.shape
