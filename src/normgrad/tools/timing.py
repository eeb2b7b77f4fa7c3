"""How ``normgrad bench`` and the benchmarks time one call: warm-up, samples, medians.

``time_call(fn, warmup, repeats)`` is the one rule every side of a comparison is timed
by: a warm-up of at least ``warmup`` calls and ``WARMUP_S`` seconds (at most
``WARMUP_MAX`` calls), then ``repeats`` timed samples, each one call or, for calls
shorter than ``SAMPLE_S``, several back to back; the result is the median sample's time
per call. ``alternate`` runs the sides of a comparison in turns, each after
``SETTLE_S`` seconds idle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from statistics import median
from typing import Any, TypeVar

T = TypeVar("T")

#: Warm-up runs for at least this long (and at least ``warmup`` calls): a library's first
#: calls fault in its buffers and wake its threads, and at large sizes both sides need
#: 5 to 10 calls to reach their steady state.
WARMUP_S = 0.1
#: ... but never more than this many warm-up calls.
WARMUP_MAX = 50
#: A timed sample lasts at least this long: shorter calls are repeated back to back ...
SAMPLE_S = 2e-3
#: ... at most this many times.
SAMPLE_MAX = 100
#: ``run_norm`` idles this long before timing each side: PyTorch's OpenMP workers spin
#: for milliseconds after each parallel region (libgomp's default), and on a 2-core
#: machine a spinning worker takes a core from whatever runs next (layer norm at
#: (4096, 1024) on 2 threads: 2.3-2.8 ms right after torch, 1.3-1.4 ms alone). Within a
#: side's block each library pays for its own pools' spinning, as it would alone.
SETTLE_S = 0.3


def time_call(fn: Callable[[], Any], warmup: int = 2, repeats: int = 7) -> float:
    """Median wall time of one ``fn()`` over ``repeats`` timed samples, after the warm-up.

    The warm-up is ``warmup`` calls, continued until ``WARMUP_S`` seconds have passed
    (at most ``WARMUP_MAX`` calls): the same rule for every side of a comparison. A
    sample is one call, or for calls shorter than ``SAMPLE_S`` (the warm-up's fastest)
    enough calls back to back to last that long (at most ``SAMPLE_MAX``), divided by
    their number: a 40 us call timed alone is at the mercy of one interrupt.
    """
    t_end = time.perf_counter() + WARMUP_S
    fastest = math.inf
    for i in range(WARMUP_MAX):
        t0 = time.perf_counter()
        if i >= warmup and t0 >= t_end:
            break
        fn()
        fastest = min(fastest, time.perf_counter() - t0)
    calls = calls_per_sample(fastest)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return median(times)


def calls_per_sample(seconds: float) -> int:
    """Calls of ``seconds`` each that one timed sample makes: enough to last ``SAMPLE_S``,
    1 to ``SAMPLE_MAX``."""
    if seconds >= SAMPLE_S:
        return 1
    return SAMPLE_MAX if seconds <= 0 else min(SAMPLE_MAX, math.ceil(SAMPLE_S / seconds))


def alternate(sides: dict[str, Callable[[], T]], rounds: int, settle: float) -> dict[str, list[T]]:
    """Every side's block ``rounds`` times, the sides taking turns (a, b, a, b, ...), each
    block after ``settle`` seconds idle; per side, its blocks' results in order. A drift
    of the machine during the run then reaches every side alike."""
    runs: dict[str, list[T]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            time.sleep(settle)
            runs[name].append(side())
    return runs
