"""Fixed-width text tables: the one formatter every command prints with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt(value: Any) -> str:
    """A cell: floats to 4 significant digits (``nan`` for non-finite), else ``str``."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def format_table(
    rows: Sequence[Sequence[Any]], header: Sequence[str], align: str | None = None
) -> str:
    """Rows as a table under ``header``, with a rule of dashes between.

    Cells go through ``fmt``; pass strings to format a column yourself (``f"{e:.2e}"``).
    ``align`` has one character per column, ``<`` (left, the default) or ``>`` (right,
    for numbers).
    """
    align = align or "<" * len(header)
    if len(align) != len(header) or set(align) - {"<", ">"}:
        raise ValueError(f"align needs one '<' or '>' per column ({len(header)}); got {align!r}.")
    body = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(line[i]) for line in [list(header), *body]) for i in range(len(header))]
    line = "  ".join(f"{{:{a}{w}}}" for a, w in zip(align, widths, strict=True))
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in body]
    return "\n".join(s.rstrip() for s in out)
