"""The per-row kernels' parameter bound: gamma and beta that could overflow x's dtype.

``kernels.rows`` checks, inside the compiled forward, that max|gamma| sqrt(M) + max|beta|
stays below a quarter of x's largest float (NaN and inf fail it). A call that fails it
runs the reference inside the same call, so the output (inf, NaN and all) is the
reference's; a call that passes stays in the kernel.
"""

from __future__ import annotations

import numpy as np
import pytest

from normgrad.kernels import group as fgroup
from normgrad.kernels import instance as finstance
from normgrad.kernels import layer as flayer
from normgrad.kernels import rms as frms
from normgrad.norms import group, instance, layer, rms


def _layer(x, g, b):
    return layer.layernorm_forward(x, g, b, {}), flayer.layernorm_forward_fused(x, g, b, {})


def _rms(x, g, b):
    return rms.rmsnorm_forward(x, g, {}), frms.rmsnorm_forward_fused(x, g, {})


def _group(x, g, b):
    x4 = x.reshape(x.shape[0], 4, 2, -1)
    g4, b4 = g[:4].reshape(1, 4, 1, 1), b[:4].reshape(1, 4, 1, 1)
    return (
        group.spatial_groupnorm_forward(x4, g4, b4, 2, {}),
        fgroup.spatial_groupnorm_forward_fused(x4, g4, b4, 2, {}),
    )


def _instance(x, g, b):
    x3 = x.reshape(x.shape[0], 4, -1)
    return (
        instance.instancenorm_forward(x3, g[:4], b[:4], {}),
        finstance.instancenorm_forward_fused(x3, g[:4], b[:4], {}),
    )


ROUTES = {"layer": _layer, "rms": _rms, "group": _group, "instance": _instance}


def _draw(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 16)).astype(dtype)
    return x, rng.standard_normal(16).astype(dtype), rng.standard_normal(16).astype(dtype)


BAD = [("gamma", np.nan), ("gamma", np.inf), ("beta", np.nan), ("beta", -np.inf)]
NON_FINITE = [(r, w, v) for r in ROUTES for w, v in BAD if not (r == "rms" and w == "beta")]


@pytest.mark.parametrize("route,where,value", NON_FINITE)  # RMS norm has no shift
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_parameters_give_the_reference_output(route, where, value, dtype) -> None:
    x, g, b = _draw(dtype)
    (g if where == "gamma" else b)[1] = value
    with np.errstate(all="ignore"):
        (want, _), (got, cache) = ROUTES[route](x, g, b)
    assert not type(cache).__name__.startswith("Fused")  # the reference ran
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # NaN where the reference has NaN


@pytest.mark.parametrize("route", ROUTES)
def test_a_gamma_near_the_float32_maximum_takes_the_reference(route) -> None:
    x, g, b = _draw(np.float32)
    g[0] = np.float32(1e38)  # 1e38 * sqrt(M) >= max / 4 for any M >= 1: it could overflow
    with np.errstate(all="ignore"):
        (want, _), (got, cache) = ROUTES[route](x, g, b)
    assert not type(cache).__name__.startswith("Fused")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ordinary_parameters_stay_in_the_kernel(route, dtype) -> None:
    x, g, b = _draw(dtype)
    g[0] = 1e4  # large but far from any overflow
    (want, _), (got, cache) = ROUTES[route](x, g, b)
    assert type(cache).__name__.startswith("Fused")
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * float(np.abs(want).max()))
