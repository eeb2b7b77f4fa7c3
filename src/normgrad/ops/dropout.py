"""Inverted dropout (Srivastava et al. 2014, JMLR 15), with the course's conventions.

``p`` is the probability of KEEPING a unit (cs231n; PyTorch's p is the drop probability,
so torch's p is 1 - p here). Formula, elementwise on x of any shape::

    train:  mask = [u < p] / p,  u ~ Uniform[0, 1) drawn as np.random.rand(*x.shape)
            out  = x * mask                      # E[out] = x: no rescaling at test time
    test:   out  = x                             # the identity

    dx = dout * mask (train),  dx = dout (test)

A ``seed`` in ``dropout_param`` reseeds NumPy's global generator with
``np.random.seed(seed)`` on every call, before the mode is looked at, exactly as the
course does: two calls with one seed draw one mask, which is what gradient checks need.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.ops import _checks


class DropoutCache(NamedTuple):
    """What ``dropout_backward`` needs (the course caches (dropout_param, mask))."""

    dropout_param: dict[str, Any]  # the param dict, kept for the course's cache layout
    mask: np.ndarray | None  # x's shape, [u < p] / p in train mode; None in test mode,
    # which is how backward tells the modes apart: dropout_param['mode'] may have been
    # changed since the forward pass (a model flips it on every loss call)
    shape: tuple[int, ...]  # x's shape: dout must match it, in test mode too (no mask)


#: The keys dropout_forward reads; any other key in dropout_param is refused.
DROPOUT_KEYS = ("mode", "p", "seed")


def _read_param(dropout_param: Any) -> tuple[float, str, int | None]:
    """Validate dropout_param; return (p, mode, seed or None). Nothing is written."""
    _checks.param_dict(dropout_param, "dropout_param", "{'mode': 'train', 'p': 0.5}")
    v.known_keys(dropout_param, "dropout_param", DROPOUT_KEYS)
    if "p" not in dropout_param:
        raise ValueError(
            "dropout_param must contain 'p', the probability of keeping each unit, "
            f"in (0, 1]; got keys {sorted(dropout_param)}. Add it, e.g. "
            "dropout_param['p'] = 0.5."
        )
    p = dropout_param["p"]
    if not v.is_real(p):
        raise TypeError(
            f"dropout_param['p'] must be a real number in (0, 1]; got {p!r} "
            f"({type(p).__name__}). Pass a number, e.g. dropout_param['p'] = 0.5."
        )
    if not 0.0 < float(p) <= 1.0:  # NaN fails this too
        raise ValueError(
            f"dropout_param['p'] is the probability of KEEPING a unit and must lie in (0, 1]; "
            f"got {p!r}. p = 1 keeps everything; PyTorch's drop probability q is p = 1 - q."
        )
    if "mode" not in dropout_param:
        raise ValueError(
            f"dropout_param must contain 'mode', 'train' or 'test'; got keys "
            f"{sorted(dropout_param)}. Add it, e.g. dropout_param['mode'] = 'train'."
        )
    mode = v.choice(dropout_param["mode"], "dropout_param['mode']", ("train", "test"))
    seed = None
    if "seed" in dropout_param:
        seed = _checks.seed(dropout_param["seed"], "dropout_param['seed']")
    return float(p), mode, seed


def dropout_forward(
    x: np.ndarray, dropout_param: dict[str, Any]
) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout forward (cs231n signature and semantics).

    Args:
        x: input of any shape (empty arrays included), floating.
        dropout_param: dict with exactly these keys:
            - ``p``: keep probability, a real number in (0, 1] (required);
            - ``mode``: ``"train"`` or ``"test"`` (required);
            - ``seed``: optional int in [0, 2**32 - 1]; when present,
              ``np.random.seed(seed)`` runs on every call.

    Returns:
        out: x's shape and dtype (in test mode, x itself, as in the course), and the cache.

    Raises:
        TypeError: x is not a floating ndarray, dropout_param is not a dict, p is not a
            real number (a string, a bool...), or seed is not an int.
        ValueError: p outside (0, 1], a mode other than train/test, a missing p or
            mode, a seed outside [0, 2**32 - 1], or an unknown key (a typo such as
            'seeds'). Nothing is drawn or reseeded when the call is refused.
    """
    v.float_array(x, "x")
    p, mode, seed = _read_param(dropout_param)
    # The course's semantics use NumPy's legacy global generator, on purpose.
    if seed is not None:
        np.random.seed(seed)  # noqa: NPY002

    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p  # noqa: NPY002  (any) float64: 0 or 1/p
        out = (x * mask).astype(x.dtype, copy=False)  # (any)
    else:
        mask = None
        out = x
    return out, DropoutCache(dropout_param, mask, tuple(x.shape))


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Inverted dropout backward: dx = dout * mask in train mode, dout in test mode.

    The mode is the forward pass's, read from the cache (a mask, or None in test mode),
    not from ``dropout_param['mode']``, which may have changed since.

    Args:
        dout: upstream gradient, x's shape.
        cache: from ``dropout_forward``.

    Returns:
        dx: x's shape (in test mode, dout itself).

    Raises:
        TypeError: cache is not a ``dropout_forward`` cache, or dout is not a floating
            ndarray.
        ValueError: dout is not x's shape.
    """
    v.cache_of(cache, DropoutCache, "dropout_backward", "dropout_forward")
    _, mask, shape = cache
    v.float_array(dout, "dout")
    v.shape(dout, "dout", shape, "the shape of the forward input x")
    if mask is None:  # test mode: the identity
        return dout
    return (dout * mask).astype(dout.dtype, copy=False)
