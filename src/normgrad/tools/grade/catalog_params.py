"""The catalog's mistakes outside dx: dgamma, dbeta, layer-specific slips, the forward pass
and the running statistics.

Same form as ``catalog.DX`` (``mutants.Mistake``). dgamma and dbeta sum over the axes
gamma and beta were broadcast along (``docs/derivation.md``, nodes 7 and 8 of section 2,
and section 9.1.2); the layer-specific entries are the slips of copying batch norm into
layer norm (section 9.1.3) and of miscounting spatial batch norm's values (section 9.3);
the forward's entries break section 1's definitions; the running statistics follow the
course's convention of section 1.1. ``normgrad.symbolic.mistakes`` refutes the ones with
no formula exactly.
"""

from __future__ import annotations

import numpy as np

from normgrad.tools.grade import mutants as mu
from normgrad.tools.grade.mutants import Mistake

PARAMS: tuple[Mistake, ...] = (
    Mistake(
        "dgamma_with_x",
        "dgamma sums dout * x where dout * xhat belongs",
        "y = gamma * xhat + beta: gamma multiplies the normalized input",
        "section 2, node 7",
        mu.S2,
        mu.CENTRED,
        "dgamma",
        lambda v: [v.pfold(v.dout * v.x)],
        {"batch": ("dgamma = sum(dy*x)",), "layer": ("dgamma = dy*x",)},
    ),
    Mistake(
        "dgamma_wrong_axis",
        "dgamma is summed over the features (axis=1) instead of the batch (axis=0)",
        "gamma is broadcast over the batch, so its gradient sums over the batch axis",
        "section 2, node 7; section 9.1.2",
        mu.S2,
        mu.ND,
        "dgamma",
        lambda v: [np.sum(v.dout * v.xhat, axis=1)],
    ),
    Mistake(
        "dgamma_not_summed",
        "dgamma is dout * xhat, not summed over the batch",
        "gamma is shared by every sample: its gradient adds up every sample's share",
        "section 2, node 7",
        mu.S2,
        mu.ND,
        "dgamma",
        lambda v: [v.dout * v.xhat],
    ),
    Mistake(
        "dbeta_wrong_axis",
        "dbeta is summed over the features (axis=1) instead of the batch (axis=0)",
        "beta is broadcast over the batch, so its gradient sums over the batch axis",
        "section 2, node 8",
        mu.S2,
        mu.ND,
        "dbeta",
        lambda v: [np.sum(v.dout, axis=1)],
    ),
    Mistake(
        "dbeta_not_summed",
        "dbeta is dout itself, not summed over the batch",
        "beta is shared by every sample: its gradient adds up every sample's share",
        "section 2, node 8",
        mu.S2,
        mu.ND,
        "dbeta",
        lambda v: [v.dout.copy()],
    ),
    Mistake(
        "layer_batch_closed_form",
        "layer norm's dx copies batch norm's form in dgamma and dbeta",
        "gamma varies inside a layer-norm group and dgamma sums across groups: Step 1 fails",
        "section 9.1.3",
        mu.S9,
        ("layer",),
        "dx",
        lambda v: [
            v.gamma / v.std * (v.dout - (v.pfold(v.dout) + v.xhat * v.pfold(v.dout * v.xhat)) / v.M)
        ],
    ),
    Mistake(
        "layer_batch_axis",
        "layer norm's backward takes its means over the batch (axis=0), as batch norm does",
        "layer norm's statistics are per sample, over the features (axis=1)",
        "section 9.2",
        mu.S92,
        ("layer",),
        "dx",
        lambda v: [(v.dxhat - v.dxhat.mean(0) - v.xhat * (v.dxhat * v.xhat).mean(0)) / v.std],
    ),
    Mistake(
        "spatial_count_batch_only",
        "spatial batch norm divides by N where each channel has N*H*W values",
        "the statistics run over (N, H, W): M = N*H*W values per channel",
        "section 9.3",
        mu.S93,
        ("spatial",),
        "dx",
        lambda v: [mu.closed(v, n=float(v.batch_size))],
    ),
    Mistake(
        "forward_unbiased_var",
        "the forward normalizes by the unbiased variance (N - 1)",
        "batch norm (and the course) normalize by the biased variance, 1/N",
        "section 1.1, biased variance",
        mu.S1,
        ("batch", "spatial", "layer"),
        "out",
        lambda v: [mu.out(v, (v.x - v.mu) / np.sqrt(v.var * v.M / (v.M - 1.0) + v.eps))],
        mu.both("y = gamma*(x - mu)/sqrt(var*N/(N - 1) + eps) + beta"),
    ),
    Mistake(
        "forward_eps_ignored",
        "the forward uses eps = 1e-5 whatever the param dict says",
        "eps is read from bn_param / ln_param / gn_param (default 1e-5)",
        "section 1, notation (eps)",
        "#1-notation-and-conventions",
        mu.CENTRED,
        "out",
        lambda v: [mu.out(v, (v.x - v.mu) / np.sqrt(v.var + 1e-5))],
        mu.both("y = gamma*(x - mu)/sqrt(var + 0.00001) + beta"),
    ),
    Mistake(
        "forward_eps_dropped",
        "the forward divides by sqrt(var) with no eps",
        "xhat = (x - mu)/sqrt(var + eps)",
        "section 1, notation",
        "#1-notation-and-conventions",
        mu.CENTRED,
        "out",
        lambda v: [mu.out(v, (v.x - v.mu) / np.sqrt(v.var))],
        mu.both("y = gamma*(x - mu)/sqrt(var) + beta"),
    ),
    Mistake(
        "running_momentum_swapped",
        "the running average weighs the new batch by momentum (PyTorch's convention)",
        "the course's momentum weighs the OLD value: momentum*running + (1-momentum)*batch",
        "section 1.1, momentum",
        mu.S1,
        mu.BATCH,
        "running_mean",
        lambda v: mu.running(v, "running_mean", lambda m, old, new: (1 - m) * old + m * new),
    ),
    Mistake(
        "running_var_unbiased",
        "running_var stores the unbiased variance (N - 1)",
        "the course keeps the biased variance in running_var too",
        "section 1.1, biased variance",
        mu.S1,
        mu.BATCH,
        "running_var",
        lambda v: mu.running(
            v, "running_var", lambda m, old, new: m * old + (1 - m) * new * v.M / (v.M - 1.0)
        ),
    ),
)
