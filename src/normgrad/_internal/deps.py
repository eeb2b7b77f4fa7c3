"""The one place that imports SymPy, so a missing install fails with the fix spelled out."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pip install normgrad[symbolic]"


def require_sympy() -> ModuleType:
    """Return the ``sympy`` module, or raise ImportError naming the install command.

    Raises:
        ImportError: SymPy is not installed (it is the optional ``symbolic`` extra).
    """
    try:
        import sympy
    except ImportError as exc:  # also covers sys.modules["sympy"] = None
        raise ImportError(
            "normgrad.symbolic needs SymPy, which is not installed. It is the optional "
            f"'symbolic' extra: run `{INSTALL_HINT}` (or `pip install sympy>=1.12`)."
        ) from exc
    return sympy
