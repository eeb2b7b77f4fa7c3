"""cs231n-compatible ``Solver`` (``cs231n.solver``), a thin surface over ``training.solver``.

``Solver(model, data, **kwargs)`` keeps the course's keyword arguments, attributes,
prints and ``check_accuracy``; ``normgrad.training.solver`` documents what it adds
(checkpoints, resume, running statistics in the best-model snapshot).
"""

from normgrad.training.solver import Solver, check_data

__all__ = ["Solver", "check_data"]
