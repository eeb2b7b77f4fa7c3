"""cs231n-compatible gradient checking (``cs231n.gradient_check``), over ``normgrad.gradcheck``.

The course's ``eval_numerical_gradient``, ``eval_numerical_gradient_array``,
``eval_numerical_gradient_blobs``, ``eval_numerical_gradient_net``, ``grad_check_sparse``
and ``rel_error``, with its signatures and arithmetic (and checked arguments: see
``normgrad.gradcheck.numerical``); and ``check_layer``, which checks every gradient of
any layer at once (see ``normgrad.gradcheck.layer``).
"""

from normgrad.gradcheck.blobs import eval_numerical_gradient_blobs, eval_numerical_gradient_net
from normgrad.gradcheck.layer import GradientCheck, LayerCheck, check_layer
from normgrad.gradcheck.numerical import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    norm_rel_error,
    rel_error,
)

__all__ = [
    "GradientCheck",
    "LayerCheck",
    "check_layer",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "eval_numerical_gradient_blobs",
    "eval_numerical_gradient_net",
    "grad_check_sparse",
    "norm_rel_error",
    "rel_error",
]
