"""Batch-norm forward and backward timings: every route, and PyTorch, in one process.

    python benchmarks/bench_batchnorm.py [--shapes 4096x1024] [--dtypes float64] [--json F]

The same as ``normgrad bench``; the results recorded in benchmarks/README.md came from it.
"""

from __future__ import annotations

import sys

from normgrad.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
