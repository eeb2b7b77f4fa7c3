"""A correct implementation passes with no false alarm: the sample over 50 seeds, and
normgrad's own course modules graded as if a student had written them."""

from __future__ import annotations

from pathlib import Path

import pytest

from normgrad.tools.grade import families, report, sample, sandbox, worker
from normgrad.tools.grade.result import GradeResult


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> sandbox.Loaded:
    path = tmp_path_factory.mktemp("correct") / "student_correct.py"
    path.write_text(sample.render())
    return sandbox.load("student_correct", path, None)


def _bad(result: GradeResult) -> list[tuple[str, str, float, str]]:
    return [(r.function, r.output, r.worst, r.note) for r in result.rows if not r.ok]


def test_the_sample_passes_every_row_with_every_family_graded(student: sandbox.Loaded) -> None:
    result = worker.grade_modules([student])
    assert result.ok, _bad(result)
    graded = {r.function for r in result.rows}
    assert graded == set(sample.FUNCTIONS)
    assert not result.findings and not result.notes
    assert "every function matches" in report.format_result(result)


def test_no_false_alarm_over_50_seeds(student: sandbox.Loaded) -> None:
    for seed in range(50):
        result = worker.grade_modules([student], seed=seed)
        assert result.ok, (seed, _bad(result))


def test_normgrad_graded_as_a_student_passes() -> None:
    import normgrad.fast_layers
    import normgrad.layers

    mods = [
        sandbox.Loaded(m.__name__, m.__file__ or "", m)
        for m in (normgrad.layers, normgrad.fast_layers)
    ]
    result = worker.grade_modules(mods, seed=3)
    assert result.ok, _bad(result)
    names = {r.function for r in result.rows}
    fast = {"conv_forward_im2col", "conv_backward_strides", "max_pool_forward_reshape"}
    assert fast <= names and "spatial_groupnorm_backward" in names


def test_every_course_family_has_cases_that_the_reference_passes() -> None:
    import numpy as np

    for fam in families.FAMILIES:
        cases = fam.make_cases(np.random.default_rng(0))
        assert len(cases) >= 3, fam.name
        for case in cases:
            fam.reference(case)  # the reference accepts every case


def test_a_skeleton_that_returns_none_is_todo_not_pass(tmp_path: Path) -> None:
    stub = """
def batchnorm_forward(x, gamma, beta, bn_param):
    out, cache = None, None
    return out, cache
"""
    path = tmp_path / "student_todo.py"
    path.write_text("import numpy as np\n" + stub)
    result = worker.grade_modules([sandbox.load("student_todo", path, None)])
    assert not result.ok
    assert {r.status for r in result.rows if r.output.startswith("out")} == {"todo"}
