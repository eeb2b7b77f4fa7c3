"""What a checkpoint stores: snapshots of a model's state, of NumPy's RNG, of optimizer configs.

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

**RNG and optimizer state.** ``rng_state_arrays`` / ``rng_state_from_arrays`` turn NumPy's
legacy global RNG state into plain arrays and back; ``optim_state`` /
``optim_configs_from`` do the same for every parameter's update-rule config (numbers,
bools and state arrays, with their kinds recorded so they come back as they went in).
``normgrad.training.checkpoint`` writes and reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from normgrad.training.fingerprint import STAT_ATTRS, is_counter, params_of


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
    params = params_of(model)
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
    model_params = params_of(model, f" to check {source} against")
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
