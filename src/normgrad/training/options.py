"""Checks on what a ``Solver`` is given: keyword arguments, data, checkpoints to resume.

Every function here reads and raises; none writes to the model, the solver or NumPy's
global RNG (the data probe restores what it touches). ``Solver`` calls them first and
assigns afterwards, so an input it rejects leaves everything as it was. Messages say
what was expected and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.training import rules as optim
from normgrad.training.checkpoint import (
    STAT_ATTRS,
    check_model_state,
    load_checkpoint,
    optim_configs_from,
    rng_state_from_arrays,
    sub_state,
)

__all__ = ["DEFAULTS", "RunState", "check_data", "check_options", "read_run_state"]

DEFAULTS: dict[str, Any] = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
    "progress_bar": None,
    "resume_from": None,
    "stop_on_nonfinite": True,
}

# Integer options: name -> (minimum, a sensible value for the message, None allowed).
_COUNTS = {
    "batch_size": (1, 100, False),
    "num_epochs": (0, 10, False),
    "num_train_samples": (1, 1000, True),
    "num_val_samples": (1, 1000, True),
    "print_every": (1, 10, False),
}

# The built-in rules' state arrays, each shaped like its parameter.
_STATE_KEYS = ("velocity", "cache", "m", "v")


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int, raising ``ValueError`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        _, example, optional = _COUNTS.get(name, (minimum, max(minimum, 1), False))
        alt = ", or None to use every row" if optional else ""
        raise ValueError(
            f"{name} must be an integer >= {minimum}; got {value!r}. Pass a "
            f"whole number such as {name}={example}{alt}."
        )
    return int(value)


def check_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Solver's keyword arguments merged over ``DEFAULTS``, each checked.

    Returns the merged dict with ``update_rule`` replaced by ``(name, callable)``,
    ``optim_config`` by a dict, ``lr_decay`` by a float and the counts by ints.
    """
    unknown = [k for k in kwargs if k not in DEFAULTS]
    if unknown:
        extra = ", ".join(f'"{k}"' for k in unknown)
        raise ValueError(
            f"Unrecognized arguments {extra}. Solver accepts {', '.join(DEFAULTS)}. Check "
            "the spelling; update-rule settings such as learning_rate go in optim_config, "
            "e.g. optim_config={'learning_rate': 1e-3}."
        )
    opts = {**DEFAULTS, **kwargs}
    opts["update_rule"] = _update_rule(opts["update_rule"])
    config = opts["optim_config"]
    if config is not None and not isinstance(config, dict):
        raise ValueError(
            f"optim_config must be a dict of update-rule settings; got "
            f"{type(config).__name__}. Pass optim_config as a dict like "
            "{'learning_rate': 1e-3}, or leave it out for the rule's defaults."
        )
    opts["optim_config"] = {} if config is None else config
    opts["lr_decay"] = v.nonnegative(opts["lr_decay"], "lr_decay")
    for name, (minimum, _, optional) in _COUNTS.items():
        if not (optional and opts[name] is None):
            opts[name] = positive_int(opts[name], name, minimum)
    return opts


