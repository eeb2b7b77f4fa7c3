"""Model state snapshots and pickle-free, atomically written ``.npz`` checkpoints.

**Model state.** A model (the course's interface) keeps its weights in ``model.params``
(name -> ndarray) and the state of its normalization layers in lists of dicts, one per
layer: ``model.bn_params`` in the course's FullyConnectedNet, and here also
``ln_params`` and ``gn_params``. ``model_state`` snapshots, as flat copies:

- ``params/<name>``: every parameter;
- ``<attr>/<i>/<key>``: every ndarray entry of those dicts (``running_mean``,
  ``running_var``) and every integer counter (``num_batches_tracked``), for ``attr`` in
  ``STAT_ATTRS``. Settings (``mode``, ``eps``, ``momentum``) are configuration, not
  state, and are left alone.

``load_model_state`` checks the whole snapshot against the model first (same parameter
names, shapes and dtypes; the same number of normalization layers) and writes nothing
unless every check passes.

**Checkpoint files.** ``save_checkpoint`` writes a set of named arrays plus a JSON
header (stored as a 0-d unicode array, key ``meta``) as an ordinary ``.npz`` that
``np.load(path, allow_pickle=False)`` reads. Object arrays are refused, so nothing in a
checkpoint is ever pickled. The file is written by ``normgrad._internal.io.atomic_write``: to a
temporary file in the target's folder, fsynced, then renamed over the target with
``os.replace``. A reader sees the old checkpoint or the new one, never half of one,
even if the process is killed mid-write (a killed write may leave a stray
``.tmp-<stem>-*.npz``).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from normgrad._internal.io import atomic_write

__all__ = [
    "STAT_ATTRS",
    "FORMAT",
    "model_state",
    "check_model_state",
    "load_model_state",
    "sub_state",
    "save_checkpoint",
    "load_checkpoint",
    "optim_state",
    "optim_configs_from",
    "rng_state_arrays",
    "rng_state_from_arrays",
]

STAT_ATTRS = ("bn_params", "ln_params", "gn_params")
FORMAT = "normgrad-checkpoint"
VERSION = 1


def _is_counter(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _stat_lists(model: Any) -> dict[str, list[dict[str, Any]]]:
    """The normalization-state lists the model has: attr -> list of per-layer dicts."""
    found = {}
    for attr in STAT_ATTRS:
        value = getattr(model, attr, None)
        if isinstance(value, (list, tuple)) and all(isinstance(d, dict) for d in value):
            found[attr] = list(value)
    return found


def model_state(model: Any) -> dict[str, np.ndarray]:
    """Copies of the model's params and normalization running statistics.

    Returns:
        ``{"params/<name>": array, "<attr>/<i>/<key>": array}``; counters become 0-d
        int64 arrays. The arrays are copies: later training does not change them.
    """
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError(
            f"model must have a dict attribute 'params' (name -> ndarray); got "
            f"{type(params).__name__}. Keep the weights in a dict, as the course's models "
            "do: self.params = {'W1': ..., 'b1': ...}."
        )
    state = {f"params/{name}": np.array(w, copy=True) for name, w in params.items()}
    for attr, layers in _stat_lists(model).items():
        for i, layer in enumerate(layers):
            for key, value in layer.items():
                if isinstance(value, np.ndarray):
                    state[f"{attr}/{i}/{key}"] = value.copy()
                elif _is_counter(value):
                    state[f"{attr}/{i}/{key}"] = np.array(int(value), dtype=np.int64)
    return state


def _split(state: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """Separate a snapshot into params (name -> array) and stats ((attr, i, key) -> array)."""
    params: dict[str, np.ndarray] = {}
    stats: dict[tuple[str, int, str], np.ndarray] = {}
    for name, value in state.items():
        head, _, rest = name.partition("/")
        if head == "params" and rest:
            params[rest] = value
            continue
        index, _, key = rest.partition("/")
        if head not in STAT_ATTRS or not index.isdigit() or not key:
            raise ValueError(
                f"unexpected entry {name!r} in a model state; expected 'params/<name>' or "
                f"'<attr>/<i>/<key>' with attr one of {', '.join(STAT_ATTRS)}."
            )
        stats[(head, int(index), key)] = value
    return params, stats


def check_model_state(model: Any, state: Mapping[str, np.ndarray], source: str = "state") -> None:
    """Raise ``ValueError`` unless ``state`` fits ``model``; nothing is written.

    It fits when it has exactly the model's parameter names, each with the model's shape
    and dtype; the model has as many normalization layers of each kind as the state
    refers to; and every statistic the model already holds is in the state, with its
    shape and dtype. (A statistic the model lacks, such as a running mean that batch
    norm creates on its first call, is accepted and added.)
    """
    params, stats = _split(state)
    model_params = getattr(model, "params", None)
    if not isinstance(model_params, dict):
        raise TypeError(
            f"model must have a dict attribute 'params' (name -> ndarray) to check {source} "
            f"against; got {type(model_params).__name__}. Keep the weights in a dict, as the "
            "course's models do: self.params = {'W1': ..., 'b1': ...}."
        )
    missing = sorted(set(model_params) - set(params))
    extra = sorted(set(params) - set(model_params))
    if missing or extra:
        raise ValueError(
            f"{source} does not fit this model: parameters missing from it {missing}, "
            f"parameters the model does not have {extra}. It comes from a model with "
            "other layers; build the model with the same architecture."
        )
    problems = []
    for name, w in model_params.items():
        got = params[name]
        if np.shape(got) != np.shape(w) or np.asarray(got).dtype != np.asarray(w).dtype:
            problems.append(
                f"{name}: model {np.shape(w)} {np.asarray(w).dtype}, "
                f"{source} {np.shape(got)} {np.asarray(got).dtype}"
            )
    lists = _stat_lists(model)
    for (attr, i, key), value in sorted(stats.items()):
        layers = lists.get(attr)
        if layers is None or i >= len(layers):
            have = 0 if layers is None else len(layers)
            problems.append(f"{attr}[{i}]['{key}']: the model has only {have} {attr} entries")
            continue
        current = layers[i].get(key)
        if isinstance(current, np.ndarray) and (
            current.shape != value.shape or current.dtype != value.dtype
        ):
            problems.append(
                f"{attr}[{i}]['{key}']: model {current.shape} {current.dtype}, "
                f"{source} {value.shape} {value.dtype}"
            )
    for attr, layers in lists.items():
        for i, layer in enumerate(layers):
            for key, current in layer.items():
                held = isinstance(current, np.ndarray) or _is_counter(current)
                if held and (attr, i, key) not in stats:
                    problems.append(f"{attr}[{i}]['{key}']: the model has it, {source} does not")
    if problems:
        raise ValueError(
            f"{source} does not fit this model (another shape or dtype): "
            + "; ".join(problems)
            + ". Build the model with the same dimensions, normalization and dtype."
        )


def load_model_state(model: Any, state: Mapping[str, np.ndarray], source: str = "state") -> None:
    """Write a ``model_state`` snapshot back into ``model`` (copies), after checking it.

    Raises:
        ValueError: the snapshot does not fit the model; the model is left unchanged.
    """
    check_model_state(model, state, source)
    params, stats = _split(state)
    for name in model.params:
        model.params[name] = np.array(params[name], copy=True)
    lists = _stat_lists(model)
    for (attr, i, key), value in stats.items():
        layer = lists[attr][i]
        layer[key] = int(value) if value.ndim == 0 and value.dtype.kind in "iu" else value.copy()


def sub_state(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries of ``arrays`` whose key starts with ``prefix``, with the prefix removed.

    A checkpoint stores several snapshots side by side (``model/params/W1``,
    ``best/params/W1``); ``sub_state(arrays, "model/")`` gives one back.
    """
    return {k[len(prefix) :]: a for k, a in arrays.items() if k.startswith(prefix)}


