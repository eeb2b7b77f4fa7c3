"""The smallest counterexample: tiny integer inputs where the student's output is wrong.

As ``normgrad derive seed`` does, inputs are small integers, smallest first (2 values per
group, then 3, then 4; magnitudes 1, then 2, then 3), and for a normalization eps is
chosen so that var + eps is a perfect square: then s = sqrt(var + eps) is an integer,
eps is exact in binary (var has a power-of-two denominator; other draws are skipped),
and the correct value is an exact fraction, printed as one. The student's functions run
on those inputs in float64, exactly as on the random cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from normgrad.tools.grade import sandbox
from normgrad.tools.grade.cases import Case
from normgrad.tools.grade.compare import normwise
from normgrad.tools.grade.families import Family
from normgrad.tools.grade.sandbox import StudentError

_SIZES = (2, 3, 4)
_TRIES = 40  # draws per (size, magnitude)


def _dyadic(q: Fraction) -> bool:
    d = q.denominator
    return d & (d - 1) == 0


def _norm_case(kind: str, n: int, x: list[int], g: list[int], dy: list[int]) -> Case | None:
    """One group of n integers, shaped for ``kind``, with eps making sqrt(var + eps) an integer."""
    xs = [Fraction(v) for v in x]
    mu: Fraction = sum(xs, Fraction(0)) / n
    var: Fraction = sum(((v - mu) ** 2 for v in xs), Fraction(0)) / n
    if var == 0 or not _dyadic(var):
        return None
    k = math.isqrt(int(var)) + 1
    eps = float(k * k - var)  # exact: a dyadic rational of small size
    xa, ga, da = (np.array(a, dtype=np.float64) for a in (x, g, dy))
    shape: tuple[int, ...]
    pshape: tuple[int, ...]
    if kind in ("batch", "spatial"):
        shape, pshape = ((n, 1) if kind == "batch" else (n, 1, 1, 1)), (1,)
        ga = ga[:1]
    elif kind == "layer":
        shape, pshape = (1, n), (n,)
    else:  # group norm, one sample, G = 1: the n channels form the group
        shape, pshape = (1, n, 1, 1), (1, n, 1, 1)
    inputs = {"x": xa.reshape(shape), "gamma": ga.reshape(pshape), "beta": np.zeros(pshape)}
    extra = {"G": 1} if kind == "group" else {}
    return Case(f"N={n}", inputs, {"mode": "train", "eps": eps}, extra, da.reshape(shape))


def _norm_cases(kind: str, rng: np.random.Generator) -> Iterator[Case]:
    for n in _SIZES:
        for mag in (1, 2, 3):
            for _ in range(_TRIES):
                x = [int(v) for v in rng.integers(-mag, mag + 1, n)]
                g = [int(v) for v in rng.integers(1, mag + 1, n)]
                dy = [int(v) for v in rng.integers(-mag, mag + 1, n)]
                case = _norm_case(kind, n, x, g, dy)
                if case is not None and any(dy):
                    yield case


def _op_cases(family: Family, rng: np.random.Generator) -> Iterator[Case]:
    """Tiny integer cases for the other layers (exact in float64)."""
    ints = lambda shape, mag: rng.integers(-mag, mag + 1, shape).astype(np.float64)  # noqa: E731
    for mag in (1, 2, 3):
        for _ in range(_TRIES):
            name = family.name
            if name == "affine":
                yield Case(
                    "tiny",
                    {"x": ints((1, 2), mag), "w": ints((2, 2), mag), "b": ints((2,), mag)},
                    dout=ints((1, 2), mag),
                )
            elif name == "relu":
                x = rng.choice([-2.0, -1.0, 1.0, 2.0], (1, 3))
                yield Case("tiny", {"x": x}, dout=ints((1, 3), mag))
            elif name.startswith("conv"):
                yield Case(
                    "tiny",
                    {
                        "x": ints((1, 1, 3, 3), mag),
                        "w": ints((1, 1, 2, 2), mag),
                        "b": ints((1,), mag),
                    },
                    {"stride": 1, "pad": 0},
                    dout=ints((1, 1, 2, 2), mag),
                )
            elif name.startswith("pool"):
                x = rng.permutation(4).astype(np.float64).reshape(1, 1, 2, 2) - 1.5
                param = {"pool_height": 2, "pool_width": 2, "stride": 2}
                yield Case("tiny", {"x": x}, param, dout=ints((1, 1, 1, 1), mag) + 0.5)
            elif family.loss:
                x = ints((2, 3), mag)
                y = rng.integers(0, 3, 2)
                margins = x - x[np.arange(2), y][:, None] + 1.0
                margins[np.arange(2), y] = 1.0
                if name == "svm_loss" and np.any(margins == 0):
                    continue
                yield Case("tiny", {"x": x}, extra={"y": y})
            else:
                return


def _one(v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    f = Fraction(v).limit_denominator(10_000)
    return str(f) if abs(float(f) - v) <= 1e-9 * max(1.0, abs(v)) else f"{v:.6g}"


def _fmt(a: Any) -> str:
    """Numbers as exact fractions where they are, nested like the array (up to 2-D)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return _one(float(arr))
    if arr.ndim <= 2:
        rows = arr if arr.ndim == 2 else arr[None]
        body = ", ".join("[" + ", ".join(_one(float(v)) for v in r) + "]" for r in rows)
        return f"[{body}]" if arr.ndim == 2 else body
    return f"{[_one(float(v)) for v in arr.ravel()]} (shape {arr.shape})".replace("'", "")


