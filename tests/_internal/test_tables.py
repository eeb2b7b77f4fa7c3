"""The one table formatter: widths, alignment, number formatting, bad alignments."""

from __future__ import annotations

import pytest

from normgrad._internal.tables import fmt, format_table


def test_columns_are_as_wide_as_their_widest_cell_and_align_as_asked() -> None:
    text = format_table([("a", 1.23456789), ("bbbb", 20)], ("name", "value"), "<>")
    assert text.splitlines() == ["name  value", "----  -----", "a     1.235", "bbbb     20"]


def test_cells_format_floats_bools_and_non_finite() -> None:
    assert fmt(0.5) == "0.5" and fmt(float("nan")) == "nan" and fmt(True) == "True"
    assert fmt(None) == "None" and fmt(123456.0) == "1.235e+05"


@pytest.mark.parametrize("align", ["<", "<^", "<<<"])
def test_bad_alignment_is_refused(align: str) -> None:
    with pytest.raises(ValueError, match="one '<' or '>' per column"):
        format_table([(1, 2)], ("a", "b"), align)