def rng_state_arrays(state: tuple | None = None) -> dict[str, np.ndarray]:
    """NumPy's legacy global RNG state (``np.random.get_state()``) as plain arrays."""
    if state is None:
        state = tuple(np.random.get_state(legacy=True))  # noqa: NPY002  (the course's RNG)
    name, keys, pos, has_gauss, cached = state
    if name != "MT19937":
        raise ValueError(
            f"cannot store a random state of kind {name!r}; expected 'MT19937', the kind "
            "np.random.get_state() returns. Pass that tuple, or None for the current state."
        )
    return {
        "rng/keys": np.asarray(keys, dtype=np.uint32).copy(),
        "rng/pos": np.array(pos, dtype=np.int64),
        "rng/has_gauss": np.array(has_gauss, dtype=np.int64),
        "rng/cached_gaussian": np.array(cached, dtype=np.float64),
    }


def rng_state_from_arrays(arrays: Mapping[str, np.ndarray]) -> tuple:
    """The ``np.random.set_state`` tuple stored by ``rng_state_arrays``."""
    keys = arrays["rng/keys"]
    if keys.shape != (624,) or keys.dtype != np.uint32:
        raise ValueError(
            f"rng/keys must be (624,) uint32, as rng_state_arrays stores them; got "
            f"{keys.shape} {keys.dtype}. The checkpoint is damaged: use an earlier one."
        )
    return (
        "MT19937",
        keys.copy(),
        int(arrays["rng/pos"]),
        int(arrays["rng/has_gauss"]),
        float(arrays["rng/cached_gaussian"]),
    )


