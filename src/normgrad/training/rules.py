"""First-order update rules with the cs231n API: ``rule(w, dw, config=None) -> (next_w, config)``.

Each rule takes the current weights ``w`` and their gradient ``dw`` (the same shape,
any shape), and a ``config`` dict holding its hyperparameters and any state it carries
between steps. Missing keys get the course's defaults, written into ``config`` on the
first call (last, after every check: a call that raises leaves ``config`` as it was);
state arrays (``velocity``, ``cache``, ``m``, ``v``) start as zeros of w's
shape. The rule returns the next weights and the same dict, with its state advanced,
so a caller stores one config per parameter and hands it back on the next step.

``w`` and ``dw`` are never modified in place, and state arrays are replaced rather
than written into, so a config shared with a snapshot (a checkpoint, ``best_params``)
is never changed behind its back.

| rule           | config keys (defaults)                                                    |
|----------------|---------------------------------------------------------------------------|
| ``sgd``        | learning_rate 1e-2                                                        |
| ``sgd_momentum`` | learning_rate 1e-2, momentum 0.9, velocity zeros                        |
| ``rmsprop``    | learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8, cache zeros            |
| ``adam``       | learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8, m, v zeros, t 0 |
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES"]

Config = dict[str, Any]


def _start(
    w: np.ndarray, dw: np.ndarray, config: Config | None, rule: str, defaults: Config
) -> tuple[Config, Config]:
    """Check the inputs; return ``config`` (a new dict when None) and its settings.

    The settings are ``defaults`` overridden by ``config``'s own entries, in a separate
    dict: nothing is written into ``config`` here. The rules write into it only after
    every check and every computation has succeeded (``_commit``), so a call that raises
    leaves ``config`` exactly as it was.
    """
    if not isinstance(w, np.ndarray) or not isinstance(dw, np.ndarray):
        raise TypeError(
            f"{rule} needs numpy arrays w and dw; got {type(w).__name__} and "
            f"{type(dw).__name__}. Wrap them with np.asarray."
        )
    if w.shape != dw.shape:
        raise ValueError(
            f"{rule}: dw must have the shape of w {tuple(w.shape)}; got {tuple(dw.shape)}. "
            "Pass each parameter with its own gradient: the model's loss must return "
            "grads[name] with the shape of params[name]."
        )
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(
            f"{rule}: config must be a dict or None; got {type(config).__name__}. Pass a "
            f"dict like {{'learning_rate': {defaults['learning_rate']}}}, or None for the "
            "defaults."
        )
    return config, {**defaults, **config}


def _state(config: Config, key: str, w: np.ndarray, rule: str) -> np.ndarray:
    """The state array ``config[key]`` (zeros like w when absent), checked against w's shape."""
    value = config.get(key)
    if value is None:
        return np.zeros_like(w)
    value = np.asarray(value)
    if value.shape != w.shape:
        raise ValueError(
            f"{rule}: config['{key}'] must have the shape of w {tuple(w.shape)}; got "
            f"{tuple(value.shape)}. Give each parameter its own config dict (the Solver "
            f"does), or delete config['{key}'] to start it from zeros."
        )
    return value


def _commit(config: Config, settings: Config, **state: Any) -> Config:
    """Write the defaults ``config`` lacked, then the new state; the last step of a rule."""
    for key, value in settings.items():
        config.setdefault(key, value)
    config.update(state)
    return config


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla stochastic gradient descent: ``next_w = w - learning_rate * dw``.

    Args:
        w: (any shape) weights. dw: gradient of the loss, w's shape.
        config: ``learning_rate`` (default 1e-2).

    Returns:
        next_w: w's shape, and config.
    """
    config, hp = _start(w, dw, config, "sgd", {"learning_rate": 1e-2})
    next_w = w - hp["learning_rate"] * dw
    return next_w, _commit(config, hp)


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """SGD with (heavy-ball) momentum, the course's form::

        velocity = momentum * velocity - learning_rate * dw     # w's shape
        next_w   = w + velocity

    Args:
        w: (any shape) weights. dw: gradient, w's shape.
        config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).

    Returns:
        next_w: w's shape, and config with the new ``velocity``.
    """
    config, hp = _start(w, dw, config, "sgd_momentum", {"learning_rate": 1e-2, "momentum": 0.9})
    velocity = _state(config, "velocity", w, "sgd_momentum")
    velocity = hp["momentum"] * velocity - hp["learning_rate"] * dw
    next_w = w + velocity
    return next_w, _commit(config, hp, velocity=velocity)


def rmsprop(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """RMSProp (Tieleman & Hinton 2012, Coursera lecture 6.5): a running mean of dw^2::

        cache  = decay_rate * cache + (1 - decay_rate) * dw**2       # w's shape
        next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Args:
        w: (any shape) weights. dw: gradient, w's shape.
        config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8),
            ``cache`` (zeros like w).

    Returns:
        next_w: w's shape, and config with the new ``cache``.
    """
    defaults = {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8}
    config, hp = _start(w, dw, config, "rmsprop", defaults)
    cache = _state(config, "cache", w, "rmsprop")
    decay = hp["decay_rate"]
    cache = decay * cache + (1 - decay) * (dw * dw)
    next_w = w - hp["learning_rate"] * dw / (np.sqrt(cache) + hp["epsilon"])
    return next_w, _commit(config, hp, cache=cache)


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam (Kingma & Ba 2015, arXiv:1412.6980, Algorithm 1), bias-corrected.

    The step count ``t`` is incremented *before* it is used, as in the paper and the
    course, so the first step divides by ``1 - beta1**1``::

        t      = t + 1
        m      = beta1 * m + (1 - beta1) * dw                 # w's shape
        v      = beta2 * v + (1 - beta2) * dw**2              # w's shape
        mhat   = m / (1 - beta1**t)
        vhat   = v / (1 - beta2**t)
        next_w = w - learning_rate * mhat / (sqrt(vhat) + epsilon)

    Args:
        w: (any shape) weights. dw: gradient, w's shape.
        config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999),
            ``epsilon`` (1e-8), ``m`` and ``v`` (zeros like w), ``t`` (0).

    Returns:
        next_w: w's shape, and config with the new ``m``, ``v`` and ``t``.
    """
    defaults = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0}
    config, hp = _start(w, dw, config, "adam", defaults)
    m = _state(config, "m", w, "adam")
    v = _state(config, "v", w, "adam")
    beta1, beta2 = hp["beta1"], hp["beta2"]
    t = hp["t"] + 1
    # The same operations in the same order as the formulas above (so the results are
    # bit-identical to them), with the temporaries reused in place: m and v are new
    # arrays, the caller's are never written.
    m = beta1 * m  # w's shape
    m += (1 - beta1) * dw
    v = beta2 * v  # w's shape
    tmp = dw * dw  # w's shape
    tmp *= 1 - beta2
    v += tmp
    step = m / (1 - beta1**t)  # mhat
    np.divide(v, 1 - beta2**t, out=tmp)  # vhat
    np.sqrt(tmp, out=tmp)
    tmp += hp["epsilon"]  # sqrt(vhat) + epsilon
    step *= hp["learning_rate"]
    step /= tmp
    next_w = w - step
    return next_w, _commit(config, hp, m=m, v=v, t=t)


UPDATE_RULES = {"sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam}
