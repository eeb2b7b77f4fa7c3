"""The command line: check's table and exit codes, bench's records, python -m."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from normgrad import cli
from normgrad.norms.spec import CheckCase
from normgrad.tools import checks


def test_check_prints_a_passing_table(capsys):
    assert cli.main(["check", "--layer", "batchnorm"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["layer", "route", "gradient", "rel", "error", "result"]
    for route in ("graph", "paper", "alt", "fused"):
        for grad in ("dx", "dgamma", "dbeta"):
            assert any(
                line.split()[:3] == ["batchnorm", route, grad] and line.split()[-1] == "pass"
                for line in out.splitlines()
            )
    assert "12 passed, 0 failed" in out


def test_check_exits_1_on_a_wrong_route(monkeypatch, capsys):
    good = checks.cases()[0]

    def wrong(dout, cache):
        dx, dgamma, dbeta = good.backward(dout, cache)
        return 1.01 * dx, dgamma, dbeta

    planted = CheckCase("planted", "wrong", good.forward, wrong, good.make_inputs)
    every = checks.cases()
    monkeypatch.setattr(checks, "cases", lambda: [*every, planted])
    assert cli.main(["check", "--layer", "planted"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 failed" in out


def test_check_unknown_layer_is_a_clear_error(capsys):
    assert cli.main(["check", "--layer", "nosuchnorm"]) == 2
    assert "unknown layer" in capsys.readouterr().err


def test_bench_writes_records(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code = cli.main(
        [
            "bench",
            "--shapes",
            "8x3",
            "--dtypes",
            "float64",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--json",
            str(path),
        ]
    )
    assert code == 0
    records = json.loads(path.read_text())
    keys = {(r["op"], r["impl"]) for r in records}
    for impl in ("graph", "paper", "alt", "fused", "torch"):
        assert ("batchnorm_backward", impl) in keys
        assert ("batchnorm_forward", impl) in keys
    for r in records:
        assert set(r) == {"op", "impl", "dtype", "shape", "median_s"}
        assert r["shape"] == [8, 3] and r["dtype"] == "float64" and r["median_s"] > 0
    assert "vs graph" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--shapes", "8by3"],
        ["--dtypes", "float16"],
        ["--shapes", "1x3"],
        ["--op", "conv", "--rounds", "3"],
    ],
)
def test_bench_rejects_bad_options(args, capsys):
    assert cli.main(["bench", *args]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_is_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "normgrad", "check", "--layer", "batchnorm"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "12 passed, 0 failed" in result.stdout


class _Clock:
    """A fake perf_counter: each call of ``work`` advances it by the next duration."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = iter(durations)
        self.calls = 0

    def perf_counter(self):
        return self.now

    def work(self):
        self.calls += 1
        self.now += next(self.durations)


def test_time_call_returns_the_median_after_the_warmup_calls(monkeypatch):
    from normgrad.tools import timing

    clock = _Clock([1.0, 1.0, 5.0, 1.0, 3.0])  # slow calls: warm-up ends after 2
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    assert timing.time_call(clock.work, warmup=2, repeats=3) == 3.0
    assert clock.calls == 5  # the two warm-up calls are not timed


def test_time_call_warms_up_for_a_minimum_time(monkeypatch):
    from normgrad.tools import timing

    fast = timing.WARMUP_S / 7.5  # the 8th warm-up call passes the minimum warm-up time
    clock = _Clock([fast] * 8 + [2.0, 7.0, 4.0])
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    assert timing.time_call(clock.work, warmup=2, repeats=3) == 4.0
    assert clock.calls == 11


def test_time_call_warms_up_at_most_warmup_max_calls(monkeypatch):
    from normgrad.tools import timing

    clock = _Clock([0.0] * timing.WARMUP_MAX + [1.0, 2.0, 3.0])  # calls that take no time
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(timing, "SAMPLE_MAX", 1)  # one call per sample
    assert timing.time_call(clock.work, warmup=2, repeats=3) == 2.0
    assert clock.calls == timing.WARMUP_MAX + 3


def test_time_call_repeats_short_calls_within_a_sample(monkeypatch):
    """Calls shorter than SAMPLE_S are timed SAMPLE_S / (the fastest warm-up call) at a
    time, and a sample's time is their mean: the median is over those means."""
    from normgrad.tools import timing

    monkeypatch.setattr(timing, "SAMPLE_S", 1.0)
    monkeypatch.setattr(timing, "WARMUP_S", 1.0)
    warm = [0.5, 0.25, 1.0]  # the fastest: 0.25, so 4 calls a sample
    timed = [0.25] * 4 + [0.75] * 4 + [0.5] * 4  # sample means 0.25, 0.75, 0.5
    clock = _Clock(warm + timed)
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    assert timing.time_call(clock.work, warmup=3, repeats=3) == 0.5
    assert clock.calls == 3 + 12


@pytest.mark.parametrize(
    "seconds, calls",
    [(1.0, 1), (2e-3, 1), (1.1e-3, 2), (3e-4, 7), (1e-6, 100), (0.0, 100), (math.inf, 1)],
)
def test_calls_per_sample(seconds, calls):
    from normgrad.tools import timing

    assert timing.calls_per_sample(seconds) == calls


