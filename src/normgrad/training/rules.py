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

Every call checks its inputs before computing anything (``check_settings``): w and dw
real numeric arrays of one shape; a config that holds only the rule's keys (the table
below: a typo such as ``learning_rat`` is refused, naming the closest key);
``learning_rate`` and ``epsilon`` finite reals > 0; ``momentum``, ``decay_rate``,
``beta1``, ``beta2`` finite reals in [0, 1); ``t`` an int >= 0; state arrays of w's
shape. Non-finite values in w and dw are accepted: a diverged run keeps stepping, as
the course's does.

| rule           | config keys (defaults)                                                    |
|----------------|---------------------------------------------------------------------------|
| ``sgd``        | learning_rate 1e-2                                                        |
| ``sgd_momentum`` | learning_rate 1e-2, momentum 0.9, velocity zeros                        |
| ``rmsprop``    | learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8, cache zeros            |
| ``adam``       | learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8, m, v zeros, t 0 |

Fused kernels: with numba installed (and ``normgrad.kernels.use_fused`` on), each rule
runs as one compiled pass (``normgrad.kernels.rules``) instead of a dozen NumPy
operations, with bit-identical results: the same operations in the same order and dtype.
It does so where that identity holds: w, dw and the state arrays C-contiguous of one
dtype (float32 or float64), every hyperparameter a Python float (``t`` a Python int); any
other call runs the NumPy code below.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.kernels import choose

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES", "SETTINGS", "STATE_KEYS"]

Config = dict[str, Any]

# Each rule's hyperparameters with the course's defaults, and its per-parameter state
# arrays (each shaped like w). A config may hold exactly these keys, nothing else.
SETTINGS: dict[str, Config] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0},
}
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": (),
    "sgd_momentum": ("velocity",),
    "rmsprop": ("cache",),
    "adam": ("m", "v"),
}

# What each hyperparameter must be: (low, high, low_open, high_open) for the reals.
_RANGES: dict[str, tuple[float, float | None, bool, bool]] = {
    "learning_rate": (0.0, None, True, False),  # > 0
    "momentum": (0.0, 1.0, False, True),  # [0, 1)
    "decay_rate": (0.0, 1.0, False, True),
    "beta1": (0.0, 1.0, False, True),
    "beta2": (0.0, 1.0, False, True),
    "epsilon": (0.0, None, True, False),  # > 0
}


def check_settings(rule: str, config: Config, where: str = "config") -> Config:
    """Check the keys and hyperparameter values of a config for the built-in ``rule``.

    Every key must be one of the rule's hyperparameters (``SETTINGS[rule]``) or state
    arrays (``STATE_KEYS[rule]``), so a typo (``learning_rat``, ``beta_1``) is caught,
    with the closest known key suggested. ``learning_rate`` and ``epsilon`` must be
    finite reals > 0; ``momentum``, ``decay_rate``, ``beta1`` and ``beta2`` finite reals
    in [0, 1); ``t`` an int >= 0. Strings, bools, NaN and infinities are refused. State
    arrays are checked by the rule itself, against w (``_state``).

    Args:
        rule: a key of ``UPDATE_RULES``.
        config: the dict to check; it is only read.
        where: how messages name the dict (``"config"``, ``"optim_config"``).

    Returns:
        The settings: ``SETTINGS[rule]`` overridden by the config's hyperparameters (a
        new dict).

    Raises:
        TypeError: a hyperparameter of the wrong type. ValueError: an unknown key, or a
            value out of its range.
    """
    defaults = SETTINGS[rule]
    v.known_keys(config, f"{rule}: {where}", (*defaults, *STATE_KEYS[rule]))
    settings = dict(defaults)
    for key in defaults:
        if key not in config:
            continue
        value = config[key]
        name = f"{where}[{key!r}]"
        try:
            if key == "t":
                v.integer(value, name, example=0, low=0)
            else:
                low, high, low_open, high_open = _RANGES[key]
                v.real(
                    value,
                    name,
                    example=defaults[key],
                    low=low,
                    high=high,
                    low_open=low_open,
                    high_open=high_open,
                )
        except (TypeError, ValueError) as e:
            raise type(e)(f"{rule}: {e}") from None
        settings[key] = value
    return settings


