"""Standardization over arbitrary reduction axes: the one home of the shared maths.

Layer norm, group norm and instance norm are batch norm with other reduction axes, and
RMS norm is the same map without centring. Each of them builds on the two functions here
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

Numerics: statistics are accumulated and x is centred in float64 (or wider, see
``_validate.compute_dtype``), never as E[x^2] - E[x]^2. Callers cast results back.
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


def group_size(shape: Sequence[int], axes: Axes) -> int:
    """M, the number of values each statistic is reduced over."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def standardize(x: np.ndarray, axes: Axes, eps: float, *, center: bool = True) -> Standardized:
    """Standardize x over ``axes``: xhat = (x - mu) / sqrt(var + eps).

    Args:
        x: (any shape) floating input; float32 is promoted to float64 here.
        axes: the reduction axes R (non-negative ints); every other axis keeps its own
            statistics.
        eps: >= 0, added to var under the square root.
        center: False for the RMS variant: mu = 0 and var = mean_R(x^2).

    Returns:
        ``Standardized(xhat, mu, var, inv_std)`` in the compute dtype; the statistics
        have size 1 along ``axes`` so they broadcast against x.
    """
    cdt = v.compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)  # x's shape, float64 or wider
    if center:
        mu = xc.mean(axis=axes, keepdims=True)  # 1 along R
        xmu = xc - mu  # x's shape, centred before squaring (two passes)
    else:
        mu = np.zeros([1 if a in axes else s for a, s in enumerate(x.shape)], dtype=cdt)
        xmu = xc  # x's shape
    var = np.mean(xmu * xmu, axis=axes, keepdims=True)  # 1 along R
    inv_std = 1.0 / np.sqrt(var + eps)  # 1 along R
    xhat = xmu * inv_std  # x's shape
    return Standardized(xhat, mu, var, inv_std)


def standardize_given(x: np.ndarray, mu: np.ndarray, var: np.ndarray, eps: float) -> Standardized:
    """xhat = (x - mu) / sqrt(var + eps) with fixed statistics (batch norm's test mode).

    Args:
        x: (any shape) floating input.
        mu, var: statistics that broadcast against x, e.g. (D,) running stats for (N, D).
        eps: >= 0.

    Returns:
        ``Standardized(xhat, mu, var, inv_std)`` in the compute dtype.
    """
    cdt = v.compute_dtype(x.dtype)
    mu = np.asarray(mu, dtype=cdt)
    var = np.asarray(var, dtype=cdt)
    inv_std = 1.0 / np.sqrt(var + eps)  # broadcasts against x
    xhat = (x.astype(cdt, copy=False) - mu) * inv_std  # x's shape
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
    """``param['eps']`` (default ``default``), checked to be a finite number >= 0."""
    return v.nonnegative(param.get("eps", default), f"{name}['eps']", example=default)


def check_dout(dout: np.ndarray, shape: Sequence[int]) -> None:
    """Raise unless dout is a floating array of the forward output's shape."""
    v.float_array(dout, "dout")
    v.shape(dout, "dout", shape, "the shape of the forward output")
