"""Standardization over arbitrary reduction axes: the one home of the shared maths.

Layer norm, group norm and instance norm are batch norm with other reduction axes, and
RMS norm is the same map without centring. Each of them builds on the functions here
and only chooses its axes and its affine parameters.

Forward, over the reduction axes R (M = the number of values reduced per group)::

    mu      = 1/M sum_R x                       # keepdims: 1 along R
    var     = 1/M sum_R (x - mu)^2              # two-pass, biased
    inv_std = 1 / sqrt(var + eps)
    xhat    = (x - mu) * inv_std                # x's shape

Backward, in simplified closed form (docs/derivation.md, section 9.1)::

    dx = inv_std * (dxhat - mean_R(dxhat) - xhat * mean_R(dxhat * xhat))

With an affine map y = gamma * xhat + beta after it (``affine_norm_backward``)::

    dbeta  = sum over the axes beta was broadcast along of dout
    dgamma = sum over the axes gamma was broadcast along of dout * xhat
    dxhat  = dout * gamma

The uncentred (RMS) variant sets mu = 0, so var becomes the mean square mean_R(x^2) and
the ``mean_R(dxhat)`` term disappears::

    dx = inv_rms * (dxhat - xhat * mean_R(dxhat * xhat))

Numerics (what every layer built on this module promises):

- Statistics are accumulated and x is centred in float64 (or wider, see
  ``validate.compute_dtype``), never as E[x^2] - E[x]^2. Callers cast results back.
- **Any finite x.** The formulas above run as written whenever var + eps lies in
  ``plain_range`` (about 1e-173 to 1e173 in float64: narrower than the floating range,
  so that the backward routes' (var + eps)^-1.5 stays normal too), which covers every
  float32 input and float64 data whose spread is between about 1e-86 and 1e86. A group
  outside it (|x| up to 1.8e308, whose squares overflow, or a spread such as 1e-170 or
  values near the smallest normal, whose squares underflow) is solved on an exact
  rescaling instead: x is divided by a
  power of two 2**k per group (``Rescaled``), chosen so that both the centred values
  and sqrt(eps) are at most 1 there, and
  ``var + eps = 4**k * (var_s + eps / 4**k)`` is never formed unscaled. Dividing by a
  power of two is exact, so xhat is the unscaled formula's to rounding, and the normal
  range is bit for bit what it always was. The returned ``var`` and ``inv_std`` are
  then the true values rounded to the dtype: a variance above the largest float is
  inf, one below the smallest is 0 (see ``Rescaled`` for the exact form).
- **eps = 0** is allowed (the derivation's identities hold exactly there), but a group
  that is exactly constant then has xhat = 0/0: ``ValueError`` naming the group,
  suggesting eps > 0. (PyTorch returns NaN for layer and group norm there and refuses
  eps <= 0 in batch norm's training.)
- **Non-finite x**: NaN in, NaN out, per group; the other groups are unaffected.
- An empty reduction (M = 0) raises ``ValueError``: there is nothing to normalize over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v

Axes = tuple[int, ...]


class Standardized(NamedTuple):
    """The forward statistics of one standardization, all in the compute dtype."""

    xhat: np.ndarray  # x's shape: the normalized input
    mu: np.ndarray  # 1 along the reduction axes: the mean (zeros when not centred)
    var: np.ndarray  # 1 along the reduction axes: biased variance (mean square if uncentred)
    inv_std: np.ndarray  # 1 along the reduction axes: 1 / sqrt(var + eps)


class Rescaled(NamedTuple):
    """The problem as solved where some group's statistics would over- or underflow.

    Each group of x is divided by 2**exp (exp = 0 for the groups that needed nothing,
    where every field is the unscaled value), so that its centred values and sqrt(eps)
    are at most 1. Normalization is scale-invariant, xhat(x / s; eps / s^2) = xhat(x;
    eps), so a backward route may run its usual statements on these fields and divide
    dx by 2**exp at the end (exact: a power of two). All in the compute dtype.
    """

    exp: np.ndarray  # 1 along R, int: the group was divided by 2**exp
    x: np.ndarray  # x's shape: x / 2**exp
    mu: np.ndarray  # 1 along R: the mean of x / 2**exp (zeros when not centred)
    var: np.ndarray  # 1 along R: the biased variance of x / 2**exp, in [0, 1] where rescaled
    eps: np.ndarray  # 1 along R: eps / 4**exp, so var + eps = (true var + eps) / 4**exp


# An exponent below every float's (frexp's exponents lie within about +-16500): "no term".
_NO_EXP = -(1 << 20)


def plain_range(dtype: np.dtype) -> tuple[float, float]:
    """[lo, hi]: where var + eps lets every route run its formulas unscaled, in ``dtype``.

    Not the whole floating range: the backward routes form (var + eps)^-1.5 (the paper's
    dL/dvar) and ~1/var terms (the graph's dvar / N, the fused kernel's coefficient), and
    those must stay normal, with room for N, gamma and dout. 2**(+-9/16 of the exponent
    range), about 1e-173 to 1e173 in float64, leaves 2**70 of room on each side. float32
    data never leaves it; float64 data whose spread is beyond about 1e+-86 does, and is
    then solved rescaled (exactly: the results are the same to rounding).
    """
    e = np.finfo(dtype).maxexp * 9 // 16
    return float(np.ldexp(dtype.type(1), -e)), float(np.ldexp(dtype.type(1), e))


# Rescaled values stay below 2**_MAX_SHIFT times their group's largest |x| over 2**exp.
_MAX_SHIFT = 64


def group_size(shape: Sequence[int], axes: Axes) -> int:
    """M, the number of values each statistic is reduced over."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def standardize(x: np.ndarray, axes: Axes, eps: float, *, center: bool = True) -> Standardized:
    """Standardize x over ``axes``: xhat = (x - mu) / sqrt(var + eps).

    Correct for any finite x (module docstring, Numerics); ``standardize_rescaled`` also
    returns the rescaled problem for backward routes that rebuild x - mu.

    Args:
        x: (any shape) floating input; float32 is promoted to float64 here.
        axes: the reduction axes R (non-negative ints); every other axis keeps its own
            statistics. They must hold at least one value per group.
        eps: >= 0, added to var under the square root.
        center: False for the RMS variant: mu = 0 and var = mean_R(x^2).

    Returns:
        ``Standardized(xhat, mu, var, inv_std)`` in the compute dtype; the statistics
        have size 1 along ``axes`` so they broadcast against x.

    Raises:
        ValueError: eps = 0 and a group of x is exactly constant (xhat = 0/0), or the
            reduction axes are empty.
    """
    return standardize_rescaled(x, axes, eps, center=center)[0]


