"""Fixtures shared by the training tests: small data, small nets, and whole-state snapshots.

``state_of(solver)`` deep-copies everything a Solver call may change (the model's params,
normalization param dicts and dropout_param, every optim config, the histories, counters,
best snapshot and NumPy's global RNG), and ``assert_same(a, b)`` compares two such
snapshots exactly (arrays with ``np.testing.assert_array_equal``, dtypes and Python
types included). A rejected call must leave ``state_of`` as it was.
"""

# The course Solver draws from NumPy's legacy global generator, so these tests do too.
# ruff: noqa: NPY002

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from normgrad.models.fc_net import FullyConnectedNet
from normgrad.training.solver import Solver


def _state_of(solver: Solver) -> dict[str, Any]:
    model = solver.model
    return copy.deepcopy(
        {
            "params": model.params,
            "bn_params": getattr(model, "bn_params", None),
            "dropout_param": getattr(model, "dropout_param", None),
            "optim_configs": solver.optim_configs,
            "loss_history": solver.loss_history,
            "train_acc_history": solver.train_acc_history,
            "val_acc_history": solver.val_acc_history,
            "epoch": solver.epoch,
            "iteration": solver.iteration,
            "start": solver._start_iteration,
            "best_val_acc": solver.best_val_acc,
            "best_params": solver.best_params,
            "best_state": solver._best_state,
            "last_checkpoint": solver.last_checkpoint,
            "rng": np.random.get_state(),
        }
    )


def _assert_same(a: Any, b: Any, where: str = "state") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} {list(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{where}: {type(b).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype} {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=where)  # NaN == NaN here
    elif isinstance(a, float) and np.isnan(a):
        assert type(b) is type(a) and np.isnan(b), where
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture
def state_of() -> Callable[[Solver], dict[str, Any]]:
    return _state_of


@pytest.fixture
def assert_same() -> Callable[..., None]:
    return _assert_same


def _small_data(seed: int = 0, n: int = 60, d: int = 5, c: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.standard_normal((n, d)),
        "y_train": rng.integers(0, c, n),
        "X_val": rng.standard_normal((20, d)),
        "y_val": rng.integers(0, c, 20),
    }


def _fc_solver(
    normalization: str | None = "batchnorm",
    hidden: tuple[int, ...] = (8, 8),
    seed: int = 0,
    dtype: Any = np.float64,
    model_kwargs: dict[str, Any] | None = None,
    data: dict[str, np.ndarray] | None = None,
    **kwargs: Any,
) -> Solver:
    """A FullyConnectedNet (5 -> hidden -> 3) and its Solver on 60 random rows."""
    np.random.seed(seed)
    model = FullyConnectedNet(
        list(hidden),
        input_dim=5,
        num_classes=3,
        normalization=normalization,
        dtype=dtype,
        weight_scale=0.1,
        **(model_kwargs or {}),
    )
    opts: dict[str, Any] = {
        "update_rule": "adam",
        "optim_config": {"learning_rate": 1e-2},
        "batch_size": 10,
        "num_epochs": 2,
        "verbose": False,
    }
    opts.update(kwargs)
    return Solver(model, _small_data() if data is None else data, **opts)


@pytest.fixture
def small_data() -> Callable[..., dict[str, np.ndarray]]:
    return _small_data


@pytest.fixture
def fc_solver() -> Callable[..., Solver]:
    return _fc_solver
