"""Image grids for looking at data and weights (cs231n ``vis_utils``, same semantics).

Three layouts, all (rows, cols, C) arrays ready for ``plt.imshow``:

- ``visualize_grid(Xs, ubound, padding)``: N images on a ceil(sqrt(N)) square grid,
  ``padding`` zero pixels between cells, each image rescaled *on its own* to [0, ubound]
  (so first-layer filters of very different norms are all visible)::

      cell_n = ubound * (X_n - min X_n) / (max X_n - min X_n)       # (H, W, C)

- ``vis_grid(Xs)``: the same square grid, one separator pixel after every cell (the
  last row and column too), separators at min(Xs), then the *whole* grid rescaled to
  [0, 1] (relative brightness between images is kept);
- ``vis_nn(rows)``: a table of images, rows[i][j] in row i and column j, separators
  of value 1, the whole table rescaled to [0, 1].

Where the course divides by zero (a constant image, or a constant grid), giving NaN and a
RuntimeWarning, these return zeros instead. Inputs are checked first: real numeric arrays
of the documented layout with at least one pixel, no NaN or inf (which would turn a whole
image into NaN), ``ubound`` a finite number > 0, ``padding`` an int >= 0. Nothing here
imports matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from normgrad._internal import validate as v


def _images(Xs: np.ndarray, name: str) -> tuple[int, int, int, int]:
    """Check Xs: (N, H, W, C) real numbers; return its shape."""
    if not isinstance(Xs, np.ndarray) or Xs.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real numeric numpy.ndarray (N, H, W, C); got "
            f"{getattr(Xs, 'dtype', type(Xs).__name__)}."
        )
    if Xs.ndim != 4:
        raise ValueError(
            f"{name} must be 4-D (N, H, W, C), channels last; got shape {tuple(Xs.shape)}. "
            "For (N, C, H, W) weights or images pass Xs.transpose(0, 2, 3, 1)."
        )
    N, H, W, C = (int(s) for s in Xs.shape)
    if 0 in (N, H, W, C):
        raise ValueError(
            f"{name} must hold at least one image of at least one pixel and channel; got "
            f"shape {tuple(Xs.shape)}."
        )
    _finite(Xs, name)
    return N, H, W, C


def _finite(a: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``a`` holds NaN or inf (the rescaling would make it all NaN)."""
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"{name} holds NaN or inf (first at index {tuple(int(i) for i in bad)}); the "
            f"rescaling to [0, ubound] would turn the whole image into NaN. Replace them, "
            f"e.g. np.nan_to_num({name})."
        )


def _image(img: object, where: str) -> np.ndarray:
    """One image of ``vis_nn``: a real numeric (H, W, C) array with finite values."""
    a = np.asarray(img)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} must be a real numeric (H, W, C) array; got {type(img).__name__} "
            f"of dtype {a.dtype}."
        )
    _finite(a, where)
    return a


def _rescale(a: np.ndarray, top: float) -> np.ndarray:
    """top * (a - min a) / (max a - min a) as float64; zeros when a is constant."""
    a = np.asarray(a, dtype=np.float64)
    low, high = a.min(), a.max()
    if high == low:
        return np.zeros_like(a)
    return top * (a - low) / (high - low)


def visualize_grid(Xs: np.ndarray, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """N images on a square grid, each rescaled on its own to [0, ubound] (cs231n).

    Args:
        Xs: (N, H, W, C) images or filters, channels last.
        ubound: the top of each image's range; 255.0 for ``astype("uint8")`` display.
        padding: >= 0 blank (zero) pixels between neighbouring cells (none at the edges).

    Returns:
        grid: (G*H + padding*(G-1), G*W + padding*(G-1), C) float64 with G =
        ceil(sqrt(N)); cell n sits at row n // G, column n % G; unused cells stay 0.
    """
    N, H, W, C = _images(Xs, "Xs")
    ubound = v.real(ubound, "ubound", example=255.0, low=0.0, low_open=True)
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be an int >= 0 (pixels between cells); got {padding!r}.")
    G = math.ceil(math.sqrt(N))
    grid = np.zeros((G * H + padding * (G - 1), G * W + padding * (G - 1), C))
    for n in range(N):
        top = (n // G) * (H + padding)
        left = (n % G) * (W + padding)
        grid[top : top + H, left : left + W] = _rescale(Xs[n], ubound)  # (H, W, C)
    return grid


def vis_grid(Xs: np.ndarray) -> np.ndarray:
    """N images on a square grid, the whole grid rescaled to [0, 1] (cs231n).

    Args:
        Xs: (N, H, W, C) images, channels last.

    Returns:
        (G*(H+1), G*(W+1), C) float64 with G = ceil(sqrt(N)): cell n at row n // G,
        column n % G, each followed by one separator row and column; separators and
        unused cells hold min(Xs) before the rescaling, so they come out 0.
    """
    N, H, W, C = _images(Xs, "Xs")
    G = math.ceil(math.sqrt(N))
    grid = np.full((G * (H + 1), G * (W + 1), C), Xs.min(), dtype=Xs.dtype)
    for n in range(N):
        top, left = (n // G) * (H + 1), (n % G) * (W + 1)
        grid[top : top + H, left : left + W] = Xs[n]  # (H, W, C)
    return _rescale(grid, 1.0)


def vis_nn(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """A table of images, rows[i][j] at row i and column j, rescaled to [0, 1] (cs231n).

    Args:
        rows: R sequences of D images each, every image (H, W, C) (the shape and dtype
            of rows[0][0]).

    Returns:
        (R*(H+1), D*(W+1), C) float64: each image followed by one separator row and
        column holding 1 before the whole table is rescaled to [0, 1], as the course.
    """
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__len__"):
        raise TypeError(
            f"rows must be a sequence (list) of rows, each a sequence of (H, W, C) images; "
            f"got {type(rows).__name__}."
        )
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise TypeError(
                f"rows[{i}] must be a sequence (list) of (H, W, C) images; got "
                f"{type(row).__name__}."
            )
    if len(rows) == 0 or len(rows[0]) == 0:
        raise ValueError(
            "rows must be a non-empty sequence of non-empty sequences of (H, W, C) images."
        )
    first = _image(rows[0][0], "rows[0][0]")
    if first.ndim != 3:
        raise ValueError(
            f"each image must be 3-D (H, W, C); got rows[0][0] of shape {tuple(first.shape)}."
        )
    R, D = len(rows), len(rows[0])
    H, W, C = first.shape
    if 0 in (H, W, C):
        raise ValueError(f"each image needs at least one pixel and channel; got {(H, W, C)}.")
    table = np.ones((R * (H + 1), D * (W + 1), C), dtype=first.dtype)
    for i, row in enumerate(rows):
        if len(row) != D:
            raise ValueError(
                f"every row must hold D = {D} images, as rows[0]; row {i} holds {len(row)}."
            )
        for j, img in enumerate(row):
            img = _image(img, f"rows[{i}][{j}]")
            if img.shape != (H, W, C):
                raise ValueError(
                    f"every image must have rows[0][0]'s shape {(H, W, C)}; "
                    f"rows[{i}][{j}] has {tuple(img.shape)}."
                )
            top, left = i * (H + 1), j * (W + 1)
            table[top : top + H, left : left + W] = img  # (H, W, C)
    return _rescale(table, 1.0)


__all__ = ["vis_grid", "vis_nn", "visualize_grid"]
