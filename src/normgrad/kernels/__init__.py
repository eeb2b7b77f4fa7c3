"""Fused fast paths (numba, the ``fast`` extra): the reference maths in fewer passes.

Each kernel gives the same results as its reference route in ``normgrad.norms`` (tested to
1e-12 in float64) and accepts and rejects exactly the same inputs.
"""

from normgrad.kernels.batchnorm import (
    FusedBatchNormCache,
    batchnorm_backward_fused,
    batchnorm_forward_fused,
)

__all__ = ["FusedBatchNormCache", "batchnorm_backward_fused", "batchnorm_forward_fused"]
