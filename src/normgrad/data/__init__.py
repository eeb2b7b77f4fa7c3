"""Data: CIFAR-10 as the course loads it, the embedded digits, and image grids.

``cifar`` (the course's loaders, through a restricted unpickler), ``digits`` (the
embedded default, scikit-learn's bundled 8x8 digits), ``prepare`` (the one preparation
``normgrad train`` and the experiments share) and ``visualize`` (the course's image
grids). The course's paths are ``normgrad.data_utils`` and ``normgrad.vis_utils``.
"""
