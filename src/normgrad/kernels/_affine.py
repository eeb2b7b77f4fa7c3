"""The (D,) coefficients of the batch-style fused passes (batch, spatial batch, renorm).

Forward: with the statistics mu, var (float64) of each feature (channel)::

    inv = 1 / sqrt(var + eps)       # var + eps outside [LO, HI]: not plain (see below)
    s   = gamma * inv               # out = gamma * (x - mu) * inv + beta
    m   = mu rounded to x's dtype   #     = (x - m) * s + b
    b   = beta - (mu - m) * s       # (exactly beta in float64, where m = mu)

so the element-wise pass subtracts a value of x's own dtype (exact for float32 data far
from 0, Sterbenz) and the small remainder mu - m is applied once per feature.

Backward: with dbeta = sum dout and dcent = sum dout * (x - m) from the gradient pass::

    dgamma = (dcent - (mu - m) * dbeta) * inv          # sum dout * xhat
    a  = gamma * inv
    c1 = a * inv * dgamma / n,   c0 = a * dbeta / n     # train; 0 in test mode
    dx = a * dout - c1 * (x - m) - (c0 + c1 * (m - mu))

which is ``batchnorm_backward_alt``'s closed form, dx = gamma * inv * (dout - (dbeta +
xhat * dgamma) / n). Both kernels run once per call over (D,) arrays: one dispatch
instead of a dozen small NumPy operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad.kernels import columns
from normgrad.kernels._runtime import F32, F64, LO, as64

#: The lower end of the plain range for statistics summed in float32: below it the
#: squared deviations, near float32's smallest normal, have lost bits to underflow.
LO32 = 2.0**-100


def forward(
    mu: np.ndarray,
    var: np.ndarray,
    eps: float,
    gamma: np.ndarray,
    beta: np.ndarray,
    dtype: np.dtype,
    lo: float = LO,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(inv, m, s, b) for the statistics mu, var and float64 gamma, beta, all (D,); or
    None when some feature is not plain (the caller runs the reference route).

    ``lo`` raises the lower end of the plain range (``LO32`` for statistics summed in
    float32, whose squares below 2**-100 lose bits to underflow)."""
    D = mu.shape[0]
    inv = np.empty(D)
    m, s, b = np.empty(D, dtype), np.empty(D, dtype), np.empty(D, dtype)
    if not columns._coefficients(mu, var, float(eps), float(lo), gamma, beta, inv, m, s, b):
        return None
    return inv, m, s, b


def normalize_batch(
    moments: Callable[[], tuple[np.ndarray, np.ndarray] | None],
    n: int,
    normalize: Callable[..., tuple[np.ndarray, bool]],
    dtype: np.dtype,
    train: bool,
    eps: float,
    gamma: Any,
    beta: Any,
    running_mean: Any,
    running_var: Any,
    relu: bool,
    scale_shift: Callable[[np.ndarray, np.ndarray], tuple[Any, Any] | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The batch-style forward for any layout: (out, mu, m, inv, var), or None when the
    plain formulas cannot give it (the caller runs the reference). Writes nothing.

    ``moments()``: the batch's (mu, M2) over ``n`` values per feature, (D,) float64, or
    None (NaN or inf in x, a shift too far from the mean); used in train mode (var =
    M2 / n, biased), the running statistics in test mode. ``normalize(m, s, b, check=,
    relu=)``: the layout's element-wise pass over x (``columns.normalize`` for (N, D),
    ``planes.normalize`` for NCHW planes, x bound). ``scale_shift(mu, var)``: the
    (gamma, beta) to apply when they depend on the statistics (batch renorm's gamma * r,
    gamma * d + beta), or None when not plain.
    """
    if train:
        batch = moments()
        if batch is None:
            return None
        mu, var = batch[0], batch[1] / n
    else:
        mu, var = as64(running_mean), as64(running_var)
    if scale_shift is not None:
        params = scale_shift(mu, var)
        if params is None:
            return None
        gamma, beta = params
    lo = LO32 if train and dtype == F32 else LO
    coefficients = forward(mu, var, eps, as64(gamma), as64(beta), dtype, lo)
    if coefficients is None:
        return None
    inv, m, s, b = coefficients
    out, ok = normalize(m, s, b, check=not train, relu=relu)
    if not ok:  # test mode: x - mu overflowed, or NaN in x
        return None
    if relu and not train:
        np.maximum(out, 0, out=out)
    return out, mu, m, inv, var


def backward(
    dbeta: np.ndarray,
    dcent: np.ndarray,
    mu: np.ndarray,
    m: np.ndarray,
    inv: np.ndarray,
    gamma: np.ndarray,
    n: int,
    train: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """(dgamma (float64), a, c1, c0 (m's dtype), all (D,), finite) for
    ``columns.input_grad``; finite is False when a coefficient is not finite in m's dtype
    (then ``backward_or_wide`` redoes it in float64, or the caller takes another route)."""
    D = mu.shape[0]
    dgamma = np.empty(D)
    a, c1, c0 = np.empty_like(m), np.empty_like(m), np.empty_like(m)
    ok = columns._grad_coefficients(
        dbeta, dcent, mu, m, inv, gamma, float(n), train, dgamma, a, c1, c0
    )
    return dgamma, a, c1, c0, bool(ok)


def backward_or_wide(
    dbeta: np.ndarray,
    dcent: np.ndarray,
    mu: np.ndarray,
    m: np.ndarray,
    inv: np.ndarray,
    gamma: np.ndarray,
    n: int,
    train: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dgamma, a, c1, c0, centre) for the element-wise pass dx = a dout - c1 (x - centre) - c0.

    About m, in m's dtype, when every coefficient is finite there. Otherwise (a float32
    coefficient beyond 3.4e38, or NaN or inf in dout) the same maths in float64 about mu,
    and centre = mu is float64: the caller then runs its pass in float64. The sums about
    m are moved to mu by dcent += (m - mu) dbeta, skipped where m == mu or dbeta is not
    finite, as ``columns._grad_coefficients`` skips its own correction: an inf in dout
    gives the reference's inf there, not inf - inf = NaN. The float64 coefficients are
    returned even when not finite: dx then has the reference's NaN and inf."""
    dgamma, a, c1, c0, finite = backward(dbeta, dcent, mu, m, inv, gamma, n, train)
    if finite:
        return dgamma, a, c1, c0, m
    shift = np.where(np.isfinite(dbeta), m.astype(F64) - mu, 0.0)
    dcent = dcent + np.multiply(shift, dbeta, out=np.zeros_like(shift), where=shift != 0)
    dgamma, a, c1, c0, _ = backward(dbeta, dcent, mu, mu, inv, gamma, n, train)
    return dgamma, a, c1, c0, mu
