"""The kernels' pool of big arrays: an array anyone still holds is never handed out again."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from normgrad.kernels import _runtime as rt  # noqa: E402

BIG = (512, 1024)  # 2 MiB of float32: above the pool's threshold


def test_an_array_still_held_is_never_reused() -> None:
    a = rt.empty(BIG, np.float32)
    a.fill(1.0)
    b = rt.empty(BIG, np.float32)
    assert b is not a and not np.shares_memory(a, b)
    view = a[::2]
    del a
    c = rt.empty(BIG, np.float32)
    assert not np.shares_memory(c, view)  # a view keeps its base alive, and out of the pool
    assert np.all(view == 1.0)


def test_a_freed_array_is_reused() -> None:
    a = rt.empty(BIG, np.float64)
    address = a.__array_interface__["data"][0]
    del a
    b = rt.empty(BIG, np.float64)
    assert b.__array_interface__["data"][0] == address


def test_small_arrays_do_not_come_from_the_pool() -> None:
    a = rt.empty((4, 4), np.float32)
    assert a.shape == (4, 4) and a.dtype == np.float32
    assert ((4, 4), np.dtype(np.float32)) not in rt._FREE


def test_the_free_count_is_measured_not_assumed() -> None:
    assert rt._FREE_REFS == rt._free_refs()
