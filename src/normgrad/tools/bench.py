"""``normgrad bench``: time batch norm's forward and every backward route.

Each timing is the median of ``repeats`` calls after ``warmup`` untimed calls, with
``time.perf_counter``. PyTorch's native CPU kernels (``aten::native_batch_norm`` and
``aten::native_batch_norm_backward``, the calls ``F.batch_norm`` and its autograd
make, without autograd's bookkeeping) are timed in the same process, on the same
arrays, when torch is installed, with the same thread count as the fused numba kernels
(``normgrad.kernels``, impl ``fused``). Speed claims live here, never in unit tests.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from normgrad._internal.io import atomic_write
from normgrad._internal.tables import format_table
from normgrad.norms import batch

DEFAULT_SHAPES: tuple[tuple[int, int], ...] = ((100, 500), (4096, 1024), (65536, 256))
DEFAULT_DTYPES: tuple[str, ...] = ("float32", "float64")
ROUTES = {name: route.backward for name, route in batch.SPEC.routes.items()}


@dataclass(frozen=True)
class Record:
    """One measurement; the ``--json`` output is a list of these."""

    op: str  # "batchnorm_forward" or "batchnorm_backward"
    impl: str  # "graph", "paper", "alt", "fused", "torch"
    dtype: str
    shape: list[int]  # [N, D]
    median_s: float


def time_call(fn: Callable[[], Any], warmup: int = 2, repeats: int = 7) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """``"4096x1024,100x500"`` -> [(4096, 1024), (100, 500)]."""
    shapes = []
    for part in text.split(","):
        try:
            n, d = (int(s) for s in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"shape {part!r} must look like NxD, e.g. 4096x1024.") from None
        if n < 2 or d < 1:
            raise ValueError(f"shape {part!r} needs N >= 2 and D >= 1.")
        shapes.append((n, d))
    return shapes


def parse_dtypes(text: str) -> list[str]:
    """``"float32,float64"`` -> ["float32", "float64"]."""
    dtypes = [s.strip() for s in text.split(",")]
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise ValueError(f"dtype {d!r} must be float32 or float64.")
    return dtypes


def _torch_records(x, gamma, beta, dout, dtype, shape, warmup, repeats) -> list[Record]:
    import torch

    tx, tg, tb, td = (torch.from_numpy(a) for a in (x, gamma, beta, dout))
    rm, rv = torch.zeros_like(tg), torch.ones_like(tg)
    eps = 1e-5

    def fwd():
        return torch.ops.aten.native_batch_norm(tx, tg, tb, rm, rv, True, 0.1, eps)

    _, save_mean, save_invstd = fwd()

    def bwd():
        return torch.ops.aten.native_batch_norm_backward(
            td, tx, tg, rm, rv, save_mean, save_invstd, True, eps, [True, True, True]
        )

    with torch.no_grad():
        return [
            Record(
                "batchnorm_forward", "torch", dtype, list(shape), time_call(fwd, warmup, repeats)
            ),
            Record(
                "batchnorm_backward", "torch", dtype, list(shape), time_call(bwd, warmup, repeats)
            ),
        ]


def _load_fused(threads: int):
    """The fused kernels module, with numba set to ``threads`` threads; None without numba."""
    try:
        import numba

        from normgrad import kernels
    except ImportError:
        return None
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    return kernels


def _fused_records(kernels, x, gamma, beta, dout, dtype, shape, warmup, repeats) -> list[Record]:
    def fwd():
        return kernels.batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})

    _, cache = fwd()  # also compiles, before any timing
    return [
        Record("batchnorm_forward", "fused", dtype, list(shape), time_call(fwd, warmup, repeats)),
        Record(
            "batchnorm_backward",
            "fused",
            dtype,
            list(shape),
            time_call(lambda: kernels.batchnorm_backward_fused(dout, cache), warmup, repeats),
        ),
    ]


def check_agreement(
    x, gamma, beta, dout, cache, kernels=None, with_torch: bool = True, tol: float | None = None
) -> None:
    """Raise unless every timed implementation gives the same gradients as ``alt``.

    A speedup is only worth reporting between implementations that compute the same
    thing: the graph and paper routes, the fused kernel (when given) and PyTorch (when
    installed) are compared with the closed form before anything is timed. tol is the
    normwise relative error allowed (default 1e-9 in float64, 1e-4 in float32).
    """
    from normgrad.gradcheck.numerical import norm_rel_error

    tol = tol if tol is not None else (1e-9 if x.dtype == np.float64 else 1e-4)
    want = ROUTES["alt"](dout, cache)
    got = {name: route(dout, cache) for name, route in ROUTES.items() if name != "alt"}
    if kernels is not None:
        _, fcache = kernels.batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})
        got["fused"] = kernels.batchnorm_backward_fused(dout, fcache)
    if with_torch:
        import torch
        import torch.nn.functional as F

        tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        F.batch_norm(tx, None, None, tg, tb, training=True, eps=cache.eps).backward(
            torch.from_numpy(dout)
        )
        got["torch"] = tuple(t.grad.numpy() for t in (tx, tg, tb) if t.grad is not None)
    for name, grads in got.items():
        for label, a, b in zip(("dx", "dgamma", "dbeta"), grads, want, strict=True):
            err = norm_rel_error(a, b)
            if not err < tol:
                raise RuntimeError(
                    f"{name} disagrees with alt on {label} at {x.shape} {x.dtype}: normwise "
                    f"relative error {err:.2e} > {tol:g}; refusing to time it."
                )


def run(
    shapes: Sequence[tuple[int, int]] = DEFAULT_SHAPES,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    warmup: int = 2,
    repeats: int = 7,
    with_torch: bool = True,
    threads: int = 1,
    seed: int = 0,
    with_fused: bool = True,
) -> list[Record]:
    """Time every implementation at every (shape, dtype); return the records."""
    torch_ok = False
    if with_torch:
        try:
            import torch

            torch.set_num_threads(threads)
            torch_ok = True
        except ImportError:
            pass
    fused = _load_fused(threads) if with_fused else None
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    for shape in shapes:
        for dtype in dtypes:
            N, D = shape
            x = (5.0 * rng.standard_normal(shape) + 12.0).astype(dtype)
            gamma = rng.standard_normal(D).astype(dtype)
            beta = rng.standard_normal(D).astype(dtype)
            dout = rng.standard_normal(shape).astype(dtype)

            def fwd(x=x, gamma=gamma, beta=beta):
                return batch.batchnorm_forward(x, gamma, beta, {"mode": "train"})

            t_fwd = time_call(fwd, warmup, repeats)
            # One forward pass serves all three reference routes; record it under each.
            records += [Record("batchnorm_forward", r, dtype, list(shape), t_fwd) for r in ROUTES]
            _, cache = fwd()
            check_agreement(x, gamma, beta, dout, cache, fused, torch_ok)
            for name, route in ROUTES.items():
                t = time_call(functools.partial(route, dout, cache), warmup, repeats)
                records.append(Record("batchnorm_backward", name, dtype, list(shape), t))
            if fused is not None:
                records += _fused_records(
                    fused, x, gamma, beta, dout, dtype, shape, warmup, repeats
                )
            if torch_ok:
                records += _torch_records(x, gamma, beta, dout, dtype, shape, warmup, repeats)
    return records


def format_report(records: Sequence[Record]) -> str:
    """A table of medians, with each implementation's speedup over graph and torch."""
    by_key = {(r.op, r.impl, r.dtype, tuple(r.shape)): r.median_s for r in records}
    rows = []
    for r in records:
        key = (r.dtype, tuple(r.shape))
        op = "forward" if r.op == "batchnorm_forward" else "backward"
        if op == "forward" and r.impl in ("paper", "alt"):
            continue  # the same measurement as graph's
        graph = by_key.get((r.op, "graph", *key))
        torch_t = by_key.get((r.op, "torch", *key))
        vs_graph = f"{graph / r.median_s:.2f}x" if graph and op == "backward" else ""
        vs_torch = f"{torch_t / r.median_s:.2f}x" if torch_t else ""
        impl = "ours" if op == "forward" and r.impl == "graph" else r.impl
        shape = "x".join(map(str, r.shape))
        rows.append((op, shape, r.dtype, impl, f"{r.median_s * 1e3:.3f}", vs_graph, vs_torch))
    table = format_table(
        rows, ("op", "shape", "dtype", "impl", "median ms", "vs graph", "vs torch"), "<><<>>>"
    )
    return table + "\nvs X: X's median time / this row's (above 1 means this row is faster)."


def write_json(records: Sequence[Any], path: str | Path) -> None:
    """Write the records (``Record`` or ``ConvRecord`` dataclasses) as a JSON list, atomically."""
    text = json.dumps([asdict(r) for r in records], indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
