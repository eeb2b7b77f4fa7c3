"""The models and their building blocks: sandwiches, a fully connected net, a ConvNet.

``blocks`` chains layers into sandwiches (affine - norm - activation, conv - norm - ReLU -
pool) with any registered normalization; ``fc_net`` and ``cnn`` are the course's
``FullyConnectedNet`` and ``ThreeLayerConvNet``; ``inputs`` checks data against a model.
The course's paths (``normgrad.classifiers``, ``normgrad.layer_utils``) re-export them.
"""

from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.models.fc_net import FullyConnectedNet

__all__ = ["FullyConnectedNet", "ThreeLayerConvNet"]
