"""BLAS thread limits: one helper for the benchmarks, the experiments and ``normgrad train``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


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
