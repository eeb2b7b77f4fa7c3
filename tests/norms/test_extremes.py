"""Every registered normalization, forward and backward, at any finite magnitude.

The contract (``norms/core.py``, Numerics): correct results for any finite x, with no
overflow for |x| up to 1e300 and no underflow to a zero variance for tiny spreads that
are not zero. Three oracles, each over every spec in ``registry.SPECS`` and every route
(the fused one included):

- exact rescaling: normalization is scale-invariant, norm(2**k x; 4**k eps) = norm(x; eps)
  and dx scales by 2**-k, so the result at 2**k x for k in [-1000, 1000] must be the
  normal-range result (which the torch tests below pin down);
- PyTorch float64 autograd on random shapes, scales and offsets (house tolerance 1e-10);
- exact arithmetic (mpmath, 50 digits) at tiny sizes for magnitudes 1e-300 to 1e300;

plus the float32 contract (offsets 1e4 and 1e6 times the spread normalize to within 1e-3
of float64), and what non-finite x does (NaN in, NaN out, in its own group only).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from normgrad.gradient_check import norm_rel_error
from normgrad.norms import core, registry
from normgrad.norms.batch import batchnorm_backward_alt, batchnorm_forward
from normgrad.norms.running import StaleRunningStatsWarning
from normgrad.norms.spec import NormSpec, Route

SPECS = registry.SPECS
IDS = [s.name for s in SPECS]
ROUTES = [(s, name, r) for s in SPECS for name, r in s.all_routes().items()]
ROUTE_IDS = [f"{s.name}-{name}" for s, name, _ in ROUTES]
STALE = StaleRunningStatsWarning.MESSAGE  # RunningStats.update's warning


def has_beta(spec: NormSpec) -> bool:
    return "beta" in spec.cases[0].draw(np.random.default_rng(0))


def draw_inputs(
    spec: NormSpec, rng: np.random.Generator, x_shape, p_shape, offset: float = 0.0
) -> dict[str, np.ndarray]:
    """x = offset + randn, random gamma (and beta), named as the forward's arguments."""
    inputs = {"x": offset + rng.standard_normal(x_shape), "gamma": rng.standard_normal(p_shape)}
    if has_beta(spec):
        inputs["beta"] = rng.standard_normal(p_shape)
    return inputs


def run(spec: NormSpec, route: Route, inputs, dout, **options) -> tuple[np.ndarray, list]:
    """(out, [dx, dgamma(, dbeta)]) of one route, the parameter dict built by ``bind``."""
    out, cache = spec.call(route, **options)(*inputs.values())
    grads = route.backward(dout, cache)
    return out, [g for g in grads if g is not None]


