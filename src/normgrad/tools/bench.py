"""``normgrad bench``: time every normalization's forward and backward, against PyTorch.

Each timing is ``tools.timing.time_call``'s: the median of ``repeats`` samples after a
warm-up, with ``time.perf_counter``; the implementations take turns
(``timing.alternate``, ``rounds`` of them, each after ``settle`` seconds idle).
Everything runs in one process, on the same arrays, with the same thread count for
PyTorch (``torch.set_num_threads``) and the fused numba kernels
(``numba.set_num_threads``). Speed claims live here, never in unit tests.

- ``--op batchnorm`` (the default, ``run``): batch norm's three reference routes, the
  fused kernel (impl ``fused``) and PyTorch's native CPU kernels
  (``aten::native_batch_norm`` and ``_backward``, what ``F.batch_norm`` and its autograd
  call, without autograd's bookkeeping), checked to agree before anything is timed.
- ``--op NAME`` for any other registered normalization (``run_norm``): the reference
  route, the fused route and the spec's PyTorch oracle (``F.layer_norm``,
  ``F.rms_norm``, ``F.group_norm``, ``F.instance_norm``, ``F.batch_norm`` on 4-D input;
  batch renorm, which PyTorch lacks, as torch ops), PyTorch's forward under
  ``torch.no_grad`` and its backward as ``torch.autograd.grad`` of a recorded graph.

Every run also times a copy of an array of x's size (op ``copy``, ``np.copyto``), the
machine's copy bandwidth in that run, so the report gives each row its achieved GB/s
and its ratio to the two-pass memory floor: a two-pass forward reads x twice and
writes out once (3 arrays of x's size), a two-pass backward reads dout and x twice and
writes dx once (5), and the floor is those bytes at the copy's bandwidth.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad._internal.io import atomic_write
from normgrad._internal.tables import format_table
from normgrad.norms import batch, registry
from normgrad.tools.timing import SETTLE_S, alternate, time_call

DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((100, 500), (4096, 1024), (65536, 256))
DEFAULT_DTYPES: tuple[str, ...] = ("float32", "float64")
ROUTES = {name: route.backward for name, route in batch.SPEC.routes.items()}
#: The "Done when" grid: transformer-like (N, D) and conv-like (N, C, H, W) shapes.
ROW_SHAPES: tuple[tuple[int, ...], ...] = ((16384, 768), (4096, 1024))
MAP_SHAPES: tuple[tuple[int, ...], ...] = ((64, 64, 56, 56), (256, 256, 14, 14))
#: Arrays of x's size a two-pass pass moves: forward (read x twice, write out), backward.
PASSES = {"forward": 3, "backward": 5, "copy": 2}


@dataclass(frozen=True)
class Record:
    """One measurement; the ``--json`` output is a list of these."""

    op: str  # "<norm>_forward", "<norm>_backward", or "copy" (the bandwidth probe)
    impl: str  # "graph", "paper", "alt", "reference", "fused", "torch", "numpy" (copy)
    dtype: str
    shape: list[int]  # x's shape
    median_s: float


def ops() -> list[str]:
    """Every registered normalization ``--op`` accepts, batch norm first."""
    return [s.name for s in registry.SPECS]


def default_shapes(name: str) -> tuple[tuple[int, ...], ...]:
    """Batch norm's classic shapes; the grid's (N, D) or (N, C, H, W) for the others."""
    if name == "batchnorm":
        return DEFAULT_SHAPES
    return MAP_SHAPES if registry.by_name(name).bench.maps else ROW_SHAPES


def _setup(threads: int, with_torch: bool, with_fused: bool) -> tuple[bool, Any]:
    """Set both libraries' threads; return (torch available, the fused kernels or None)."""
    torch_ok = False
    if with_torch:
        try:
            import torch

            torch.set_num_threads(threads)
            torch_ok = True
        except ImportError:
            pass
    return torch_ok, (_load_fused(threads) if with_fused else None)


def _load_fused(threads: int) -> Any:
    """The fused kernels module, with numba set to ``threads`` threads; None without numba."""
    try:
        import numba

        from normgrad.kernels import batchnorm as kernels
    except ImportError:
        return None
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    return kernels


