"""Synchronized batch norm on simulated ranks (threads of this process): the maths.

The ranks' shards are unequal, with a rank of one row and a rank of none; together they
must compute batch norm on the concatenated batch: output, dx, the summed parameter
gradients, the running statistics (the same bits on every rank) and test mode, to rel
1e-12 in float64; on one rank, batch norm bit for bit. The real MPI runs are in
test_mpi.py.
"""

from __future__ import annotations

import copy
import threading
import time

import numpy as np
import pytest

from normgrad.distributed import simulated
from normgrad.gradcheck.layer import check_layer
from normgrad.gradient_check import norm_rel_error
from normgrad.norms import batch, spatial, sync, sync_comm
from normgrad.norms.running import StaleRunningStatsWarning

# rows per rank: a rank with one row and ranks with none, on 2, 3 and 4 ranks
SHARDS = [(1, 6), (3, 0, 4), (1, 0, 5, 2), (0, 1, 1, 0)]


def _data(N: int, D: int, seed: int = 0, offset: float = 12.0):
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal((N, D)) + offset
    return x, rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D))


def _split(a: np.ndarray, rows) -> list[np.ndarray]:
    edges = np.cumsum((0, *rows))
    return [a[edges[r] : edges[r + 1]] for r in range(len(rows))]


def _ranks(rows, x, gamma, beta, dout, param, forward=None, backward=None):
    """Every rank's forward and backward on its shard; per-rank results and params."""
    forward = forward or sync.sync_batchnorm_forward
    backward = backward or sync.sync_batchnorm_backward
    xs, ds = _split(x, rows), _split(dout, rows)
    params = [copy.deepcopy(param) for _ in rows]

    def rank(comm):
        out, cache = forward(xs[comm.rank], gamma, beta, params[comm.rank], comm=comm)
        return out, backward(ds[comm.rank], cache)

    return simulated.run_ranks(rank, len(rows)), params


PARAMS = [
    {"mode": "train"},
    {"mode": "train", "momentum": 0.7, "running_mean": np.full(5, 3.0), "running_var": np.ones(5)},
    {
        "mode": "train",
        "eps": 1e-3,
        "momentum": 0.1,
        "momentum_convention": "torch",
        "unbiased_running_var": True,
        "num_batches_tracked": 4,
    },
    {"mode": "train", "momentum": None},
]


