"""CIFAR-10 as the course loads it: ``load_CIFAR_batch``, ``load_CIFAR10``, ``get_CIFAR10_data``.

CIFAR-10 (``load_CIFAR10``, ``get_CIFAR10_data``) keeps cs231n's signatures, splits and
preprocessing. The python batches are pickles, and unpickling runs whatever callables
a file names, so they are read through ``_CIFARUnpickler`` (``data.safe_pickle``): it
resolves only the few NumPy names an array needs and refuses every other global *before*
anything is called.

Every argument is checked before a file is opened: split sizes are ints >= 0 that fit,
``subtract_mean`` is a bool, ``dtype`` is floating (or, for raw pixels with
``subtract_mean=False``, an integer dtype that holds 0..255: see ``data.checks``), and
folders are str or path objects.
"""

from __future__ import annotations

import inspect
import os
import pickle
from pathlib import Path
from typing import IO, Any, overload

import numpy as np

from normgrad._internal.errors import MissingFileError
from normgrad._internal.validate import flag
from normgrad.data import checks
from normgrad.data.safe_pickle import ARRAY_GLOBALS, RestrictedUnpickler

__all__ = [
    "CIFAR10NotFoundError",
    "NotCIFAR10BatchError",
    "get_CIFAR10_data",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "prepare_CIFAR10",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_ENV = "NORMGRAD_CIFAR10"
COURSE_CIFAR10_DIR = "cs231n/datasets/cifar-10-batches-py"  # relative to the notebook
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
NUM_TRAIN_IMAGES, NUM_TEST_IMAGES = 50000, 10000  # CIFAR-10's batches as distributed
_ROW = 3 * 32 * 32  # one image: 1024 red, then 1024 green, then 1024 blue, each row-major


class NotCIFAR10BatchError(pickle.UnpicklingError, ValueError):
    """A file is not a CIFAR-10 python batch (wrong layout, or it names forbidden code)."""


class CIFAR10NotFoundError(MissingFileError):
    """The CIFAR-10 folder, or some of its batches, is missing."""


class _CIFARUnpickler(RestrictedUnpickler):
    """``RestrictedUnpickler`` with ``ARRAY_GLOBALS`` only, and CIFAR-10's message.

    ``find_class`` runs when the pickle *names* a global, before the REDUCE that would
    call it, so a refused file has executed nothing.
    """

    def __init__(self, file: IO[bytes], source: str) -> None:
        super().__init__(file, source, ARRAY_GLOBALS, NotCIFAR10BatchError)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise NotCIFAR10BatchError(
                f"{self._source} is not a CIFAR-10 batch: it names {module}.{name}, and a "
                "CIFAR-10 python batch needs only NumPy array reconstruction. Refused "
                "before running anything. Re-download the batches from " + CIFAR10_URL
            ) from None


def _key(d: dict, name: str) -> Any:
    """``d[name]`` whether the file was written with str or bytes keys."""
    if name in d:
        return d[name]
    if name.encode() in d:
        return d[name.encode()]
    raise KeyError(name)


def load_CIFAR_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 python batch (cs231n).

    Returns:
        X: (n, 32, 32, 3) float64, pixel values 0..255 (course layout: channels last).
        Y: (n,) int64 labels in [0, 10).

    Raises:
        TypeError: filename is not a str or path.
        FileNotFoundError: there is no such file.
        NotCIFAR10BatchError: the file names a global other than NumPy's array
            reconstruction, or its contents are not a CIFAR-10 batch's.
    """
    path = checks.path_arg(filename, "filename", "a CIFAR-10 batch file such as data_batch_1")
    source = str(path)
    with open(path, "rb") as f:
        try:
            d = _CIFARUnpickler(f, source).load()
        except NotCIFAR10BatchError:
            raise
        except Exception as exc:  # truncated or not a pickle at all
            raise NotCIFAR10BatchError(
                f"{source} is not a CIFAR-10 batch: it does not unpickle ({exc})."
            ) from None
    if not isinstance(d, dict):
        raise NotCIFAR10BatchError(
            f"{source} is not a CIFAR-10 batch: it holds a {type(d).__name__}, not a dict."
        )
    try:
        data, labels = _key(d, "data"), _key(d, "labels")
    except KeyError as exc:
        raise NotCIFAR10BatchError(
            f"{source} is not a CIFAR-10 batch: it has no {exc.args[0]!r} entry."
        ) from None
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == _ROW
    ):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise NotCIFAR10BatchError(
            f"{source} is not a CIFAR-10 batch: 'data' must be uint8 (n, {_ROW}); got {desc}."
        )
    Y = np.asarray(labels)
    if Y.shape != (data.shape[0],) or not np.issubdtype(Y.dtype, np.integer):
        raise NotCIFAR10BatchError(
            f"{source} is not a CIFAR-10 batch: 'labels' must be {data.shape[0]} integers, "
            f"one per row of 'data'; got {Y.dtype} {Y.shape}."
        )
    if Y.size and (Y.min() < 0 or Y.max() > 9):
        raise NotCIFAR10BatchError(
            f"{source} is not a CIFAR-10 batch: labels must lie in [0, 10); got "
            f"[{Y.min()}, {Y.max()}]."
        )
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64)
    return X, Y.astype(np.int64)


def _cifar_dir(root: str | os.PathLike | None, name: str = "root") -> Path:
    """The batches folder: ``root``, ``root/cifar-10-batches-py``, or $NORMGRAD_CIFAR10.

    ``name`` is how messages call the argument (``root``, or the course's ``ROOT``).
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be the CIFAR-10 folder (a str or path); got {root!r}. The split "
            "sizes are get_CIFAR10_data's arguments: get_CIFAR10_data(num_training=..., "
            "root=...)."
        )
    if root is None and os.environ.get(CIFAR10_ENV) is not None:
        root, name = os.environ[CIFAR10_ENV], f"${CIFAR10_ENV}"
    if root is None and Path(COURSE_CIFAR10_DIR).is_dir():
        root = COURSE_CIFAR10_DIR  # where the course's get_datasets.sh puts it
    help_text = (
        f"Download {CIFAR10_URL} (163 MB), extract it (tar xzf cifar-10-python.tar.gz) to get "
        f"the folder {CIFAR10_DIRNAME}/, and pass that folder as --data-dir DIR (or "
        f"root=DIR), or set the environment variable {CIFAR10_ENV}=DIR (without either, "
        f"the course's ./{COURSE_CIFAR10_DIR} is used when it exists)."
    )
    if root is None:
        raise CIFAR10NotFoundError(f"CIFAR-10 location not given. {help_text}")
    if str(root) == "":
        raise ValueError(f"{name} is the empty string, not a folder. {help_text}")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise CIFAR10NotFoundError(
            f"CIFAR-10 folder {path} is a file, not a folder. Pass the folder that holds "
            f"data_batch_1 ... test_batch. {help_text}"
        )
    if not path.is_dir():
        raise CIFAR10NotFoundError(f"CIFAR-10 folder {path} does not exist. {help_text}")
    if not (path / TEST_BATCH).exists() and (path / CIFAR10_DIRNAME).is_dir():
        path = path / CIFAR10_DIRNAME
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if not (path / n).is_file()]
    if missing:
        raise CIFAR10NotFoundError(
            f"CIFAR-10 folder {path} is missing {', '.join(missing)}. {help_text}"
        )
    return path


