"""The data sets ``normgrad train`` and the experiments use, prepared in one place.

``load(name, ...)`` returns the course's data dict (``X_train``, ``y_train``, ``X_val``,
``y_val``, ``X_test``, ``y_test``) and a one-line description of it:

- ``"digits"``: the embedded default, scikit-learn's bundled 8x8 digits
  (``data.digits.get_digits_data``), no download;
- ``"cifar10"``: read from a folder (``data_dir``, else ``$NORMGRAD_CIFAR10``) and split
  and preprocessed as the course does (``data.cifar.prepare_CIFAR10``): 1000 validation
  and 1000 test images (a fifth of a smaller folder), the rest for training.

``layout="flat"`` gives X as (N, D) for a fully connected net, ``"images"`` as
(N, C, H, W) for a ConvNet.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from normgrad.data import checks
from normgrad.data.cifar import load_CIFAR10, prepare_CIFAR10
from normgrad.data.digits import get_digits_data

DATASETS = ("digits", "cifar10")
Layout = Literal["flat", "images"]


def load(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    num_train: int | None = None,
    layout: Layout = "flat",
    dtype: type | np.dtype = np.float32,
) -> tuple[dict[str, np.ndarray], str]:
    """The data dict of data set ``name`` and a one-line description of it.

    Args:
        name: ``"digits"`` or ``"cifar10"``.
        data_dir: the cifar-10-batches-py folder (CIFAR-10 only; None reads
            $NORMGRAD_CIFAR10).
        num_train: keep only the first ``num_train`` training rows (None: all), as the
            course's ``small_data`` does.
        layout: ``"flat"``, X as (N, D), or ``"images"``, X as (N, C, H, W).
        dtype: of the X arrays, a floating dtype.

    Raises:
        ValueError: an unknown data set or layout, a ``num_train`` that is not an int
            >= 1 (a non-int is also a TypeError), ``data_dir`` given for the digits or
            empty, or a dtype that is not floating (the data is mean-subtracted).
        TypeError: data_dir not a str or path, dtype not a dtype.
        CIFAR10NotFoundError (a FileNotFoundError): CIFAR-10 not found, saying how to
            get it.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(
            f"data set must be one of {', '.join(DATASETS)}; got {name!r}. Pass e.g. "
            f"name={DATASETS[0]!r}."
        )
    if not isinstance(layout, str) or layout not in ("flat", "images"):
        raise ValueError(f"layout must be 'flat' or 'images'; got {layout!r}.")
    if num_train is not None:
        num_train = checks.count(num_train, "num_train", example=1000, low=1)
    if data_dir is not None:
        checks.path_arg(data_dir, "data_dir", "the cifar-10-batches-py folder")
    dt = checks.data_dtype(dtype)  # both data sets are mean-subtracted: floating only
    if name == "digits":
        if data_dir is not None:
            raise ValueError("data_dir is for cifar10; the digits are embedded.")
        data = get_digits_data(flatten=layout == "flat", dtype=dt)
        prep = "pixels/16, minus the train mean image, over the train std"
    else:
        arrays = load_CIFAR10(data_dir)  # None: $NORMGRAD_CIFAR10
        n, m = len(arrays[0]), len(arrays[2])
        num_val = min(1000, n // 5)
        data = prepare_CIFAR10(arrays, n - num_val, num_val, min(1000, m), dtype=dt)
        if layout == "flat":
            data = {k: v.reshape(len(v), -1) if k.startswith("X") else v for k, v in data.items()}
        prep = "minus the train mean image (the course's preprocessing)"
    if num_train is not None:
        data["X_train"] = data["X_train"][:num_train]
        data["y_train"] = data["y_train"][:num_train]
    X = data["X_train"]
    desc = (
        f"{name}: {len(X)} training, {len(data['X_val'])} validation and "
        f"{len(data['X_test'])} test rows of {tuple(X.shape[1:])}; {prep}"
    )
    return data, desc


def held_out(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``data`` with the validation and test rows joined into X_val, y_val (test dropped).

    For experiments that select no model on the validation rows, so every held-out row
    measures accuracy.
    """
    return {
        "X_train": data["X_train"],
        "y_train": data["y_train"],
        "X_val": np.concatenate([data["X_val"], data["X_test"]]),
        "y_val": np.concatenate([data["y_val"], data["y_test"]]),
    }
