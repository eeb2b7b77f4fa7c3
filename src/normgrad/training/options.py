"""Checks on what a ``Solver`` is given: keyword arguments, data, ``check_accuracy``'s arguments.

Every function here reads and raises; none writes to the model, the solver or NumPy's
global RNG (the data probe restores what it touches). ``Solver`` calls them first and
assigns afterwards, so an input it rejects leaves everything as it was. Messages name
the argument, say what was expected and what came, and how to fix it: a wrong type is a
``TypeError``, a wrong value (out of range, unknown, inconsistent) a ``ValueError``.

The keyword arguments, and what each must be (default):

- ``update_rule``: a name in ``rules.UPDATE_RULES`` or a callable
  ``rule(w, dw, config) -> (next_w, config)`` ("sgd");
- ``optim_config``: a dict or None (None: {}). For a built-in rule, only its
  hyperparameters, each valid (``rules.check_settings``: a typo is caught), and no
  per-parameter state array (``velocity``, ``cache``, ``m``, ``v``), since it is copied
  into every parameter's config. For a callable rule, string keys, and a
  ``learning_rate``, if given, a finite real > 0 (``lr_decay`` multiplies it);
- ``lr_decay``: a finite real > 0 (1.0);
- ``batch_size``, ``print_every``: an int >= 1 (100, 10); ``num_epochs``: an int >= 0 (10);
- ``num_train_samples``, ``num_val_samples``: an int >= 1 or None (1000, None);
- ``checkpoint_name``: None or a non-empty str / os.PathLike whose folder exists or can
  be created, writable (None);
- ``verbose``, ``stop_on_nonfinite``: a bool (True, False); ``progress_bar``: a bool or
  None (None: as ``verbose``);
- ``resume_from``: None or a str / os.PathLike (None).

Reading a checkpoint to resume from is ``normgrad.training.resume``'s job.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.training import rules as optim
from normgrad.training.resume import RunState, read_run_state
from normgrad.training.state import state_dicts

__all__ = [
    "DEFAULTS",
    "RunState",
    "check_accuracy_args",
    "check_data",
    "check_options",
    "read_run_state",
]

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
    "stop_on_nonfinite": False,
}

# Integer options: name -> (minimum, a sensible value for the message, None allowed).
_COUNTS = {
    "batch_size": (1, 100, False),
    "num_epochs": (0, 10, False),
    "num_train_samples": (1, 1000, True),
    "num_val_samples": (1, 1000, True),
    "print_every": (1, 10, False),
}
# Flag options: name -> whether None is allowed.
_FLAGS = {"verbose": False, "progress_bar": True, "stop_on_nonfinite": False}


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``: ``TypeError`` unless an integer, else ``ValueError``."""
    _, example, optional = _COUNTS.get(name, (minimum, max(minimum, 1), False))
    alt = ", or None to use every row" if optional else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be an integer >= {minimum}; got {value!r} "
            f"({type(value).__name__}). Pass a whole number such as {name}={example}{alt}."
        )
    if value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}; got {value!r}. Pass a "
            f"whole number such as {name}={example}{alt}."
        )
    return int(value)


def _flag(value: Any, name: str, none_ok: bool) -> bool | None:
    if none_ok and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        alt = ", or None" if none_ok else ""
        raise TypeError(
            f"{name} must be True or False{alt}; got {value!r} ({type(value).__name__}). "
            f"Pass {name}=True or {name}=False."
        )
    return bool(value)


def _path(value: Any, name: str, example: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be a str or os.PathLike (or None); got {value!r} "
            f"({type(value).__name__}). Pass e.g. {name}={example!r}."
        )
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"{name} must be a non-empty path; got {value!r}. Pass e.g. {name}={example!r}."
        )
    return text


def _checkpoint_name(value: Any) -> str | None:
    """The prefix as a str; its folder must exist or be creatable (no file in the way)."""
    name = _path(value, "checkpoint_name", "checkpoints/run")
    if name is None:
        return None
    folder = os.path.dirname(os.path.abspath(name))
    probe = folder
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(
            f"checkpoint_name {name!r} needs the folder {folder!r}, but {probe!r} is a file. "
            "Pass a prefix in a folder, e.g. checkpoint_name='checkpoints/run'."
        )
    if not os.access(probe, os.W_OK):
        raise ValueError(
            f"checkpoint_name {name!r}: the folder {probe!r} is not writable. Pass a prefix "
            "in a folder you can write to."
        )
    return name


