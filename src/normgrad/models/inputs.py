"""Input checks the models share: data whose shape disagrees with the model, bad labels.

They run before any layer, so the error names the model's expectation (``input_dim``,
``num_classes``) rather than an inner layer's shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_X(
    X: np.ndarray, input_shape: Sequence[int], model: str, any_layout: bool = False
) -> None:
    """Raise unless X is numeric with shape (N, *input_shape) or (N, prod(input_shape)).

    With ``any_layout`` any (N, d_1, ..., d_k) whose row size d_1 * ... * d_k is
    prod(input_shape) is accepted (a fully connected net flattens each row).
    """
    if not isinstance(X, np.ndarray) or not np.issubdtype(X.dtype, np.number):
        raise TypeError(f"X must be a numeric numpy.ndarray; got {type(X).__name__}.")
    input_shape = tuple(int(s) for s in input_shape)
    size = int(np.prod(input_shape))
    row = tuple(X.shape[1:])
    fits = row in (input_shape, (size,)) or (any_layout and int(np.prod(row)) == size)
    if X.ndim < 1 or not fits:
        raise ValueError(
            f"{model} expects X of shape (N, {', '.join(map(str, input_shape))})"
            f"{'' if len(input_shape) == 1 else f' or (N, {size})'}; got {tuple(X.shape)}. "
            "Build the model with input_dim matching the data (e.g. input_dim=64 for "
            "flattened 8x8 digits)."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{model}: X has no rows; got shape {tuple(X.shape)}.")


def check_y(y: np.ndarray, N: int, num_classes: int, model: str) -> None:
    """Raise unless y is an integer array (N,) with labels in [0, num_classes)."""
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"{model}: y must be a numpy integer array of class labels; got "
            f"{getattr(y, 'dtype', type(y).__name__)}. Convert with np.asarray(y, np.int64)."
        )
    if y.shape != (N,):
        raise ValueError(
            f"{model}: y must have shape (N,) = ({N},), one label per row of X; got "
            f"{tuple(y.shape)}."
        )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise ValueError(
            f"{model}: labels must lie in [0, num_classes) = [0, {num_classes}); got "
            f"{bad.size} outside, e.g. {bad[:5].tolist()}. Build the model with "
            "num_classes = the number of classes in the data."
        )