def _copy_record(x: np.ndarray, dtype: str, warmup: int, repeats: int) -> Record:
    dst = np.empty_like(x)
    t = time_call(lambda: np.copyto(dst, x), warmup, repeats)
    return Record("copy", "numpy", dtype, list(x.shape), t)


# ---- batch norm: every route ------------------------------------------------------------


def _torch_records(x, gamma, beta, dout, dtype, shape, warmup, repeats) -> list[Record]:
    import torch

    tx, tg, tb, td = (torch.from_numpy(a) for a in (x, gamma, beta, dout))
    rm, rv = torch.zeros_like(tg), torch.ones_like(tg)

    def fwd():
        return torch.ops.aten.native_batch_norm(tx, tg, tb, rm, rv, True, 0.1, 1e-5)

    _, save_mean, save_invstd = fwd()

    def bwd():
        return torch.ops.aten.native_batch_norm_backward(
            td, tx, tg, rm, rv, save_mean, save_invstd, True, 1e-5, [True, True, True]
        )

    with torch.no_grad():
        t_f, t_b = time_call(fwd, warmup, repeats), time_call(bwd, warmup, repeats)
    return [Record(f"batchnorm_{op}", "torch", dtype, list(shape), t) for op, t in _fb(t_f, t_b)]


def _fb(t_f: float, t_b: float) -> list[tuple[str, float]]:
    return [("forward", t_f), ("backward", t_b)]


def _fused_records(kernels, x, gamma, beta, dout, dtype, shape, warmup, repeats) -> list[Record]:
    def fwd():
        return kernels.batchnorm_forward_fused(x, gamma, beta, {"mode": "train"})

    _, cache = fwd()  # also compiles, before any timing
    t_b = time_call(lambda: kernels.batchnorm_backward_fused(dout, cache), warmup, repeats)
    t_f = time_call(fwd, warmup, repeats)
    return [Record(f"batchnorm_{op}", "fused", dtype, list(shape), t) for op, t in _fb(t_f, t_b)]


def check_agreement(
    x, gamma, beta, dout, cache, kernels=None, with_torch: bool = True, tol: float | None = None
) -> None:
    """Raise unless every timed implementation gives the same gradients as ``alt``.

    A speedup between implementations that disagree would not mean anything: the graph
    and paper routes, the fused kernel (when given) and PyTorch (when installed) are
    compared with the closed form before anything is timed. tol is the normwise relative
    error allowed (default 1e-9 in float64, 1e-4 in float32).
    """

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
    _agree(got, want, tol, "alt", x)


def _agree(got: dict[str, Any], want: Sequence[np.ndarray], tol: float, base: str, x) -> None:
    from normgrad.gradcheck.numerical import norm_rel_error

    for name, grads in got.items():
        for label, a, b in zip(("dx", "dgamma", "dbeta"), grads, want, strict=False):
            err = norm_rel_error(np.asarray(a), np.asarray(b))
            if not err < tol:
                raise RuntimeError(
                    f"{name} disagrees with {base} on {label} at {x.shape} {x.dtype}: normwise "
                    f"relative error {err:.2e} > {tol:g}; refusing to time it."
                )


def run(
    shapes: Sequence[tuple[int, ...]] = DEFAULT_SHAPES,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    warmup: int = 2,
    repeats: int = 7,
    with_torch: bool = True,
    threads: int = 1,
    seed: int = 0,
    with_fused: bool = True,
    settle: float = SETTLE_S,
    rounds: int = 1,
) -> list[Record]:
    """Time batch norm's every implementation at every (shape, dtype); return the records.

    The reference routes, the fused kernel and PyTorch are each a side of
    ``timing.alternate``: ``rounds`` turns, each after ``settle`` seconds idle, and each
    record the median of its side's rounds.
    """
    rounds = _rounds(rounds)
    torch_ok, fused = _setup(threads, with_torch, with_fused)
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

            _, cache = fwd()
            check_agreement(x, gamma, beta, dout, cache, fused, torch_ok)

            def reference(fwd=fwd, cache=cache, dtype=dtype, shape=shape, dout=dout):
                t_fwd = time_call(fwd, warmup, repeats)
                # One forward pass serves all three reference routes: one record each.
                out = [Record("batchnorm_forward", r, dtype, list(shape), t_fwd) for r in ROUTES]
                for name, route in ROUTES.items():
                    t = time_call(functools.partial(route, dout, cache), warmup, repeats)
                    out.append(Record("batchnorm_backward", name, dtype, list(shape), t))
                return out

            args = (x, gamma, beta, dout, dtype, shape, warmup, repeats)
            sides: dict[str, Callable[[], list[Record]]] = {"reference": reference}
            if fused is not None:
                sides["fused"] = functools.partial(_fused_records, fused, *args)
            if torch_ok:
                sides["torch"] = functools.partial(_torch_records, *args)
            for runs in alternate(sides, rounds, settle).values():
                records += _median_records(runs)
            records.append(_copy_record(x, dtype, warmup, repeats))
    return records


