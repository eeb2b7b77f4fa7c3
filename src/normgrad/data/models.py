"""The course's ``load_models``: every model pickle in a folder, without running code.

The course pickles each model as a dict with a ``'model'`` entry and loads a folder of
them with ``pickle.load``, which would run anything a file names. Here every file goes
through ``data.safe_pickle``'s restricted unpickler with ``DATA_GLOBALS``: a model is
reconstructed only from plain data, which is what the course's model files hold (a dict
of parameter arrays such as ``{'W1': ..., 'b1': ...}``).

What is safe, and so what is allowed: dicts, lists, tuples, sets, strings, bytes,
numbers, None, NumPy arrays, NumPy scalars and dtypes. Objects of classes are not
reconstructed, not even normgrad's own models: rebuilding an object sets attributes
without running its ``__init__`` checks, from values the file chooses. To save a model,
save its parameters, ``pickle.dump({'model': model.params}, f)``, or use normgrad's
checkpoints (``normgrad.training.checkpoint``), which also verify what they load.
"""

from __future__ import annotations

import os
from typing import Any

from normgrad._internal.errors import MissingFileError
from normgrad.data import checks
from normgrad.data.checks import DataFileError
from normgrad.data.safe_pickle import DATA_GLOBALS, RestrictedUnpickler, UnsafePickleError

_HOW_TO_SAVE = (
    "load_models reads files that hold {'model': ...} of plain data (dicts, lists, "
    "numbers, strings, NumPy arrays): save a model's parameters with "
    "pickle.dump({'model': model.params}, f), or move the file out of the folder."
)


def load_models(models_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Load every model file in ``models_dir`` (cs231n).

    As the course: each file is unpickled and its ``'model'`` entry kept, and a file that
    is not a pickle at all (a README.txt) is skipped. Unlike the course, only plain data
    is reconstructed (see the module docstring), files are read in sorted name order,
    and subfolders are skipped.

    Args:
        models_dir: the folder of model files.

    Returns:
        {file name: the file's 'model' entry}.

    Raises:
        TypeError: models_dir is not a str or path.
        ValueError: models_dir is the empty string.
        FileNotFoundError / NotADirectoryError: no such folder, or it is a file.
        UnsafePickleError (a pickle.UnpicklingError and a ValueError): a file names a
            global outside the plain-data allow-list (a class, ``os.system``...). It is
            refused when it names it, before anything is called: nothing in it ran.
        DataFileError (a ValueError): a file unpickles, but not to a dict with a
            'model' entry.
    """
    folder = checks.path_arg(models_dir, "models_dir", "the folder of model files")
    if not folder.exists():
        raise MissingFileError(f"models_dir {folder} does not exist; pass the folder of models.")
    if not folder.is_dir():
        raise NotADirectoryError(f"models_dir {folder} is a file; pass the folder that holds it.")
    models: dict[str, Any] = {}
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if not path.is_file():
            continue
        with open(path, "rb") as f:
            try:
                content = RestrictedUnpickler(f, str(path), DATA_GLOBALS).load()
            except UnsafePickleError as exc:
                raise UnsafePickleError(f"{exc} {_HOW_TO_SAVE}") from None
            except Exception:  # not a pickle (README.txt): skipped, as the course does
                continue
        if not isinstance(content, dict) or "model" not in content:
            what = (
                f"a dict with keys {sorted(map(str, content))[:8]}"
                if isinstance(content, dict)
                else f"a {type(content).__name__}"
            )
            raise DataFileError(
                f"{path} is not a model file: it holds {what}, not a dict with a 'model' "
                f"entry. {_HOW_TO_SAVE}"
            )
        models[name] = content["model"]
    return models
