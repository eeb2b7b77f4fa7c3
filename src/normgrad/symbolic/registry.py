"""The layers ``normgrad derive`` knows, read from the normalization registry.

A layer is provable when its ``NormSpec`` has a ``symbolic`` entry
(``normgrad.norms.spec.Symbolic``): its ``derive`` name, shape arguments, default proof
shapes and builder. Nothing here lists layers by hand.
"""

from __future__ import annotations

from normgrad.norms import registry
from normgrad.norms.spec import NormSpec, Symbolic
from normgrad.symbolic.model import Problem


def specs() -> dict[str, NormSpec]:
    """``derive`` name -> spec, in registry order."""
    return registry.symbolic_specs()


def layers() -> tuple[str, ...]:
    """Every ``derive`` layer name, in registry order."""
    return tuple(specs())


def _symbolic(layer: str) -> Symbolic:
    known = specs()
    if layer not in known:
        raise ValueError(
            f"unknown layer {layer!r}; choose one of {', '.join(known)}, or 'seed' for "
            f"the seed notebook's formulas."
        )
    sym = known[layer].symbolic
    assert sym is not None  # symbolic_specs keeps only specs with one
    return sym


def spec_of(layer: str) -> NormSpec:
    """The spec behind ``derive`` layer name ``layer``."""
    _symbolic(layer)
    return specs()[layer]


def default_shapes(layer: str) -> list[dict[str, int]]:
    """The shapes ``derive --all`` proves for ``layer``."""
    return [dict(kw) for kw in _symbolic(layer).shapes]


def parse_shape(layer: str, text: str, groups: int | None = None) -> dict[str, int]:
    """'3x2' -> {'N': 3, 'D': 2} for ``layer`` (plus G for group norm).

    Raises:
        ValueError: wrong number of dimensions, or not positive integers.
    """
    sym = _symbolic(layer)
    names = sym.dims
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
    if "G" in sym.options:
        kw["G"] = groups if groups is not None else 1
    elif groups is not None:
        raise ValueError(f"--groups applies to group norm only, not {layer}.")
    return kw


def build(layer: str, **shape: int) -> Problem:
    """Build the symbolic problem of ``layer`` at ``shape`` (the builder's defaults when empty)."""
    problem: Problem = _symbolic(layer).builder()(**shape)
    return problem
