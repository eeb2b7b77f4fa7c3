"""A model's fingerprint: what a checkpoint must share with a model to be resumed into it.

``model_fingerprint(model)`` describes a model (the course's interface) as a small
JSON-able dict, stored in every checkpoint's header:

- ``class``: the model's class name (``FullyConnectedNet``);
- ``normalization``: ``model.normalization`` (None without one, or for a model that
  has no such attribute);
- ``dtype``: ``model.dtype`` as a NumPy dtype name (``float32``), or None;
- ``sizes``: the layer sizes the model declares, among ``input_dim``, ``num_classes``,
  ``num_layers`` and ``activation`` (and ``num_groups`` when its normalization uses
  groups);
- ``params``: every parameter's name, shape and dtype, in the model's order;
- ``norm_params``: for each list of normalization param dicts (``bn_params``,
  ``ln_params``, ``gn_params``), one entry per layer: the names of its settings
  (``mode``, ``eps``, ``r_max``...) and the names and kinds (``array``, ``counter``)
  of its state.

``differences(theirs, ours)`` lists, in words, where two fingerprints disagree. State
that the checkpoint holds but the model does not hold *yet* is not a difference: batch
norm creates its running statistics on its first call, so a freshly built model lacks
them. Settings, though, must match: a batch-norm layer's dict has ``mode`` and a
layer-norm layer's has not, so a batch-norm checkpoint is refused by a layer-norm model
even when the model does not say what its normalization is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "STAT_ATTRS",
    "check_fingerprint",
    "differences",
    "is_counter",
    "model_fingerprint",
    "norm_layer_kinds",
]

STAT_ATTRS = ("bn_params", "ln_params", "gn_params")
_SIZE_ATTRS = ("input_dim", "num_classes", "num_layers", "activation")


def is_counter(value: Any) -> bool:
    """An int that is not a bool: a counter such as ``num_batches_tracked``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    """``value`` as JSON (int, str, None, lists of those); ``...`` when it is not one."""
    if value is None or isinstance(value, str):
        return value
    if is_counter(value):
        return int(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(x) for x in value]
        return ... if any(x is ... for x in items) else items
    return ...


def _dtype_name(dtype: Any) -> str | None:
    if dtype is None:
        return None
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _uses_groups(normalization: Any) -> bool:
    """Whether the model's normalization takes a group count (group norm's ``G``)."""
    from normgrad.models.blocks import CONV_BLOCKS  # models sit below training

    block = CONV_BLOCKS.get(normalization) if isinstance(normalization, str) else None
    return block is not None and "G" in block.options


def norm_layer_kinds(layer: dict[str, Any]) -> dict[str, Any]:
    """One normalization param dict as ``{"settings": [names], "state": {name: kind}}``."""
    settings, state = [], {}
    for key, value in layer.items():
        if isinstance(value, np.ndarray):
            state[str(key)] = "array"
        elif is_counter(value):  # as checkpoint.model_state: an int is a counter
            state[str(key)] = "counter"
        else:
            settings.append(str(key))
    return {"settings": sorted(settings), "state": dict(sorted(state.items()))}


def params_of(model: Any, why: str = "") -> dict[str, Any]:
    """``model.params``, which must be a dict (name -> ndarray), else a clear TypeError.

    ``why``: what it is needed for, added to the message (" to check a checkpoint").
    """
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError(
            f"model must have a dict attribute 'params' (name -> ndarray){why}; got "
            f"{type(params).__name__}. Keep the weights in a dict, as the course's models "
            "do: self.params = {'W1': ..., 'b1': ...}."
        )
    return params


def model_fingerprint(model: Any) -> dict[str, Any]:
    """The fingerprint of ``model`` (see the module docstring); a JSON-able dict."""
    params = params_of(model)
    normalization = _plain(getattr(model, "normalization", None))
    sizes = {}
    names = (*_SIZE_ATTRS, "num_groups") if _uses_groups(normalization) else _SIZE_ATTRS
    for attr in names:
        value = _plain(getattr(model, attr, None))
        if hasattr(model, attr) and value is not ...:
            sizes[attr] = value
    norm_params = {}
    for attr in STAT_ATTRS:
        layers = getattr(model, attr, None)
        if isinstance(layers, (list, tuple)) and all(isinstance(d, dict) for d in layers):
            norm_params[attr] = [norm_layer_kinds(d) for d in layers]
    return {
        "class": type(model).__name__,
        "normalization": None if normalization is ... else normalization,
        "dtype": _dtype_name(getattr(model, "dtype", None)),
        "sizes": sizes,
        "params": {
            str(name): {"shape": list(np.shape(w)), "dtype": np.asarray(w).dtype.name}
            for name, w in params.items()
        },
        "norm_params": norm_params,
    }


def _param_text(p: dict[str, Any]) -> str:
    return f"{tuple(p['shape'])} {p['dtype']}"


