"""Batch normalization: the forward pass and three hand-derived backward routes.

Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", arXiv:1502.03167, Algorithm 1 and section 3.

Formula, for x: (N, D), reducing over the batch axis (axis 0), per feature d::

    mu    = 1/N sum_i x_i                         # (D,)
    var   = 1/N sum_i (x_i - mu)^2                # (D,)  biased, as in the paper and cs231n
    xhat  = (x - mu) / sqrt(var + eps)            # (N, D)
    y     = gamma * xhat + beta                   # (N, D)

Train mode normalizes by the batch statistics and updates the running ones. Test mode
normalizes by ``running_mean`` and ``running_var``, so the layer is a fixed affine map.

The three backward routes give the same ``(dx, dgamma, dbeta)`` from the same cache and
are written to read like their derivations (``docs/derivation.md``):

- ``batchnorm_backward``: the staged computation graph, node by node;
- ``batchnorm_backward_paper``: the paper's chain-rule equations, unsimplified;
- ``batchnorm_backward_alt``: the simplified closed form
  ``dx = gamma / sqrt(var + eps) * (dout - (dbeta + xhat * dgamma) / N)``.

Numerics (``core``'s, see there):

- statistics are accumulated and x is centred in float64 (or wider), never as
  E[x^2] - E[x]^2, and results are cast back to x's dtype. float32 data whose mean is
  1e6 times its spread still normalizes to within 1e-3;
- any finite x: a feature whose var + eps would over- or underflow (|x| up to 1.8e308,
  spreads such as 1e-170) is normalized on an exact power-of-two rescaling, and the cache
  holds that rescaled problem (``BatchNormCache.exp``): each route runs its usual
  statements on it and divides dx by 2**exp as a separate, exact last step. The normal
  range is untouched, bit for bit;
- NaN or inf in a feature of x gives NaN in that feature's output and gradients. A
  train step never writes a non-finite running statistic: a feature whose batch mean or
  variance is not finite (NaN or inf in x), or whose updated running value would
  overflow its dtype (a variance beyond 1.8e308), keeps its previous running statistics,
  and a ``RuntimeWarning`` names it (``RunningStats.update``).

Errors (all raised before ``bn_param`` is touched): ``TypeError`` for a non-array or
non-floating x, non-numeric gamma or beta, a non-dict ``bn_param``, or a number given
as a string or bool; ``ValueError`` for wrong shapes, an unknown ``bn_param`` key (a
typo such as ``momentun``; the message lists the known keys), a bad mode, eps < 0,
momentum outside [0, 1], non-finite or negative running statistics, fewer than 2 rows in
train mode, and eps = 0 where a feature is constant (train) or its running variance is 0
(test), where xhat = 0/0. Each backward checks that its cache came from
``batchnorm_forward`` (``TypeError`` naming the forward to call otherwise). D = 0
features give an empty result; N = 0 rows an empty result in test mode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import core, spec
from normgrad.norms.running import RunningStats


class BatchNormCache(NamedTuple):
    """What the backward routes need from the forward pass (all three share it).

    x, mu, var and eps describe the problem the routes solve: the input as given, or,
    when ``exp`` is set, its exact rescaling (the normalization is scale-invariant, and
    dL/dx = dL/d(x / 2**exp) / 2**exp).
    """

    x: np.ndarray  # (N, D) the input: the graph and paper routes rebuild x - mu from it
    xhat: np.ndarray  # (N, D) normalized input, in x's dtype (float32 rounding for float32 x,
    # below float32 output resolution): dgamma = sum(dout * xhat), and the alt route
    mu: np.ndarray  # (D,) the mean x was centred by (batch mean in train, running in test)
    var: np.ndarray  # (D,) the variance x was scaled by; the paper's dL/dvar node needs it
    eps: float | np.ndarray  # added to var under the square root ((D,) when rescaled)
    gamma: np.ndarray  # (D,) the scale: dL/dxhat = dout * gamma
    train: bool  # in test mode mu and var are constants, so they pass no gradient
    exp: np.ndarray | None = None  # (D,) int, or None: x, mu, var and eps above are those
    # of x / 2**exp, eps / 4**exp (``core.Rescaled``), for features whose var + eps would
    # over- or underflow (exp = 0 elsewhere); the routes divide dx by 2**exp at the end


class BatchNormInputs(NamedTuple):
    """batch norm's checked inputs: what ``parse_inputs`` returns."""

    gamma: np.ndarray  # (D,) floating (integer gamma is cast to x's dtype)
    beta: np.ndarray  # (D,) floating
    train: bool
    eps: float
    stats: RunningStats  # the running statistics, read and checked, not yet written


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> BatchNormInputs:
    """Check batch norm's inputs and read ``bn_param``. Writes nothing.

    Shared by the reference forward pass and the fused kernel, so both accept and reject
    exactly the same calls, with the same messages.
    """
    v.float_array(x, "x")
    v.ndim(x, "x", 2, "(N, D)", "For (N, C, H, W) input use spatial_batchnorm_forward.")
    N, D = x.shape
    gamma = v.float_param(gamma, "gamma", x.dtype)
    beta = v.float_param(beta, "beta", x.dtype)
    v.shape(gamma, "gamma", (D,), "one scale per feature of x: (N, D)")
    v.shape(beta, "beta", (D,), "one shift per feature of x: (N, D)")
    if not isinstance(bn_param, dict):
        raise TypeError(
            f"bn_param must be a dict such as {{'mode': 'train'}}; got {type(bn_param).__name__}."
        )
    v.known_keys(bn_param, "bn_param", PARAM_KEYS)
    mode = v.choice(bn_param.get("mode"), "bn_param['mode']", ("train", "test"))
    eps = core.read_eps(bn_param, "bn_param")
    stats = RunningStats.from_param(bn_param, D, x.dtype)
    train = mode == "train"
    if train and N < 2:
        raise ValueError(
            f"batch norm in train mode needs at least 2 rows to estimate a variance; got "
            f"x of shape {tuple(x.shape)}. Use a larger batch, or mode 'test'."
        )
    if not train and eps == 0:
        zero = np.flatnonzero(stats.var == 0)
        if zero.size:
            raise ValueError(
                f"bn_param['eps'] = 0 and bn_param['running_var'] is 0 at feature "
                f"{int(zero[0])} (of {D}), so test mode would compute (x - running_mean) / 0. "
                "Pass eps > 0 (the default is 1e-5), or train first so that the running "
                "variance is positive."
            )
    return BatchNormInputs(gamma, beta, train, eps, stats)


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalization forward pass (cs231n signature and semantics).

    y = gamma * (x - mu) / sqrt(var + eps) + beta, with mu and var the per-feature
    mean and biased variance over the batch axis N in train mode, and the running
    statistics in test mode.

    Args:
        x: (N, D) input, any floating dtype; N >= 2 in train mode.
        gamma: (D,) scale. Read, never modified.
        beta: (D,) shift. Read, never modified.
        bn_param: dict with
            - ``mode``: ``"train"`` or ``"test"`` (required);
            - ``eps``: >= 0, default 1e-5;
            - ``momentum``: in [0, 1], default 0.9, or ``None`` for a cumulative average;
            - ``running_mean``, ``running_var``: (D,), created as zeros of x's dtype when
              absent and written back after each train step;
            - ``momentum_convention``: ``"course"`` (default; momentum weighs the old
              running value, ``running = momentum*running + (1-momentum)*batch``) or
              ``"torch"`` (momentum weighs the new batch value, as torch.nn.BatchNorm);
            - ``unbiased_running_var``: default False; True stores var * N/(N-1) in
              ``running_var`` as PyTorch does (normalization always uses the biased var);
            - ``num_batches_tracked``: count of train steps, kept when present or when
              ``momentum`` is None. ``torch_bn_param()`` builds PyTorch's settings.

    Returns:
        out: (N, D) in x's dtype, and the cache for the backward routes.

    Numerics: correct for any finite x, including |x| up to 1.8e308 and spreads far
    below 1e-154 (module docstring); NaN or inf in a feature gives NaN there, and a train
    step then keeps that feature's previous running statistics (``RuntimeWarning``).

    Raises:
        TypeError: x is not a floating ndarray, gamma or beta is not a numeric one
            (integer gamma and beta, as the course's notebooks pass, are cast to x's
            dtype), bn_param is not a dict, or a number in it is a string or a bool.
        ValueError: a wrong shape, an unknown bn_param key (the message lists the known
            ones), a bad mode, eps < 0, momentum outside [0, 1], a running statistic that
            is not finite (or a negative running_var), fewer than 2 rows in train mode, or
            eps = 0 with a constant feature (train) or a zero running_var (test).
            bn_param is left exactly as it was.
    """
    inputs = parse_inputs(x, gamma, beta, bn_param)
    out, cache, mu, var = forward_checked(x, inputs)
    # Nothing above wrote to bn_param; the update is the last step. Test mode writes the
    # stats back unchanged, as the course does (so absent ones appear, as zeros).
    stats = inputs.stats
    (stats.update(mu, var, x.shape[0]) if inputs.train else stats).write(bn_param)
    return out, cache


def forward_checked(
    x: np.ndarray, inputs: BatchNormInputs
) -> tuple[np.ndarray, BatchNormCache, np.ndarray, np.ndarray]:
    """``batchnorm_forward`` once ``parse_inputs`` has checked the call, writing nothing.

    Returns (out, cache, mu, var): the caller updates and writes the running statistics
    from mu and var, (D,) each (spatial batch norm checks its own (N, C, H, W) input and
    calls this on its (N*H*W, C) rows).
    """
    gamma, beta, train, eps, stats = inputs
    solved: tuple[Any, ...] = ()  # the rescaled problem, when a feature needed one
    if train:
        # Two-pass mean and biased variance over N, in float64 for float32 input.
        s, rescaled = core.standardize_rescaled(x, (0,), eps)
        mu, var, xhat = s.mu[0], s.var[0], s.xhat  # (D,), (D,), (N, D)
        if rescaled is not None:  # (N, D), (D,) x4: x / 2**exp, its stats, eps / 4**exp
            solved = (rescaled.x, rescaled.mu[0], rescaled.var[0], rescaled.eps[0])
            solved += (rescaled.exp[0],)
    else:
        # (N, D), (D,), (D,): normalized by the running statistics
        xhat, mu, var, _ = core.standardize_given(x, stats.mean, stats.var, eps)
    out = (gamma * xhat + beta).astype(x.dtype, copy=False)  # (N, D)
    xhat = xhat.astype(x.dtype, copy=False)  # (N, D)
    if solved:
        xs, mus, vars_, epss, exp = solved
        return out, BatchNormCache(xs, xhat, mus, vars_, epss, gamma, train, exp), mu, var
    return out, BatchNormCache(x, xhat, mu, var, eps, gamma, train), mu, var


def _reduce_dgamma_dbeta(dout: np.ndarray, xhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dgamma = sum_i dout_i * xhat_i and dbeta = sum_i dout_i, both (D,), in float64 or wider.

    y = gamma * xhat + beta, and gamma and beta are broadcast over the batch, so their
    gradients sum the upstream gradient over it. Every route shares these two lines.
    """
    cdt = v.compute_dtype(dout.dtype)
    dbeta = dout.sum(axis=0, dtype=cdt)  # (D,)
    dgamma = np.einsum("nd,nd->d", dout, xhat, dtype=cdt)  # (D,) no (N, D) temporary
    return dgamma, dbeta


