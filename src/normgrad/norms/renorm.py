"""Batch renormalization: batch norm corrected toward the running statistics.

Ioffe 2017, "Batch Renormalization: Towards Reducing Minibatch Dependence in
Batch-Normalized Models", arXiv:1702.03275, Algorithm 1.

Formula, for x: (N, D), reducing over the batch axis (axis 0), per feature d::

    mu_B    = 1/N sum_i x_i                                       # (D,)
    var_B   = 1/N sum_i (x_i - mu_B)^2                            # (D,) biased, as batch norm
    sigma_B = sqrt(var_B + eps)                                   # (D,)
    sigma   = sqrt(running_var + eps)                             # (D,) before this step's update
    r       = stop_gradient(clip(sigma_B / sigma, 1/r_max, r_max))             # (D,)
    d       = stop_gradient(clip((mu_B - running_mean) / sigma, -d_max, d_max))  # (D,)
    xbn     = (x - mu_B) / sigma_B                                # (N, D) batch norm's xhat
    xhat    = xbn * r + d                                         # (N, D)
    y       = gamma * xhat + beta                                 # (N, D)

Train mode normalizes by the batch statistics, corrects by r and d, then updates the
running statistics exactly as batch norm does (``RunningStats``: both momentum
conventions, the unbiased option, the cumulative average). Test mode is batch norm's
test mode, y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.

r and d are constants of the backward pass (the paper's stop_gradient), so in train mode
the gradient is batch norm's closed form with gamma * r in place of gamma::

    dbeta  = sum_i dout_i
    dgamma = sum_i dout_i * xhat_i  =  r * sum_i dout_i * xbn_i + d * dbeta
    dx     = gamma * r / sigma_B * (dout - (dbeta + xbn * sum_i dout_i * xbn_i) / N)

that is, with g = dout * gamma * r, dx = (g - mean_i(g) - xbn * mean_i(g * xbn)) / sigma_B
(docs/derivation.md, section 9.9).

- **r_max = 1, d_max = 0 is batch norm, bit for bit.** Then r = 1 and d = 0 exactly, and
  the arithmetic is arranged so that out, the running statistics and (dx, dgamma, dbeta)
  equal ``batchnorm_forward`` and ``batchnorm_backward_alt``'s with ``np.array_equal``.
  The paper trains with r_max = 1, d_max = 0 first and relaxes them to 3 and 5; set
  ``bn_param["r_max"]`` and ``bn_param["d_max"]`` between steps to follow that schedule.
  The defaults are the final values, 3 and 5.
- **Finite differences agree only in saturation.** They measure the true derivative of
  the forward pass, in which r and d depend on x; this backward holds them constant,
  as the paper does. The two agree where r and d are clipped at a bound (locally
  constant in x), so the finite-difference cases below put every feature there.
- **Running statistics.** The paper averages sigma itself; here the running variance is
  averaged as in batch norm, and sigma = sqrt(running_var + eps), so ``bn_param`` and
  test mode are batch norm's. Absent running statistics are created as zeros, as batch
  norm creates them: at the first step sigma = sqrt(eps), so r = r_max and d = +-d_max
  (clipped; finite for eps > 0). For PyTorch-style initial statistics (mean zeros,
  variance ones, sigma ~ 1) pass ``torch_bn_param(D)`` or set ``running_var`` to ones.

Numerics as batch norm: statistics in float64 (or wider) by two passes
(``core.standardize``), r and d in the same dtype, results cast back to x's dtype.
Correct for any finite x: a feature whose var + eps would over- or underflow is solved
on an exact power-of-two rescaling (sigma_B is formed as 2**exp * sqrt(var_s + eps_s),
and the cache holds the rescaled variance, ``BatchRenormCache.exp``, so the backward
divides dx by 2**exp at the end). NaN in x gives NaN in that feature, whose running
statistics a train step then leaves unchanged (``RunningStats.update``).

Errors as batch norm's (``bn_param`` keys are checked against ``PARAM_KEYS``, batch
norm's plus ``r_max`` and ``d_max``; running statistics must be finite, which matters
here in train mode too, as r and d read them), raised before ``bn_param`` is touched;
the backward refuses any cache but ``batchrenorm_forward``'s (``TypeError``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import batch, core, spec
from normgrad.norms.running import RunningStats

#: The default clipping limits: the paper's final values (its experiments start from
#: r_max = 1, d_max = 0, batch norm, and relax them to 3 and 5 during training).
R_MAX = 3
D_MAX = 5


class BatchRenormCache(NamedTuple):
    """What ``batchrenorm_backward`` needs from the forward pass."""

    xbn: np.ndarray  # (N, D) x normalized by the statistics used (batch in train, running in
    # test), in x's dtype as batch norm caches xhat: both sums and dx read it
    r: np.ndarray  # (D,) the scale correction, a constant: it scales gamma (ones in test)
    d: np.ndarray  # (D,) the shift correction, a constant: dgamma = r*sum(dout*xbn) + d*dbeta
    var: np.ndarray  # (D,) the variance x was scaled by: dx divides by sqrt(var + eps)
    eps: float | np.ndarray  # added to var under the square root ((D,) when rescaled)
    gamma: np.ndarray  # (D,) the scale: dL/dxbn = dout * gamma * r; the gradients' dtype
    train: bool  # in test mode the statistics are constants: dx = dout * gamma / sigma
    exp: np.ndarray | None = None  # (D,) int, or None: var and eps above are those of
    # x / 2**exp (``core.Rescaled``) where var + eps would over- or underflow; the
    # backward divides dx by 2**exp at the end (exact)


class BatchRenormInputs(NamedTuple):
    """batch renorm's checked inputs: what ``parse_inputs`` returns."""

    gamma: np.ndarray  # (D,) floating (integer gamma is cast to x's dtype)
    beta: np.ndarray  # (D,) floating
    train: bool
    eps: float
    stats: RunningStats  # the running statistics, read and checked, not yet written
    r_max: float  # >= 1: r is clipped to [1/r_max, r_max]
    d_max: float  # >= 0: d is clipped to [-d_max, d_max]


