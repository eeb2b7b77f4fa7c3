"""One rank of tests/distributed/test_mpi.py's layer check (mpiexec -n P).

For several unequal splits of one batch over this job's P ranks (a rank with one row,
ranks with none), every rank runs sync batch norm on its shard and compares with batch
norm on the concatenated batch, which it computes itself: output, dx, the summed
dgamma and dbeta, the running statistics and test mode, in float64; then spatial
batch norm. Rank 0 prints one JSON line: the worst relative errors, and whether the
running statistics had the same bits on every rank.
"""

import hashlib
import json
import warnings

import numpy as np
from mpi4py import MPI

from normgrad.distributed import faults, world
from normgrad.gradient_check import norm_rel_error
from normgrad.norms import batch, spatial, sync
from normgrad.norms.running import StaleRunningStatsWarning

comm = MPI.COMM_WORLD
P, r = comm.Get_size(), comm.Get_rank()
SPLITS = {2: [(1, 6), (0, 5)], 3: [(1, 0, 6), (2, 1, 1)], 4: [(1, 0, 5, 2), (0, 1, 1, 0)]}[P]


def split(a, rows):
    edges = np.cumsum((0, *rows))
    return a[edges[r] : edges[r + 1]]


def layer_errors(rows, which_comm, seed):
    rng = np.random.default_rng(seed)
    N, D = sum(rows), 5
    x = 5 * rng.standard_normal((N, D)) + 12
    gamma, beta, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D))
    base = {"mode": "train", "momentum": 0.8, "unbiased_running_var": True}
    want_p = dict(base)
    want, cache = batch.batchnorm_forward(x, gamma, beta, want_p)
    wdx, wdg, wdb = batch.batchnorm_backward_alt(dout, cache)
    param = dict(base)
    out, c = sync.sync_batchnorm_forward(split(x, rows), gamma, beta, param, comm=which_comm)
    dx, dg, db = sync.sync_batchnorm_backward(split(dout, rows), c)
    errs = {
        "out": norm_rel_error(out, split(want, rows)) if out.size else 0.0,
        "dx": norm_rel_error(dx, split(wdx, rows)) if dx.size else 0.0,
        "dgamma": norm_rel_error(comm.allreduce(dg), wdg),
        "dbeta": norm_rel_error(comm.allreduce(db), wdb),
        "running_mean": norm_rel_error(param["running_mean"], want_p["running_mean"]),
        "running_var": norm_rel_error(param["running_var"], want_p["running_var"]),
    }
    digest = hashlib.sha256(param["running_mean"].tobytes() + param["running_var"].tobytes())
    same = len(set(comm.allgather(digest.hexdigest()))) == 1
    test_p = {**param, "mode": "test"}
    t_out, t_cache = sync.sync_batchnorm_forward(
        split(x, rows), gamma, beta, test_p, comm=which_comm
    )
    t_dx = sync.sync_batchnorm_backward(split(dout, rows), t_cache)[0]
    w_out, w_cache = batch.batchnorm_forward(x, gamma, beta, {**want_p, "mode": "test"})
    w_dx = batch.batchnorm_backward_alt(dout, w_cache)[0]
    errs["test_out"] = norm_rel_error(t_out, split(w_out, rows)) if t_out.size else 0.0
    errs["test_dx"] = norm_rel_error(t_dx, split(w_dx, rows)) if t_dx.size else 0.0
    return errs, same


def spatial_errors(rows):
    rng = np.random.default_rng(11)
    x = 3 * rng.standard_normal((sum(rows), 2, 2, 3)) + 4
    gamma, beta, dout = rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(x.shape)
    want, cache = spatial.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    wdx, wdg, wdb = spatial.spatial_batchnorm_backward(dout, cache)
    out, c = sync.sync_spatial_batchnorm_forward(split(x, rows), gamma, beta, {"mode": "train"})
    dx, dg, db = sync.sync_spatial_batchnorm_backward(split(dout, rows), c)
    return {
        "spatial_out": norm_rel_error(out, split(want, rows)) if out.size else 0.0,
        "spatial_dx": norm_rel_error(dx, split(wdx, rows)) if dx.size else 0.0,
        "spatial_dgamma": norm_rel_error(comm.allreduce(dg), wdg),
        "spatial_dbeta": norm_rel_error(comm.allreduce(db), wdb),
    }


def extreme_errors(rows):
    """|x| near 2**600 with eps = 0 and 2**-600: the rescaled path (three more all-reduces,
    the MAX and SPREAD merges) against the same problem at ordinary scale."""
    rng = np.random.default_rng(5)
    N, D = sum(rows), 3
    x = 5 * rng.standard_normal((N, D)) + 12
    gamma, beta, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D))
    ref, c = sync.sync_batchnorm_forward(split(x, rows), gamma, beta, {"mode": "train", "eps": 0.0})
    ref_dx = sync.sync_batchnorm_backward(split(dout, rows), c)[0]
    worst = 0.0
    for k in (600, -600):
        xk = np.ldexp(split(x, rows), k)
        with warnings.catch_warnings():  # at 2**600 the variance overflows: stats are kept
            warnings.simplefilter("ignore", StaleRunningStatsWarning)
            out, c = sync.sync_batchnorm_forward(xk, gamma, beta, {"mode": "train", "eps": 0.0})
        dx = np.ldexp(sync.sync_batchnorm_backward(split(dout, rows), c)[0], k)
        if out.size:
            worst = max(worst, norm_rel_error(out, ref), norm_rel_error(dx, ref_dx))
    return {"extreme": worst}


def main():
    worst, same_bits = {}, True
    for i, rows in enumerate(SPLITS):
        # the default world, an mpi4py communicator as it comes, and the wrapper itself
        for which in (None, comm, world()):
            errs, same = layer_errors(rows, which, seed=i)
            same_bits &= same
            for k, v in errs.items():
                worst[k] = max(worst.get(k, 0.0), v)
    for k, v in {**spatial_errors(SPLITS[0]), **extreme_errors(SPLITS[0])}.items():
        worst[k] = max(worst.get(k, 0.0), v)
    worst = {k: comm.allreduce(v, op=MPI.MAX) for k, v in worst.items()}
    same_bits = all(comm.allgather(same_bits))
    if r == 0:
        print(json.dumps({"size": P, "splits": SPLITS, "worst": worst, "same_bits": same_bits}))
    return 0


faults.guard(main)
