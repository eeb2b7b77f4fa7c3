"""Unpickling without running code: a restricted unpickler, and the course's ``load_pickle``.

Unpickling calls whatever callables a file names, so a pickle from the internet can run
any code. ``RestrictedUnpickler`` resolves only the globals of an allow-list and refuses
every other one in ``find_class``, which runs when the pickle *names* a global, before
the REDUCE that would call it: a refused file has executed nothing.

Two allow-lists:

- ``ARRAY_GLOBALS``: what NumPy arrays and scalars need (``_reconstruct``, ``ndarray``,
  ``dtype``, ``_frombuffer`` for protocol 5, ``scalar``) and ``_codecs.encode`` (how
  Python 3 writes ``bytes`` at protocol <= 2). None of these call user code: they build
  arrays from raw bytes. CIFAR-10 batches and object arrays in ``.npz`` files need no more.
- ``DATA_GLOBALS``: those, plus plain data types that only construct values: NumPy's
  scalar types (``np.float32`` stored as a model's dtype), ``set``, ``frozenset``,
  ``complex``, ``bytearray`` and ``collections.OrderedDict``. That is every global a
  pickle of dicts, lists, tuples, strings, numbers and NumPy arrays can name. No class
  of any library is allowed, and no function that could reach one (``getattr``,
  ``copyreg._reconstructor``...).

A "global" whose module is not a dotted Python name (text such as a README.txt that
happens to start with the GLOBAL opcode ``c``) is reported as not a pickle, a plain
``pickle.UnpicklingError``; persistent ids are refused the same way (NumPy arrays and
plain data never use them). Neither resolves or calls anything.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "ARRAY_GLOBALS",
    "DATA_GLOBALS",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load_pickle",
    "restricted_load",
]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle names a global outside the allow-list; nothing in it was run."""


def _numpy_attr(*candidates: str) -> Any:
    """The first ``module.attr`` of ``candidates`` that imports: NumPy 2 moved ``core`` to
    ``_core``, and files name whichever their writer had."""
    for dotted in candidates:
        module, _, attr = dotted.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {candidates} is available in this NumPy")  # pragma: no cover


def _array_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    import codecs

    reconstruct = _numpy_attr(
        "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct"
    )
    scalar = _numpy_attr("numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar")
    frombuffer = _numpy_attr("numpy._core.numeric._frombuffer", "numpy.core.numeric._frombuffer")
    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


def _data_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    allowed = dict(_array_globals())
    scalar_types = (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64, np.longdouble, np.complex64,
        np.complex128,
    )  # fmt: skip
    for t in scalar_types:
        allowed[("numpy", t.__name__)] = t  # how pickle names the type: numpy.float32
    allowed[("numpy", "bool_")] = np.bool_  # NumPy 1's name for numpy.bool
    plain: tuple[Callable[..., Any], ...] = (set, frozenset, complex, bytearray)
    for module in ("builtins", "__builtin__"):  # Python 3 and Python 2 names
        for c in plain:
            allowed[(module, c.__name__)] = c
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    return allowed


ARRAY_GLOBALS: Mapping[tuple[str, str], Callable[..., Any]] = _array_globals()
DATA_GLOBALS: Mapping[tuple[str, str], Callable[..., Any]] = _data_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``allowed``.

    Args:
        file: a binary file object.
        source: how messages name the file.
        allowed: (module, name) -> the object it resolves to.
        error: the exception class raised for a refused global (an ``UnpicklingError``).
        why: the sentence after "it names module.name," saying what the file should hold.
    """

    def __init__(
        self,
        file: IO[bytes],
        source: str,
        allowed: Mapping[tuple[str, str], Callable[..., Any]] = DATA_GLOBALS,
        error: type[pickle.UnpicklingError] = UnsafePickleError,
        why: str = "and only plain data (dicts, lists, numbers, strings, NumPy arrays) is allowed",
    ) -> None:
        # latin1 turns Python 2 ``str`` (keys and raw array bytes) into str; NumPy reads
        # latin1 str array data back as the original bytes.
        super().__init__(file, encoding="latin1")
        self._source = source
        self._allowed = allowed
        self._error = error
        self._why = why

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            pass
        if not (_dotted(module) and _dotted(name)):
            # Text that happens to start with the GLOBAL opcode "c" (a README.txt saying
            # "course models\n..."): not a pickle of anything importable.
            raise pickle.UnpicklingError(
                f"{self._source} is not a pickle: it names {module!r:.40}, which is not a "
                "module path."
            )
        raise self._error(
            f"{self._source}: refused to unpickle it, since it names {module}.{name}, "
            f"{self._why}. Nothing in the file was run."
        )


def _dotted(path: str) -> bool:
    """True for a dotted Python name such as ``os.path`` (what a real global names)."""
    return all(part.isidentifier() for part in path.split("."))


def restricted_load(
    file: IO[bytes],
    source: str,
    allowed: Mapping[tuple[str, str], Callable[..., Any]] = DATA_GLOBALS,
) -> Any:
    """Unpickle one object from a binary file through ``RestrictedUnpickler``.

    Raises:
        UnsafePickleError: the file names a global outside ``allowed`` (nothing ran).
        pickle.UnpicklingError (or EOFError, ValueError...): it is not a valid pickle.
    """
    return RestrictedUnpickler(file, source, allowed).load()


def _binary_file(f: Any) -> None:
    if isinstance(f, io.TextIOBase):
        raise TypeError(
            f"load_pickle needs a file opened in binary mode; got the text file "
            f"{getattr(f, 'name', f)!r}. Open it with open(path, 'rb')."
        )
    if not (callable(getattr(f, "read", None)) and callable(getattr(f, "readline", None))):
        raise TypeError(
            f"load_pickle(f) takes a file opened with open(path, 'rb') (or a path); got "
            f"{type(f).__name__}."
        )


def load_pickle(f: IO[bytes] | str | os.PathLike[str]) -> Any:
    """Unpickle one object of plain data from ``f`` (cs231n ``load_pickle``).

    As the course: Python 2 pickles load too (``str`` decoded as latin1). Unlike the
    course's ``pickle.load``, only plain data is reconstructed: dicts, lists, tuples,
    sets, strings, bytes, numbers, None, NumPy arrays, scalars and dtypes
    (``DATA_GLOBALS``). A pickle that names anything else (a class, ``os.system``...) is
    refused when it names it, before anything is called.

    Args:
        f: a file opened in binary mode (``open(path, 'rb')``), as in the course, or a path.

    Returns:
        The unpickled object.

    Raises:
        TypeError: f is a text-mode file or not a file at all.
        UnsafePickleError (a pickle.UnpicklingError and a ValueError): the pickle names
            a global outside the allow-list; nothing in it was run.
        pickle.UnpicklingError, EOFError: the data is not a (complete) pickle.
    """
    if isinstance(f, (str, os.PathLike)):
        path = Path(f)
        with open(path, "rb") as fh:
            return restricted_load(fh, str(path))
    _binary_file(f)
    return restricted_load(f, str(getattr(f, "name", "the pickle")))