def load_CIFAR10(
    root: str | os.PathLike | None = None, *, ROOT: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 from the python batches in ``root`` (cs231n).

    Args:
        root: the ``cifar-10-batches-py`` folder (or its parent); None reads
            $NORMGRAD_CIFAR10, else the course's ./cs231n/datasets/cifar-10-batches-py.
        ROOT: the course's name for ``root`` (``load_CIFAR10(ROOT=...)``); give one or
            the other.

    Returns:
        Xtr: (N_train, 32, 32, 3) float64, Ytr: (N_train,) int64 (data_batch_1..5);
        Xte: (N_test, 32, 32, 3) float64, Yte: (N_test,) int64 (test_batch).
        With the files as distributed N_train = 50000 and N_test = 10000.

    Raises:
        TypeError: both ``root`` and ``ROOT`` are given, or one is not a str or path.
        ValueError: the folder is the empty string.
        CIFAR10NotFoundError: the folder is missing or is a file, or some of its batches
            are missing (named).
        NotCIFAR10BatchError: a file is not a CIFAR-10 batch.
    """
    if ROOT is not None:
        if root is not None:
            raise TypeError(
                "load_CIFAR10 got both root and ROOT (the course's name for "
                "it); pass the CIFAR-10 folder once."
            )
        return _load_all(_cifar_dir(ROOT, "ROOT"))
    return _load_all(_cifar_dir(root))


def _load_all(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every batch of the CIFAR-10 folder ``path``, in the course's order."""
    parts = [load_CIFAR_batch(path / name) for name in TRAIN_BATCHES]
    Xtr = np.concatenate([p[0] for p in parts])
    Ytr = np.concatenate([p[1] for p in parts])
    Xte, Yte = load_CIFAR_batch(path / TEST_BATCH)
    return Xtr, Ytr, Xte, Yte


def _check_split_sizes(
    num_training: int, num_validation: int, num_test: int, n_train: int, n_test: int
) -> None:
    """Raise ``ValueError`` unless the splits fit in n_train training and n_test test rows."""
    if num_training + num_validation > n_train:
        raise ValueError(
            f"num_training + num_validation = {num_training + num_validation} exceeds the "
            f"{n_train} training images. Lower them so they sum to at most {n_train}, "
            f"e.g. num_training={max(n_train - min(num_validation, n_train), 0)}, "
            f"num_validation={min(num_validation, n_train)}."
        )
    if num_test > n_test:
        raise ValueError(
            f"num_test = {num_test} exceeds the {n_test} test images. Pass "
            f"num_test={n_test} or fewer."
        )


def _course_get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    *,
    root: str | os.PathLike | None = None,
    dtype: type | np.dtype = np.float64,
) -> dict[str, np.ndarray]:
    """The signature ``get_CIFAR10_data`` presents and binds its arguments to."""
    num_training, num_validation, num_test, subtract_mean, dtype = _check_prepare_args(
        num_training, num_validation, num_test, subtract_mean, dtype
    )
    # Checked against CIFAR-10's sizes before anything is read (all 60000 images), and again
    # below against the folder's actual batches, which may hold fewer rows.
    _check_split_sizes(num_training, num_validation, num_test, NUM_TRAIN_IMAGES, NUM_TEST_IMAGES)
    return prepare_CIFAR10(
        load_CIFAR10(_cifar_dir(root)), num_training, num_validation, num_test, subtract_mean, dtype
    )