def _optim_config(config: Any, rule_name: str, builtin: bool) -> dict[str, Any]:
    """The optim_config dict, checked for the rule it goes to (it is copied to every param)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TypeError(
            f"optim_config must be a dict of update-rule settings; got "
            f"{type(config).__name__}. Pass optim_config as a dict like "
            "{'learning_rate': 1e-3}, or leave it out for the rule's defaults."
        )
    bad = [k for k in config if not isinstance(k, str)]
    if bad:
        raise TypeError(
            f"optim_config keys must be strings (setting names); got {bad[0]!r}. Pass e.g. "
            "optim_config={'learning_rate': 1e-3}."
        )
    if builtin:
        optim.check_settings(rule_name, config, where="optim_config")
        state = [k for k in optim.STATE_KEYS[rule_name] if k in config]
        if state:
            raise ValueError(
                f"optim_config[{state[0]!r}] is a per-parameter state array of "
                f"{rule_name}, but the Solver copies optim_config into every parameter's "
                f"config, and each parameter needs its own. Leave it out (it starts as "
                f"zeros), or set solver.optim_configs[name][{state[0]!r}] per parameter."
            )
    elif "learning_rate" in config:
        v.real(
            config["learning_rate"],
            "optim_config['learning_rate']",
            example=1e-3,
            low=0.0,
            low_open=True,
        )
    return config


def check_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Solver's keyword arguments merged over ``DEFAULTS``, each checked.

    Returns the merged dict with ``update_rule`` replaced by ``(name, callable)``,
    ``optim_config`` by a dict, ``lr_decay`` by a float, the counts by ints, the flags
    by bools and the paths by strs.
    """
    unknown = [k for k in kwargs if k not in DEFAULTS]
    if unknown:
        extra = ", ".join(f'"{k}"' for k in unknown)
        close = difflib.get_close_matches(str(unknown[0]), list(DEFAULTS), n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise ValueError(
            f"Unrecognized arguments {extra}. Solver accepts {', '.join(DEFAULTS)}.{hint} "
            "Check the spelling; update-rule settings such as learning_rate go in "
            "optim_config, e.g. optim_config={'learning_rate': 1e-3}."
        )
    opts = {**DEFAULTS, **kwargs}
    opts["update_rule"] = _update_rule(opts["update_rule"])
    name, rule = opts["update_rule"]
    builtin = optim.UPDATE_RULES.get(name) is rule
    opts["optim_config"] = _optim_config(opts["optim_config"], name, builtin)
    opts["lr_decay"] = v.real(opts["lr_decay"], "lr_decay", example=0.95, low=0.0, low_open=True)
    for key, (minimum, _, optional) in _COUNTS.items():
        if not (optional and opts[key] is None):
            opts[key] = positive_int(opts[key], key, minimum)
    for key, none_ok in _FLAGS.items():
        opts[key] = _flag(opts[key], key, none_ok)
    opts["checkpoint_name"] = _checkpoint_name(opts["checkpoint_name"])
    opts["resume_from"] = _path(opts["resume_from"], "resume_from", "run_epoch_3.npz")
    return opts


def _update_rule(rule: Any) -> tuple[str, Callable]:
    """``(name, rule)`` for a rule name in ``optim.UPDATE_RULES`` or a callable rule."""
    names = ", ".join(f'"{r}"' for r in optim.UPDATE_RULES)
    signature = "a callable rule(w, dw, config) -> (next_w, config)"
    if isinstance(rule, str):
        if rule not in optim.UPDATE_RULES:
            close = difflib.get_close_matches(rule, list(optim.UPDATE_RULES), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f'Invalid update_rule "{rule}"; expected one of {names} '
                f"(normgrad.training.rules.UPDATE_RULES) or {signature}.{hint} Pass e.g. "
                "update_rule='adam', or your own rule as a callable."
            )
        return rule, optim.UPDATE_RULES[rule]
    if callable(rule):
        return getattr(rule, "__name__", type(rule).__name__), rule
    raise TypeError(
        f"update_rule must be a rule name ({names}) or {signature}; got "
        f"{rule!r}. Pass e.g. update_rule='adam'."
    )


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
        if X.dtype.kind not in "fiu":
            raise TypeError(
                f"data['X_{split}'] must hold real numbers (a float or integer dtype); got "
                f"dtype {X.dtype}. Convert it with data['X_{split}'].astype(np.float32)."
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
    for split, X in (("train", X_train), ("val", X_val)):
        bad_row = _first_nonfinite_row(X)
        if bad_row is not None:
            raise ValueError(
                f"data['X_{split}'] has NaN or inf in row {bad_row}; expected finite "
                "inputs. Drop or impute those rows (np.isfinite(X).all(axis=...))."
            )
    if X_train.shape[1:] != X_val.shape[1:]:
        raise ValueError(
            f"X_train rows {X_train.shape[1:]} and X_val rows {X_val.shape[1:]} "
            "must have the same shape."
        )
    rng = np.random.get_state()  # noqa: NPY002
    # The probe must leave the model as it found it: test mode sets each param dict's
    # mode and writes running stats back, so their contents are restored in place.
    dicts = state_dicts(model)
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


def _first_nonfinite_row(X: np.ndarray, rows: int = 1024) -> int | None:
    """The first row of ``X: (N, ...)`` holding NaN or inf (None: all finite).

    Read in blocks of ``rows`` rows, so no temporary as large as X is made.
    """
    if X.dtype.kind != "f":
        return None
    for start in range(0, X.shape[0], rows):
        block = np.isfinite(X[start : start + rows]).reshape(min(rows, X.shape[0] - start), -1)
        ok = block.all(axis=1)
        if not ok.all():
            return start + int(np.argmin(ok))
    return None


def check_accuracy_args(
    X: Any, y: Any, num_samples: Any, batch_size: Any
) -> tuple[int | None, int]:
    """Check ``Solver.check_accuracy``'s arguments; return ``(num_samples, batch_size)``.

    X must be an ndarray (N, ...) with N >= 1, y a 1-D integer ndarray (N,),
    ``num_samples`` an int >= 1 or None, ``batch_size`` an int >= 1.
    """
    for name, arr in (("X", X), ("y", y)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(
                f"check_accuracy: {name} must be a numpy.ndarray; got {type(arr).__name__}. "
                "Wrap it with np.asarray."
            )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"check_accuracy: y must be 1-D integer class labels (N,); got shape {y.shape} "
            f"dtype {y.dtype}. Pass labels like data['y_val']."
        )
    if X.ndim < 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(
            f"check_accuracy: X {X.shape} and y {y.shape} must have the same number of "
            "rows N >= 1, one label per row."
        )
    if num_samples is not None:
        num_samples = positive_int(num_samples, "num_samples")
    return num_samples, positive_int(batch_size, "batch_size")
