"""Check cases for the model sandwiches with every registered normalization in them.

``affine_norm_relu`` gets one case per fully connected block (``models.blocks.FC_BLOCKS``)
and ``conv_norm_relu_pool`` one per conv block (``CONV_BLOCKS``) plus the case without
a normalization; a block with a train mode (batch norm) gets a test-mode case too, with
fixed non-trivial running statistics. A new normalization that declares a block is
checked inside the sandwich with nothing added here.

The inputs keep every ReLU input and every pooling window clear of its kink
(``op_cases._redraw``). A layer that cancels a per-feature bias in train mode
(``Block.cancels_bias``, batch norm) has db exactly 0, a gradient with no relative
error to check: such cases hold b at ``op_cases._B_FIXED`` and check the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from normgrad.models import blocks as lu
from normgrad.norms.spec import Block, CheckCase, Inputs
from normgrad.ops.fast import conv_forward_fast
from normgrad.tools.op_cases import _B_FIXED, _clear_of_zero, _no_near_ties, _redraw

_CONV = {"stride": 1, "pad": 1}  # 3x3 conv keeps 3x3
_POOL = {"pool_height": 2, "pool_width": 2, "stride": 1}  # overlapping windows
_G = 2  # group norm: 2 groups of 2 channels, so a per-channel bias is not cancelled
_GRADS = ("x", "w", "b", "gamma", "beta")  # the sandwiches' gradients, in their order


def _param(block: Block | None, mode: str, F: int) -> dict[str, Any] | None:
    """A fresh norm_param; a test-mode case gets fixed, non-trivial running statistics."""
    if block is None:
        return None
    param = block.init_param()
    if block.train_mode:
        param["mode"] = mode
        if mode == "test":
            param["running_mean"] = 0.2 * np.arange(F) - 0.3
            param["running_var"] = 0.5 + 0.25 * np.arange(F)
    return param


def _case(layer: str, kind: str, name: str | None, mode: str) -> CheckCase:
    block = None if name is None else (lu.FC_BLOCKS if kind == "fc" else lu.CONV_BLOCKS)[name]
    F = 3 if kind == "fc" else 4  # features (fc) or filters (conv)
    fixed_b = block is not None and block.cancels_bias and mode == "train"
    names = ["x", "w"] + ([] if fixed_b else ["b"])
    if block is not None:
        names += ["gamma"] + (["beta"] if block.shift else [])

    def sandwich(i: Inputs, activation: str | None = "relu") -> tuple[np.ndarray, Any]:
        b = i.get("b", _B_FIXED[:F])
        param = _param(block, mode, F)
        if kind == "fc":
            return lu.affine_norm_act_forward(
                i["x"], i["w"], b, i.get("gamma"), i.get("beta"), param, name, activation
            )
        if activation is None:  # conv and the normalization: what ReLU and the pool see
            a, _ = conv_forward_fast(i["x"], i["w"], b, _CONV)
            if block is not None:
                options = {"G": _G} if "G" in block.options else {}
                a, _ = block.forward(a, i.get("gamma"), i.get("beta"), param, **options)
            return a, None
        return lu.conv_norm_relu_pool_forward(
            i["x"], i["w"], b, i.get("gamma"), i.get("beta"), _CONV, _POOL, param, name, G=_G
        )

    def draw(r: np.random.Generator) -> Inputs:
        if kind == "fc":
            inputs = {
                "x": r.standard_normal((5, 4)),
                "w": r.standard_normal((4, F)),
                "b": r.standard_normal(F),
            }
        else:
            inputs = {
                "x": r.standard_normal((2, 2, 3, 3)),
                "w": r.standard_normal((F, 2, 3, 3)),
                "b": r.standard_normal(F),
            }
        if block is not None:
            shape = block.param_shape(F)
            inputs["gamma"] = 1.0 + 0.3 * r.standard_normal(shape)
            inputs["beta"] = 0.3 * r.standard_normal(shape)
        return {k: inputs[k] for k in names}

    def ok(i: Inputs) -> bool:
        a, _ = sandwich(i, activation=None)  # the ReLU's input
        if kind == "fc":
            return _clear_of_zero(a)
        return _clear_of_zero(a) and _no_near_ties(np.maximum(a, 0), _POOL)

    def forward(*arrays: np.ndarray) -> tuple[np.ndarray, Any]:
        return sandwich(dict(zip(names, arrays, strict=True)))

    backward_fn = lu.affine_norm_act_backward if kind == "fc" else lu.conv_norm_relu_pool_backward

    def backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray | None, ...]:
        grads = dict(zip(_GRADS, backward_fn(dout, cache), strict=True))
        return tuple(grads[n] for n in names)

    route = name or "none"
    if block is not None and block.train_mode:
        route += f" {mode}"
    return CheckCase(layer, route, forward, backward, lambda rng: _redraw(rng, draw, ok))


def _cases(layer: str, kind: str, blocks: dict[str, Block], with_none: bool) -> list[CheckCase]:
    out = [_case(layer, kind, None, "train")] if with_none else []
    for name, block in blocks.items():
        for mode in ("train", "test") if block.train_mode else ("train",):
            out.append(_case(layer, kind, name, mode))
    return out


CASES: list[CheckCase] = [
    *_cases("affine_norm_relu", "fc", lu.FC_BLOCKS, with_none=False),
    *_cases("conv_norm_relu_pool", "conv", lu.CONV_BLOCKS, with_none=True),
]
