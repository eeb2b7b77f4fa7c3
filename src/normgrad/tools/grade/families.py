"""The course functions the grader knows: names, calling conventions, reference results.

A ``Family`` is one forward pass and the backward passes that take its cache, under the
course's names (cs231n assignment 2: ``layers.py`` and ``fast_layers.py``). It says how
to call a forward on a ``cases.Case`` (argument order, parameter dict), which outputs
to compare, and how normgrad's reference computes them. The losses are one function
returning ``(loss, dx)``; dropout is judged by its own rules (``compare.judge_dropout``),
since a student's mask comes from their own random draws.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from normgrad.norms import batch, group, layer, spatial
from normgrad.ops import activations, affine, conv, dropout, fast, losses, pool
from normgrad.tools.grade import cases
from normgrad.tools.grade.cases import Case

Outputs = dict[str, Any]


@dataclass(frozen=True)
class Family:
    """One course forward, its backwards, and how to grade them."""

    name: str
    forward: str  # the course's name of the forward (or of the loss)
    backwards: tuple[str, ...]  # the backward names that take the forward's cache
    grads: tuple[str, ...]  # the backward's results, in order: ("dx", "dgamma", "dbeta")
    make_cases: Callable[[np.random.Generator], list[Case]]
    args: Callable[[Case, dict[str, Any] | None], list[Any]]  # the forward's arguments
    ref_forward: Callable[..., Any]
    ref_backward: Callable[..., Any] | None
    view: str | None = None  # its ``views`` kind, for the mistake catalog and the paths
    running: bool = False  # train mode writes running_mean / running_var into the param
    loss: bool = False  # the function returns (loss, dx)
    smooth: bool = True  # finite differences of its forward mean something

    @property
    def names(self) -> tuple[str, ...]:
        return (self.forward, *self.backwards)

    def fresh_param(self, case: Case) -> dict[str, Any] | None:
        return copy.deepcopy(case.param) if case.param is not None else None

    def outputs(self, result: Any, case: Case, param: dict[str, Any] | None) -> tuple[Outputs, Any]:
        """A forward's (or a loss's) return value as named outputs, and its cache."""
        tag = "" if case.mode == "train" else " (test)"
        if self.loss:
            loss, dx = result
            return {"loss": loss, "dx": dx}, None
        out, cache = result
        named: Outputs = {f"out{tag}": out}
        if self.running and case.mode == "train" and isinstance(param, dict):
            named["running_mean"] = param.get("running_mean")
            named["running_var"] = param.get("running_var")
        return named, cache

    def reference(self, case: Case) -> tuple[Outputs, dict[str, np.ndarray], Any]:
        """normgrad's outputs and gradients on ``case``, and the param dict after the call."""
        param = self.fresh_param(case)
        result = self.ref_forward(*self.args(case, param))
        named, cache = self.outputs(result, case, param)
        grads: dict[str, np.ndarray] = {}
        if self.ref_backward is not None and case.backward and case.dout is not None:
            got = self.ref_backward(case.dout.copy(), cache)
            got = got if isinstance(got, tuple) else (got,)
            grads = dict(zip(self.grads, got, strict=True))
        return named, grads, param


def _norm_args(case: Case, param: dict[str, Any] | None) -> list[Any]:
    i = case.inputs
    return [i["x"].copy(), i["gamma"].copy(), i["beta"].copy(), param]


def _group_args(case: Case, param: dict[str, Any] | None) -> list[Any]:
    i = case.inputs
    return [i["x"].copy(), i["gamma"].copy(), i["beta"].copy(), case.extra["G"], param]


def _xwb_args(case: Case, param: dict[str, Any] | None) -> list[Any]:
    i = case.inputs
    return [i["x"].copy(), i["w"].copy(), i["b"].copy(), *([param] if param is not None else [])]


def _x_args(case: Case, param: dict[str, Any] | None) -> list[Any]:
    return [case.inputs["x"].copy(), *([param] if param is not None else [])]


def _loss_args(case: Case, param: dict[str, Any] | None) -> list[Any]:
    return [case.inputs["x"].copy(), case.extra["y"].copy()]


def _conv(name: str, forward: str, backward: str, ref_f: Callable, ref_b: Callable) -> Family:
    return Family(
        name, forward, (backward,), ("dx", "dw", "db"), cases.conv, _xwb_args, ref_f, ref_b
    )


def _pool(name: str, forward: str, backward: str, make: Callable, ref_f, ref_b) -> Family:
    return Family(name, forward, (backward,), ("dx",), make, _x_args, ref_f, ref_b, smooth=False)