def _check_prepare_args(
    num_training: Any, num_validation: Any, num_test: Any, subtract_mean: Any, dtype: Any
) -> tuple[int, int, int, bool, np.dtype]:
    """The split sizes, ``subtract_mean`` and ``dtype``, checked (see ``data.checks``)."""
    sizes = [
        checks.count(n, name, example=default)
        for name, n, default in (
            ("num_training", num_training, 49000),
            ("num_validation", num_validation, 1000),
            ("num_test", num_test, 1000),
        )
    ]
    subtract_mean = flag(subtract_mean, "subtract_mean")
    if subtract_mean and sizes[0] == 0:
        raise ValueError(
            "subtract_mean=True needs num_training >= 1: the mean image is the training "
            "split's mean, and the mean of no images is NaN. Pass num_training >= 1, or "
            "subtract_mean=False."
        )
    dt = checks.data_dtype(dtype, raw_pixels=not subtract_mean)
    return sizes[0], sizes[1], sizes[2], subtract_mean, dt


def prepare_CIFAR10(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    num_training: int,
    num_validation: int,
    num_test: int,
    subtract_mean: bool = True,
    dtype: type | np.dtype = np.float64,
) -> dict[str, np.ndarray]:
    """The course's split and preprocessing of ``load_CIFAR10``'s arrays, channels first.

    Train is the first ``num_training`` training rows, val the ``num_validation`` rows
    after them, test the first ``num_test`` test rows; with ``subtract_mean`` the mean
    image of the training split is subtracted from all three.

    Args:
        arrays: (X_train (n, 32, 32, 3), y_train (n,), X_test (m, 32, 32, 3), y_test (m,)).
        num_training, num_validation, num_test: split sizes, within n and m.
        subtract_mean: subtract the training split's mean image.
        dtype: of the returned X arrays: floating; with ``subtract_mean=False`` also an
            integer dtype that holds the pixels 0..255 (np.uint8).

    Returns:
        dict with X_train: (num_training, 3, 32, 32), y_train, X_val, y_val, X_test,
        y_test; every X C-contiguous.

    Raises:
        ValueError: more rows asked for than the arrays hold, a split size that is not
            an int >= 0, num_training = 0 with subtract_mean, or a dtype that cannot hold
            the data (``data.checks.data_dtype``).
        TypeError: subtract_mean not a bool, dtype not a dtype.
    """
    num_training, num_validation, num_test, subtract_mean, dtype = _check_prepare_args(
        num_training, num_validation, num_test, subtract_mean, dtype
    )
    X_train, y_train, X_test, y_test = arrays
    _check_split_sizes(num_training, num_validation, num_test, len(X_train), len(X_test))
    val = slice(num_training, num_training + num_validation)
    X_val, y_val = X_train[val], y_train[val]
    X_train, y_train = X_train[:num_training], y_train[:num_training]
    X_test, y_test = X_test[:num_test], y_test[:num_test]
    if subtract_mean:
        mean_image = np.mean(X_train, axis=0)  # (32, 32, 3)
        X_train, X_val, X_test = X_train - mean_image, X_val - mean_image, X_test - mean_image

    def channels_first(X: np.ndarray) -> np.ndarray:
        # (n, 32, 32, 3) -> (n, 3, 32, 32), copied into C order (a transpose is a view)
        return np.ascontiguousarray(X.transpose(0, 3, 1, 2), dtype=dtype)

    return {
        "X_train": channels_first(X_train),
        "y_train": y_train,
        "X_val": channels_first(X_val),
        "y_val": y_val,
        "X_test": channels_first(X_test),
        "y_test": y_test,
    }


