"""Mistakes the catalog does not know, different in kind: the grader still fails the
function, names no catalog entry, and says which path (or what) is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from normgrad.tools.grade import report, sample, sandbox, worker
from normgrad.tools.grade.result import Finding, GradeResult

A, F = "batchnorm_backward_alt", "batchnorm_forward"
CLOSED = "(dout - (dbeta + xhat * dgamma) / N)"

# name -> (function, edits of the sample, what the diagnosis must say)
UNKNOWN: dict[str, tuple[str, dict, list[str]]] = {
    # a path scaled wrong: only the direct path's coefficient is off
    "direct_path_doubled": (
        A,
        {A: [("(dout - (dbeta", "(2 * dout - (dbeta")]},
        ["direct    WRONG", "mean      ok", "variance  ok", "twice"],
    ),
    # one of two 1/N missing: the mean path alone, by a factor N
    "mean_term_without_1_over_N": (
        A,
        {A: [(CLOSED, "(dout - dbeta - xhat * dgamma / N)")]},
        ["mean      WRONG", "variance  ok", "1/N missing"],
    ),
    # the variance term along x - mu = s * xhat: right direction, wrong size
    "variance_term_x_minus_mu": (
        A,
        {A: [("(dbeta + xhat * dgamma)", "(dbeta + (x - mu) * dgamma)")]},
        ["variance  WRONG", "mean      ok", "direct    ok"],
    ),
    # every sign flipped: a constant multiple
    "whole_gradient_negated": (
        A,
        {A: [("dx = gamma / std", "dx = -gamma / std")]},
        ["the sign is flipped"],
    ),
    # a mean over the features (copied from layer norm): no path makes it
    "mean_over_the_wrong_axis": (
        A,
        {A: [(CLOSED, "(dout - dout.mean(axis=1, keepdims=True) - xhat * dgamma / N)")]},
        ["other     WRONG", "outside every path"],
    ),
    # the formula is right, the arithmetic is float32
    "float32_arithmetic": (
        A,
        {A: [("return dx, dgamma, dbeta", "return dx.astype(np.float32), dgamma, dbeta")]},
        ["float32", "every path is right"],
    ),
    # a side effect: the forward subtracts the mean from the caller's x
    "forward_changes_its_input": (
        F,
        {F: [("xhat = (x - mu) / std\n", "x -= mu\n        xhat = x / std\n")]},
        ["in place"],
    ),
    # test mode normalizes by the batch
    "test_mode_uses_batch_statistics": (
        F,
        {
            F: [
                (
                    "xhat = (x - running_mean) / np.sqrt(running_var + eps)",
                    "xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)",
                )
            ]
        },
        ["running statistics"],
    ),
    # dropout that is not inverted
    "dropout_not_inverted": (
        "dropout_forward",
        {
            "dropout_forward": [
                ("mask = (np.random.rand(*x.shape) < p) / p", "mask = np.random.rand(*x.shape) < p")
            ]
        },
        ["not inverted"],
    ),
    # a loss gradient that is not a mean
    "softmax_dx_not_averaged": (
        "softmax_loss",
        {"softmax_loss": [("    dx /= N\n", "")]},
        ["N times too large"],
    ),
}


def grade_text(tmp_path: Path, text: str, select: str) -> GradeResult:
    path = tmp_path / "student_unknown.py"
    path.write_text(text)
    return worker.grade_modules([sandbox.load("student_unknown", path, None)], select=select)


def _text(f: Finding) -> str:
    return "\n".join([f.summary, *f.paths, *f.invariants, *f.hints, *f.counterexample])


@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_unknown_mistake_fails_and_is_diagnosed(name: str, tmp_path: Path) -> None:
    function, edits, needles = UNKNOWN[name]
    result = grade_text(tmp_path, sample.render(edits=edits), function)
    bad = [r for r in result.rows if not r.ok]
    assert bad and all(r.function == function for r in bad)
    findings = [f for f in result.findings if f.function == function]
    assert findings, report.format_result(result)
    assert not any(f.mistakes for f in findings)  # not a catalog mistake
    said = "\n".join(_text(f) for f in findings) + "\n" + "\n".join(r.note for r in bad)
    for needle in needles:
        assert needle in said, (needle, said)


def test_the_report_of_an_unknown_mistake_reads_for_a_student(tmp_path: Path) -> None:
    function, edits, _ = UNKNOWN["mean_term_without_1_over_N"]
    text = report.format_result(grade_text(tmp_path, sample.render(edits=edits), function))
    assert "FAIL" in text and "not in the catalog" in text
    assert "=> the mean path is wrong" in text and "smallest counterexample" in text
    assert "correct: dx = " in text
