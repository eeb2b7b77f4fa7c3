"""What PATH names: a file, a course folder, a module, or module:function. Never executed here.

``resolve`` turns the command line's PATH into the modules the worker will import and the
``sys.path`` entries they need, and reads each file with ``ast`` (parsing, not running)
to refuse at once a PATH that defines no course function:

- ``cs231n/layers.py``: that file. Inside a package (folders with ``__init__.py``) it is
  imported as ``cs231n.layers``, so its relative imports work;
- ``cs231n/`` (or the assignment folder holding it): ``layers.py`` and ``fast_layers.py``
  when present, else every ``*.py`` directly inside except ``setup.py`` (never run);
- ``mypkg.layers``: a dotted module found under the current folder or ``sys.path``;
- any of these followed by ``:function``, e.g. ``cs231n/layers.py:batchnorm_backward_alt``:
  only that function is graded (its forward still provides the cache).
"""

from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from normgrad._internal.errors import UsageError
from normgrad.tools.grade.families import COURSE_NAMES

COURSE_FILES = ("layers.py", "fast_layers.py")
SKIP = ("setup.py", "__init__.py", "conftest.py")


@dataclass
class Target:
    """The modules to import (name, file), the sys.path they need, and the selection."""

    text: str
    modules: list[tuple[str, Path]] = field(default_factory=list)
    sys_path: list[str] = field(default_factory=list)
    select: str | None = None
    syntax_errors: list[str] = field(default_factory=list)


def _bound_names(path: Path) -> tuple[set[str], bool]:
    """(names bound at the top level, whether a `from ... import *` may bind more)."""
    tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    names: set[str] = set()
    star = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    star = True
                else:
                    names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):
            star = True  # conditional definitions: let the import decide
    return names, star


def _module_name(path: Path) -> tuple[str, str]:
    """(dotted name, the sys.path entry) of a file, package-aware."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    name = ".".join(parts)
    if len(parts) == 1 and (path.stem in sys.stdlib_module_names or path.stem in sys.modules):
        name = f"graded_{path.stem}"  # never shadow a module the grader itself imports
    return name, str(folder)


def _find_module(dotted: str) -> Path | None:
    rel = Path(*dotted.split("."))
    for base in [os.getcwd(), *sys.path]:
        for cand in (Path(base) / rel.with_suffix(".py"), Path(base) / rel / "__init__.py"):
            if base and cand.is_file():
                return cand
    return None


def _files_of(folder: Path) -> list[Path]:
    if (folder / "cs231n").is_dir() and not (folder / "layers.py").is_file():
        folder = folder / "cs231n"
    known = [folder / f for f in COURSE_FILES if (folder / f).is_file()]
    if known:
        return known
    return sorted(p for p in folder.glob("*.py") if p.name not in SKIP)


def resolve(text: str) -> Target:
    """The ``Target`` of PATH ``text``.

    Raises:
        UsageError: no such file, folder or module; nothing gradable in it; or a
            ``:function`` that is not a course function or not defined there.
    """
    target = Target(text)
    where, _, select = text.rpartition(":") if ":" in text else (text, "", "")
    if select and not select.isidentifier():
        where, select = text, ""
    target.select = select or None
    if target.select is not None and target.select not in COURSE_NAMES:
        raise UsageError(
            f"{target.select!r} is not a course function normgrad can grade; choose one of "
            f"{', '.join(sorted(COURSE_NAMES))}."
        )
    path = Path(where).expanduser()
    if path.is_dir():
        files = _files_of(path)
        if not files:
            raise UsageError(
                f"{where} holds no .py file to grade (looked for {', '.join(COURSE_FILES)})."
            )
    elif path.is_file():
        if path.suffix != ".py":
            raise UsageError(
                f"{where} is not a Python file (.py); give a .py file, a folder or a module."
            )
        files = [path]
    else:
        found = _find_module(where) if where.replace(".", "").replace("_", "").isalnum() else None
        if found is None:
            raise UsageError(
                f"no such file, folder or module: {where!r}. Give a .py file "
                "(cs231n/layers.py), a course folder (cs231n/) or a module (pkg.layers)."
            )
        files = [found]
    gradable = False
    for f in files:
        f = f.resolve()
        try:
            names, star = _bound_names(f)
        except SyntaxError as exc:
            target.syntax_errors.append(f"{f.name}, line {exc.lineno}: {exc.msg}")
            continue
        if target.select is not None:
            gradable |= target.select in names or star
        else:
            gradable |= star or bool(names & set(COURSE_NAMES))
        name, root = _module_name(f)
        target.modules.append((name, f))
        if root not in target.sys_path:
            target.sys_path.append(root)
    if target.syntax_errors and not target.modules:
        return target  # reported as a failed grade (exit 1): the code, not the PATH, is wrong
    if not gradable:
        what = target.select or "any course function (batchnorm_forward, affine_backward, ...)"
        raise UsageError(f"nothing gradable: {where} does not define {what}.")
    return target