FAMILIES: tuple[Family, ...] = (
    Family(
        "batchnorm",
        "batchnorm_forward",
        ("batchnorm_backward", "batchnorm_backward_alt"),
        ("dx", "dgamma", "dbeta"),
        cases.batchnorm,
        _norm_args,
        batch.batchnorm_forward,
        batch.batchnorm_backward_alt,
        view="batch",
        running=True,
    ),
    Family(
        "layernorm",
        "layernorm_forward",
        ("layernorm_backward",),
        ("dx", "dgamma", "dbeta"),
        cases.layernorm,
        _norm_args,
        layer.layernorm_forward,
        layer.layernorm_backward,
        view="layer",
    ),
    Family(
        "spatial_batchnorm",
        "spatial_batchnorm_forward",
        ("spatial_batchnorm_backward",),
        ("dx", "dgamma", "dbeta"),
        cases.spatial_batchnorm,
        _norm_args,
        spatial.spatial_batchnorm_forward,
        spatial.spatial_batchnorm_backward,
        view="spatial",
        running=True,
    ),
    Family(
        "spatial_groupnorm",
        "spatial_groupnorm_forward",
        ("spatial_groupnorm_backward",),
        ("dx", "dgamma", "dbeta"),
        cases.groupnorm,
        _group_args,
        group.spatial_groupnorm_forward,
        group.spatial_groupnorm_backward,
        view="group",
    ),
    Family(
        "affine",
        "affine_forward",
        ("affine_backward",),
        ("dx", "dw", "db"),
        cases.affine,
        _xwb_args,
        affine.affine_forward,
        affine.affine_backward,
    ),
    Family(
        "relu",
        "relu_forward",
        ("relu_backward",),
        ("dx",),
        cases.relu,
        _x_args,
        activations.relu_forward,
        activations.relu_backward,
        smooth=False,
    ),
    Family(
        "dropout",
        "dropout_forward",
        ("dropout_backward",),
        ("dx",),
        cases.dropout,
        _x_args,
        dropout.dropout_forward,
        dropout.dropout_backward,
        smooth=False,
    ),
    _conv(
        "conv_naive",
        "conv_forward_naive",
        "conv_backward_naive",
        conv.conv_forward_naive,
        conv.conv_backward_naive,
    ),
    _conv(
        "conv_fast",
        "conv_forward_fast",
        "conv_backward_fast",
        fast.conv_forward_fast,
        fast.conv_backward_fast,
    ),
    _conv(
        "conv_im2col",
        "conv_forward_im2col",
        "conv_backward_im2col",
        fast.conv_forward_fast,
        fast.conv_backward_fast,
    ),
    _conv(
        "conv_strides",
        "conv_forward_strides",
        "conv_backward_strides",
        fast.conv_forward_fast,
        fast.conv_backward_fast,
    ),
    _pool(
        "pool_naive",
        "max_pool_forward_naive",
        "max_pool_backward_naive",
        cases.pool,
        pool.max_pool_forward_naive,
        pool.max_pool_backward_naive,
    ),
    _pool(
        "pool_fast",
        "max_pool_forward_fast",
        "max_pool_backward_fast",
        cases.pool_tiling,
        fast.max_pool_forward_fast,
        fast.max_pool_backward_fast,
    ),
    _pool(
        "pool_im2col",
        "max_pool_forward_im2col",
        "max_pool_backward_im2col",
        cases.pool_tiling,
        fast.max_pool_forward_fast,
        fast.max_pool_backward_fast,
    ),
    _pool(
        "pool_reshape",
        "max_pool_forward_reshape",
        "max_pool_backward_reshape",
        cases.pool_tiling,
        fast.max_pool_forward_reshape,
        fast.max_pool_backward_reshape,
    ),
    Family(
        "softmax_loss",
        "softmax_loss",
        (),
        (),
        cases.softmax,
        _loss_args,
        losses.softmax_loss,
        None,
        loss=True,
    ),
    Family(
        "svm_loss",
        "svm_loss",
        (),
        (),
        cases.svm,
        _loss_args,
        losses.svm_loss,
        None,
        loss=True,
        smooth=False,
    ),
)

BY_NAME = {f.name: f for f in FAMILIES}
#: Every course function name the grader knows -> its family.
COURSE_NAMES: dict[str, Family] = {n: f for f in FAMILIES for n in f.names}


def family_of(function: str) -> Family:
    """The family a course function belongs to.

    Raises:
        KeyError: not a course function the grader knows.
    """
    return COURSE_NAMES[function]
