"""Edge cases the ops accept, with the right result, and generated malformed parameters.

- Empty batches (N = 0) give empty results for every per-sample layer (affine, ReLU,
  sigmoid, dropout, conv, pool), and the backward passes give zero parameter gradients:
  the formulas' empty sums. The losses are means over N, so N = 0 is an error there
  (see test_bad_inputs.py).
- The losses return NumPy float64 scalars (as the course's do), NaN scores a NaN loss.
- Hypothesis draws misspelt keys and non-numbers for every parameter dict.
"""

# ruff: noqa: NPY002

from __future__ import annotations

import copy
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from normgrad.ops.losses import softmax_loss, svm_loss
from normgrad.ops.pool import max_pool_backward_naive, max_pool_forward_naive

CONVS = {
    "naive": (conv_forward_naive, conv_backward_naive),
    "fast": (conv_forward_fast, conv_backward_fast),
}
POOLS = {
    "naive": (max_pool_forward_naive, max_pool_backward_naive),
    "fast": (max_pool_forward_fast, max_pool_backward_fast),
    "reshape": (max_pool_forward_reshape, max_pool_backward_reshape),
}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


# ---- empty batches --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_empty_batch(dtype):
    rng = np.random.default_rng(0)
    x = np.zeros((0, 2, 3), dtype)
    w, b = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    out, cache = affine_forward(x, w, b)
    assert out.shape == (0, 4) and out.dtype == dtype
    dx, dw, db = affine_backward(np.zeros((0, 4), dtype), cache)
    assert dx.shape == (0, 2, 3)
    np.testing.assert_array_equal(dw, np.zeros((6, 4)))  # an empty sum over the batch
    np.testing.assert_array_equal(db, np.zeros(4))


@pytest.mark.parametrize("impl", CONVS)
def test_conv_empty_batch_no_filters_no_channels(impl):
    forward, backward = CONVS[impl]
    rng = np.random.default_rng(1)
    param = {"stride": 1, "pad": 1}
    # N = 0
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = forward(np.zeros((0, 3, 5, 5)), w, b, param)
    assert out.shape == (0, 4, 5, 5)
    dx, dw, db = backward(np.zeros(out.shape), cache)
    assert dx.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(4))
    # F = 0: no output channels, and x gets no gradient
    x = rng.standard_normal((2, 3, 5, 5))
    out, cache = forward(x, np.zeros((0, 3, 3, 3)), np.zeros(0), param)
    assert out.shape == (2, 0, 5, 5)
    dx, dw, db = backward(np.zeros(out.shape), cache)
    np.testing.assert_array_equal(dx, np.zeros_like(x))
    assert dw.shape == (0, 3, 3, 3) and db.shape == (0,)
    # C = 0: every output is the bias alone
    out, cache = forward(np.zeros((2, 0, 5, 5)), np.zeros((4, 0, 3, 3)), b, param)
    np.testing.assert_array_equal(out, np.broadcast_to(b[None, :, None, None], (2, 4, 5, 5)))
    dout = rng.standard_normal(out.shape)
    _, _, db = backward(dout, cache)
    np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)), rtol=1e-13)


@pytest.mark.parametrize("impl", POOLS)
def test_pool_empty_batch(impl):
    forward, backward = POOLS[impl]
    for shape in [(0, 3, 4, 4), (2, 0, 4, 4)]:
        out, cache = forward(np.zeros(shape), POOL)
        assert out.shape == shape[:2] + (2, 2)
        dx = backward(np.zeros(out.shape), cache)
        assert dx.shape == shape


@pytest.mark.parametrize(
    "forward, backward", [(relu_forward, relu_backward), (sigmoid_forward, sigmoid_backward)]
)
def test_activations_empty_and_0d(forward, backward):
    out, cache = forward(np.zeros((0, 3)))
    assert out.shape == (0, 3)
    assert backward(np.zeros((0, 3)), cache).shape == (0, 3)
    out, cache = forward(np.array(-2.0))  # a 0-d array is an array of one element
    assert out.shape == ()
    dx = backward(np.array(3.0), cache)
    assert dx.shape == ()


@pytest.mark.parametrize("mode", ["train", "test"])
def test_dropout_empty(mode):
    out, cache = dropout_forward(np.zeros((0, 5)), {"mode": mode, "p": 0.5, "seed": 1})
    assert out.shape == (0, 5)
    assert dropout_backward(np.zeros((0, 5)), cache).shape == (0, 5)


def test_dropout_seed_bounds_and_numpy_integers_are_accepted():
    x = np.random.default_rng(2).standard_normal((3, 4))
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": np.int64(7)})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    np.testing.assert_array_equal(a, b)
    for seed in (0, 2**32 - 1):
        dropout_forward(x, {"mode": "train", "p": np.float32(0.5), "seed": seed})


