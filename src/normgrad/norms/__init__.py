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
from normgrad.norms.group import (
    GroupNormCache,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from normgrad.norms.instance import InstanceNormCache, instancenorm_backward, instancenorm_forward
from normgrad.norms.layer import (
    LayerNormCache,
    layernorm_backward,
    layernorm_forward,
    layernorm_nd_backward,
    layernorm_nd_forward,
)
from normgrad.norms.rms import RMSNormCache, rmsnorm_backward, rmsnorm_forward
from normgrad.norms.running import RunningStats, torch_bn_param
from normgrad.norms.spatial import (
    SpatialBatchNormCache,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

__all__ = [
    "instancenorm_backward",
    "instancenorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "layernorm_nd_backward",
    "layernorm_nd_forward",
    "rmsnorm_backward",
    "rmsnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
    "GroupNormCache",
    "InstanceNormCache",
    "LayerNormCache",
    "RMSNormCache",
    "SpatialBatchNormCache",
    "BatchNormCache",
    "RunningStats",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_backward_paper",
    "batchnorm_forward",
    "torch_bn_param",
]
