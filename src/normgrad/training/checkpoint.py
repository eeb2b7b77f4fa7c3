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
``.tmp-<stem>-*.npz``); if the write fails (a full disk, a failed rename), the
temporary file is removed and the previous checkpoint is left byte for byte.

**Integrity.** The header carries a SHA-256 checksum (``checksum_of``) over the header
itself and every stored array: its key, dtype, shape and bytes, in sorted key order.
``load_checkpoint`` recomputes it, so a flipped byte, a truncated file, an array
swapped or added by another tool, or an edited header is refused with a ``ValueError``
before anything is restored.

**Versions.** This is format version 2. Version 1 files (normgrad 0.1.0)
hold neither a checksum nor a model fingerprint, so they can be checked neither for
corruption nor against the model they are resumed into; they are refused with a
message saying so.
A Solver's checkpoint also stores the model's fingerprint (``fingerprint.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from normgrad._internal.errors import MissingFileError
from normgrad._internal.io import atomic_write
from normgrad.training.fingerprint import STAT_ATTRS, is_counter

__all__ = [
    "STAT_ATTRS",
    "FORMAT",
    "VERSION",
    "state_dicts",
    "model_state",
    "check_model_state",
    "load_model_state",
    "sub_state",
    "save_checkpoint",
    "load_checkpoint",
    "checksum_of",
    "optim_state",
    "optim_configs_from",
    "rng_state_arrays",
    "rng_state_from_arrays",
]

FORMAT = "normgrad-checkpoint"
VERSION = 2
_RESERVED = ("format", "version", "checksum")  # header keys save_checkpoint writes itself


def state_dicts(model: Any) -> list[dict[str, Any]]:
    """Every param dict a forward pass may write: the ``STAT_ATTRS`` lists' dicts (modes,
    running statistics) and ``dropout_param`` (its mode), in that order."""
    found = []
    for attr in (*STAT_ATTRS, "dropout_param"):
        value = getattr(model, attr, None)
        for d in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(d, dict):
                found.append(d)
    return found


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
                elif is_counter(value):
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
                held = isinstance(current, np.ndarray) or is_counter(current)
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


def _scalar_entry(arrays: Mapping[str, np.ndarray], key: str, kinds: str) -> np.ndarray:
    """``arrays[key]`` checked to be a 0-d array whose dtype kind is in ``kinds``."""
    value = arrays.get(key)
    if not isinstance(value, np.ndarray) or value.ndim != 0 or value.dtype.kind not in kinds:
        got = "nothing" if value is None else f"{np.shape(value)} {np.asarray(value).dtype}"
        raise ValueError(
            f"checkpoint entry {key!r} must be a 0-d array of kind {kinds!r} (as the "
            f"Solver stores it); got {got}. The checkpoint is damaged: use an earlier one."
        )
    return value


def rng_state_from_arrays(arrays: Mapping[str, np.ndarray]) -> tuple:
    """The ``np.random.set_state`` tuple stored by ``rng_state_arrays``, checked.

    Raises:
        ValueError: an entry is missing or is not what ``rng_state_arrays`` stores (the
            state is tried on a scratch ``RandomState``, never on the global one).
    """
    keys = arrays.get("rng/keys")
    if not isinstance(keys, np.ndarray) or keys.shape != (624,) or keys.dtype != np.uint32:
        got = "nothing" if keys is None else f"{np.shape(keys)} {np.asarray(keys).dtype}"
        raise ValueError(
            f"rng/keys must be (624,) uint32, as rng_state_arrays stores them; got "
            f"{got}. The checkpoint is damaged: use an earlier one."
        )
    pos = int(_scalar_entry(arrays, "rng/pos", "iu"))
    has_gauss = int(_scalar_entry(arrays, "rng/has_gauss", "iu"))
    cached = float(_scalar_entry(arrays, "rng/cached_gaussian", "f"))
    if not 0 <= pos <= 624 or has_gauss not in (0, 1) or not np.isfinite(cached):
        raise ValueError(
            f"the stored random state is out of range (pos {pos}, expected 0..624; "
            f"has_gauss {has_gauss}, expected 0 or 1; cached_gaussian {cached}, expected "
            "finite). The checkpoint is damaged: use an earlier one."
        )
    state = ("MT19937", keys.copy(), pos, has_gauss, cached)
    try:
        np.random.RandomState().set_state(state)  # noqa: NPY002  (a scratch generator)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"the stored random state is not a valid MT19937 state ({e}). The checkpoint "
            "is damaged: use an earlier one."
        ) from e
    return state


