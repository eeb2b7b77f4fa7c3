"""The fused kernel never answers differently from the reference, at the edges too.

Where the plain formulas cannot give the result (statistics outside ``core.plain_range``,
NaN or inf in x, x - mu overflowing in test mode), dtypes numba does not compile, and
empty inputs, the fused call runs the reference route inside the same call: the same
output, gradients, running statistics, warnings and errors.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from normgrad.kernels.batchnorm import (
    FusedBatchNormCache,
    batchnorm_backward_fused,
    batchnorm_forward_fused,
)
from normgrad.norms.batch import BatchNormCache, batchnorm_backward_alt, batchnorm_forward


def both(x, gamma, beta, param, dout):
    """Run the reference and the fused pair on copies of ``param``; return everything."""
    results = []
    for fwd, bwd in (
        (batchnorm_forward, batchnorm_backward_alt),
        (batchnorm_forward_fused, batchnorm_backward_fused),
    ):
        p = copy.deepcopy(param)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, cache = fwd(x, gamma, beta, p)
            grads = bwd(dout, cache)
        results.append((out, grads, p, [str(w.message) for w in caught], cache))
    return results


def assert_same(ref, got, rtol=0.0) -> None:
    out_r, grads_r, p_r, warn_r, _ = ref
    out, grads, p, warn, _ = got
    np.testing.assert_allclose(out, out_r, rtol=rtol, atol=0)
    for a, b in zip(grads, grads_r, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
    assert p.keys() == p_r.keys()
    for k in p_r:
        if isinstance(p_r[k], np.ndarray):
            np.testing.assert_allclose(p[k], p_r[k], rtol=rtol, atol=0)
        else:
            assert p[k] == p_r[k]
    assert warn == warn_r


def draw(N=16, D=4, seed=0, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    x = scale * (offset + rng.standard_normal((N, D)))
    return x, rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D))


@pytest.mark.parametrize(
    "scale,eps",
    [(1e300, 1e-5), (1.5e154, 1e-5), (1e100, 0.0), (1e-170, 0.0), (2.0**-1050, 0.0)],
)
def test_extreme_train_batches_take_the_reference_route(scale, eps) -> None:
    x, gamma, beta, dout = draw(scale=scale, seed=1)
    param = {"mode": "train", "eps": eps, "running_var": np.ones(4), "running_mean": np.zeros(4)}
    ref, got = both(x, gamma, beta, param, dout)
    assert isinstance(got[4], BatchNormCache) and got[4].exp is not None  # rescaled
    assert np.all(np.isfinite(got[0]))
    assert_same(ref, got)


def test_ordinary_batches_stay_in_the_kernel() -> None:
    # the cheap check is on the (D,) statistics only; ordinary data never leaves the kernel
    for scale, eps in [(1.0, 1e-5), (1e80, 1e-5), (1e-80, 0.0), (1e-170, 1e-5)]:
        x, gamma, beta, dout = draw(scale=scale, seed=2)
        ref, got = both(x, gamma, beta, {"mode": "train", "eps": eps}, dout)
        assert isinstance(got[4], FusedBatchNormCache)
        assert_same(ref, got, rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_non_finite_x_gives_what_the_reference_gives(bad, mode) -> None:
    x, gamma, beta, dout = draw(seed=3)
    x[5, 2] = bad
    param = {"mode": mode, "running_mean": np.full(4, 0.5), "running_var": np.full(4, 2.0)}
    ref, got = both(x, gamma, beta, param, dout)
    assert isinstance(got[4], BatchNormCache)
    assert_same(ref, got)
    if mode == "train":  # the feature's running statistics are kept, with a warning
        assert got[2]["running_var"][2] == 2.0 and len(got[3]) == 1


def test_test_mode_where_x_minus_mean_overflows() -> None:
    x = np.array([[1.7e308, 1.0], [-1.7e308, 2.0]])
    param = {"mode": "test", "running_mean": np.array([-1e308, 0.0]), "running_var": np.ones(2)}
    ref, got = both(x, np.ones(2), np.zeros(2), param, np.ones((2, 2)))
    assert np.isfinite(got[0][1, 0]) and np.isinf(got[0][0, 0])  # 2.7e308 / 1 is beyond range
    assert_same(ref, got)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(5, 0), (0, 3), (0, 0)])
def test_empty_inputs_agree_with_the_reference(shape, mode) -> None:
    x = np.zeros(shape)
    D = shape[1]
    param = {"mode": mode}
    outcomes = []
    for fwd, bwd in (
        (batchnorm_forward, batchnorm_backward_alt),
        (batchnorm_forward_fused, batchnorm_backward_fused),
    ):
        p = copy.deepcopy(param)
        try:
            out, cache = fwd(x, np.ones(D), np.zeros(D), p)
            outcomes.append(("ok", out.shape, [g.shape for g in bwd(np.zeros(shape), cache)]))
        except ValueError as e:
            outcomes.append(("error", str(e), p))
    assert outcomes[0] == outcomes[1] or outcomes[0][:2] == outcomes[1][:2]
    if shape[0] == 0 and mode == "train":  # no rows: no variance to estimate
        assert outcomes[0][0] == "error" and "at least 2 rows" in outcomes[0][1]
        assert outcomes[1][2] == param  # nothing written
    else:  # D = 0 features, or N = 0 rows in test mode: an empty result
        assert outcomes[0] == ("ok", shape, [shape, (D,), (D,)])


def test_eps_zero_with_a_constant_feature_is_the_same_error() -> None:
    x, gamma, beta, _ = draw(seed=4)
    x[:, 1] = 3.0
    messages = []
    for fwd in (batchnorm_forward, batchnorm_forward_fused):
        param = {"mode": "train", "eps": 0.0}
        with pytest.raises(ValueError, match=r"eps = 0 and the group x\[:, 1\]") as info:
            fwd(x, gamma, beta, param)
        assert param == {"mode": "train", "eps": 0.0}
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_non_native_byte_order_takes_the_reference_route() -> None:
    x, gamma, beta, dout = draw(seed=5)
    swapped = x.astype(x.dtype.newbyteorder(">"))
    ref, got = both(swapped, gamma, beta, {"mode": "train"}, dout)
    assert isinstance(got[4], BatchNormCache)
    assert_same(ref, got)
    np.testing.assert_allclose(got[0], both(x, gamma, beta, {"mode": "train"}, dout)[0][0])
