"""The embedded default data set: scikit-learn's handwritten digits, split the same way
on every machine.

1797 images of 8x8, 10 classes, shipped inside scikit-learn, so nothing is downloaded.
``normgrad.data_utils`` re-exports ``get_digits_data``.
"""

from __future__ import annotations

import numpy as np

from normgrad._internal.validate import flag
from normgrad.data import checks


def _stratified_split(y: np.ndarray, sizes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Split row indices of labels y: (N,) into len(sizes) + 1 parts, stratified by class.

    Part k gets exactly sizes[k] rows, shared among classes in proportion to their
    counts (largest remainder); the last part gets the rest. Plain NumPy with a seeded
    PCG64, so the split is the same for every scikit-learn version.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(sizes) + 1)]
    for k, size in enumerate(sizes):
        ideal = size * counts / counts.sum()  # (classes,)
        quota = np.floor(ideal).astype(int)
        extra = np.argsort(-(ideal - quota), kind="stable")[: size - quota.sum()]
        quota[extra] += 1
        for c, q in enumerate(quota):
            parts[k].append(pools[c][:q])
            pools[c] = pools[c][q:]
    parts[-1] = list(pools)
    return [rng.permutation(np.concatenate(p)) for p in parts]


DIGITS_SEED = 231  # the split seed: every machine gets the same train/val/test rows


def get_digits_data(
    num_validation: int = 180,
    num_test: int = 360,
    seed: int = DIGITS_SEED,
    subtract_mean: bool = True,
    flatten: bool = True,
    dtype: type | np.dtype = np.float64,
) -> dict[str, np.ndarray]:
    """The embedded default data set: scikit-learn's handwritten digits, no download.

    1797 grey images of 8x8 pixels (values 0..16), 10 classes, bundled with
    scikit-learn (``sklearn.datasets.load_digits``). The split is stratified by class
    and seeded, so it is identical on every machine: by default 1257 train, 180 val and
    360 test images. Preprocessing, with statistics from the training split only:
    pixels / 16, minus the training mean image (``subtract_mean``), divided by the
    training set's overall standard deviation, so inputs have unit variance (a scale
    at which ``weight_scale`` 1e-2 .. 1e-1 and Adam's default rate train well).

    Args:
        num_validation, num_test: rows held out for validation and test.
        seed: of the stratified split.
        flatten: True gives X as (N, 64) for ``FullyConnectedNet``; False as
            (N, 1, 8, 8) for ``ThreeLayerConvNet(input_dim=(1, 8, 8))``.
        dtype: of the returned X arrays, a floating dtype (the standardized pixels are
            fractions, positive and negative).

    Returns:
        dict with X_train, y_train, X_val, y_val, X_test, y_test (y int64 in [0, 10)),
        the course's keys, ready for ``Solver(model, data)``.

    Raises:
        ValueError: num_validation or num_test not an int >= 10 (a non-int is also a
            TypeError), together leaving fewer than 10 training images; seed < 0; a
            non-floating dtype.
        TypeError: seed not an int, subtract_mean or flatten not a bool, dtype not a dtype.

    Every argument is checked before scikit-learn is imported.
    """
    num_validation = checks.count(num_validation, "num_validation", example=180, low=10)
    num_test = checks.count(num_test, "num_test", example=360, low=10)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be an int >= 0 (it seeds the split); got {seed!r:.60} "
            f"({type(seed).__name__}). Pass e.g. seed={DIGITS_SEED}, the default."
        )
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed}. Pass e.g. seed={DIGITS_SEED}.")
    subtract_mean = flag(subtract_mean, "subtract_mean")
    flatten = flag(flatten, "flatten")
    dt = checks.data_dtype(dtype)  # standardized pixels: floating only
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install 'normgrad[train]'"
        ) from None
    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0  # (1797, 64) in [0, 1]
    y = digits.target.astype(np.int64)  # (1797,)
    if num_validation + num_test > len(X) - 10:
        raise ValueError(
            f"num_validation and num_test must each be >= 10 (one image per class) and "
            f"leave >= 10 for training out of {len(X)}; got {num_validation}, {num_test}."
        )
    test, val, train = _stratified_split(y, (num_test, num_validation), seed)
    X_train, X_val, X_test = X[train], X[val], X[test]
    y_train, y_val, y_test = y[train], y[val], y[test]
    if subtract_mean:
        mean_image = X_train.mean(axis=0)  # (64,)
        X_train, X_val, X_test = X_train - mean_image, X_val - mean_image, X_test - mean_image
    scale = float(X_train.std())  # scalar: keeps the pixels' relative contrast
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)
    out = {}
    for split, Xs, ys in (
        ("train", X_train, y_train),
        ("val", X_val, y_val),
        ("test", X_test, y_test),
    ):
        out[f"X_{split}"] = (Xs / scale).reshape(shape).astype(dt)
        out[f"y_{split}"] = ys
    return out
