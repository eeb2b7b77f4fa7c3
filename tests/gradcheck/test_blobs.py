"""eval_numerical_gradient_blobs / _net: the course's semantics, and bad blobs refused."""

from __future__ import annotations

import numpy as np
import pytest

from normgrad.gradient_check import eval_numerical_gradient_blobs, eval_numerical_gradient_net


class Blob:
    def __init__(self, vals, diffs=None):
        self.vals = vals
        self.diffs = np.zeros_like(vals) if diffs is None else diffs


def matmul(x, w, out):
    out.vals = x.vals @ w.vals


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    x = Blob(rng.standard_normal((4, 3)))
    w = Blob(rng.standard_normal((3, 5)))
    out = Blob(np.zeros((4, 5)), rng.standard_normal((4, 5)))  # random upstream gradient
    return x, w, out


def _bits(a):
    return a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()


def test_blobs_match_the_analytic_gradients_and_restore_vals():
    x, w, out = _blobs()
    saved = (_bits(x.vals), _bits(w.vals))
    dx, dw = eval_numerical_gradient_blobs(matmul, (x, w), out)
    np.testing.assert_allclose(dx, out.diffs @ w.vals.T, rtol=1e-8)
    np.testing.assert_allclose(dw, x.vals.T @ out.diffs, rtol=1e-8)
    assert (_bits(x.vals), _bits(w.vals)) == saved


def test_blobs_use_the_course_arithmetic_to_the_last_bit():
    x, w, out = _blobs(1)
    h = 1e-5
    want = []
    for blob in (x, w):  # the course's loop, restated
        diff = np.zeros_like(blob.diffs)
        for idx in np.ndindex(*blob.vals.shape):
            orig = blob.vals[idx]
            blob.vals[idx] = orig + h
            matmul(x, w, out)
            pos = np.copy(out.vals)
            blob.vals[idx] = orig - h
            matmul(x, w, out)
            neg = np.copy(out.vals)
            blob.vals[idx] = orig
            diff[idx] = np.sum((pos - neg) * out.diffs) / (2.0 * h)
        want.append(diff)
    got = eval_numerical_gradient_blobs(matmul, (x, w), out, h=h)
    assert len(got) == 2 and all(np.array_equal(g, e) for g, e in zip(got, want))


def test_net_calls_forward_with_no_arguments():
    x, w, out = _blobs(2)

    class Net:
        calls = 0

        def forward(self):
            Net.calls += 1
            out.vals = np.tanh(x.vals @ w.vals)

    (dx,) = eval_numerical_gradient_net(Net(), (x,), out)
    t = np.tanh(x.vals @ w.vals)
    np.testing.assert_allclose(dx, (out.diffs * (1 - t**2)) @ w.vals.T, rtol=1e-7)
    assert Net.calls == 2 * x.vals.size


def test_in_place_writes_into_output_vals_work_too():
    x, w, out = _blobs(3)

    def f(x, w, out):
        np.matmul(x.vals, w.vals, out=out.vals)

    dx, dw = eval_numerical_gradient_blobs(f, [x, w], out)  # a list of inputs works too
    np.testing.assert_allclose(dw, x.vals.T @ out.diffs, rtol=1e-8)


def test_integer_vals_are_differentiated_at_a_float_copy_and_left_alone():
    x, w, out = _blobs(4)
    ints = np.array([[1, -2, 3], [0, 2, -1], [4, 1, 1], [-3, 0, 2]])
    x = Blob(ints, np.zeros((4, 3), dtype=np.int64))  # integer diffs too
    saved = _bits(ints)
    dx, dw = eval_numerical_gradient_blobs(matmul, (x, w), out)
    assert dx.dtype == np.float64
    np.testing.assert_allclose(dx, out.diffs @ w.vals.T, rtol=1e-8)  # not zeros
    np.testing.assert_allclose(dw, ints.T @ out.diffs, rtol=1e-8)
    assert x.vals is ints and _bits(ints) == saved