def _array(value: Any, name: str, rule: str) -> np.ndarray:
    """``value`` if it is a real numeric ndarray (float, int), else a ``TypeError``."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{rule} needs numpy arrays w and dw; got {type(value).__name__} for {name}. "
            f"Wrap it with np.asarray({name}, dtype=np.float64)."
        )
    if value.dtype.kind not in "fiu":
        raise TypeError(
            f"{rule}: {name} must have a real numeric dtype (float32, float64, or an "
            f"integer); got {value.dtype}. Convert it with {name}.astype(np.float64)."
        )
    return value


def _start(
    w: np.ndarray, dw: np.ndarray, config: Config | None, rule: str
) -> tuple[Config, Config]:
    """Check the inputs; return ``config`` (a new dict when None) and its settings.

    The settings are the defaults overridden by ``config``'s own hyperparameters, in a
    separate dict: nothing is written into ``config`` here. The rules write into it only
    after every check and every computation has succeeded (``_commit``), so a call that
    raises leaves ``config`` exactly as it was. Non-finite values in w and dw are
    accepted (as in the course, a diverged run keeps stepping), but the hyperparameters
    must be finite and in range (``check_settings``).
    """
    _array(w, "w", rule)
    _array(dw, "dw", rule)
    if w.shape != dw.shape:
        raise ValueError(
            f"{rule}: dw must have the shape of w {tuple(w.shape)}; got {tuple(dw.shape)}. "
            "Pass each parameter with its own gradient: the model's loss must return "
            "grads[name] with the shape of params[name]."
        )
    if config is None:
        config = {}
    if not isinstance(config, dict):
        lr = SETTINGS[rule]["learning_rate"]
        raise TypeError(
            f"{rule}: config must be a dict or None; got {type(config).__name__}. Pass a "
            f"dict like {{'learning_rate': {lr}}}, or None for the defaults."
        )
    return config, check_settings(rule, config)


def _state(config: Config, key: str, w: np.ndarray, rule: str) -> np.ndarray:
    """The state array ``config[key]`` (zeros like w when absent), checked against w's shape."""
    value = config.get(key)
    if value is None:
        return np.zeros_like(w)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        what = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(
            f"{rule}: config['{key}'] must be a numpy array of floats with the shape of w "
            f"{tuple(w.shape)}; got {what}. Leave it to the rule (delete config['{key}'] "
            "to start it from zeros)."
        )
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


def _fused(
    w: np.ndarray, arrays: tuple[np.ndarray, ...], hp: Config, reals: tuple[str, ...]
) -> Any:
    """``kernels.rules`` when it gives this call's results bit for bit, else None."""
    kernels = choose.ops("rules")
    if kernels is None or not all(type(hp[k]) is float for k in reals):
        return None
    if type(hp.get("t", 0)) is not int or not kernels.fusable(w, *arrays):
        return None
    return kernels


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla stochastic gradient descent: ``next_w = w - learning_rate * dw``.

    Args:
        w: (any shape) weights. dw: gradient of the loss, w's shape.
        config: ``learning_rate`` (default 1e-2).

    Returns:
        next_w: w's shape, and config.
    """
    config, hp = _start(w, dw, config, "sgd")
    fused = _fused(w, (dw,), hp, ("learning_rate",))
    if fused is not None:
        return fused.sgd(w, dw, hp["learning_rate"]), _commit(config, hp)
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
    config, hp = _start(w, dw, config, "sgd_momentum")
    velocity = _state(config, "velocity", w, "sgd_momentum")
    fused = _fused(w, (dw, velocity), hp, ("learning_rate", "momentum"))
    if fused is not None:
        next_w, velocity = fused.sgd_momentum(w, dw, velocity, hp["momentum"], hp["learning_rate"])
        return next_w, _commit(config, hp, velocity=velocity)
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
    config, hp = _start(w, dw, config, "rmsprop")
    cache = _state(config, "cache", w, "rmsprop")
    decay = hp["decay_rate"]
    fused = _fused(w, (dw, cache), hp, ("learning_rate", "decay_rate", "epsilon"))
    if fused is not None:
        next_w, cache = fused.rmsprop(w, dw, cache, decay, hp["learning_rate"], hp["epsilon"])
        return next_w, _commit(config, hp, cache=cache)
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
    config, hp = _start(w, dw, config, "adam")
    m = _state(config, "m", w, "adam")
    v = _state(config, "v", w, "adam")
    beta1, beta2 = hp["beta1"], hp["beta2"]
    t = hp["t"] + 1
    fused = _fused(w, (dw, m, v), hp, ("learning_rate", "beta1", "beta2", "epsilon"))
    if fused is not None:
        lr, eps = hp["learning_rate"], hp["epsilon"]
        next_w, m, v = fused.adam(w, dw, m, v, beta1, beta2, t, lr, eps)
        return next_w, _commit(config, hp, m=m, v=v, t=t)
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
