"""Instance norm: FD, F.instance_norm parity (3-D, 4-D and 5-D input), invariants, errors.

Every gradient test is float64 with a random upstream gradient, never ones_like.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import instancenorm_backward, instancenorm_forward


@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (1, 2, 3, 3), (2, 3, 5), (1, 2, 2, 2, 2)])
def test_finite_differences(shape, nh):
    x, gamma, beta, _ = nh.channel_inputs(shape, seed=1)
    report = check_layer(
        lambda x, g, b: instancenorm_forward(x, g, b, {"eps": 1e-5}),
        instancenorm_backward,
        {"x": x, "gamma": gamma, "beta": beta},
        seed=2,
    )
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (2, 3, 7), (2, 2, 3, 2, 4), (1, 5, 2, 2)])
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_matches_torch_instance_norm(shape, eps, nh):
    x, gamma, beta, dout = nh.channel_inputs(shape, seed=3)
    out, cache = instancenorm_forward(x, gamma, beta, {"eps": eps})
    grads = instancenorm_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    yt = F.instance_norm(xt, weight=gt, bias=bt, eps=eps)
    yt.backward(torch.tensor(dout))
    assert nh.max_abs(out, yt.detach().numpy()) < 1e-10
    for ours, theirs in zip(grads, (xt.grad, gt.grad, bt.grad)):
        assert ours.shape == tuple(theirs.shape)
        assert nh.max_abs(ours, theirs.numpy()) < 1e-9


def test_each_sample_and_channel_is_standardized_and_independent(nh):
    x, _, _, _ = nh.channel_inputs((3, 4, 5, 5), seed=4)
    ones, zeros = np.ones(4), np.zeros(4)
    out, _ = instancenorm_forward(x, ones, zeros, {})
    np.testing.assert_allclose(out.mean(axis=(2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(2, 3)), 1.0, atol=1e-5)
    # Per sample: changing sample 0 leaves sample 1's output alone (unlike batch norm).
    x2 = x.copy()
    x2[0] *= 3.0
    out2, _ = instancenorm_forward(x2, ones, zeros, {"mode": "test"})
    np.testing.assert_array_equal(out2[1:], out[1:])


def test_dx_sums_to_zero_per_sample_and_channel(nh):
    x, gamma, beta, dout = nh.channel_inputs((3, 4, 3, 2), seed=5)
    _, cache = instancenorm_forward(x, gamma, beta, {})
    dx, _, _ = instancenorm_backward(dout, cache)
    assert np.max(np.abs(dx.sum(axis=(2, 3)))) < 1e-12 * np.abs(dx).sum()
    assert np.max(np.abs(dx)) > 1e-3


def test_forward_never_modifies_its_arguments(nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2), seed=6)
    saved = [a.copy() for a in (x, gamma, beta)]
    param = {"eps": 1e-5}
    instancenorm_forward(x, gamma, beta, param)
    for a, b in zip((x, gamma, beta), saved):
        np.testing.assert_array_equal(a, b)
    assert param == {"eps": 1e-5}


# --- bad input -----------------------------------------------------------------------


def test_x_without_spatial_axes():
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\).*layernorm_forward"):
        instancenorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3), {})


@pytest.mark.parametrize("which", ["gamma", "beta"])
def test_wrong_gamma_or_beta_shape(which, nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2))
    args = {"gamma": gamma, "beta": beta, which: np.ones((1, 3, 1, 1))}
    param = {"eps": 1e-5}
    with pytest.raises(ValueError, match=rf"{which} must have shape \(3,\)"):
        instancenorm_forward(x, args["gamma"], args["beta"], param)
    assert param == {"eps": 1e-5}


def test_bad_eps_and_param_type(nh):
    x, gamma, beta, _ = nh.channel_inputs((2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"in_param\['eps'\]"):
        instancenorm_forward(x, gamma, beta, {"eps": float("nan")})
    with pytest.raises(TypeError, match="in_param must be a dict"):
        instancenorm_forward(x, gamma, beta, 1e-5)


@pytest.mark.parametrize("xdtype", [np.float64, np.float32])
@pytest.mark.parametrize("pdtype", [np.int64, np.int8, np.bool_])
def test_integer_gamma_beta_are_cast_to_x_dtype(xdtype, pdtype):
    rng = np.random.default_rng(25)
    x = (4 * rng.standard_normal((2, 3, 4, 5)) + 10).astype(xdtype)
    gamma, beta = np.asarray([3, 4, 5]).astype(pdtype), np.asarray([6, 7, 8]).astype(pdtype)
    out, cache = instancenorm_forward(x, gamma, beta, {})
    ref, ref_cache = instancenorm_forward(x, gamma.astype(xdtype), beta.astype(xdtype), {})
    assert out.dtype == xdtype
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(x.shape).astype(xdtype)
    grads = instancenorm_backward(dout, cache)
    for ours, theirs in zip(grads, instancenorm_backward(dout, ref_cache)):
        assert ours.dtype == xdtype  # floating, never truncated to int
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(grads[2], np.trunc(grads[2]))
