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

import numpy as np

from normgrad.kernels import columns
from normgrad.kernels._runtime import LO

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


def backward(
    dbeta: np.ndarray,
    dcent: np.ndarray,
    mu: np.ndarray,
    m: np.ndarray,
    inv: np.ndarray,
    gamma: np.ndarray,
    n: int,
    train: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(dgamma (float64), a, c1, c0 (m's dtype)), all (D,), for ``columns.input_grad``;
    None when a coefficient overflows m's dtype (the caller redoes it in float64)."""
    D = mu.shape[0]
    dgamma = np.empty(D)
    a, c1, c0 = np.empty_like(m), np.empty_like(m), np.empty_like(m)
    if not columns._grad_coefficients(
        dbeta, dcent, mu, m, inv, gamma, float(n), train, dgamma, a, c1, c0
    ):
        return None
    return dgamma, a, c1, c0
