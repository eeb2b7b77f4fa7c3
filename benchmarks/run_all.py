"""Every benchmark of benchmarks/README.md, in one command, into one markdown report.

    python benchmarks/run_all.py [--out results] [--quick]

Runs, each in a process of its own (so none inherits another's threads or caches):

1. ``bench_norms.py`` on 1 and 2 threads: the "Done when" grid, fused vs PyTorch;
2. ``bench_batchnorm.py`` (``normgrad bench``) at (100, 500) and (4096, 1024): every
   batch-norm route, the fused kernel and PyTorch, on 1 and 2 threads;
3. ``bench_overhead.py``: validation and bookkeeping per call, compile times;
4. ``bench_fc_train.py`` and ``bench_cnn_train.py`` on 1 and 2 threads, with profiles.

Writes every JSON record and each script's own output into ``--out`` (default
``results/``, which git ignores) and the whole report to ``--out/report.md``. Run it on
a quiet machine: every number is a median, but a busy machine moves medians too (ratios
within one run are the robust reading). ``--quick`` runs fewer repeats, for a smoke test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(args: list[str], log: Path) -> str:
    print("$", " ".join(args), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=HERE.parent)
    text = "\n".join(line for line in r.stdout.splitlines() if "USDT:" not in line)
    log.write_text(text + ("\n" + r.stderr if r.returncode else ""))
    if r.returncode:
        raise RuntimeError(f"{args[0]} failed:\n{r.stderr[-2000:]}")
    print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--quick", action="store_true", help="fewer repeats: a smoke test")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reps = ["--repeats", "3", "--warmup", "1"] if args.quick else []
    sections = []
    few = ["--repeats", "3"] if args.quick else []
    for t in (1, 2):
        cmd = [str(HERE / "bench_norms.py"), "--threads", str(t)]
        text = _run([*cmd, "--json", str(out / f"norms_{t}.json"), *reps], out / f"norms_{t}.txt")
        sections.append(f"## Every normalization, fused vs PyTorch, {t} thread(s)\n\n{text}")
    for t in (1, 2):
        cmd = [str(HERE / "bench_batchnorm.py"), "--shapes", "100x500,4096x1024"]
        cmd += ["--threads", str(t), "--json", str(out / f"batchnorm_{t}.json")]
        text = _run([*cmd, *(few or ["--repeats", "15"])], out / f"batchnorm_{t}.txt")
        sections.append(f"## Batch norm: every route, {t} thread(s)\n\n```\n{text}\n```")
    cmd = [str(HERE / "bench_overhead.py"), "--json", str(out / "overhead.json")]
    text = _run(cmd, out / "overhead.txt")
    sections.append(f"## Per-call overhead and compile time\n\n```\n{text}\n```")
    for script in ("bench_fc_train.py", "bench_cnn_train.py"):
        for t in (1, 2):
            name = script.removesuffix(".py").removeprefix("bench_")
            cmd = [str(HERE / script), "--threads", str(t), "--json", str(out / f"{name}_{t}.json")]
            text = _run([*cmd, *few], out / f"{name}_{t}.txt")
            sections.append(f"## Training step: {name}, {t} thread(s)\n\n```\n{text}\n```")
    report = "# normgrad benchmarks\n\n" + "\n\n".join(sections) + "\n"
    (out / "report.md").write_text(report)
    print(f"wrote {out / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
