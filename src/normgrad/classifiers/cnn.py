"""cs231n-compatible ``cs231n.classifiers.cnn``, a thin surface over ``models.cnn``.

The course's module star-imports ``layers``, ``fast_layers`` and ``layer_utils``, and its
notebooks rely on it, so those names are re-exported here too.
"""

from normgrad import fast_layers as _fast_layers
from normgrad import layer_utils as _layer_utils
from normgrad import layers as _layers
from normgrad.fast_layers import *  # noqa: F403
from normgrad.layer_utils import *  # noqa: F403
from normgrad.layers import *  # noqa: F403
from normgrad.models.cnn import ThreeLayerConvNet

__all__ = ["ThreeLayerConvNet", *_layers.__all__, *_fast_layers.__all__, *_layer_utils.__all__]
