"""Fused fast paths (numba, the ``fast`` extra): the reference maths in fewer passes.

Each kernel gives the same results as its reference route in ``normgrad.norms`` (tested to
1e-12 in float64) and shares its input checks, so it accepts and rejects exactly the
same inputs. The kernels are compiled for float32 and float64; any other floating dtype
(float16, longdouble) and empty inputs take the reference route inside the same call.
"""

from normgrad.kernels.batchnorm import (
    FusedBatchNormCache,
    batchnorm_backward_fused,
    batchnorm_forward_fused,
)

__all__ = ["FusedBatchNormCache", "batchnorm_backward_fused", "batchnorm_forward_fused"]
