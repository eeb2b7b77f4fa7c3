"""What every fused kernel shares: how it is compiled, chunked and spread over threads.

Compilation. Every kernel is a serial numba function, ``njit(cache=True, nogil=True,
error_model="numpy")``,
compiled on its first call for the signature it meets (float32 or float64, C-contiguous),
and cached on disk next to its module (``__pycache__``), so a second process loads it
instead of compiling. Reductions along a contiguous axis are separate small functions
compiled with ``fastmath={"reassoc"}`` only (``REDUCE``): LLVM may then vectorize the sum
(fixed lane order, so the result is still the same on every run), but keeps NaN and inf
semantics and never contracts or distributes the element-wise arithmetic.

Determinism. Work is cut into a fixed number of chunks that depends on the problem's
shape only, never on the thread count (``n_chunks``). Each chunk is reduced on its own,
serially, into a row of partial results, and the partials are merged in chunk order. So
the bits are the same on every run and for every ``numba.set_num_threads`` setting.

Threads. ``run`` calls a kernel once over all chunks when the problem is small (below
``PARALLEL_MIN`` elements: no thread is woken), and otherwise hands contiguous ranges of
chunks to ``numba.get_num_threads()`` threads: the calling one and persistent worker threads
(``kernels._workers``: a lock handoff each way), each running the GIL-free compiled code; or, with
``NORMGRAD_THREADS=numba``, numba's own threads through a compiled driver per kernel
(``kernels._parallel``, which says why that is not the default).

Memory. A fresh multi-megabyte array costs a page fault per 4 KiB on its first write
(the allocator hands big blocks back to the system when they are freed), which for an
im2col matrix or an Adam step is as long as the kernel itself. ``empty`` keeps a few
big byte buffers of each shape (least recently used shapes make room when the pool is
full) and hands out a fresh view of one once nothing but this pool refers to it
(CPython's reference count is exact, and every view refers to its buffer: an array a
cache, a caller or a view still holds is never reused). Each view starts half a page
away from the input it is made for, so that a kernel's stores never look to the CPU as
if they alias its next loads. Results are fresh, unaliased arrays as before; only their
pages are reused.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad.kernels import _parallel, _workers
from normgrad.norms.core import plain_range

try:
    import numba
    from numba import njit
except ImportError as exc:  # pragma: no cover - exercised only without the `fast` extra
    raise ImportError("normgrad.kernels needs numba: pip install 'normgrad[fast]'") from exc

#: The dtypes the kernels are compiled for (native byte order). Any other dtype
#: (float16, longdouble, big-endian) takes the reference route, with the same results.
COMPILED = (np.dtype(np.float32), np.dtype(np.float64))
F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)
#: var + eps in [LO, HI] (float64): where the plain formulas, the backward's ~1/var
#: coefficients included, are exact to rounding (``core.plain_range``). Outside it the
#: fused routes hand the call to the reference, which rescales.
LO, HI = plain_range(F64)
#: Problems with fewer elements than this run on the calling thread alone.
PARALLEL_MIN = 1 << 18
#: Chunks per call are at most this many, and hold at least ``CHUNK_MIN`` elements.
MAX_CHUNKS = 64
CHUNK_MIN = 1 << 14


def kernel(fn: Callable[..., Any]) -> Any:
    """A serial, GIL-free kernel compiled on first use and cached on disk.

    NumPy's error model: a division by zero gives inf or NaN instead of raising, so that
    loops with divisions vectorize (no branch per element).
    """
    return njit(cache=True, nogil=True, error_model="numpy")(fn)


def inline(fn: Callable[..., Any]) -> Any:
    """A small element-wise helper, inlined into each kernel that calls it (no call per
    row); it is compiled with, and only ever runs inside, its callers."""
    return njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn)


def reduction(fn: Callable[..., Any]) -> Any:
    """A reduction kernel: ``kernel`` with reassociation allowed, so that it vectorizes."""
    return njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})(fn)


@inline
def nonfinite(v):  # pragma: no cover - compiled
    """True for inf and NaN: v - v is 0 for every finite v. A kernel ORs it into a flag
    (``bad |= nonfinite(v)``): an integer reduction, which vectorizes as written, where
    a float sum of v * 0 is a serial chain of additions."""
    return (v - v) != 0


@inline
def zero_of(a):  # pragma: no cover - compiled
    """0 in a's dtype (``v - v`` is not one: it is NaN for an infinite v)."""
    return np.zeros(1, dtype=a.dtype)[0]


