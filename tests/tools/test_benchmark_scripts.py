"""The training benchmarks still run: one tiny round of each, profile included.

They are scripts (``benchmarks/``), not package code; this keeps them from rotting
between the sessions that run them in full. It times nothing that is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def benchmarks_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.mark.slow
@pytest.mark.parametrize("script", ["bench_fc_train", "bench_cnn_train"])
def test_one_tiny_round_reports_every_side(benchmarks_on_path: None, script: str) -> None:
    import importlib

    module = importlib.import_module(script)
    try:
        r = module.run(steps=1, repeats=1, warmup=1, threads=1, profile=True)
    finally:
        sys.modules.pop(script, None)
    for side in ("normgrad", "reference", "torch"):
        assert r[side]["ms_per_step"] > 0
    assert r["normgrad"]["throughput_vs_torch"] > 0
    profile = r["profile_ms_per_step"]
    assert set(profile) == {"normgrad", "reference", "torch"}
    assert profile["normgrad"]["total"] > 0 and "adam update" in profile["normgrad"]
