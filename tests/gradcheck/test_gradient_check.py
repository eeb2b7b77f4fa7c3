"""The course's gradient-check API, and check_layer, which must catch wrong backwards."""

from __future__ import annotations

import numpy as np
import pytest

from normgrad.gradient_check import (
    check_layer,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    norm_rel_error,
    rel_error,
)
from normgrad.layers import batchnorm_backward_alt, batchnorm_forward


def cubic(x):
    return float(np.sum(x**3))


def test_eval_numerical_gradient_matches_analytic_and_restores_x(capsys):
    x = np.random.default_rng(0).standard_normal((3, 2))
    saved = x.copy()
    grad = eval_numerical_gradient(cubic, x, verbose=True)
    np.testing.assert_allclose(grad, 3 * saved**2, rtol=1e-8)
    np.testing.assert_array_equal(x, saved)  # perturbed in place, then restored exactly
    assert len(capsys.readouterr().out.strip().splitlines()) == 6  # one line per index


def test_eval_numerical_gradient_array_contracts_with_df():
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    df = rng.standard_normal((4, 5))
    saved = x.copy()
    grad = eval_numerical_gradient_array(lambda x: x @ W, x, df)
    np.testing.assert_allclose(grad, df @ W.T, rtol=1e-8)
    np.testing.assert_array_equal(x, saved)


def test_grad_check_sparse_prints_small_errors(capsys):
    x = np.random.default_rng(2).standard_normal((5, 4))
    grad_check_sparse(cubic, x, 3 * x**2, num_checks=7)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7
    assert all(float(line.rsplit(" ", 1)[1]) < 1e-7 for line in lines)


def test_grad_check_sparse_exposes_a_wrong_gradient(capsys):
    x = np.random.default_rng(3).standard_normal((5, 4)) + 3.0
    grad_check_sparse(cubic, x, 2 * x**2, num_checks=5)
    errors = [float(line.rsplit(" ", 1)[1]) for line in capsys.readouterr().out.splitlines()]
    assert min(errors) > 0.1


def test_rel_error_is_the_course_formula():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.array([0.0]), np.array([1e-9])) == pytest.approx(0.1)  # 1e-8 floor
    assert rel_error(np.array([1.0, 3.0]), 1.0) == pytest.approx(0.5)  # broadcasts
    with pytest.raises(ValueError, match="broadcast"):
        rel_error(np.zeros(2), np.zeros(3))


def test_norm_rel_error():
    a = np.array([3.0, 4.0])
    assert norm_rel_error(a, a) == 0.0
    assert norm_rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert norm_rel_error(a, -a) == pytest.approx(1.0)


def bn_train(x, gamma, beta):
    return batchnorm_forward(x, gamma, beta, {"mode": "train"})


def bn_inputs(seed=0):
    # Drawn with the same seed check_layer gets: its upstream gradient must not collide.
    rng = np.random.default_rng(seed)
    return {
        "x": 5 * rng.standard_normal((6, 4)) + 12,
        "gamma": rng.standard_normal(4),
        "beta": rng.standard_normal(4),
    }


def test_check_layer_passes_a_correct_layer_and_copies_inputs():
    inputs = bn_inputs()
    saved = {k: v.copy() for k, v in inputs.items()}
    report = check_layer(bn_train, batchnorm_backward_alt, inputs, seed=0)
    assert report.passed and report.max_rel_error < 1e-9
    assert [g.name for g in report.grads] == ["dx", "dgamma", "dbeta"]
    assert report["dgamma"].rel_error < 1e-9
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], saved[k])


def dropped_dmu_backward(dout, cache):
    """A classic bug: forgets that mu depends on x (no -mean(dxhat) term)."""
    dx, dgamma, dbeta = batchnorm_backward_alt(dout, cache)
    return dx + (dout * cache.gamma).mean(0) / np.sqrt(cache.var + cache.eps), dgamma, dbeta


def zero_dx_backward(dout, cache):
    _, dgamma, dbeta = batchnorm_backward_alt(dout, cache)
    return np.zeros_like(dout), dgamma, dbeta


@pytest.mark.parametrize("wrong", [dropped_dmu_backward, zero_dx_backward])
def test_check_layer_catches_wrong_backwards(wrong):
    report = check_layer(bn_train, wrong, bn_inputs(), seed=0)
    assert not report.passed
    assert not report["dx"].passed and report["dx"].rel_error > 1e-3
    assert report["dgamma"].passed  # the report says which gradient is wrong


def test_check_layer_order_two_is_the_course_scheme_and_less_accurate():
    four = check_layer(bn_train, batchnorm_backward_alt, bn_inputs(1), seed=1)
    two = check_layer(bn_train, batchnorm_backward_alt, bn_inputs(1), seed=1, order=2, h=1e-5)
    assert two.passed
    assert four["dx"].rel_error < two["dx"].rel_error


def test_check_layer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="numpy array of real numbers"):
        check_layer(
            bn_train,
            batchnorm_backward_alt,
            {"x": np.ones((3, 2), dtype=bool), "gamma": np.ones(2), "beta": np.ones(2)},
        )
    with pytest.raises(ValueError, match="order"):
        check_layer(bn_train, batchnorm_backward_alt, bn_inputs(), order=3)
    with pytest.raises(ValueError, match="one per input"):
        check_layer(bn_train, lambda d, c: batchnorm_backward_alt(d, c)[:2], bn_inputs())


def test_course_functions_use_the_course_arithmetic_to_the_last_bit():
    # Printed notebook errors depend on rounding: sum((pos - neg) * df) / (2h) for arrays,
    # (f(x + h) - f(x - h)) / (2h) for scalars, exactly in that order.
    rng = np.random.default_rng(7)
    x = 5 * rng.standard_normal((4, 5)) + 12
    gamma, beta, df = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((4, 5))
    f = lambda x: batchnorm_forward(x, gamma, beta, {"mode": "train"})[0]  # noqa: E731
    h = 1e-5
    want_arr, want_scalar = np.zeros_like(x), np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        want_arr[ix] = np.sum((pos - neg) * df) / (2 * h)
        want_scalar[ix] = (float(np.sum(pos * df)) - float(np.sum(neg * df))) / (2 * h)
    assert np.array_equal(eval_numerical_gradient_array(f, x, df, h), want_arr)
    scalar = eval_numerical_gradient(lambda x: float(np.sum(f(x) * df)), x, verbose=False, h=h)
    assert np.array_equal(scalar, want_scalar)
