"""Synchronized batch norm, symbolically: the sharded forward and backward of ``norms.sync``.

``build(N, D, P)`` splits x: (N, D) over P ranks as ``norms.sync.unequal_split`` does,
repeats each rank's statements (its moments, then Chan's merge folded in rank order, as
the simulated all-reduce folds it), and proves the sharded forward and the backward
route ``closed`` equal to whole-batch batch norm's (``normgrad derive sync``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from normgrad.norms.sync import unequal_split


def _symbolic_merge(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    """Mirror of ``chan_merge`` on (count, mean (D,), M2 (D,)) with exact arithmetic: the
    larger shard first (its operand order; the result is symmetric in exact arithmetic)."""
    if b[0] == 0:
        return a
    if a[0] == 0:
        return b
    if b[0] > a[0]:
        a, b = b, a
    na, nb = a[0], b[0]
    n = na + nb
    delta = b[1] - a[1]  # (D,)
    mean = a[1] + delta * (nb / n)  # (D,) nb / n an exact rational
    M2 = a[2] + b[2] + delta * delta * (na * nb / n)  # (D,)
    return n, mean, M2


@functools.cache
def _problem_class() -> Any:
    from normgrad.symbolic import core as sc
    from normgrad.symbolic.model import Problem

    class SyncProblem(Problem):
        """A ``Problem`` whose exact gradient is whole-batch batch norm's, and whose every
        proof first proves the sharded forward equal to whole-batch batch norm's."""

        rows: tuple[int, ...] = ()
        whole_y: Any = None  # (N, D) batch norm's forward on the concatenated batch

        def prove(self, route: str) -> Any:
            fwd = sc.compare(
                f"{self.layer} forward", {"y": self.y}, {"y": self.whole_y}, self.eps, self.radicals
            )
            if not fwd.proved:
                return fwd
            verdict = super().prove(route)
            verdict.seconds += fwd.seconds
            return verdict

        def describe(self) -> str:
            shards = ", ".join(map(str, self.rows))
            return (
                f"{super().describe()}\nthe batch split over P = {len(self.rows)} ranks "
                f"holding {shards} rows; the exact gradient is whole-batch batch norm's on "
                "the concatenated batch, and each proof first proves the sharded forward "
                "equal to whole-batch batch norm's forward."
            )

    return SyncProblem


def build(N: int = 3, D: int = 2, P: int = 2) -> Any:
    """Sync batch norm on x: (N, D) split over P ranks (``unequal_split``), train mode.

    Each rank's statements repeat ``sync_batchnorm_forward`` (``_local_moments``, then
    ``chan_merge`` folded in rank order, as the simulated all-reduce folds it) and the
    route ``closed`` repeats ``sync_batchnorm_backward`` on every rank (its two sums added
    over the ranks), with dgamma and dbeta the sum of the ranks' contributions. The exact
    gradient is that of whole-batch batch norm (``symbolic.batch.forward``) on the
    concatenated batch, so a proof shows the sharded backward equal to batch norm's.
    """
    from normgrad.symbolic import batch as sb
    from normgrad.symbolic import core as sc
    from normgrad.symbolic import model as m

    sp = sc.sp
    sc.check_size("sync", (N, D), N)
    if not 1 <= P <= N:
        raise ValueError(f"sync: P = {P} ranks must be between 1 and N = {N} for a proof.")
    rows = unequal_split(N, P)
    x, gamma, beta, dout, eps = m.make_symbols((N, D), (D,))
    edges = np.cumsum((0, *rows))
    xs = [x[edges[r] : edges[r + 1]] for r in range(P)]
    douts = [dout[edges[r] : edges[r + 1]] for r in range(P)]

    # sync_batchnorm_forward, train mode: each rank's (n_r, mean_r, M2_r), then the merge
    zero = np.full(D, sp.Integer(0), dtype=object)
    local = []
    for xr in xs:
        n_r = xr.shape[0]
        if n_r == 0:
            local.append((sp.Integer(0), zero, zero))
            continue
        mean_r = xr.mean(axis=0)  # (D,)
        xmu_r = xr - mean_r  # (n_r, D)
        local.append((sp.Integer(n_r), mean_r, np.sum(xmu_r * xmu_r, axis=0)))
    total = functools.reduce(_symbolic_merge, local)  # the all-reduce, in rank order
    count, mu, M2 = total
    var = M2 / count  # (D,)
    inv_std = 1 / sc.sqrt(var + eps)  # (D,)
    xhats = [(xr - mu) * inv_std for xr in xs]  # (n_r, D) each
    y = np.concatenate([gamma * xh + beta for xh in xhats], axis=0)  # (N, D)

    # sync_batchnorm_backward on every rank: the local sums, all-reduced, then dx
    dbetas = [d.sum(axis=0) if d.shape[0] else zero for d in douts]  # (D,) each
    dgammas = [
        np.sum(d * xh, axis=0) if d.shape[0] else zero for d, xh in zip(douts, xhats, strict=True)
    ]
    dbeta = functools.reduce(np.add, dbetas)  # (D,) the all-reduced sums
    dgamma = functools.reduce(np.add, dgammas)  # (D,)
    scale = gamma / sc.sqrt(var + eps)  # (D,)
    dxs = []
    for d, xh in zip(douts, xhats, strict=True):
        dx = xh * (dgamma / count)  # (n_r, D)
        dx = dx + dbeta / count  # (n_r, D)
        dx = d - dx  # (n_r, D)
        dxs.append(dx * scale)  # (n_r, D)
    route = {"dx": np.concatenate(dxs, axis=0), "dgamma": dgamma, "dbeta": dbeta}

    whole_y, whole = sb.forward(x, gamma, beta, eps)  # batch norm on the concatenated batch
    params = {"x": x, "gamma": gamma, "beta": beta}
    p = _problem_class()(
        layer="sync",
        shape=(N, D),
        params=params,
        dout=dout,
        eps=eps,
        y=y,
        radicals=sc.radicals_of(whole.var + eps),
        group=m.first_group(x, mu[None], var[None], (0,)),
        options={"P": P},
        reduction=(f"per feature d, over the batch axis of all {P} ranks", "N"),
        param_form=True,
        exact=sc.exact_gradients(whole_y, dout, {f"d{k}": a for k, a in params.items()}),
    )
    p.rows, p.whole_y = rows, whole_y
    p.routes = {"closed": route}
    return p
