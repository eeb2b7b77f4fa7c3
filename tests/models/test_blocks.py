"""Sandwich layers: wiring against the parts, finite differences, PyTorch parity, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad import layer_utils as lu
from normgrad.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normgrad.gradient_check import check_layer
from normgrad.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from normgrad.tools import block_cases
from normgrad.tools.checks import run_checks

SANDWICHES = [
    "affine_relu",
    "affine_norm_relu",
    "conv_relu",
    "conv_relu_pool",
    "conv_bn_relu",
    "conv_norm_relu_pool",
]
CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_gradient_passes_finite_differences(seed):
    # The registered check cases draw inputs clear of ReLU and pooling kinks.
    rows = run_checks(SANDWICHES, seed=seed)
    names = {(r.layer, r.route, r.gradient) for r in rows}
    for grad in ("dx", "dw", "db"):
        assert ("conv_relu_pool", "sandwich", grad) in names
        assert ("affine_norm_relu", "layernorm", grad) in names
    assert ("conv_bn_relu", "test", "db") in names
    assert ("affine_norm_relu", "batchnorm test", "dgamma") in names
    for route in ("none", "batchnorm train", "batchnorm test", "groupnorm"):
        assert ("conv_norm_relu_pool", route, "dx") in names
    assert ("conv_norm_relu_pool", "groupnorm", "dbeta") in names
    bad = [(r.layer, r.route, r.gradient, r.rel_error) for r in rows if not r.rel_error < 1e-8]
    assert not bad


def _rng(seed):
    return np.random.default_rng(seed)


def test_affine_relu_is_affine_then_relu():
    rng = _rng(3)
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    out, cache = lu.affine_relu_forward(x, w, b)
    a, fc = affine_forward(x, w, b)
    r, rc = relu_forward(a)
    np.testing.assert_array_equal(out, r)
    for ours, theirs in zip(
        lu.affine_relu_backward(dout, cache), affine_backward(relu_backward(dout, rc), fc)
    ):
        np.testing.assert_array_equal(ours, theirs)


def test_conv_relu_pool_is_its_parts():
    rng = _rng(4)
    x, w, b = (
        rng.standard_normal((2, 3, 6, 6)),
        rng.standard_normal((4, 3, 3, 3)),
        rng.standard_normal(4),
    )
    out, cache = lu.conv_relu_pool_forward(x, w, b, CONV, POOL)
    a, cc = conv_forward_fast(x, w, b, CONV)
    s, rc = relu_forward(a)
    p, pc = max_pool_forward_fast(s, POOL)
    np.testing.assert_array_equal(out, p)
    dout = rng.standard_normal(out.shape)
    theirs = conv_backward_fast(relu_backward(max_pool_backward_fast(dout, pc), rc), cc)
    for ours, t in zip(lu.conv_relu_pool_backward(dout, cache), theirs):
        np.testing.assert_array_equal(ours, t)


def test_conv_bn_relu_is_its_parts_and_updates_running_stats():
    rng = _rng(5)
    x, w, b = (
        rng.standard_normal((3, 2, 5, 5)),
        rng.standard_normal((4, 2, 3, 3)),
        rng.standard_normal(4),
    )
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    bn_param = {"mode": "train"}
    out, cache = lu.conv_bn_relu_forward(x, w, b, gamma, beta, CONV, bn_param)
    assert bn_param["running_mean"].shape == (4,)  # written back, as the course does
    a, cc = conv_forward_fast(x, w, b, CONV)
    an, bc = spatial_batchnorm_forward(a, gamma, beta, {"mode": "train"})
    r, rc = relu_forward(an)
    np.testing.assert_array_equal(out, r)
    dout = rng.standard_normal(out.shape)
    da, dgamma, dbeta = spatial_batchnorm_backward(relu_backward(dout, rc), bc)
    theirs = (*conv_backward_fast(da, cc), dgamma, dbeta)
    for ours, t in zip(lu.conv_bn_relu_backward(dout, cache), theirs):
        np.testing.assert_array_equal(ours, t)


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
def test_affine_norm_relu_matches_torch(normalization):
    rng = _rng(6)
    N, D, M = 8, 6, 5
    x, w, b = rng.standard_normal((N, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    gamma, beta = 1.0 + 0.3 * rng.standard_normal(M), 0.3 * rng.standard_normal(M)
    dout = rng.standard_normal((N, M))
    out, cache = lu.affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"}, normalization)
    grads = lu.affine_norm_relu_backward(dout, cache)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b, gamma, beta)]
    a = ts[0] @ ts[1] + ts[2]
    if normalization == "batchnorm":
        an = F.batch_norm(a, None, None, ts[3], ts[4], training=True, eps=1e-5)
    else:
        an = F.layer_norm(a, (M,), ts[3], ts[4], eps=1e-5)
    yt = F.relu(an)
    yt.backward(torch.tensor(dout))
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    for ours, t in zip(grads, ts):
        assert np.max(np.abs(ours - t.grad.numpy())) < 1e-9


def test_conv_bn_relu_matches_torch():
    rng = _rng(7)
    x, w, b = (
        rng.standard_normal((4, 3, 7, 7)),
        rng.standard_normal((5, 3, 3, 3)),
        rng.standard_normal(5),
    )
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    conv = {"stride": 2, "pad": 1}
    out, cache = lu.conv_bn_relu_forward(x, w, b, gamma, beta, conv, {"mode": "train"})
    dout = rng.standard_normal(out.shape)
    grads = lu.conv_bn_relu_backward(dout, cache)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b, gamma, beta)]
    a = F.conv2d(ts[0], ts[1], ts[2], stride=2, padding=1)
    yt = F.relu(F.batch_norm(a, None, None, ts[3], ts[4], training=True, eps=1e-5))
    yt.backward(torch.tensor(dout))
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    for ours, t in zip(grads, ts):
        assert np.max(np.abs(ours - t.grad.numpy())) < 1e-9


def test_bias_before_train_mode_batch_norm_gets_zero_gradient():
    # Subtracting the batch mean cancels b, so db is 0 up to rounding (FD cannot check it).
    rng = _rng(8)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    _, cache = lu.affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"}, "batchnorm")
    dout = rng.standard_normal((6, 3))
    _, _, db, _, _ = lu.affine_norm_relu_backward(dout, cache)
    assert np.max(np.abs(db)) < 1e-12 * np.max(np.abs(dout))


def test_affine_norm_relu_batchnorm_is_its_parts():
    rng = _rng(9)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    bn_param = {"mode": "train"}
    out, cache = lu.affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")
    assert "running_var" in bn_param
    a, fc = affine_forward(x, w, b)
    an, bc = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    r, rc = relu_forward(an)
    np.testing.assert_array_equal(out, r)
    dout = rng.standard_normal(out.shape)
    da, dgamma, dbeta = batchnorm_backward_alt(relu_backward(dout, rc), bc)
    theirs = (*affine_backward(da, fc), dgamma, dbeta)
    for ours, t in zip(lu.affine_norm_relu_backward(dout, cache), theirs):
        np.testing.assert_array_equal(ours, t)


def test_affine_norm_relu_without_normalization_is_affine_relu():
    rng = _rng(10)
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    out, cache = lu.affine_norm_relu_forward(x, w, b, None, None, None, None)
    ref, ref_cache = lu.affine_relu_forward(x, w, b)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    dx, dw, db, dgamma, dbeta = lu.affine_norm_relu_backward(dout, cache)
    for ours, t in zip((dx, dw, db), lu.affine_relu_backward(dout, ref_cache)):
        np.testing.assert_array_equal(ours, t)
    assert dgamma is None and dbeta is None


def test_unknown_normalization():
    x, w, b = np.ones((2, 3)), np.ones((3, 2)), np.ones(2)
    with pytest.raises(ValueError, match="normalization must be 'batchnorm' or 'layernorm'"):
        lu.affine_norm_relu_forward(x, w, b, np.ones(2), np.zeros(2), {}, "groupnorm")


# --- conv_norm_relu_pool ------------------------------------------------------------------


@pytest.mark.parametrize("route", ["none", "batchnorm train", "batchnorm test", "groupnorm"])
@pytest.mark.parametrize("seed", [0, 3])
def test_conv_norm_relu_pool_finite_differences(route, seed):
    # float64, random upstream gradient (check_layer's own), inputs clear of every kink.
    (case,) = [
        c for c in block_cases.CASES if c.layer == "conv_norm_relu_pool" and c.route == route
    ]
    report = check_layer(
        case.forward, case.backward, case.make_inputs(np.random.default_rng(seed)), seed=seed + 1
    )
    assert report.grads and all(g.rel_error < 1e-8 for g in report.grads), report.grads


@pytest.mark.parametrize("normalization, G", [("batchnorm", None), ("groupnorm", 2)])
def test_conv_norm_relu_pool_is_its_parts(normalization, G):
    rng = _rng(11)
    x, w, b = (
        rng.standard_normal((3, 2, 6, 6)),
        rng.standard_normal((4, 2, 3, 3)),
        rng.standard_normal(4),
    )
    pshape = (4,) if normalization == "batchnorm" else (1, 4, 1, 1)
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    norm_param = {"mode": "train"} if normalization == "batchnorm" else {}
    out, cache = lu.conv_norm_relu_pool_forward(
        x, w, b, gamma, beta, CONV, POOL, norm_param, normalization, G=G
    )
    a, cc = conv_forward_fast(x, w, b, CONV)
    if normalization == "batchnorm":
        assert norm_param["running_mean"].shape == (4,)  # written back
        an, nc = spatial_batchnorm_forward(a, gamma, beta, {"mode": "train"})
        norm_backward = spatial_batchnorm_backward
    else:
        an, nc = spatial_groupnorm_forward(a, gamma, beta, G, {})
        norm_backward = spatial_groupnorm_backward
    r, rc = relu_forward(an)
    p, pc = max_pool_forward_fast(r, POOL)
    np.testing.assert_array_equal(out, p)
    dout = rng.standard_normal(out.shape)
    da, dgamma, dbeta = norm_backward(relu_backward(max_pool_backward_fast(dout, pc), rc), nc)
    theirs = (*conv_backward_fast(da, cc), dgamma, dbeta)
    ours = lu.conv_norm_relu_pool_backward(dout, cache)
    assert len(ours) == 5
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o, t)


def test_conv_norm_relu_pool_without_normalization_is_conv_relu_pool():
    rng = _rng(12)
    x, w, b = (
        rng.standard_normal((2, 3, 6, 6)),
        rng.standard_normal((4, 3, 3, 3)),
        rng.standard_normal(4),
    )
    out, cache = lu.conv_norm_relu_pool_forward(x, w, b, None, None, CONV, POOL, None, None)
    ref, ref_cache = lu.conv_relu_pool_forward(x, w, b, CONV, POOL)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    dx, dw, db, dgamma, dbeta = lu.conv_norm_relu_pool_backward(dout, cache)
    for o, t in zip((dx, dw, db), lu.conv_relu_pool_backward(dout, ref_cache)):
        np.testing.assert_array_equal(o, t)
    assert dgamma is None and dbeta is None


def test_conv_norm_relu_pool_errors():
    x, w, b = np.ones((1, 2, 4, 4)), np.ones((4, 2, 3, 3)), np.zeros(4)
    g, bt = np.ones((1, 4, 1, 1)), np.zeros((1, 4, 1, 1))
    with pytest.raises(ValueError, match="normalization must be 'batchnorm' or 'groupnorm'"):
        lu.conv_norm_relu_pool_forward(x, w, b, g, bt, CONV, POOL, {}, "layernorm")
    with pytest.raises(ValueError, match="needs G.*pass G"):
        lu.conv_norm_relu_pool_forward(x, w, b, g, bt, CONV, POOL, {}, "groupnorm")


# --- need_dx -------------------------------------------------------------------------------


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_need_dx_false_returns_none_and_the_same_parameter_gradients(normalization):
    rng = _rng(13)
    x, w, b = rng.standard_normal((6, 2, 2)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    norm_param = {"mode": "train"} if normalization == "batchnorm" else {}
    _, cache = lu.affine_norm_relu_forward(x, w, b, gamma, beta, norm_param, normalization)
    dout = rng.standard_normal((6, 3))
    full = lu.affine_norm_relu_backward(dout, cache)
    lean = lu.affine_norm_relu_backward(dout, cache, need_dx=False)
    assert full[0].shape == x.shape and lean[0] is None
    for f, g in zip(full[1:], lean[1:]):
        if f is None:
            assert g is None
        else:
            np.testing.assert_array_equal(f, g)
    _, rcache = lu.affine_relu_forward(x, w, b)
    full = lu.affine_relu_backward(dout, rcache)
    lean = lu.affine_relu_backward(dout, rcache, need_dx=False)
    assert full[0].shape == x.shape and lean[0] is None
    for f, g in zip(full[1:], lean[1:]):
        np.testing.assert_array_equal(f, g)
