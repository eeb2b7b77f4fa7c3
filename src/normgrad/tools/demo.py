"""The demo: batch norm's routes checked against finite differences, then trained.

``make demo`` runs it (``normgrad demo``): the gradient checks of batch norm's three
routes (and the fused kernel, with numba) and layer norm, then the course's deep-network
experiment on the embedded digits, quick, batch norm against no normalization, with its
plot written to ``OUT/demo.png``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from normgrad._internal.threads import blas_limit
from normgrad.tools import checks
from normgrad.tools.experiments import Context, deep


def run(out: Path, seed: int = 0, progress: bool = True, tiny: bool = False) -> int:
    """Check, then train; 0 on success, 1 (and no training) if a gradient check fails."""
    start = time.perf_counter()
    print(
        "normgrad demo\n\n1. Batch norm's backward routes and layer norm, checked against "
        "finite differences\n   (float64, random upstream gradient):\n"
    )
    text, ok = checks.report(checks.run_checks(["batchnorm", "layernorm"], seed=seed), 1e-8)
    print(text)
    if not ok:
        print("normgrad demo: the gradient check FAILED; not training.", file=sys.stderr)
        return 1

    ctx = Context(
        data="digits",
        out=out / "demo",
        scale="tiny" if tiny else "quick",
        seed=seed,
        progress=progress,
    )
    print(
        "\n2. The course's deep-network experiment on the embedded digits (quick): "
        "5 hidden layers of 100,\n   weight scale 2e-2, Adam 1e-3, batch 50, 1000 "
        "training images; batch norm vs baseline:\n",
        flush=True,
    )
    with blas_limit(1):
        summary = deep.run(ctx, figure=out / "demo.png")
    print(deep.table(summary))
    print(f"\n{summary['conclusion']}")
    print(f"\nPlot: {out / 'demo.png'}   (numbers: {ctx.out / 'summary.json'})")
    print(
        f"Done in {time.perf_counter() - start:.1f} s. Next: normgrad experiment paper-fig1 --quick"
    )
    return 0
