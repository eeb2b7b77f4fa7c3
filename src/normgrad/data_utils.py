"""cs231n-compatible data loading (``cs231n.data_utils``), a thin surface over ``normgrad.data``.

CIFAR-10 (``load_CIFAR_batch``, ``load_CIFAR10``, ``get_CIFAR10_data``) keeps cs231n's
signatures, splits and preprocessing (``normgrad.data.cifar``). The rest of the course's
module is here too, with its signatures and on-disk formats: ``load_pickle``
(``data.safe_pickle``), ``load_models`` (``data.models``), ``load_tiny_imagenet`` and
``load_imagenet_val`` (``data.imagenet``). Every pickle, the CIFAR-10 batches and the
object array inside ``imagenet_val_25.npz`` included, is read through a restricted
unpickler that refuses any global outside a plain-data allow-list before it is called.
``get_digits_data`` is the embedded default data set, scikit-learn's bundled 8x8 digits
(``normgrad.data.digits``).
"""

from normgrad.data.checks import DataFileError
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
from normgrad.data.imagenet import (
    IMAGENET_VAL_PATH,
    TinyImageNetNotFoundError,
    load_imagenet_val,
    load_tiny_imagenet,
)
from normgrad.data.models import load_models
from normgrad.data.safe_pickle import UnsafePickleError, load_pickle

__all__ = [
    "CIFAR10NotFoundError",
    "CIFAR10_DIRNAME",
    "CIFAR10_ENV",
    "CIFAR10_URL",
    "DIGITS_SEED",
    "DataFileError",
    "IMAGENET_VAL_PATH",
    "NotCIFAR10BatchError",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "TinyImageNetNotFoundError",
    "UnsafePickleError",
    "get_CIFAR10_data",
    "get_digits_data",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "load_imagenet_val",
    "load_models",
    "load_pickle",
    "load_tiny_imagenet",
]
