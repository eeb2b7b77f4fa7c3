"""The layers ``normgrad derive`` knows, their default proof shapes, and shape parsing."""

from __future__ import annotations

from collections.abc import Callable

from normgrad.symbolic import batch, layers
from normgrad.symbolic.model import Problem

#: layer name -> (builder, the names of its shape arguments, in order)
_BUILDERS: dict[str, tuple[Callable[..., Problem], tuple[str, ...]]] = {
    "batch": (batch.build, ("N", "D")),
    "layer": (layers.build_layer, ("N", "D")),
    "group": (layers.build_group, ("N", "C", "H", "W")),
    "instance": (layers.build_instance, ("N", "C", "H", "W")),
    "rms": (layers.build_rms, ("N", "D")),
}
LAYERS: tuple[str, ...] = tuple(_BUILDERS)


def _check_layer(layer: str) -> None:
    if layer not in _BUILDERS:
        raise ValueError(
            f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}, or 'seed' for "
            f"the seed notebook's formulas."
        )


def default_shapes(layer: str) -> list[dict[str, int]]:
    """The shapes ``derive --all`` proves for ``layer``."""
    _check_layer(layer)
    if layer == "batch":
        return [{"N": n, "D": d} for n, d in batch.SHAPES]
    return [dict(kw) for kw in layers.SHAPES[layer]]


def parse_shape(layer: str, text: str, groups: int | None = None) -> dict[str, int]:
    """'3x2' -> {'N': 3, 'D': 2} for ``layer`` (plus G for group norm).

    Raises:
        ValueError: wrong number of dimensions, or not positive integers.
    """
    _check_layer(layer)
    names = _BUILDERS[layer][1]
    try:
        dims = [int(t) for t in text.lower().split("x")]
    except ValueError:
        dims = []
    if len(dims) != len(names) or min(dims, default=0) < 1:
        raise ValueError(
            f"--shape for {layer} must be {len(names)} positive integers "
            f"{'x'.join(names)}, such as {'x'.join(['2'] * len(names))}; got {text!r}."
        )
    kw = dict(zip(names, dims, strict=True))
    if layer == "group":
        kw["G"] = groups if groups is not None else 1
    elif groups is not None:
        raise ValueError(f"--groups applies to group norm only, not {layer}.")
    return kw


def build(layer: str, **shape: int) -> Problem:
    """Build the symbolic problem of ``layer`` at ``shape`` (the builder's defaults when empty)."""
    _check_layer(layer)
    fn, _ = _BUILDERS[layer]
    return fn(**shape)
