"""``kernels._parallel``: the compiled drivers that run a kernel's chunk ranges on numba's
threads (opt-in, ``NORMGRAD_THREADS=numba``) give the Python pool's results bit for bit,
flag the call as the kernel does, and are only used with a thread-safe threading layer."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from normgrad.kernels import _parallel, _runtime, flatrows, rows

pytestmark = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads"
)


def _layer_norm(x, g, b):
    return rows.forward(x, g, b, x.shape[1], 1, 1, 1e-5, True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_drivers_and_pool_give_the_same_bits(two_threads, monkeypatch, dtype) -> None:
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal((300, 1000)) + 5).astype(dtype)  # 2 threads, 18 chunks
    g, b = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    assert _runtime.threads_for(x.size, _runtime.n_chunks(*x.shape)) == 2
    monkeypatch.setattr(_parallel, "ENABLED", True)
    driven = _layer_norm(x, g, b)
    dx_driven = rows.backward(x, x, driven[1], driven[2], g, 1000, 1, 1, True)
    monkeypatch.setattr(_parallel, "ENABLED", False)
    pooled = _layer_norm(x, g, b)
    dx_pooled = rows.backward(x, x, pooled[1], pooled[2], g, 1000, 1, 1, True)
    for a, w in zip((*driven, *dx_driven), (*pooled, *dx_pooled), strict=True):
        assert a.tobytes() == w.tobytes()


def test_a_driver_returns_the_kernels_redo_flag(two_threads, monkeypatch) -> None:
    """A row the plain formulas cannot take (var + eps = 0) flags the call from any
    thread's range: the caller then runs the reference (None here)."""
    monkeypatch.setattr(_parallel, "ENABLED", True)
    x = np.random.default_rng(1).standard_normal((300, 1000))
    assert _layer_norm(x, np.ones(1000), np.zeros(1000)) is not None
    for row in (0, 299):  # in the first thread's range, and in the last one's
        y = x.copy()
        y[row] = 4.0  # a constant row
        assert rows.forward(y, None, None, 1000, 1, 1, 0.0, True) is None


def test_one_driver_per_kernel() -> None:
    assert _parallel.driver(flatrows._forward) is _parallel.driver(flatrows._forward)
    assert _parallel.driver(rows._backward) is not _parallel.driver(flatrows._forward)


@pytest.mark.parametrize(
    "layer, env, expected",
    [
        ("default", "numba", True),
        ("omp", " NUMBA ", True),
        ("default", "", False),  # the default: the Python pool
        ("default", "pool", False),
    ],
)
def test_drivers_are_opt_in(monkeypatch, layer, env, expected):
    if expected:
        pytest.importorskip("numba.np.ufunc.omppool")
    monkeypatch.setattr(numba.config, "THREADING_LAYER", layer)
    monkeypatch.setenv("NORMGRAD_THREADS", env)
    assert _parallel.wanted() is expected


@pytest.mark.parametrize(
    "layer, env, message",
    [
        ("workqueue", "numba", "needs a thread-safe numba threading layer"),
        ("default", "omp", "is not 'pool' or 'numba'"),
    ],
)
def test_a_choice_it_cannot_honour_warns_and_keeps_the_pool(monkeypatch, layer, env, message):
    monkeypatch.setattr(numba.config, "THREADING_LAYER", layer)
    monkeypatch.setenv("NORMGRAD_THREADS", env)
    with pytest.warns(RuntimeWarning, match=message):
        assert _parallel.wanted() is False


@pytest.mark.parametrize("chunks, threads", [(64, 2), (3, 2), (18, 2), (7, 3)])
def test_cuts_cover_every_chunk_once(chunks, threads) -> None:
    c = _parallel.cuts(chunks, threads)
    assert c[0] == 0 and c[-1] == chunks and len(c) == threads + 1
    assert np.all(np.diff(c) >= 1)