def _check_stored(fp: Any) -> None:
    """Raise ``ValueError`` unless ``fp`` has the structure ``model_fingerprint`` returns.

    A fingerprint read from a file is untrusted: it is checked before it is compared.
    """

    def bad(what: str) -> ValueError:
        return ValueError(
            f"the model fingerprint in the checkpoint header is malformed ({what}); the file "
            "is damaged or was not written by a normgrad Solver. Resume from another "
            "checkpoint."
        )

    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(x, str) for x in value)

    if not isinstance(fp, dict):
        raise bad(f"expected a dict, got {type(fp).__name__}")
    keys = ("class", "normalization", "dtype", "sizes", "params", "norm_params")
    missing = [k for k in keys if k not in fp]
    if missing:
        raise bad(f"missing {missing}")
    if not isinstance(fp["class"], str):
        raise bad("class is not a string")
    for key in ("normalization", "dtype"):
        if fp[key] is not None and not isinstance(fp[key], str):
            raise bad(f"{key} is {fp[key]!r}, not a string or null")
    if not isinstance(fp["sizes"], dict):
        raise bad("sizes is not a dict")
    params = fp["params"]
    if not isinstance(params, dict):
        raise bad("params is not a dict")
    for name, p in params.items():
        shape = p.get("shape") if isinstance(p, dict) else None
        if (
            not isinstance(shape, list)
            or not all(is_counter(n) and n >= 0 for n in shape)
            or not isinstance(p.get("dtype"), str)
        ):
            raise bad(f"params[{name!r}] is {p!r}, not {{'shape': [ints], 'dtype': str}}")
    norms = fp["norm_params"]
    if not isinstance(norms, dict):
        raise bad("norm_params is not a dict")
    for attr, layers in norms.items():
        if not isinstance(layers, list):
            raise bad(f"norm_params[{attr!r}] is not a list")
        for layer in layers:
            state = layer.get("state") if isinstance(layer, dict) else None
            if (
                not isinstance(state, dict)
                or not strings(layer.get("settings"))
                or not all(k in ("array", "counter") for k in state.values())
            ):
                raise bad(f"a layer of norm_params[{attr!r}] is {layer!r}")


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Where the checkpoint's fingerprint ``theirs`` and the model's ``ours`` disagree.

    Each item reads like ``checkpoint is FullyConnectedNet normalization='batchnorm',
    this model normalization='layernorm'``. Empty when the checkpoint fits.
    """
    _check_stored(theirs)
    out = []
    cls = theirs["class"]
    if cls != ours["class"]:
        out.append(f"checkpoint is a {cls}, this model a {ours['class']}")
    for key in ("normalization", "dtype"):
        if theirs[key] != ours[key]:
            out.append(f"checkpoint is {cls} {key}={theirs[key]!r}, this model {key}={ours[key]!r}")
    their_sizes, our_sizes = theirs["sizes"], ours["sizes"]
    for key in sorted(set(their_sizes) | set(our_sizes)):
        a, b = their_sizes.get(key, "absent"), our_sizes.get(key, "absent")
        if a != b:
            out.append(f"checkpoint is {cls} {key}={a!r}, this model {key}={b!r}")
    their_params, our_params = theirs["params"], ours["params"]
    missing = [p for p in our_params if p not in their_params]
    extra = [p for p in their_params if p not in our_params]
    if missing:
        out.append(f"parameters this model has and the checkpoint lacks: {missing}")
    if extra:
        out.append(f"parameters the checkpoint has and this model lacks: {extra}")
    for name, p in our_params.items():
        q = their_params.get(name)
        if q is not None and (q["shape"] != p["shape"] or q["dtype"] != p["dtype"]):
            out.append(f"{name}: checkpoint {_param_text(q)}, this model {_param_text(p)}")
    their_norms, our_norms = theirs["norm_params"], ours["norm_params"]
    for attr in STAT_ATTRS:
        a_layers, b_layers = their_norms.get(attr, []), our_norms.get(attr, [])
        if len(a_layers) != len(b_layers):
            out.append(
                f"{attr}: checkpoint has {len(a_layers)} normalization layers, this model "
                f"{len(b_layers)}"
            )
            continue
        for i, (a, b) in enumerate(zip(a_layers, b_layers, strict=True)):
            if a["settings"] != b["settings"]:
                out.append(
                    f"{attr}[{i}] settings: checkpoint {a['settings']}, this model "
                    f"{b['settings']} (another normalization)"
                )
            a_state = a["state"]
            for key, kind in b["state"].items():
                if a_state.get(key) != kind:
                    out.append(
                        f"{attr}[{i}][{key!r}]: this model holds a {kind}, the checkpoint "
                        f"{a_state.get(key, 'nothing')}"
                    )
    return out


def check_fingerprint(theirs: Any, model: Any, source: str) -> None:
    """Raise ``ValueError`` unless the stored fingerprint ``theirs`` fits ``model``.

    Nothing is written. The message names every difference.
    """
    ours = model_fingerprint(model)
    found = differences(theirs, ours)
    if found:
        raise ValueError(
            f"{source} was written for another model: {'; '.join(found)}. Build the model "
            "exactly as for the run that wrote it (same class, layer sizes, normalization "
            "and dtype), or train afresh without resuming. Nothing was changed."
        )
