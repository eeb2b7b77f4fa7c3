"""Fused fast paths (numba, the ``fast`` extra): the reference maths in fewer passes.

Each kernel gives the same results as its reference route in ``normgrad.norms`` (tested to
1e-12 in float64) and shares its input checks, so it accepts and rejects exactly the
same inputs, with the same messages. The kernels are compiled for float32 and float64;
any other floating dtype (float16, longdouble), empty inputs (N = 0 or D = 0), and calls
whose statistics or outputs come out extreme (over- or underflow, NaN or inf in x) take
the reference route inside the same call, so a fused call never answers differently.
"""

from normgrad.kernels.batchnorm import (
    FusedBatchNormCache,
    batchnorm_backward_fused,
    batchnorm_forward_fused,
)

__all__ = ["FusedBatchNormCache", "batchnorm_backward_fused", "batchnorm_forward_fused"]