@inline
def relu(v, z):  # pragma: no cover - compiled
    """``np.maximum(v, 0)`` exactly, z a 0 of v's dtype (``zero_of``): NaN stays NaN, and
    every other v that is not above 0 (-inf and -0.0 included) gives +0.0."""
    return v if (v > 0) | (v != v) else z


def compiled(*arrays: np.ndarray) -> bool:
    """True when every array has a dtype the kernels are compiled for."""
    return all(a.dtype in COMPILED for a in arrays)


def n_chunks(rows: int, row_size: int) -> int:
    """How many chunks ``rows`` rows of ``row_size`` elements are cut into.

    A function of the shape alone: at least 1, at most ``MAX_CHUNKS`` and ``rows``,
    and about ``CHUNK_MIN`` elements or more per chunk.
    """
    return int(max(1, min(MAX_CHUNKS, rows, rows * max(row_size, 1) // CHUNK_MIN)))


def height(rows: int, chunks: int) -> int:
    """Rows per chunk: chunk c holds rows [c * height, min(rows, (c + 1) * height))."""
    return -(-rows // chunks)


def threads_for(size: int, chunks: int) -> int:
    """Threads a call of ``size`` elements cut into ``chunks`` chunks runs on."""
    if size < PARALLEL_MIN or chunks < 2:
        return 1
    return max(1, min(numba.get_num_threads(), chunks))


def run(body: Any, args: tuple[Any, ...], chunks: int, size: int) -> bool:
    """``body(*args, c0, c1)`` over chunks [0, chunks), spread over threads when large.

    ``body`` processes chunks c0 <= c < c1, each on its own (results never depend on
    which thread ran a chunk, or on how the range was split). Returns True when some
    call of ``body`` returned a true value (a kernel's "redo this call by the reference"
    flag; kernels without one return None).
    """
    threads = threads_for(size, chunks)
    if threads == 1:
        return bool(body(*args, 0, chunks))
    cuts = _parallel.cuts(chunks, threads)
    if _parallel.ENABLED:  # NORMGRAD_THREADS=numba: see kernels._parallel
        return bool(_parallel.driver(body)(*args, cuts))
    hit = _workers.dispatch(body, args, cuts.tolist())
    if hit is None:  # another thread's call has the workers: this one runs here, whole
        return bool(body(*args, 0, chunks))
    return hit


def map_rows(
    body: Any, x: np.ndarray, before: tuple[Any, ...], after: tuple[Any, ...] = ()
) -> np.ndarray:
    """A new array like x: (R, L), written by ``body(*before, out, *after, h, c0, c1)``
    over x's row chunks (``n_chunks``): the shape of every element-wise pass."""
    R, L = x.shape
    chunks = n_chunks(R, L)
    out = empty_like(x)
    run(body, (*before, out, *after, height(R, chunks)), chunks, x.size)
    return out


#: Arrays this large or larger come from the pool: at most ``_POOL_KEEP`` per shape (an
#: Adam step holds the old weights and both moments while it makes the new ones), and
#: ``_POOL_MAX_BYTES`` in all.
_POOL_MIN_BYTES = 1 << 20
_POOL_KEEP = 8
_POOL_MAX_BYTES = 1 << 30
#: Per (shape, dtype), least recently asked for first: when the pool is full, the free
#: arrays of the shapes asked for longest ago make room (a long run that moves on to
#: new shapes keeps pooling them, instead of page-faulting on every call).
_FREE: OrderedDict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = OrderedDict()
_FREE_LOCK = threading.Lock()
_KEPT_BYTES = [0]


def _free_refs() -> int:
    """What ``sys.getrefcount`` says, in ``empty``'s loop, of an array only the pool holds.

    Measured the same way ``empty`` looks (a list, a loop name, the call's argument)
    rather than assumed: interpreters differ in which local loads they count (3 on
    CPython 3.11; 3.14 can borrow the loop's reference).
    """
    kept = [np.empty(1)]
    for a in kept:
        return sys.getrefcount(a)
    raise AssertionError("unreachable")  # pragma: no cover


_FREE_REFS = _free_refs()


#: Bytes per cache line (also the prefetch's step: ``kernels._prefetch``).
CACHE_LINE = 64
#: Bytes of slack in each pooled buffer, so that the array handed out can start at any
#: cache line of a page (see ``empty``).
_PAGE = 4096
_SHIFT = _PAGE // 2


def empty(shape: tuple[int, ...], dtype: Any, avoid: np.ndarray | None = None) -> np.ndarray:
    """``np.empty(shape, dtype)``, from the pool of big arrays when one is free.

    A big result starts half a page (2 KiB, mod 4 KiB) away from ``avoid`` (the input a
    kernel reads while it writes the result): with both at the same offset in their
    pages, every store in a loop like ``out[k] = f(x[k])`` looks to the CPU as if it
    might alias the next loads (4K aliasing), which made rows of 1024 float32 values
    run at 2.5 times the time of rows of 768. The pool holds the owning byte buffers;
    each call hands out a fresh view of one, and a buffer is free when nothing else
    refers to it (every view refers to its buffer).
    """
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _POOL_MIN_BYTES:
        return np.empty(shape, dtype)
    shape = tuple(int(s) for s in shape)
    key = (shape, dtype)
    with _FREE_LOCK:
        kept = _FREE.setdefault(key, [])
        _FREE.move_to_end(key)
        buf = None
        for a in kept:
            if sys.getrefcount(a) == _FREE_REFS:  # held by nothing but this pool
                buf = a
                break
        if buf is None:
            buf = np.empty(nbytes + _PAGE, np.uint8)
            if len(kept) < _POOL_KEEP:
                if _KEPT_BYTES[0] + buf.nbytes > _POOL_MAX_BYTES:
                    _evict(buf.nbytes, key)
                if _KEPT_BYTES[0] + buf.nbytes <= _POOL_MAX_BYTES:
                    kept.append(buf)
                    _KEPT_BYTES[0] += buf.nbytes
        start = buf.ctypes.data
        target = _SHIFT if avoid is None else avoid.ctypes.data + _SHIFT
        # the address in the page we want, rounded down to a cache line
        offset = (target % _PAGE // CACHE_LINE * CACHE_LINE - start) % _PAGE
        view: np.ndarray = buf[offset : offset + nbytes].view(dtype).reshape(shape)
        return view


def _evict(need: int, current: tuple[tuple[int, ...], np.dtype]) -> None:
    """Drop free arrays, least recently used shapes first, until ``need`` more bytes fit.

    Arrays someone still holds stay (they are free later); the caller holds the lock.
    """
    for key in list(_FREE):
        if _KEPT_BYTES[0] + need <= _POOL_MAX_BYTES:
            return
        if key == current:
            continue
        survivors = []
        for a in _FREE[key]:
            if _KEPT_BYTES[0] + need > _POOL_MAX_BYTES and sys.getrefcount(a) == _FREE_REFS:
                _KEPT_BYTES[0] -= a.nbytes
            else:
                survivors.append(a)
        if survivors:
            _FREE[key] = survivors
        else:
            del _FREE[key]


def empty_like(a: np.ndarray) -> np.ndarray:
    """``empty(a.shape, a.dtype, avoid=a)``: C-contiguous, like ``np.empty_like`` of a C
    array, and never at ``a``'s offset in a page."""
    return empty(a.shape, a.dtype, avoid=a)


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array (no copy when it already is one)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def contiguous_as(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` as a C-contiguous array of ``dtype`` (no copy when it already is one)."""
    if a.dtype == dtype and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=dtype)


def as64(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous float64 array (no copy when it already is one)."""
    return contiguous_as(a, F64)
