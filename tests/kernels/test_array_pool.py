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


def test_a_full_pool_makes_room_from_the_shapes_used_longest_ago(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With room for two arrays, a third shape evicts the oldest free one, not itself."""
    monkeypatch.setattr(rt, "_FREE", type(rt._FREE)())
    monkeypatch.setattr(rt, "_KEPT_BYTES", [0])
    nbytes = 2 * 1024 * 1024 + rt._PAGE  # a pooled buffer: the array and a page of slack
    monkeypatch.setattr(rt, "_POOL_MAX_BYTES", 2 * nbytes)
    shapes = [(512, 1024), (1024, 512), (256, 2048)]  # 2 MiB each in float32
    held = rt.empty(shapes[0], np.float32)  # held: it must never be evicted
    rt.empty(shapes[1], np.float32)  # freed at once
    assert rt._KEPT_BYTES[0] == 2 * nbytes
    third = rt.empty(shapes[2], np.float32)
    assert rt._KEPT_BYTES[0] == 2 * nbytes  # the free (1024, 512) made room
    assert list(rt._FREE) == [(shapes[0], np.dtype(np.float32)), (shapes[2], np.dtype(np.float32))]
    assert any(buf is held.base for buf in rt._FREE[(shapes[0], np.dtype(np.float32))])
    address = third.__array_interface__["data"][0]
    del third
    again = rt.empty(shapes[2], np.float32)
    assert again.__array_interface__["data"][0] == address  # now pooled, so reused


@pytest.mark.parametrize("shift", [0, 16, 2048, 4000])
def test_a_result_never_starts_at_its_inputs_offset_in_a_page(shift: int) -> None:
    """empty_like(x) starts half a page from x (mod 4 KiB): no 4K aliasing in out = f(x)."""
    raw = np.empty(BIG[0] * BIG[1] * 4 + 4096, np.uint8)
    start = (-raw.ctypes.data + shift) % 4096
    x = raw[start : start + BIG[0] * BIG[1] * 4].view(np.float32).reshape(BIG)
    out = rt.empty_like(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.flags.c_contiguous
    gap = (out.ctypes.data - x.ctypes.data) % 4096
    assert 2048 - 64 < gap <= 2048 and out.ctypes.data % 64 == 0