def test_run_norm_idles_before_each_side(monkeypatch):
    """Every side's block starts after ``settle`` seconds idle (other pools' spinning
    workers go to sleep first), and the records keep every side's medians."""
    from normgrad.tools import bench, timing

    slept = []
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    monkeypatch.setattr(timing, "WARMUP_S", 0.0)
    records = bench.run_norm("layernorm", [(6, 5)], ["float64"], 1, 1, settle=0.125)
    impls = {r.impl for r in records if r.op == "layernorm_forward"}
    assert slept == [0.125] * len(impls) and {"reference", "fused", "torch"} <= impls


def test_alternate_takes_turns_after_each_idle(monkeypatch):
    from normgrad.tools import timing

    order = []
    monkeypatch.setattr(timing.time, "sleep", lambda s: order.append(("idle", s)))
    count = {"a": 0, "b": 0}

    def side(name):
        def block():
            order.append(name)
            count[name] += 1
            return (name, count[name])

        return block

    runs = timing.alternate({"a": side("a"), "b": side("b")}, 2, 0.25)
    assert order == [("idle", 0.25), "a", ("idle", 0.25), "b"] * 2
    assert runs == {"a": [("a", 1), ("a", 2)], "b": [("b", 1), ("b", 2)]}


def test_batchnorm_rounds_keep_each_records_median_round(monkeypatch):
    """Batch norm's every-route table takes turns too: each record is the median of its
    side's rounds, and each side's records keep their order."""
    from normgrad.tools import bench, timing

    monkeypatch.setattr(timing.time, "sleep", lambda s: None)
    records = bench.run([(8, 3)], ["float64"], warmup=0, repeats=1, with_torch=False, rounds=3)
    keys = [(r.op, r.impl) for r in records]
    assert keys == [(r.op, r.impl) for r in bench.run([(8, 3)], ["float64"], 0, 1, False)]
    rounds = [[bench.Record("op", "x", "float64", [1], t), bench.Record("op", "y", "float64",
              [1], 10 * t)] for t in (5.0, 1.0, 3.0)]  # fmt: skip
    assert [r.median_s for r in bench._median_records(rounds)] == [3.0, 30.0]
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        bench.run([(8, 3)], ["float64"], rounds=0)


def test_run_norm_rounds_alternate_the_sides_and_keep_the_median_round(monkeypatch):
    """With rounds=3 the sides' blocks run fused, torch, fused, torch, fused, torch (each
    after its idle), and each record is the median of its side's three rounds."""
    from normgrad.tools import bench, timing

    order = []
    times = {"fused": iter([(5.0, 50.0), (1.0, 10.0), (3.0, 30.0)]),
             "torch": iter([(2.0, 20.0), (9.0, 90.0), (4.0, 40.0)])}  # fmt: skip

    def side(impl):
        def timed(*args):
            order.append(impl)
            t_f, t_b = next(times[impl])
            return t_f, t_b, [np.zeros(3)]

        return timed

    monkeypatch.setattr(bench, "_ours", side("fused"))
    monkeypatch.setattr(bench, "_torch_norm", side("torch"))
    monkeypatch.setattr(timing.time, "sleep", lambda s: order.append("idle"))
    records = bench.run_norm(
        "layernorm", [(6, 5)], ["float64"], 1, 1, with_reference=False, rounds=3
    )
    assert order == ["idle", "fused", "idle", "torch"] * 3
    got = {(r.op, r.impl): r.median_s for r in records if r.impl != "numpy"}
    assert got == {
        ("layernorm_forward", "fused"): 3.0,
        ("layernorm_backward", "fused"): 30.0,
        ("layernorm_forward", "torch"): 4.0,
        ("layernorm_backward", "torch"): 40.0,
    }


def test_bench_rounds_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--op", "layernorm", "--rounds", "0"])
    assert exc.value.code == 2 and "--rounds" in capsys.readouterr().err


@pytest.mark.parametrize(
    "rounds, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError),
                      ("3", TypeError)],
)  # fmt: skip
def test_run_norm_rejects_bad_rounds(rounds, error):
    """``run_norm`` checks its own argument (the command line's --rounds 0 stops earlier,
    in argparse: see test_bench_rounds_must_be_positive)."""
    from normgrad.tools import bench

    with pytest.raises(error, match="rounds must be"):
        bench.run_norm("layernorm", [(6, 5)], ["float64"], 1, 1, rounds=rounds)


def test_bench_refuses_to_time_an_implementation_that_disagrees(monkeypatch):
    from normgrad.tools import bench

    wrong = dict(bench.ROUTES)
    good_paper = wrong["paper"]
    wrong["paper"] = lambda dout, cache: (
        1.001 * good_paper(dout, cache)[0],
        *good_paper(dout, cache)[1:],
    )
    monkeypatch.setattr(bench, "ROUTES", wrong)
    with pytest.raises(RuntimeError, match="paper disagrees with alt on dx"):
        bench.run([(8, 3)], ["float64"], warmup=0, repeats=1)