def checksum_of(arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a header and every array: key, dtype, shape and bytes, keys sorted.

    ``header`` is the JSON header without its ``checksum`` entry; it is hashed as
    canonical JSON (sorted keys, no spaces). Each array is hashed in C order, so one
    stored in Fortran order gives the same digest once read back.
    """
    h = hashlib.sha256(f"{FORMAT} {VERSION}\n".encode())
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False)
    h.update(len(text).to_bytes(8, "little") + text.encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        desc = json.dumps([key, arr.dtype.str, list(arr.shape)]).encode()
        h.update(len(desc).to_bytes(8, "little") + desc)
        h.update(arr.nbytes.to_bytes(8, "little"))
        h.update(arr.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, arrays: Mapping[str, Any], meta: dict) -> None:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` as an ``.npz``, atomically.

    The header is ``meta`` plus ``format``, ``version`` and ``checksum`` (entries of
    ``meta`` with those names are replaced). The data go to a temporary file in the same
    folder, which is flushed, fsynced and then renamed over ``path``; if anything fails
    (a full disk, a failed rename, the process dying) before the rename, ``path`` still
    holds its previous contents, byte for byte, and the temporary file is removed.

    Raises:
        TypeError: ``meta`` is not a dict of JSON values (str keys; no NaN or inf).
        ValueError: an array has an object dtype (it would need pickle) or a key is
            ``meta``; nothing is written.
        OSError: the write or the rename failed (the previous file is untouched).
    """
    path = os.fspath(path)
    if not isinstance(meta, dict):
        raise TypeError(
            f"meta must be a dict of JSON values (the checkpoint header); got "
            f"{type(meta).__name__}. Pass e.g. {{'epoch': 3}}."
        )
    checked = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"checkpoint entry names must be non-empty strings; got {key!r}. Name each "
                "array like 'params/W1'."
            )
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
    header = {k: v for k, v in meta.items() if k not in _RESERVED}
    header.update(format=FORMAT, version=VERSION)
    try:
        header["checksum"] = {"algorithm": "sha256", "digest": checksum_of(checked, header)}
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"meta must hold JSON values only (str keys; numbers, strings, bools, None, "
            f"lists and dicts; no NaN or inf); {e}. Store arrays as checkpoint entries."
        ) from e
    checked["meta"] = np.array(text)  # 0-d unicode, no pickle

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in checked.items():
                with zf.open(f"{key}.npy", mode="w", force_zip64=True) as out:
                    np.lib.format.write_array(out, arr, allow_pickle=False)

    atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``save_checkpoint``: ``(arrays, meta)``.

    Nothing is unpickled (``allow_pickle=False``). Every array is read and the checksum
    verified, so a truncated or corrupt file fails here, not halfway through restoring
    it. ``meta`` is the header, ``format``, ``version`` and ``checksum`` included.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is truncated, corrupt (its checksum does not match), of
            another format version, or not a normgrad checkpoint.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or os.PathLike naming a checkpoint file; got "
            f"{type(path).__name__}. Pass e.g. 'run_epoch_3.npz'."
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(
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
        if not isinstance(meta_arr, np.ndarray) or meta_arr.ndim or meta_arr.dtype.kind != "U":
            raise ValueError("no 0-d text entry 'meta'")
        meta = json.loads(str(meta_arr[()]))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("wrong format tag")
    except Exception as e:
        raise ValueError(
            f"{path!r} is an .npz file but not a {FORMAT} file (its header is missing or "
            f"unreadable: {e}). {hint}"
        ) from e
    version = meta.get("version")
    if version == 1:
        raise ValueError(
            f"{path!r} is checkpoint format version 1 (normgrad 0.1.0), which "
            "stores no checksum and no model fingerprint, so this normgrad cannot tell "
            "whether it is intact or which model it belongs to; it reads version "
            f"{VERSION} only. Finish that run with normgrad 0.1.0, or start it afresh (new "
            f"checkpoints are version {VERSION})."
        )
    if version != VERSION:
        raise ValueError(
            f"{path!r} is checkpoint format version {version!r}; this normgrad reads "
            f"version {VERSION} only. Resume with the normgrad version that wrote it, or "
            "start the run afresh."
        )
    stored = meta.get("checksum")
    header = {k: v for k, v in meta.items() if k != "checksum"}
    try:
        digest = checksum_of(arrays, header)
    except (TypeError, ValueError) as e:  # a header JSON cannot re-encode (NaN...)
        digest = f"unhashable ({e})"
    if (
        not isinstance(stored, dict)
        or stored.get("algorithm") != "sha256"
        or stored.get("digest") != digest
    ):
        raise ValueError(
            f"checkpoint {path!r} is corrupt: its contents do not match the SHA-256 "
            f"checksum in its header (stored {stored!r}, computed {digest}). A byte was "
            "changed or an entry added, removed or replaced after it was written. Resume "
            "from an earlier checkpoint."
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


# Each stored kind of optim-config entry: the dtype kinds its array may have.
_KIND_DTYPES = {"int": "iu", "float": "f", "bool": "b", "scalar": "biuf", "array": "biuf"}


def _config_from(arrays: Mapping[str, np.ndarray], param: str, kinds: Any) -> dict:
    """Rebuild one optim config from its stored arrays, with the original Python types.

    Raises:
        ValueError: ``kinds`` is not a dict of known kinds, or an entry is missing or
            of another dtype or shape than its kind says.
    """
    if not isinstance(kinds, dict):
        raise ValueError(
            f"optim_kinds[{param!r}] must be a dict key -> kind; got {type(kinds).__name__}. "
            "The checkpoint is damaged: use an earlier one."
        )
    config: dict[str, Any] = {}
    for key, kind in kinds.items():
        if kind == "none":
            config[key] = None
            continue
        name = f"optim/{param}/{key}"
        value = arrays.get(name)
        allowed = _KIND_DTYPES.get(kind) if isinstance(kind, str) else None
        if (
            allowed is None
            or not isinstance(value, np.ndarray)
            or value.dtype.kind not in allowed
            or (kind != "array" and value.ndim != 0)
        ):
            got = "nothing" if value is None else f"{np.shape(value)} {np.asarray(value).dtype}"
            raise ValueError(
                f"checkpoint entry {name!r} (stored kind {kind!r}) is {got}; expected one of "
                f"the kinds {', '.join(map(repr, [*_KIND_DTYPES, 'none']))} with a matching "
                "array. The checkpoint is damaged: use an earlier one."
            )
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


def optim_configs_from(arrays: Mapping[str, np.ndarray], kinds: Any) -> dict[str, dict]:
    """Invert ``optim_state``: param -> config dict with the original Python types.

    Raises:
        ValueError: ``kinds`` or an entry is not what ``optim_state`` stores.
    """
    if not isinstance(kinds, dict):
        raise ValueError(
            f"optim_kinds must be a dict param -> (key -> kind); got {type(kinds).__name__}. "
            "The checkpoint is damaged: use an earlier one."
        )
    return {p: _config_from(arrays, p, kinds[p]) for p in kinds}
