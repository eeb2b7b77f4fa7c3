"""The course's ImageNet loaders: ``load_tiny_imagenet`` and ``load_imagenet_val``.

Tiny ImageNet (TinyImageNet-100-A, -100-B and -200 share one layout)::

    path/wnids.txt                       one WordNet id per line: class i is line i
    path/words.txt                       "<wnid>\\t<name>, <name>, ..." per line
    path/train/<wnid>/<wnid>_boxes.txt   "<file>\\t<x0>\\t<y0>\\t<x1>\\t<y1>" per image
    path/train/<wnid>/images/<file>      the training images of class <wnid>
    path/val/val_annotations.txt         "<file>\\t<wnid>\\t..." per validation image
    path/val/images/<file>
    path/test/images/<file>              every file in the folder, in sorted name order
    path/test/test_annotations.txt       optional: "<file>\\t<wnid>\\t..." (else y_test=None)

Images are 64x64 JPEGs, RGB or greyscale (a grey image fills all three channels, as in
the course). They are read with Pillow, imported only when the loader runs.

``imagenet_val_25.npz`` (the course's ``get_imagenet_val.sh``) holds ``X`` (25, 224, 224,
3) uint8 images, ``y`` (25,) integer labels and ``label_map``, a 0-d object array holding
the dict {label: class name}. It is read by ``data.npz.load_npz``: the dict's pickle goes
through the restricted unpickler, never ``np.load(allow_pickle=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from normgrad._internal.errors import MissingFileError
from normgrad._internal.validate import flag
from normgrad.data import checks
from normgrad.data.checks import DataFileError
from normgrad.data.npz import load_npz

IMAGENET_VAL_PATH = "cs231n/datasets/imagenet_val_25.npz"  # relative to the notebook
_IMAGENET_VAL_HELP = (
    "Run the course's script: cd cs231n/datasets && bash get_imagenet_val.sh (or pass "
    "path=... to the file)."
)
_TINY_HELP = (
    "Get it with the course's script (cd cs231n/datasets && bash get_tiny_imagenet_a.sh) "
    "and pass the extracted folder, e.g. 'cs231n/datasets/tiny-imagenet-100-A'."
)


class TinyImageNetNotFoundError(FileNotFoundError):
    """The Tiny ImageNet folder, or a file its layout requires, is missing."""


def _image_reader() -> Callable[[Path], np.ndarray]:
    """A function reading one image file as (H, W, 3) uint8, from Pillow (imported here)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError(
            "load_tiny_imagenet reads JPEG images with Pillow, which is not installed: "
            "pip install pillow"
        ) from exc

    def read(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as img:
                if img.mode not in ("L", "RGB"):
                    img = img.convert("RGB")  # palette, CMYK, with alpha: as RGB
                a = np.asarray(img, dtype=np.uint8)
        except FileNotFoundError:
            raise TinyImageNetNotFoundError(f"image {path} is missing. {_TINY_HELP}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataFileError(f"{path} is not a readable image ({exc}).") from None
        if a.ndim == 2:  # greyscale: the course's img.shape = (64, 64, 1), broadcast to RGB
            a = np.repeat(a[:, :, None], 3, axis=2)
        return a

    return read


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank line of the text file ``path``."""
    if not path.is_file():
        raise TinyImageNetNotFoundError(f"{path} is missing. {_TINY_HELP}")
    with open(path, encoding="utf-8") as f:
        return [(n, line.rstrip("\r\n")) for n, line in enumerate(f, 1) if line.strip()]


def _fields(path: Path, n: int, line: str, least: int, what: str) -> list[str]:
    fields = line.split("\t")
    if len(fields) < least:
        raise DataFileError(f"{path}, line {n}: expected {what}, tab-separated; got {line!r:.80}.")
    return fields


def _class_names(root: Path) -> tuple[list[str], list[list[str]]]:
    """wnids (class i is wnids[i]) and class_names[i], the WordNet names of class i."""
    wnids = [line.strip() for _, line in _lines(root / "wnids.txt")]
    if not wnids:
        raise DataFileError(f"{root / 'wnids.txt'} lists no classes.")
    if len(set(wnids)) != len(wnids):
        dup = next(w for w in wnids if wnids.count(w) > 1)
        raise DataFileError(f"{root / 'wnids.txt'} lists {dup} twice; each class once.")
    words_file = root / "words.txt"
    words = {}
    for n, line in _lines(words_file):
        wnid, names = _fields(words_file, n, line, 2, "<wnid> and its names")[:2]
        words[wnid.strip()] = [w.strip() for w in names.split(",")]
    missing = [w for w in wnids if w not in words]
    if missing:
        raise DataFileError(f"{words_file} has no names for {', '.join(missing[:5])}.")
    return wnids, [words[w] for w in wnids]


def _stack(
    files: list[Path], read: Callable[[Path], np.ndarray], dtype: np.dtype, size: list[int]
) -> np.ndarray:
    """The images ``files`` as (n, 3, H, W) of ``dtype``; ``size`` fixes (H, W) once."""
    X = None
    for k, file in enumerate(files):
        img = read(file)  # (H, W, 3)
        if not size:
            size.extend(img.shape[:2])
        if img.shape != (size[0], size[1], 3):
            raise DataFileError(
                f"{file} is {img.shape[1]}x{img.shape[0]} pixels; every image of the data "
                f"set must have the size of the first, {size[1]}x{size[0]}."
            )
        if X is None:
            X = np.zeros((len(files), 3, size[0], size[1]), dtype=dtype)
        X[k] = img.transpose(2, 0, 1)  # (3, H, W)
    if X is None:
        X = np.zeros((0, 3, *(size or [64, 64])), dtype=dtype)
    return X


def _annotations(path: Path, label: dict[str, int]) -> list[tuple[str, int]]:
    """(image file, label) per line of an annotations file, in its order."""
    out = []
    for n, line in _lines(path):
        file, wnid = _fields(path, n, line, 2, "<file> and <wnid>")[:2]
        if wnid not in label:
            raise DataFileError(f"{path}, line {n}: {wnid} is not a class of wnids.txt.")
        out.append((file, label[wnid]))
    return out


def load_tiny_imagenet(
    path: str | os.PathLike[str], dtype: Any = np.float32, subtract_mean: bool = True
) -> dict[str, Any]:
    """Load Tiny ImageNet from the folder ``path`` (cs231n), in the layout of the module doc.

    Args:
        path: the data set's folder, e.g. ``cs231n/datasets/tiny-imagenet-100-A``.
        dtype: of the X arrays: floating; with ``subtract_mean=False`` also an integer
            dtype that holds 0..255 (np.uint8). The course's float32 by default.
        subtract_mean: subtract the mean training image from X_train, X_val and X_test.

    Returns:
        dict with, as the course: ``class_names`` (class_names[i] the WordNet names of
        class i, a list of str), ``X_train`` (N_tr, 3, 64, 64), ``y_train`` (N_tr,),
        ``X_val`` (N_val, 3, 64, 64), ``y_val`` (N_val,), ``X_test`` (N_test, 3, 64, 64),
        ``y_test`` (N_test,) or None without test annotations, ``mean_image`` (3, 64,
        64). Labels are int64 indices into wnids.txt; training images come class by
        class in the order of wnids.txt and of each boxes file.

    Raises:
        TypeError: path not a str or path, subtract_mean not a bool, dtype not a dtype.
        ValueError: path empty, or a dtype that cannot hold the data.
        TinyImageNetNotFoundError (a FileNotFoundError): the folder or a file of the
            layout is missing (named).
        DataFileError (a ValueError): a file is malformed (a line without its tab, an
            unknown wnid, an unreadable image, images of different sizes, no training
            images), naming the file and line.
        ImportError: Pillow is not installed (``pip install pillow``).
    """
    root = checks.path_arg(path, "path", "the Tiny ImageNet folder")
    subtract_mean = flag(subtract_mean, "subtract_mean")
    dt = checks.data_dtype(dtype, raw_pixels=not subtract_mean)
    if not root.is_dir():
        raise TinyImageNetNotFoundError(f"Tiny ImageNet folder {root} does not exist. {_TINY_HELP}")
    read = _image_reader()
    wnids, class_names = _class_names(root)
    label = {wnid: i for i, wnid in enumerate(wnids)}
    size: list[int] = []  # (H, W) of the first image, which every other must match

    X_parts, y_parts = [], []
    for i, wnid in enumerate(wnids):
        if (i + 1) % 20 == 0:
            print(f"loading training data for synset {i + 1} / {len(wnids)}")
        folder = root / "train" / wnid
        boxes = folder / f"{wnid}_boxes.txt"
        files = [folder / "images" / line.split("\t")[0] for _, line in _lines(boxes)]
        X_parts.append(_stack(files, read, dt, size))
        y_parts.append(np.full(len(files), i, dtype=np.int64))
    X_train = np.concatenate(X_parts, axis=0)
    y_train = np.concatenate(y_parts, axis=0)
    if len(X_train) == 0:
        raise DataFileError(
            f"{root / 'train'} holds no training images: every <wnid>_boxes.txt is empty."
        )

    val = _annotations(root / "val" / "val_annotations.txt", label)
    X_val = _stack([root / "val" / "images" / f for f, _ in val], read, dt, size)
    y_val = np.array([y for _, y in val], dtype=np.int64)

    test_dir = root / "test" / "images"
    if not test_dir.is_dir():
        raise TinyImageNetNotFoundError(f"{test_dir} is missing. {_TINY_HELP}")
    test_files = sorted(f for f in os.listdir(test_dir) if not f.startswith("."))
    X_test = _stack([test_dir / f for f in test_files], read, dt, size)
    y_test = None
    test_annotations = root / "test" / "test_annotations.txt"
    if test_annotations.exists():
        test_labels = dict(_annotations(test_annotations, label))
        unlabelled = [f for f in test_files if f not in test_labels]
        if unlabelled:
            raise DataFileError(
                f"{root / 'test' / 'test_annotations.txt'} has no label for "
                f"{', '.join(unlabelled[:5])}."
            )
        y_test = np.array([test_labels[f] for f in test_files], dtype=np.int64)

    mean_image = X_train.mean(axis=0)  # (3, H, W)
    if subtract_mean:
        X_train -= mean_image[None]
        X_val -= mean_image[None]
        X_test -= mean_image[None]
    return {
        "class_names": class_names,
        "X_train": X_train,
        "y_train": y_train,
        "X_val": X_val,
        "y_val": y_val,
        "X_test": X_test,
        "y_test": y_test,
        "mean_image": mean_image,
    }


def load_imagenet_val(
    num: int | None = None, *, path: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """A handful of ImageNet validation images (cs231n), from ``imagenet_val_25.npz``.

    Args:
        num: how many images (the first ``num``); None for all (25 in the course's file).
        path: the .npz file; by default the course's ``cs231n/datasets/imagenet_val_25.npz``
            relative to the working directory (the notebook's folder).

    Returns:
        X: (num, 224, 224, 3) uint8 images, y: (num,) integer labels,
        class_names: dict mapping each integer label to its class name.

    Raises:
        TypeError: num not an int or None, path not a str or path.
        ValueError: num < 0 or more than the file holds.
        FileNotFoundError: no such file (with how to get it).
        UnsafePickleError: label_map's pickle names something other than plain data;
            nothing in it was run.
        DataFileError (a ValueError): the file is not the course's npz (members X, y,
            label_map of the shapes above, every label in label_map).
    """
    if num is not None:
        num = checks.count(num, "num", example=5)
    file = checks.path_arg(
        IMAGENET_VAL_PATH if path is None else path, "path", "the imagenet_val_25.npz file"
    )
    if not file.is_file():
        raise MissingFileError(f"file {file} not found. {_IMAGENET_VAL_HELP}")
    members = load_npz(file)
    missing = [k for k in ("X", "y", "label_map") if k not in members]
    if missing:
        raise DataFileError(
            f"{file} is not the course's imagenet_val npz: it has no {', '.join(missing)} "
            f"(it holds {sorted(members)})."
        )
    X, y, label_map = members["X"], members["y"], members["label_map"]
    if X.ndim != 4 or X.shape[3] != 3 or X.dtype.kind not in "uif":
        raise DataFileError(f"{file}: X must be (N, H, W, 3) images; got {X.dtype} {X.shape}.")
    if y.shape != (len(X),) or y.dtype.kind not in "iu":
        raise DataFileError(
            f"{file}: y must be {len(X)} integer labels, one per image; got {y.dtype} {y.shape}."
        )
    class_names = label_map.item() if label_map.shape == () else None
    if not isinstance(class_names, dict):
        raise DataFileError(
            f"{file}: label_map must hold a dict {{label: class name}}; got "
            f"{type(class_names).__name__}."
        )
    if not all(checks.is_label(k) for k in class_names):
        bad = next(k for k in class_names if not checks.is_label(k))
        raise DataFileError(f"{file}: label_map's keys must be integer labels; got {bad!r:.40}.")
    unknown = sorted({int(k) for k in y} - {int(k) for k in class_names})
    if unknown:
        raise DataFileError(f"{file}: labels {unknown[:5]} of y are not in label_map.")
    if num is not None and num > len(X):
        raise ValueError(
            f"num = {num} exceeds the {len(X)} images in {file}. Pass num <= {len(X)}, or "
            "num=None for all of them."
        )
    if num is not None:
        X, y = X[:num], y[:num]
    return X, y, class_names
