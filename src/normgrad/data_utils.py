"""cs231n-compatible data loading (``cs231n.data_utils``), a thin surface over ``normgrad.data``.

CIFAR-10 (``load_CIFAR_batch``, ``load_CIFAR10``, ``get_CIFAR10_data``) keeps cs231n's
signatures, splits and preprocessing, read through a restricted unpickler
(``normgrad.data.cifar``). ``get_digits_data`` is the embedded default data set,
scikit-learn's bundled 8x8 digits (``normgrad.data.digits``).
"""

from normgrad.data.cifar import (
    CIFAR10_DIRNAME,
    CIFAR10_ENV,
    CIFAR10_URL,
    TEST_BATCH,
    TRAIN_BATCHES,
    CIFAR10NotFoundError,
    NotCIFAR10BatchError,
    get_CIFAR10_data,
    load_CIFAR10,
    load_CIFAR_batch,
)
from normgrad.data.digits import DIGITS_SEED, get_digits_data

__all__ = [
    "CIFAR10NotFoundError",
    "CIFAR10_DIRNAME",
    "CIFAR10_ENV",
    "CIFAR10_URL",
    "DIGITS_SEED",
    "NotCIFAR10BatchError",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "get_CIFAR10_data",
    "get_digits_data",
    "load_CIFAR10",
    "load_CIFAR_batch",
]
