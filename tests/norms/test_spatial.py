"""Spatial batch norm: batch norm over (N, H, W) per channel, reusing norms/batch.py.

Every gradient test is float64 with a random upstream gradient, never ones_like.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    torch_bn_param,
)


@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (1, 2, 3, 2), (3, 1, 2, 2)])
def test_finite_differences(shape, nh):
    x, gamma, beta, _ = nh.channel_inputs(shape, seed=1)
    report = check_layer(
        lambda x, g, b: spatial_batchnorm_forward(x, g, b, {"mode": "train"}),
        spatial_batchnorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=2,
    )
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def test_test_mode_finite_differences(nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2), seed=3)
    rng = np.random.default_rng(4)
    param = {
        "mode": "test",
        "running_mean": rng.standard_normal(3) + 12.0,
        "running_var": rng.uniform(10, 30, 3),
    }
    report = check_layer(
        lambda x, g, b: spatial_batchnorm_forward(x, g, b, dict(param)),
        spatial_batchnorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
    )
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def _torch_bn(x, gamma, beta, dout, eps, training=True, rm=None, rv=None):
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    yt = F.batch_norm(xt, rm, rv, gt, bt, training=training, eps=eps)
    yt.backward(torch.tensor(dout))
    return yt.detach().numpy(), [xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()]


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 5, 3, 3), (1, 2, 4, 4)])
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_train_matches_torch_batch_norm_4d(shape, eps, nh):
    x, gamma, beta, dout = nh.channel_inputs(shape, seed=5)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    grads = spatial_batchnorm_backward(dout, cache)
    tout, tgrads = _torch_bn(x, gamma, beta, dout, eps)
    assert nh.max_abs(out, tout) < 1e-10
    for ours, theirs in zip(grads, tgrads):
        assert ours.shape == theirs.shape
        assert nh.max_abs(ours, theirs) < 1e-9


def test_test_mode_matches_torch(nh):
    x, gamma, beta, dout = nh.channel_inputs((3, 4, 2, 5), seed=6)
    rng = np.random.default_rng(7)
    rm, rv = rng.standard_normal(4) + 12.0, rng.uniform(10, 30, 4)
    param = {"mode": "test", "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, param)
    grads = spatial_batchnorm_backward(dout, cache)
    tout, tgrads = _torch_bn(
        x, gamma, beta, dout, 1e-5, training=False, rm=torch.tensor(rm), rv=torch.tensor(rv)
    )
    assert nh.max_abs(out, tout) < 1e-10
    for ours, theirs in zip(grads, tgrads):
        assert nh.max_abs(ours, theirs) < 1e-9


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_stats_match_torch_batchnorm2d_over_steps(momentum, nh):
    C = 3
    bn = torch.nn.BatchNorm2d(C, eps=1e-5, momentum=momentum, dtype=torch.float64)
    param = torch_bn_param(C, momentum=momentum)
    gamma, beta = np.ones(C), np.zeros(C)
    rng = np.random.default_rng(8)
    for _ in range(6):
        x = 3.0 * rng.standard_normal((4, C, 3, 5)) + rng.standard_normal(C)[:, None, None] * 4
        out, _ = spatial_batchnorm_forward(x, gamma, beta, param)
        tout = bn(torch.tensor(x)).detach().numpy()
        assert nh.max_abs(out, tout) < 1e-10
    assert nh.max_abs(param["running_mean"], bn.running_mean.numpy()) < 1e-12
    assert nh.max_abs(param["running_var"], bn.running_var.numpy()) < 1e-12
    assert param["num_batches_tracked"] == int(bn.num_batches_tracked) == 6
    bn.eval()
    x = rng.standard_normal((2, C, 3, 3))
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {**param, "mode": "test"})
    assert nh.max_abs(out, bn(torch.tensor(x)).detach().numpy()) < 1e-10


def test_course_running_stats_convention(nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 4, 4), seed=9)
    param = {"mode": "train"}  # momentum 0.9, biased var, running stats start at zero
    spatial_batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_allclose(param["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(param["running_var"], 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-13)


def test_equals_batch_norm_on_pixel_rows(nh):
    # The layer is batch norm on (N*H*W, C); its gradients agree with the staged graph route.
    x, gamma, beta, dout = nh.channel_inputs((2, 3, 4, 5), seed=10)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    rows = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    drows = dout.transpose(0, 2, 3, 1).reshape(-1, 3)
    rout, rcache = batchnorm_forward(rows, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out, rout.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2), atol=1e-14)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    gdx, gdgamma, gdbeta = batchnorm_backward(drows, rcache)
    assert nh.max_abs(dx, gdx.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2)) < 1e-12
    assert nh.max_abs(dgamma, gdgamma) < 1e-12 and nh.max_abs(dbeta, gdbeta) < 1e-12


def test_dx_sums_to_zero_per_channel(nh):
    x, gamma, beta, dout = nh.channel_inputs((3, 4, 3, 3), seed=11)
    _, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, _, _ = spatial_batchnorm_backward(dout, cache)
    assert np.max(np.abs(dx.sum(axis=(0, 2, 3)))) < 1e-12 * np.abs(dx).sum()
    assert np.max(np.abs(dx)) > 1e-3


def test_forward_never_modifies_gamma_beta(nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2), seed=13)
    g0, b0 = gamma.copy(), beta.copy()
    spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_array_equal(gamma, g0)
    np.testing.assert_array_equal(beta, b0)


# --- bad input -----------------------------------------------------------------------


def test_x_not_4d_points_to_batchnorm_forward():
    param = {"mode": "train", "running_mean": np.zeros(3), "running_var": np.ones(3)}
    saved = copy.deepcopy(param)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\).*batchnorm_forward"):
        spatial_batchnorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3), param)
    assert param.keys() == saved.keys()
    for k in ("running_mean", "running_var"):
        np.testing.assert_array_equal(param[k], saved[k])


@pytest.mark.parametrize("which", ["gamma", "beta"])
def test_wrong_gamma_or_beta_shape(which, nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2))
    args = {"gamma": gamma, "beta": beta, which: np.ones((1, 3, 1, 1))}
    param = {"mode": "train"}
    with pytest.raises(ValueError, match=rf"{which} must have shape \(3,\).*channel"):
        spatial_batchnorm_forward(x, args["gamma"], args["beta"], param)
    assert param == {"mode": "train"}


def test_bad_mode_leaves_param_unchanged(nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2))
    param = {"mode": "eval", "running_mean": np.zeros(3)}
    with pytest.raises(ValueError, match="mode"):
        spatial_batchnorm_forward(x, gamma, beta, param)
    assert set(param) == {"mode", "running_mean"}


def test_one_value_per_channel_in_train_mode():
    param = {"mode": "train"}
    with pytest.raises(ValueError, match=r"at least 2 values per channel \(N\*H\*W >= 2\)"):
        spatial_batchnorm_forward(np.ones((1, 3, 1, 1)), np.ones(3), np.zeros(3), param)
    assert param == {"mode": "train"}


def test_course_cell_integer_gamma_beta():
    # The course's spatial batch norm cell: x = 4 * randn + 10, then integer
    # gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8]).
    np.random.seed(231)  # noqa: NPY002 - the course notebook's global RNG
    N, C, H, W = 2, 3, 4, 5
    x = 4 * np.random.randn(N, C, H, W) + 10  # noqa: NPY002
    bn_param = {"mode": "train"}
    gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [6, 7, 8], atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), [3, 4, 5], rtol=1e-4)
    assert gamma.dtype.kind == "i" and beta.dtype.kind == "i"  # read, never modified
    ref, ref_cache = spatial_batchnorm_forward(
        x, gamma.astype(float), beta.astype(float), {"mode": "train"}
    )
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)
    dout = np.random.randn(N, C, H, W)  # noqa: NPY002
    grads = spatial_batchnorm_backward(dout, cache)
    for ours, theirs in zip(grads, spatial_batchnorm_backward(dout, ref_cache)):
        assert ours.dtype == np.float64  # floating, never truncated to int
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    assert not np.array_equal(grads[1], np.trunc(grads[1]))
    # float32 x with int gamma/beta: everything in float32
    out32, cache32 = spatial_batchnorm_forward(x.astype(np.float32), gamma, beta, {"mode": "train"})
    assert out32.dtype == np.float32
    dx32, dg32, db32 = spatial_batchnorm_backward(dout.astype(np.float32), cache32)
    assert dx32.dtype == dg32.dtype == db32.dtype == np.float32
