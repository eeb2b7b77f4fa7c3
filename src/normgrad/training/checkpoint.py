"""Checkpoint files: pickle-free, checksummed, atomically written ``.npz``.

**Checkpoint files.** ``save_checkpoint`` writes a set of named arrays plus a JSON
header (stored as a 0-d unicode array, key ``meta``) as an ordinary ``.npz`` that
``np.load(path, allow_pickle=False)`` reads. Object arrays are refused, so nothing in a
checkpoint is ever pickled. The file is written by ``normgrad._internal.io.atomic_write``: to a
temporary file in the target's folder, fsynced, then renamed over the target with
``os.replace``. A reader sees the old checkpoint or the new one, never half of one,
even if the process is killed mid-write (a killed write may leave a stray
``.tmp-<stem>-*.npz``); if the write fails (a full disk, a failed rename), the
temporary file is removed and the previous checkpoint is left byte for byte.

**Integrity.** The header carries a SHA-256 checksum (``checksum_of``) over the header
itself and every stored array: its key, dtype, shape and bytes, in sorted key order.
``load_checkpoint`` recomputes it, so a flipped byte, a truncated file, an array
swapped or added by another tool, or an edited header is refused with a ``ValueError``
before anything is restored.

**Versions.** This is format version 2. Version 1 files (normgrad 0.1.0)
hold neither a checksum nor a model fingerprint, so they can be checked neither for
corruption nor against the model they are resumed into; they are refused with a
message saying so.
A Solver's checkpoint also stores the model's fingerprint (``fingerprint.py``). What goes
into a checkpoint (model, RNG and optimizer state) is built by ``training.state``, whose
names this module re-exports as the checkpoint API.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from normgrad._internal.errors import MissingFileError
from normgrad._internal.io import atomic_write
from normgrad.training.fingerprint import STAT_ATTRS
from normgrad.training.state import (
    check_model_state,
    load_model_state,
    model_state,
    optim_configs_from,
    optim_state,
    rng_state_arrays,
    rng_state_from_arrays,
    state_dicts,
    sub_state,
)

__all__ = [
    "STAT_ATTRS",
    "FORMAT",
    "VERSION",
    "state_dicts",
    "model_state",
    "check_model_state",
    "load_model_state",
    "sub_state",
    "save_checkpoint",
    "load_checkpoint",
    "checksum_of",
    "optim_state",
    "optim_configs_from",
    "rng_state_arrays",
    "rng_state_from_arrays",
]

FORMAT = "normgrad-checkpoint"
VERSION = 2
_RESERVED = ("format", "version", "checksum")  # header keys save_checkpoint writes itself


def checksum_of(arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a header and every array: key, dtype, shape and bytes, keys sorted.

    ``header`` is the JSON header without its ``checksum`` entry; it is hashed as
    canonical JSON (sorted keys, no spaces). Each array is hashed in C order, so one
    stored in Fortran order gives the same digest once read back.
    """
    h = hashlib.sha256(f"{FORMAT} {VERSION}\n".encode())
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False)
    h.update(len(text).to_bytes(8, "little") + text.encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        desc = json.dumps([key, arr.dtype.str, list(arr.shape)]).encode()
        h.update(len(desc).to_bytes(8, "little") + desc)
        h.update(arr.nbytes.to_bytes(8, "little"))
        h.update(arr.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, arrays: Mapping[str, Any], meta: dict) -> None:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` as an ``.npz``, atomically.

    The header is ``meta`` plus ``format``, ``version`` and ``checksum`` (entries of
    ``meta`` with those names are replaced). The data go to a temporary file in the same
    folder, which is flushed, fsynced and then renamed over ``path``; if anything fails
    (a full disk, a failed rename, the process dying) before the rename, ``path`` still
    holds its previous contents, byte for byte, and the temporary file is removed.

    Raises:
        TypeError: ``meta`` is not a dict of JSON values (str keys; no NaN or inf).
        ValueError: an array has an object dtype (it would need pickle) or a key is
            ``meta``; nothing is written.
        OSError: the write or the rename failed (the previous file is untouched).
    """
    path = os.fspath(path)
    if not isinstance(meta, dict):
        raise TypeError(
            f"meta must be a dict of JSON values (the checkpoint header); got "
            f"{type(meta).__name__}. Pass e.g. {{'epoch': 3}}."
        )
    checked = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"checkpoint entry names must be non-empty strings; got {key!r}. Name each "
                "array like 'params/W1'."
            )
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(
                f"checkpoint entry {key!r} has dtype object, which can only be stored with "
                "pickle; store numbers and numeric arrays only."
            )
        if key == "meta":
            raise ValueError(
                "checkpoint entry 'meta' is reserved for the checkpoint header; expected "
                "any other key. Rename the entry (e.g. 'run/meta')."
            )
        checked[key] = arr
    header = {k: v for k, v in meta.items() if k not in _RESERVED}
    header.update(format=FORMAT, version=VERSION)
    try:
        header["checksum"] = {"algorithm": "sha256", "digest": checksum_of(checked, header)}
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"meta must hold JSON values only (str keys; numbers, strings, bools, None, "
            f"lists and dicts; no NaN or inf); {e}. Store arrays as checkpoint entries."
        ) from e
    checked["meta"] = np.array(text)  # 0-d unicode, no pickle

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in checked.items():
                with zf.open(f"{key}.npy", mode="w", force_zip64=True) as out:
                    np.lib.format.write_array(out, arr, allow_pickle=False)

    atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``save_checkpoint``: ``(arrays, meta)``.

    Nothing is unpickled (``allow_pickle=False``). Every array is read and the checksum
    verified, so a truncated or corrupt file fails here, not halfway through restoring
    it. ``meta`` is the header, ``format``, ``version`` and ``checksum`` included.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is truncated, corrupt (its checksum does not match), of
            another format version, or not a normgrad checkpoint.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or os.PathLike naming a checkpoint file; got "
            f"{type(path).__name__}. Pass e.g. 'run_epoch_3.npz'."
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(
            f"no checkpoint at {path!r}; expected a file written by save_checkpoint. Check "
            "the path: a Solver names them <checkpoint_name>_epoch_<e>.npz."
        )
    hint = "It may be truncated or corrupt; resume from an earlier checkpoint."
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error
        raise ValueError(f"cannot read checkpoint {path!r}: {e}. {hint}") from e
    meta_arr = arrays.pop("meta", None)
    try:
        if not isinstance(meta_arr, np.ndarray) or meta_arr.ndim or meta_arr.dtype.kind != "U":
            raise ValueError("no 0-d text entry 'meta'")
        meta = json.loads(str(meta_arr[()]))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("wrong format tag")
    except Exception as e:
        raise ValueError(
            f"{path!r} is an .npz file but not a {FORMAT} file (its header is missing or "
            f"unreadable: {e}). {hint}"
        ) from e
    version = meta.get("version")
    if version == 1:
        raise ValueError(
            f"{path!r} is checkpoint format version 1 (normgrad 0.1.0), which "
            "stores no checksum and no model fingerprint, so this normgrad cannot tell "
            "whether it is intact or which model it belongs to; it reads version "
            f"{VERSION} only. Finish that run with normgrad 0.1.0, or start it afresh (new "
            f"checkpoints are version {VERSION})."
        )
    if version != VERSION:
        raise ValueError(
            f"{path!r} is checkpoint format version {version!r}; this normgrad reads "
            f"version {VERSION} only. Resume with the normgrad version that wrote it, or "
            "start the run afresh."
        )
    stored = meta.get("checksum")
    header = {k: v for k, v in meta.items() if k != "checksum"}
    try:
        digest = checksum_of(arrays, header)
    except (TypeError, ValueError) as e:  # a header JSON cannot re-encode (NaN...)
        digest = f"unhashable ({e})"
    if (
        not isinstance(stored, dict)
        or stored.get("algorithm") != "sha256"
        or stored.get("digest") != digest
    ):
        raise ValueError(
            f"checkpoint {path!r} is corrupt: its contents do not match the SHA-256 "
            f"checksum in its header (stored {stored!r}, computed {digest}). A byte was "
            "changed or an entry added, removed or replaced after it was written. Resume "
            "from an earlier checkpoint."
        )
    return arrays, meta
