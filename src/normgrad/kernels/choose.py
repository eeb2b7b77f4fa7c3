"""Which routes the model sandwiches run: the fused kernels, or the reference's.

Imports no numba itself: the kernel modules are loaded on the first call that uses them.

- The convolution, pooling, ReLU and affine kernels (``kernels.conv``, ``kernels.pool``,
  ``kernels.affine``) give the reference's results bit for bit, so the sandwiches use
  them in every dtype whenever ``fused_enabled()``.
- The normalizations' fused routes agree with the reference to rounding, not bit for bit
  (they sum in another order). The sandwiches use them for float32 activations, the
  dtype the course trains in (its models default to float32); float64, the dtype of the
  gradient checks and of the course's printed reference values, keeps the reference
  routes, so those values and checks hold exactly.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from normgrad import kernels
from normgrad.norms.spec import Block, FusedBlock
from normgrad.ops.activations import relu_backward as _relu_backward
from normgrad.ops.affine import affine_backward as _affine_backward
from normgrad.ops.affine import affine_forward as _affine_forward
from normgrad.ops.fast import conv_backward_fast, conv_forward_fast

_BLOCKS: dict[tuple[str, str], FusedBlock | None] = {}
_MODULES: dict[str, ModuleType | None] = {}


def _module(name: str) -> ModuleType | None:
    if name not in _MODULES:
        try:
            _MODULES[name] = importlib.import_module(f"normgrad.kernels.{name}")
        except ImportError:  # pragma: no cover - without numba
            _MODULES[name] = None
    return _MODULES[name]


def ops(name: str) -> Any:
    """``kernels.conv``, ``pool``, ``affine`` or ``rules`` when the fused kernels are on,
    else None."""
    return _module(name) if kernels.fused_enabled() else None


def pool_module() -> Any:
    """``kernels.pool`` whatever the setting (for a backward pass whose forward used it)."""
    module = _module("pool")
    assert module is not None, "a relu_pool cache exists only after kernels.pool ran"
    return module


def norm(block: Block, x: Any) -> FusedBlock | None:
    """The block's fused pair for activations x, or None (use the block's own functions).

    Fused for float32 x when the fused kernels are on and the block has a fused route.
    """
    if not isinstance(x, np.ndarray):
        return None
    return norm_for(block, x.dtype)


def norm_for(block: Block, dtype: np.dtype) -> FusedBlock | None:
    """``norm`` for activations of this dtype, before they exist."""
    if block.fused is None or dtype != np.float32:
        return None
    if not kernels.fused_enabled():
        return None
    key = (block.kind, block.name)
    if key not in _BLOCKS:
        try:
            _BLOCKS[key] = block.fused()
        except ImportError:  # pragma: no cover - without numba
            _BLOCKS[key] = None
    return _BLOCKS[key]


# The sandwiches' convolution, ReLU and affine: the fused kernels when on, else ops'.


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    """``ops.affine.affine_forward``, or its fused twin (same results)."""
    fast = ops("affine")
    return (_affine_forward if fast is None else fast.affine_forward_fused)(x, w, b)


def affine_backward(dout: np.ndarray, cache: Any, need_dx: bool) -> Any:
    """``ops.affine.affine_backward``, or its fused twin (same results)."""
    fast = ops("affine")
    return (_affine_backward if fast is None else fast.affine_backward_fused)(dout, cache, need_dx)


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: Any) -> Any:
    """``ops.fast.conv_forward_fast``, or its fused twin (same results)."""
    fast = ops("conv")
    return (conv_forward_fast if fast is None else fast.conv_forward_fused)(x, w, b, conv_param)


def conv_backward(dout: np.ndarray, cache: Any, need_dx: bool = True) -> Any:
    """``ops.fast.conv_backward_fast``, or its fused twin (same results)."""
    fast = ops("conv")
    return (conv_backward_fast if fast is None else fast.conv_backward_fused)(dout, cache, need_dx)


def relu_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """``ops.activations.relu_backward``, or its fused twin (same results)."""
    fast = ops("pool")
    return (_relu_backward if fast is None else fast.relu_backward_fused)(dout, cache)
