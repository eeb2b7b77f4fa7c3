"""What the fused-kernel tests share: every fused route, with inputs to call it on.

``ROUTES`` lists, for every registered normalization with a fused route, how to draw
inputs of a given shape and how to call its reference and fused pairs with the same
options. Handed to the tests as the ``fk`` fixture (test modules cannot import each
other under ``--import-mode=importlib``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from normgrad.norms import registry
from normgrad.norms.spec import NormSpec

pytest.importorskip("numba")


@dataclass(frozen=True)
class FusedCase:
    """One normalization's fused route: shapes to try and the options to bind."""

    spec: NormSpec
    shapes: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]  # (x shape, gamma shape)
    big: tuple[tuple[int, ...], tuple[int, ...]]  # above the thread-pool threshold
    options: dict[str, Any] = field(default_factory=dict)
    modes: tuple[str, ...] = ("train",)  # batch-style layers also run "test"

    @property
    def has_beta(self) -> bool:
        return "beta" in self.spec.cases[0].draw(np.random.default_rng(0))


def _case(name: str, **kw: Any) -> FusedCase:
    return FusedCase(registry.by_name(name), **kw)


BATCH_SHAPES = (((2, 1), (1,)), ((3, 7), (7,)), ((31, 17), (17,)), ((257, 3), (3,)))
CASES = [
    _case("batchnorm", shapes=BATCH_SHAPES, big=((1000, 300), (300,)), modes=("train", "test")),
    _case(
        "batchrenorm",
        shapes=BATCH_SHAPES[1:],
        big=((1000, 300), (300,)),
        modes=("train", "test"),
        options={"r_max": 1.5, "d_max": 0.5},
    ),
    _case(
        "spatial_batchnorm",
        shapes=(((2, 3, 1, 1), (3,)), ((2, 3, 4, 5), (3,)), ((1, 2, 7, 3), (2,))),
        big=((16, 8, 48, 48), (8,)),
        modes=("train", "test"),
    ),
    _case(
        "layernorm",
        shapes=(((1, 3), (3,)), ((4, 6), (6,)), ((33, 70), (70,))),
        big=((700, 400), (400,)),
    ),
    _case(
        "layernorm_nd",
        shapes=(((2, 3, 4), (3, 4)), ((5, 2, 2, 3), (2, 3))),
        big=((500, 20, 30), (20, 30)),
        options={"ndim": 2},
    ),
    _case(
        "rmsnorm",
        shapes=(((1, 3), (3,)), ((4, 6), (6,)), ((33, 70), (70,))),
        big=((700, 400), (400,)),
    ),
    _case(
        "groupnorm",
        shapes=(((2, 4, 2, 3), (1, 4, 1, 1)), ((3, 6, 1, 1), (1, 6, 1, 1))),
        big=((12, 32, 28, 28), (1, 32, 1, 1)),
        options={"G": 2},
    ),
    _case(
        "instancenorm",
        shapes=(((2, 3, 2, 3), (3,)), ((2, 3, 5), (3,)), ((1, 1, 1, 3), (1,))),
        big=((12, 32, 28, 28), (32,)),
    ),
]


def draw(case: FusedCase, x_shape, p_shape, seed: int, dtype=np.float64, offset: float = 12.0):
    """x = 5 randn + offset, random gamma (and beta), a random dout; all of ``dtype``."""
    rng = np.random.default_rng(seed)
    inputs = {
        "x": 5.0 * rng.standard_normal(x_shape) + offset,
        "gamma": rng.standard_normal(p_shape),
    }
    if case.has_beta:
        inputs["beta"] = rng.standard_normal(p_shape)
    dout = rng.standard_normal(x_shape)
    return {k: a.astype(dtype) for k, a in inputs.items()}, dout.astype(dtype)


def running(case: FusedCase, p_shape, seed: int, dtype=np.float64) -> dict[str, Any]:
    """Running statistics for a batch-style layer in test mode (and train, to update)."""
    rng = np.random.default_rng(seed + 100)
    C = int(np.prod(p_shape))
    return {
        "running_mean": (12.0 + rng.standard_normal(C)).astype(dtype),
        "running_var": rng.uniform(10.0, 40.0, C).astype(dtype),
    }


def run_pair(case: FusedCase, route: str, inputs, dout, mode: str, stats: dict[str, Any]):
    """(out, grads, param) of the reference ("reference") or fused ("fused") route."""
    spec = case.spec
    r = None if route == "reference" else spec.all_routes()["fused"]
    backward = next(iter(spec.routes.values())).backward if r is None else r.backward
    if spec.name == "batchnorm" and r is None:
        backward = spec.routes["alt"].backward
    options = dict(case.options)
    if spec.param_name == "bn_param":
        options = {**options, "mode": mode, **copy.deepcopy(stats)}
    out, cache = spec.call(r, **options)(*inputs.values())
    grads = [g for g in backward(dout, cache) if g is not None]
    return out, grads, cache


BY_NAME = {c.spec.name: c for c in CASES}


def same_bits_on_one_and_two_threads(once) -> None:
    """``once()`` returns a list of arrays: the same bytes with 1 and 2 numba threads."""
    import numba

    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = once()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = once()
    finally:
        numba.set_num_threads(previous)
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.fixture
def two_threads():
    """This thread's numba thread count set to 2 for the test (needs NUMBA_NUM_THREADS >= 2)."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads")
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(previous)


@pytest.fixture
def fk() -> SimpleNamespace:
    """The shared helpers: ``fk.case(name)``, ``fk.draw``, ``fk.running``, ``fk.run_pair``,
    ``fk.same_bits_on_one_and_two_threads``."""
    return SimpleNamespace(
        case=BY_NAME.__getitem__,
        names=list(BY_NAME),
        draw=draw,
        running=running,
        run_pair=run_pair,
        same_bits_on_one_and_two_threads=same_bits_on_one_and_two_threads,
    )


@pytest.fixture
def loop_calls(monkeypatch) -> list[tuple[bool, bool]]:
    """Every call of flatrows' forward kernel appends its (piped, prefetch) flags here."""
    from normgrad.kernels import flatrows

    seen: list[tuple[bool, bool]] = []
    real = flatrows._forward

    def spy(*args):
        seen.append((bool(args[8]), bool(args[9])))  # (piped, pf)
        return real(*args)

    monkeypatch.setattr(flatrows, "_forward", spy)
    return seen
