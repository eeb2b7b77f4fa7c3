"""Inverted dropout: the course's semantics (p keeps, seed reseeds), gradients, errors."""

# The course reseeds NumPy's legacy global generator; these tests must use it too.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

from normgrad.gradient_check import check_layer
from normgrad.layers import dropout_backward, dropout_forward


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_keep_ratio_and_inverted_scaling(p):
    x = np.random.default_rng(0).standard_normal((400, 500)) + 10.0
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": 123})
    kept = out != 0
    assert abs(kept.mean() - p) < 0.01  # 200k Bernoulli(p) draws: sd < 0.0012
    np.testing.assert_allclose(out[kept], x[kept] / p, rtol=1e-15)  # kept units scaled 1/p
    assert abs(out.mean() / x.mean() - 1.0) < 0.02  # E[out] = x: the mean is preserved
    np.testing.assert_array_equal(cache.mask, kept / p)


def test_mask_is_the_courses_draw():
    x = np.random.default_rng(1).standard_normal((7, 3, 2))
    p, seed = 0.6, 2024
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": seed})
    np.random.seed(seed)
    expected_mask = (np.random.rand(*x.shape) < p) / p
    np.testing.assert_array_equal(out, x * expected_mask)


def test_seed_reseeds_the_global_generator_every_call():
    x = np.random.default_rng(2).standard_normal((50, 40))
    param = {"mode": "train", "p": 0.5, "seed": 7}
    a, _ = dropout_forward(x, param)
    np.random.rand(100)  # move the global generator on
    b, _ = dropout_forward(x, param)
    np.testing.assert_array_equal(a, b)
    after = np.random.rand()  # the call left the generator exactly where seed 7 + one draw is
    np.random.seed(7)
    np.random.rand(*x.shape)
    assert after == np.random.rand()


def test_without_seed_masks_differ():
    x = np.ones((50, 40))
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert not np.array_equal(a, b)


def test_test_mode_is_the_identity():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5))
    dout = rng.standard_normal((6, 5))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3, "seed": 1})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_p_one_keeps_everything():
    x = np.random.default_rng(4).standard_normal((30, 30))
    out, _ = dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)


def test_backward_is_dout_times_mask():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 10))
    dout = rng.standard_normal((20, 10))
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.3, "seed": 0})
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout * cache.mask)
    assert np.all(dx[out == 0] == 0)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_finite_differences(mode):
    x = np.random.default_rng(6).standard_normal((6, 7))
    report = check_layer(
        lambda x: dropout_forward(x, {"mode": mode, "p": 0.6, "seed": 9}),
        dropout_backward,
        {"x": x},
        seed=7,
    )
    assert report["dx"].rel_error < 1e-8, report["dx"].rel_error


def test_float32_kept():
    x = np.random.default_rng(8).standard_normal((5, 5)).astype(np.float32)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0})
    assert out.dtype == np.float32
    dout = np.random.default_rng(9).standard_normal(x.shape).astype(np.float32)
    assert dropout_backward(dout, cache).dtype == np.float32


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5, float("nan")])
def test_p_outside_unit_interval(p):
    with pytest.raises(ValueError, match=r"probability of KEEPING a unit and must lie in \(0, 1\]"):
        dropout_forward(np.ones((2, 2)), {"mode": "train", "p": p})


def test_other_errors():
    with pytest.raises(ValueError, match="must contain 'p'"):
        dropout_forward(np.ones((2, 2)), {"mode": "train"})
    with pytest.raises(ValueError, match="dropout_param\\['mode'\\] must be 'train' or 'test'"):
        dropout_forward(np.ones((2, 2)), {"mode": "eval", "p": 0.5})
    with pytest.raises(TypeError, match="dropout_param must be a dict"):
        dropout_forward(np.ones((2, 2)), 0.5)
    with pytest.raises(TypeError, match="floating dtype"):
        dropout_forward(np.ones((2, 2), dtype=np.int32), {"mode": "train", "p": 0.5})


def test_backward_uses_the_forward_mode_not_the_current_param():
    # A model flips dropout_param['mode'] on every loss call; a cached train-mode pass must
    # still backpropagate through its mask, and a cached test-mode pass through the identity.
    x = np.random.default_rng(30).standard_normal((6, 5))
    dout = np.random.default_rng(31).standard_normal((6, 5))
    param = {"mode": "train", "p": 0.5, "seed": 7}
    _, train_cache = dropout_forward(x, param)
    param["mode"] = "test"
    np.testing.assert_array_equal(dropout_backward(dout, train_cache), dout * train_cache.mask)
    _, test_cache = dropout_forward(x, param)
    param["mode"] = "train"
    assert dropout_backward(dout, test_cache) is dout


def test_seed_reseeds_the_global_generator_in_test_mode_too():
    # The course runs np.random.seed(dropout_param['seed']) on every call, before it looks
    # at the mode: after a test-mode call the global stream restarts from the seed.
    x = np.ones((3, 4))
    np.random.seed(999)
    dropout_forward(x, {"mode": "test", "p": 0.5, "seed": 42})
    after = np.random.rand(5)
    np.random.seed(42)
    np.testing.assert_array_equal(after, np.random.rand(5))
    # Without a seed, test mode leaves the global stream alone (it draws nothing).
    np.random.seed(999)
    dropout_forward(x, {"mode": "test", "p": 0.5})
    after = np.random.rand(5)
    np.random.seed(999)
    np.testing.assert_array_equal(after, np.random.rand(5))
