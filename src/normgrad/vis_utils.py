"""cs231n-compatible image grids (``cs231n.vis_utils``), a thin surface over ``data.visualize``."""

from normgrad.data.visualize import vis_grid, vis_nn, visualize_grid

__all__ = ["vis_grid", "vis_nn", "visualize_grid"]