def save_checkpoint(path: str | os.PathLike, arrays: Mapping[str, Any], meta: dict) -> None:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` as an ``.npz``, atomically.

    The data go to a temporary file in the same folder, which is flushed, fsynced and
    then renamed over ``path``; if anything fails (or the process dies) before the
    rename, ``path`` still holds its previous contents.

    Raises:
        ValueError: an array has an object dtype (it would need pickle) or a key is
            ``meta``; nothing is written.
    """
    path = os.fspath(path)
    checked = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(
                f"checkpoint entry {key!r} has dtype object, which can only be stored with "
                "pickle; store numbers and numeric arrays only."
            )
        if key == "meta":
            raise ValueError(
                "checkpoint entry 'meta' is reserved for the checkpoint header; expected "
                "any other key. Rename the entry (e.g. 'run/meta')."
            )
        checked[key] = arr
    header = dict(meta, format=FORMAT, version=VERSION)
    checked["meta"] = np.array(json.dumps(header))  # 0-d unicode, no pickle

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in checked.items():
                with zf.open(f"{key}.npy", mode="w", force_zip64=True) as out:
                    np.lib.format.write_array(out, arr, allow_pickle=False)

    atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``save_checkpoint``: ``(arrays, meta)``.

    Nothing is unpickled (``allow_pickle=False``). Every array is read, so a truncated
    or corrupt file fails here, not halfway through restoring it.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is truncated, corrupt, or not a normgrad checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no checkpoint at {path!r}; expected a file written by save_checkpoint. Check "
            "the path: a Solver names them <checkpoint_name>_epoch_<e>.npz."
        )
    hint = "It may be truncated or corrupt; resume from an earlier checkpoint."
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error
        raise ValueError(f"cannot read checkpoint {path!r}: {e}. {hint}") from e
    meta_arr = arrays.pop("meta", None)
    try:
        meta = json.loads(str(meta_arr[()]))
        if meta.get("format") != FORMAT:
            raise ValueError("wrong format tag")
    except Exception as e:
        raise ValueError(
            f"{path!r} is an .npz file but not a {FORMAT} file (its header is missing or "
            f"unreadable: {e}). {hint}"
        ) from e
    if meta.get("version") != VERSION:
        raise ValueError(
            f"{path!r} is checkpoint format version {meta.get('version')}; this normgrad "
            f"reads version {VERSION} only. Resume with the normgrad version that wrote it, "
            "or start the run afresh."
        )
    return arrays, meta


def _config_kind(value: Any, param: str, key: str) -> str:
    """How an optim-config entry is stored, so it comes back with its exact type.

    'int', 'float', 'bool' (Python scalars), 'scalar' (a NumPy scalar, whose dtype is kept),
    'array' or 'none'.
    """
    if value is None:
        return "none"
    for kind, typ in (("bool", bool), ("int", int), ("float", float)):
        if type(value) is typ:
            return kind
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return "scalar"
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return "array"
    raise ValueError(
        f"optim_configs[{param!r}][{key!r}] is a {type(value).__name__}; checkpoints hold "
        "numbers and numeric arrays only. Store other values outside the optim config."
    )


def _config_from(arrays: Mapping[str, np.ndarray], param: str, kinds: dict[str, str]) -> dict:
    """Rebuild one optim config from its stored arrays, with the original Python types."""
    config: dict[str, Any] = {}
    for key, kind in kinds.items():
        if kind == "none":
            config[key] = None
            continue
        value = arrays[f"optim/{param}/{key}"]
        if kind == "array":
            config[key] = value.copy()
        elif kind == "scalar":
            config[key] = value[()]  # a NumPy scalar of the stored dtype
        else:
            config[key] = {"int": int, "float": float, "bool": bool}[kind](value[()])
    return config


def optim_state(configs: Mapping[str, dict]) -> tuple[dict[str, np.ndarray], dict]:
    """Every entry of every optim config as arrays ``optim/<param>/<key>``, plus their kinds.

    The kinds (a JSON-able dict param -> key -> kind) go in the checkpoint header, so
    ``optim_configs_from`` gives back ints as ints, Python floats as floats and NumPy
    scalars with their dtype: ``t``, ``learning_rate`` and ``m`` resume bit for bit.
    """
    arrays: dict[str, np.ndarray] = {}
    kinds: dict[str, dict[str, str]] = {}
    for p, config in configs.items():
        kinds[p] = {}
        for key, value in config.items():
            kinds[p][key] = _config_kind(value, p, key)
            if kinds[p][key] != "none":
                arrays[f"optim/{p}/{key}"] = np.asarray(value)
    return arrays, kinds


def optim_configs_from(arrays: Mapping[str, np.ndarray], kinds: dict) -> dict[str, dict]:
    """Invert ``optim_state``: param -> config dict with the original Python types."""
    return {p: _config_from(arrays, p, kinds[p]) for p in kinds}
