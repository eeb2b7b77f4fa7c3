"""The same bits on every run and for every thread count, for every fused kernel.

Each kernel cuts its work into chunks fixed by the shape (``kernels._runtime``), reduces
each chunk on its own and merges the partials in chunk order, so neither the thread count
(``numba.set_num_threads``) nor the scheduling can change a result. Checked here at
shapes above the thread-pool threshold, where the chunks really are spread over threads.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from normgrad.kernels import _runtime
from normgrad.norms import registry

FUSED = [s.name for s in registry.SPECS if s.fused is not None]
pytestmark = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads"
)


def _with_threads(n: int, fn):
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(previous)


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        assert x.tobytes() == y.tobytes()


def test_big_shapes_really_use_several_threads(fk) -> None:
    for name in FUSED:
        x_shape, _ = fk.case(name).big
        size = int(np.prod(x_shape))
        rows = x_shape[0] if name in ("batchnorm", "batchrenorm") else size // x_shape[-1]
        chunks = _runtime.n_chunks(rows, size // rows)
        assert _with_threads(2, lambda: _runtime.threads_for(size, chunks)) == 2, name  # noqa: B023
        assert _with_threads(1, lambda: _runtime.threads_for(size, chunks)) == 1, name  # noqa: B023


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_same_bits_for_one_and_two_threads(fk, name, dtype) -> None:
    case = fk.case(name)
    x_shape, p_shape = case.big
    inputs, dout = fk.draw(case, x_shape, p_shape, 3, dtype)
    stats = fk.running(case, p_shape, 3, dtype)

    def once():
        out, grads, _ = fk.run_pair(case, "fused", inputs, dout, "train", stats)
        return [out, *grads]

    one = _with_threads(1, once)
    two = _with_threads(2, once)
    again = _with_threads(2, once)
    _same(one, two)
    _same(two, again)


def test_conv_pool_and_rules_kernels_are_thread_count_independent() -> None:
    from normgrad.kernels import conv, pool, rules

    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 3, 32, 32)).astype(np.float32)  # cols: 40 x 75 x 1024
    w = rng.standard_normal((16, 3, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def once():
        out, cache = conv.conv_forward_fused(x, w, b, {"stride": 1, "pad": 2})
        dout = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
        grads = conv.conv_backward_fused(dout, cache)
        pooled, pcache = pool.relu_pool_forward(out, pp)
        dpooled = np.random.default_rng(6).standard_normal(pooled.shape).astype(np.float32)
        dpool = pool.relu_pool_backward(dpooled, pcache)
        flat = out.reshape(-1)
        adam = rules.adam(flat, flat * 0.1, flat * 0.01, flat * flat, 0.9, 0.999, 3, 1e-3, 1e-8)
        return [out, *grads, pooled, dpool, *adam]

    _same(_with_threads(1, once), _with_threads(2, once))
