"""``normgrad bench --op conv``: time the naive and fast convolutions, forward + backward.

The default problem is the course's: x (50, 3, 32, 32), 32 filters of 3x3, stride 1,
pad 1, float64. Each timing is the median of ``repeats`` calls after ``warmup`` untimed
calls (``normgrad.tools.timing.time_call``), for the forward pass, the backward pass, and the
two together. The naive loop is slow, so it gets its own (smaller) repeat count.

Before timing, the fast and naive results are compared (outputs and every gradient), so a
speedup is only ever reported for two implementations that agree.

BLAS threads: the fast path's matrix products run in BLAS, which may use several
threads; the naive loop uses one. ``blas_threads`` (default 1, the like-for-like
comparison) is applied with ``threadpoolctl`` when it is installed, and the report says
whether it was. PyTorch's ``F.conv2d`` with autograd is timed too when torch is installed
(``torch.set_num_threads(blas_threads)``). Speed claims live here, never in unit tests.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from normgrad._internal.tables import format_table
from normgrad._internal.threads import blas_limit
from normgrad.ops.conv import conv_backward_naive, conv_forward_naive
from normgrad.ops.fast import conv_backward_fast, conv_forward_fast
from normgrad.tools.timing import time_call

DEFAULT_X_SHAPE: tuple[int, int, int, int] = (50, 3, 32, 32)
DEFAULT_FILTERS = 32
DEFAULT_KERNEL = 3


@dataclass(frozen=True)
class ConvRecord:
    """One measurement; ``--json`` writes a list of these."""

    op: str  # "conv_forward", "conv_backward" or "conv_forward_backward"
    impl: str  # "naive", "fast" or "torch"
    dtype: str
    shape: list[int]  # x's shape (N, C, H, W)
    w_shape: list[int]  # (F, C, HH, WW)
    stride: int
    pad: int
    median_s: float
    repeats: int
    blas_threads: str  # the thread limit applied, or "uncontrolled"


def agreement(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict, dout: np.ndarray
) -> float:
    """Largest absolute difference between naive and fast over out, dx, dw and db."""
    out_n, cache_n = conv_forward_naive(x, w, b, conv_param)
    out_f, cache_f = conv_forward_fast(x, w, b, conv_param)
    diffs = [np.max(np.abs(out_n - out_f))]
    for gn, gf in zip(
        conv_backward_naive(dout, cache_n), conv_backward_fast(dout, cache_f), strict=True
    ):
        diffs.append(np.max(np.abs(gn - gf)))
    return float(max(diffs))


def _time_impl(forward, backward, x, w, b, conv_param, dout, warmup, repeats):
    """(forward, backward, forward+backward) medians for one implementation."""
    _, cache = forward(x, w, b, conv_param)

    def both():
        _, c = forward(x, w, b, conv_param)
        return backward(dout, c)

    return (
        time_call(lambda: forward(x, w, b, conv_param), warmup, repeats),
        time_call(lambda: backward(dout, cache), warmup, repeats),
        time_call(both, warmup, repeats),
    )


def _time_torch(x, w, b, conv_param, dout, warmup, repeats):
    import torch
    import torch.nn.functional as F

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dt = torch.tensor(dout)
    s, p = conv_param["stride"], conv_param["pad"]

    def fwd():
        with torch.no_grad():
            return F.conv2d(xt, wt, bt, stride=s, padding=p)

    def both():
        y = F.conv2d(xt, wt, bt, stride=s, padding=p)
        return torch.autograd.grad(y, (xt, wt, bt), dt)

    return time_call(fwd, warmup, repeats), None, time_call(both, warmup, repeats)


def run(
    x_shape: tuple[int, int, int, int] = DEFAULT_X_SHAPE,
    filters: int = DEFAULT_FILTERS,
    kernel: int = DEFAULT_KERNEL,
    stride: int = 1,
    pad: int = 1,
    dtype: str = "float64",
    warmup: int = 2,
    repeats: int = 7,
    naive_warmup: int = 1,
    naive_repeats: int = 3,
    blas_threads: int | None = 1,
    with_torch: bool = True,
    seed: int = 0,
) -> tuple[list[ConvRecord], float]:
    """Time naive, fast (and torch) convolution; return the records and the agreement.

    Raises:
        RuntimeError: fast and naive disagree by more than 1e-9 (float64), so no
            speedup would mean anything.
    """
    rng = np.random.default_rng(seed)
    C = x_shape[1]
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((filters, C, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    conv_param = {"stride": stride, "pad": pad}
    out, _ = conv_forward_fast(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)

    agree = agreement(x, w, b, conv_param, dout)
    tol = 1e-9 if dtype == "float64" else 1e-3
    if not agree < tol:
        raise RuntimeError(f"fast and naive conv disagree by {agree:.3g} (> {tol:g}).")

    results: dict[str, tuple] = {}
    with blas_limit(blas_threads) as applied:
        results["fast"] = _time_impl(
            conv_forward_fast, conv_backward_fast, x, w, b, conv_param, dout, warmup, repeats
        )
        results["naive"] = _time_impl(
            conv_forward_naive,
            conv_backward_naive,
            x,
            w,
            b,
            conv_param,
            dout,
            naive_warmup,
            naive_repeats,
        )
        if with_torch:
            if importlib.util.find_spec("torch") is not None:
                import torch

                old = torch.get_num_threads()
                torch.set_num_threads(blas_threads or old)
                try:
                    results["torch"] = _time_torch(x, w, b, conv_param, dout, warmup, repeats)
                finally:
                    torch.set_num_threads(old)

    records = []
    for impl, times in results.items():
        n = naive_repeats if impl == "naive" else repeats
        for op, t in zip(
            ("conv_forward", "conv_backward", "conv_forward_backward"), times, strict=True
        ):
            if t is not None:
                records.append(
                    ConvRecord(
                        op, impl, dtype, list(x_shape), list(w.shape), stride, pad, t, n, applied
                    )
                )
    return records, agree


def format_report(records: list[ConvRecord], agree: float) -> str:
    """A table of medians with each implementation's speedup over naive."""
    if not records:
        return "no measurements"
    r0 = records[0]
    naive = {r.op: r.median_s for r in records if r.impl == "naive"}
    rows = [
        (
            r.op,
            r.impl,
            f"{r.median_s * 1e3:.2f}",
            r.repeats,
            f"{naive[r.op] / r.median_s:.1f}x" if r.op in naive else "",
        )
        for r in records
    ]
    return "\n".join(
        [
            f"conv: x {tuple(r0.shape)}, w {tuple(r0.w_shape)}, stride {r0.stride}, pad {r0.pad}, "
            f"{r0.dtype}; BLAS threads: {r0.blas_threads}",
            f"fast vs naive max |difference| over out, dx, dw, db: {agree:.2e}",
            format_table(rows, ("op", "impl", "median ms", "repeats", "vs naive"), "<<>>>"),
            "vs naive: naive's median time / this row's (above 1 means faster). "
            "torch forward runs under no_grad; its backward is timed with the forward.",
        ]
    )