_COURSE_SIGNATURE = inspect.signature(_course_get_CIFAR10_data)


@overload
def get_CIFAR10_data(
    num_training: int = ...,
    num_validation: int = ...,
    num_test: int = ...,
    subtract_mean: bool = ...,
    *,
    root: str | os.PathLike | None = ...,
    dtype: type | np.dtype = ...,
) -> dict[str, np.ndarray]: ...


@overload
def get_CIFAR10_data(
    root: str | os.PathLike | None,
    /,
    num_training: int = ...,
    num_validation: int = ...,
    num_test: int = ...,
    subtract_mean: bool = ...,
    *,
    dtype: type | np.dtype = ...,
) -> dict[str, np.ndarray]: ...


def get_CIFAR10_data(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    """CIFAR-10 split and preprocessed as the course does, channels first (cs231n).

    Signature: ``get_CIFAR10_data(num_training=49000, num_validation=1000,
    num_test=1000, subtract_mean=True, *, root=None, dtype=np.float64)``, the course's
    positional order, so ``get_CIFAR10_data(5000)`` and
    ``get_CIFAR10_data(num_training=..., ...)`` work as in the notebooks. The folder is
    the keyword ``root``. For convenience a folder may also come *first*, positionally:
    if the first positional argument is a ``str``, an ``os.PathLike`` or None, it is
    taken as ``root`` and the remaining ones shift to num_training, num_validation, ...
    (``get_CIFAR10_data("data/cifar-10-batches-py", 5000)``). No number is a folder, so
    the two readings never clash.

    Train is the first ``num_training`` training rows, val the ``num_validation`` rows
    after them, test the first ``num_test`` test rows. With ``subtract_mean`` the mean
    image of the *training split* is subtracted from all three.

    Args:
        num_training, num_validation, num_test: ints >= 0, the split sizes.
        subtract_mean: subtract the training split's mean image.
        root: the ``cifar-10-batches-py`` folder (or its parent); None reads
            $NORMGRAD_CIFAR10, else uses the course's ./cs231n/datasets/cifar-10-batches-py
            when it exists.
        dtype: of the returned X arrays (the course's float64 by default). Floating,
            since mean-subtracted pixels are fractions and negative (``int8`` would wrap
            them); with ``subtract_mean=False`` also an integer dtype that holds 0..255
            (np.uint8, not np.int8).

    Returns:
        dict with X_train: (num_training, 3, 32, 32), y_train: (num_training,), and
        likewise X_val, y_val, X_test, y_test; every X is C-contiguous.

    Raises:
        TypeError: an unknown argument, the folder given twice (first and ``root=``),
            subtract_mean not a bool, dtype not a dtype, root not a str or path.
        ValueError: a split size that is not an int >= 0 (for a non-int also a
            TypeError), more rows than the files hold, num_training = 0 with
            subtract_mean, a dtype that cannot hold the data, an empty root.
        CIFAR10NotFoundError, NotCIFAR10BatchError: as ``load_CIFAR10``.

    Every argument is checked before any file is opened.
    """
    if args and (args[0] is None or isinstance(args[0], (str, os.PathLike))):
        if "root" in kwargs:
            raise TypeError(
                f"get_CIFAR10_data got the folder twice: first, positionally "
                f"({args[0]!r}), and as root={kwargs['root']!r}. Pass it once."
            )
        kwargs["root"] = args[0]
        args = args[1:]
    try:
        bound = _COURSE_SIGNATURE.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"get_CIFAR10_data{_COURSE_SIGNATURE}: {exc}") from None
    return _course_get_CIFAR10_data(*bound.args, **bound.kwargs)


get_CIFAR10_data.__signature__ = _COURSE_SIGNATURE  # type: ignore[attr-defined]
