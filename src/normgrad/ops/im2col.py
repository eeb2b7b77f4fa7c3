"""The course's im2col: ``get_im2col_indices``, ``im2col_indices``, ``col2im_indices``.

cs231n's ``im2col.py`` lays every window of a zero-padded batch out as one column of a
single matrix, so that a convolution is one product ``w.reshape(F, -1) @ cols``. Its
layout, kept exactly here (x: (N, C, H, W), windows of FH x FW, padding p, stride s)::

    H' = (H + 2 p - FH) / s + 1,   W' = (W + 2 p - FW) / s + 1
    cols: (C*FH*FW, H'*W'*N)
    cols[(c*FH + di)*FW + dj, (oh*W' + ow)*N + n] = x_pad[n, c, s*oh + di, s*ow + dj]

Rows run over (c, di, dj), the order of ``w.reshape(F, -1)``'s columns; columns over
(oh, ow, n) with the sample fastest, so ``(w.reshape(F, -1) @ cols).reshape(F, H', W',
N)`` is the convolution with its batch axis last. ``get_im2col_indices`` returns the
index arrays (k, i, j) with ``cols = x_pad[:, k, i, j]`` (then batch moved last), and
``col2im_indices`` is the adjoint of ``im2col_indices``: it sums every column back onto
the pixels its window covered (overlapping windows add up), then drops the padding.

Where the course ``assert``s that the windows tile the padded input (and checks the
width against the field *height*), every function here raises a ``ValueError`` naming the
sizes. The columns are gathered and scattered by ``ops.windows`` (a strided view and a
loop over the FH*FW offsets of a window), not by fancy indexing; the results are the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.ops.windows import col2im, im2col, pad_hw, unpad_hw

__all__ = ["col2im_indices", "get_im2col_indices", "im2col_indices"]


def _geometry(
    x_shape: Any, field_height: Any, field_width: Any, padding: Any, stride: Any, what: str
) -> tuple[tuple[int, int, int, int], int, int, int, int, int, int]:
    """Check the arguments; return (x_shape, FH, FW, p, s, H', W')."""
    if isinstance(x_shape, np.ndarray) or not isinstance(x_shape, (tuple, list)):
        hint = " Pass x.shape, not x." if isinstance(x_shape, np.ndarray) else ""
        raise TypeError(
            f"{what}: x_shape must be the 4 sizes (N, C, H, W) as a tuple; got "
            f"{type(x_shape).__name__}.{hint}"
        )
    if len(x_shape) != 4:
        raise ValueError(f"{what}: x_shape must be (N, C, H, W), 4 sizes; got {tuple(x_shape)}.")
    N, C, H, W = (
        v.integer(n, f"x_shape[{k}] ({'NCHW'[k]})", example=(2, 3, 8, 8)[k], low=0)
        for k, n in enumerate(x_shape)
    )
    fh = v.integer(field_height, "field_height", example=3, low=1)
    fw = v.integer(field_width, "field_width", example=3, low=1)
    p = v.integer(padding, "padding", example=1, low=0)
    s = v.integer(stride, "stride", example=1, low=1)
    sizes = []
    for axis, size, field, fname in (
        ("height", H, fh, "field_height"),
        ("width", W, fw, "field_width"),
    ):
        span = size + 2 * p - field
        if span < 0:
            raise ValueError(
                f"{what}: {fname} = {field} is larger than the padded {axis} "
                f"{size} + 2*{p} = {size + 2 * p}. Use a smaller field or more padding."
            )
        if span % s:
            fits = [t for t in range(1, span + 1) if span % t == 0] or [1]
            raise ValueError(
                f"{what}: the windows do not tile the padded {axis}: ({size} + 2*{p} - "
                f"{field}) / stride {s} = {span / s:g} is not an integer, so the last "
                f"windows would hang over the edge. Strides that tile it: {fits}; or "
                f"change padding, {fname} or the input size."
            )
        sizes.append(span // s + 1)
    return (N, C, H, W), fh, fw, p, s, sizes[0], sizes[1]


def get_im2col_indices(
    x_shape: tuple[int, int, int, int],
    field_height: int,
    field_width: int,
    padding: int = 1,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (k, i, j) with ``x_pad[:, k, i, j]`` every window as a column (cs231n).

    Args:
        x_shape: (N, C, H, W) of the unpadded input.
        field_height, field_width: the window, ints >= 1.
        padding: zeros added on each side of H and W, an int >= 0.
        stride: an int >= 1; the windows must tile the padded input.

    Returns:
        k: (C*FH*FW, 1) channel of each row; i, j: (C*FH*FW, H'*W') the padded row and
        column each entry reads: row r = (c*FH + di)*FW + dj, column oh*W' + ow.
        int64 (np.intp) arrays.

    Raises:
        TypeError: x_shape not a tuple/list of 4 ints, or a non-int size.
        ValueError: a size below its minimum, or windows that do not tile the padded input.
    """
    (_, C, _, _), fh, fw, _, s, H_out, W_out = _geometry(
        x_shape, field_height, field_width, padding, stride, "get_im2col_indices"
    )
    di = np.tile(np.repeat(np.arange(fh), fw), C)  # (C*FH*FW,) offset row within a window
    dj = np.tile(np.arange(fw), fh * C)  # (C*FH*FW,) offset column within a window
    oh = s * np.repeat(np.arange(H_out), W_out)  # (H'*W',) window's top row
    ow = s * np.tile(np.arange(W_out), H_out)  # (H'*W',) window's left column
    i = (di[:, None] + oh[None, :]).astype(np.intp)  # (C*FH*FW, H'*W')
    j = (dj[:, None] + ow[None, :]).astype(np.intp)  # (C*FH*FW, H'*W')
    k = np.repeat(np.arange(C, dtype=np.intp), fh * fw)[:, None]  # (C*FH*FW, 1)
    return k, i, j


