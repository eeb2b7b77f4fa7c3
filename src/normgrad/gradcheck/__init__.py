"""Gradient checking: the course's numerical gradients and ``check_layer`` for whole layers.

``numerical`` holds the cs231n functions (``eval_numerical_gradient``,
``eval_numerical_gradient_array``, ``grad_check_sparse``, ``rel_error``) and the
stencils; ``blobs`` the course's blob versions (``eval_numerical_gradient_blobs``,
``eval_numerical_gradient_net``); ``layer`` holds ``check_layer``; ``inputs`` the
argument checks they share. The course's path is ``normgrad.gradient_check``.
"""
