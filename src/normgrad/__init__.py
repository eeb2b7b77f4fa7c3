"""normgrad: normalization layers with hand-derived backward passes, proved three ways.

The course-compatible modules keep cs231n's paths: ``normgrad.layers``,
``normgrad.gradient_check`` and (as they land) ``normgrad.classifiers``,
``normgrad.solver``, ``normgrad.optim`` and ``normgrad.data_utils``. The maths of each
normalization lives once, in ``normgrad.norms``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