def test_vals_are_restored_when_f_raises_midway():
    x, w, out = _blobs(5)
    x.vals[0, 1] = -0.0
    saved = (_bits(x.vals), _bits(w.vals))
    ints = Blob(np.arange(15).reshape(3, 5))
    calls = []
    at = [7]  # the call that raises

    def f(*blobs):
        calls.append(1)
        if len(calls) == at[0]:
            raise RuntimeError("boom")
        matmul(*blobs)

    with pytest.raises(RuntimeError, match="boom"):
        eval_numerical_gradient_blobs(f, (x, w), out)
    assert (_bits(x.vals), _bits(w.vals)) == saved
    original, saved_ints = ints.vals, _bits(ints.vals)
    calls.clear()
    at[0] = 2 * x.vals.size + 3  # inside the second (integer) blob's loop
    with pytest.raises(RuntimeError, match="boom"):
        eval_numerical_gradient_blobs(f, (Blob(x.vals.copy()), ints), out)
    assert ints.vals is original and _bits(original) == saved_ints  # the stand-in is gone


class NoDiffs:
    def __init__(self):
        self.vals = np.ones(3)


def _bad_cases():
    x, w, out = _blobs(6)
    nan_out = Blob(np.zeros((4, 5)), np.full((4, 5), np.nan))
    ro = Blob(np.ones((4, 3)))
    ro.vals.flags.writeable = False
    return [
        ("single-blob", matmul, x, out, 1e-5, TypeError, "tuple of input blobs"),
        ("no-diffs", matmul, (x, NoDiffs()), out, 1e-5, TypeError, r"without \.diffs"),
        ("vals-list", matmul, (Blob([1.0, 2.0], np.zeros(2)), w), out, 1e-5, TypeError, "ndarray"),
        ("vals-complex", matmul, (Blob(np.ones((4, 3), complex)), w), out, 1e-5, TypeError, "real"),
        ("vals-nan", matmul, (Blob(np.full((4, 3), np.nan)), w), out, 1e-5, ValueError, "NaN"),
        ("vals-read-only", matmul, (ro, w), out, 1e-5, ValueError, "read-only"),
        ("diffs-shape", matmul, (Blob(x.vals, np.zeros(3)), w), out, 1e-5, ValueError, "diffs"),
        ("output-no-diffs", matmul, (x, w), NoDiffs(), 1e-5, TypeError, "output must be a blob"),
        ("output-diffs-nan", matmul, (x, w), nan_out, 1e-5, ValueError, "output.diffs"),
        ("output-is-input", matmul, (x, out), out, 1e-5, ValueError, "is the output blob"),
        ("f-not-callable", "matmul", (x, w), out, 1e-5, TypeError, "f must be a function"),
        ("h-zero", matmul, (x, w), out, 0.0, ValueError, "h must be"),
        ("h-str", matmul, (x, w), out, "1e-5", TypeError, "h must be"),
        ("h-nan", matmul, (x, w), out, float("nan"), ValueError, "h must be"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())), ids=[c[0] for c in _bad_cases()])
def test_bad_blobs_are_refused_before_f_runs(case):
    _, f, inputs, out, h, error, match = _bad_cases()[case]
    calls = []

    def counted(*a):
        calls.append(1)
        return f(*a)

    blobs = inputs if isinstance(inputs, tuple) else (inputs,)
    saved = [_bits(b.vals) for b in blobs if isinstance(getattr(b, "vals", None), np.ndarray)]
    with pytest.raises(error, match=match):
        eval_numerical_gradient_blobs(counted if callable(f) else f, inputs, out, h=h)
    assert not calls
    assert [
        _bits(b.vals) for b in blobs if isinstance(getattr(b, "vals", None), np.ndarray)
    ] == saved


def test_f_writing_the_wrong_shape_is_an_error_and_vals_are_restored():
    x, w, out = _blobs(7)
    saved = _bits(x.vals)

    def f(x, w, out):
        out.vals = (x.vals @ w.vals).T

    with pytest.raises(ValueError, match=r"output.vals.*\(5, 4\).*output.diffs has shape \(4, 5\)"):
        eval_numerical_gradient_blobs(f, (x, w), out)
    assert _bits(x.vals) == saved


def test_a_net_needs_a_forward_method():
    x, _, out = _blobs(8)
    with pytest.raises(TypeError, match="forward"):
        eval_numerical_gradient_net(object(), (x,), out)


def test_a_step_lost_to_rounding_in_blob_vals():
    _, w, out = _blobs(9)
    x = Blob(np.full((4, 3), 1.0, dtype=np.float16))
    with pytest.raises(ValueError, match="lost to rounding"):
        eval_numerical_gradient_blobs(matmul, (x, w), out)
    assert np.all(x.vals == 1.0)
