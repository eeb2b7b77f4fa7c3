"""Reading a Solver checkpoint to resume from: every entry checked, nothing assigned.

``read_run_state(path, model, settings, rule)`` reads the file (``checkpoint.
load_checkpoint`` verifies its checksum and format version), then checks, in order:

1. the header's types and ranges: ``epoch``, ``iteration`` ints >= 0; ``num_epochs``
   an int >= 0; ``batch_size``, ``num_train`` ints >= 1; ``best_val_acc`` a finite
   real in [0, 1]; ``update_rule`` a string; ``optim_kinds`` a dict;
2. that the run's settings (update rule, batch size, number of training rows) equal
   the resuming Solver's;
3. the model fingerprint against the model (``fingerprint.check_fingerprint``): class,
   normalization, dtype, layer sizes, parameter names and shapes, the normalization
   param dicts; every difference is named;
4. the stored model state and best snapshot against the model
   (``checkpoint.check_model_state``);
5. the optimizer state: one config per parameter, each entry of the kind recorded;
   for a built-in rule, only its keys, with valid values and state arrays of the
   parameter's shape;
6. the histories (1-D floats; accuracies in [0, 1], as many train as val) and the
   random state.

It returns a ``RunState`` and writes nothing: ``Solver.restore`` assigns it only after
every check has passed. A problem with the file is a ``ValueError``, whatever its kind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.training import rules
from normgrad.training.checkpoint import load_checkpoint
from normgrad.training.fingerprint import check_fingerprint
from normgrad.training.state import (
    check_model_state,
    optim_configs_from,
    rng_state_from_arrays,
    sub_state,
)

__all__ = ["RunState", "read_run_state"]

# The prefixes of the entries a Solver stores; anything else marks a foreign file.
_PREFIXES = ("model/", "best/", "optim/", "history/", "rng/")


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


def _damaged(src: str, what: str) -> ValueError:
    return ValueError(
        f"{src} is malformed: {what.rstrip('.')}. It is damaged or was not written by a normgrad "
        "Solver; resume from an earlier checkpoint."
    )


def _header(meta: dict[str, Any], src: str) -> dict[str, Any]:
    """The header entries a Solver writes, checked for type and range."""
    counts = {"epoch": 0, "iteration": 0, "num_epochs": 0, "batch_size": 1, "num_train": 1}
    missing = [
        k for k in (*counts, "best_val_acc", "update_rule", "optim_kinds", "model") if k not in meta
    ]
    if missing:
        raise _damaged(src, f"its header lacks {missing}")
    out: dict[str, Any] = {}
    try:
        for key, low in counts.items():
            out[key] = v.integer(meta[key], f"header[{key!r}]", example=low, low=low)
        out["best_val_acc"] = v.unit_interval(meta["best_val_acc"], "header['best_val_acc']")
    except (TypeError, ValueError) as e:
        raise _damaged(src, str(e)) from None
    if not isinstance(meta["update_rule"], str):
        raise _damaged(src, f"header['update_rule'] is {meta['update_rule']!r}, not a string")
    out["update_rule"] = meta["update_rule"]
    return out


def _history(arrays: dict[str, np.ndarray], key: str, src: str, unit: bool) -> list[float]:
    value = arrays.get(key)
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind != "f":
        got = "nothing" if value is None else f"{np.shape(value)} {np.asarray(value).dtype}"
        raise _damaged(src, f"{key!r} must be a 1-D float array; it is {got}")
    if unit and not np.all((value >= 0) & (value <= 1)):
        raise _damaged(src, f"{key!r} holds accuracies outside [0, 1]")
    return value.tolist()


def _check_optim(
    configs: dict[str, dict], params: dict[str, np.ndarray], rule: str, src: str
) -> None:
    """One config per parameter; for a built-in rule, its keys, values and state shapes."""
    if set(configs) != set(params):
        raise ValueError(
            f"{src} has optimizer state for {sorted(configs)}, but the model has "
            f"parameters {sorted(params)}. Resume with the model architecture the "
            "checkpoint was written for."
        )
    if rule not in rules.UPDATE_RULES:
        return  # a custom rule: its configs are its own business
    wrong = []
    for p, config in sorted(configs.items()):
        try:
            rules.check_settings(rule, config, where=f"optim_configs[{p!r}]")
        except (TypeError, ValueError) as e:
            raise _damaged(src, str(e)) from None
        for key in rules.STATE_KEYS[rule]:
            state = config.get(key)
            if state is None:
                continue
            if not isinstance(state, np.ndarray) or state.shape != np.shape(params[p]):
                wrong.append(f"{p}['{key}'] {np.shape(state)} for {p} {np.shape(params[p])}")
    if wrong:
        raise ValueError(
            f"{src} has optimizer state of other shapes than the parameters "
            f"({'; '.join(wrong)}); expected each state array to have its "
            "parameter's shape. It is damaged: resume from an earlier checkpoint."
        )


def read_run_state(path: str | os.PathLike, model: Any, settings: dict[str, Any]) -> RunState:
    """Read the checkpoint at ``path`` and check it against ``model`` and ``settings``.

    ``settings`` holds the resuming run's ``update_rule``, ``batch_size`` and
    ``num_train``; the checkpoint's must be equal. See the module docstring for every
    check.

    Raises:
        TypeError: ``path`` is not a str or os.PathLike.
        FileNotFoundError: no such file.
        ValueError: the file is corrupt, truncated, of format version 1, malformed, or
            from another model or run (the message names the difference).
    """
    arrays, meta = load_checkpoint(path)
    src = f"checkpoint {os.fspath(path)!r}"
    header = _header(meta, src)
    foreign = sorted(k for k in arrays if not k.startswith(_PREFIXES))
    if foreign:
        raise _damaged(src, f"it holds entries a Solver does not write: {foreign[:5]}")
    differ = [
        f"{k}: {header[k]!r} there, {settings[k]!r} here"
        for k in settings
        if header[k] != settings[k]
    ]
    if differ:
        raise ValueError(
            f"{src} comes from a run with other settings ({'; '.join(differ)}); "
            "resume with the same data, batch_size and update_rule."
        )
    check_fingerprint(meta["model"], model, src)
    model_state = sub_state(arrays, "model/")
    best_state = sub_state(arrays, "best/")
    check_model_state(model, model_state, src)
    if best_state:
        check_model_state(model, best_state, f"the best snapshot in {src}")
    configs = optim_configs_from(arrays, meta["optim_kinds"])
    stored = {f"optim/{p}/{k}" for p, kinds in meta["optim_kinds"].items() for k in kinds}
    unused = sorted(k for k in arrays if k.startswith("optim/") and k not in stored)
    if unused:
        raise _damaged(src, f"optimizer entries not listed in its header: {unused[:5]}")
    _check_optim(configs, model.params, header["update_rule"], src)
    train_acc = _history(arrays, "history/train_acc", src, unit=True)
    val_acc = _history(arrays, "history/val_acc", src, unit=True)
    if len(train_acc) != len(val_acc):
        raise _damaged(src, f"{len(train_acc)} train accuracies but {len(val_acc)} val accuracies")
    return RunState(
        model_state=model_state,
        best_state=best_state,
        optim_configs=configs,
        loss_history=_history(arrays, "history/loss", src, unit=False),
        train_acc_history=train_acc,
        val_acc_history=val_acc,
        rng_state=rng_state_from_arrays(arrays),
        epoch=header["epoch"],
        iteration=header["iteration"],
        best_val_acc=header["best_val_acc"],
    )