def standardize_rescaled(
    x: np.ndarray, axes: Axes, eps: float, *, center: bool = True
) -> tuple[Standardized, Rescaled | None]:
    """``standardize``, and the rescaled problem it solved (None: x as given everywhere).

    The formulas run as written first. Only when some group's var + eps falls outside
    ``plain_range`` (a cheap check on the statistics) are those groups redone on x / 2**k
    (``_rescale``); the others keep their values bit for bit.
    """
    M = group_size(x.shape, axes)
    if M == 0:
        raise ValueError(
            f"x of shape {tuple(x.shape)} has no values along the reduction axes {axes}, "
            "so its mean and variance are undefined. Each group needs at least one value."
        )
    cdt = v.compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)  # x's shape, float64 or wider
    with np.errstate(all="ignore"):  # overflow here is detected below and redone scaled
        if center:
            mu = xc.mean(axis=axes, keepdims=True)  # 1 along R
            xmu = xc - mu  # x's shape, centred before squaring (two passes)
        else:
            mu = np.zeros([1 if a in axes else s for a, s in enumerate(x.shape)], dtype=cdt)
            xmu = xc  # x's shape
        var = np.mean(xmu * xmu, axis=axes, keepdims=True)  # 1 along R
        denom = var + eps  # 1 along R
        inv_std = 1.0 / np.sqrt(denom)  # 1 along R
        xhat = xmu * inv_std  # x's shape
    fast = Standardized(xhat, mu, var, inv_std)
    lo, hi = plain_range(cdt)
    plain = (denom >= lo) & (denom <= hi)  # 1 along R; False for NaN
    if plain.all():
        return fast, None
    return _rescale(xc, xmu, fast, axes, eps, center, ~plain)


