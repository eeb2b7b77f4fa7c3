"""Experiments that show what normalization does (``normgrad experiment NAME``).

=============  ==========================================================================
``deep``       the course's deep net (5x100 ReLU, weight scale 2e-2): batch norm vs none
``weight-scale``  20 weight scales x {batch norm, none}, 7x50 ReLU
``batch-size`` batch norm (or layer norm) at batches 5, 10, 50 vs a batch-5 baseline
``paper-fig1`` Ioffe & Szegedy 2015, Figure 1: 3x100 sigmoid, accuracy and the drift of
               a sigmoid's input percentiles
``sync-bn``    4 ranks (mpiexec), per-rank batches 2, 4, 8: local vs synchronized batch
               norm vs one process on the whole batch
=============  ==========================================================================

Each writes PNGs and ``summary.json`` (``arms.<name>.final_acc`` and every
hyperparameter) into its output folder and returns the summary; see each module.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from normgrad._internal.threads import blas_limit
from normgrad.tools.experiments import batch_size, deep, paper_fig1, sync_bn, weight_scale
from normgrad.tools.experiments.common import Context

EXPERIMENTS: dict[str, ModuleType] = {
    deep.NAME: deep,
    weight_scale.NAME: weight_scale,
    batch_size.NAME: batch_size,
    paper_fig1.NAME: paper_fig1,
    sync_bn.NAME: sync_bn,
}

__all__ = ["EXPERIMENTS", "Context", "run", "table"]


def run(name: str, ctx: Context, norm: str | None = None) -> dict[str, Any]:
    """Run experiment ``name`` (a key of ``EXPERIMENTS``) and return its summary.

    Args:
        name: deep, weight-scale, batch-size, paper-fig1 or sync-bn.
        ctx: data set, output folder, scale (full, quick, tiny), seed, progress bars.
        norm: batch-size only: "batchnorm" (default) or "layernorm".

    Raises:
        ValueError: unknown name, or ``norm`` given to another experiment.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}.")
    if norm is not None and name != batch_size.NAME:
        raise ValueError(f"--norm applies to the batch-size experiment only, not {name!r}.")
    with blas_limit(1):
        if name == batch_size.NAME:
            return batch_size.run(ctx, norm or "batchnorm")
        return EXPERIMENTS[name].run(ctx)


def table(summary: dict[str, Any]) -> str:
    """The printed table of a summary returned by ``run``."""
    return EXPERIMENTS[summary["experiment"]].table(summary)
