"""Gradient-check cases for ``normgrad check``, one module per area.

Each area module defines ``CASES: list[CheckCase]``; ``normgrad.checks`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Inputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class CheckCase:
    """One backward route of one layer, and how to exercise it.

    ``forward(*inputs.values()) -> (out, cache)`` and ``backward(dout, cache)`` returns
    one gradient per input, in order. ``make_inputs`` draws float64 inputs.
    """

    layer: str
    route: str
    forward: Callable[..., tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any], Any]
    make_inputs: Callable[[np.random.Generator], Inputs]