def _update_rule(rule: Any) -> tuple[str, Callable]:
    """``(name, rule)`` for a rule name in ``optim.UPDATE_RULES`` or a callable rule."""
    names = ", ".join(f'"{r}"' for r in optim.UPDATE_RULES)
    signature = "a callable rule(w, dw, config) -> (next_w, config)"
    if isinstance(rule, str):
        if rule not in optim.UPDATE_RULES:
            raise ValueError(
                f'Invalid update_rule "{rule}"; expected one of {names} '
                f"(normgrad.training.rules.UPDATE_RULES) or {signature}. Pass e.g. "
                "update_rule='adam', or your own rule as a callable."
            )
        return rule, optim.UPDATE_RULES[rule]
    if callable(rule):
        return getattr(rule, "__name__", type(rule).__name__), rule
    raise ValueError(
        f"update_rule must be a rule name ({names}) or {signature}; got "
        f"{rule!r}. Pass e.g. update_rule='adam'."
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_data(model: Any, data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Check the data dict against itself and the model; return its arrays and C.

    The number of classes C is ``model.num_classes`` when the model has it; it is also
    read from the scores of a 2-row test-mode forward pass on ``X_train``, which checks
    that the rows have the shape the model expects (NumPy's global RNG state is saved
    and restored around it, so the run's random stream is untouched).
    """
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict; got {type(data).__name__}.")
    keys = ("X_train", "y_train", "X_val", "y_val")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"data is missing {missing}; it needs {', '.join(keys)}.")
    X_train, y_train, X_val, y_val = (data[k] for k in keys)
    for split, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
        for name, arr in ((f"X_{split}", X), (f"y_{split}", y)):
            if not isinstance(arr, np.ndarray):
                raise TypeError(
                    f"data['{name}'] must be a numpy.ndarray; got "
                    f"{type(arr).__name__}. Wrap it with np.asarray."
                )
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"data['y_{split}'] must be 1-D integer class labels (N,); got "
                f"shape {y.shape} dtype {y.dtype}."
            )
        if X.ndim < 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(
                f"data['X_{split}'] {X.shape} and data['y_{split}'] {y.shape} must "
                "have the same number of rows N >= 1, one label per row."
            )
    if X_train.shape[1:] != X_val.shape[1:]:
        raise ValueError(
            f"X_train rows {X_train.shape[1:]} and X_val rows {X_val.shape[1:]} "
            "must have the same shape."
        )
    rng = np.random.get_state()  # noqa: NPY002
    # The probe must leave the model as it found it: test mode sets each param dict's
    # mode and writes running stats back, so their contents are restored in place.
    dicts = [
        d
        for attr in (*STAT_ATTRS, "dropout_param")
        for d in _as_list(getattr(model, attr, None))
        if isinstance(d, dict)
    ]
    saved = [dict(d) for d in dicts]
    try:
        scores = model.loss(X_train[:2])
    except Exception as e:
        raise ValueError(
            f"the model rejects rows of shape {X_train.shape[1:]} from data['X_train']: {e}"
        ) from e
    finally:
        np.random.set_state(rng)  # noqa: NPY002
        for d, before in zip(dicts, saved, strict=True):
            d.clear()
            d.update(before)
    rows = min(2, X_train.shape[0])
    if not isinstance(scores, np.ndarray) or scores.ndim != 2 or scores.shape[0] != rows:
        raise ValueError(
            f"model.loss(X) without y must return scores (N, C); for {rows} rows "
            f"it returned {getattr(scores, 'shape', type(scores).__name__)}."
        )
    C = int(scores.shape[1])
    declared = getattr(model, "num_classes", None)
    if isinstance(declared, (int, np.integer)) and int(declared) != C:
        raise ValueError(f"model.num_classes is {declared} but its scores have {C} columns.")
    for split, y in (("train", y_train), ("val", y_val)):
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= C:
            raise ValueError(
                f"data['y_{split}'] has labels in [{lo}, {hi}], outside [0, {C}) "
                f"for a model with {C} classes. Relabel to 0..{C - 1}."
            )
    return X_train, y_train, X_val, y_val, C


@dataclass(frozen=True)
class RunState:
    """Everything a checkpoint restores, read and checked, not yet assigned anywhere."""

    model_state: dict[str, np.ndarray]  # params and running stats (checkpoint.model_state)
    best_state: dict[str, np.ndarray]  # the best-model snapshot; {} if there is none
    optim_configs: dict[str, dict]  # param name -> its update rule's config
    loss_history: list[float]
    train_acc_history: list[float]
    val_acc_history: list[float]
    rng_state: tuple  # for np.random.set_state
    epoch: int
    iteration: int
    best_val_acc: float


def read_run_state(path: str | os.PathLike, model: Any, settings: dict[str, Any]) -> RunState:
    """Read the checkpoint at ``path`` and check it against ``model`` and ``settings``.

    ``settings`` holds the resuming run's ``update_rule``, ``batch_size`` and
    ``num_train``; the checkpoint's must be equal. Its model state and best snapshot
    must fit ``model`` (``checkpoint.check_model_state``), and its optim configs must
    cover exactly the model's parameters, with state arrays of their shapes.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is corrupt or truncated, or from another model or run.
    """
    arrays, meta = load_checkpoint(path)
    src = f"checkpoint {os.fspath(path)!r}"
    try:
        state = RunState(
            model_state=sub_state(arrays, "model/"),
            best_state=sub_state(arrays, "best/"),
            optim_configs=optim_configs_from(arrays, meta["optim_kinds"]),
            loss_history=arrays["history/loss"].tolist(),
            train_acc_history=arrays["history/train_acc"].tolist(),
            val_acc_history=arrays["history/val_acc"].tolist(),
            rng_state=rng_state_from_arrays(arrays),
            epoch=int(meta["epoch"]),
            iteration=int(meta["iteration"]),
            best_val_acc=float(meta["best_val_acc"]),
        )
        theirs = {k: meta[k] for k in settings}
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{src} is incomplete or malformed ({e!r}); it may be "
            "corrupt. Resume from an earlier checkpoint."
        ) from e
    differ = [
        f"{k}: {theirs[k]!r} there, {settings[k]!r} here"
        for k in settings
        if theirs[k] != settings[k]
    ]
    if differ:
        raise ValueError(
            f"{src} comes from a run with other settings ({'; '.join(differ)}); "
            "resume with the same data, batch_size and update_rule."
        )
    params = model.params
    if set(state.optim_configs) != set(params):
        raise ValueError(
            f"{src} has optimizer state for {sorted(state.optim_configs)}, but the "
            f"model has parameters {sorted(params)}. Resume with the model "
            "architecture the checkpoint was written for."
        )
    check_model_state(model, state.model_state, src)
    if state.best_state:
        check_model_state(model, state.best_state, f"the best snapshot in {src}")
    wrong = [
        f"{p}['{k}'] {np.shape(c[k])} for {p} {np.shape(params[p])}"
        for p, c in sorted(state.optim_configs.items())
        for k in _STATE_KEYS
        if isinstance(c.get(k), np.ndarray) and np.shape(c[k]) != np.shape(params[p])
    ]
    if wrong:
        raise ValueError(
            f"{src} has optimizer state of other shapes than the parameters "
            f"({'; '.join(wrong)}); expected each state array to have its "
            "parameter's shape. It is damaged: resume from an earlier checkpoint."
        )
    return state