@pytest.mark.parametrize("rows", SHARDS, ids=lambda r: "-".join(map(str, r)))
@pytest.mark.parametrize("pi", range(len(PARAMS)))
def test_shards_equal_batch_norm_on_the_concatenated_batch(rows, pi) -> None:
    N = sum(rows)
    x, gamma, beta, dout = _data(N, 5, seed=pi)
    want_param = copy.deepcopy(PARAMS[pi])
    want, cache = batch.batchnorm_forward(x, gamma, beta, want_param)
    wdx, wdgamma, wdbeta = batch.batchnorm_backward_alt(dout, cache)
    results, params = _ranks(rows, x, gamma, beta, dout, PARAMS[pi])
    out = np.concatenate([o for o, _ in results])
    dx = np.concatenate([g[0] for _, g in results])
    assert norm_rel_error(out, want) < 1e-12
    assert norm_rel_error(dx, wdx) < 1e-12
    # each rank's dgamma and dbeta are its own rows' contributions; they sum to batch norm's
    for (_, (_, dg, db)), xr, dr in zip(results, _split(x, rows), _split(dout, rows), strict=True):
        xhat = (xr - x.mean(0)) / np.sqrt(x.var(0) + want_param.get("eps", 1e-5))
        np.testing.assert_allclose(db, dr.sum(0), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dg, (dr * xhat).sum(0), rtol=1e-11, atol=1e-12)
    assert norm_rel_error(sum(g[1] for _, g in results), wdgamma) < 1e-12
    assert norm_rel_error(sum(g[2] for _, g in results), wdbeta) < 1e-12
    for p in params:  # the running statistics: batch norm's, the same bits on every rank
        for key in ("running_mean", "running_var"):
            assert p[key].tobytes() == params[0][key].tobytes()
            assert norm_rel_error(p[key], want_param[key]) < 1e-12
        assert p.get("num_batches_tracked") == want_param.get("num_batches_tracked")
    # test mode with those statistics: no communication, batch norm's test mode
    test = {**params[0], "mode": "test"}
    want_t, cache_t = batch.batchnorm_forward(x, gamma, beta, {**want_param, "mode": "test"})
    wdx_t = batch.batchnorm_backward_alt(dout, cache_t)[0]
    silent = _Silent()
    for xr, dr, lo in zip(
        _split(x, rows), _split(dout, rows), np.cumsum((0, *rows))[:-1], strict=True
    ):
        o, c = sync.sync_batchnorm_forward(xr, gamma, beta, dict(test), comm=silent)
        d = sync.sync_batchnorm_backward(dr, c)[0]
        sl = slice(lo, lo + xr.shape[0])
        np.testing.assert_allclose(o, want_t[sl], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(d, wdx_t[sl], rtol=1e-12, atol=1e-12)


class _Silent:
    """A communicator that fails on any use: test mode must not communicate."""

    rank, size = 0, 3

    def allreduce(self, buf, op):
        raise AssertionError("test mode communicated")


def test_one_rank_is_batch_norm_bit_for_bit() -> None:
    for dtype in (np.float64, np.float32):
        x, gamma, beta, dout = (a.astype(dtype) for a in _data(9, 4, seed=5))
        p1, p2 = {"mode": "train"}, {"mode": "train"}
        o1, c1 = batch.batchnorm_forward(x, gamma, beta, p1)
        o2, c2 = sync.sync_batchnorm_forward(x, gamma, beta, p2)  # the default: one rank
        assert isinstance(c2.comm, sync_comm.LocalComm)
        assert np.array_equal(o1, o2) and o2.dtype == dtype
        for key in ("running_mean", "running_var"):
            assert np.array_equal(p1[key], p2[key])
        for a, b in zip(
            batch.batchnorm_backward_alt(dout, c1),
            sync.sync_batchnorm_backward(dout, c2),
            strict=True,
        ):
            assert np.array_equal(a, b) and a.dtype == b.dtype
    # ranks with no rows leave the merge exactly as it is: 9 rows and two empty ranks
    x, gamma, beta, dout = _data(9, 4, seed=5)
    results, params = _ranks((0, 9, 0), x, gamma, beta, dout, {"mode": "train"})
    p1 = {"mode": "train"}
    o1, c1 = batch.batchnorm_forward(x, gamma, beta, p1)
    assert np.array_equal(results[1][0], o1)
    assert np.array_equal(results[1][1][0], batch.batchnorm_backward_alt(dout, c1)[0])
    assert all(np.array_equal(p["running_var"], p1["running_var"]) for p in params)


def test_spatial_shards_equal_spatial_batch_norm() -> None:
    rng = np.random.default_rng(2)
    x = 3 * rng.standard_normal((5, 3, 2, 3)) + 4
    gamma, beta, dout = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(x.shape)
    want_p = {"mode": "train"}
    want, cache = spatial.spatial_batchnorm_forward(x, gamma, beta, want_p)
    wdx, wdg, wdb = spatial.spatial_batchnorm_backward(dout, cache)
    for rows in [(1, 4), (2, 0, 3), (1, 1, 0, 3)]:
        results, params = _ranks(
            rows, x, gamma, beta, dout, {"mode": "train"},
            sync.sync_spatial_batchnorm_forward, sync.sync_spatial_batchnorm_backward,
        )  # fmt: skip
        assert norm_rel_error(np.concatenate([o for o, _ in results]), want) < 1e-12
        assert norm_rel_error(np.concatenate([g[0] for _, g in results]), wdx) < 1e-12
        assert norm_rel_error(sum(g[1] for _, g in results), wdg) < 1e-12
        assert norm_rel_error(sum(g[2] for _, g in results), wdb) < 1e-12
        assert norm_rel_error(params[-1]["running_var"], want_p["running_var"]) < 1e-12
    one = sync.sync_spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})[0]
    assert np.array_equal(one, want)


