"""Fused fast paths (numba, the ``fast`` extra): the reference maths in fewer passes.

One fused route per normalization, each the ``fused`` route of its ``NormSpec``:
``batchnorm`` (and ``renorm``, batch renormalization), ``spatial`` (spatial batch norm,
NCHW without a transpose), ``layer`` (``layernorm_*`` and ``layernorm_nd_*``), ``rms``,
``group`` and ``instance``; and for the model sandwiches, ``conv`` (im2col and col2im
without copies) and ``pool`` (max pooling, ReLU, and the two together), which give the
reference's results bit for bit. ``kernels.rows``, ``columns`` and ``planes`` hold the
loops; ``_runtime`` how they are compiled, chunked and threaded.

Each normalization kernel gives the same results as its reference route in
``normgrad.norms`` (tested to 1e-12 in float64, 1e-5 relative in float32) and shares
its input checks, so it accepts and rejects exactly the same inputs, with the same
messages. The kernels are compiled for float32 and float64, on first use, and cached on
disk; any other floating dtype, empty inputs, and calls whose statistics come out
extreme (over- or underflow, NaN or inf in x) take the reference route inside the same
call, so a fused call never answers differently. Results are deterministic: the same
bits on every run and for any ``numba.set_num_threads``.

Whether the models use them: ``use_fused(False)`` (or the environment variable
``NORMGRAD_FUSED=0`` at import) makes every model sandwich run the reference routes;
``fused_enabled()`` says what they do now. This module imports without numba; its
kernel functions (``normgrad.kernels.batchnorm_forward_fused``...) need it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from normgrad.kernels.batchnorm import (
        FusedBatchNormCache,
        batchnorm_backward_fused,
        batchnorm_forward_fused,
    )

__all__ = [
    "FusedBatchNormCache",
    "available",
    "batchnorm_backward_fused",
    "batchnorm_forward_fused",
    "fused_enabled",
    "use_fused",
]

#: Off when the environment says so at import: NORMGRAD_FUSED=0 (or false, no, off).
_ENABLED = os.environ.get("NORMGRAD_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")
_AVAILABLE: bool | None = None


def available() -> bool:
    """Whether numba is installed, so that the fused kernels can run."""
    global _AVAILABLE
    if _AVAILABLE is None:
        _AVAILABLE = importlib.util.find_spec("numba") is not None
    return _AVAILABLE


def use_fused(enabled: bool) -> bool:
    """Make the model sandwiches use the fused kernels (True) or the reference (False).

    Returns the previous setting, so that ``prev = use_fused(False); ...;
    use_fused(prev)`` restores it. Caches keep the route that made them: a backward
    pass always runs the route of its own forward pass. Without numba the sandwiches
    use the reference whatever the setting.

    Raises:
        TypeError: ``enabled`` is not a bool.
    """
    global _ENABLED
    if not isinstance(enabled, bool):
        raise TypeError(
            f"use_fused takes True or False; got {enabled!r} ({type(enabled).__name__})."
        )
    previous, _ENABLED = _ENABLED, enabled
    return previous


def fused_enabled() -> bool:
    """True when the model sandwiches run the fused kernels: enabled, and numba installed."""
    return _ENABLED and available()


def __getattr__(name: str) -> Any:
    """``normgrad.kernels.batchnorm_forward_fused`` and friends, imported on first use."""
    if name in ("FusedBatchNormCache", "batchnorm_backward_fused", "batchnorm_forward_fused"):
        return getattr(importlib.import_module("normgrad.kernels.batchnorm"), name)
    raise AttributeError(f"module 'normgrad.kernels' has no attribute {name!r}")
