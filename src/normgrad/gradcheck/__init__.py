"""Gradient checking: the course's numerical gradients and ``check_layer`` for whole layers.

``numerical`` holds the cs231n functions (``eval_numerical_gradient``,
``eval_numerical_gradient_array``, ``grad_check_sparse``, ``rel_error``) and the
stencils; ``layer`` holds ``check_layer``. The course's path is ``normgrad.gradient_check``.
"""
