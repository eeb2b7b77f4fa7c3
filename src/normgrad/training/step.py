"""One Solver step as a transaction: a savepoint to roll back to, and checked return values.

``savepoint(solver)`` records everything a step may change and returns the function
that puts it all back, exactly:

- NumPy's global RNG state (the minibatch draw, dropout masks, a dropout seed);
- ``model.params`` (the dict's entries; for a custom update rule also copies of the
  arrays, since a rule may write ``w`` in place, as the course's own ``sgd`` does with
  ``w -= ...``);
- every normalization param dict and ``dropout_param`` (``checkpoint.state_dicts``):
  modes, running statistics, counters; their arrays are small and always copied;
- every optim config (entries; for a custom rule also copies of the arrays) and the
  ``optim_configs`` mapping itself;
- the length of ``loss_history``.

Why shallow copies suffice for the library's own code: the normalization layers
*replace* the running-stat arrays in their param dicts and never write into them
(``norms.running.RunningStats.update`` returns new arrays and ``write`` assigns them),
and the built-in rules return new arrays, replace their state arrays and write their
config last (``rules._commit``). Dicts are restored in place (``clear`` and
``update``), so references that callers hold stay valid.

``loss_and_grads`` and ``checked_update`` check what ``model.loss(X, y)`` and the update
rule return, so a wrong return value raises a clear error inside the transaction (and
is rolled back) instead of failing somewhere later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from normgrad._internal import validate as v
from normgrad.training.checkpoint import state_dicts

__all__ = ["checked_update", "loss_and_grads", "savepoint"]


def _put_back(arr: np.ndarray, copy: np.ndarray) -> None:
    """Write ``copy``'s values back into ``arr`` (undoing an in-place write, if any)."""
    try:
        np.copyto(arr, copy)
    except (TypeError, ValueError):  # read-only or resized: it was not written in place
        pass


class _Saved:
    """A dict's entries (and, with ``deep``, copies of its arrays), to put back later."""

    def __init__(self, d: dict, deep: bool) -> None:
        self.d, self.items = d, dict(d)
        self.copies = (
            {k: a.copy() for k, a in d.items() if isinstance(a, np.ndarray)} if deep else {}
        )

    def restore(self) -> None:
        self.d.clear()
        self.d.update(self.items)
        for key, copy in self.copies.items():
            _put_back(self.items[key], copy)


def savepoint(solver: Any) -> Callable[[], None]:
    """Record everything a step of ``solver`` may change; return the function that puts
    it back (see the module docstring)."""
    model = solver.model
    params = model.params
    deep = not solver._builtin_rule  # a custom rule may write arrays in place
    rng = np.random.get_state()  # noqa: NPY002  (the course's generator)
    saved = [_Saved(params, deep)]
    saved += [_Saved(d, True) for d in state_dicts(model)]  # small arrays: always copied
    saved += [_Saved(c, deep) for c in solver.optim_configs.values()]
    saved.append(_Saved(solver.optim_configs, False))
    history = solver.loss_history
    num_losses = len(history)

    def rollback() -> None:
        if model.params is not params:
            model.params = params
        for s in saved:
            s.restore()
        del history[num_losses:]
        np.random.set_state(rng)  # noqa: NPY002

    return rollback


def loss_and_grads(out: Any, params: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
    """``model.loss(X, y)``'s return value, checked: (a real loss, a gradient per param).

    The loss may be NaN or inf (the Solver decides what to do with it); each
    ``grads[name]`` must be an ndarray of ``params[name]``'s shape.

    Raises:
        TypeError: not a pair, a loss that is not a real number, grads not a dict.
        ValueError: a gradient missing or of another shape than its parameter.
    """
    fix = (
        "model.loss(X, y) must return (loss, grads): loss a real number, grads a dict "
        "with each parameter's gradient, of its shape"
    )
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{fix}; it returned {type(out).__name__}. Return loss, grads.")
    loss, grads = out
    scalar = v.is_real(loss) or (
        isinstance(loss, np.ndarray) and loss.ndim == 0 and loss.dtype.kind in "fiu"
    )
    if not scalar:
        raise TypeError(f"{fix}; its loss is {loss!r} ({type(loss).__name__}).")
    if not isinstance(grads, dict):
        raise TypeError(f"{fix}; its grads are a {type(grads).__name__}.")
    for name, w in params.items():
        dw = grads.get(name)
        if not isinstance(dw, np.ndarray) or dw.shape != np.shape(w):
            got = "missing" if dw is None else f"{type(dw).__name__} {np.shape(dw)}"
            raise ValueError(
                f"{fix}; grads[{name!r}] is {got}, params[{name!r}] is {np.shape(w)}. "
                "Return a gradient for every parameter, shaped like it."
            )
    return loss, grads


def checked_update(rule: str, p: str, w: np.ndarray, result: Any) -> tuple[np.ndarray, dict]:
    """The update rule ``rule``'s ``(next_w, config)`` for parameter ``p``, checked.

    Raises:
        TypeError: not a pair, next_w not an ndarray, config not a dict.
        ValueError: next_w of another shape than w.
    """
    fix = (
        f"update_rule {rule!r} must return (next_w, config): next_w a numpy array of "
        f"w's shape {np.shape(w)}, config the dict to pass back next step"
    )
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        what = type(result).__name__
        raise TypeError(f"{fix}; for {p!r} it returned {what}. End it with return next_w, config.")
    next_w, config = result
    if not isinstance(next_w, np.ndarray):
        raise TypeError(f"{fix}; for {p!r} next_w is a {type(next_w).__name__}.")
    if next_w.shape != np.shape(w):
        raise ValueError(f"{fix}; for {p!r} next_w has shape {next_w.shape}.")
    if not isinstance(config, dict):
        raise TypeError(f"{fix}; for {p!r} config is a {type(config).__name__}.")
    return next_w, config
