"""quiet_blas_spin: OpenBLAS's busy-wait is shortened only where it can still apply."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from normgrad._internal import threads


def _child(code: str, env: dict[str, str]) -> str:
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _env_without_timeout() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    return env


def test_the_command_sets_the_timeout_before_numpy_loads() -> None:
    code = "import os, normgrad.cli; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    assert _child(code, _env_without_timeout()) == threads.OPENBLAS_SPIN


def test_a_users_own_setting_is_kept() -> None:
    env = _env_without_timeout() | {"OPENBLAS_THREAD_TIMEOUT": "12"}
    code = "import os, normgrad.cli; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    assert _child(code, env) == "12"


def test_too_late_once_numpy_is_loaded() -> None:
    code = (
        "import os, numpy\n"
        "from normgrad._internal.threads import quiet_blas_spin\n"
        "print(quiet_blas_spin(), os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    )
    assert _child(code, _env_without_timeout()) == "False None"


def test_in_this_process_numpy_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy  # noqa: F401  (loaded here whatever ran before)

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    assert threads.quiet_blas_spin() is False
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
