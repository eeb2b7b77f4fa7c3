"""Synchronized batch normalization: batch norm over a batch split across ranks.

Ioffe & Szegedy 2015, arXiv:1502.03167 (batch norm); the shards are combined as in
Chan, Golub & LeVeque 1979, "Updating formulae and a pairwise algorithm for computing
sample variances". In data-parallel training each of P ranks holds a shard x_r:
(n_r, D) of one minibatch of N = sum_r n_r rows. Local batch norm normalizes each shard
by its own statistics; this layer normalizes every shard by the statistics of the whole
batch, so the P ranks together compute ``batchnorm_forward`` on the concatenated batch,
and their backward passes together its gradient (exactly in exact arithmetic; to
rounding in floating point).

Forward, train mode, per feature d (one collective)::

    rank r:  n_r, mean_r = 1/n_r sum_i x_i, M2_r = sum_i (x_i - mean_r)^2      # (D,) each
    all:     (N, mu, M2) = Chan's merge of every rank's (n_r, mean_r, M2_r)   # one all-reduce
             merge(a, b): n = n_a + n_b,  delta = mean_b - mean_a,
                          mean = mean_a + delta * n_b / n,
                          M2   = M2_a + M2_b + delta^2 * n_a * n_b / n
    rank r:  var = M2 / N;  xhat = (x_r - mu) / sqrt(var + eps);  y = gamma * xhat + beta

Backward, train mode (one collective)::

    rank r:  (dbeta_r, dgamma_r) = (sum_i dout_i, sum_i dout_i * xhat_i)         # (D,) each
    all:     (dbeta, dgamma) = sum over ranks of (dbeta_r, dgamma_r)           # one all-reduce
    rank r:  dx = gamma / sqrt(var + eps) * (dout - (dbeta + xhat * dgamma) / N)

that is, batch norm's closed form (``batchnorm_backward_alt``) with the two per-feature
sums taken over the whole batch and N the whole batch's rows (docs/derivation.md,
section 9.10). The layer returns this rank's (dx, dgamma_r, dbeta_r): dx for its own
rows, and its *contributions* to dgamma and dbeta, which sum over the ranks to the
whole-batch gradient, as every other parameter gradient does in data-parallel training.

- **Unequal shards**, including ranks with 1 row or none, as long as N >= 2 (else a
  ``ValueError`` on every rank, after the collective, so no rank is left waiting).
- **Running statistics** are updated from the whole batch's mu and var over N rows, so
  they are the same, bit for bit, on every rank (every rank gets the same reduction).
- **Test mode** uses the running statistics and communicates nothing.
- **One rank** (no MPI, or a world of size 1): bit for bit ``batchnorm_forward`` and
  ``batchnorm_backward_alt``; ranks with no rows leave the others' merge unchanged.

The communicator is any object with ``rank``, ``size`` and ``allreduce(buf, op)``
(``Communicator``): ``comm=None`` is ``normgrad.distributed.world()`` (MPI's
COMM_WORLD when the process was started by mpiexec, else one local rank), an mpi4py
communicator is wrapped as it comes, and ``normgrad.distributed.simulated`` runs P
ranks as threads of one process for the tests, the checks and the proofs' code tie.

Numerics: batch norm's contract (``norms.core``). Statistics in float64, merged in
float64 (float16/32/64 input; a longdouble input's statistics travel as float64). The
merge is accurate to a relative O(eps * |mean| / std) in the variance, the shards' means
carrying an absolute rounding error of ulp(mean) (2e-9 at a mean 1e8 times the spread;
1e-16 at the course's 5 randn + 12): far below float32's resolution, so float32 data
with a mean 1e6 times its spread still normalizes to within 1e-3. One process is batch
norm's two-pass, exactly.
A feature whose whole-batch var + eps would over- or underflow (|x| up to 1.8e308,
spreads far below 1e-154, eps = 0) is solved on an exact power-of-two rescaling, with
three more all-reduces in that step only (the largest |x|; the mean and a spread bound
of x / 2**k0; the rescaled sum of squares), decided identically on every rank from the
first one. NaN or inf in a feature gives NaN there (and its running statistics are
kept, with ``StaleRunningStatsWarning``), never a wrong finite answer.

Errors: batch norm's (``batch.parse_inputs``, the same messages), raised before
``bn_param`` is touched; a rank's bad input raises on that rank before any collective
(under ``normgrad.distributed.faults`` the job then aborts, showing that rank's error).
Ranks whose D differ send records of different sizes: MPICH refuses that ("Message
truncated", an ``MPI.Exception`` on a rank that receives more than it expects, which
ends the job under ``faults``), the simulated world with a ``ValueError`` on every rank;
``DistributedSolver`` checks the model's shapes on every rank before its first step.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import batch, core, spatial, spec
from normgrad.norms.sync_comm import (
    CHAN,
    MAX,
    SPREAD,
    SUM,
    Communicator,
    LocalComm,
    resolve_comm,
)

F64 = np.float64


# ---- forward ---------------------------------------------------------------------------


class SyncBatchNormCache(NamedTuple):
    """What ``sync_batchnorm_backward`` needs from the forward pass on this rank.

    var and eps describe the problem solved: where ``exp`` is set, that of x / 2**exp
    (as ``batch.BatchNormCache``), so the backward divides dx by 2**exp at the end.
    """

    xhat: np.ndarray  # (n_r, D) this rank's normalized rows, in x's dtype: dgamma_r and dx
    var: np.ndarray  # (D,) the whole batch's variance x was scaled by: dx's gamma / std
    eps: float | np.ndarray  # added to var under the square root ((D,) where rescaled)
    gamma: np.ndarray  # (D,) the scale: dL/dxhat = dout * gamma; the gradients' dtype
    train: bool  # in test mode the statistics are constants: no communication
    n_total: int  # N, the whole batch's rows over every rank: the two sums are divided by it
    comm: Communicator  # the ranks the backward's all-reduce must reach: the forward's
    exp: np.ndarray | None = None  # (D,) int, or None: var and eps are those of x / 2**exp


class SyncSpatialBatchNormCache(NamedTuple):
    """What ``sync_spatial_batchnorm_backward`` needs from the forward pass."""

    bn: SyncBatchNormCache  # the (n_r*H*W, C) pixel rows' cache
    shape: tuple[int, int, int, int]  # (n_r, C, H, W): to fold dx back


class _Stats(NamedTuple):
    """The whole batch's statistics as this rank needs them (compute dtype)."""

    xhat: np.ndarray  # (n_r, D)
    mu: np.ndarray  # (D,) the true mean, for the running statistics
    var: np.ndarray  # (D,) the true variance, for the running statistics
    var_c: np.ndarray  # (D,) the variance the backward divides by (rescaled where exp)
    eps_c: float | np.ndarray  # eps, or (D,) eps / 4**exp
    n_total: int  # N
    exp: np.ndarray | None  # (D,) int, or None


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> batch.BatchNormInputs:
    """Check this rank's inputs and read ``bn_param`` with batch norm's own checks.

    Batch norm's "at least 2 rows" applies to the whole batch here (checked after the
    collective), so a shard of 0 or 1 rows is checked as one of 2 rows would be.
    Writes nothing.
    """
    v.float_array(x, "x")
    v.ndim(x, "x", 2, "(N, D)", "For (N, C, H, W) input use sync_spatial_batchnorm_forward.")
    probe = x if x.shape[0] >= 2 else np.zeros((2, x.shape[1]), dtype=x.dtype)
    return batch.parse_inputs(probe, gamma, beta, bn_param)


