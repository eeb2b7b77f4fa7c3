"""Fused max pooling and ReLU: one pass each way, the reference's results bit for bit.

``max_pool_forward_fused`` is ``ops.fast.max_pool_forward_fast`` (same checks, output and
cache: the winner's flat offset in each window, the first maximum in row-major order, a
NaN winning as in ``np.argmax``) without the copy of every window; ``relu_pool_forward``
pools ``max(x, 0)`` (``np.maximum``'s values, NaN included) without writing it, and
returns the same pool cache the reference would build on the ReLU output::

    out[n, c, i, j] = max over the window at (s i, s j) of v,   v = x (or max(x, 0))
    argmax          = the first offset di * pw + dj where that maximum is

2x2 windows at stride 2 (the course's) take a branch-free forward kernel of their own,
which vectorizes. Backward (one kernel for every pool: dx zeroed, then each winner
set), for pools that do not overlap (stride >= window):
every input receives at most one upstream value, so::

    dx[n, c, s i + di*, s j + dj*] = dout[n, c, i, j]                   (0 elsewhere)
    relu_pool_backward: the same where x > 0 at the winner, else 0

which is ``np.bincount``'s sum 0 + dout and ``relu_backward``'s ``np.where``, exactly.
Overlapping pools (several windows sharing a winner) run the reference scatter. Samples
are split over threads (``_runtime.run``). ``relu_backward_fused`` is
``ops.activations.relu_backward`` in one pass: dx = dout where x > 0, else 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels._runtime import (
    COMPILED,
    empty,
    height,
    inline,
    kernel,
    n_chunks,
    run,
    zero_of,
)
from normgrad.kernels._runtime import relu as relu_of
from normgrad.ops._checks import array_cache
from normgrad.ops.activations import relu_backward
from normgrad.ops.fast import (
    FastPoolCache,
    bad_winners,
    check_winners,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normgrad.ops.windows import pool_geometry


@kernel
def _pool(x, ph, pw, s, relu, out, argmax, h, c0, c1):  # pragma: no cover - compiled
    """Window maxima and their first offsets, for the samples of chunks c0..c1."""
    N, C, H, W = x.shape
    _, _, H_out, W_out = out.shape
    z = zero_of(x)
    for c in range(c0, c1):
        for n in range(c * h, min(N, (c + 1) * h)):
            for ch in range(C):
                plane = x[n, ch]
                o = out[n, ch]
                am = argmax[n, ch]
                for i in range(H_out):
                    for j in range(W_out):
                        best = plane[s * i, s * j]
                        if relu:  # np.maximum(v, 0)
                            best = relu_of(best, z)
                        k = 0
                        for di in range(ph):
                            for dj in range(pw):
                                value = plane[s * i + di, s * j + dj]
                                if relu:
                                    value = relu_of(value, z)
                                if best != best:  # a NaN won already: np.argmax keeps it
                                    break
                                if value > best or value != value:
                                    best = value
                                    k = di * pw + dj
                        o[i, j] = best
                        am[i, j] = k


@kernel
def _scatter(dout, x, argmax, ph, pw, s, relu, dx, h, c0, c1):  # pragma: no cover - compiled
    """dx at each window's winner = dout (0 where relu and x <= 0 there); 0 elsewhere:
    dx's plane zeroed, then each winner set (a select per input, for 2x2 pools, ran 3x
    slower), by flat unsigned indices (no wraparound select). Returns 1 at the first
    winner outside its ph x pw window (a corrupt cache: nothing is stored out of bounds,
    and the caller raises), else 0."""
    N, C, H_out, W_out = dout.shape
    H, W = dx.shape[2], dx.shape[3]
    window = np.uint64(ph * pw)
    z = zero_of(dx)
    for c in range(c0, c1):
        for n in range(c * h, min(N, (c + 1) * h)):
            for ch in range(C):
                d = dx[n, ch].reshape(-1)  # (H * W,)
                for e in range(H * W):
                    d[e] = z
                plane = x[n, ch].reshape(-1)
                for i in range(H_out):
                    g = dout[n, ch, i]
                    am = argmax[n, ch, i]
                    top = s * i * W
                    for j in range(W_out):
                        k = am[j]
                        if np.uint64(k) >= window:  # negative offsets too
                            return 1
                        if pw == 2:  # the course's pools: no integer division per window
                            di, dj = k >> 1, k & 1
                        else:
                            di, dj = k // pw, k % pw
                        q = np.uint64(top + di * W + s * j + dj)
                        if (not relu) or plane[q] > 0:
                            d[q] = g[j]
    return 0


@inline
def best_of_four(v0, v1, v2, v3, relu, z):  # pragma: no cover - compiled
    """(max, its offset 0..3) of a 2x2 window's values in row-major order, branch-free:
    a value wins if it is larger, or NaN while the best is not (``np.argmax``: the first
    NaN), so ties go to the first maximum. ``relu``: of ``_runtime.relu(v, z)``, which is
    ``np.maximum(v, 0)`` (z: 0 in v's dtype)."""
    if relu:
        v0 = relu_of(v0, z)
        v1 = relu_of(v1, z)
        v2 = relu_of(v2, z)
        v3 = relu_of(v3, z)
    best = v0
    k = 0
    take = (v1 > best) | ((v1 != v1) & (best == best))
    best = v1 if take else best
    k = 1 if take else k
    take = (v2 > best) | ((v2 != v2) & (best == best))
    best = v2 if take else best
    k = 2 if take else k
    take = (v3 > best) | ((v3 != v3) & (best == best))
    best = v3 if take else best
    k = 3 if take else k
    return best, k


@kernel
def _pool2(x, relu, out, argmax, h, c0, c1):  # pragma: no cover - compiled
    """``_pool`` for 2x2 windows at stride 2, branch-free (selects, so it vectorizes).

    A value wins if it is larger, or NaN while the best is not (``np.argmax``: the first
    NaN); in row-major order, so ties go to the first maximum."""
    N, C, H, W = x.shape
    _, _, H_out, W_out = out.shape
    z = zero_of(x)
    for c in range(c0, c1):
        for n in range(c * h, min(N, (c + 1) * h)):
            for ch in range(C):
                plane = x[n, ch]
                for i in range(H_out):
                    r0 = plane[2 * i]
                    r1 = plane[2 * i + 1]
                    o = out[n, ch, i]
                    am = argmax[n, ch, i]
                    for j in range(W_out):
                        v0, v1 = r0[2 * j], r0[2 * j + 1]
                        v2, v3 = r1[2 * j], r1[2 * j + 1]
                        o[j], am[j] = best_of_four(v0, v1, v2, v3, relu, z)


@kernel
def _relu_grad(dout, x, dx):  # pragma: no cover - compiled
    """dx = dout where x > 0, else 0, over flat arrays."""
    for k in range(x.shape[0]):
        dx[k] = dout[k] if x[k] > 0 else 0


def _plain(x: np.ndarray) -> bool:
    return x.dtype in COMPILED and x.size > 0 and x.flags.c_contiguous


def _chunks(N: int, C: int, HW: int) -> int:
    return n_chunks(N, C * HW)


def max_pool_forward_fused(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, FastPoolCache]:
    """``max_pool_forward_fast`` in one pass: same arguments, checks, output and cache."""
    return _forward(x, pool_param, False)


def relu_pool_forward(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, FastPoolCache]:
    """Max pooling of ``max(x, 0)``, x: (N, C, H, W): the output and the pool cache that
    ``max_pool_forward_fast(relu_forward(x)[0], pool_param)`` returns, without the ReLU
    output (the cache's x is x itself: only its shape and dtype are read)."""
    v.float_array(x, "x")
    return _forward(x, pool_param, True)


def _forward(x: np.ndarray, pool_param: dict[str, Any], relu: bool) -> tuple[np.ndarray, Any]:
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    if not _plain(x):
        if relu:
            x = np.maximum(x, 0)
        return max_pool_forward_fast(x, pool_param)
    N, C, H, W = x.shape
    out = empty((N, C, H_out, W_out), x.dtype)
    argmax = empty((N, C, H_out, W_out), np.intp)
    chunks = _chunks(N, C, H * W)
    if ph == pw == stride == 2:
        run(_pool2, (x, relu, out, argmax, height(N, chunks)), chunks, x.size)
    else:
        run(_pool, (x, ph, pw, stride, relu, out, argmax, height(N, chunks)), chunks, x.size)
    return out, FastPoolCache(x, pool_param, argmax)


def max_pool_backward_fused(dout: np.ndarray, cache: FastPoolCache) -> np.ndarray:
    """``max_pool_backward_fast`` in one pass: same checks, errors and result."""
    return _backward(dout, cache, False)


def relu_pool_backward(dout: np.ndarray, cache: FastPoolCache) -> np.ndarray:
    """Backward of ``relu_pool_forward``: ``relu_backward(max_pool_backward_fast(dout,
    cache), x)`` in one pass, dout: (N, C, H', W') -> dx: (N, C, H, W)."""
    return _backward(dout, cache, True)


def _backward(dout: np.ndarray, cache: FastPoolCache, relu: bool) -> np.ndarray:
    v.cache_of(cache, FastPoolCache, "max_pool_backward_fast", "max_pool_forward_fast")
    x, pool_param, argmax = cache
    ph, pw, stride, H_out, W_out = pool_geometry(x, pool_param)
    N, C, H, W = x.shape
    v.float_array(dout, "dout")
    v.shape(dout, "dout", (N, C, H_out, W_out), "the shape of the forward output")
    check_winners(argmax, (N, C, H_out, W_out), ph * pw, *_NAMES[relu])
    overlap = stride < ph or stride < pw
    plain_winners = argmax.dtype == np.intp and argmax.flags.c_contiguous
    if overlap or not _plain(x) or dout.dtype != x.dtype or not plain_winners:
        dx = max_pool_backward_fast(dout, cache)
        return relu_backward(dx, x) if relu else dx
    g = dout if dout.flags.c_contiguous else np.ascontiguousarray(dout)
    dx = empty(x.shape, x.dtype)
    chunks = _chunks(N, C, H * W)
    args = (g, x, argmax, ph, pw, stride, relu, dx, height(N, chunks))
    corrupt = run(_scatter, args, chunks, x.size)
    if corrupt:
        raise bad_winners(ph * pw, *_NAMES[relu])
    return dx


#: (backward, forward) as the errors name them, by ``relu``.
_NAMES = {
    False: ("max_pool_backward_fast", "max_pool_forward_fast"),
    True: ("relu_pool_backward", "relu_pool_forward"),
}


def relu_backward_fused(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``relu_backward`` in one pass: dx = dout where x > 0, else 0 (same checks)."""
    x = array_cache(cache, "relu_backward", "relu_forward")
    v.float_array(dout, "dout")
    v.shape(dout, "dout", x.shape, "the shape of the forward input x")
    if not (_plain(x) and dout.dtype == x.dtype and dout.flags.c_contiguous):
        return relu_backward(dout, x)
    dx = empty(dout.shape, dout.dtype)
    _relu_grad(dout.reshape(-1), x.reshape(-1), dx.reshape(-1))
    return dx
