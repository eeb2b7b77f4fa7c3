"""batch norm's ``bn_param`` on the fused path: a quick read, and the running statistics.

``quick`` recognizes the ordinary ``bn_param`` (only known keys; mode a str; eps a Python
float > 0; momentum a Python float in [0, 1]; running statistics absent or (D,) arrays
of x's dtype; a str convention, a bool flag, an int count) and returns what
``batch.parse_inputs`` would. Anything else returns None and the caller runs
``parse_inputs`` itself: the reference's checks, errors and messages.

Two checks ``parse_inputs`` makes are on values, not types, and are left to compiled
code: running statistics must be finite and the variance >= 0. ``valid`` tests them in
one pass over the (D,) arrays; if they fail the caller runs ``parse_inputs``, which
raises the reference's error before anything is written.

``blend`` checks the same values in train mode and is ``RunningStats.update``'s
arithmetic, operation for operation (the running dtype's rounding of momentum, the
float64 batch statistics, one rounding at the end), so the running statistics are those
the reference computes from the same batch statistics. A blended value that is not
finite (a variance beyond the running dtype's range) is reported: the caller then runs
``RunningStats.update``, which keeps that feature's previous values and warns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from normgrad.kernels import columns
from normgrad.norms.batch import PARAM_KEYS

_KEYS = frozenset(PARAM_KEYS)
_INF = float("inf")


class Plain(NamedTuple):
    """An ordinary bn_param, read: everything ``parse_inputs`` would return, unchecked values."""

    train: bool
    eps: float
    mean: np.ndarray  # (D,) running mean, x's dtype (zeros when absent)
    var: np.ndarray  # (D,) running variance, x's dtype (zeros when absent)
    keep: float  # weight of the old running value
    w: float  # weight of the batch value
    unbiased: bool  # store var * n / (n - 1)
    tracked: int | None  # num_batches_tracked before this call, or None


def quick(bn_param: Any, D: int, dtype: np.dtype, rows: int) -> Plain | None:
    """``bn_param`` read when it is plainly valid for D features of ``dtype``, else None.

    ``rows`` is the number of values per feature (N, or N*H*W); train mode needs 2.
    """
    if type(bn_param) is not dict:
        return None
    for k in bn_param:
        if k not in _KEYS:
            return None
    mode = bn_param.get("mode")
    if type(mode) is not str or mode not in ("train", "test"):
        return None
    train = mode == "train"
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    if type(eps) is not float or not 0.0 < eps < _INF or type(momentum) is not float:
        return None
    if not 0.0 <= momentum <= 1.0 or (train and rows < 2):
        return None
    convention = bn_param.get("momentum_convention", "course")
    unbiased = bn_param.get("unbiased_running_var", False)
    tracked = bn_param.get("num_batches_tracked")
    if type(convention) is not str or convention not in ("course", "torch"):
        return None
    if type(unbiased) is not bool or not (
        tracked is None or (type(tracked) is int and tracked >= 0)
    ):
        return None
    stats = []
    for key in ("running_mean", "running_var"):
        a = bn_param.get(key)
        if a is None:
            a = np.zeros(D, dtype=dtype)
        elif type(a) is not np.ndarray or a.dtype != dtype or a.shape != (D,):
            return None
        stats.append(a)
    keep, w = (momentum, 1.0 - momentum) if convention == "course" else (1.0 - momentum, momentum)
    return Plain(train, eps, stats[0], stats[1], keep, w, unbiased, tracked)


def valid(p: Plain) -> bool:
    """The running statistics are finite, the variance >= 0 (``parse_inputs``' value checks)."""
    return bool(columns._valid(p.mean, p.var))


#: ``blend``'s status: the old statistics are invalid (``parse_inputs`` must raise), or an
#: updated value is not finite (``RunningStats.update`` must keep and warn).
INVALID, OVERFLOW = 1, 2


def blend(p: Plain, mu: np.ndarray, var: np.ndarray, n: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(status, mean, var): the updated running statistics, (D,) each in the running dtype.

    mu, var: (D,) float64 batch mean and biased variance over n values per feature. The
    arrays are meaningful only when status is 0 (else ``INVALID`` or ``OVERFLOW``).
    """
    ratio = n / (n - 1) if p.unbiased else 1.0
    status, new_mean, new_var = columns.blend_new(p.mean, p.var, mu, var, p.keep, p.w, ratio)
    return int(status), new_mean, new_var


def write(bn_param: dict[str, Any], p: Plain, mean: np.ndarray, var: np.ndarray) -> None:
    """``RunningStats.write``: the statistics, and the batch count when it is tracked."""
    bn_param["running_mean"] = mean
    bn_param["running_var"] = var
    if p.tracked is not None:
        bn_param["num_batches_tracked"] = p.tracked + 1 if p.train else p.tracked


def commit(
    bn_param: dict[str, Any],
    p: Plain,
    mu: np.ndarray,
    var: np.ndarray,
    n: int,
    stats_of: Callable[[], Any],
    blended: tuple[int, np.ndarray, np.ndarray] | None = None,
) -> None:
    """Write the running statistics after a fused forward pass that succeeded.

    Test mode writes back the statistics it used (and the count). Train mode blends the
    batch's (mu, var) over n values per feature into them (``blended``: a kernel's own
    (status, mean, var) from doing that already); where that cannot be done plainly
    (invalid old statistics, or an update that overflows) the reference's
    ``RunningStats`` (``stats_of()``) decides, raising or warning exactly as it does.
    """
    if not p.train:
        write(bn_param, p, p.mean, p.var)
        return
    status, mean, new_var = blend(p, mu, var, n) if blended is None else blended
    if status == 0:
        write(bn_param, p, mean, new_var)
    else:
        stats_of().update(mu, var, n).write(bn_param)
