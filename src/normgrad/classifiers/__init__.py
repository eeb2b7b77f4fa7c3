"""Course-compatible models (``cs231n.classifiers``): a fully connected net and a ConvNet.

Each model holds ``params`` (name -> array) and answers ``loss(X, y=None)``: the class
scores (N, C) when y is None (test mode), else ``(loss, grads)`` with one gradient per
parameter. That is all ``normgrad.solver.Solver`` needs. They live in ``normgrad.models``.
"""

from normgrad.classifiers.cnn import ThreeLayerConvNet
from normgrad.classifiers.fc_net import FullyConnectedNet

__all__ = ["FullyConnectedNet", "ThreeLayerConvNet"]