def _read_limit(param: dict[str, Any], key: str, default: int, lowest: int, why: str) -> float:
    """``param[key]`` (default ``default``) as a finite float >= ``lowest``."""
    name = f"bn_param['{key}']"
    raw = param.get(key, default)
    fix = (
        f"Pass a finite number >= {lowest}, e.g. {name} = {default} (the paper's final "
        f"value) or {lowest} ({why})."
    )
    if isinstance(raw, (bool, np.bool_)) or not isinstance(
        raw, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number; got {raw!r}. {fix}")
    value = float(raw)
    if not np.isfinite(value) or value < lowest:
        raise ValueError(f"{name} must be a finite number >= {lowest}; got {raw!r}. {fix}")
    return value


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> BatchRenormInputs:
    """Check batch renorm's inputs and read ``bn_param``. Writes nothing.

    Every key batch norm reads is checked by ``batch.parse_inputs`` (same rules, same
    messages); ``r_max`` and ``d_max`` are checked here.
    """
    v.float_array(x, "x")
    v.ndim(
        x,
        "x",
        2,
        "(N, D)",
        "Batch renorm takes (N, D) activations; for (N, C, H, W) feature maps normalize "
        "the (N*H*W, C) pixel rows, x.transpose(0, 2, 3, 1).reshape(-1, C).",
    )
    if not isinstance(bn_param, dict):
        raise TypeError(
            f"bn_param must be a dict such as {{'mode': 'train'}}; got {type(bn_param).__name__}."
        )
    v.known_keys(bn_param, "bn_param", PARAM_KEYS)
    limits = ("r_max", "d_max")  # batch norm's parse_inputs reads every other key
    bn_only = {k: value for k, value in bn_param.items() if k not in limits}
    gamma, beta, train, eps, stats = batch.parse_inputs(x, gamma, beta, bn_only)
    r_max = _read_limit(bn_param, "r_max", R_MAX, 1, "r = 1 always, batch norm's scale")
    d_max = _read_limit(bn_param, "d_max", D_MAX, 0, "d = 0 always, batch norm's shift")
    return BatchRenormInputs(gamma, beta, train, eps, stats, r_max, d_max)


def renorm_corrections(
    mu: np.ndarray,
    var: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float,
    r_max: float,
    d_max: float,
) -> tuple[np.ndarray, np.ndarray]:
    """r and d of Algorithm 1, (D,) each, from the batch and the running statistics.

    r = clip(sigma_B / sigma, 1/r_max, r_max), d = clip((mu_B - running_mean) / sigma,
    -d_max, d_max), with sigma_B = sqrt(var + eps) and sigma = sqrt(running_var + eps).

    Args:
        mu, var: (D,) batch mean and biased batch variance, floating.
        running_mean, running_var: (D,) the running statistics before this step's update.
        eps: >= 0.
        r_max: >= 1. d_max: >= 0.

    Returns:
        r, d: (D,) in float64 (or wider). With eps = 0 and a zero running variance,
        sigma = 0: r is then r_max, and d is +-d_max (0 where the means agree); r is NaN
        only where the batch variance is 0 as well, where xbn is NaN anyway.
    """
    cdt = np.promote_types(v.compute_dtype(mu.dtype), var.dtype)
    sigma_b = np.sqrt(var.astype(cdt, copy=False) + eps)  # (D,)
    return _corrections(mu, sigma_b, running_mean, running_var, eps, r_max, d_max)


def _corrections(
    mu: np.ndarray,
    sigma_b: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float,
    r_max: float,
    d_max: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``renorm_corrections`` given sigma_B = sqrt(var_B + eps) itself, (D,) each.

    The forward pass forms sigma_B from the rescaled statistics, so it is right even
    where var_B itself over- or underflows (sigma_B <= max|x| always fits).
    """
    cdt = np.promote_types(v.compute_dtype(mu.dtype), sigma_b.dtype)
    sigma = np.sqrt(running_var.astype(cdt) + eps)  # (D,)
    with np.errstate(over="ignore"):  # mu_B and the running mean near +-1.8e308
        shift = mu.astype(cdt, copy=False) - running_mean.astype(cdt)  # (D,)
    with np.errstate(divide="ignore", invalid="ignore"):  # sigma = 0 needs eps = 0
        r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max)  # (D,)
        ratio = np.where(shift == 0, 0.0, shift / sigma)  # (D,)
        if not np.isfinite(shift).all():  # the difference overflowed: halve both (exact)
            half = (mu.astype(cdt) * 0.5 - running_mean.astype(cdt) * 0.5) / (sigma * 0.5)
            ratio = np.where(np.isfinite(shift), ratio, half)  # (D,)
        d = np.clip(ratio, -d_max, d_max)  # (D,)
    return r, d


def batchrenorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, BatchRenormCache]:
    """Batch renormalization forward pass (cs231n-style signature, batch norm's bn_param).

    Train mode: y = gamma * ((x - mu_B) / sigma_B * r + d) + beta, with mu_B and var_B the
    per-feature mean and biased variance over the batch axis N, sigma_B = sqrt(var_B +
    eps), and r, d the clipped corrections toward the running statistics (module
    docstring); then the running statistics are updated as batch norm's. Test mode:
    y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta, as batch norm.

    Args:
        x: (N, D) input, any floating dtype; N >= 2 in train mode.
        gamma: (D,) scale. Read, never modified.
        beta: (D,) shift. Read, never modified.
        bn_param: dict with every key of ``batchnorm_forward`` (``mode`` required;
            ``eps``, ``momentum``, ``running_mean``, ``running_var``,
            ``momentum_convention``, ``unbiased_running_var``, ``num_batches_tracked``,
            same meanings and defaults), and
            - ``r_max``: >= 1, default 3; r is clipped to [1/r_max, r_max];
            - ``d_max``: >= 0, default 5; d is clipped to [-d_max, d_max].
            r_max = 1 and d_max = 0 give batch norm exactly. Absent running statistics
            are created as zeros (r = r_max, d = +-d_max at the first step; see the
            module docstring for PyTorch-style initial statistics).

    Returns:
        out: (N, D) in x's dtype, and the cache for ``batchrenorm_backward``.

    Raises:
        TypeError: x is not a floating ndarray, gamma or beta not a numeric one, bn_param
            not a dict, or r_max or d_max not a real number.
        ValueError: a wrong shape, an unknown bn_param key, mode, eps, momentum,
            non-finite or negative running statistics, r_max < 1, d_max < 0, fewer than
            2 rows in train mode, or eps = 0 with a constant feature. bn_param is left
            exactly as it was.
    """
    gamma, beta, train, eps, stats, r_max, d_max = parse_inputs(x, gamma, beta, bn_param)
    var_c: np.ndarray
    eps_c: float | np.ndarray
    exp = None
    if train:
        # Two-pass mean and biased variance over N, in float64 for float32 input.
        s, rescaled = core.standardize_rescaled(x, (0,), eps)
        mu, var, xbn = s.mu[0], s.var[0], s.xhat  # (D,), (D,), (N, D)
        var_c, eps_c = var, eps  # (D,), what the backward divides by
        if rescaled is not None:  # var and eps of x / 2**exp where var + eps is extreme
            var_c, eps_c, exp = rescaled.var[0], rescaled.eps[0], rescaled.exp[0]
        with np.errstate(over="ignore", under="ignore"):
            sigma_b = np.ldexp(np.sqrt(var_c + eps_c), 0 if exp is None else exp)  # (D,)
        # From the running statistics as they were before this step.
        r, d = _corrections(mu, sigma_b, stats.mean, stats.var, eps, r_max, d_max)
        xhat = xbn * r + d  # (N, D); exactly xbn when r = 1 and d = 0
    else:
        # (N, D), (D,), (D,): normalized by the running statistics, as batch norm
        xbn, mu, var, _ = core.standardize_given(x, stats.mean, stats.var, eps)
        var_c, eps_c = var, eps
        r, d = np.ones_like(var), np.zeros_like(var)  # (D,): no correction in test mode
        xhat = xbn  # (N, D)
    out = (gamma * xhat + beta).astype(x.dtype, copy=False)  # (N, D)

    # Nothing above wrote to bn_param; the update is the last step, as in batch norm.
    (stats.update(mu, var, x.shape[0]) if train else stats).write(bn_param)
    xbn = xbn.astype(x.dtype, copy=False)  # (N, D)
    return out, BatchRenormCache(xbn, r, d, var_c, eps_c, gamma, train, exp)


def batchrenorm_backward(
    dout: np.ndarray, cache: BatchRenormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch renormalization backward pass, closed form, with r and d held constant.

    Train mode (batch norm's ``alt`` route with gamma -> gamma * r)::

        dbeta  = sum_i dout_i
        proj   = sum_i dout_i * xbn_i
        dgamma = r * proj + d * dbeta                 # = sum_i dout_i * xhat_i
        dx     = gamma * r / sqrt(var + eps) * (dout - (dbeta + xbn * proj) / N)

    Test mode: dx = dout * gamma / sqrt(running_var + eps), as batch norm. The sums run
    over the batch axis N and are accumulated in float64 (or wider).

    This is the gradient the paper defines (r, d under stop_gradient), not the true
    derivative of the forward pass: the two agree where r and d are clipped.

    Args:
        dout: (N, D) upstream gradient dL/dy.
        cache: from ``batchrenorm_forward``.

    Returns:
        dx: (N, D) in x's dtype; dgamma: (D,), dbeta: (D,) in gamma's dtype.

    Raises:
        TypeError: cache is not ``batchrenorm_forward``'s, or dout is not a floating
            array. ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, BatchRenormCache, "batchrenorm_backward", "batchrenorm_forward")
    xbn, r, d, var, eps, gamma, train, exp = cache  # var, eps / 4**exp when rescaled
    core.check_dout(dout, xbn.shape)
    cdt = v.compute_dtype(dout.dtype)
    # y = gamma * (xbn * r + d) + beta: gamma and beta are broadcast over N.
    dbeta = dout.sum(axis=0, dtype=cdt)  # (D,)
    proj = np.einsum("nd,nd->d", dout, xbn, dtype=cdt)  # (D,) sum_i dout_i * xbn_i
    dgamma = r * proj + d * dbeta  # (D,) sum_i dout_i * (xbn_i * r + d)
    scale = gamma * r / np.sqrt(var + eps)  # (D,) gamma * r / sigma
    if train:
        N = xbn.shape[0]
        dx = xbn * (proj / N)  # (N, D)  xbn_i * proj / N
        dx += dbeta / N  # (N, D)  + dbeta / N
        np.subtract(dout, dx, out=dx)  # (N, D)  dout_i - (...)
        dx *= scale  # (N, D)
    else:
        dx = dout * scale  # (N, D): a fixed affine map of each row
    if exp is not None:  # x was divided by 2**exp: dL/dx = dL/d(x / 2**exp) / 2**exp
        with np.errstate(over="ignore", under="ignore"):
            dx = np.ldexp(dx, -exp)  # (N, D), exact
    g = gamma.dtype
    return (
        dx.astype(xbn.dtype, copy=False),
        dgamma.astype(g, copy=False),
        dbeta.astype(g, copy=False),
    )


# ---- specification ---------------------------------------------------------------------


def _bind(
    forward: spec.Forward,
    mode: str = "train",
    eps: float = 1e-5,
    r_max: float = R_MAX,
    d_max: float = D_MAX,
    **extra: Any,
) -> spec.Forward:
    """``forward(x, gamma, beta, bn_param)`` with a fresh ``bn_param`` on every call.

    ``extra`` are further ``bn_param`` keys (``running_mean``, ``running_var``,
    ``momentum``...); arrays among them are copied for every call.
    """

    def call(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, Any]:
        param = {
            "mode": mode,
            "eps": eps,
            "r_max": r_max,
            "d_max": d_max,
            **{k: np.copy(a) if isinstance(a, np.ndarray) else a for k, a in extra.items()},
        }
        return forward(x, gamma, beta, param)

    return call


def _torch(
    torch: Any,
    inputs: dict[str, Any],
    mode: str = "train",
    eps: float = 1e-5,
    r_max: float = R_MAX,
    d_max: float = D_MAX,
    running_mean: Any = None,
    running_var: Any = None,
    **_: Any,
) -> Any:
    """Algorithm 1 in torch ops; r and d are computed from detached tensors, so autograd's
    gradient is the stop-gradient one. PyTorch has no batch renorm layer."""
    x, gamma, beta = inputs["x"], inputs["gamma"], inputs["beta"]
    zeros = torch.zeros(x.shape[1], dtype=x.dtype)
    mean = zeros if running_mean is None else torch.as_tensor(running_mean, dtype=x.dtype)
    sigma = torch.sqrt(
        (zeros if running_var is None else torch.as_tensor(running_var, dtype=x.dtype)) + eps
    )
    if mode == "test":
        return gamma * (x - mean) / sigma + beta
    mu = x.mean(dim=0)
    sigma_b = torch.sqrt(((x - mu) ** 2).mean(dim=0) + eps)
    r = torch.clamp(sigma_b.detach() / sigma, 1.0 / r_max, r_max)
    d = torch.clamp((mu.detach() - mean) / sigma, -d_max, d_max)
    return gamma * ((x - mu) / sigma_b * r + d) + beta


# Running statistics that clip every feature's r and d at a bound, with margin, for the
# (7, 5) check input x = 5 randn + 12 at r_max = 1.5, d_max = 0.5: sigma =
# sqrt(running_var + eps) is 0.71 or 0.5 (r = r_max for any batch std above 1.1) or 20
# (r = 1/r_max below 13), and (mu_B - running_mean) / sigma lies at least 0.6 beyond
# -+d_max for any batch mean in (2, 22). Both bounds of both corrections occur, and finite
# differences measure exactly the stop-gradient derivative there.
_SATURATED: dict[str, Any] = {
    "r_max": 1.5,
    "d_max": 0.5,
    "running_mean": np.array([0.0, -20.0, 30.0, 50.0, 30.0]),
    "running_var": np.array([0.5, 400.0, 0.5, 400.0, 0.25]),
}


@functools.cache
def _stop_gradient_class() -> Any:
    """SymPy's twin of the paper's stop_gradient (a class, made once: imports SymPy)."""
    from normgrad.symbolic.core import sp

    function: Any = sp.Function  # SymPy's base class of undefined functions

    class stop_gradient(function):  # noqa: N801  (the paper's name)
        """stop_gradient(a) = a, and d/dz stop_gradient(a) = 0 for every symbol z, so
        ``sympy.diff`` treats r and d as constants and the prover as opaque atoms; the
        lambdified tie evaluates it as the identity."""

        @classmethod
        def eval(cls, a: Any) -> Any:
            return a if a.is_number else None

        def fdiff(self, argindex: int = 1) -> Any:
            return sp.S.Zero

        def _eval_derivative(self, s: Any) -> Any:
            return sp.S.Zero

        def _numpycode(self, printer: Any) -> str:
            return str(printer._print(self.args[0]))

        _lambdacode = _pythoncode = _numpycode

    return stop_gradient


@functools.cache
def _problem_class() -> Any:
    from normgrad.symbolic.model import Problem

    class BatchRenormProblem(Problem):
        """A ``Problem`` whose description says what r, d and the printed steps mean."""

        def describe(self) -> str:
            return (
                f"{super().describe()}\n"
                "fresh bn_param: running mean and variance 0, so sigma = sqrt(ε), and\n"
                "r = stop_gradient(clip(sqrt(σ² + ε)/sigma, 1/r_max, r_max)), "
                "d = stop_gradient(clip(μ/sigma, -d_max, d_max)),\n"
                "yᵢ = γ (r x̂ᵢ + d) + β. r and d are constants of the backward pass, so the "
                "steps below are batch\nnorm's for γ' = γ r and β' = γ d + β: read γ as "
                "γ r (dx̂ᵢ = dyᵢ γ r), and dγ = r dγ' + d dβ."
            )

    return BatchRenormProblem


def _symbolic(N: int = 3, D: int = 2) -> Any:
    """Batch renorm on x: (N, D), train mode, as SymPy expressions, statement by statement.

    The forward repeats ``batchrenorm_forward`` with a fresh ``bn_param`` (running mean
    and variance zeros, r_max = 3, d_max = 5, the tie's binding), r and d wrapped in
    ``stop_gradient`` so the exact gradient holds them constant; the route ``closed``
    repeats ``batchrenorm_backward`` on the same cache (``BatchRenormCache`` of object
    arrays, kept as ``Problem.cache``). r and d are not parameters: they are expressions
    in x and eps, so ``Problem.symbols()`` and the code tie need nothing extra.
    """
    from normgrad.symbolic import core as sc
    from normgrad.symbolic import model as m

    sp = sc.sp
    stop = np.frompyfunc(_stop_gradient_class(), 1, 1)
    clip = np.frompyfunc(lambda a, lo, hi: sp.Min(sp.Max(a, lo), hi), 3, 1)
    sc.check_size("renorm", (N, D), N)
    x, gamma, beta, dout, eps = m.make_symbols((N, D), (D,))
    r_max, d_max = sp.Integer(R_MAX), sp.Integer(D_MAX)
    running_mean = np.full(D, sp.Integer(0), dtype=object)  # (D,) as RunningStats creates
    running_var = np.full(D, sp.Integer(0), dtype=object)  # (D,)

    # batchrenorm_forward, train mode
    xbn, mu, var, _ = m.standardize(x, (0,), eps)  # (N, D), (1, D), (1, D)
    mu, var = mu[0], var[0]  # (D,), (D,)
    # renorm_corrections (sigma > 0 as eps > 0, so its shift == 0 guard is the identity)
    sigma_b = sc.sqrt(var + eps)  # (D,)
    sigma = sc.sqrt(running_var + eps)  # (D,)
    shift = mu - running_mean  # (D,)
    r = stop(clip(sigma_b / sigma, 1 / r_max, r_max))  # (D,)
    d = stop(clip(shift / sigma, -d_max, d_max))  # (D,)
    xhat = xbn * r + d  # (N, D)
    y = gamma * xhat + beta  # (N, D)
    cache = BatchRenormCache(xbn, r, d, var, eps, gamma, True)  # object arrays

    p = _problem_class()(
        layer="renorm",
        shape=(N, D),
        params={"x": x, "gamma": gamma, "beta": beta},
        dout=dout,
        eps=eps,
        y=y,
        radicals=sc.radicals_of(var + eps),
        group=m.first_group(x, mu[None], var[None], (0,)),
        options={"r_max": R_MAX, "d_max": D_MAX},
        reduction=("per feature d, over the batch axis", "N"),
        cache=cache,
    )
    p.routes = {"closed": _symbolic_backward(dout, cache, sc.sqrt)}
    return p


def _symbolic_backward(dout: np.ndarray, cache: BatchRenormCache, sqrt: Any) -> dict[str, Any]:
    """Mirror of ``batchrenorm_backward`` in train mode, on object arrays (``sqrt``: SymPy's,
    elementwise)."""
    xbn, r, d, var, eps, gamma, *_ = cache
    dbeta = dout.sum(axis=0)  # (D,)
    proj = np.sum(dout * xbn, axis=0)  # (D,) sum_i dout_i * xbn_i
    dgamma = r * proj + d * dbeta  # (D,)
    scale = gamma * r / sqrt(var + eps)  # (D,)
    N = xbn.shape[0]
    dx = xbn * (proj / N)  # (N, D)
    dx = dx + dbeta / N  # (N, D)
    dx = dout - dx  # (N, D)
    dx = dx * scale  # (N, D)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


PARAM_KEYS = {
    **batch.PARAM_KEYS,
    "r_max": "r is clipped to [1/r_max, r_max], >= 1 (default 3; 1: batch norm's scale)",
    "d_max": "d is clipped to [-d_max, d_max], >= 0 (default 5; 0: batch norm's shift)",
}

SPEC = spec.NormSpec(
    name="batchrenorm",
    title="batch renormalization",
    paper="Ioffe 2017, arXiv:1702.03275",
    layout="(N, D)",
    forward=batchrenorm_forward,
    routes={"closed": spec.Route(batchrenorm_backward)},
    bind=_bind,
    param_name="bn_param",
    param_keys=PARAM_KEYS,
    # Finite differences see r and d move with x unless they are clipped, so every case
    # holds them at a bound: r_max = 1, d_max = 0 (r = 1, d = 0 whatever x: batch norm),
    # every feature saturated at r_max = 1.5, d_max = 0.5, and test mode (no r or d).
    cases=(
        spec.CaseInputs("bn", spec.affine_inputs((7, 5), (5,)), {"r_max": 1, "d_max": 0}),
        spec.CaseInputs("clipped", spec.affine_inputs((7, 5), (5,)), _SATURATED),
        spec.CaseInputs(
            "test",
            spec.affine_inputs((6, 5), (5,)),
            {
                "mode": "test",
                "running_mean": _SATURATED["running_mean"] / 4,
                "running_var": np.array([4.0, 0.5, 2.0, 9.0, 1.0]),
            },
        ),
    ),
    torch=_torch,
    symbolic=spec.Symbolic(
        "renorm",
        ("N", "D"),
        ({"N": 2, "D": 1}, {"N": 3, "D": 2}),
        _symbolic,
        all_sizes=spec.AllSizes.columns(),
    ),
    # cancels_bias: the backward's db = sum_i dx_i is exactly 0 (r and d constant, and
    # sum_i xbn_i = 0), and the output itself ignores a per-feature bias b wherever d is
    # clipped (b moves mu_B, hence only d). The model's fresh bn_param has zero running
    # statistics, sigma = sqrt(eps): d is clipped unless |mu_B| < d_max * sqrt(eps).
    blocks=(
        spec.Block(
            "fc",
            "batchrenorm",
            batchrenorm_forward,
            batchrenorm_backward,
            param_shape=lambda F: (F,),
            init_param=lambda: {"mode": "train"},
            train_mode=True,
            cancels_bias=True,
            fused=spec.lazy_block(
                "normgrad.kernels.renorm", "batchrenorm_forward_fused", "batchrenorm_backward_fused"
            ),
        ),
    ),
    fused=spec.lazy_route(
        "normgrad.kernels.renorm", "batchrenorm_forward_fused", "batchrenorm_backward_fused"
    ),
)