@pytest.mark.parametrize("P", [1, 3])
def test_spatial_finite_differences_and_torch(P: int) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(P)
    x = 5 * rng.standard_normal((3, 2, 2, 2)) + 12
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    f = sync._bind(sync.sync_spatial_batchnorm_forward, P=P)
    report = check_layer(f, sync.simulated_backward, {"x": x, "gamma": gamma, "beta": beta})
    assert report.passed, report
    dout = rng.standard_normal(x.shape)
    out, cache = f(x, gamma, beta)
    grads = sync.simulated_backward(dout, cache)
    t = {k: torch.tensor(a, requires_grad=True) for k, a in (("x", x), ("g", gamma), ("b", beta))}
    y = torch.nn.functional.batch_norm(t["x"], None, None, t["g"], t["b"], training=True, eps=1e-5)
    y.backward(torch.tensor(dout))
    assert norm_rel_error(out, y.detach().numpy()) < 1e-12
    for got, want in zip(grads, (t["x"].grad, t["g"].grad, t["b"].grad), strict=True):
        assert norm_rel_error(got, want.numpy()) < 1e-10


def test_chan_merge_is_order_free_and_empty_shards_change_nothing() -> None:
    rng = np.random.default_rng(7)
    recs = []
    for n in (1, 3, 5, 3):
        x = rng.standard_normal((n, 4)) * 3 + 1e6
        recs.append(sync._local_moments(x))
    for a in recs:
        for b in recs:
            assert sync_comm.chan_merge(a, b).tobytes() == sync_comm.chan_merge(b, a).tobytes()
        empty = np.zeros_like(a)
        assert sync_comm.chan_merge(a, empty).tobytes() == a.tobytes()
        assert sync_comm.chan_merge(empty, a).tobytes() == a.tobytes()
    # a mean 1e8 times the spread: the shards' means carry an absolute rounding error of
    # ulp(1e8), which the between-shard term turns into a relative ~eps * 1e8 in the
    # variance (docs/derivation.md, section 9.10); still far inside float32's resolution
    xs = [rng.standard_normal((n, 3)) + 1e8 for n in (2, 7, 1)]
    merged = sync_comm.chan_merge(
        sync_comm.chan_merge(*(sync._local_moments(x) for x in xs[:2])), sync._local_moments(xs[2])
    )
    whole = np.concatenate(xs)
    np.testing.assert_allclose(merged[4:] / 10, whole.var(0), rtol=20 * 2.2e-16 * 1e8)
    np.testing.assert_allclose(merged[1:4], whole.mean(0), rtol=1e-15)


def test_float32_at_a_large_offset_normalizes_like_float64() -> None:
    x, gamma, beta, dout = _data(12, 3, seed=9, offset=0.0)
    x = (x + 1e6 * 5.0).astype(np.float32)
    rows = (2, 5, 0, 5)
    r32, _ = _ranks(
        rows,
        x,
        gamma.astype(np.float32),
        beta.astype(np.float32),
        dout.astype(np.float32),
        {"mode": "train"},
    )
    r64, _ = _ranks(rows, x.astype(np.float64), gamma, beta, dout, {"mode": "train"})
    o32, o64 = (np.concatenate([o for o, _ in r]) for r in (r32, r64))
    assert o32.dtype == np.float32 and np.max(np.abs(o32 - o64)) < 1e-3


@pytest.mark.parametrize("k", [-1000, -600, 600, 1000])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_extreme_magnitudes_give_the_rescaled_result_on_every_rank(k: int, eps: float) -> None:
    x, gamma, beta, dout = _data(8, 3, seed=abs(k))
    rows = (1, 0, 4, 3)
    with np.errstate(all="ignore"):
        eps_t = float(np.ldexp(eps, 2 * k)) if np.isfinite(np.ldexp(eps, 2 * k)) else 0.0
    x_t = np.ldexp(x, k)
    ref, _ = _ranks(
        rows,
        np.ldexp(x_t, -k),
        gamma,
        beta,
        dout,
        {"mode": "train", "eps": float(np.ldexp(eps_t, -2 * k))},
    )
    with _no_numpy_warnings():
        got, params = _ranks(rows, x_t, gamma, beta, dout, {"mode": "train", "eps": eps_t})
    out = np.concatenate([o for o, _ in got])
    want = np.concatenate([o for o, _ in ref])
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    dx = np.ldexp(np.concatenate([g[0] for _, g in got]), k)
    wdx = np.concatenate([g[0] for _, g in ref])
    assert np.max(np.abs(dx - wdx)) <= 1e-10 * np.max(np.abs(wdx))
    for key in ("running_mean", "running_var"):  # the same bits on every rank
        assert all(p[key].tobytes() == params[0][key].tobytes() for p in params)