def _rounds(rounds: Any) -> int:
    return v.integer(rounds, "rounds", example=3, low=1)


def _median_records(runs: list[list[Record]]) -> list[Record]:
    """One side's records, each the median of its rounds (every round: the same records,
    in the same order)."""
    by_record = zip(*runs, strict=True)
    return [replace(rs[0], median_s=median(r.median_s for r in rs)) for rs in by_record]


# ---- any normalization: reference, fused and PyTorch ---------------------------------------


def _inputs(spec: Any, shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> Any:
    """x = 5 randn + 12, gamma and beta of the layer's parameter shape, and dout."""
    x = (5.0 * rng.standard_normal(shape) + 12.0).astype(dtype)
    p_shape = spec.bench.param_shape(shape)  # gamma's shape for this x
    inputs = {"x": x, "gamma": (1.0 + 0.1 * rng.standard_normal(p_shape)).astype(dtype)}
    if "beta" in spec.cases[0].draw(np.random.default_rng(0)):
        inputs["beta"] = (0.1 * rng.standard_normal(p_shape)).astype(dtype)
    return inputs, rng.standard_normal(shape).astype(dtype)


def _ours(spec: Any, route: Any, inputs, dout, options, warmup: int, repeats: int):
    """(forward s, backward s, grads) of one of our routes."""
    fwd = spec.call(route, **options)
    backward = (route or next(iter(spec.routes.values()))).backward
    if route is None and "alt" in spec.routes:
        backward = spec.routes["alt"].backward
    args = tuple(inputs.values())
    _, cache = fwd(*args)
    grads = backward(dout, cache)
    t_f = time_call(lambda: fwd(*args), warmup, repeats)
    t_b = time_call(lambda: backward(dout, cache), warmup, repeats)
    return t_f, t_b, [g for g in grads if g is not None]


def _torch_norm(spec: Any, inputs, dout, options, warmup: int, repeats: int):
    """(forward s, backward s, grads) of the spec's PyTorch oracle."""
    import torch

    plain = {k: torch.from_numpy(a) for k, a in inputs.items()}
    with torch.no_grad():
        t_f = time_call(lambda: spec.torch(torch, plain, **options), warmup, repeats)
    leaves = {k: torch.from_numpy(a.copy()).requires_grad_(True) for k, a in inputs.items()}
    out = spec.torch(torch, leaves, **options)
    td = torch.from_numpy(dout)
    leaf_list = list(leaves.values())

    def bwd():
        return torch.autograd.grad(out, leaf_list, td, retain_graph=True)

    grads = [g.numpy() for g in bwd()]
    return t_f, time_call(bwd, warmup, repeats), grads


def run_norm(
    name: str,
    shapes: Sequence[tuple[int, ...]] | None = None,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    warmup: int = 2,
    repeats: int = 7,
    with_torch: bool = True,
    threads: int = 1,
    seed: int = 0,
    with_reference: bool = True,
    with_fused: bool = True,
    settle: float = SETTLE_S,
    rounds: int = 1,
) -> list[Record]:
    """Time one normalization's reference and fused routes and PyTorch; return the records.

    The fused route and PyTorch are checked against the reference (or each other,
    without it) before their timings are kept (``RuntimeError`` otherwise). Each side's
    block (forward, then backward) is a side of ``timing.alternate``: ``rounds`` turns,
    each after ``settle`` seconds idle, and each record the median of its side's rounds.
    """
    rounds = _rounds(rounds)
    spec = registry.by_name(name)
    torch_ok, kernels = _setup(threads, with_torch and spec.torch is not None, with_fused)
    fused = spec.all_routes().get("fused") if kernels is not None else None
    options = {**spec.bench.options, "eps": 1e-5}
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    for shape in shapes or default_shapes(name):
        for dtype in dtypes:
            inputs, dout = _inputs(spec, tuple(shape), dtype, rng)
            sides: dict[str, Callable[[], tuple[float, float, list[np.ndarray]]]] = {}
            if with_reference:
                sides["reference"] = functools.partial(
                    _ours, spec, None, inputs, dout, options, warmup, repeats
                )
            if fused is not None:
                sides["fused"] = functools.partial(
                    _ours, spec, fused, inputs, dout, options, warmup, repeats
                )
            if torch_ok:
                sides["torch"] = functools.partial(
                    _torch_norm, spec, inputs, dout, options, warmup, repeats
                )
            runs = alternate(sides, rounds, settle)
            base = next(iter(runs), None)
            if base is not None:
                tol = 1e-9 if dtype == "float64" else 1e-4
                others = {k: r[0][2] for k, r in runs.items() if k != base}
                _agree(others, runs[base][0][2], tol, base, inputs["x"])
            for impl, rs in runs.items():
                t_f, t_b = median(r[0] for r in rs), median(r[1] for r in rs)
                records += [
                    Record(f"{name}_{op}", impl, dtype, list(shape), t) for op, t in _fb(t_f, t_b)
                ]
            records.append(_copy_record(inputs["x"], dtype, warmup, repeats))
    return records


# ---- reports ---------------------------------------------------------------------------------


def bandwidth(r: Record, copy_s: float | None) -> tuple[float, float | None]:
    """(achieved GB/s of the two-pass byte count, median / the two-pass floor time).

    ``copy_s``: the median time of copying an array of x's size (2 arrays moved) in the
    same run; None gives no floor ratio.
    """
    direction = "copy" if r.op == "copy" else r.op.rsplit("_", 1)[-1]
    array_bytes = int(np.prod(r.shape)) * np.dtype(r.dtype).itemsize
    nbytes = PASSES[direction] * array_bytes
    if not copy_s:
        return nbytes / r.median_s / 1e9, None
    floor_s = nbytes * copy_s / (PASSES["copy"] * array_bytes)
    return nbytes / r.median_s / 1e9, r.median_s / floor_s


def format_report(records: Sequence[Record]) -> str:
    """A table of medians, GB/s and x floor, with each row's speedup over graph and torch."""
    by_key = {(r.op, r.impl, r.dtype, tuple(r.shape)): r.median_s for r in records}
    rows = []
    for r in records:
        if r.op == "copy":
            continue
        key = (r.dtype, tuple(r.shape))
        op = r.op.rsplit("_", 1)[-1]
        if r.op == "batchnorm_forward" and r.impl in ("paper", "alt"):
            continue  # the same measurement as graph's
        graph = by_key.get((r.op, "graph", *key))
        torch_t = by_key.get((r.op, "torch", *key))
        vs_graph = f"{graph / r.median_s:.2f}x" if graph and op == "backward" else ""
        vs_torch = f"{torch_t / r.median_s:.2f}x" if torch_t else ""
        impl = "ours" if op == "forward" and r.impl == "graph" else r.impl
        gbps, floor = bandwidth(r, by_key.get(("copy", "numpy", *key)))
        norm, shape = r.op.rsplit("_", 1)[0], "x".join(map(str, r.shape))
        cells = (f"{r.median_s * 1e3:.3f}", f"{gbps:.1f}", "" if floor is None else f"{floor:.2f}")
        rows.append((norm, op, shape, r.dtype, impl, *cells, vs_graph, vs_torch))
    header = ("norm", "op", "shape", "dtype", "impl", "median ms", "GB/s", "x floor")
    table = format_table(rows, (*header, "vs graph", "vs torch"), "<<><<>>>>>")
    return table + (
        "\nvs X: X's median time / this row's (above 1 means this row is faster). GB/s: a "
        "two-pass pass's bytes (3 arrays of x's size forward, 5 backward) / median; x floor: "
        "median / those bytes at this run's copy bandwidth (np.copyto of x)."
    )


def write_json(records: Sequence[Any], path: str | Path) -> None:
    """Write the records (``Record`` or ``ConvRecord`` dataclasses) as a JSON list, atomically."""
    text = json.dumps([asdict(r) for r in records], indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