def _group_facts(case: Case) -> str:
    """mu, var, s and xhat of a one-group normalization case, exactly."""
    x = [Fraction(float(v)) for v in case.inputs["x"].ravel()]
    n = len(x)
    mu: Fraction = sum(x, Fraction(0)) / n
    var: Fraction = sum(((v - mu) ** 2 for v in x), Fraction(0)) / n
    s = math.isqrt(int(var + Fraction((case.param or {})["eps"])))
    xhat = ", ".join(str((v - mu) / s) for v in x)
    return f"  (so mu = {mu}, var = {var}, sqrt(var + eps) = {s}, xhat = [{xhat}])"


def find(
    family: Family,
    function: str,
    output: str,
    fns: dict[str, Any],
    *,
    limit: float | None,
    files: tuple[str, ...],
    seed: int = 0,
    tol: float = 1e-6,
) -> list[str]:
    """Report lines for the smallest case where ``function``'s ``output`` is wrong ([] if none)."""
    rng = np.random.default_rng(seed)
    gen = _norm_cases(family.view, rng) if family.view else _op_cases(family, rng)
    forward = fns.get(family.forward)
    if forward is None:
        return []
    for case in gen:
        try:
            want_out, want_grads, _ = family.reference(case)
            param = family.fresh_param(case)
            named, cache = family.outputs(
                sandbox.call(forward, family.args(case, param), limit, files), case, param
            )
            if function == family.forward:
                got, want = named.get(output), want_out.get(output)
            else:
                assert case.dout is not None  # every tiny case of a layer with a backward
                res = sandbox.call(fns[function], [case.dout.copy(), cache], limit, files)
                res = res if isinstance(res, (tuple, list)) else (res,)
                got, want = (
                    dict(zip(family.grads, res, strict=False)).get(output),
                    want_grads[output],
                )
        except (StudentError, TypeError, ValueError, KeyError, IndexError):
            continue
        if got is None or want is None:
            continue
        try:
            wrong = not normwise(got, want) < tol
        except (TypeError, ValueError):  # not numbers: the rows already say so
            continue
        if wrong:
            return _lines(case, output, got, want)
    return []


def _lines(case: Case, output: str, got: Any, want: Any) -> list[str]:
    parts = [f"{k} = {_fmt(v)}" for k, v in case.inputs.items()]
    if case.param is not None:
        for k, v in case.param.items():
            if k != "mode":
                parts.append(f"{k} = {_fmt(v) if isinstance(v, (float, np.ndarray)) else repr(v)}")
    parts += [f"{k} = {_fmt(v)}" for k, v in case.extra.items()]
    if case.dout is not None:
        parts.append(f"dout = {_fmt(case.dout)}")
    out = ["smallest counterexample:", "  " + ", ".join(parts)]
    if "eps" in (case.param or {}):
        out.append(_group_facts(case))
    out += [f"  yours:   {output} = {_fmt(got)}", f"  correct: {output} = {_fmt(want)}"]
    return out