def _frozen_backward(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test mode: mu and var are constants, so y is affine in x: dx = dout * gamma / std."""
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, cache.xhat)
    dx = dout * (cache.gamma / np.sqrt(cache.var + cache.eps))  # (N, D)
    return _cast(dx, dgamma, dbeta, cache)


def _unscale(dx: np.ndarray, cache: BatchNormCache) -> np.ndarray:
    """dL/dx from the rescaled problem's gradient: x was divided by 2**exp per feature, so
    dL/dx = dL/d(x / 2**exp) / 2**exp, an exact power-of-two step (None: nothing to do)."""
    if cache.exp is None:
        return dx
    with np.errstate(over="ignore", under="ignore"):  # a gradient beyond range is +-inf
        return np.ldexp(dx, -cache.exp)  # (N, D)


def _cast(
    dx: np.ndarray, dgamma: np.ndarray, dbeta: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients in the input's dtypes: dx as x (xhat keeps x's dtype), the rest as gamma."""
    g = cache.gamma.dtype
    return (
        _unscale(dx, cache).astype(cache.xhat.dtype, copy=False),
        dgamma.astype(g, copy=False),
        dbeta.astype(g, copy=False),
    )


def _check(dout: np.ndarray, cache: Any, backward: str) -> None:
    """The cache came from ``batchnorm_forward`` and dout has its output's shape."""
    v.cache_of(cache, BatchNormCache, backward, "batchnorm_forward")
    core.check_dout(dout, cache.xhat.shape)


def batchnorm_backward(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward through the staged computation graph, node by node (cs231n route 1).

    The forward pass as a graph of elementary nodes, rebuilt from the cache::

        xmu = x - mu;  sq = xmu**2;  var = mean_i(sq);  sqrtvar = sqrt(var + eps)
        ivar = 1 / sqrtvar;  xhat = xmu * ivar;  gammax = gamma * xhat;  y = gammax + beta

    Each step below walks one node backwards and multiplies by its local derivative.

    Args:
        dout: (N, D) upstream gradient dL/dy.
        cache: from ``batchnorm_forward``.

    Returns:
        dx: (N, D), dgamma: (D,), dbeta: (D,).

    Raises:
        TypeError: cache is not ``batchnorm_forward``'s, or dout is not a floating array.
        ValueError: dout's shape is not x's.
    """
    _check(dout, cache, "batchnorm_backward")
    if not cache.train:
        return _frozen_backward(dout, cache)
    x, xhat, mu, var, eps, gamma, *_ = cache  # x / 2**exp ... when rescaled (_cast undoes it)
    N = x.shape[0]
    xmu = x - mu  # (N, D) node xmu
    sqrtvar = np.sqrt(var + eps)  # (D,) node sqrtvar
    ivar = 1.0 / sqrtvar  # (D,) node ivar

    # y = gammax + beta; beta is broadcast over N, so its gradient sums over N.
    # gammax = gamma * xhat; d/dgamma = xhat (summed over N), d/dxhat = gamma.
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, xhat)  # (D,), (D,)
    dxhat = dout * gamma  # (N, D)
    # xhat = xmu * ivar; d/divar = xmu (summed over N), d/dxmu = ivar.
    divar = np.sum(dxhat * xmu, axis=0)  # (D,)
    dxmu1 = dxhat * ivar  # (N, D)
    # ivar = 1 / sqrtvar; local derivative -1 / sqrtvar^2.
    dsqrtvar = -divar / sqrtvar**2  # (D,)
    # sqrtvar = sqrt(var + eps); local derivative 1 / (2 sqrtvar).
    dvar = 0.5 * dsqrtvar / sqrtvar  # (D,)
    # var = 1/N sum_i sq_i; each sq_i receives dvar / N.
    dsq = np.broadcast_to(dvar / N, x.shape)  # (N, D)
    # sq = xmu**2; local derivative 2 xmu.
    dxmu2 = 2.0 * xmu * dsq  # (N, D)
    # xmu = x - mu has two parents; first gather both branches into xmu.
    dxmu = dxmu1 + dxmu2  # (N, D)
    # d/dx = 1 per element; d/dmu = -1 summed over N.
    dx1 = dxmu  # (N, D)
    dmu = -np.sum(dxmu, axis=0)  # (D,)
    # mu = 1/N sum_i x_i; each x_i receives dmu / N.
    dx2 = np.broadcast_to(dmu / N, x.shape)  # (N, D)
    dx = dx1 + dx2  # (N, D)
    return _cast(dx, dgamma, dbeta, cache)


def batchnorm_backward_paper(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward by the paper's chain-rule equations, before any simplification.

    Ioffe & Szegedy 2015, section 3 (m there is N here)::

        dL/dxhat_i = dL/dy_i * gamma
        dL/dvar    = sum_i dL/dxhat_i * (x_i - mu) * (-1/2) (var + eps)^(-3/2)
        dL/dmu     = sum_i dL/dxhat_i * (-1 / sqrt(var + eps))
                     + dL/dvar * sum_i -2 (x_i - mu) / N
        dL/dx_i    = dL/dxhat_i / sqrt(var + eps) + dL/dvar * 2 (x_i - mu) / N + dL/dmu / N
        dL/dgamma  = sum_i dL/dy_i * xhat_i
        dL/dbeta   = sum_i dL/dy_i

    The second term of dL/dmu is zero in exact arithmetic (sum_i (x_i - mu) = 0); the
    paper keeps it, and so does this route.

    Args:
        dout: (N, D) upstream gradient dL/dy.
        cache: from ``batchnorm_forward``.

    Returns:
        dx: (N, D), dgamma: (D,), dbeta: (D,).

    Raises:
        TypeError: cache is not ``batchnorm_forward``'s, or dout is not a floating array.
        ValueError: dout's shape is not x's.
    """
    _check(dout, cache, "batchnorm_backward_paper")
    if not cache.train:
        return _frozen_backward(dout, cache)
    x, xhat, mu, var, eps, gamma, *_ = cache  # x / 2**exp ... when rescaled (_cast undoes it)
    N = x.shape[0]
    xmu = x - mu  # (N, D)
    dxhat = dout * gamma  # (N, D)
    dvar = np.sum(dxhat * xmu, axis=0) * -0.5 * (var + eps) ** -1.5  # (D,)
    dmu = (
        np.sum(dxhat * (-1.0 / np.sqrt(var + eps)), axis=0) + dvar * np.sum(-2.0 * xmu, axis=0) / N
    )  # (D,)
    dx = dxhat / np.sqrt(var + eps) + dvar * 2.0 * xmu / N + dmu / N  # (N, D)
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, xhat)  # (D,), (D,)
    return _cast(dx, dgamma, dbeta, cache)


def batchnorm_backward_alt(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward by the simplified closed form (the seed notebook's section 02)::

        dx_i = gamma / sqrt(var + eps) * (dL/dy_i - (dL/dbeta + xhat_i * dL/dgamma) / N)

    It follows from the paper's equations once sum_i (x_i - mu) = 0 removes the second
    term of dL/dmu, and dL/dvar is rewritten with dL/dgamma (docs/derivation.md, part 3).
    One pass for the two reductions and one for dx: the fastest reference route.

    Args:
        dout: (N, D) upstream gradient dL/dy.
        cache: from ``batchnorm_forward``.

    Returns:
        dx: (N, D), dgamma: (D,), dbeta: (D,).

    Raises:
        TypeError: cache is not ``batchnorm_forward``'s, or dout is not a floating array.
        ValueError: dout's shape is not x's.
    """
    _check(dout, cache, "batchnorm_backward_alt")
    if not cache.train:
        return _frozen_backward(dout, cache)
    x, xhat, _, var, eps, gamma, *_ = cache  # var, eps / 4**exp when rescaled (_cast undoes it)
    N = x.shape[0]
    dgamma, dbeta = _reduce_dgamma_dbeta(dout, xhat)  # (D,), (D,)
    scale = gamma / np.sqrt(var + eps)  # (D,)
    dx = xhat * (dgamma / N)  # (N, D)  xhat_i * dgamma / N
    dx += dbeta / N  # (N, D)  + dbeta / N
    np.subtract(dout, dx, out=dx)  # (N, D)  dout_i - (...)
    dx *= scale  # (N, D)
    return _cast(dx, dgamma, dbeta, cache)


# Every backward route by name: the CLI, the benchmarks and the checks iterate this.
ROUTES = {
    "graph": batchnorm_backward,
    "paper": batchnorm_backward_paper,
    "alt": batchnorm_backward_alt,
}


# ---- specification ---------------------------------------------------------------------


def _bind(
    forward: spec.Forward, mode: str = "train", eps: float = 1e-5, **extra: Any
) -> spec.Forward:
    """``forward(x, gamma, beta, bn_param)`` with a fresh ``bn_param`` on every call."""
    return lambda x, gamma, beta: forward(x, gamma, beta, {"mode": mode, "eps": eps, **extra})


def _torch(
    torch: Any, inputs: dict[str, Any], mode: str = "train", eps: float = 1e-5, **_: Any
) -> Any:
    F = torch.nn.functional
    return F.batch_norm(
        inputs["x"], None, None, inputs["gamma"], inputs["beta"], training=mode == "train", eps=eps
    )


PARAM_KEYS = {
    "mode": "'train' (batch statistics) or 'test' (running statistics); required",
    "eps": "added to var under the square root, >= 0 (default 1e-5)",
    "momentum": "running-average weight in [0, 1] (default 0.9), or None: cumulative",
    "running_mean": "(D,) running mean, written back in train mode",
    "running_var": "(D,) running variance, written back in train mode",
    "momentum_convention": "'course' (momentum weighs the old value) or 'torch'",
    "unbiased_running_var": "store var * N/(N-1), as PyTorch (default False)",
    "num_batches_tracked": "count of train steps, kept when present",
}

SPEC = spec.NormSpec(
    name="batchnorm",
    title="batch normalization",
    paper="Ioffe & Szegedy 2015, arXiv:1502.03167",
    layout="(N, D)",
    forward=batchnorm_forward,
    routes={name: spec.Route(fn) for name, fn in ROUTES.items()},
    bind=_bind,
    param_name="bn_param",
    param_keys=PARAM_KEYS,
    cases=(spec.CaseInputs("train", spec.affine_inputs((7, 5), (5,))),),
    torch=_torch,
    symbolic=spec.Symbolic(
        "batch",
        ("N", "D"),
        ({"N": 2, "D": 1}, {"N": 3, "D": 2}, {"N": 4, "D": 2}),
        "normgrad.symbolic.batch:build",
        all_sizes=spec.AllSizes.columns(),
    ),
    blocks=(
        spec.Block(
            "fc",
            "batchnorm",
            batchnorm_forward,
            batchnorm_backward_alt,
            param_shape=lambda F: (F,),
            init_param=lambda: {"mode": "train"},
            train_mode=True,
            cancels_bias=True,
            fused=spec.lazy_block(
                "normgrad.kernels.batchnorm",
                "batchnorm_forward_fused",
                "batchnorm_backward_fused",
                "batchnorm_relu_forward_fused",
            ),
        ),
    ),
    fused=spec.lazy_route(
        "normgrad.kernels.batchnorm", "batchnorm_forward_fused", "batchnorm_backward_fused"
    ),
)
