"""Compiled parallel drivers: a kernel's chunk ranges on numba's own threads (opt-in).

``_runtime.run`` splits a large call's chunks into one contiguous range per thread and,
by default, runs them on the calling thread and Python worker threads
(``kernels._workers``). With ``NORMGRAD_THREADS=numba`` in the environment (and a
thread-safe numba threading layer: OpenMP or TBB) it calls a driver instead, compiled on
first use with ``parallel=True``::

    def _parallel_<kernel>(<the kernel's arguments but c0, c1>, cuts):
        hits = zeros(len(cuts) - 1)
        for t in prange(len(cuts) - 1):         # one range per thread
            hits[t] = flag(<kernel>(<arguments>, cuts[t], cuts[t + 1]))
        return hits.sum()

Each range runs the same serial kernel, so results are the same bits either way. A
driver is generated from the kernel's signature, as source attributed to the kernel's
own module file, so numba caches it on disk next to that module like every kernel (and
a change to the module invalidates it); it costs about 5 s to compile once per dtype.

Why it is not the default (measured on the 2-core development VM, 2026-12-04):

- Alone, it is faster. Layer norm's forward at (4096, 1024) float32 took 1.9 ms
  through the drivers, 3.3 ms through the Python threads (then a ``ThreadPoolExecutor``),
  and 2.1 ms in torch. A plain
  ``out = x * s + b`` took 0.82 against 1.52 ms (1 thread: 1.7 ms).
- The speed comes from OpenMP's workers spinning between regions (libgomp's default,
  milliseconds). With ``GOMP_SPINCOUNT=1000`` in the environment the same forward took
  3.05 ms, and torch's 3.4 ms.
- In a training step that spin takes a core from BLAS. The FC net step on 2 threads went
  from 1.08x to 1.12x torch's throughput to 0.80x to 0.84x: its products took 26 to
  29 ms a step instead of 17 to 22. OpenBLAS's threads are not OpenMP's, so each pool
  spins while the other works.
- numba and torch share one libgomp here (the system's), which reads its settings once,
  when it loads. So normgrad cannot shorten the spin for its own workers after torch is
  imported. ``GOMP_SPINCOUNT=1000`` exported before Python starts gave the FC step
  1.17x, but it also changes torch.

numba's fallback layer, ``workqueue``, aborts the process when two Python threads launch
parallel work at once, so the drivers are never used with it.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import warnings
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload


def _flag(value: Any) -> int:  # pragma: no cover - replaced by its overload when compiled
    """1 when a kernel's return value asks for the reference (true), else 0 (None too)."""
    return 1 if value else 0


@overload(_flag)
def _flag_compiled(value):  # no annotations: numba matches the bare parameter names
    if isinstance(value, types.NoneType):
        return lambda value: 0
    return lambda value: 1 if value else 0


_SOURCE = """
def {name}({params}, cuts):
    n = cuts.shape[0] - 1
    hits = np.zeros(n, np.int64)
    for t in prange(n):
        hits[t] = _flag({kernel}({params}, cuts[t], cuts[t + 1]))
    return hits.sum()
"""

_DRIVERS: dict[Any, Any] = {}
_LOCK = threading.Lock()


def _layer_is_threadsafe() -> bool:
    """A thread-safe layer is what numba would pick: OpenMP or TBB, importable."""
    layer = str(numba.config.THREADING_LAYER).lower()  # type: ignore[attr-defined]
    if layer == "workqueue":
        return False
    candidates = {"default": ("tbb", "omp"), "safe": ("tbb",), "threadsafe": ("tbb", "omp")}
    for name in candidates.get(layer, (layer,)):
        try:
            __import__(f"numba.np.ufunc.{name}pool")
        except ImportError:
            continue
        return True
    return False


def wanted() -> bool:
    """``NORMGRAD_THREADS=numba`` is set and numba has a thread-safe layer. Any value but
    ``numba``, ``pool`` or nothing, and ``numba`` without such a layer, warn (and keep
    the Python worker threads)."""
    choice = os.environ.get("NORMGRAD_THREADS", "").strip().lower()
    if choice in ("", "pool"):
        return False
    if choice != "numba":
        warnings.warn(
            f"NORMGRAD_THREADS={choice!r} is not 'pool' or 'numba'; normgrad uses its "
            "Python worker threads. Set NORMGRAD_THREADS=numba for numba's threads.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    if not _layer_is_threadsafe():
        warnings.warn(
            "NORMGRAD_THREADS=numba needs a thread-safe numba threading layer (OpenMP or "
            "TBB: pip install tbb, or a system libgomp); normgrad uses its Python worker "
            "threads.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


#: Whether ``run`` uses the compiled drivers (see the module docstring).
ENABLED = wanted()


def driver(body: Any) -> Any:
    """The compiled parallel driver of the kernel ``body`` (a numba dispatcher whose last
    two parameters are its chunk range), made once per process."""
    found = _DRIVERS.get(body)
    if found is not None:
        return found
    with _LOCK:
        if body not in _DRIVERS:
            _DRIVERS[body] = _make(body)
        return _DRIVERS[body]


def _make(body: Any) -> Any:
    fn = body.py_func
    params = ", ".join(list(inspect.signature(fn).parameters)[:-2])
    name = f"_parallel_{fn.__name__}"
    kernel = f"_kernel_{fn.__name__}"
    module = sys.modules[fn.__module__]
    scope: dict[str, Any] = {
        "__name__": fn.__module__,
        "np": np,
        "prange": numba.prange,
        "_flag": _flag,
        kernel: body,
    }
    source = _SOURCE.format(name=name, params=params, kernel=kernel)
    exec(compile(source, inspect.getfile(module), "exec"), scope)  # noqa: S102 (our template)
    return numba.njit(parallel=True, cache=True, nogil=True)(scope[name])


def cuts(chunks: int, threads: int) -> np.ndarray:
    """(threads + 1,) int64: thread t runs chunks [cuts[t], cuts[t + 1])."""
    return np.array([chunks * t // threads for t in range(threads + 1)], np.int64)
