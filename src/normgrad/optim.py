"""cs231n-compatible update rules (``cs231n.optim``), a thin surface over ``training.rules``.

``rule(w, dw, config=None) -> (next_w, config)`` for ``sgd``, ``sgd_momentum``,
``rmsprop`` and ``adam``, with the course's defaults (see ``normgrad.training.rules``).
"""

from normgrad.training.rules import UPDATE_RULES, adam, rmsprop, sgd, sgd_momentum

__all__ = ["UPDATE_RULES", "adam", "rmsprop", "sgd", "sgd_momentum"]
