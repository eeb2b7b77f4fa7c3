"""Suite-wide: which tests ``make test-fast`` leaves out.

Besides the tests marked ``slow`` one by one (subprocess runs, notebooks, whole
trainings), every test of two folders counts as slow: ``tests/symbolic`` (exact SymPy
proofs, seconds each) and ``tests/distributed`` (MPI jobs of 2 to 4 ranks). ``make test``
runs them all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_FOLDERS = ("symbolic", "distributed")
_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(_ROOT).parts
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
