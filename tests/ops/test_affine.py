"""Affine layer: finite differences, F.linear parity, shapes, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normgrad.gradient_check import check_layer
from normgrad.layers import affine_backward, affine_forward


def _inputs(x_shape, M, seed=0):
    rng = np.random.default_rng(seed)
    D = int(np.prod(x_shape[1:]))
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal((D, M)),
        rng.standard_normal(M),
        rng.standard_normal((x_shape[0], M)),
    )


@pytest.mark.parametrize("x_shape", [(4, 5), (3, 2, 3), (2, 2, 3, 2)])
def test_finite_differences(x_shape):
    x, w, b, _ = _inputs(x_shape, 4, seed=1)
    report = check_layer(affine_forward, affine_backward, {"x": x, "w": w, "b": b}, seed=2)
    assert [g.name for g in report.grads] == ["dx", "dw", "db"]
    for g in report.grads:
        assert g.rel_error < 1e-8, (g.name, g.rel_error)


def test_course_values():
    # The course's check: out of affine_forward on linspace inputs, computed by hand here.
    N, d, M = 2, (4, 5, 6), 3
    D = int(np.prod(d))
    x = np.linspace(-0.1, 0.5, num=N * D).reshape(N, *d)
    w = np.linspace(-0.2, 0.3, num=D * M).reshape(D, M)
    b = np.linspace(-0.3, 0.1, num=M)
    out, _ = affine_forward(x, w, b)
    expected = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])
    assert np.max(np.abs(out - expected)) < 1e-8


@pytest.mark.parametrize("x_shape", [(6, 7), (3, 2, 4, 2)])
def test_matches_torch_linear(x_shape):
    x, w, b, dout = _inputs(x_shape, 5, seed=3)
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = F.linear(xt.reshape(x.shape[0], -1), wt.T, bt)  # torch's weight is (M, D)
    yt.backward(torch.tensor(dout))
    assert np.max(np.abs(out - yt.detach().numpy())) < 1e-10
    assert dx.shape == x.shape
    for ours, theirs in [(dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert np.max(np.abs(ours - theirs.numpy())) < 1e-9


def test_errors():
    x, w, b, dout = _inputs((3, 2, 2), 4)
    with pytest.raises(ValueError, match=r"w must have shape \(D, M\) with D = 4"):
        affine_forward(x, w[:3], b)
    with pytest.raises(ValueError, match=r"w must be 2-D \(D, M\)"):
        affine_forward(x, w.reshape(2, 2, 4), b)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        affine_forward(x, w, b[:3])
    with pytest.raises(TypeError, match="numpy.ndarray"):
        affine_forward(x.tolist(), w, b)
    with pytest.raises(TypeError, match="floating dtype"):
        affine_forward(x.astype(np.int64), w, b)
    _, cache = affine_forward(x, w, b)
    with pytest.raises(ValueError, match="dout must have shape"):
        affine_backward(dout[:, :2], cache)


@pytest.mark.parametrize(
    "wdtype, bdtype", [(np.int64, np.int64), (np.float64, np.int32), (np.int8, np.bool_)]
)
def test_integer_and_bool_parameters_promote_like_numpy(wdtype, bdtype):
    # NumPy promotes integer w and b silently (the course relies on it); so does this,
    # and the gradients come back floating, equal to those of the float parameters.
    x, w, b, dout = _inputs((3, 2, 2), 4, seed=7)
    wi = np.round(3 * w).astype(wdtype)
    bi = (b > 0).astype(bdtype) if bdtype is np.bool_ else np.round(3 * b).astype(bdtype)
    out, cache = affine_forward(x, wi, bi)
    want = x.reshape(3, -1) @ wi + bi
    assert out.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(out, want)
    dx, dw, db = affine_backward(dout, cache)
    wf, bf = wi.astype(np.float64), bi.astype(np.float64)
    rx, rw, rb = affine_backward(dout, affine_forward(x, wf, bf)[1])
    for ours, ref in ((dx, rx), (dw, rw), (db, rb)):
        assert np.issubdtype(ours.dtype, np.floating)
        np.testing.assert_array_equal(ours, ref)
    assert not np.array_equal(dw, np.trunc(dw))  # not truncated to integers
    # float32 x with int8 w: promoted as np.result_type does (to float32)
    out32, _ = affine_forward(x.astype(np.float32), wi.astype(np.int8), bi.astype(np.int8))
    assert out32.dtype == np.float32


def test_integer_x_and_non_numeric_parameters_are_still_rejected():
    x, w, b, _ = _inputs((3, 2, 2), 4)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        affine_forward(x.astype(np.int64), w.astype(np.int64), b)
    with pytest.raises(TypeError, match="w must have a real numeric dtype"):
        affine_forward(x, w.astype(np.complex128), b)
    with pytest.raises(TypeError, match=r"b must be a numpy.ndarray"):
        affine_forward(x, w, b.tolist())


def test_need_dx_false_skips_dx_and_keeps_dw_db_bit_identical():
    x, w, b, dout = _inputs((4, 2, 3), 5, seed=11)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    none, dw2, db2 = affine_backward(dout, cache, need_dx=False)
    assert dx is not None and dx.shape == x.shape  # the course's default is unchanged
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)
