"""Running (inference-time) statistics of batch-style normalizations.

One home for the update rule that batch norm and spatial batch norm share, in both
conventions a user may expect:

- course (cs231n, default): ``running = momentum * running + (1 - momentum) * batch``,
  momentum 0.9, biased batch variance;
- torch (``torch.nn.BatchNorm*d``): ``running = (1 - momentum) * running + momentum * batch``,
  momentum 0.1, unbiased batch variance ``var * N / (N - 1)``;
- cumulative average (PyTorch's ``momentum=None``): the batch gets weight
  ``1 / num_batches_tracked`` after the count is incremented.

``RunningStats.from_param`` reads and checks every key before anything is written;
``update`` returns a new object, and ``write`` puts it back into the param dict.

The running statistics are always finite, and the variance >= 0: ``from_param`` refuses
anything else with a ``ValueError`` (test mode would turn it into NaN), and ``update``
never produces it. A feature whose batch statistics are not finite (x had NaN or inf
there) or whose blended value would overflow the running dtype (a variance beyond
float64's 1.8e308, or float32's 3.4e38 for float32 statistics) keeps its previous
running mean and variance, and a ``RuntimeWarning`` names the features. This keeps a
diverging training run going as the course's does (its test-mode accuracy checks still
run), without writing a value that test mode would have to refuse. ``num_batches_tracked``
still counts such a step, as PyTorch's does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from normgrad._internal import validate as v

CONVENTIONS = ("course", "torch")


class StaleRunningStatsWarning(RuntimeWarning):
    """Some features' running statistics were left as they were by a train step.

    Their batch mean or variance was not finite (x had NaN or inf), or the running value
    would overflow its dtype. The message is the same every time, so Python shows it
    once per place; ``features`` lists the features of this occurrence.
    """

    MESSAGE = (
        "batch norm left some features' running statistics unchanged: their batch mean or "
        "variance is not finite (x had NaN or inf) or the running value would overflow its "
        "dtype; test mode uses the previous values. Shown once; the warning's .features "
        "lists them."
    )

    def __init__(self, features: tuple[int, ...]) -> None:
        super().__init__(self.MESSAGE)
        self.features = features  # (k,) the indices of the features left unchanged


@dataclass(frozen=True)
class RunningStats:
    """Running mean and variance, (D,) each, and how to update them."""

    mean: np.ndarray  # (D,)
    var: np.ndarray  # (D,)
    momentum: float | None
    convention: str
    unbiased: bool
    num_batches_tracked: int | None  # None: not tracked (course default)

    @classmethod
    def from_param(cls, param: dict[str, Any], D: int, dtype: np.dtype) -> RunningStats:
        """Read and validate the running-statistics keys of ``param`` for D features."""
        mean = param.get("running_mean")
        var = param.get("running_var")
        mean = np.zeros(D, dtype=dtype) if mean is None else mean
        var = np.zeros(D, dtype=dtype) if var is None else var
        for name, arr in (("running_mean", mean), ("running_var", var)):
            v.float_array(arr, f"bn_param['{name}']")
            v.shape(arr, f"bn_param['{name}']", (D,), "one value per feature")
            _check_values(arr, name, D)
        momentum = param.get("momentum", 0.9)
        if momentum is not None:
            momentum = v.unit_interval(momentum, "bn_param['momentum']", example=0.9)
        convention = v.choice(
            param.get("momentum_convention", "course"),
            "bn_param['momentum_convention']",
            CONVENTIONS,
        )
        unbiased = param.get("unbiased_running_var", False)
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(
                f"bn_param['unbiased_running_var'] must be a bool; got {unbiased!r}. Pass "
                "True for PyTorch's unbiased running variance or False (the default) for "
                "the course's biased one."
            )
        tracked = param.get("num_batches_tracked")
        if tracked is None and momentum is None:
            tracked = 0
        if tracked is not None:
            msg = (
                f"bn_param['num_batches_tracked'] must be an int >= 0; got {tracked!r} "
                f"({type(tracked).__name__}). Pass 0 to start counting batches (or leave "
                "the key out), as torch.nn.BatchNorm1d's num_batches_tracked counts them."
            )
            if isinstance(tracked, (bool, np.bool_)) or not isinstance(tracked, (int, np.integer)):
                raise TypeError(msg)
            if tracked < 0:
                raise ValueError(msg)
        return cls(
            mean,
            var,
            momentum,
            convention,
            bool(unbiased),
            None if tracked is None else int(tracked),
        )

    def weights(self, num_batches_tracked: int | None) -> tuple[float, float]:
        """(weight of the old running value, weight of the new batch value)."""
        if self.momentum is None:  # cumulative average: from_param always tracks the count
            w = 1.0 / (num_batches_tracked or 1)
            return 1.0 - w, w
        if self.convention == "course":
            return self.momentum, 1.0 - self.momentum
        return 1.0 - self.momentum, self.momentum

    def update(self, batch_mean: np.ndarray, batch_var: np.ndarray, n: int) -> RunningStats:
        """Blend one batch's statistics, computed over ``n`` values per feature, in.

        batch_mean, batch_var: (D,), the batch var biased (divided by n).
        """
        tracked = None if self.num_batches_tracked is None else self.num_batches_tracked + 1
        keep, w = self.weights(tracked)
        with np.errstate(over="ignore", invalid="ignore"):  # caught below, by feature
            var_in = batch_var * (n / (n - 1)) if self.unbiased else batch_var  # (D,)
            mean = (keep * self.mean + w * batch_mean).astype(self.mean.dtype, copy=False)
            var = (keep * self.var + w * var_in).astype(self.var.dtype, copy=False)
        finite = np.isfinite(mean) & np.isfinite(var)  # (D,)
        if not finite.all():
            stale = tuple(int(i) for i in np.flatnonzero(~finite))
            warnings.warn(StaleRunningStatsWarning(stale), stacklevel=3)  # the forward's caller
            mean = np.where(finite, mean, self.mean)  # (D,)
            var = np.where(finite, var, self.var)  # (D,)
        return replace(self, mean=mean, var=var, num_batches_tracked=tracked)

    def write(self, param: dict[str, Any]) -> None:
        """Store the running statistics (and the batch count, if tracked) into ``param``."""
        param["running_mean"] = self.mean
        param["running_var"] = self.var
        if self.num_batches_tracked is not None:
            param["num_batches_tracked"] = self.num_batches_tracked


def _check_values(arr: np.ndarray, name: str, D: int) -> None:
    """A running statistic must be finite, and a running variance >= 0."""
    key = f"bn_param['{name}']"
    fix = (
        f"Reset it, e.g. {key} = np.{'ones' if name == 'running_var' else 'zeros'}({D}), or "
        "delete the key to start again from zeros (a train step never writes such a value)."
    )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{key} must be finite; got {float(arr[i])!r} at feature {i} ({bad.size} of {D} "
            f"features are not finite), which test mode would turn into NaN. {fix}"
        )
    if name == "running_var":
        neg = np.flatnonzero(arr < 0)
        if neg.size:
            i = int(neg[0])
            raise ValueError(
                f"{key} must be >= 0 (a variance); got {float(arr[i])!r} at feature {i} "
                f"({neg.size} of {D} features are negative), which test mode would turn "
                f"into NaN. {fix}"
            )


def torch_bn_param(
    num_features: int | None = None, momentum: float | None = 0.1, eps: float = 1e-5
) -> dict[str, Any]:
    """A ``bn_param`` with ``torch.nn.BatchNorm1d``'s semantics, in train mode.

    momentum weighs the new batch value (None: cumulative average), the running var is
    unbiased, and, given ``num_features``, the running stats start as PyTorch's do
    (mean zeros, var ones, float64 here).
    """
    param: dict[str, Any] = {
        "mode": "train",
        "eps": eps,
        "momentum": momentum,
        "momentum_convention": "torch",
        "unbiased_running_var": True,
        "num_batches_tracked": 0,
    }
    if num_features is not None:
        param["running_mean"] = np.zeros(num_features)
        param["running_var"] = np.ones(num_features)
    return param
