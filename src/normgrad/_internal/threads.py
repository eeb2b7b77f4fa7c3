"""BLAS thread limits: one helper for the benchmarks, the experiments and ``normgrad train``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

#: OpenBLAS's own default is 28: its threads busy-wait 2**28 cycles (about 0.1 s) after
#: every matrix product, taking a core from whatever runs next (a fused kernel's
#: threads, or another library's pool). 2**20 cycles (about 0.3 ms) still bridges the
#: gaps inside a batched product (the conv's 50 small ones), which 4 (sleep at once)
#: made wake the pool 50 times: on 2 cores the ConvNet's forward product took 3.9 ms
#: with 20, 7.9 ms with 4, 6.4 ms with the default; an Adam step right after a product
#: 4.0 ms with 20 and with 4, 9.1 ms with the default.
OPENBLAS_SPIN = "20"


def quiet_blas_spin() -> bool:
    """Ask OpenBLAS not to busy-wait after each product; True if the request can apply.

    Sets ``OPENBLAS_THREAD_TIMEOUT`` (unless the environment already sets it), which
    OpenBLAS reads once, when NumPy loads it: so it applies only if NumPy is not imported
    yet, and the ``normgrad`` command calls this first thing (``OPENBLAS_SPIN`` says
    why this value).
    """
    if "numpy" in sys.modules:
        return False
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_SPIN)
    return True


@contextlib.contextmanager
def blas_limit(threads: int | None = 1) -> Iterator[str]:
    """Limit BLAS to ``threads`` threads while inside; yield what was applied.

    The experiments and the digits runs of ``normgrad train`` use one thread: their
    matrix products (batches of 5 to 100 rows, at most 3072 x 100) run up to 10x slower
    when BLAS hands them to threads, and far slower still on a busy machine.
    ``normgrad bench --op conv`` uses it to pin its thread count. Needs
    threadpoolctl (it comes with scikit-learn); without it nothing is limited, and the
    yielded text says so. ``threads=None`` limits nothing ("uncontrolled").
    """
    if threads is None:
        yield "uncontrolled"
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        yield "uncontrolled (threadpoolctl not installed)"
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield str(threads)