def _local_moments(xc: np.ndarray) -> np.ndarray:
    """This rank's (n_r, mean_r, M2_r) as one (2D + 1,) float64 buffer, two-pass."""
    return _moments(xc)[0]


def _moments(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(the (2D + 1,) buffer of ``_local_moments``, x - mean_r (n_r, D) or None if empty)."""
    n, D = xc.shape
    if n == 0:
        return np.zeros(2 * D + 1), None
    mean = xc.mean(axis=0)  # (D,)
    xmu = xc - mean  # (n_r, D)
    rec = np.concatenate([[n], mean, np.sum(xmu * xmu, axis=0)]).astype(F64, copy=False)
    return rec, xmu


def _too_few_rows(x: np.ndarray, N: int, comm: Communicator) -> ValueError:
    return ValueError(
        f"sync batch norm in train mode needs at least 2 rows over all ranks to estimate a "
        f"variance; the {comm.size} rank(s) hold {N} row(s) in all (this rank, {comm.rank}, "
        f"x of shape {tuple(x.shape)}). Use a larger batch, or mode 'test'."
    )


def _batch_stats(x: np.ndarray, eps: float, comm: Communicator) -> _Stats:
    """The whole batch's mean and variance from every rank's shard: ONE all-reduce.

    In the plain range the statements are ``core.standardize``'s, with the merged mean
    and variance; a feature outside it goes to ``_rescaled`` (more all-reduces, decided
    on every rank alike, since every rank holds the same merged statistics).
    """
    cdt = v.compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)  # (n_r, D)
    D = xc.shape[1]
    with np.errstate(all="ignore"):  # overflow is detected below and redone scaled
        rec, xmu_r = _moments(xc)
        total = comm.allreduce(rec, CHAN)  # (2D + 1,) the one collective
    N = int(total[0])
    if N < 2:
        raise _too_few_rows(x, N, comm)
    mu = total[1 : D + 1].astype(cdt, copy=False)  # (D,)
    with np.errstate(all="ignore"):
        var = total[D + 1 :].astype(cdt, copy=False) / N  # (D,) biased, over the batch
        # (n_r, D); x - mean_r as it is when the whole batch's mean is this rank's (one rank)
        same = xmu_r is not None and rec[1 : D + 1].tobytes() == total[1 : D + 1].tobytes()
        xmu = xmu_r if same and xmu_r is not None and xmu_r.dtype == cdt else xc - mu
        denom = var + eps  # (D,)
        inv_std = 1.0 / np.sqrt(denom)  # (D,)
        xhat = xmu * inv_std  # (n_r, D)
    fast = _Stats(xhat, mu, var, var, eps, N, None)
    lo, hi = core.plain_range(cdt)
    plain = (denom >= lo) & (denom <= hi)  # (D,); False for NaN
    if plain.all():
        return fast
    return _rescaled(xc, fast, ~plain, eps, comm)


def _rescaled(
    xc: np.ndarray, fast: _Stats, outside: np.ndarray, eps: float, comm: Communicator
) -> _Stats:
    """Redo the features whose var + eps is outside the plain range, on x / 2**k.

    ``core._rescale`` over the ranks: k0 from the largest |x| of the whole batch (one
    MAX all-reduce), then the mean of x / 2**k0 and a bound on its spread about that mean
    (one SPREAD all-reduce), k as core chooses it from them, and the sum of squares of
    the centred x / 2**k (one SUM all-reduce). Features whose x is not finite are NaN;
    the others keep ``fast`` exactly. With one rank every value is core's.
    """
    cdt = xc.dtype
    n, D = xc.shape
    N = fast.n_total
    with np.errstate(all="ignore"):  # ldexp under- and overflow to the honest 0 and inf
        amax_r = np.max(np.abs(xc), axis=0) if n else np.zeros(D, cdt)  # (D,)
        amax = comm.allreduce(amax_r.astype(F64), MAX).astype(cdt)  # (D,)
        redo = outside & np.isfinite(amax)  # (D,)
        nan = outside & ~redo  # (D,) NaN or inf in x: the whole feature is NaN
        xhat = np.where(nan, np.nan, fast.xhat)  # (n_r, D)
        mu = np.where(nan, np.nan, fast.mu)  # (D,)
        var = np.where(nan, np.nan, fast.var)  # (D,)
        if not redo.any():
            return _Stats(xhat, mu, var, var, fast.eps_c, N, None)
        _, k0 = np.frexp(amax)  # (D,) amax = m * 2**k0, 0.5 <= m < 1
        x0 = np.ldexp(xc, -k0)  # (n_r, D), |x0| < 1
        m0 = x0.mean(axis=0) if n else np.zeros(D, cdt)  # (D,)
        s0 = np.max(np.abs(x0 - m0), axis=0) if n else np.zeros(D, cdt)  # (D,)
        rec = np.concatenate([[n], m0, s0]).astype(F64)
        merged = comm.allreduce(rec, SPREAD)  # (2D + 1,)
        mu0 = merged[1 : D + 1].astype(cdt)  # (D,) the mean of x / 2**k0
        spread = merged[D + 1 :].astype(cdt)  # (D,) >= max |x / 2**k0 - mu0|
        _, k1 = np.frexp(spread)
        k_spread = np.where(spread > 0, k0 + k1, core._NO_EXP)  # exponent of max|x - mu|
        k_eps = int(np.frexp(np.sqrt(cdt.type(eps)))[1]) if eps > 0 else core._NO_EXP
        k = np.maximum(np.maximum(k_spread, k_eps), k0 - core._MAX_SHIFT)
        k = np.where(redo, k, 0)  # (D,) int
        xs = np.where(redo, np.ldexp(x0, k0 - k), xc)  # (n_r, D): x / 2**k
        mus = np.where(redo, np.ldexp(mu0, k0 - k), fast.mu)  # (D,): its mean
        xmus = xs - mus  # (n_r, D), |.| <= 1 where rescaled
        ss = comm.allreduce(np.sum(xmus * xmus, axis=0).astype(F64), SUM).astype(cdt)  # (D,)
        var_s = ss / N  # (D,) the variance of x / 2**k
        eps_s = np.where(redo, np.ldexp(cdt.type(eps), -2 * k), cdt.type(eps))  # (D,)
        denom_s = var_s + eps_s  # (D,) (var + eps) / 4**k
        constant = redo & (denom_s == 0)  # the same on every rank
        if constant.any():
            d = int(np.flatnonzero(constant)[0])
            raise ValueError(
                f"eps = 0 and the group x[:, {d}] of the whole batch ({N} rows over "
                f"{comm.size} rank(s), reduced over the batch axis) is exactly constant, so "
                "its variance is 0 and xhat = 0/0 is undefined. Pass eps > 0 in the layer's "
                "parameter dict, e.g. {'eps': 1e-5} (the default)."
            )
        inv_s = 1.0 / np.sqrt(denom_s)  # (D,) 2**k / sqrt(var + eps)
        xhat = np.where(redo, xmus * inv_s, xhat)  # (n_r, D)
        mu = np.where(redo, np.ldexp(mu0, k0), mu)  # (D,) the true mean
        var = np.where(redo, np.ldexp(var_s, 2 * k), var)  # (D,) the true variance (0, inf)
        var_c = np.where(redo, var_s, var)  # (D,) what the backward divides by
    return _Stats(xhat, mu, var, var_c, eps_s, N, k)


def sync_batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    bn_param: dict[str, Any],
    comm: Any = None,
) -> tuple[np.ndarray, SyncBatchNormCache]:
    """Synchronized batch norm forward pass on this rank's shard of the batch.

    y = gamma * (x - mu) / sqrt(var + eps) + beta, with mu and var the per-feature mean
    and biased variance of the whole batch (every rank's rows) in train mode, combined
    exactly from each rank's (count, mean, M2) with Chan's merge in one all-reduce, and
    the running statistics in test mode (no communication).

    Args:
        x: (n_r, D) this rank's rows, any floating dtype; n_r may be 0 or 1, as long as
            the ranks hold at least 2 rows in all (train mode).
        gamma: (D,) scale, the same on every rank. Read, never modified.
        beta: (D,) shift, the same on every rank. Read, never modified.
        bn_param: batch norm's (``batchnorm_forward``): ``mode`` (required), ``eps``,
            ``momentum``, ``running_mean``, ``running_var``, ``momentum_convention``,
            ``unbiased_running_var`` (N/(N-1) with N the whole batch), and
            ``num_batches_tracked``. The running statistics are written back after a
            train step, the same on every rank.
        comm: the ranks sharing the batch: an mpi4py communicator, a ``Communicator``,
            or None for ``normgrad.distributed.world()`` (MPI.COMM_WORLD under mpiexec,
            otherwise this process alone: then this is batch norm, bit for bit).

    Returns:
        out: (n_r, D) in x's dtype, and the cache for ``sync_batchnorm_backward``.

    Raises:
        TypeError: as ``batchnorm_forward``, or a comm of another kind.
        ValueError: as ``batchnorm_forward``; fewer than 2 rows over all ranks in train
            mode (on every rank); eps = 0 and a feature constant over the whole batch.
            bn_param is left exactly as it was.
    """
    gamma, beta, train, eps, stats = parse_inputs(x, gamma, beta, bn_param)
    comm = resolve_comm(comm)
    if train:
        s = _batch_stats(x, eps, comm)
        xhat, mu, var, count = s.xhat, s.mu, s.var, s.n_total
        var_c, eps_c, exp = s.var_c, s.eps_c, s.exp
    else:
        # (n_r, D), (D,), (D,): normalized by the running statistics; no communication
        xhat, mu, var, _ = core.standardize_given(x, stats.mean, stats.var, eps)
        var_c, eps_c, exp, count = var, eps, None, x.shape[0]
    out = (gamma * xhat + beta).astype(x.dtype, copy=False)  # (n_r, D)

    # Nothing above wrote to bn_param; the update is the last step, from the whole batch.
    (stats.update(mu, var, count) if train else stats).write(bn_param)
    xhat = xhat.astype(x.dtype, copy=False)  # (n_r, D)
    return out, SyncBatchNormCache(xhat, var_c, eps_c, gamma, train, count, comm, exp)


def sync_batchnorm_backward(
    dout: np.ndarray, cache: SyncBatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synchronized batch norm backward pass: one all-reduce of (sum dout, sum dout*xhat).

    Train mode, with the sums over the whole batch (every rank's rows) and N its rows::

        dbeta  = sum_i dout_i,  dgamma = sum_i dout_i * xhat_i        # (D,) all-reduced
        dx     = gamma / sqrt(var + eps) * (dout - (dbeta + xhat * dgamma) / N)

    Test mode: dx = dout * gamma / sqrt(running_var + eps), no communication.

    Args:
        dout: (n_r, D) upstream gradient for this rank's rows.
        cache: from ``sync_batchnorm_forward`` on this rank.

    Returns:
        dx: (n_r, D) for this rank's rows, in x's dtype; dgamma: (D,) and dbeta: (D,),
        this rank's contributions (sum_i over its own rows), in gamma's dtype. Summed
        over the ranks they are the whole batch's dgamma and dbeta.

    Raises:
        TypeError: cache is not ``sync_batchnorm_forward``'s, or dout is not a floating
            array. ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, SyncBatchNormCache, "sync_batchnorm_backward", "sync_batchnorm_forward")
    xhat, var, eps, gamma, train, N, comm, exp = cache  # var, eps / 4**exp where rescaled
    core.check_dout(dout, xhat.shape)
    cdt = v.compute_dtype(dout.dtype)
    dbeta_r = dout.sum(axis=0, dtype=cdt)  # (D,) this rank's rows
    dgamma_r = np.einsum("nd,nd->d", dout, xhat, dtype=cdt)  # (D,)
    if train:
        D = xhat.shape[1]
        sums = comm.allreduce(np.concatenate([dbeta_r, dgamma_r]).astype(F64), SUM)  # (2D,)
        dbeta, dgamma = sums[:D].astype(cdt), sums[D:].astype(cdt)  # (D,) the whole batch's
        scale = gamma / np.sqrt(var + eps)  # (D,)
        dx = xhat * (dgamma / N)  # (n_r, D)  xhat_i * dgamma / N
        dx += dbeta / N  # (n_r, D)  + dbeta / N
        np.subtract(dout, dx, out=dx)  # (n_r, D)  dout_i - (...)
        dx *= scale  # (n_r, D)
    else:
        dx = dout * (gamma / np.sqrt(var + eps))  # (n_r, D): a fixed affine map
    if exp is not None:  # x was divided by 2**exp: dL/dx = dL/d(x / 2**exp) / 2**exp
        with np.errstate(over="ignore", under="ignore"):
            dx = np.ldexp(dx, -exp)  # (n_r, D), exact
    g = gamma.dtype
    return (
        dx.astype(xhat.dtype, copy=False),
        dgamma_r.astype(g, copy=False),
        dbeta_r.astype(g, copy=False),
    )


def sync_spatial_batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    bn_param: dict[str, Any],
    comm: Any = None,
) -> tuple[np.ndarray, SyncSpatialBatchNormCache]:
    """Synchronized spatial batch norm: ``sync_batchnorm_forward`` on the pixel rows.

    One mean and variance per channel over every rank's (N, H, W), as
    ``spatial_batchnorm_forward`` over the concatenated batch.

    Args:
        x: (n_r, C, H, W) this rank's images; the ranks hold at least 2 values per
            channel in all (sum n_r * H * W >= 2) in train mode.
        gamma, beta: (C,), the same on every rank. bn_param, comm: as
            ``sync_batchnorm_forward`` (running statistics of shape (C,)).

    Returns:
        out: (n_r, C, H, W) in x's dtype, and the cache for the backward pass.

    Raises:
        TypeError, ValueError: as ``spatial_batchnorm_forward`` and
        ``sync_batchnorm_forward``.
    """
    v.float_array(x, "x")
    v.ndim(x, "x", 4, "(N, C, H, W)", "For (N, D) input use sync_batchnorm_forward.")
    n, C, H, W = (int(s) for s in x.shape)
    gamma = v.float_param(gamma, "gamma", x.dtype)
    beta = v.float_param(beta, "beta", x.dtype)
    v.shape(gamma, "gamma", (C,), "one scale per channel of x: (N, C, H, W)")
    v.shape(beta, "beta", (C,), "one shift per channel of x: (N, C, H, W)")
    rows, cache = sync_batchnorm_forward(spatial._to_rows(x), gamma, beta, bn_param, comm)
    shape = (n, C, H, W)
    out = np.ascontiguousarray(spatial._from_rows(rows, shape))  # (n_r, C, H, W)
    return out, SyncSpatialBatchNormCache(cache, shape)


def sync_spatial_batchnorm_backward(
    dout: np.ndarray, cache: SyncSpatialBatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synchronized spatial batch norm backward: ``sync_batchnorm_backward`` on pixels.

    Args:
        dout: (n_r, C, H, W) upstream gradient. cache: from
            ``sync_spatial_batchnorm_forward``.

    Returns:
        dx: (n_r, C, H, W); dgamma, dbeta: (C,), this rank's contributions.
    """
    v.cache_of(
        cache,
        SyncSpatialBatchNormCache,
        "sync_spatial_batchnorm_backward",
        "sync_spatial_batchnorm_forward",
    )
    v.float_array(dout, "dout")
    v.shape(dout, "dout", cache.shape, "the shape of the forward output")
    drows, dgamma, dbeta = sync_batchnorm_backward(spatial._to_rows(dout), cache.bn)
    return np.ascontiguousarray(spatial._from_rows(drows, cache.shape)), dgamma, dbeta


# ---- simulated ranks (the checks, the torch parity and the proofs' code tie) -----------


def unequal_split(N: int, P: int) -> tuple[int, ...]:
    """Rows per rank for N rows over P ranks, deliberately unequal: rank r < P - 1 gets
    r + 1 rows while they last, the last rank the rest (3 over 2: (1, 2); 7 over 3:
    (1, 2, 4); 4 over 4: (1, 2, 1, 0))."""
    sizes, left = [], N
    for r in range(P - 1):
        take = min(r + 1, left)
        sizes.append(take)
        left -= take
    return (*sizes, left)


class SimulatedCache(NamedTuple):
    """Every simulated rank's cache from one ``simulated_forward`` call."""

    caches: tuple[Any, ...]  # one per rank: SyncBatchNormCache or SyncSpatialBatchNormCache
    rows: tuple[int, ...]  # how many rows (images) of x each rank held: to split dout


def simulated_forward(
    forward: spec.Forward,
    x: Any,
    gamma: Any,
    beta: Any,
    bn_param: dict[str, Any],
    P: int,
) -> tuple[np.ndarray, SimulatedCache]:
    """``forward`` on x split over P simulated ranks (``unequal_split``), each a thread
    with its own copy of ``bn_param`` (written back from rank 0: every rank's is the
    same); the outputs concatenated. A non-array x goes to every rank as it is (each
    refuses it as the real forward does)."""
    from normgrad.distributed.simulated import run_ranks

    if isinstance(x, np.ndarray) and x.ndim >= 1:
        rows = unequal_split(x.shape[0], P)
        edges = np.cumsum((0, *rows))
        shards = [x[edges[r] : edges[r + 1]] for r in range(P)]
    else:
        rows, shards = (0,) * P, [x] * P
    params = [dict(bn_param) for _ in range(P)]

    def rank(comm: Communicator) -> tuple[np.ndarray, Any]:
        r = comm.rank
        return forward(shards[r], gamma, beta, params[r], comm=comm)

    results = run_ranks(rank, P)
    bn_param.update(params[0])
    out = np.concatenate([o for o, _ in results], axis=0)
    return out, SimulatedCache(tuple(c for _, c in results), rows)


def simulated_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """The backward of ``simulated_forward``: dout split as x was, every rank's backward
    in its thread; dx concatenated, dgamma and dbeta summed over the ranks in rank order
    (the whole batch's). A ``SyncBatchNormCache`` (one rank, no simulation) goes to
    ``sync_batchnorm_backward``, a spatial one to ``sync_spatial_batchnorm_backward``."""
    if isinstance(cache, SyncBatchNormCache):
        return sync_batchnorm_backward(dout, cache)
    if isinstance(cache, SyncSpatialBatchNormCache):
        return sync_spatial_batchnorm_backward(dout, cache)
    v.cache_of(
        cache,
        (SimulatedCache, SyncBatchNormCache, SyncSpatialBatchNormCache),
        "sync_batchnorm_backward",
        "sync_batchnorm_forward",
    )
    from normgrad.distributed.simulated import run_ranks

    first = cache.caches[0]
    backward = (
        sync_spatial_batchnorm_backward
        if isinstance(first, SyncSpatialBatchNormCache)
        else sync_batchnorm_backward
    )
    if isinstance(dout, np.ndarray) and dout.ndim >= 1 and dout.shape[0] == sum(cache.rows):
        edges = np.cumsum((0, *cache.rows))
        parts = [dout[edges[r] : edges[r + 1]] for r in range(len(cache.rows))]
    else:  # a malformed dout: every rank refuses it
        parts = [dout] * len(cache.rows)

    def rank(comm: Communicator) -> tuple[np.ndarray, ...]:
        return backward(parts[comm.rank], cache.caches[comm.rank])

    results = run_ranks(rank, len(cache.rows), comms=[_rank_comm(c) for c in cache.caches])
    dx = np.concatenate([g[0] for g in results], axis=0)
    dgamma = functools.reduce(np.add, [g[1] for g in results])
    dbeta = functools.reduce(np.add, [g[2] for g in results])
    return dx, dgamma, dbeta


def _rank_comm(cache: Any) -> Communicator:
    """The communicator a rank's forward used (the backward must use the same)."""
    return cache.bn.comm if isinstance(cache, SyncSpatialBatchNormCache) else cache.comm


# ---- specification ---------------------------------------------------------------------


def _bind(
    forward: spec.Forward, mode: str = "train", eps: float = 1e-5, P: int = 1, **extra: Any
) -> spec.Forward:
    """``f(x, gamma, beta)``: ``forward`` with a fresh ``bn_param`` on every call, on one
    rank (P = 1: this process alone, ``LocalComm``) or x split over P simulated ranks
    (``simulated_forward``, ``unequal_split``); arrays in ``extra`` are copied per call."""

    def call(x: Any, gamma: Any, beta: Any) -> tuple[np.ndarray, Any]:
        param = {
            "mode": mode,
            "eps": eps,
            **{k: np.copy(a) if isinstance(a, np.ndarray) else a for k, a in extra.items()},
        }
        if P == 1:
            return forward(x, gamma, beta, param, comm=LocalComm())
        return simulated_forward(forward, x, gamma, beta, param, P)

    return call


def _torch(
    torch: Any, inputs: dict[str, Any], mode: str = "train", eps: float = 1e-5, **extra: Any
) -> Any:
    """Whole-batch batch norm (``F.batch_norm``) on the concatenated batch: what the ranks
    together must compute. Test mode takes the case's running statistics."""
    F = torch.nn.functional
    x = inputs["x"]
    mean, var = extra.get("running_mean"), extra.get("running_var")
    if mode == "test":
        mean = torch.as_tensor(mean, dtype=x.dtype)
        var = torch.as_tensor(var, dtype=x.dtype)
    else:
        mean = var = None
    return F.batch_norm(
        x, mean, var, inputs["gamma"], inputs["beta"], training=mode == "train", eps=eps
    )


# ---- the spec ------------------------------------------------------------------------------

_TEST_MEAN = np.array([11.0, 13.0, 12.5, 10.0, 12.0])
_TEST_VAR = np.array([20.0, 30.0, 25.0, 16.0, 27.0])

SPEC = spec.NormSpec(
    name="sync_batchnorm",
    title="synchronized batch normalization (the batch split over ranks)",
    paper="Ioffe & Szegedy 2015, arXiv:1502.03167; Chan, Golub & LeVeque 1979",
    layout="(N, D) split over ranks",
    forward=sync_batchnorm_forward,
    routes={"closed": spec.Route(simulated_backward)},
    bind=_bind,
    param_name="bn_param",
    param_keys=batch.PARAM_KEYS,
    # x split 1, 2, 4 over 3 simulated ranks; 1, 2, 1, 0 over 4 (a rank with one row and
    # one with none); one rank; and test mode over 3 ranks (no communication).
    cases=(
        spec.CaseInputs("3 ranks", spec.affine_inputs((7, 5), (5,)), {"P": 3}),
        spec.CaseInputs("4 ranks", spec.affine_inputs((4, 5), (5,)), {"P": 4}),
        spec.CaseInputs("1 rank", spec.affine_inputs((6, 5), (5,))),
        spec.CaseInputs(
            "test",
            spec.affine_inputs((6, 5), (5,)),
            {"P": 3, "mode": "test", "running_mean": _TEST_MEAN, "running_var": _TEST_VAR},
        ),
    ),
    torch=_torch,
    symbolic=spec.Symbolic(
        "sync",
        ("N", "D"),  # --shape NxD; P (the ranks) is an option, as group norm's G
        ({"N": 3, "D": 2, "P": 2}, {"N": 6, "D": 1, "P": 3}, {"N": 3, "D": 1, "P": 3}),
        "normgrad.symbolic.sync:build",
        options=("P",),
        all_sizes=spec.AllSizes.columns(),
    ),
    blocks=(
        spec.Block(
            "fc",
            "sync_batchnorm",
            sync_batchnorm_forward,
            sync_batchnorm_backward,
            param_shape=lambda F: (F,),
            init_param=lambda: {"mode": "train"},
            train_mode=True,
            cancels_bias=True,
        ),
        spec.Block(
            "conv",
            "sync_batchnorm",
            sync_spatial_batchnorm_forward,
            sync_spatial_batchnorm_backward,
            param_shape=lambda F: (F,),
            init_param=lambda: {"mode": "train"},
            train_mode=True,
            cancels_bias=True,
        ),
    ),
)
