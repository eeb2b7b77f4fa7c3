"""The one list of normalizations. Everything that enumerates them reads it from here.

Adding a normalization is one module in ``normgrad.norms`` with a ``SPEC`` at its end,
and one line in ``SPECS`` below; ``CONTRIBUTING.md`` walks through it. The consumers:

- the model blocks (``models.blocks``), hence ``FullyConnectedNet`` and
  ``ThreeLayerConvNet``'s allowed ``normalization`` names and ``normgrad train --norm``;
- ``normgrad check`` (``NormSpec.check_cases``);
- ``normgrad derive`` and ``derive --all`` (``NormSpec.symbolic``), with the code tie;
- the PyTorch parity tests (``NormSpec.torch``);
- ``normgrad bench`` (the batch-norm routes).

``tests/norms/test_registry.py`` fails if any consumer misses a registered layer.
"""

from __future__ import annotations

from normgrad.norms import batch, group, instance, layer, renorm, rms, spatial, sync
from normgrad.norms.spec import Block, BlockKind, NormSpec

SPECS: tuple[NormSpec, ...] = (
    batch.SPEC,
    layer.SPEC,
    layer.ND_SPEC,
    spatial.SPEC,
    group.SPEC,
    instance.SPEC,
    rms.SPEC,
    renorm.SPEC,
    sync.SPEC,
)


def by_name(name: str) -> NormSpec:
    """The spec called ``name`` (``NormSpec.name``).

    Raises:
        ValueError: no registered normalization has that name.
    """
    for s in SPECS:
        if s.name == name:
            return s
    raise ValueError(
        f"unknown normalization {name!r}; registered: {', '.join(s.name for s in SPECS)}."
    )


def blocks(kind: BlockKind) -> dict[str, Block]:
    """Model name -> ``Block`` for one kind of sandwich ("fc" or "conv"), registry order."""
    out: dict[str, Block] = {}
    for s in SPECS:
        for b in s.blocks:
            if b.kind == kind:
                if b.name in out:
                    raise RuntimeError(f"two {kind} blocks are named {b.name!r}.")
                out[b.name] = b
    return out


def symbolic_specs() -> dict[str, NormSpec]:
    """``normgrad derive``'s layer name -> spec, for every spec with a symbolic proof."""
    return {s.symbolic.name: s for s in SPECS if s.symbolic is not None}
