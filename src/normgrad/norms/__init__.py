"""The maths of every normalization, once: forward passes and every backward route.

One module per normalization, each ending in its specification (``SPEC``, see
``normgrad.norms.spec``); ``normgrad.norms.registry.SPECS`` is the one list of them.
``core`` is the standardization that layer, group, instance and RMS norm share, and
``running`` the running statistics of the batch-style layers. The course-compatible
surfaces (``normgrad.layers`` and friends) re-export from here; nothing else restates a
formula.
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
from normgrad.norms.spec import NormSpec

__all__ = [
    "BatchNormCache",
    "GroupNormCache",
    "InstanceNormCache",
    "LayerNormCache",
    "NormSpec",
    "RMSNormCache",
    "RunningStats",
    "SpatialBatchNormCache",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_backward_paper",
    "batchnorm_forward",
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
    "torch_bn_param",
]
