"""The shared input checks: every message says what was expected AND how to fix it."""

from __future__ import annotations

import numpy as np
import pytest

from normgrad._internal import validate as v
from normgrad.layers import layernorm_forward, spatial_groupnorm_forward
from normgrad.ops.windows import int_param


def test_ndim_suggests_a_reshape_or_the_callers_hint():
    with pytest.raises(
        ValueError,
        match=r"w must be 2-D \(D, M\); got shape \(3,\)\. "
        r"Reshape w to 2 axes \(D, M\)",
    ):
        v.ndim(np.ones(3), "w", 2, "(D, M)")
    with pytest.raises(ValueError, match=r"got shape \(3,\)\. Use x\.reshape\(1, -1\)\.$"):
        v.ndim(np.ones(3), "x", 2, "(N, D)", "Use x.reshape(1, -1).")


def test_shape_choice_and_numbers_say_what_to_pass():
    with pytest.raises(
        ValueError,
        match=r"b must have shape \(4,\) \(one per column\); got "
        r"\(5,\)\. Pass an array of shape \(4,\)\.",
    ):
        v.shape(np.ones(5), "b", (4,), "one per column")
    with pytest.raises(
        ValueError,
        match=r"mode must be 'train' or 'test'; got 'eval'\. Set "
        r"it to one of these, e\.g\. mode = 'train'\.",
    ):
        v.choice("eval", "mode", ("train", "test"))
    with pytest.raises(
        TypeError,
        match=r"lr must be a real number; got 'x' \(str\)\. Pass a finite "
        r"number >= 0, e\.g\. lr = 1\.0\.",
    ):
        v.nonnegative("x", "lr")
    with pytest.raises(
        ValueError,
        match=r"m must be a finite number in \[0, 1\]; got 2\. Pass a finite number in "
        r"\[0, 1\], e\.g\. m = 0\.5\.",
    ):
        v.unit_interval(2, "m")


def test_eps_error_suggests_the_default():
    with pytest.raises(
        ValueError,
        match=r"ln_param\['eps'\] must be a finite number >= 0; "
        r"got -1\. Pass a finite number >= 0, e\.g\. "
        r"ln_param\['eps'\] = 1e-05\.",
    ):
        layernorm_forward(np.ones((2, 3)), np.ones(3), np.zeros(3), {"eps": -1})


def test_group_count_type_error_says_how_to_fix():
    x, g = np.ones((2, 4, 2, 2)), np.ones((1, 4, 1, 1))
    with pytest.raises(
        TypeError,
        match=r"G must be an int.*got 2\.0\. Pass a divisor of the "
        r"C = 4 channels as a plain int",
    ):
        spatial_groupnorm_forward(x, g, g, 2.0, {})


@pytest.mark.parametrize(
    "param, match",
    [
        ([], r"conv_param must be a dict; got list\. Pass e\.g\. \{'stride': 1, \.\.\.\}"),
        (
            {},
            r"must contain 'stride' \(an integer >= 1\); got keys \[\]\. Add it, e\.g\. "
            r"conv_param\['stride'\] = 1\.",
        ),
        (
            {"stride": 0},
            r"conv_param\['stride'\] must be an integer >= 1; got 0\. Pass a whole "
            r"number >= 1",
        ),
        ({"stride": "2"}, r"must be an integer >= 1; got '2'\. Pass a whole number >= 1"),
    ],
)
def test_window_params_say_how_to_fix(param, match):
    with pytest.raises((TypeError, ValueError), match=match):
        int_param(param, "stride", "conv_param", 1)


@pytest.mark.parametrize("value", ["1e-5", True, np.bool_(False), None, [1e-5], np.ones(1)])
def test_numbers_refuse_strings_bools_and_arrays(value):
    with pytest.raises(TypeError, match="eps must be a real number"):
        v.real(value, "eps", example=1e-5, low=0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1e-300, 2.0])
def test_numbers_refuse_non_finite_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"p must be a finite number in \(0, 1\]"):
        v.real(value, "p", example=0.5, low=0, high=1, low_open=True)


def test_integers_refuse_bools_and_floats():
    assert v.integer(np.int64(3), "N", example=2, low=1) == 3
    for bad in (True, 3.0, "3"):
        with pytest.raises(TypeError, match="N must be an int"):
            v.integer(bad, "N", example=2)
    with pytest.raises(ValueError, match="N must be >= 1; got 0"):
        v.integer(0, "N", example=2, low=1)


def test_unknown_keys_name_the_known_ones_and_the_closest():
    v.known_keys({"eps": 1e-5, "mode": "train"}, "ln_param", ["eps"], ignored=["mode"])
    with pytest.raises(
        ValueError,
        match=r"unknown key 'momentun'.*'momentum'.*"
        r"Did you mean 'momentum'\?",
    ):
        v.known_keys({"momentun": 0.9}, "bn_param", ["mode", "eps", "momentum"])


def test_a_wrong_cache_names_the_forward_to_call():
    with pytest.raises(
        TypeError,
        match=r"relu_backward needs the cache that relu_forward "
        r"returns; got NoneType",
    ):
        v.cache_of(None, np.ndarray, "relu_backward", "relu_forward")
