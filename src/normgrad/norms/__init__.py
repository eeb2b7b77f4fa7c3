"""The maths of every normalization, once: forward passes and every backward route.

One module per normalization. The course-compatible surfaces (``normgrad.layers`` and
friends) re-export from here; nothing else restates a formula.
"""

from normgrad.norms.batch import (
    BatchNormCache,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_backward_paper,
    batchnorm_forward,
)
from normgrad.norms.running import RunningStats, torch_bn_param

__all__ = [
    "BatchNormCache",
    "RunningStats",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_backward_paper",
    "batchnorm_forward",
    "torch_bn_param",
]