def _rescale(
    xc: np.ndarray,
    xmu: np.ndarray,
    fast: Standardized,
    axes: Axes,
    eps: float,
    center: bool,
    outside: np.ndarray,
) -> tuple[Standardized, Rescaled | None]:
    """Redo the groups whose var + eps is outside ``plain_range``, on x / 2**k.

    Per group: x0 = x / 2**k0 with 2**k0 > max|x| (so the mean cannot overflow), centred
    in that domain; then k >= the exponents of max|x - mu| and of sqrt(eps) (and k >= k0 -
    _MAX_SHIFT, so that x / 2**k stays finite), and the statistics of x / 2**k, whose
    centred values and sqrt(eps / 4**k) are at most 1, are formed as usual. Groups whose
    x is not finite are NaN throughout; the others keep ``fast`` exactly.
    """
    cdt = xc.dtype
    with np.errstate(all="ignore"):  # ldexp under- and overflow to the honest 0 and inf
        amax = np.max(np.abs(xc), axis=axes, keepdims=True)  # 1 along R
        redo = outside & np.isfinite(amax)  # 1 along R
        if not redo.all():  # NaN or inf in x: the whole group is NaN (inf / inf, 0 * inf)
            nan = outside & ~redo  # 1 along R
            fast = Standardized(*(np.where(nan, np.nan, a) for a in fast))
        if not redo.any():
            return fast, None
        _, k0 = np.frexp(amax)  # amax = m * 2**k0, 0.5 <= m < 1 (k0 = 0 for amax = 0)
        x0 = np.ldexp(xc, -k0)  # x's shape, |x0| < 1
        if center:
            mu0 = x0.mean(axis=axes, keepdims=True)  # 1 along R
            spread = np.max(np.abs(x0 - mu0), axis=axes, keepdims=True)  # 1 along R
        else:
            mu0 = np.zeros_like(amax)
            spread = np.abs(x0).max(axis=axes, keepdims=True)
        _, k1 = np.frexp(spread)
        k_spread = np.where(spread > 0, k0 + k1, _NO_EXP)  # exponent of max|x - mu|
        k_eps = int(np.frexp(np.sqrt(cdt.type(eps)))[1]) if eps > 0 else _NO_EXP
        k = np.maximum(np.maximum(k_spread, k_eps), k0 - _MAX_SHIFT)
        k = np.where(redo, k, 0)  # 1 along R, int
        xs = np.where(redo, np.ldexp(x0, k0 - k), xc)  # x's shape: x / 2**k
        mus = np.where(redo, np.ldexp(mu0, k0 - k), fast.mu)  # 1 along R: its mean
        xmus = xs - mus  # x's shape: xmu where not rescaled, |.| <= 1 where rescaled
        var_s = np.mean(xmus * xmus, axis=axes, keepdims=True)  # 1 along R
        eps_s = np.where(redo, np.ldexp(cdt.type(eps), -2 * k), cdt.type(eps))  # 1 along R
        denom_s = var_s + eps_s  # (var + eps) / 4**k
        constant = redo & (denom_s == 0)
        if constant.any():
            raise ValueError(_constant_message(constant, axes, xc.shape))
        inv_s = 1.0 / np.sqrt(denom_s)  # 1 along R: 2**k / sqrt(var + eps)
        xhat = np.where(redo, xmus * inv_s, fast.xhat)  # x's shape
        mu = np.where(redo, np.ldexp(mu0, k0), fast.mu)  # 1 along R, the true mean
        var = np.where(redo, np.ldexp(var_s, 2 * k), fast.var)  # 1 along R (may be 0 or inf)
        inv_std = np.where(redo, np.ldexp(inv_s, -k), fast.inv_std)  # 1 along R
    return Standardized(xhat, mu, var, inv_std), Rescaled(k, xs, mus, var_s, eps_s)


