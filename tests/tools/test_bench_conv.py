"""The conv benchmark runs and reports agreement; no timing is asserted here."""

from __future__ import annotations

import json

import pytest

from normgrad.cli import build_parser, main
from normgrad.tools import bench_conv

pytestmark = pytest.mark.slow  # end-to-end runs: `make test-fast` skips them


def test_run_small_problem():
    records, agree = bench_conv.run(
        x_shape=(2, 3, 8, 8),
        filters=4,
        warmup=0,
        repeats=1,
        naive_warmup=0,
        naive_repeats=1,
        with_torch=False,
    )
    assert agree < 1e-9
    assert {(r.op, r.impl) for r in records} == {
        (op, impl)
        for op in ("conv_forward", "conv_backward", "conv_forward_backward")
        for impl in ("naive", "fast")
    }
    assert all(r.median_s > 0 for r in records)
    report = bench_conv.format_report(records, agree)
    assert "vs naive" in report and "fast" in report


def test_cli_op_option(tmp_path, capsys, monkeypatch):
    assert build_parser().parse_args(["bench"]).op == "batchnorm"
    small = dict(x_shape=(2, 3, 8, 8), filters=4, naive_warmup=0, naive_repeats=1)
    real_run = bench_conv.run
    monkeypatch.setattr(bench_conv, "run", lambda **kw: real_run(**{**kw, **small}))
    out = tmp_path / "conv.json"
    assert (
        main(
            [
                "bench",
                "--op",
                "conv",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--no-torch",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert "conv_forward_backward" in capsys.readouterr().out
    assert {r["impl"] for r in json.loads(out.read_text())} == {"naive", "fast"}
