"""Can this path be written? Checked before any work starts, so no run is lost to it.

Each check returns a one-line problem (naming the flag or argument, what is wrong and how
to fix it), or None when the path is fine. The CLI turns a problem into a usage error;
``tools.train.TrainConfig.problems`` collects them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def _writable_folder(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def file_problem(flag: str, path: str | None, suffixes: Sequence[str] = ()) -> str | None:
    """What stops ``path`` (if given) from being written as a file, or None.

    Its folder must exist and be writable, ``path`` must not be a folder, and its suffix
    must be one of ``suffixes`` when they are given.
    """
    if not path:
        return None
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        return f"{flag} needs a {', '.join(suffixes)} file name; got {path!r}."
    if p.is_dir():
        return f"{flag} {path} is a folder; pass a file name inside it."
    folder = p.resolve().parent
    if not folder.is_dir():
        return f"{flag} {path}: folder {folder} does not exist; create it first."
    if not _writable_folder(folder):
        return f"{flag} {path}: folder {folder} is not writable; choose another path."
    if p.exists() and not os.access(p, os.W_OK):
        return f"{flag} {path} exists and is not writable; choose another path."
    return None


def dir_problem(flag: str, path: str | None) -> str | None:
    """What stops ``path`` (if given) from being, or being made, a writable folder, or None."""
    if not path:
        return None
    p = Path(path).resolve()
    if p.exists() and not p.is_dir():
        return f"{flag} {path} is a file; pass a folder."
    existing = p
    while not existing.exists():  # the nearest ancestor that exists decides
        existing = existing.parent
    if not existing.is_dir():
        return f"{flag} {path}: {existing} is a file, so the folder cannot be made."
    if not _writable_folder(existing):
        return f"{flag} {path}: {existing} is not writable; choose another folder."
    return None