@contextmanager
def strict() -> Iterator[None]:
    """Any RuntimeWarning fails, except the documented one for stale running statistics."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings("ignore", message=re.escape(STALE), category=RuntimeWarning)
        yield


def test_every_registered_normalization_has_a_random_layout(layouts) -> None:
    assert set(layouts) == {s.name for s in SPECS}


# --- exact rescaling: 2**k x for k in [-1000, 1000] -----------------------------------


@pytest.mark.parametrize("spec,route_name,route", ROUTES, ids=ROUTE_IDS)
@settings(max_examples=12, deadline=None)
@given(
    data=st.data(),
    k=st.one_of(st.integers(-1000, 1000), st.sampled_from([-1000, -565, -520, 520, 600, 997])),
    eps=st.sampled_from([0.0, 1e-5, 0.5]),
    offset=st.sampled_from([0.0, 3.0, 100.0]),
    seed=st.integers(0, 2**16),
)
def test_extreme_magnitudes_give_the_rescaled_result(
    spec, route_name, route, layouts, data, k, eps, offset, seed
) -> None:
    x_shape, p_shape, options = data.draw(layouts[spec.name])
    rng = np.random.default_rng(seed)
    inputs = draw_inputs(spec, rng, x_shape, p_shape, offset)
    with np.errstate(all="ignore"):
        x_t = np.ldexp(inputs["x"], k)  # the extreme input (subnormal values lose bits ...)
        eps_t = float(np.ldexp(eps, 2 * k))
        if not np.isfinite(eps_t):  # eps * 4**k beyond float64: use eps = 0 on both sides
            eps_t = 0.0
    x_ref = np.ldexp(x_t, -k)  # ... so the reference takes exactly the same values
    eps_ref = float(np.ldexp(eps_t, -2 * k))
    dout = rng.standard_normal(x_shape)
    out_r, grads_r = run(spec, route, {**inputs, "x": x_ref}, dout, eps=eps_ref, **options)
    with strict():
        out, grads = run(spec, route, {**inputs, "x": x_t}, dout, eps=eps_t, **options)
    assert np.all(np.isfinite(out))
    scale = max(1.0, float(np.max(np.abs(out_r))))
    np.testing.assert_allclose(out, out_r, rtol=1e-12, atol=1e-12 * scale)
    dx = np.ldexp(grads[0], k)  # dL/dx scales by 2**-k
    assert np.max(np.abs(dx - grads_r[0])) <= 1e-10 * np.max(np.abs(grads_r[0])) + 1e-300
    # dgamma and dbeta are sums of O(|dout|) terms that can cancel (a few rows): their
    # error scales with the terms' random-walk size, not with the (maybe tiny) sum
    terms = np.max(np.abs(dout)) * np.sqrt(dout.size)
    for got, want in zip(grads[1:], grads_r[1:], strict=True):
        atol = 1e-12 * (np.max(np.abs(want)) + terms)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=atol)


BN_LIKE = [s for s in SPECS if s.param_name == "bn_param"]  # with running statistics


@pytest.mark.parametrize("spec", BN_LIKE, ids=[s.name for s in BN_LIKE])
@pytest.mark.parametrize("k", [-500, -300, 500])
def test_test_mode_at_extreme_magnitudes_gives_the_rescaled_result(spec, k) -> None:
    rng = np.random.default_rng(abs(k))
    inputs = spec.cases[0].draw(rng)
    C = inputs["gamma"].shape[0]
    mean, var = rng.standard_normal(C) + 12.0, rng.uniform(10.0, 40.0, C)
    mean_t, var_t = np.ldexp(mean, k), np.ldexp(var, 2 * k)
    dout = rng.standard_normal(inputs["x"].shape)
    for route in spec.all_routes().values():
        out_r, grads_r = run(
            spec, route, inputs, dout, mode="test", eps=0.0, running_mean=np.ldexp(mean_t, -k),
            running_var=np.ldexp(var_t, -2 * k),
        )  # fmt: skip
        with strict():
            out, grads = run(
                spec, route, {**inputs, "x": np.ldexp(inputs["x"], k)}, dout, mode="test",
                eps=0.0, running_mean=mean_t, running_var=var_t,
            )  # fmt: skip
        np.testing.assert_allclose(out, out_r, rtol=1e-13)
        np.testing.assert_allclose(np.ldexp(grads[0], k), grads_r[0], rtol=1e-13)
        for got, want in zip(grads[1:], grads_r[1:], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13)


# --- PyTorch float64 autograd: random shapes, scales and offsets ----------------------


def torch_grads(spec: NormSpec, inputs, dout, options) -> tuple[np.ndarray, list[np.ndarray]]:
    assert spec.torch is not None
    tensors = {k: torch.tensor(a, requires_grad=True) for k, a in inputs.items()}
    out = spec.torch(torch, tensors, **options)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors.values()]


@pytest.mark.parametrize("spec,route_name,route", ROUTES, ids=ROUTE_IDS)
@settings(max_examples=6, deadline=None)
@given(
    data=st.data(),
    log_scale=st.floats(-4, 4),
    offset=st.floats(-1e3, 1e3),
    eps=st.sampled_from([1e-5, 1e-3]),
    seed=st.integers(0, 2**16),
)
def test_matches_torch_autograd_on_random_shapes_scales_and_offsets(
    spec, route_name, route, layouts, data, log_scale, offset, eps, seed
) -> None:
    x_shape, p_shape, options = data.draw(layouts[spec.name])
    rng = np.random.default_rng(seed)
    inputs = draw_inputs(spec, rng, x_shape, p_shape, offset)
    inputs["x"] *= 10.0**log_scale  # spread 10**log_scale, mean offset * spread
    dout = rng.standard_normal(x_shape)
    with strict():
        out, grads = run(spec, route, inputs, dout, eps=eps, **options)
    t_out, t_grads = torch_grads(spec, inputs, dout, {"eps": eps, **options})
    assert norm_rel_error(out, t_out) < 1e-10
    for got, want in zip(grads, t_grads, strict=True):
        assert norm_rel_error(got, want) < 1e-10


# --- the float32 contract: offsets of 1e4 and 1e6 times the spread ---------------------


@pytest.mark.parametrize("spec,route_name,route", ROUTES, ids=ROUTE_IDS)
@settings(max_examples=8, deadline=None)
@given(
    data=st.data(),
    ratio=st.sampled_from([1e4, 1e6, -1e6]),
    log_scale=st.floats(-3, 3),
    seed=st.integers(0, 2**16),
)
def test_float32_at_large_offsets_normalizes_like_float64(
    spec, route_name, route, layouts, data, ratio, log_scale, seed
) -> None:
    x_shape, p_shape, options = data.draw(layouts[spec.name])
    rng = np.random.default_rng(seed)
    inputs64 = draw_inputs(spec, rng, x_shape, p_shape, ratio)
    inputs64["x"] *= 10.0**log_scale
    inputs32 = {k: a.astype(np.float32) for k, a in inputs64.items()}
    same = {k: a.astype(np.float64) for k, a in inputs32.items()}  # the float32 values
    dout = rng.standard_normal(x_shape)
    with strict():
        out32, grads32 = run(spec, route, inputs32, dout.astype(np.float32), **options)
    out64, grads64 = run(spec, route, same, dout, **options)
    assert out32.dtype == np.float32
    assert np.max(np.abs(out32 - out64)) < 1e-3
    for got, want in zip(grads32, grads64, strict=True):
        assert got.dtype == np.float32
        assert norm_rel_error(got, want) < 1e-3


# --- exact arithmetic at tiny sizes -------------------------------------------------------

mpmath.mp.dps = 50


def exact_standardize(x, gamma, beta, dout, axes, eps, center=True):
    """Forward and closed-form backward with mpmath over ``axes`` of 2-D x."""
    x = np.asarray(x, dtype=object)
    f = np.vectorize(mpmath.mpf, otypes=[object])
    xm, dm = f(x), f(dout)
    gm = f(np.broadcast_to(gamma, x.shape))
    bm = f(np.broadcast_to(beta, x.shape))
    M = int(np.prod([x.shape[a] for a in axes]))
    mu = xm.sum(axis=axes, keepdims=True) / M if center else xm * 0
    var = ((xm - mu) ** 2).sum(axis=axes, keepdims=True) / M
    inv = np.vectorize(lambda v: 1 / mpmath.sqrt(v + mpmath.mpf(eps)), otypes=[object])(var)
    xhat = (xm - mu) * inv
    dxhat = dm * gm
    proj = (dxhat * xhat).sum(axis=axes, keepdims=True) / M
    dx = dxhat - xhat * proj
    if center:
        dx = dx - dxhat.sum(axis=axes, keepdims=True) / M
    return gm * xhat + bm, dx * inv


def as_float(a) -> np.ndarray:
    return np.vectorize(lambda v: float(v), otypes=[float])(a)


EXACT_CASES = {
    "batchnorm": ((0,), True),
    "layernorm": ((1,), True),
    "rmsnorm": ((1,), False),
}


@pytest.mark.parametrize(
    "spec,route_name,route",
    [r for r in ROUTES if r[0].name in EXACT_CASES],
    ids=[i for i, r in zip(ROUTE_IDS, ROUTES, strict=True) if r[0].name in EXACT_CASES],
)
@settings(max_examples=12, deadline=None)
@given(
    magnitude=st.sampled_from([1e300, 1.7e308, 1e200, 1e154, 1e-170, 1e-300, 2.0**-1060]),
    relative_offset=st.sampled_from([0.0, 5.0, 1e4]),
    relative_eps=st.sampled_from([0.0, 0.3]),
    shape=st.tuples(st.integers(3, 4), st.integers(3, 4)),
    seed=st.integers(0, 2**16),
)
def test_matches_exact_arithmetic_from_1e_minus_300_to_1e300(
    spec, route_name, route, magnitude, relative_offset, relative_eps, shape, seed
) -> None:
    axes, center = EXACT_CASES[spec.name]
    rng = np.random.default_rng(seed)
    base = relative_offset + rng.standard_normal(shape)
    top = np.max(np.abs(base))
    with np.errstate(all="ignore"):
        # the largest |x| is `magnitude` (to rounding); base / top first, for magnitude /
        # top overflows to inf when top < 1 and magnitude is near the largest float
        x = (base / top) * magnitude
        eps = float(relative_eps * (magnitude / top) ** 2)  # eps comparable to the variance
    eps = eps if np.isfinite(eps) else 0.0
    D = shape[1]
    gamma, beta, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal(shape)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    if spec.name == "rmsnorm":
        del inputs["beta"]
    with np.errstate(over="ignore"):  # max - min of +-1.7e308 is inf, and not 0
        constant = np.any(np.ptp(x, axis=axes) == 0 if center else np.all(x == 0, axis=axes))
    if eps == 0 and constant:
        with pytest.raises(ValueError, match="eps = 0 and the group"):  # x rounded to one value
            run(spec, route, inputs, dout, eps=eps)
        return
    with strict():
        out, grads = run(spec, route, inputs, dout, eps=eps)
    want_out, want_dx = exact_standardize(
        x, gamma, inputs.get("beta", np.zeros(D)), dout, axes, eps, center
    )
    # centring data whose mean is `relative_offset` times its spread costs that many ulps
    atol = 1e-14 * (1.0 + relative_offset)
    np.testing.assert_allclose(out, as_float(want_out), rtol=1e-12, atol=atol)
    # dx may lie far outside [1e-300, 1e300]: compare it in units of its largest exact
    # entry. An entry within that tolerance of the float range may be the honest +-inf.
    tol = 1e-10 * (1.0 + relative_offset) * max(abs(w) for w in want_dx.ravel())
    fmax = np.finfo(np.float64).max
    for got, want in zip(grads[0].ravel(), want_dx.ravel(), strict=True):
        if np.isinf(got):
            assert abs(want) + tol > fmax, (got, want)
            assert abs(want) <= tol or (got > 0) == (want > 0)
        else:
            assert abs(mpmath.mpf(float(got)) - want) <= tol, (got, want)


# --- non-finite x: NaN in, NaN out, in its own group only ------------------------------


def group_of(spec: NormSpec, shape: tuple[int, ...], index: tuple[int, ...], options) -> Any:
    """A boolean mask of the elements that share a statistic with x[index]."""
    mask = np.zeros(shape, dtype=bool)
    name = spec.name
    if name in ("batchnorm", "batchrenorm", "sync_batchnorm"):
        mask[:, index[1]] = True
    elif name == "spatial_batchnorm":
        mask[:, index[1]] = True
    elif name in ("layernorm", "rmsnorm"):
        mask[index[0]] = True
    elif name == "layernorm_nd":
        lead = len(shape) - options.get("ndim", 2)
        mask[index[:lead]] = True
    elif name == "instancenorm":
        mask[index[0], index[1]] = True
    elif name == "groupnorm":
        Cg = shape[1] // options["G"]
        g = index[1] // Cg
        mask[index[0], g * Cg : (g + 1) * Cg] = True
    else:  # a new normalization: add its groups here
        raise AssertionError(f"group_of does not know {name}")
    return mask


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("spec,route_name,route", ROUTES, ids=ROUTE_IDS)
def test_non_finite_x_gives_nan_in_its_own_group_only(spec, route_name, route, bad) -> None:
    rng = np.random.default_rng(3)
    case = spec.cases[0]
    inputs = case.draw(rng)
    x = inputs["x"]
    index = tuple(int(rng.integers(s)) for s in x.shape)
    dirty = x.copy()
    dirty[index] = bad
    dout = rng.standard_normal(x.shape)
    clean_out, clean_grads = run(spec, route, inputs, dout, **case.options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, grads = run(spec, route, {**inputs, "x": dirty}, dout, **case.options)
    group = group_of(spec, x.shape, index, case.options)
    assert np.all(np.isnan(out[group])) and np.all(np.isnan(grads[0][group]))
    # bit for bit, except the fused route: its NaN call runs the reference route instead
    rtol = 1e-12 if route_name == "fused" else 0.0
    np.testing.assert_allclose(out[~group], clean_out[~group], rtol=rtol, atol=0)
    np.testing.assert_allclose(grads[0][~group], clean_grads[0][~group], rtol=rtol, atol=0)
    others = [w for w in caught if not str(w.message).startswith(STALE)]
    assert not others, [str(w.message) for w in others]


@pytest.mark.parametrize("forward", ["reference", "fused"])
def test_a_nan_batch_keeps_that_features_running_statistics_and_warns(forward) -> None:
    spec = registry.by_name("batchnorm")
    fwd = spec.forward if forward == "reference" else spec.all_routes()["fused"].forward
    assert fwd is not None
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4)) + 3.0
    x[2, 1] = np.nan
    param = {"mode": "train", "running_mean": np.full(4, 0.5), "running_var": np.full(4, 2.0)}
    clean = {"mode": "train", "running_mean": np.full(4, 0.5), "running_var": np.full(4, 2.0)}
    with pytest.warns(StaleRunningStatsWarning, match="running statistics unchanged") as seen:
        out, _ = fwd(x, np.ones(4), np.zeros(4), param)
    assert [w.message.features for w in seen] == [(1,)]
    batchnorm_forward(np.nan_to_num(x), np.ones(4), np.zeros(4), clean)
    assert np.all(np.isnan(out[:, 1])) and np.all(np.isfinite(out[:, [0, 2, 3]]))
    assert param["running_mean"][1] == 0.5 and param["running_var"][1] == 2.0
    for key in ("running_mean", "running_var"):  # the other features are updated as usual
        np.testing.assert_allclose(param[key][[0, 2, 3]], clean[key][[0, 2, 3]], rtol=1e-14)
    test_out, _ = fwd(x, np.ones(4), np.zeros(4), {**param, "mode": "test"})  # still usable
    assert np.all(np.isfinite(test_out[:, [0, 2, 3]]))


# --- running statistics that would overflow; test mode near the largest float ----------


@pytest.mark.parametrize("dtype,magnitude", [(np.float64, 1e300), (np.float32, 1e30)])
def test_running_variance_that_would_overflow_is_kept_with_a_warning(dtype, magnitude) -> None:
    rng = np.random.default_rng(5)
    x = (magnitude * rng.standard_normal((8, 3))).astype(dtype)
    x[:, 2] = rng.standard_normal(8).astype(dtype)  # an ordinary feature
    rv = np.array([1.0, 2.0, 3.0], dtype=dtype)
    param = {"mode": "train", "running_mean": np.zeros(3, dtype), "running_var": rv.copy()}
    with pytest.warns(StaleRunningStatsWarning) as seen:
        out, cache = batchnorm_forward(x, np.ones(3, dtype), np.zeros(3, dtype), param)
    assert [w.message.features for w in seen] == [(0, 1)]
    ref, _ = batchnorm_forward(  # eps / magnitude**2 is 0 in float64, to rounding
        x.astype(np.float64) / magnitude, np.ones(3), np.zeros(3), {"mode": "train", "eps": 0.0}
    )
    np.testing.assert_allclose(out[:, :2], ref[:, :2], rtol=2e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(param["running_var"][:2], rv[:2])
    assert param["running_var"][2] != rv[2] and np.all(np.isfinite(param["running_mean"]))
    dx, _, _ = batchnorm_backward_alt(rng.standard_normal((8, 3)).astype(dtype), cache)
    assert dx.dtype == dtype and np.all(np.isfinite(dx))


def test_test_mode_where_x_minus_mean_overflows() -> None:
    big = 1.7e308
    x = np.array([[big, 1.0], [-big, 2.0], [0.0, 3.0]])
    mean, var = np.array([-0.9e308, 1.0]), np.array([1e300, 4.0])
    for spec_name in ("batchnorm", "batchrenorm"):
        spec = registry.by_name(spec_name)
        for route in spec.all_routes().values():
            with strict():
                out, _ = spec.call(route, mode="test", running_mean=mean, running_var=var)(
                    x, np.ones(2), np.zeros(2)
                )
            want = [
                [float((mpmath.mpf(a) - mpmath.mpf(m)) / mpmath.sqrt(mpmath.mpf(s) + 1e-5))
                 for a, m, s in zip(row, mean, var, strict=True)]
                for row in x
            ]  # fmt: skip
            np.testing.assert_allclose(out, want, rtol=1e-14)


def test_rescaling_is_only_used_where_the_statistics_need_it() -> None:
    # Bit for bit the plain formulas in the normal range, and where it is needed only the
    # groups that need it are redone: the other features are untouched.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 3)) + 2.0
    plain, rescaled = core.standardize_rescaled(x, (0,), 1e-5)
    assert rescaled is None
    wide = x.copy()
    wide[:, 1] *= 1e300
    s, r = core.standardize_rescaled(wide, (0,), 1e-5)
    assert r is not None and list(r.exp[0] != 0) == [False, True, False]
    np.testing.assert_array_equal(s.xhat[:, [0, 2]], plain.xhat[:, [0, 2]])
    assert np.all(np.abs(r.x[:, 1] - r.mu[0, 1]) <= 1) and r.eps[0, 1] < 1
    unscaled = core.standardize(x, (0,), 0.0)  # eps / 1e600 is 0 to rounding
    np.testing.assert_allclose(s.xhat[:, 1], unscaled.xhat[:, 1], rtol=1e-12)
    assert np.isinf(s.var[0, 1])  # the true variance, 1e600, is beyond float64


# --- subnormal spreads: 1 / std beyond the float range ---------------------------------


@pytest.mark.parametrize(
    "spec,route_name,route",
    [r for r in ROUTES if r[0].name in EXACT_CASES],
    ids=[i for i, r in zip(ROUTE_IDS, ROUTES, strict=True) if r[0].name in EXACT_CASES],
)
@pytest.mark.parametrize("seed", [0, 8, 19, 20, 444])
def test_subnormal_spreads_give_exact_zeros_and_signed_infinities_not_nan(
    spec, route_name, route, seed
) -> None:
    """x at 1e4 spreads from 0 with a spread of a few 5e-324: 1 / std overflows, so the
    true dx exceeds the float range. Found by the property test above (seed 444, the
    magnitude 2**-1060): the closed form gave inf * 0 = NaN where its bracket was 0;
    now such an entry is 0, and the others the signed inf."""
    axes, center = EXACT_CASES[spec.name]
    rng = np.random.default_rng(seed)
    shape = (4, 4)
    base = 1e4 + rng.standard_normal(shape)
    x = base * (2.0**-1060 / np.max(np.abs(base)))
    D = shape[1]
    inputs = {"x": x, "gamma": rng.standard_normal(D), "beta": rng.standard_normal(D)}
    if "beta" not in spec.cases[0].draw(np.random.default_rng(0)):  # RMS norm: no shift
        del inputs["beta"]
    dout = rng.standard_normal(shape)
    if center and np.any(np.ptp(x, axis=axes) == 0):
        pytest.skip("x rounded to one value in some group: the eps = 0 error, tested above")
    with strict():
        out, grads = run(spec, route, inputs, dout, eps=0.0)
    want_out, want_dx = exact_standardize(
        x, inputs["gamma"], inputs.get("beta", np.zeros(D)), dout, axes, 0.0, center
    )
    np.testing.assert_allclose(out, as_float(want_out), rtol=1e-12, atol=1e-10)
    dx = grads[0]
    assert not np.isnan(dx).any()
    # Normwise, as above: the largest entries are beyond the range, so they must be the
    # signed inf; entries below the tolerance (rounding of the bracket, in units of the
    # largest entry) may come out as anything but NaN, inf included.
    beyond = 2 * mpmath.mpf(float(np.finfo(np.float64).max))  # exact: no float overflow
    tol = 1e-10 * 1e4 * max(abs(w) for w in want_dx.ravel())
    checked = 0
    for got, want in zip(dx.ravel(), want_dx.ravel(), strict=True):
        if abs(want) > max(beyond, tol):
            checked += 1
            assert np.isinf(got) and (got > 0) == (want > 0), (got, want)
    assert checked and np.isinf(dx).any()  # this data really is beyond the range
