"""cs231n-compatible ``cs231n.classifiers.fc_net``, a thin surface over ``models.fc_net``.

The course's module star-imports ``layers`` and ``layer_utils``, and its notebooks rely
on it: after ``from cs231n.classifiers.fc_net import *`` they call batchnorm_forward,
affine_relu_forward... So those names are re-exported here too.
"""

from normgrad import layer_utils as _layer_utils
from normgrad import layers as _layers
from normgrad.layer_utils import *  # noqa: F403
from normgrad.layers import *  # noqa: F403
from normgrad.models.fc_net import FullyConnectedNet

__all__ = ["FullyConnectedNet", *_layers.__all__, *_layer_utils.__all__]
