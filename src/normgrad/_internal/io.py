"""Atomic file writes: a reader sees the old file or the new one, never half of one.

``atomic_write(path, write)`` is the one place in normgrad that replaces a file. It
hands ``write`` the name of a fresh temporary file in ``path``'s folder, then

1. fsyncs that file, so its bytes are on disk before it gets the final name;
2. renames it over ``path`` with ``os.replace`` (atomic on POSIX and Windows, since
   the temporary file is on the same file system);
3. fsyncs the folder, where the platform allows it, so the rename itself survives a
   crash.

If ``write`` (or anything before the rename) raises, the temporary file is removed
and ``path`` keeps its previous contents. A process killed mid-write can leave a
stray temporary file, named ``.tmp-<stem>-<random><suffix>``: hidden, and never
mistaken for the real file. It keeps the target's suffix, so writers that infer the
format from the name (``fig.savefig``) write the right format.

Used by checkpoints (``normgrad.training.checkpoint``), ``normgrad train`` outputs and the
experiments' summaries and figures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable

from normgrad._internal.errors import MissingFileError

__all__ = ["atomic_write"]

TEMP_PREFIX = ".tmp-"


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file, then it is renamed.

    Args:
        path: the file to create or replace. Its folder must exist.
        write: called once with the temporary file's name (a str); it must write the
            whole contents there and close the file. Its return value is ignored.

    Raises:
        FileNotFoundError: ``path``'s folder does not exist (nothing is written).
        Whatever ``write`` raises: then the temporary file is removed and ``path`` is
        left exactly as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise MissingFileError(
            f"cannot write {path!r}: its folder {folder!r} does not exist. Create it first "
            "(os.makedirs(folder, exist_ok=True)) or choose another path."
        )
    stem, suffix = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{stem}-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_file(name: str) -> None:
    """Flush the file's data to disk (opened read-write: Windows needs that to flush)."""
    fd = os.open(name, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable; skipped where folders cannot be opened or synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder this way
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
