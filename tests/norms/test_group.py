"""Group norm: FD, F.group_norm parity, the G = 1 and G = C special cases, errors.

Every gradient test is float64 with a random upstream gradient, never ones_like.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import (
    instancenorm_backward,
    instancenorm_forward,
    layernorm_nd_backward,
    layernorm_nd_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)


@pytest.mark.parametrize(
    "shape, G", [((2, 4, 2, 3), 2), ((2, 6, 2, 2), 3), ((1, 3, 2, 2), 1), ((2, 3, 2, 2), 3)]
)
def test_finite_differences(shape, G, nh):
    x, gamma, beta, _ = nh.channel4d_inputs(shape, seed=1)
    report = check_layer(
        lambda x, g, b: spatial_groupnorm_forward(x, g, b, G, {"eps": 1e-5}),
        spatial_groupnorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=2,
    )
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


@pytest.mark.parametrize(
    "shape, G",
    [((3, 6, 4, 5), 1), ((3, 6, 4, 5), 2), ((3, 6, 4, 5), 3), ((3, 6, 4, 5), 6), ((2, 8, 3, 1), 4)],
)
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_matches_torch_group_norm(shape, G, eps, nh):
    x, gamma, beta, dout = nh.channel4d_inputs(shape, seed=3)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, {"eps": eps})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    C = shape[1]
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma.reshape(C), requires_grad=True)
    bt = torch.tensor(beta.reshape(C), requires_grad=True)
    yt = F.group_norm(xt, G, gt, bt, eps)
    yt.backward(torch.tensor(dout))
    assert nh.max_abs(out, yt.detach().numpy()) < 1e-10
    assert dgamma.shape == dbeta.shape == (1, C, 1, 1)
    assert nh.max_abs(dx, xt.grad.numpy()) < 1e-9
    assert nh.max_abs(dgamma.reshape(C), gt.grad.numpy()) < 1e-9
    assert nh.max_abs(dbeta.reshape(C), bt.grad.numpy()) < 1e-9


def test_one_group_is_layer_norm_over_chw_with_per_channel_affine(nh):
    N, C, H, W = 3, 4, 2, 5
    x, gamma, beta, dout = nh.channel4d_inputs((N, C, H, W), seed=4)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 1, {})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    # Layer norm over (C, H, W), its affine parameters tied across H and W.
    g_full = np.broadcast_to(gamma[0], (C, H, W)).copy()
    b_full = np.broadcast_to(beta[0], (C, H, W)).copy()
    lout, lcache = layernorm_nd_forward(x, g_full, b_full, (C, H, W), {})
    ldx, ldgamma, ldbeta = layernorm_nd_backward(dout, lcache)
    assert nh.max_abs(out, lout) < 1e-12
    assert nh.max_abs(dx, ldx) < 1e-12
    # Tied parameters: the gradient of the channel's value sums its H*W copies.
    assert nh.max_abs(dgamma[0], ldgamma.sum(axis=(1, 2), keepdims=True)) < 1e-12
    assert nh.max_abs(dbeta[0], ldbeta.sum(axis=(1, 2), keepdims=True)) < 1e-12


def test_one_group_per_channel_is_instance_norm(nh):
    N, C, H, W = 3, 5, 4, 2
    x, gamma, beta, dout = nh.channel4d_inputs((N, C, H, W), seed=5)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, C, {})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    iout, icache = instancenorm_forward(x, gamma.reshape(C), beta.reshape(C), {})
    idx, idgamma, idbeta = instancenorm_backward(dout, icache)
    assert nh.max_abs(out, iout) < 1e-12
    assert nh.max_abs(dx, idx) < 1e-12
    assert nh.max_abs(dgamma.reshape(C), idgamma) < 1e-12
    assert nh.max_abs(dbeta.reshape(C), idbeta) < 1e-12


def test_dx_sums_to_zero_per_sample_and_group(nh):
    N, C, H, W, G = 3, 6, 3, 2, 3
    x, gamma, beta, dout = nh.channel4d_inputs((N, C, H, W), seed=6)
    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    dx, _, _ = spatial_groupnorm_backward(dout, cache)
    sums = dx.reshape(N, G, -1).sum(axis=2)  # (N, G)
    assert np.max(np.abs(sums)) < 1e-12 * np.abs(dx).sum()
    # ...but not per channel: the constraint is on the group, not on each channel in it.
    assert np.max(np.abs(dx.sum(axis=(2, 3)))) > 1e-3


def test_train_and_test_agree_and_arguments_untouched(nh):
    x, gamma, beta, _ = nh.channel4d_inputs((2, 4, 3, 3), seed=7)
    g0, b0 = gamma.copy(), beta.copy()
    param = {"eps": 1e-5}
    out1, _ = spatial_groupnorm_forward(x, gamma, beta, 2, param)
    out2, _ = spatial_groupnorm_forward(x, gamma, beta, 2, {"eps": 1e-5, "mode": "test"})
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(gamma, g0)
    np.testing.assert_array_equal(beta, b0)
    assert param == {"eps": 1e-5}


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("G", [4, 0, -2, 7])
def test_G_must_divide_C(G, nh):
    x, gamma, beta, _ = nh.channel4d_inputs((2, 6, 2, 2))
    param = {"eps": 1e-5}
    msg = r"G must be a positive divisor of the C = 6.*\[1, 2, 3, 6\]"
    with pytest.raises(ValueError, match=msg):
        spatial_groupnorm_forward(x, gamma, beta, G, param)
    assert param == {"eps": 1e-5}


def test_G_must_be_an_int(nh):
    x, gamma, beta, _ = nh.channel4d_inputs((2, 6, 2, 2))
    with pytest.raises(TypeError, match="G must be an int"):
        spatial_groupnorm_forward(x, gamma, beta, 2.0, {})


def test_x_not_4d():
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\).*layernorm_forward"):
        spatial_groupnorm_forward(
            np.zeros((4, 6)), np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 2, {}
        )


@pytest.mark.parametrize("which", ["gamma", "beta"])
def test_wrong_gamma_or_beta_shape(which, nh):
    x, gamma, beta, _ = nh.channel4d_inputs((2, 6, 2, 2))
    args = {"gamma": gamma, "beta": beta, which: np.ones(6)}
    param = {"eps": 1e-5}
    with pytest.raises(ValueError, match=rf"{which} must have shape \(1, 6, 1, 1\).*reshape"):
        spatial_groupnorm_forward(x, args["gamma"], args["beta"], 2, param)
    assert param == {"eps": 1e-5}


@pytest.mark.parametrize("xdtype", [np.float64, np.float32])
@pytest.mark.parametrize("pdtype", [np.int64, np.uint8, np.bool_])
def test_integer_gamma_beta_are_cast_to_x_dtype(xdtype, pdtype):
    rng = np.random.default_rng(24)
    x = (4 * rng.standard_normal((2, 4, 3, 3)) + 10).astype(xdtype)
    gamma = np.asarray([3, 4, 5, 1]).astype(pdtype).reshape(1, 4, 1, 1)
    beta = np.asarray([6, 7, 8, 0]).astype(pdtype).reshape(1, 4, 1, 1)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 2, {})
    ref, ref_cache = spatial_groupnorm_forward(x, gamma.astype(xdtype), beta.astype(xdtype), 2, {})
    assert out.dtype == xdtype
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(x.shape).astype(xdtype)
    grads = spatial_groupnorm_backward(dout, cache)
    for ours, theirs in zip(grads, spatial_groupnorm_backward(dout, ref_cache)):
        assert ours.dtype == xdtype  # floating, never truncated to int
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(grads[2], np.trunc(grads[2]))
