"""Differential sweep: every fused route against its reference on awkward inputs.

For each normalization with a fused route and each of its spec's check cases (shapes
and options: batch renorm's plain, clipped and test-mode cases), each input variant
below (layouts, dtypes, non-finite and extreme values, empty batches; NaN, inf and
near-overflow parameters: float32 gamma of 1e38, whose outputs could leave float32),
train and test
mode (unless the case fixes the mode), and each upstream
gradient variant: the fused route must accept exactly what the reference accepts, reject
the rest with the same exception type and message, and otherwise agree to rounding,
running statistics included. Layouts and dtypes the kernels are not compiled for take
the reference inside the fused call, so they must agree too.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from normgrad.norms import registry

X_VARIANTS = (
    "c", "fortran", "transposed", "strided", "float32", "float16", "int", "bool",
    "nan", "inf", "1e200", "1e-200", "float32 gamma", "empty",
    "nan gamma", "inf beta", "huge gamma",
)  # fmt: skip
DOUT_VARIANTS = ("c", "fortran", "float32", "int", "flat", "None", "list")
FUSED = [s for s in registry.SPECS if s.fused is not None]
CASES = [
    (spec, case, mode)
    for spec in FUSED
    for case in spec.cases
    for mode in (
        (case.options.get("mode", "train"),)
        if spec.param_name != "bn_param" or "mode" in case.options
        else ("train", "test")
    )
]
IDS = [f"{spec.name}-{case.label}-{mode}" for spec, case, mode in CASES]


def _drawn(case: Any) -> dict[str, np.ndarray]:
    """A check case, drawn: x, gamma (and beta) of matching shapes."""
    return dict(case.draw(np.random.default_rng(0)))


def _x(variant: str, base: np.ndarray) -> np.ndarray:
    x = 3.0 * base + 1.0
    if variant in ("float32", "huge gamma"):
        return x.astype(np.float32)
    if variant == "float16":
        return x.astype(np.float16)
    if variant == "int":
        return (10 * x).astype(np.int64)
    if variant == "bool":
        return x > 0
    if variant == "fortran":
        return np.asfortranarray(x)
    if variant == "transposed":  # a C array's transpose, transposed back: not C-contiguous
        return np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2)
    if variant == "strided":
        return np.repeat(x, 2, axis=0)[::2]
    if variant in ("nan", "inf"):
        x.flat[3] = np.nan if variant == "nan" else np.inf
    if variant == "1e200":
        return x * 1e200
    if variant == "1e-200":
        return x * 1e-200
    if variant == "empty":
        return x[:0]
    return x


def _params(drawn: dict[str, np.ndarray], variant: str) -> list[np.ndarray]:
    low = variant in ("float32", "float32 gamma", "huge gamma")
    dtype = np.float32 if low else np.float64
    params = [a.astype(dtype) for k, a in drawn.items() if k not in ("x", "dout")]
    if variant == "nan gamma":
        params[0].flat[0] = np.nan
    if variant == "inf beta":  # gamma where the layer has no shift (RMS norm)
        params[-1].flat[-1] = np.inf
    if variant == "huge gamma":
        params[0].flat[0] = 1e38
    return params


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as e:  # noqa: BLE001 - comparing what each route raises is the point
        return "error", f"{type(e).__name__}: {e}"


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    with np.errstate(all="ignore"):
        finite = np.isfinite(a) & np.isfinite(b)
        scale = max(1.0, float(np.max(np.abs(a[finite]), initial=0)))
        err = float(np.max(np.abs(a[finite].astype(float) - b[finite].astype(float)), initial=0))
    return err <= tol * scale and np.array_equal(a[~finite], b[~finite], equal_nan=True)


def _dout(variant: str, shape: tuple[int, ...]) -> Any:
    d = np.random.default_rng(3).standard_normal(shape)
    return {
        "c": d,
        "fortran": np.asfortranarray(d),
        "float32": d.astype(np.float32),
        "int": (5 * d).astype(np.int32),
        "flat": d.reshape(-1),
        "None": None,
        "list": d.tolist(),
    }[variant]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs: both warn alike
@pytest.mark.parametrize("spec,case,mode", CASES, ids=IDS)
@pytest.mark.parametrize("variant", X_VARIANTS)
def test_fused_accepts_rejects_and_answers_as_the_reference(spec, case, variant, mode) -> None:
    fused = spec.all_routes()["fused"]
    drawn = _drawn(case)
    x = _x(variant, drawn["x"])
    params = _params(drawn, variant)
    options: dict[str, Any] = dict(case.options)
    if spec.param_name == "bn_param":
        C = params[0].size
        options = {"running_mean": np.full(C, 0.5), "running_var": np.full(C, 2.0), **options}
        options["mode"] = mode
    opts_ref, opts_fused = copy.deepcopy(options), copy.deepcopy(options)
    ref = _outcome(lambda: spec.call(None, **opts_ref)(x, *params))
    got = _outcome(lambda: spec.call(fused, **opts_fused)(x, *params))
    assert got[0] == ref[0], (ref, got)
    if ref[0] == "error":
        assert got[1] == ref[1]
        return
    (out_r, cache_r), (out_f, cache_f) = ref[1], got[1]
    low = x.dtype != np.float64 or params[0].dtype != np.float64
    tol = 1e-2 if x.dtype == np.float16 else 1e-5 if low else 1e-10
    assert _close(out_f, out_r, tol)
    for key in ("running_mean", "running_var"):
        if key in opts_ref:
            assert np.allclose(opts_fused[key], opts_ref[key], rtol=1e-6, equal_nan=True)
    backward_r = spec.routes["alt"].backward if "alt" in spec.routes else None
    backward_r = backward_r or next(iter(spec.routes.values())).backward
    for dv in DOUT_VARIANTS:
        dout = _dout(dv, out_r.shape)
        want = _outcome(lambda: backward_r(dout, cache_r))
        have = _outcome(lambda: fused.backward(dout, cache_f))
        assert have[0] == want[0], (dv, want, have)
        if want[0] == "error":
            assert have[1] == want[1], dv
            continue
        for g_f, g_r in zip(have[1], want[1], strict=True):
            assert (g_f is None) == (g_r is None), dv
            if g_r is not None:
                assert _close(g_f, g_r, 1e-2 if x.dtype == np.float16 else 1e-4 if low else 1e-9)
