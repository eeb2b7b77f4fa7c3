"""Machine-checked derivations: exact SymPy proofs of every backward route.

For each normalization with a ``symbolic`` entry in its spec, at small shapes, the forward
pass is built from symbols (eps a positive symbol), L = sum(dout * y) is differentiated
exactly, and each backward route, written symbolically statement by statement like its
NumPy code, is proved equal to that gradient (``core`` explains the decision procedure).
``tie`` then evaluates the library's NumPy routes at random float64 points against the
lambdified exact gradient, and ``seed`` gives a verdict on every formula of the seed
notebook. ``report`` runs and prints the proofs for ``normgrad derive`` (``normgrad.cli.derive``).

SymPy is the optional ``symbolic`` extra: without it, importing this package raises
ImportError naming the fix, ``pip install normgrad[symbolic]``.
"""

from normgrad._internal.deps import INSTALL_HINT, require_sympy

require_sympy()

from normgrad.symbolic.core import Verdict, compare, format_verdict  # noqa: E402
from normgrad.symbolic.registry import build, default_shapes, layers  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "Verdict",
    "build",
    "compare",
    "default_shapes",
    "format_verdict",
    "layers",
    "require_sympy",
]