class _no_numpy_warnings:
    """Fail on any RuntimeWarning but the documented stale-statistics one."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", StaleRunningStatsWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def test_extreme_magnitudes_on_one_rank_equal_batch_norm_bit_for_bit() -> None:
    x, gamma, beta, dout = _data(6, 3, seed=1)
    for k in (-1030, 900):
        xt = np.ldexp(x, k)
        for eps in (0.0, 1e-5):
            p1, p2 = {"mode": "train", "eps": eps}, {"mode": "train", "eps": eps}
            with _no_numpy_warnings():
                o1, c1 = batch.batchnorm_forward(xt, gamma, beta, p1)
                o2, c2 = sync.sync_batchnorm_forward(xt, gamma, beta, p2)
            assert np.array_equal(o1, o2)
            g1, g2 = batch.batchnorm_backward_alt(dout, c1), sync.sync_batchnorm_backward(dout, c2)
            assert all(np.array_equal(a, b) for a, b in zip(g1, g2, strict=True))


def test_nan_gives_nan_in_its_feature_only_and_keeps_its_running_statistics() -> None:
    x, gamma, beta, dout = _data(7, 4, seed=3)
    rows = (1, 2, 4)
    clean, _ = _ranks(rows, x, gamma, beta, dout, {"mode": "train"})
    dirty_x = x.copy()
    dirty_x[5, 2] = np.nan
    with pytest.warns(StaleRunningStatsWarning):
        dirty, params = _ranks(rows, dirty_x, gamma, beta, dout, {"mode": "train"})
    out = np.concatenate([o for o, _ in dirty])
    dx = np.concatenate([g[0] for _, g in dirty])
    assert np.all(np.isnan(out[:, 2])) and np.all(np.isnan(dx[:, 2]))
    keep = [0, 1, 3]
    assert np.array_equal(out[:, keep], np.concatenate([o for o, _ in clean])[:, keep])
    assert np.array_equal(dx[:, keep], np.concatenate([g[0] for _, g in clean])[:, keep])
    assert all(p["running_var"][2] == 0.0 for p in params)  # kept (the fresh zeros)


def test_eps_zero_on_a_constant_feature_is_an_error_on_every_rank() -> None:
    x, gamma, beta, dout = _data(5, 3)
    x[:, 1] = 4.0
    errors = []

    def rank(comm):
        param = {"mode": "train", "eps": 0.0}
        try:
            sync.sync_batchnorm_forward(_split(x, (2, 0, 3))[comm.rank], gamma, beta, param, comm)
        except ValueError as exc:
            errors.append((comm.rank, str(exc), param))
        return None

    simulated.run_ranks(rank, 3)
    assert sorted(r for r, _, _ in errors) == [0, 1, 2]
    assert all(
        "eps = 0 and the group x[:, 1]" in m and p == {"mode": "train", "eps": 0.0}
        for _, m, p in errors
    )


def test_fewer_than_two_rows_in_all_is_an_error_on_every_rank() -> None:
    x, gamma, beta, _ = _data(1, 3)
    seen = []

    def rank(comm):
        param = {"mode": "train"}
        xr = x if comm.rank == 1 else x[:0]
        with pytest.raises(ValueError, match="at least 2 rows over all ranks") as info:
            sync.sync_batchnorm_forward(xr, gamma, beta, param, comm)
        assert param == {"mode": "train"}  # nothing written
        seen.append(str(info.value))

    simulated.run_ranks(rank, 3)
    assert len(seen) == 3 and "1 row(s) in all" in seen[0]
    # one rank with a single row in test mode is fine
    out, _ = sync.sync_batchnorm_forward(x, gamma, beta, {"mode": "test"})
    assert out.shape == (1, 3)


def test_simulated_world_refuses_mismatched_buffers_and_stops_when_a_rank_fails() -> None:
    def mismatched(comm):
        return comm.allreduce(np.ones(3 + comm.rank), sync_comm.SUM)

    with pytest.raises(ValueError, match="different buffers"):
        simulated.run_ranks(mismatched, 3)

    def one_fails(comm):
        if comm.rank == 2:
            raise KeyError("rank 2 broke")
        return comm.allreduce(np.ones(2), sync_comm.SUM)

    start = time.perf_counter()
    with pytest.raises(KeyError, match="rank 2 broke"):
        simulated.run_ranks(one_fails, 4)
    assert time.perf_counter() - start < 10
    assert threading.active_count() < 20  # the threads ended


# --- bad input: a clear error, nothing changed --------------------------------------------


def _good():
    x, gamma, beta, dout = _data(4, 3)
    return x, gamma, beta, {"mode": "train", "running_mean": np.zeros(3), "running_var": np.ones(3)}


BAD_FORWARD = [
    ("x list", lambda a: (a[0].tolist(), *a[1:]), TypeError, "x"),
    ("x int", lambda a: (a[0].astype(int), *a[1:]), TypeError, "x"),
    ("x 3-D", lambda a: (a[0][:, :, None], *a[1:]), ValueError, "sync_spatial"),
    ("gamma shape", lambda a: (a[0], np.ones(4), *a[2:]), ValueError, "gamma"),
    ("beta str", lambda a: (a[0], a[1], "b", a[3]), TypeError, "beta"),
    ("param list", lambda a: (*a[:3], [("mode", "train")]), TypeError, "bn_param"),
    ("typo key", lambda a: (*a[:3], {**a[3], "momentun": 0.9}), ValueError, "momentun"),
    ("mode", lambda a: (*a[:3], {**a[3], "mode": "eval"}), ValueError, "mode"),
    ("eps string", lambda a: (*a[:3], {**a[3], "eps": "1e-5"}), TypeError, "eps"),
    ("eps negative", lambda a: (*a[:3], {**a[3], "eps": -1.0}), ValueError, "eps"),
    ("momentum 2", lambda a: (*a[:3], {**a[3], "momentum": 2.0}), ValueError, "momentum"),
    (
        "running nan",
        lambda a: (*a[:3], {**a[3], "running_var": np.full(3, np.nan)}),
        ValueError,
        "running_var",
    ),
    (
        "running shape",
        lambda a: (*a[:3], {**a[3], "running_mean": np.zeros(2)}),
        ValueError,
        "running_mean",
    ),
]


@pytest.mark.parametrize("name,mutate,kind,needle", BAD_FORWARD, ids=[b[0] for b in BAD_FORWARD])
def test_bad_forward_input_is_refused_before_anything_changes(name, mutate, kind, needle) -> None:
    args = mutate(_good())
    before = copy.deepcopy(args[3])
    with pytest.raises(kind, match=needle):
        sync.sync_batchnorm_forward(*args)
    if isinstance(args[3], dict):
        assert args[3].keys() == before.keys()
        assert all(
            np.array_equal(args[3][k], before[k], equal_nan=True)
            for k in before
            if isinstance(before[k], np.ndarray)
        )


def test_bad_comm_cache_dout_and_spatial_input_are_clear_errors() -> None:
    x, gamma, beta, param = _good()
    with pytest.raises(TypeError, match="comm must be"):
        sync.sync_batchnorm_forward(x, gamma, beta, dict(param), comm="world")
    _, cache = sync.sync_batchnorm_forward(x, gamma, beta, dict(param))
    for bad in (None, (1, 2), batch.batchnorm_forward(x, gamma, beta, {"mode": "train"})[1]):
        with pytest.raises(TypeError, match="sync_batchnorm_forward"):
            sync.sync_batchnorm_backward(np.ones((4, 3)), bad)
    with pytest.raises(ValueError, match="dout"):
        sync.sync_batchnorm_backward(np.ones((4, 4)), cache)
    with pytest.raises(TypeError, match="dout"):
        sync.sync_batchnorm_backward(np.ones((4, 3), dtype=int), cache)
    with pytest.raises(ValueError, match="sync_batchnorm_forward"):
        sync.sync_spatial_batchnorm_forward(x, gamma, beta, dict(param))
    with pytest.raises(ValueError, match="gamma"):
        sync.sync_spatial_batchnorm_forward(
            np.ones((2, 3, 2, 2)), np.ones(2), np.ones(3), {"mode": "train"}
        )
    with pytest.raises(TypeError, match="sync_spatial_batchnorm_forward"):
        sync.sync_spatial_batchnorm_backward(np.ones((2, 3, 2, 2)), cache)
    with pytest.raises(TypeError, match="cache"):
        sync.simulated_backward(np.ones(3), "cache")
