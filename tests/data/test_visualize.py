"""normgrad.vis_utils: the course's image grids (layout, rescaling, separators)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normgrad.vis_utils import vis_grid, vis_nn, visualize_grid


def _course_visualize_grid(Xs, ubound=255.0, padding=1):
    # The course's loop, restated independently from its documented layout.
    N, H, W, C = Xs.shape
    G = int(math.ceil(math.sqrt(N)))
    grid = np.zeros((H * G + padding * (G - 1), W * G + padding * (G - 1), C))
    for n in range(N):
        r, c = divmod(n, G)
        img = Xs[n]
        y, x = r * (H + padding), c * (W + padding)
        grid[y : y + H, x : x + W] = ubound * (img - img.min()) / (img.max() - img.min())
    return grid


@pytest.mark.parametrize("N, padding", [(1, 1), (5, 1), (9, 0), (10, 3)])
def test_visualize_grid_layout_and_per_image_scaling(N, padding):
    rng = np.random.default_rng(0)
    Xs = rng.standard_normal((N, 4, 3, 2)) * np.arange(1, N + 1)[:, None, None, None]
    grid = visualize_grid(Xs, padding=padding)
    G = math.ceil(math.sqrt(N))
    assert grid.shape == (4 * G + padding * (G - 1), 3 * G + padding * (G - 1), 2)
    assert grid.dtype == np.float64
    np.testing.assert_allclose(grid, _course_visualize_grid(Xs, padding=padding))
    for n in range(N):  # every image spans [0, 255] on its own, whatever its scale
        y, x = (n // G) * (4 + padding), (n % G) * (3 + padding)
        cell = grid[y : y + 4, x : x + 3]
        assert cell.min() == 0 and cell.max() == pytest.approx(255.0)
    assert visualize_grid(Xs, ubound=1.0, padding=padding).max() == pytest.approx(1.0)


def test_visualize_grid_padding_and_unused_cells_are_zero():
    Xs = np.random.default_rng(1).uniform(1, 2, size=(3, 2, 2, 1))
    grid = visualize_grid(Xs, padding=2)
    assert grid.shape == (2 * 2 + 2, 2 * 2 + 2, 1)
    assert np.all(grid[2:4] == 0) and np.all(grid[:, 2:4] == 0)  # the padding
    assert np.all(grid[4:, 4:] == 0)  # the fourth cell is unused


def test_visualize_grid_first_layer_weights_and_constant_image():
    # The course shows conv weights (F, C, HH, WW) as visualize_grid(W1.transpose(0, 2, 3, 1)).
    W1 = np.random.default_rng(2).standard_normal((32, 3, 7, 7)).astype(np.float32)
    assert visualize_grid(W1.transpose(0, 2, 3, 1)).shape == (6 * 7 + 5, 6 * 7 + 5, 3)
    grid = visualize_grid(np.ones((2, 2, 2, 1)))  # the course divides 0 by 0 here
    assert np.all(grid == 0)
    with pytest.raises(ValueError, match=r"4-D \(N, H, W, C\)"):
        visualize_grid(W1[0])
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        visualize_grid(W1.transpose(0, 2, 3, 1), padding=-1)


def test_vis_grid_global_scaling_and_separators():
    Xs = np.arange(5 * 2 * 3 * 1, dtype=np.float64).reshape(5, 2, 3, 1)
    G = vis_grid(Xs)
    assert G.shape == (3 * 3, 3 * 4, 1)  # ceil(sqrt(5)) = 3 cells, one separator each
    lo, hi = Xs.min(), Xs.max()
    for n in range(5):
        r, c = divmod(n, 3)
        np.testing.assert_allclose(
            G[r * 3 : r * 3 + 2, c * 4 : c * 4 + 3], (Xs[n] - lo) / (hi - lo)
        )
    assert np.all(G[2::3] == 0) and np.all(G[:, 3::4] == 0)  # separators at min(Xs)
    assert np.all(G[6:8, 8:11] == 0)  # unused cell
    assert G.min() == 0 and G.max() == 1
    ints = vis_grid(np.arange(8, dtype=np.uint8).reshape(2, 2, 2, 1))
    assert ints.dtype == np.float64 and ints.max() == 1


def test_vis_nn_table():
    rng = np.random.default_rng(3)
    rows = [[rng.uniform(2, 5, size=(2, 3, 3)) for _ in range(4)] for _ in range(2)]
    G = vis_nn(rows)
    assert G.shape == (2 * 3, 4 * 4, 3)
    allv = np.concatenate([np.ravel(im) for row in rows for im in row] + [np.ones(1)])
    lo, hi = allv.min(), allv.max()  # separators hold 1 before rescaling, as the course
    for i in range(2):
        for j in range(4):
            np.testing.assert_allclose(
                G[i * 3 : i * 3 + 2, j * 4 : j * 4 + 3], (rows[i][j] - lo) / (hi - lo)
            )
    assert np.all(G[2::3] == 0) and np.all(G[:, 3::4] == 0)  # 1 was the minimum here
    with pytest.raises(ValueError, match="row 1 holds 3"):
        vis_nn([rows[0], rows[1][:3]])
    with pytest.raises(ValueError, match=r"rows\[0\]\[1\] has \(3, 3, 3\)"):
        vis_nn([[rows[0][0], np.zeros((3, 3, 3))]])
