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


class DropoutCache(NamedTuple):
    """What ``dropout_backward`` needs (the course caches (dropout_param, mask))."""

    dropout_param: dict[str, Any]  # the param dict, kept for the course's cache layout
    mask: np.ndarray | None  # x's shape, [u < p] / p in train mode; None in test mode,
    # which is how backward tells the modes apart: dropout_param['mode'] may have been
    # changed since the forward pass (a model flips it on every loss call)


def _keep_probability(dropout_param: dict[str, Any]) -> float:
    if "p" not in dropout_param:
        raise ValueError(
            "dropout_param must contain 'p', the probability of keeping each unit, "
            f"in (0, 1]; got keys {sorted(dropout_param)}."
        )
    p = dropout_param["p"]
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise TypeError(f"dropout_param['p'] must be a real number in (0, 1]; got {p!r}.") from None
    if not 0.0 < p <= 1.0:
        raise ValueError(
            f"dropout_param['p'] is the probability of KEEPING a unit and must lie in (0, 1]; "
            f"got {p!r}. p = 1 keeps everything; PyTorch's drop probability q is p = 1 - q."
        )
    return p


def dropout_forward(
    x: np.ndarray, dropout_param: dict[str, Any]
) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout forward (cs231n signature and semantics).

    Args:
        x: input of any shape.
        dropout_param: dict with
            - ``p``: keep probability in (0, 1] (required);
            - ``mode``: ``"train"`` or ``"test"`` (required);
            - ``seed``: optional; when present, ``np.random.seed(seed)`` runs on every call.

    Returns:
        out: x's shape and dtype (in test mode, x itself, as in the course), and the cache.

    Raises:
        TypeError: x is not a floating ndarray, or dropout_param is not a dict.
        ValueError: p outside (0, 1], or a mode other than train/test.
    """
    v.float_array(x, "x")
    if not isinstance(dropout_param, dict):
        raise TypeError(f"dropout_param must be a dict; got {type(dropout_param).__name__}.")
    p = _keep_probability(dropout_param)
    mode = v.choice(dropout_param.get("mode"), "dropout_param['mode']", ("train", "test"))
    # The course's semantics use NumPy's legacy global generator, on purpose.
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])  # noqa: NPY002

    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p  # noqa: NPY002  (any) float64: 0 or 1/p
        out = (x * mask).astype(x.dtype, copy=False)  # (any)
    else:
        mask = None
        out = x
    return out, DropoutCache(dropout_param, mask)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Inverted dropout backward: dx = dout * mask in train mode, dout in test mode.

    The mode is the forward pass's, read from the cache (a mask, or None in test mode),
    not from ``dropout_param['mode']``, which may have changed since.

    Args:
        dout: upstream gradient, x's shape.
        cache: from ``dropout_forward``.

    Returns:
        dx: x's shape.
    """
    _, mask = cache
    v.float_array(dout, "dout")
    if mask is None:  # test mode: the identity
        return dout
    v.shape(dout, "dout", mask.shape, "the shape of the forward input x")
    return (dout * mask).astype(dout.dtype, copy=False)
