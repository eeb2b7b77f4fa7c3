"""A student's crash, hang, input(), sys.exit() or os._exit() is reported, never fatal to the
grader: the sandbox in-process, then a few end-to-end runs of `normgrad grade` (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from normgrad.tools.grade import GradeResult, sample, sandbox, worker
from normgrad.tools.grade.sandbox import StudentError


def test_a_call_past_its_limit_is_reported_not_hung() -> None:
    def spin() -> None:
        while True:
            pass

    with pytest.raises(StudentError, match="did not finish within 0.2 s"):
        sandbox.call(spin, [], 0.2, ())


def test_exit_and_exceptions_in_a_call_say_what_and_where() -> None:
    with pytest.raises(StudentError, match=r"called sys.exit\(3\)"):
        sandbox.call(sys.exit, [3], None, ())

    def boom(x: int) -> None:
        raise ValueError(f"bad {x}")

    with pytest.raises(StudentError, match=r"ValueError: bad 2 \(test_grade_sandbox.py, line"):
        sandbox.call(boom, [2], None, ())


def test_input_and_prints_are_absorbed(capsys: pytest.CaptureFixture[str]) -> None:
    def chatty() -> str:
        print("hello from the student")
        return input("name? ")

    before = sandbox.LOG.inputs
    assert sandbox.call(chatty, [], None, ()) == ""
    assert sandbox.LOG.inputs == before + 1 and "hello from the student" in sandbox.LOG.printed
    assert capsys.readouterr().out == ""


def test_a_script_style_top_level_keeps_what_it_defined(tmp_path: Path) -> None:
    f = tmp_path / "student_script.py"
    f.write_text(
        sample.render(only=("relu_forward", "relu_backward"))
        + "\nname = input('your name: ')\nprint('hi', name)\nimport sys\nsys.exit(0)\n"
        + "def affine_forward(x, w, b):\n    return 1 / 0\n"
    )
    loaded = sandbox.load("student_script", f, None)
    assert "sys.exit(0)" in loaded.error and "__main__" in loaded.error
    result = worker.grade_modules([loaded])
    assert {r.function for r in result.rows} == {"relu_forward", "relu_backward"}
    assert all(r.ok for r in result.rows)
    assert any("input()" in n for n in result.notes)
    assert any("sys.exit" in e for e in result.import_errors) and not result.ok


def test_a_raising_forward_is_an_error_row_and_its_backward_is_not_run(tmp_path: Path) -> None:
    f = tmp_path / "student_raise.py"
    bad = "def relu_forward(x):\n    raise NotImplementedError('TODO')\n"
    f.write_text(sample.render(only=("relu_backward",)) + bad)
    result = worker.grade_modules([sandbox.load("student_raise", f, None)])
    row = next(r for r in result.rows if r.function == "relu_forward")
    assert row.status == "ERROR" and "NotImplementedError: TODO" in row.note
    assert not any(r.function == "relu_backward" and r.ok for r in result.rows)


def test_odd_outputs_are_rows_not_crashes(tmp_path: Path) -> None:
    odd = """
import numpy as np
def relu_forward(x):
    return [list(r) for r in np.maximum(0, x).reshape(len(x), -1)], (lambda: x)
def relu_backward(dout, cache):
    return "dx"
def dropout_forward(x, dropout_param):
    return x[:1], None
def dropout_backward(dout, cache):
    return dout
def softmax_loss(x, y):
    return None
"""
    f = tmp_path / "student_odd.py"
    f.write_text(odd)
    result = worker.grade_modules([sandbox.load("student_odd", f, None)])
    status = {(r.function, r.output): r.status for r in result.rows}
    assert status[("relu_backward", "dx")] == "ERROR"  # "dx" is not numbers
    assert status[("dropout_forward", "out")] == "FAIL"  # wrong shape
    assert status[("softmax_loss", "loss")] == "ERROR"  # not (loss, dx)
    assert not result.ok and all(s in ("pass", "FAIL", "ERROR", "todo") for s in status.values())


def test_result_json_round_trip() -> None:
    from normgrad.tools.grade.result import Finding, Mistake, Row

    r = GradeResult("x.py", ["x.py"], [Row("f", "out", 1, 2, float("nan"), "FAIL", "n")])
    r.findings.append(Finding("f", "out", "s", [Mistake("k", "t", "w", "p", 0.0)], ["a"]))
    back = GradeResult.from_json(r.to_json())
    assert back.rows[0].status == "FAIL" and back.findings[0].mistakes[0].key == "k"
    assert back.rows[0].worst != back.rows[0].worst  # nan survives
    with pytest.raises(ValueError, match="not a grade result"):
        GradeResult.from_json('{"rows": 3}')


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "normgrad", "grade", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow
def test_end_to_end_a_course_folder_with_the_seeds_slip(tmp_path: Path) -> None:
    pkg = tmp_path / "cs231n"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    slip = {"batchnorm_backward_alt": [("(dbeta + xhat * dgamma)", "(dbeta + x * dgamma)")]}
    (pkg / "layers.py").write_text(sample.render(edits=slip))
    (pkg / "fast_layers.py").write_text(sample.FAST_LAYERS)
    r = _run("cs231n", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "mistake: x_for_xhat" in r.stdout and "docs/derivation.md#4-route-3" in r.stdout
    assert "conv_backward_fast" in r.stdout  # fast_layers, with its relative import
    assert not list(pkg.glob("__pycache__"))  # nothing written into the student's folder
    ok = _run("cs231n/layers.py:batchnorm_backward", cwd=tmp_path)
    assert ok.returncode == 0 and "every function matches" in ok.stdout


@pytest.mark.slow
def test_end_to_end_hangs_and_hard_exits_are_reported(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(
        sample.render(only=("relu_forward",)) + "while True:\n    pass\n"
    )
    r = _run("hang.py", "--timeout", "4", cwd=tmp_path)
    assert r.returncode == 1 and "importing hang.py stopped: did not finish within 1 s" in r.stdout
    (tmp_path / "die.py").write_text(
        sample.render(only=("relu_forward",)) + "import os\nos._exit(7)\n"
    )
    r = _run("die.py", cwd=tmp_path)
    assert r.returncode == 1 and "ended without a result (exit status 7)" in r.stdout
    slow = "def relu_backward(dout, cache):\n    while True:\n        pass\n"
    (tmp_path / "slow.py").write_text(sample.render(only=("relu_forward",)) + slow)
    r = _run("slow.py", "--timeout", "8", cwd=tmp_path)
    assert r.returncode == 1 and "did not finish within 2 s" in r.stdout
    assert "relu_forward" in r.stdout and "pass" in r.stdout  # the rest was graded