def _constant_message(constant: np.ndarray, axes: Axes, shape: tuple[int, ...]) -> str:
    """The eps = 0 error: names the first constant group as x[i, :, ...]."""
    first = np.argwhere(constant)[0]
    index = ", ".join(":" if a in axes else str(int(i)) for a, i in enumerate(first))
    return (
        f"eps = 0 and the group x[{index}] of x (shape {shape}, reduced over axes {axes}) "
        "is exactly constant, so its variance is 0 and xhat = 0/0 is undefined. Pass "
        "eps > 0 in the layer's parameter dict, e.g. {'eps': 1e-5} (the default)."
    )


def standardize_given(x: np.ndarray, mu: np.ndarray, var: np.ndarray, eps: float) -> Standardized:
    """xhat = (x - mu) / sqrt(var + eps) with fixed statistics (batch norm's test mode).

    Correct for any finite x: where x - mu overflows (|x| and |mu| both near the largest
    float, of opposite signs) it is recomputed as (x/2 - mu/2) * (2 * inv_std).

    Args:
        x: (any shape) floating input.
        mu, var: statistics that broadcast against x, e.g. (D,) running stats for (N, D);
            finite, with var + eps > 0 (the callers check).
        eps: >= 0.

    Returns:
        ``Standardized(xhat, mu, var, inv_std)`` in the compute dtype.
    """
    cdt = v.compute_dtype(x.dtype)
    mu = np.asarray(mu, dtype=cdt)
    var = np.asarray(var, dtype=cdt)
    inv_std = 1.0 / np.sqrt(var + eps)  # broadcasts against x
    xc = x.astype(cdt, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        xhat = (xc - mu) * inv_std  # x's shape
        bad = ~np.isfinite(xhat)  # x's shape
        if bad.any():  # halving is exact for values this large
            xhat = np.where(bad, (xc * 0.5 - mu * 0.5) * (inv_std * 2.0), xhat)
    return Standardized(xhat, mu, var, inv_std)


def standardize_backward(
    dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axes: Axes, *, center: bool = True
) -> np.ndarray:
    """dL/dx from dL/dxhat, in closed form, in the compute dtype.

    centred:   dx = inv_std * (dxhat - mean_R(dxhat) - xhat * mean_R(dxhat * xhat))
    uncentred: dx = inv_std * (dxhat - xhat * mean_R(dxhat * xhat))

    Args:
        dxhat: (x's shape) upstream gradient with respect to xhat.
        xhat: (x's shape) from ``standardize``.
        inv_std: (1 along R) from ``standardize``.
        axes: the reduction axes R used in the forward pass.
        center: as in the forward pass.

    Returns:
        dx: x's shape, in the compute dtype of dxhat and xhat.
    """
    cdt = np.promote_types(v.compute_dtype(dxhat.dtype), xhat.dtype)
    g = dxhat.astype(cdt, copy=False)  # x's shape
    xh = xhat.astype(cdt, copy=False)  # x's shape
    proj = np.mean(g * xh, axis=axes, keepdims=True)  # 1 along R: mean_R(dxhat * xhat)
    dx = g - xh * proj  # x's shape
    if center:
        dx -= np.mean(g, axis=axes, keepdims=True)  # 1 along R: mean_R(dxhat)
    if np.isinf(inv_std).any():  # 1 / std beyond the float range: std is subnormal
        # dx is then +-inf (its true size exceeds the range), except where the bracket is
        # exactly 0: there dx is exactly 0, not inf * 0 = NaN.
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(dx == 0, dx, dx * inv_std)  # x's shape
    dx *= inv_std  # x's shape
    return dx


def affine_norm_backward(
    dout: np.ndarray,
    xhat: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray | None,
    axes: Axes,
    param_shape: Sequence[int],
    *,
    shift: bool = True,
    center: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Backward of y = gamma * xhat + beta after ``standardize``: (dx, dgamma, dbeta).

    dbeta  = sum_to_shape(dout, param_shape)           # beta broadcast against x
    dgamma = sum_to_shape(dout * xhat, param_shape)    # gamma broadcast against x
    dx     = standardize_backward(dout * gamma, xhat, inv_std, axes)

    The one home of the parameter gradients that layer, group, instance and RMS norm
    share; each only chooses its view of x and its parameter shape. Callers check dout's
    shape first (they know the forward output's shape).

    Args:
        dout: (x's shape) upstream gradient dL/dy, floating.
        xhat: (x's shape) from ``standardize``, in x's dtype: dx is cast back to it.
        inv_std: (1 along R) from ``standardize``.
        gamma: the scale as broadcast against x in the forward pass (param_shape), or
            None for no scale (then dxhat = dout and dgamma is None).
        axes: the reduction axes R of the forward pass.
        param_shape: gamma's and beta's shape as broadcast against x, e.g. (1, C, 1, 1)
            or the trailing normalized_shape.
        shift: whether the forward pass added a beta; False returns dbeta = None.
        center: as in ``standardize`` (False for RMS norm).

    Returns:
        dx: x's shape in xhat's dtype; dgamma and dbeta: param_shape in gamma's dtype
        (xhat's without gamma), or None where that parameter is absent.
    """
    cdt = np.promote_types(v.compute_dtype(dout.dtype), xhat.dtype)
    g = dout.astype(cdt, copy=False)  # x's shape
    pdt = xhat.dtype if gamma is None else gamma.dtype
    dbeta = sum_to_shape(g, param_shape).astype(pdt) if shift else None  # never a view of dout
    if gamma is None:
        dgamma, dxhat = None, g  # x's shape
    else:
        dgamma = sum_to_shape(g * xhat, param_shape).astype(pdt, copy=False)  # param_shape
        dxhat = g * gamma  # x's shape
    dx = standardize_backward(dxhat, xhat, inv_std, axes, center=center)  # x's shape
    return dx.astype(xhat.dtype, copy=False), dgamma, dbeta


def sum_to_shape(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Sum ``a`` over the axes along which ``shape`` was broadcast up to ``a.shape``.

    The gradient of a parameter broadcast in the forward pass (gamma, beta) is the
    upstream gradient summed over every axis it was broadcast along.
    """
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1
    )
    return a.sum(axis=axes).reshape(shape) if axes else a.reshape(shape)


def param_dict(param: Any, name: str) -> dict[str, Any]:
    """Raise ``TypeError`` unless ``param`` is a dict (``None`` reads as an empty one)."""
    if param is None:
        return {}
    if not isinstance(param, dict):
        raise TypeError(
            f"{name} must be a dict such as {{'eps': 1e-5}}; got {type(param).__name__}."
        )
    return param


def read_eps(param: dict[str, Any], name: str, default: float = 1e-5) -> float:
    """``param['eps']`` (default ``default``), checked to be a finite number >= 0.

    A real number only: a string ("1e-5"), a bool or an array raises ``TypeError``.
    """
    return v.nonnegative(param.get("eps", default), f"{name}['eps']", example=default)


def read_param(
    param: Any, name: str, known: Sequence[str] = ("eps",), ignored: Sequence[str] = ("mode",)
) -> dict[str, Any]:
    """A layer's parameter dict (None reads as {}), with every key checked against ``known``.

    A misspelt key (``epsilon``, ``esp``) raises ``ValueError`` listing the known ones.
    ``ignored`` keys are accepted and not read: the course's notebooks and
    ``FullyConnectedNet`` pass ``mode`` to layers that have no modes.
    """
    p = param_dict(param, name)
    v.known_keys(p, name, known, ignored=ignored)
    return p


def check_dout(dout: np.ndarray, shape: Sequence[int]) -> None:
    """Raise unless dout is a floating array of the forward output's shape."""
    v.float_array(dout, "dout")
    v.shape(dout, "dout", shape, "the shape of the forward output")
