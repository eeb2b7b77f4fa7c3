"""Reading ``.npz`` files without ``allow_pickle=True``.

``np.load(path, allow_pickle=True)`` unpickles object arrays with the plain unpickler,
which runs whatever a file names. The course's ``imagenet_val_25.npz`` holds one object
array (``label_map``, a dict), so ``load_npz`` reads the archive's ``.npy`` members
itself: numeric arrays through ``np.lib.format.read_array(allow_pickle=False)``, and the
pickled payload of an object array through ``data.safe_pickle.RestrictedUnpickler``,
which resolves only plain-data globals and refuses every other one before it is called.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from normgrad.data.checks import DataFileError
from normgrad.data.safe_pickle import DATA_GLOBALS, RestrictedUnpickler, UnsafePickleError


def _read_member(data: bytes, source: str) -> np.ndarray:
    """One ``.npy`` member's array; object arrays through the restricted unpickler."""
    buf = io.BytesIO(data)
    try:
        version = npy_format.read_magic(buf)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(buf)
        else:  # 3.0 (utf8 field names) is only written for structured, non-object dtypes
            shape, dtype = (), None
    except ValueError as exc:
        raise DataFileError(f"{source} is not a .npy array ({exc}).") from None
    if dtype is None or not dtype.hasobject:
        buf.seek(0)
        try:
            return npy_format.read_array(buf, allow_pickle=False)
        except ValueError as exc:
            raise DataFileError(f"{source} is not a valid .npy array ({exc}).") from None
    try:
        array = RestrictedUnpickler(buf, source, DATA_GLOBALS).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated, or not a pickle at all
        raise DataFileError(f"{source}: its object array does not unpickle ({exc}).") from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise DataFileError(
            f"{source}: its header promises an object array of shape {tuple(shape)}; the "
            f"payload holds {type(array).__name__} {getattr(array, 'shape', '')}."
        )
    return array


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every ``.npy`` member of the ``.npz`` archive ``path``, by name without ``.npy``.

    Raises:
        UnsafePickleError: an object array's payload names a global outside
            ``DATA_GLOBALS`` (nothing in it was run).
        DataFileError: not a zip archive, or a member that is not a valid ``.npy``.
        FileNotFoundError: no such file.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataFileError(f"{path} is not an .npz archive (not a zip file).") from None
    with archive:
        out = {}
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataFileError(f"{path}: member {info.filename} is damaged ({exc}).") from None
            out[info.filename[: -len(".npy")]] = _read_member(data, f"{path}:{info.filename}")
    return out
