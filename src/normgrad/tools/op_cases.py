"""Check cases for the course's other layers (affine, relu, conv, pool, dropout, losses...).

Every layer here is piecewise smooth: ReLU, max pooling and the SVM hinge have kinks, and
a finite difference that straddles one measures nothing. So the inputs are drawn (or
redrawn) to keep every kink at least ``_MARGIN`` away from where the stencil reaches:
pre-activations away from 0, pooling windows without near-ties, hinge margins away
from 0. The stencil reaches 2 h max(1, rms) from each input (h = 1e-3), which moves any
pre-activation here by well under ``_MARGIN``.

The losses return ``(loss, dx)`` rather than ``(out, cache)``; ``_as_layer`` wraps them so
the scalar loss is the layer's output and ``dout * dx`` its backward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from normgrad.models import blocks as lu
from normgrad.norms.spatial import spatial_batchnorm_forward
from normgrad.norms.spec import CheckCase, Inputs
from normgrad.ops.activations import (
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.conv import conv_backward_naive, conv_forward_naive
from normgrad.ops.dropout import dropout_backward, dropout_forward
from normgrad.ops.fast import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from normgrad.ops.losses import softmax_loss, svm_loss
from normgrad.ops.pool import max_pool_backward_naive, max_pool_forward_naive
from normgrad.ops.windows import window_view

_MARGIN = 0.05  # how far every kink stays from the inputs' pre-activations
CONV_PARAM = {"stride": 2, "pad": 1}  # overlapping windows (3x3 at stride 2) and padding
POOL_PARAM = {"pool_height": 3, "pool_width": 3, "stride": 2}  # overlapping windows
LABELS = np.array([0, 2, 1, 3, 2, 0])  # y for the losses: (N,) = (6,), C = 4 classes


def _redraw(
    rng: np.random.Generator,
    draw: Callable[[np.random.Generator], Inputs],
    ok: Callable[[Inputs], bool],
    tries: int = 500,
) -> Inputs:
    """Draw inputs until ``ok`` accepts them (deterministic for a given rng state)."""
    for _ in range(tries):
        inputs = draw(rng)
        if ok(inputs):
            return inputs
    raise RuntimeError("could not draw inputs away from the layer's kinks; widen the sizes.")


def _clear_of_zero(a: np.ndarray) -> bool:
    return bool(np.min(np.abs(a)) > _MARGIN)


def _no_near_ties(s: np.ndarray, pool_param: dict) -> bool:
    """Every pooling window's winner beats its runner-up by more than the margin."""
    win = window_view(s, pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"])
    flat = np.sort(win.reshape(*win.shape[:4], -1), axis=-1)  # (N, C, H', W', ph*pw)
    top, second = flat[..., -1], flat[..., -2]
    # a window whose max is 0 after ReLU has tied zeros; they all pass zero gradient
    return bool(np.all((top - second > _MARGIN) | (top == 0)))


def _as_layer(loss_fn):
    """(loss, dx) = loss_fn(x, y) as a layer: out = loss (0-d), backward = dout * dx."""

    def forward(x: np.ndarray):
        loss, dx = loss_fn(x, LABELS)
        return np.array(loss), dx

    def backward(dout: np.ndarray, dx: np.ndarray) -> np.ndarray:
        return dout * dx

    return forward, backward


# ---- inputs -------------------------------------------------------------------------


def _affine_inputs(rng: np.random.Generator) -> Inputs:
    return {
        "x": rng.standard_normal((3, 2, 3)),
        "w": rng.standard_normal((6, 4)),
        "b": rng.standard_normal(4),
    }


def _relu_inputs(rng: np.random.Generator) -> Inputs:
    # |x| >= 0.1 + margin: no element sits near the kink at 0
    x = rng.standard_normal((4, 5))
    return {"x": np.sign(x) * (0.1 + np.abs(x))}


def _sigmoid_inputs(rng: np.random.Generator) -> Inputs:
    # smooth everywhere; a spread of 3 reaches both flat tails and the steep middle
    return {"x": 3.0 * rng.standard_normal((4, 5))}


def _dropout_inputs(rng: np.random.Generator) -> Inputs:
    return {"x": rng.standard_normal((6, 7))}


def _softmax_inputs(rng: np.random.Generator) -> Inputs:
    return {"x": rng.standard_normal((LABELS.size, 4))}


def _svm_inputs(rng: np.random.Generator) -> Inputs:
    def ok(inputs: Inputs) -> bool:
        x = inputs["x"]
        margins = x - x[np.arange(LABELS.size), LABELS][:, None] + 1.0  # (N, C)
        margins[np.arange(LABELS.size), LABELS] = 1.0  # the correct class has no hinge
        return _clear_of_zero(margins)

    return _redraw(rng, _softmax_inputs, ok)


def _conv_inputs(rng: np.random.Generator) -> Inputs:
    return {
        "x": rng.standard_normal((2, 3, 5, 5)),
        "w": rng.standard_normal((4, 3, 3, 3)),
        "b": rng.standard_normal(4),
    }


def _pool_inputs(rng: np.random.Generator) -> Inputs:
    # distinct values 0.1 apart in random order: no ties, no near-ties
    x = 0.1 * rng.permutation(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) - 7.0
    return {"x": x.astype(np.float64)}


def _affine_relu_inputs(rng: np.random.Generator) -> Inputs:
    def draw(r: np.random.Generator) -> Inputs:
        return {
            "x": r.standard_normal((4, 5)),
            "w": r.standard_normal((5, 3)),
            "b": r.standard_normal(3),
        }

    return _redraw(rng, draw, lambda i: _clear_of_zero(affine_forward(*i.values())[0]))


def _bn_param(mode: str, D: int) -> dict:
    """A fresh bn_param; test mode gets fixed, non-trivial running statistics.

    (Layer norm ignores these keys: its statistics are per sample in both modes.)
    """
    if mode == "train":
        return {"mode": "train"}
    return {
        "mode": "test",
        "running_mean": 0.2 * np.arange(D) - 0.3,
        "running_var": 0.5 + 0.25 * np.arange(D),
    }


# Batch norm in train mode subtracts the batch mean, which cancels any bias added before
# it: db is exactly 0 there, and a zero gradient has no relative error to check. So the
# train-mode batch-norm sandwiches hold b at this constant and check the other gradients
# (tests assert db == 0); their test-mode routes check db too.
_B_FIXED = np.array([0.3, -0.2, 0.1, 0.4])


def _bias_fixed(inputs: Inputs) -> Inputs:
    """Drop b from the differentiated inputs (the forward binds ``_B_FIXED`` instead)."""
    return {k: a for k, a in inputs.items() if k != "b"}


def _conv_relu_inputs(rng: np.random.Generator) -> Inputs:
    return _redraw(
        rng,
        _conv_inputs,
        lambda i: _clear_of_zero(conv_forward_fast(i["x"], i["w"], i["b"], CONV_PARAM)[0]),
    )


def _conv_relu_pool_inputs(rng: np.random.Generator) -> Inputs:
    pool = {"pool_height": 2, "pool_width": 2, "stride": 1}

    def draw(r: np.random.Generator) -> Inputs:
        return {
            "x": r.standard_normal((2, 2, 4, 4)),
            "w": r.standard_normal((3, 2, 3, 3)),
            "b": r.standard_normal(3),
        }

    def ok(i: Inputs) -> bool:
        a, _ = conv_forward_fast(i["x"], i["w"], i["b"], {"stride": 1, "pad": 1})
        return _clear_of_zero(a) and _no_near_ties(np.maximum(a, 0), pool)

    return _redraw(rng, draw, ok)


def _conv_bn_relu_inputs(mode: str) -> Callable[[np.random.Generator], Inputs]:
    fixed = mode == "train"

    def draw(r: np.random.Generator) -> Inputs:
        inputs = {
            **_conv_inputs(r),
            "gamma": 1.0 + 0.3 * r.standard_normal(4),
            "beta": 0.3 * r.standard_normal(4),
        }
        if fixed:
            inputs["b"] = _B_FIXED.copy()
        return inputs

    def ok(i: Inputs) -> bool:
        a, _ = conv_forward_fast(i["x"], i["w"], i["b"], CONV_PARAM)
        an, _ = spatial_batchnorm_forward(a, i["gamma"], i["beta"], _bn_param(mode, 4))
        return _clear_of_zero(an)

    if fixed:
        return lambda rng: _bias_fixed(_redraw(rng, draw, ok))
    return lambda rng: _redraw(rng, draw, ok)


# ---- forwards with their non-differentiable arguments bound ---------------------------


def _dropout(mode: str):
    # a fixed seed reseeds NumPy on every call, so every evaluation draws one mask
    return lambda x: dropout_forward(x, {"mode": mode, "p": 0.6, "seed": 231})


def _conv_bn_relu(mode: str):
    if mode == "train":
        return lambda x, w, gamma, beta: lu.conv_bn_relu_forward(
            x, w, _B_FIXED, gamma, beta, CONV_PARAM, _bn_param(mode, 4)
        )
    return lambda x, w, b, gamma, beta: lu.conv_bn_relu_forward(
        x, w, b, gamma, beta, CONV_PARAM, _bn_param(mode, 4)
    )


def _drop_db(backward):
    """Backward for the train-mode batch-norm cases, whose b is fixed: every grad but db."""

    def wrapped(dout: np.ndarray, cache):
        dx, dw, _, dgamma, dbeta = backward(dout, cache)
        return dx, dw, dgamma, dbeta

    return wrapped


_softmax_fwd, _softmax_bwd = _as_layer(softmax_loss)
_svm_fwd, _svm_bwd = _as_layer(svm_loss)

CASES: list[CheckCase] = [
    CheckCase("affine", "closed form", affine_forward, affine_backward, _affine_inputs),
    CheckCase("relu", "mask", relu_forward, relu_backward, _relu_inputs),
    CheckCase("sigmoid", "closed form", sigmoid_forward, sigmoid_backward, _sigmoid_inputs),
    CheckCase("dropout", "train", _dropout("train"), dropout_backward, _dropout_inputs),
    CheckCase("dropout", "test", _dropout("test"), dropout_backward, _dropout_inputs),
    CheckCase("softmax_loss", "closed form", _softmax_fwd, _softmax_bwd, _softmax_inputs),
    CheckCase("svm_loss", "closed form", _svm_fwd, _svm_bwd, _svm_inputs),
    CheckCase(
        "conv",
        "naive",
        lambda x, w, b: conv_forward_naive(x, w, b, CONV_PARAM),
        conv_backward_naive,
        _conv_inputs,
    ),
    CheckCase(
        "conv",
        "fast",
        lambda x, w, b: conv_forward_fast(x, w, b, CONV_PARAM),
        conv_backward_fast,
        _conv_inputs,
    ),
    CheckCase(
        "max_pool",
        "naive",
        lambda x: max_pool_forward_naive(x, POOL_PARAM),
        max_pool_backward_naive,
        _pool_inputs,
    ),
    CheckCase(
        "max_pool",
        "fast",
        lambda x: max_pool_forward_fast(x, POOL_PARAM),
        max_pool_backward_fast,
        _pool_inputs,
    ),
    CheckCase(
        "affine_relu",
        "sandwich",
        lu.affine_relu_forward,
        lu.affine_relu_backward,
        _affine_relu_inputs,
    ),
    CheckCase(
        "conv_relu",
        "sandwich",
        lambda x, w, b: lu.conv_relu_forward(x, w, b, CONV_PARAM),
        lu.conv_relu_backward,
        _conv_relu_inputs,
    ),
    CheckCase(
        "conv_relu_pool",
        "sandwich",
        lambda x, w, b: lu.conv_relu_pool_forward(
            x, w, b, {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 1}
        ),
        lu.conv_relu_pool_backward,
        _conv_relu_pool_inputs,
    ),
    CheckCase(
        "conv_bn_relu",
        "train",
        _conv_bn_relu("train"),
        _drop_db(lu.conv_bn_relu_backward),
        _conv_bn_relu_inputs("train"),
    ),
    CheckCase(
        "conv_bn_relu",
        "test",
        _conv_bn_relu("test"),
        lu.conv_bn_relu_backward,
        _conv_bn_relu_inputs("test"),
    ),
]
