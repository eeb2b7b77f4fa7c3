"""Machine-checked derivations: exact SymPy proofs of every backward route (issue 6).

For each normalization (batch, layer, group, instance, RMS) at small shapes, the forward
pass is built from symbols (eps a positive symbol), L = sum(dout * y) is differentiated
exactly, and each backward route, written symbolically statement by statement like its
NumPy code, is proved equal to that gradient (``core`` explains the decision procedure).
``tie`` then evaluates the library's NumPy routes at random float64 points against the
lambdified exact gradient, and ``seed`` gives a verdict on every formula of the seed
notebook. ``normgrad derive`` is the command line (``command``).

SymPy is the optional ``symbolic`` extra: without it, importing this package raises
ImportError naming the fix, ``pip install normgrad[symbolic]``.
"""

from normgrad.symbolic._deps import INSTALL_HINT, require_sympy

require_sympy()

from normgrad.symbolic.core import Verdict, compare, format_verdict  # noqa: E402
from normgrad.symbolic.registry import LAYERS, build, default_shapes  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "LAYERS",
    "Verdict",
    "build",
    "compare",
    "default_shapes",
    "format_verdict",
    "require_sympy",
]
