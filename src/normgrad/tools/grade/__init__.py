"""``normgrad grade PATH``: grade a student's course layers against normgrad, and say why.

The student's code runs only in a subprocess with a time limit (``runner`` starts
``worker``, which imports through ``sandbox``); ``targets`` reads PATH without running
it. Each course function (``families``) is run on seeded cases (``cases``) and compared
with normgrad's reference (``compare``; dropout by its rules, ``dropout_judge``). A
failing output is diagnosed (``diagnose``) three ways: against the catalog of known
mistakes (``catalog``, on the group view of ``views``), by the invariants and the path
fit (``invariants``), and by the smallest counterexample (``counterexample``).
``report`` prints the result (``result``). ``sample`` is a correct student solution, the
fixture of the grader's own tests.
"""

from __future__ import annotations

from normgrad.tools.grade.report import format_result
from normgrad.tools.grade.result import GradeResult
from normgrad.tools.grade.runner import run
from normgrad.tools.grade.targets import Target, resolve

__all__ = ["GradeResult", "Target", "format_result", "resolve", "run"]
