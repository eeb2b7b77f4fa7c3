"""Checks the ops share beyond ``normgrad._internal.validate``: bare-array caches, flags, seeds.

Private to ``normgrad.ops`` (and the models, which sit above them). Every check raises
before anything is computed or written; messages name the argument, say what was
expected and what came, and how to fix it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad._internal import validate as v

#: np.random.seed takes integers in [0, 2**32 - 1].
SEED_MAX = 2**32 - 1


def array_cache(cache: Any, backward: str, forward: str) -> np.ndarray:
    """``cache`` if it is the floating ndarray ``forward`` returns, else ``TypeError``.

    ReLU and sigmoid cache one bare array (x, or out), as the course does. Any other
    layer's cache (a tuple), None, a list or an integer array cannot have come from
    ``forward``, whose input is always a floating array. An array of the right kind but
    the wrong shape is caught by the dout shape check that follows.
    """
    v.cache_of(cache, np.ndarray, backward, forward)
    if not np.issubdtype(cache.dtype, np.floating):
        raise TypeError(
            f"{backward} needs the cache that {forward} returns, a floating array; got an "
            f"array of dtype {cache.dtype}. Call out, cache = {forward}(x) and pass that "
            f"cache to {backward}(dout, cache)."
        )
    return cache


def seed(value: Any, name: str) -> int:
    """``value`` as a seed for ``np.random.seed``: an int in [0, 2**32 - 1]."""
    fix = f"Pass a whole number in [0, {SEED_MAX}], e.g. {name} = 0."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__}). {fix}")
    if not 0 <= value <= SEED_MAX:
        raise ValueError(f"{name} must lie in [0, {SEED_MAX}] (np.random.seed); got {value}. {fix}")
    return int(value)


def param_dict(param: Any, name: str, example: str) -> dict[str, Any]:
    """``param`` if it is a dict, else ``TypeError`` showing ``example``, a valid one."""
    if not isinstance(param, dict):
        raise TypeError(f"{name} must be a dict; got {type(param).__name__}. Pass e.g. {example}.")
    return param
