"""Sliding-window geometry shared by convolution and pooling, naive and fast.

Output size of a window of height HH sliding with stride s over an input of height H
padded by p on each side::

    H' = 1 + (H + 2 p - HH) / s

The course requires this to be an integer (the windows tile the padded input exactly),
and so does every layer here: a remainder would silently drop the last rows or
columns, so it is an error that names the sizes that would work.

``im2col`` lays every window out as one column of a matrix, so a convolution becomes
one matrix product; ``col2im`` is its adjoint, summing each column back onto the pixels
its window covered. Neither loops over pixels: ``im2col`` is a strided view copied once, and
``col2im`` loops only over the HH * WW offsets inside a window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from normgrad._internal import validate as v
from normgrad.ops._checks import param_dict

#: The keys each layer reads from its parameter dict; any other key is refused.
CONV_KEYS = ("stride", "pad")
POOL_KEYS = ("pool_height", "pool_width", "stride")


def int_param(param: dict[str, Any], key: str, name: str, minimum: int) -> int:
    """``param[key]`` as an int >= ``minimum``, else a clear error naming ``name[key]``.

    Integral floats (``1.0``, ``np.float64(2)``) are accepted as the ints they equal, as
    the course's arithmetic accepts them; ``1.5``, NaN and infinities are not
    (``ValueError``), nor are bools, strings, None or arrays (``TypeError``).
    """
    param_dict(param, name, f"{{'{key}': {minimum}, ...}} with the layer's other keys")
    if key not in param:
        raise ValueError(
            f"{name} must contain {key!r} (an integer >= {minimum}); "
            f"got keys {sorted(param)}. Add it, e.g. {name}[{key!r}] = "
            f"{minimum}."
        )
    value = param[key]
    label = f"{name}[{key!r}]"
    fix = f"Pass a whole number >= {minimum}, e.g. {label} = {minimum}."
    if not v.is_real(value):
        raise TypeError(
            f"{label} must be an integer >= {minimum}; got {value!r}. {fix} "
            f"(A {type(value).__name__} is not a number.)"
        )
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():  # NaN and infinities are not integers either
            raise ValueError(
                f"{label} must be an integer >= {minimum}; got the non-integral "
                f"{value!r}. Sizes and strides count pixels: pass a whole number."
            )
        value = int(value)
    if value < minimum:
        raise ValueError(f"{label} must be an integer >= {minimum}; got {value!r}. {fix}")
    return int(value)


def output_size(size: int, window: int, stride: int, pad: int, what: str, axis: str) -> int:
    """1 + (size + 2 pad - window) / stride, raising ``ValueError`` unless it is an integer.

    Args:
        size: the input's extent along the axis (H or W).
        window: the window's extent along it (HH, WW, pool_height, pool_width).
        stride, pad: as in conv_param / pool_param (pad is 0 for pooling).
        what: the layer, for the message ("conv", "max pool").
        axis: "height" or "width", for the message.
    """
    span = size + 2 * pad - window
    if span < 0:
        name = {("conv", "height"): "w's HH", ("conv", "width"): "w's WW"}.get(
            (what, axis), f"pool_param['pool_{axis}']"
        )
        raise ValueError(
            f"{what}: the {axis} window ({name} = {window}) is larger than the padded input "
            f"({size} + 2*{pad} = {size + 2 * pad}). Use a smaller window or more padding."
        )
    if span % stride:
        fits = [s for s in range(1, span + 1) if span % s == 0]
        other = "pad, the window" if what == "conv" else "the window"
        raise ValueError(
            f"{what}: the windows do not tile the input along its {axis}: "
            f"(size + 2*pad - window) / stride = ({size} + 2*{pad} - {window}) / {stride} "
            f"= {span / stride:g} is not an integer, so the output size 1 + {span}/{stride} "
            f"is not an integer. Strides that tile it: {fits}; or change {other} or the "
            f"input size."
        )
    return 1 + span // stride


def conv_geometry(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[int, int, int, int]:
    """Validate a convolution's arguments; return (stride, pad, H', W').

    x: (N, C, H, W), w: (F, C, HH, WW) with HH, WW >= 1, b: (F,), all floating (cast
    integer parameters with ``_internal.params.float_params`` first); conv_param a dict
    with exactly the keys ``stride`` (integer or integral float >= 1) and ``pad`` (>= 0).
    Empty batches (N = 0), no channels (C = 0) and no filters (F = 0) are valid: the
    result is empty or the bias alone, as the formula says.
    """
    v.float_array(x, "x")
    v.float_array(w, "w")
    v.float_array(b, "b")
    v.ndim(x, "x", 4, "(N, C, H, W)")
    v.ndim(w, "w", 4, "(F, C, HH, WW)")
    F, C, HH, WW = w.shape
    if x.shape[1] != C:
        raise ValueError(
            f"x has {x.shape[1]} channels but w expects C = {C}: x must be (N, {C}, H, W) "
            f"for w of shape {tuple(w.shape)}; got x of shape {tuple(x.shape)}."
        )
    if HH < 1 or WW < 1:
        raise ValueError(
            f"w's filters must be at least 1x1: w must be (F, C, HH, WW) with HH, WW >= 1; "
            f"got w of shape {tuple(w.shape)}. Pass filters with a height and a width."
        )
    v.shape(b, "b", (F,), "one bias per filter of w: (F, C, HH, WW)")
    param_dict(conv_param, "conv_param", "{'stride': 1, 'pad': 1}")
    v.known_keys(conv_param, "conv_param", CONV_KEYS)
    stride = int_param(conv_param, "stride", "conv_param", 1)
    pad = int_param(conv_param, "pad", "conv_param", 0)
    H_out = output_size(x.shape[2], HH, stride, pad, "conv", "height")
    W_out = output_size(x.shape[3], WW, stride, pad, "conv", "width")
    return stride, pad, H_out, W_out


def pool_geometry(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """Validate a max pool's arguments; return (pool_height, pool_width, stride, H', W').

    x: (N, C, H, W) floating; pool_param a dict with exactly the keys ``pool_height``,
    ``pool_width`` and ``stride`` (integers or integral floats >= 1). N = 0 or C = 0 give
    an empty result.
    """
    v.float_array(x, "x")
    v.ndim(x, "x", 4, "(N, C, H, W)")
    return pool_sizes(x.shape, pool_param)


def pool_sizes(
    shape: tuple[int, ...], pool_param: dict[str, Any]
) -> tuple[int, int, int, int, int]:
    """``pool_geometry`` for an input of ``shape`` (N, C, H, W), before that input exists.

    A sandwich checks its pooling this way before any of its layers writes state (a batch
    norm's running statistics), so a bad pool_param is refused with nothing changed.
    """
    param_dict(pool_param, "pool_param", "{'pool_height': 2, 'pool_width': 2, 'stride': 2}")
    v.known_keys(pool_param, "pool_param", POOL_KEYS)
    ph = int_param(pool_param, "pool_height", "pool_param", 1)
    pw = int_param(pool_param, "pool_width", "pool_param", 1)
    stride = int_param(pool_param, "stride", "pool_param", 1)
    H_out = output_size(shape[2], ph, stride, 0, "max pool", "height")
    W_out = output_size(shape[3], pw, stride, 0, "max pool", "width")
    return ph, pw, stride, H_out, W_out


def pad_hw(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad the last two axes of x: (N, C, H, W) -> (N, C, H + 2 pad, W + 2 pad)."""
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def unpad_hw(x_pad: np.ndarray, pad: int) -> np.ndarray:
    """Undo ``pad_hw``: drop ``pad`` rows and columns from each side of the last two axes."""
    if pad == 0:
        return x_pad
    return x_pad[:, :, pad:-pad, pad:-pad]


def window_view(x: np.ndarray, hh: int, ww: int, stride: int) -> np.ndarray:
    """Every (hh, ww) window of x at the given stride, as a read-only view, no copy.

    x: (N, C, H, W) -> (N, C, H', W', hh, ww), with view[n, c, i, j] the window whose
    top-left corner is x[n, c, i * stride, j * stride].
    """
    return sliding_window_view(x, (hh, ww), axis=(2, 3))[:, :, ::stride, ::stride]


def im2col(
    x_pad: np.ndarray, hh: int, ww: int, stride: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Windows as columns, one matrix per sample: (N, C, Hp, Wp) -> (N, C*hh*ww, H'*W').

    cols[n, :, i * W' + j] is the window at output pixel (i, j) of sample n, flattened as
    (c, di, dj): the order of ``w.reshape(F, -1)``'s columns, so the convolution of every
    sample is one batched product ``w.reshape(F, -1) @ cols`` whose result is already
    laid out as (N, F, H', W'). The copy runs along whole output rows. ``out``: an
    (N, C*hh*ww, H'*W') array (rows of samples may be spaced further apart, as in a view
    of a larger matrix) to copy into and return, instead of a new one.
    """
    win = window_view(x_pad, hh, ww, stride)  # (N, C, H', W', hh, ww) view
    N, C, H_out, W_out = win.shape[:4]
    # (N, C, hh, ww, H', W'), then one copy into the matrices
    windows = win.transpose(0, 1, 4, 5, 2, 3)
    if out is None:
        return windows.reshape(N, C * hh * ww, H_out * W_out)
    expected = (N, C * hh * ww, H_out * W_out)
    if not isinstance(out, np.ndarray) or out.shape != expected or not out.flags.writeable:
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"im2col's out must be a writeable array of shape {expected}; got {got}.")
    n_, k_, p_ = out.strides  # split K into (C, hh, ww) and P into (H', W'): still a view
    target = np.lib.stride_tricks.as_strided(
        out,
        (N, C, hh, ww, H_out, W_out),
        (n_, k_ * hh * ww, k_ * ww, k_, p_ * W_out, p_),
        writeable=True,
    )
    target[...] = windows
    return out


def col2im(
    dcols: np.ndarray, padded_shape: tuple[int, ...], hh: int, ww: int, stride: int
) -> np.ndarray:
    """The adjoint of ``im2col``: sum every window's column back onto its pixels.

    dcols: (N, C*hh*ww, H'*W') -> dx_pad: padded_shape = (N, C, Hp, Wp). Windows overlap
    when stride < window, so pixels receive several contributions; the loop runs over the
    hh * ww offsets inside a window, each a strided slice of every window at once.
    """
    N, C, Hp, Wp = padded_shape
    H_out = (Hp - hh) // stride + 1
    W_out = (Wp - ww) // stride + 1
    d = dcols.reshape(N, C, hh, ww, H_out, W_out)
    # d[:, :, di, dj]: (N, C, H', W'), landing on rows di + stride*i and cols dj + stride*j
    dx_pad = np.zeros(padded_shape, dtype=dcols.dtype)
    for di in range(hh):
        for dj in range(ww):
            rows = slice(di, di + stride * H_out, stride)
            cols = slice(dj, dj + stride * W_out, stride)
            dx_pad[:, :, rows, cols] += d[:, :, di, dj]
    return dx_pad
