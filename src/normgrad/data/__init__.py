"""Data: the course's loaders, the embedded digits, and image grids.

``cifar`` (CIFAR-10 as the course loads it), ``imagenet`` (Tiny ImageNet and the
course's 25 ImageNet validation images), ``models`` (the course's ``load_models``),
``safe_pickle`` (the restricted unpickler every pickle goes through, and
``load_pickle``), ``npz`` (``.npz`` files without ``allow_pickle``), ``checks`` (the
argument checks the loaders share), ``digits`` (the embedded default, scikit-learn's
bundled 8x8 digits), ``prepare`` (the one preparation ``normgrad train`` and the
experiments share) and ``visualize`` (the course's image grids). The course's paths are
``normgrad.data_utils`` and ``normgrad.vis_utils``.
"""
