"""cs231n-compatible layer functions (``cs231n.layers``), a thin surface over ``norms/``.

Every function keeps the course's signature and semantics: ``*_forward(...) -> (out,
cache)`` and ``*_backward(dout, cache) -> gradients``. The maths lives in
``normgrad.norms``; this module only names it the way the course does.
"""

from normgrad.norms.batch import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_backward_paper,
    batchnorm_forward,
)
from normgrad.norms.running import torch_bn_param

__all__ = [
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_backward_paper",
    "batchnorm_forward",
    "torch_bn_param",
]
