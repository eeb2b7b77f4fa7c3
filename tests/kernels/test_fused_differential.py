"""Differential sweep: every fused route against its reference on awkward inputs.

For each normalization with a fused route, each input variant below (layouts, dtypes,
non-finite and extreme values, empty batches), train and test mode, and each upstream
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
)  # fmt: skip
DOUT_VARIANTS = ("c", "fortran", "float32", "int", "flat", "None", "list")
SHAPES = {
    "batchnorm": (5, 4),
    "batchrenorm": (5, 4),
    "layernorm": (5, 4),
    "rmsnorm": (5, 4),
    "spatial_batchnorm": (3, 4, 2, 3),
    "groupnorm": (3, 4, 2, 3),
    "instancenorm": (3, 4, 2, 3),
    "layernorm_nd": (3, 4, 2, 3),
}
OPTIONS = {"groupnorm": {"G": 2}, "layernorm_nd": {"ndim": 2}}
OPTIONS["batchrenorm"] = {"r_max": 1.5, "d_max": 0.5}
FUSED = [s for s in registry.SPECS if s.fused is not None]
CASES = [
    (spec, mode)
    for spec in FUSED
    for mode in (("train", "test") if spec.param_name == "bn_param" else ("train",))
]


def _x(variant: str, shape: tuple[int, ...]) -> np.ndarray:
    x = 3.0 * np.random.default_rng(0).standard_normal(shape) + 1.0
    if variant == "float32":
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


def _params(spec: Any, x: np.ndarray, variant: str) -> list[np.ndarray]:
    if spec.name == "layernorm_nd":
        shape = x.shape[-2:]
    elif x.ndim == 2:
        shape = (x.shape[1],)
    else:
        shape = spec.blocks[0].param_shape(x.shape[1])
    dtype = np.float32 if variant in ("float32", "float32 gamma") else np.float64
    rng = np.random.default_rng(2)
    names = [k for k in spec.cases[0].draw(rng) if k not in ("x", "dout")]
    return [rng.standard_normal(shape).astype(dtype) for _ in names]


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
@pytest.mark.parametrize("spec,mode", CASES, ids=[f"{s.name}-{m}" for s, m in CASES])
@pytest.mark.parametrize("variant", X_VARIANTS)
def test_fused_accepts_rejects_and_answers_as_the_reference(spec, variant, mode) -> None:
    fused = spec.all_routes()["fused"]
    x = _x(variant, SHAPES[spec.name])
    params = _params(spec, x, variant)
    options: dict[str, Any] = dict(OPTIONS.get(spec.name, {}))
    if spec.param_name == "bn_param":
        C = params[0].size
        options.update(mode=mode, running_mean=np.full(C, 0.5), running_var=np.full(C, 2.0))
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
