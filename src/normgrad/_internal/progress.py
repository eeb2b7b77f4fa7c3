"""Progress bars that appear only on a terminal: in a log file or CI they stay silent."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int, desc: str, unit: str = "it", initial: int = 0) -> Any:
    """A tqdm bar, or None without tqdm. It draws only when stderr is a terminal
    (``disable=None``), so redirected output gets no carriage-return updates."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional (the "train" extra)
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, disable=None)
