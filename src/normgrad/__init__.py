"""normgrad: normalization layers with hand-derived backward passes, proved three ways.

The layout, from the maths outwards:

- ``norms``: every normalization, once (forward, every backward route, and its
  specification); ``norms.registry.SPECS`` is the one list of them;
- ``ops``: the course's other layers (affine, ReLU, dropout, conv, pool, losses);
- ``kernels``: fused numba routes (the ``fast`` extra);
- ``models``: the sandwiches and the course's two networks;
- ``training``: update rules, the Solver, checkpoints;
- ``gradcheck``, ``data``: gradient checking, and the data sets;
- ``symbolic``: exact SymPy proofs (the ``symbolic`` extra);
- ``tools`` and ``cli``: what the ``normgrad`` commands run, and their parsers.

The course-compatible modules keep cs231n's paths as thin surfaces over those:
``normgrad.layers``, ``layer_utils``, ``fast_layers``, ``gradient_check``,
``classifiers``, ``optim``, ``solver``, ``data_utils`` and ``vis_utils``.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
