"""The report a student reads, the CLI's exit codes, and the catalog's pointers into the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from normgrad.cli import main
from normgrad.tools import grade
from normgrad.tools.grade import catalog, runner, sample
from normgrad.tools.grade.result import GradeResult

DOCS = Path(__file__).resolve().parents[2] / "docs" / "derivation.md"


def _anchors() -> set[str]:
    """GitHub's anchors of every heading in docs/derivation.md."""
    out = set()
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title, flags=re.UNICODE).replace(" ", "-")
            out.add("#" + slug)
    return out


def test_every_catalog_pointer_is_a_heading_of_the_derivation() -> None:
    anchors = _anchors()
    for m in catalog.MISTAKES:
        assert m.anchor in anchors, (m.key, m.anchor)
    text = DOCS.read_text(encoding="utf-8")
    for m in catalog.MISTAKES:
        assert f"`{m.key}`" in text, m.key  # and each is in the catalog's table (section 12.3)


def test_the_contents_table_links_the_new_sections() -> None:
    anchors, text = _anchors(), DOCS.read_text(encoding="utf-8")
    for n in (12, 13, 14, 15):
        link = re.search(rf"\]\((#{n}-[^)]+)\)", text)
        assert link and link.group(1) in anchors, n


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's grade, in this process (our own fixture code is trusted): fast."""
    monkeypatch.setattr(grade, "run", runner.run_in_process)


def test_cli_exit_0_for_a_correct_file_and_1_for_the_seeds_slip(
    in_process: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "student_good.py"
    good.write_text(sample.render())
    assert main(["grade", str(good), "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "44/44 rows pass" in out and "every function matches" in out
    slip = {"batchnorm_backward_alt": [("(dbeta + xhat * dgamma)", "(dbeta + x * dgamma)")]}
    bad = tmp_path / "student_bad.py"
    bad.write_text(sample.render(edits=slip))
    assert main(["grade", f"{bad}:batchnorm_backward_alt"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    row = next(ln for ln in lines if ln.startswith("batchnorm_backward_alt  dx"))
    assert row.split()[-1] == "FAIL" and "0/6" in row
    assert "mistake: x_for_xhat" in out and "see: docs/derivation.md#4-route-3" in out
    assert "=> the mean and variance paths are wrong" in out
    assert "smallest counterexample:" in out and "correct: dx = [[" in out
    # the order a student reads: table, then the mistake, then the paths, then the example
    at = [out.index(s) for s in ("FAIL", "mistake:", "paths", "smallest counterexample")]
    assert at == sorted(at)


def test_a_fatal_result_is_reported_in_one_place() -> None:
    text = grade.format_result(GradeResult("x.py", fatal="grading did not finish within 3 s"))
    assert "could not grade: grading did not finish within 3 s" in text
    assert not GradeResult("x.py", fatal="x").ok and not GradeResult("x.py").ok
    assert "nothing was graded" in text