# ---- losses: NumPy float64 scalars, NaN propagates ----------------------------------------


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_losses_return_numpy_float64(loss_fn, dtype):
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(dtype)
    y = np.array([0, 3, 1, 2, 1])
    loss, dx = loss_fn(x, y)
    assert type(loss) is np.float64
    assert dx.dtype == dtype
    # widened exactly: the value is the one computed in x's dtype, as the course's
    loss_in_dtype, _ = loss_fn(x, list(y))
    assert loss == loss_in_dtype
    if dtype == np.float32:
        shifted = x - x.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        course = -np.sum(log_probs[np.arange(5), y]) / 5  # the course's arithmetic
        if loss_fn is softmax_loss:
            assert course.dtype == np.float32 and loss == np.float64(course)


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_longdouble_keep_their_precision(loss_fn):
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.longdouble)
    loss, _ = loss_fn(x, [0, 1, 2])
    assert type(loss) is np.longdouble


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_nan_scores_give_a_nan_loss_as_in_the_course(loss_fn):
    x = np.random.default_rng(5).standard_normal((3, 4))
    x[1, 2] = np.nan
    loss, dx = loss_fn(x, np.array([0, 1, 2]))
    assert type(loss) is np.float64 and np.isnan(loss)
    if loss_fn is softmax_loss:  # the NaN row's probabilities are NaN
        assert np.isnan(dx[1]).all() and np.isfinite(dx[[0, 2]]).all()
    else:  # the hinge's indicator [NaN > 0] is 0, as in the course's arithmetic
        assert np.isfinite(dx).all()


def test_a_float32_model_loss_plus_float32_penalty_stays_float64():
    # The bug this fixes: a Python float plus a np.float32 is a float32 under NumPy 2.
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    loss, _ = softmax_loss(x, [0, 1, 2])
    assert (loss + np.float32(0.1)).dtype == np.float64
    assert (float(loss) + np.float32(0.1)).dtype == np.float32


# ---- generated malformed parameter dicts --------------------------------------------------

KNOWN = {
    "conv_param": ("stride", "pad"),
    "pool_param": ("pool_height", "pool_width", "stride"),
    "dropout_param": ("mode", "p", "seed"),
}
VALID = {
    "conv_param": {"stride": 1, "pad": 1},
    "pool_param": dict(POOL),
    "dropout_param": {"mode": "train", "p": 0.5, "seed": 0},
}
X4 = np.random.default_rng(7).standard_normal((2, 3, 4, 4))
W4, B4 = np.random.default_rng(8).standard_normal((2, 3, 3, 3)), np.zeros(2)


def _call(which: str, param: dict) -> object:
    if which == "conv_param":
        return conv_forward_fast(X4, W4, B4, param)
    if which == "pool_param":
        return max_pool_forward_fast(X4, param)
    return dropout_forward(X4, param)


@settings(max_examples=60, deadline=None)
@given(
    which=st.sampled_from(sorted(KNOWN)),
    key=st.text(alphabet=string.ascii_letters + "_ ", min_size=1, max_size=12),
    value=st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none()),
)
def test_unknown_keys_are_refused_by_name(which, key, value):
    if key in KNOWN[which]:
        return
    param = {**VALID[which], key: value}
    before = copy.deepcopy(param)
    with pytest.raises(ValueError, match=f"^{which} has unknown key {key!r}"):
        _call(which, param)
    assert param == before


NOT_A_NUMBER = st.one_of(
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.lists(st.integers(1, 3), min_size=1, max_size=2),
    st.just(np.array([2])),
    st.just(np.bool_(True)),
    st.just(1 + 0j),
)


@settings(max_examples=60, deadline=None)
@given(which=st.sampled_from(["conv_param", "pool_param"]), data=st.data())
def test_sizes_that_are_not_numbers_raise_type_error(which, data):
    key = data.draw(st.sampled_from(KNOWN[which]))
    value = data.draw(NOT_A_NUMBER)
    param = {**VALID[which], key: value}
    with pytest.raises(TypeError, match=rf"^{which}\['{key}'\] must be an integer"):
        _call(which, param)


@settings(max_examples=60, deadline=None)
@given(
    which=st.sampled_from(["conv_param", "pool_param"]),
    data=st.data(),
    value=st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda f: not float(f).is_integer()
    ),
)
def test_non_integral_sizes_raise_value_error(which, data, value):
    key = data.draw(st.sampled_from(KNOWN[which]))
    with pytest.raises(ValueError, match=rf"^{which}\['{key}'\] .*must be an integer"):
        _call(which, {**VALID[which], key: value})


@pytest.mark.parametrize("value", [2.0, np.float32(2), np.float64(2.0), np.int8(2)])
def test_integral_floats_are_the_ints_they_equal(value):
    ref, _ = max_pool_forward_fast(X4, POOL)
    out, _ = max_pool_forward_fast(X4, {**POOL, "stride": value, "pool_width": value})
    np.testing.assert_array_equal(out, ref)


@settings(max_examples=60, deadline=None)
@given(p=st.one_of(NOT_A_NUMBER, st.floats().filter(lambda f: not 0 < f <= 1)))
def test_dropout_keep_probabilities_outside_the_unit_interval(p):
    before = np.random.get_state()[1].copy()
    with pytest.raises((TypeError, ValueError), match=r"^dropout_param\['p'\]"):
        dropout_forward(X4, {"mode": "train", "p": p, "seed": 3})
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # no reseed
