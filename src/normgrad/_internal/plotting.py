"""matplotlib for files, not screens: the Agg backend, and atomic figure writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from normgrad._internal.io import atomic_write


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Lay ``fig`` out, save it to ``path`` atomically (its folder created), then close it."""
    plt = pyplot()
    path = Path(path)
    try:
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    finally:
        plt.close(fig)
    return path