def _real_array(value: Any, name: str, what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        desc = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(
            f"{what}: {name} must be a numpy array of real numbers; got {desc}. Convert "
            f"it with np.asarray({name}, dtype=np.float64)."
        )
    return value


def im2col_indices(
    x: np.ndarray, field_height: int, field_width: int, padding: int = 1, stride: int = 1
) -> np.ndarray:
    """Every window of the zero-padded x as one column, in the course's layout (cs231n).

    Args:
        x: (N, C, H, W) real numbers (any real dtype; the columns keep it).
        field_height, field_width, padding, stride: as ``get_im2col_indices``.

    Returns:
        cols: (C*FH*FW, H'*W'*N), cols[(c*FH + di)*FW + dj, (oh*W' + ow)*N + n] =
        x_pad[n, c, stride*oh + di, stride*ow + dj]; a new array (x is not changed).

    Raises:
        TypeError: x not a real numpy array; arguments not ints.
        ValueError: x not 4-D, arguments below their minimum, or windows that do not
            tile the padded input.
    """
    _real_array(x, "x", "im2col_indices")
    v.ndim(x, "x", 4, "(N, C, H, W)")
    _, fh, fw, p, s, _, _ = _geometry(
        x.shape, field_height, field_width, padding, stride, "im2col_indices"
    )
    per_sample = im2col(pad_hw(x, p), fh, fw, s)  # (N, C*FH*FW, H'*W')
    N, rows, L = per_sample.shape
    # (C*FH*FW, H'*W', N): the sample index runs fastest along the columns
    return np.ascontiguousarray(per_sample.transpose(1, 2, 0)).reshape(rows, L * N)


def col2im_indices(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    field_height: int = 3,
    field_width: int = 3,
    padding: int = 1,
    stride: int = 1,
) -> np.ndarray:
    """Sum columns back onto the image they came from: the adjoint of ``im2col_indices`` (cs231n).

    <im2col_indices(x), c> = <x, col2im_indices(c, x.shape)> for every x and c, so the
    gradient of a loss with respect to x is ``col2im_indices(dcols, x.shape, ...)``.

    Args:
        cols: (C*FH*FW, H'*W'*N) real numbers in ``im2col_indices``' layout.
        x_shape: (N, C, H, W) of the image.
        field_height, field_width, padding, stride: as ``get_im2col_indices`` (the
            course's defaults: 3, 3, 1, 1).

    Returns:
        x: (N, C, H, W) of cols' dtype: every pixel the sum of the column entries that
        read it (windows that overlap add up), the padding dropped.

    Raises:
        TypeError: cols not a real numpy array; arguments not ints.
        ValueError: cols not of the shape the geometry gives, arguments below their
            minimum, or windows that do not tile the padded input.
    """
    _real_array(cols, "cols", "col2im_indices")
    (N, C, H, W), fh, fw, p, s, H_out, W_out = _geometry(
        x_shape, field_height, field_width, padding, stride, "col2im_indices"
    )
    expected = (C * fh * fw, H_out * W_out * N)
    if cols.shape != expected:
        raise ValueError(
            f"col2im_indices: cols must have shape (C*FH*FW, H'*W'*N) = {expected} for "
            f"x_shape {(N, C, H, W)}, a {fh}x{fw} field, padding {p} and stride {s}; got "
            f"{tuple(cols.shape)}. Pass the same geometry im2col_indices was called with."
        )
    # (C*FH*FW, H'*W', N) -> (N, C*FH*FW, H'*W'), the per-sample layout of ops.windows
    per_sample = cols.reshape(expected[0], H_out * W_out, N).transpose(2, 0, 1)
    x_pad = col2im(per_sample, (N, C, H + 2 * p, W + 2 * p), fh, fw, s)  # (N, C, Hp, Wp)
    return np.ascontiguousarray(unpad_hw(x_pad, p))  # (N, C, H, W)
