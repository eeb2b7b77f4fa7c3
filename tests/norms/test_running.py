"""Running statistics: the course's convention, and PyTorch's, matched step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normgrad.layers import batchnorm_forward, torch_bn_param
from normgrad.norms.running import RunningStats


def run_torch_and_ours(param, momentum, steps=10, N=16, D=5, seed=0):
    rng = np.random.default_rng(seed)
    bn = torch.nn.BatchNorm1d(D, eps=1e-5, momentum=momentum, dtype=torch.float64)
    bn.train()
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    for _ in range(steps):
        x = 3.0 * rng.standard_normal((N, D)) + rng.standard_normal(D) * 10
        out, _ = batchnorm_forward(x, gamma, beta, param)
        t_out = bn(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-12)
    return bn


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_ten_steps_match_torch_batchnorm1d(momentum):
    param = torch_bn_param(num_features=5, momentum=momentum)
    bn = run_torch_and_ours(param, momentum)
    np.testing.assert_allclose(
        param["running_mean"], bn.running_mean.numpy(), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(param["running_var"], bn.running_var.numpy(), rtol=1e-12, atol=1e-12)
    assert param["num_batches_tracked"] == int(bn.num_batches_tracked) == 10
    # And test mode then matches torch's eval mode.
    bn.eval()
    x = np.random.default_rng(1).standard_normal((7, 5))
    param["mode"] = "test"
    out, _ = batchnorm_forward(x, bn.weight.detach().numpy(), bn.bias.detach().numpy(), param)
    np.testing.assert_allclose(out, bn(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_course_convention_differs_from_torch_on_the_same_number():
    # momentum 0.9 in the course keeps 90% of the old value; in torch it takes 90% of the new.
    stats = RunningStats.from_param({"momentum": 0.9}, 1, np.dtype(np.float64))
    course = stats.update(np.array([1.0]), np.array([1.0]), n=4)
    torchy = RunningStats.from_param(
        {"momentum": 0.9, "momentum_convention": "torch"}, 1, np.dtype(np.float64)
    ).update(np.array([1.0]), np.array([1.0]), n=4)
    assert course.mean[0] == pytest.approx(0.1)
    assert torchy.mean[0] == pytest.approx(0.9)


def test_unbiased_running_var_uses_bessel_correction():
    x = np.array([[0.0], [2.0], [4.0]])
    param = {"mode": "train", "momentum": 0.0, "unbiased_running_var": True}
    out, _ = batchnorm_forward(x, np.ones(1), np.zeros(1), param)
    assert param["running_var"][0] == pytest.approx(4.0)  # biased var is 8/3
    # Normalization itself always uses the biased variance.
    np.testing.assert_allclose(out[:, 0], (x[:, 0] - 2.0) / np.sqrt(8 / 3 + 1e-5))


def test_cumulative_average_is_the_plain_mean_of_batch_means():
    rng = np.random.default_rng(3)
    param = {"mode": "train", "momentum": None}
    means = []
    for _ in range(6):
        x = rng.standard_normal((5, 2)) + rng.standard_normal(2)
        means.append(x.mean(0))
        batchnorm_forward(x, np.ones(2), np.zeros(2), param)
    np.testing.assert_allclose(param["running_mean"], np.mean(means, axis=0), rtol=1e-12)
    assert param["num_batches_tracked"] == 6


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"unbiased_running_var": "yes"}, "must be a bool.*Pass True .* or False"),
        ({"num_batches_tracked": -1}, "int >= 0.*Pass 0 to start counting"),
        ({"num_batches_tracked": 1.5}, "int >= 0.*Pass 0 to start counting"),
        ({"momentum": float("nan")}, r"finite.*bn_param\['momentum'\] = 0\.9"),
        ({"momentum": 1.5}, r"in \[0, 1\].*bn_param\['momentum'\] = 0\.9"),
    ],
)
def test_bad_running_options_raise_before_writing(bad, match):
    param = {"mode": "train", **bad}
    before = dict(param)
    with pytest.raises((ValueError, TypeError), match=match):
        batchnorm_forward(np.ones((3, 2)), np.ones(2), np.zeros(2), param)
    assert param == before


def test_the_stale_statistics_warning_is_shown_once_per_place():
    # A diverging run hits it at every step with other features: one line, not thousands.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from normgrad.norms.batch import batchnorm_forward\n"
        "p = {'mode': 'train'}\n"
        "for k in range(20):\n"
        "    x = np.random.default_rng(k).standard_normal((4, 6))\n"
        "    x[0, k % 6] = np.nan\n"
        "    batchnorm_forward(x, np.ones(6), np.zeros(6), p)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("StaleRunningStatsWarning") == 1, r.stderr
