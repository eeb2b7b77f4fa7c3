"""``UsageError``: a mistake in how a command was called, reported in one line (exit 2).

The CLI turns a ``UsageError`` into ``normgrad COMMAND: error: MESSAGE`` on stderr and
exit status 2, as argparse does for a bad flag. Every other exception is a bug or a
failure, and propagates with its traceback (exit status 1).
"""

from __future__ import annotations


class UsageError(ValueError):
    """A user mistake on the command line: a bad flag value, a missing file or extra."""


class MissingFileError(FileNotFoundError, ValueError):
    """A file or folder the caller named does not exist.

    A ``FileNotFoundError``, as Python code expects of a missing file, and a
    ``ValueError``, as every other bad argument to normgrad is: ``except ValueError``
    catches every refusal. The message names the path and says how to fix it.
    """
