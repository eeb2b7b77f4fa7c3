"""The gradient checker under bad input: clear errors, and x exactly as it was.

Every rejected call is checked for two things: the error names the argument, and nothing
changed (x bit for bit, and f never called when the arguments were wrong from the start).
"""

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
from normgrad.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
)


class Counting:
    """f(x) = sum(x**3) (or x**3 elementwise), counting its calls."""

    def __init__(self, array: bool = False):
        self.calls = 0
        self.array = array

    def __call__(self, x):
        self.calls += 1
        return x**3 if self.array else float(np.sum(x**3))


def _x(shape=(3, 2), seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _bits(a: np.ndarray) -> bytes:
    return a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()


# Each course function called with (f, x) and its other arguments filled in.
def _scalar(f, x, **kw):
    return eval_numerical_gradient(f, x, verbose=False, **kw)


def _array(f, x, **kw):
    df = kw.pop("df", np.ones(np.shape(x)) if isinstance(x, np.ndarray) else np.ones(1))
    return eval_numerical_gradient_array(f, x, df, **kw)


def _sparse(f, x, **kw):
    grad = kw.pop("grad", np.zeros(np.shape(x)) if isinstance(x, np.ndarray) else 0.0)
    return grad_check_sparse(f, x, grad, num_checks=kw.pop("num_checks", 3), **kw)


COURSE = [
    pytest.param(_scalar, False, id="eval_numerical_gradient"),
    pytest.param(_array, True, id="eval_numerical_gradient_array"),
    pytest.param(_sparse, False, id="grad_check_sparse"),
]

BAD_X = [
    pytest.param([1.0, 2.0], TypeError, "numpy.ndarray", id="list"),
    pytest.param(1.5, TypeError, "numpy.ndarray", id="float"),
    pytest.param(None, TypeError, "numpy.ndarray", id="None"),
    pytest.param(np.array([True, False]), TypeError, "real numeric dtype", id="bool-array"),
    pytest.param(np.array([1 + 2j]), TypeError, "real numeric dtype", id="complex-array"),
    pytest.param(np.array([1.0], dtype=object), TypeError, "real numeric dtype", id="object"),
    pytest.param(np.array(["a"]), TypeError, "real numeric dtype", id="str-array"),
    pytest.param(np.array([1.0, np.nan]), ValueError, "NaN or inf", id="nan"),
    pytest.param(np.array([np.inf, 1.0]), ValueError, "NaN or inf", id="inf"),
]


@pytest.mark.parametrize("call, array_f", COURSE)
@pytest.mark.parametrize("x, error, match", BAD_X)
def test_bad_x_is_refused_before_f_runs(call, array_f, x, error, match):
    f = Counting(array_f)
    saved = x.copy() if isinstance(x, np.ndarray) else x
    with pytest.raises(error, match=match):
        call(f, x)
    assert f.calls == 0
    if isinstance(x, np.ndarray):
        np.testing.assert_array_equal(x, saved)


@pytest.mark.parametrize("call, array_f", COURSE)
def test_read_only_x_is_refused(call, array_f):
    x = _x()
    x.flags.writeable = False
    f = Counting(array_f)
    with pytest.raises(ValueError, match="read-only.*x.copy()"):
        call(f, x)
    assert f.calls == 0


BAD_H = [
    pytest.param(0.0, ValueError, id="zero"),
    pytest.param(-1e-5, ValueError, id="negative"),
    pytest.param(float("nan"), ValueError, id="nan"),
    pytest.param(float("inf"), ValueError, id="inf"),
    pytest.param("1e-5", TypeError, id="string"),
    pytest.param(True, TypeError, id="bool"),
    pytest.param(None, TypeError, id="None"),
    pytest.param(np.array([1e-5]), TypeError, id="array"),
]


@pytest.mark.parametrize("call, array_f", COURSE)
@pytest.mark.parametrize("h, error", BAD_H)
def test_bad_h_is_refused(call, array_f, h, error):
    x = _x()
    saved = _bits(x)
    f = Counting(array_f)
    with pytest.raises(error, match=r"h must be .*e\.g\. h = "):
        call(f, x, h=h)
    assert f.calls == 0 and _bits(x) == saved


@pytest.mark.parametrize("call, array_f", COURSE)
@pytest.mark.parametrize("f", [None, 3.0, "f"], ids=["None", "float", "str"])
def test_f_must_be_callable(call, array_f, f):
    x = _x()
    with pytest.raises(TypeError, match="f must be a function"):
        call(f, x)


BAD_SCALAR_F = [
    pytest.param(lambda x: x * 2, ValueError, "array of shape", id="array"),
    pytest.param(lambda x: (np.sum(x), {}), TypeError, r"take \[0\]", id="loss-grads-tuple"),
    pytest.param(lambda x: None, TypeError, "real number", id="None"),
    pytest.param(lambda x: "1.0", TypeError, "real number", id="str"),
    pytest.param(lambda x: True, TypeError, "real number", id="bool"),
    pytest.param(lambda x: 1 + 1j, TypeError, "real number", id="complex"),
    pytest.param(lambda x: np.array(["a"]), TypeError, "real number", id="str-array"),
]


@pytest.mark.parametrize("call", [_scalar, _sparse], ids=["eval_numerical_gradient", "sparse"])
@pytest.mark.parametrize("f, error, match", BAD_SCALAR_F)
def test_scalar_f_must_return_one_number_and_x_is_restored(call, f, error, match):
    x = _x()
    x[0, 0] = -0.0  # restoration must keep the sign of zero too
    saved = _bits(x)
    with pytest.raises(error, match=match):
        call(f, x)
    assert _bits(x) == saved


def test_one_element_outputs_are_scalars():
    x = _x((2, 2))
    want = eval_numerical_gradient(lambda x: float(np.sum(x**3)), x, verbose=False)
    for f in (
        lambda x: np.array([np.sum(x**3)]),  # shape (1,)
        lambda x: np.array(np.sum(x**3)),  # 0-d
        lambda x: np.sum(x**3),  # NumPy scalar
    ):
        np.testing.assert_array_equal(eval_numerical_gradient(f, x, verbose=False), want)


def test_the_course_evaluates_f_at_x_first():
    x = _x((2, 3))
    f = Counting()
    eval_numerical_gradient(f, x, verbose=False)
    assert f.calls == 1 + 2 * x.size


def test_verbose_must_be_a_bool():
    x = _x()
    f = Counting()
    with pytest.raises(TypeError, match="verbose must be True or False"):
        eval_numerical_gradient(f, x, verbose="no")
    assert f.calls == 0


BAD_DF = [
    pytest.param(np.ones((2, 3)), ValueError, r"returned shape \(3, 2\), but df has shape", id="T"),
    pytest.param(np.ones(6), ValueError, "must have its shape", id="flat"),
    pytest.param(np.full((3, 2), np.nan), ValueError, "df must be finite", id="nan"),
    pytest.param([[1.0] * 2] * 3, TypeError, "df must be a numpy.ndarray", id="list"),
    pytest.param(np.ones((3, 2), bool), TypeError, "real numeric dtype", id="bool"),
    pytest.param(np.ones((3, 2), complex), TypeError, "real numeric dtype", id="complex"),
]


@pytest.mark.parametrize("df, error, match", BAD_DF)
def test_df_must_be_finite_real_and_of_fs_shape(df, error, match):
    x = _x()
    saved = _bits(x)
    with pytest.raises(error, match=match):
        eval_numerical_gradient_array(lambda x: x**3, x, df)
    assert _bits(x) == saved


@pytest.mark.parametrize(
    "f, error",
    [
        pytest.param(lambda x: np.array(["a"] * 6).reshape(3, 2), TypeError, id="strings"),
        pytest.param(lambda x: None, TypeError, id="None"),
        pytest.param(lambda x: x.sum(), ValueError, id="scalar"),
    ],
)
def test_array_f_must_return_real_arrays(f, error):
    x = _x()
    saved = _bits(x)
    with pytest.raises(error, match="f"):
        eval_numerical_gradient_array(f, x, np.ones((3, 2)))
    assert _bits(x) == saved


@pytest.mark.parametrize("call, array_f", COURSE)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_x_is_copied_to_float64_and_never_touched(call, array_f, dtype, capsys):
    x = np.array([[1, 2], [3, 4]], dtype=dtype)
    saved = _bits(x)
    seen = []

    def f(z):
        seen.append(z.dtype)
        return z**3 if array_f else float(np.sum(z**3))

    if call is _sparse:
        call(f, x, grad=3.0 * x.astype(float) ** 2, num_checks=4)
        errors = [float(line.rsplit(" ", 1)[1]) for line in capsys.readouterr().out.splitlines()]
        assert len(errors) == 4 and max(errors) < 1e-8  # garbage before: the step rounded away
    else:
        kw = {"df": np.ones((2, 2))} if array_f else {}
        grad = call(f, x, **kw)
        assert grad.dtype == np.float64
        np.testing.assert_allclose(grad, 3.0 * x.astype(float) ** 2, rtol=1e-8)
    assert set(seen) == {np.dtype(np.float64)}
    assert _bits(x) == saved


@pytest.mark.parametrize("call, array_f", COURSE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_x_is_restored_bit_for_bit_when_f_raises_midway(call, array_f, dtype):
    x = _x((3, 3), dtype=dtype)
    x[1, 1] = -0.0
    saved = _bits(x)
    calls = []

    def f(z):
        calls.append(1)
        if len(calls) == 4:  # in the middle of the second element's difference
            raise RuntimeError("boom")
        return z**3 if array_f else float(np.sum(z**3))

    with pytest.raises(RuntimeError, match="boom"):
        call(f, x, num_checks=5) if call is _sparse else call(f, x)
    assert _bits(x) == saved


@pytest.mark.parametrize("call, array_f", COURSE)
def test_x_is_restored_even_if_f_writes_into_it(call, array_f):
    x = _x((2, 2))
    saved = _bits(x)

    def f(z):
        z *= 1.0000001  # a badly behaved f
        return z**3 if array_f else float(np.sum(z**3))

    call(f, x)
    assert _bits(x) == saved


@pytest.mark.parametrize("call, array_f", COURSE)
@pytest.mark.parametrize(
    "value, dtype",
    [pytest.param(1.0, np.float16, id="float16"), pytest.param(1e4, np.float32, id="float32")],
)
def test_a_step_lost_to_rounding_is_an_error_not_a_zero(call, array_f, value, dtype):
    x = np.full((2, 2), value, dtype=dtype)
    saved = _bits(x)
    with pytest.raises(ValueError, match="lost to rounding"):
        call(Counting(array_f), x)
    assert _bits(x) == saved


def test_float32_x_keeps_the_course_arithmetic():
    # Float arrays are still perturbed in place, in their dtype, as the course does.
    x = _x((2, 2), dtype=np.float32)
    grad = eval_numerical_gradient(lambda z: np.sum(z**3), x, verbose=False, h=1e-2)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, 3 * x.astype(np.float64) ** 2, rtol=1e-2)


@pytest.mark.parametrize(
    "kw, error, match",
    [
        ({"grad": np.zeros((2, 3))}, ValueError, r"analytic_grad must have shape \(3, 2\)"),
        ({"grad": [[0.0] * 2] * 3}, TypeError, "analytic_grad must be a numpy.ndarray"),
        ({"num_checks": -1}, ValueError, "num_checks must be >= 0"),
        ({"num_checks": 1.5}, TypeError, "num_checks must be an int"),
        ({"num_checks": True}, TypeError, "num_checks must be an int"),
    ],
)
def test_grad_check_sparse_arguments(kw, error, match):
    x = _x()
    f = Counting()
    with pytest.raises(error, match=match):
        _sparse(f, x, **kw)
    assert f.calls == 0


def test_grad_check_sparse_on_an_empty_x():
    f = Counting()
    with pytest.raises(ValueError, match="x is empty"):
        grad_check_sparse(f, np.zeros((0, 3)), np.zeros((0, 3)), num_checks=2)
    grad_check_sparse(f, np.zeros((0, 3)), np.zeros((0, 3)), num_checks=0)  # nothing to do
    assert f.calls == 0


def test_rel_error_edge_cases_are_documented_behaviour():
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
    assert np.isnan(rel_error(np.array([1.0, np.nan]), np.array([1.0, 2.0])))
    assert np.isnan(rel_error(np.array([np.inf]), np.array([np.inf])))
    assert np.isnan(rel_error(np.array([np.inf]), np.array([1.0])))
    assert not rel_error(np.array([np.nan]), np.array([np.nan])) < 1.0  # never passes
    with pytest.raises(TypeError, match="real numbers"):
        rel_error(np.array([1j]), np.array([1.0]))
    with pytest.raises(TypeError, match="real numbers"):
        rel_error(np.array(["a"]), np.array([1.0]))
    assert norm_rel_error(np.zeros(0), np.zeros(0)) == 0.0
    assert np.isnan(norm_rel_error(np.array([np.nan]), np.array([1.0])))
    with pytest.raises(ValueError, match="same shape|one shape"):
        norm_rel_error(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="real numbers"):
        norm_rel_error(np.array([1j]), np.array([1.0]))


# check_layer ---------------------------------------------------------------------------


def bn_train(x, gamma, beta):
    return batchnorm_forward(x, gamma, beta, {"mode": "train"})


def bn_inputs():
    rng = np.random.default_rng(5)
    return {
        "x": 5 * rng.standard_normal((5, 3)) + 12,
        "gamma": rng.standard_normal(3),
        "beta": rng.standard_normal(3),
    }


BAD_OPTIONS = [
    pytest.param({"order": 3}, ValueError, "order must be 2 or 4", id="order-3"),
    pytest.param({"order": 2.0}, TypeError, "order must be an int", id="order-float"),
    pytest.param({"order": "4"}, TypeError, "order must be an int", id="order-str"),
    pytest.param({"order": True}, TypeError, "order must be an int", id="order-bool"),
    pytest.param({"order": None}, TypeError, "order must be an int", id="order-None"),
    pytest.param({"h": 0.0}, ValueError, "h must be", id="h-0"),
    pytest.param({"h": -1e-3}, ValueError, "h must be", id="h-negative"),
    pytest.param({"h": float("nan")}, ValueError, "h must be", id="h-nan"),
    pytest.param({"h": float("inf")}, ValueError, "h must be", id="h-inf"),
    pytest.param({"h": "1e-3"}, TypeError, "h must be", id="h-str"),
    pytest.param({"h": True}, TypeError, "h must be", id="h-bool"),
    pytest.param({"tol": 0.0}, ValueError, "tol must be", id="tol-0"),
    pytest.param({"tol": -1.0}, ValueError, "tol must be", id="tol-negative"),
    pytest.param({"tol": float("nan")}, ValueError, "tol must be", id="tol-nan"),
    pytest.param({"tol": "1e-8"}, TypeError, "tol must be", id="tol-str"),
    pytest.param({"seed": -1}, ValueError, "seed must be >= 0", id="seed-negative"),
    pytest.param({"seed": 1.5}, TypeError, "seed must be an int", id="seed-float"),
    pytest.param({"seed": "0"}, TypeError, "seed must be an int", id="seed-str"),
    pytest.param({"seed": True}, TypeError, "seed must be an int", id="seed-bool"),
    pytest.param({"seed": None}, TypeError, "seed must be an int", id="seed-None"),
]


@pytest.mark.parametrize("options, error, match", BAD_OPTIONS)
def test_check_layer_options_are_validated_before_anything_runs(options, error, match):
    calls = []

    def forward(*a):
        calls.append(1)
        return bn_train(*a)

    inputs = bn_inputs()
    saved = {k: _bits(a) for k, a in inputs.items()}
    with pytest.raises(error, match=match):
        check_layer(forward, batchnorm_backward_alt, inputs, **options)
    assert not calls
    assert {k: _bits(a) for k, a in inputs.items()} == saved


BAD_INPUTS = [
    pytest.param([np.ones(3)], TypeError, "inputs must be a dict", id="list"),
    pytest.param({}, ValueError, "at least one array", id="empty"),
    pytest.param({0: np.ones((2, 2))}, TypeError, "keys must be the inputs' names", id="int-key"),
    pytest.param({"x": np.ones((2, 2), bool)}, TypeError, "real numbers", id="bool"),
    pytest.param({"x": np.ones((2, 2), complex)}, TypeError, "real numbers", id="complex"),
    pytest.param({"x": np.ones((2, 2), object)}, TypeError, "real numbers", id="object"),
    pytest.param({"x": [[1.0, 2.0]]}, TypeError, "real numbers", id="nested-list"),
    pytest.param({"x": np.array([[np.nan, 1.0]])}, ValueError, "NaN or inf", id="nan"),
]


@pytest.mark.parametrize("inputs, error, match", BAD_INPUTS)
def test_check_layer_inputs_are_validated(inputs, error, match):
    with pytest.raises(error, match=match):
        check_layer(lambda x: (x * 2.0, None), lambda d, c: 2.0 * d, inputs)


@pytest.mark.parametrize(
    "forward, backward, error, match",
    [
        pytest.param(None, affine_backward, TypeError, "forward must be a function", id="fwd"),
        pytest.param(affine_forward, "b", TypeError, "backward must be a function", id="bwd"),
        pytest.param(
            lambda x, w, b: affine_forward(x, w, b)[0],
            affine_backward,
            TypeError,
            r"forward must return \(out, cache\)",
            id="no-cache",
        ),
        pytest.param(
            lambda x, w, b: (np.full((2, 4), np.nan), None),
            affine_backward,
            ValueError,
            "NaN or inf",
            id="nan-out",
        ),
        pytest.param(
            affine_forward,
            lambda d, c: None,
            TypeError,
            "one gradient per input",
            id="backward-None",
        ),
        pytest.param(
            affine_forward,
            lambda d, c: ("dx", "dw", "db"),
            TypeError,
            "array of real numbers",
            id="backward-strings",
        ),
    ],
)
def test_check_layer_catches_malformed_layers(forward, backward, error, match):
    rng = np.random.default_rng(0)
    inputs = {"x": rng.uniform(1, 2, (2, 3)), "w": rng.standard_normal((3, 4)), "b": np.ones(4)}
    saved = {k: _bits(a) for k, a in inputs.items()}
    with pytest.raises(error, match=match):
        check_layer(forward, backward, inputs)
    assert {k: _bits(a) for k, a in inputs.items()} == saved


def test_check_layer_copies_integer_inputs_to_float64():
    rng = np.random.default_rng(1)
    x = rng.integers(-5, 5, size=(4, 3))
    w = rng.integers(-3, 3, size=(3, 2))
    b = np.arange(2)
    ints = check_layer(affine_forward, affine_backward, {"x": x, "w": w, "b": b})
    floats = check_layer(
        affine_forward,
        affine_backward,
        {"x": x.astype(float), "w": w.astype(float), "b": b.astype(float)},
    )
    assert ints.passed and ints.max_rel_error < 1e-9
    assert [g.rel_error for g in ints.grads] == [g.rel_error for g in floats.grads]
    assert x.dtype.kind == "i"  # untouched
