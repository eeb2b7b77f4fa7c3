"""Every op refuses malformed input with a clear error, and changes nothing when it does.

Each case builds fresh, valid arguments, breaks one of them, and calls the layer. The test
asserts the error's type, that its message names the broken argument, and that the
arguments (arrays and parameter dicts) and NumPy's global generator are exactly as they
were: a refused call writes nothing and draws nothing.
"""

# The course's dropout draws from NumPy's global generator; the tests watch its state.
# ruff: noqa: NPY002

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

from normgrad.ops.activations import relu_backward, relu_forward, sigmoid_backward, sigmoid_forward
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.conv import conv_backward_naive, conv_forward_naive
from normgrad.ops.dropout import dropout_backward, dropout_forward
from normgrad.ops.fast import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_reshape,
)
from normgrad.ops.losses import softmax_loss, svm_loss
from normgrad.ops.pool import max_pool_backward_naive, max_pool_forward_naive


class Case(NamedTuple):
    fn: Callable[..., Any]
    args: Callable[[], tuple[Any, ...]]  # fresh arguments, one of them broken
    error: type[Exception]
    match: str  # a regex the message must match: it names the argument


def same(a: Any, b: Any) -> bool:
    """Deep equality: arrays by dtype, shape and bits (NaN equals NaN), dicts and tuples by item."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b) if not isinstance(a, np.generic) else bool(np.array_equal(a, b))


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---- valid arguments, per layer -------------------------------------------------------


def _affine(**broken: Any) -> tuple[Any, ...]:
    r = _rng(1)
    args = {"x": r.standard_normal((4, 2, 3)), "w": r.standard_normal((6, 5))}
    args["b"] = r.standard_normal(5)
    args.update(broken)
    return args["x"], args["w"], args["b"]


def _affine_back(dout: Any = None, need_dx: Any = True) -> tuple[Any, ...]:
    _, cache = affine_forward(*_affine())
    return (_rng(2).standard_normal((4, 5)) if dout is None else dout), cache, need_dx


def _x(shape: tuple[int, ...] = (4, 5), dtype: Any = np.float64) -> np.ndarray:
    return _rng(3).standard_normal(shape).astype(dtype)


def _act_back(forward: Callable, dout: Any) -> tuple[Any, ...]:
    _, cache = forward(_x())
    return dout, cache


def _drop(**param: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = {"mode": "train", "p": 0.5}
    base.update(param)
    return _x(), {k: v for k, v in base.items() if v is not _DELETE}


_DELETE = object()


def _drop_back(mode: str, dout: Any) -> tuple[Any, ...]:
    _, cache = dropout_forward(_x(), {"mode": mode, "p": 0.5, "seed": 1})
    return dout, cache


CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _conv(conv_param: Any = None, **broken: Any) -> tuple[Any, ...]:
    r = _rng(4)
    args = {
        "x": r.standard_normal((2, 3, 6, 6)),
        "w": r.standard_normal((4, 3, 3, 3)),
        "b": r.standard_normal(4),
    }
    args.update(broken)
    return args["x"], args["w"], args["b"], dict(CONV) if conv_param is None else conv_param


def _conv_param(**changes: Any) -> dict[str, Any]:
    param = dict(CONV)
    param.update(changes)
    return {k: v for k, v in param.items() if v is not _DELETE}


def _conv_back(forward: Callable, dout: Any) -> tuple[Any, ...]:
    _, cache = forward(*_conv())
    return dout, cache


def _pool(pool_param: Any = None, x: Any = None) -> tuple[Any, ...]:
    x = _rng(5).standard_normal((2, 3, 6, 6)) if x is None else x
    return x, dict(POOL) if pool_param is None else pool_param


def _pool_param(**changes: Any) -> dict[str, Any]:
    param = dict(POOL)
    param.update(changes)
    return {k: v for k, v in param.items() if v is not _DELETE}


def _pool_back(forward: Callable, dout: Any) -> tuple[Any, ...]:
    _, cache = forward(*_pool())
    return dout, cache


def _scores(x: Any = None, y: Any = None) -> tuple[Any, ...]:
    x = _rng(6).standard_normal((4, 3)) if x is None else x
    return x, np.array([0, 2, 1, 1]) if y is None else y


# ---- the cases ------------------------------------------------------------------------

CASES: dict[str, Case] = {}


def add(area: str, name: str, case: Case) -> None:
    key = f"{area}: {name}"
    assert key not in CASES, key
    CASES[key] = case


# affine_forward
F_ = affine_forward
add("affine", "x list", Case(F_, lambda: _affine(x=[[1.0] * 6] * 4), TypeError, r"^x must be"))
add(
    "affine",
    "x int",
    Case(F_, lambda: _affine(x=np.ones((4, 6), int)), TypeError, r"^x must have a floating"),
)
add(
    "affine",
    "x bool",
    Case(F_, lambda: _affine(x=np.ones((4, 6), bool)), TypeError, r"^x must have a floating"),
)
add(
    "affine",
    "x complex",
    Case(F_, lambda: _affine(x=np.ones((4, 6), complex)), TypeError, r"^x must have a floating"),
)
add(
    "affine",
    "x object",
    Case(F_, lambda: _affine(x=np.ones((4, 6), object)), TypeError, r"^x must have a floating"),
)
add(
    "affine",
    "x 0-d",
    Case(F_, lambda: _affine(x=np.array(1.0)), ValueError, r"^x must have a batch axis"),
)
add(
    "affine",
    "x row size",
    Case(
        F_,
        lambda: _affine(x=np.ones((4, 5))),
        ValueError,
        r"^w must have shape \(D, M\) with D = 5",
    ),
)
add(
    "affine",
    "w list",
    Case(F_, lambda: _affine(w=[[1.0] * 5] * 6), TypeError, r"^w must be a numpy"),
)
add("affine", "w None", Case(F_, lambda: _affine(w=None), TypeError, r"^w must be a numpy"))
add(
    "affine",
    "w complex",
    Case(
        F_, lambda: _affine(w=np.ones((6, 5), complex)), TypeError, r"^w must have a real numeric"
    ),
)
add(
    "affine",
    "w str",
    Case(F_, lambda: _affine(w=np.full((6, 5), "1")), TypeError, r"^w must have a real numeric"),
)
add(
    "affine",
    "w 1-D",
    Case(F_, lambda: _affine(w=np.ones(6)), ValueError, r"^w must be 2-D \(D, M\)"),
)
add(
    "affine",
    "w 3-D",
    Case(F_, lambda: _affine(w=np.ones((6, 5, 1))), ValueError, r"^w must be 2-D"),
)
add(
    "affine",
    "w transposed",
    Case(F_, lambda: _affine(w=np.ones((5, 6))), ValueError, r"^w must have shape \(D, M\)"),
)
add("affine", "b None", Case(F_, lambda: _affine(b=None), TypeError, r"^b must be a numpy"))
add(
    "affine",
    "b length",
    Case(F_, lambda: _affine(b=np.ones(4)), ValueError, r"^b must have shape \(5,\)"),
)
add(
    "affine",
    "b 2-D",
    Case(F_, lambda: _affine(b=np.ones((1, 5))), ValueError, r"^b must have shape \(5,\)"),
)
add("affine", "b scalar", Case(F_, lambda: _affine(b=0.0), TypeError, r"^b must be a numpy"))
# affine_backward
B_ = affine_backward
add(
    "affine",
    "dout int",
    Case(B_, lambda: _affine_back(np.ones((4, 5), int)), TypeError, r"^dout must have a floating"),
)
add(
    "affine",
    "dout complex",
    Case(
        B_, lambda: _affine_back(np.ones((4, 5), complex)), TypeError, r"^dout must have a floating"
    ),
)
add(
    "affine",
    "dout list",
    Case(B_, lambda: _affine_back([[0.0] * 5] * 4), TypeError, r"^dout must be a numpy"),
)
add(
    "affine",
    "dout shape",
    Case(B_, lambda: _affine_back(np.ones((4, 4))), ValueError, r"^dout must have shape \(4, 5\)"),
)
add(
    "affine",
    "dout transposed",
    Case(B_, lambda: _affine_back(np.ones((5, 4))), ValueError, r"^dout must have shape"),
)
add(
    "affine",
    "dout batch",
    Case(B_, lambda: _affine_back(np.ones((3, 5))), ValueError, r"^dout must have shape"),
)
add(
    "affine",
    "need_dx str",
    Case(B_, lambda: _affine_back(need_dx="False"), TypeError, r"^need_dx must be True or False"),
)
add(
    "affine",
    "need_dx int",
    Case(B_, lambda: _affine_back(need_dx=0), TypeError, r"^need_dx must be True or False"),
)
add(
    "affine",
    "need_dx None",
    Case(B_, lambda: _affine_back(need_dx=None), TypeError, r"^need_dx must be"),
)

# relu and sigmoid
for act, fwd, bwd in (
    ("relu", relu_forward, relu_backward),
    ("sigmoid", sigmoid_forward, sigmoid_backward),
):
    add(act, "x list", Case(fwd, lambda: ([1.0, -1.0],), TypeError, r"^x must be a numpy"))
    add(act, "x None", Case(fwd, lambda: (None,), TypeError, r"^x must be a numpy"))
    add(act, "x int", Case(fwd, lambda: (np.arange(4),), TypeError, r"^x must have a floating"))
    add(
        act, "x bool", Case(fwd, lambda: (np.ones(3, bool),), TypeError, r"^x must have a floating")
    )
    add(
        act,
        "x complex",
        Case(fwd, lambda: (np.ones(3, complex),), TypeError, r"^x must have a floating"),
    )
    add(act, "x scalar", Case(fwd, lambda: (1.0,), TypeError, r"^x must be a numpy"))
    add(
        act,
        "dout shape",
        Case(
            bwd,
            lambda fwd=fwd: _act_back(fwd, np.ones((5, 4))),
            ValueError,
            r"^dout must have shape \(4, 5\)",
        ),
    )
    add(
        act,
        "dout int",
        Case(
            bwd,
            lambda fwd=fwd: _act_back(fwd, np.ones((4, 5), int)),
            TypeError,
            r"^dout must have a floating",
        ),
    )
    add(
        act,
        "dout list",
        Case(
            bwd,
            lambda fwd=fwd: _act_back(fwd, [[0.0] * 5] * 4),
            TypeError,
            r"^dout must be a numpy",
        ),
    )
    add(
        act,
        "dout flat",
        Case(
            bwd, lambda fwd=fwd: _act_back(fwd, np.ones(20)), ValueError, r"^dout must have shape"
        ),
    )

# dropout_forward
D_ = dropout_forward
KEEP = r"dropout_param\['p'\] is the probability of KEEPING a unit and must lie in \(0, 1\]"
add(
    "dropout",
    "x int",
    Case(
        D_,
        lambda: (np.ones((2, 2), int), {"mode": "train", "p": 0.5}),
        TypeError,
        r"^x must have a floating",
    ),
)
add(
    "dropout",
    "x list",
    Case(D_, lambda: ([1.0], {"mode": "train", "p": 0.5}), TypeError, r"^x must be a numpy"),
)
add(
    "dropout",
    "param None",
    Case(D_, lambda: (_x(), None), TypeError, r"^dropout_param must be a dict"),
)
add(
    "dropout",
    "param list",
    Case(D_, lambda: (_x(), [("p", 0.5)]), TypeError, r"^dropout_param must be a dict"),
)
add(
    "dropout",
    "param float",
    Case(D_, lambda: (_x(), 0.5), TypeError, r"^dropout_param must be a dict"),
)
add(
    "dropout",
    "no p",
    Case(D_, lambda: _drop(p=_DELETE), ValueError, r"^dropout_param must contain 'p'"),
)
add(
    "dropout",
    "no mode",
    Case(D_, lambda: _drop(mode=_DELETE), ValueError, r"^dropout_param must contain 'mode'"),
)
add(
    "dropout",
    "p str",
    Case(D_, lambda: _drop(p="0.5"), TypeError, r"^dropout_param\['p'\] must be a real number"),
)
add(
    "dropout",
    "p True",
    Case(D_, lambda: _drop(p=True), TypeError, r"^dropout_param\['p'\] must be a real number"),
)
add(
    "dropout",
    "p None",
    Case(D_, lambda: _drop(p=None), TypeError, r"^dropout_param\['p'\] must be a real number"),
)
add(
    "dropout",
    "p array",
    Case(
        D_,
        lambda: _drop(p=np.array([0.5])),
        TypeError,
        r"^dropout_param\['p'\] must be a real number",
    ),
)
add("dropout", "p 0", Case(D_, lambda: _drop(p=0), ValueError, KEEP))
add("dropout", "p negative", Case(D_, lambda: _drop(p=-0.1), ValueError, KEEP))
add("dropout", "p above 1", Case(D_, lambda: _drop(p=1.5), ValueError, KEEP))
add("dropout", "p NaN", Case(D_, lambda: _drop(p=float("nan")), ValueError, KEEP))
add("dropout", "p inf", Case(D_, lambda: _drop(p=np.inf), ValueError, KEEP))
add(
    "dropout",
    "mode eval",
    Case(
        D_,
        lambda: _drop(mode="eval"),
        ValueError,
        r"^dropout_param\['mode'\] must be 'train' or 'test'",
    ),
)
add(
    "dropout",
    "mode upper",
    Case(D_, lambda: _drop(mode="TRAIN"), ValueError, r"^dropout_param\['mode'\] must be"),
)
add(
    "dropout",
    "mode None",
    Case(D_, lambda: _drop(mode=None), ValueError, r"^dropout_param\['mode'\] must be"),
)
add(
    "dropout",
    "mode bool",
    Case(D_, lambda: _drop(mode=True), ValueError, r"^dropout_param\['mode'\] must be"),
)
add(
    "dropout",
    "seed str",
    Case(D_, lambda: _drop(seed="1"), TypeError, r"^dropout_param\['seed'\] must be an int"),
)
add(
    "dropout",
    "seed float",
    Case(D_, lambda: _drop(seed=1.0), TypeError, r"^dropout_param\['seed'\] must be an int"),
)
add(
    "dropout",
    "seed True",
    Case(D_, lambda: _drop(seed=True), TypeError, r"^dropout_param\['seed'\] must be an int"),
)
add(
    "dropout",
    "seed None",
    Case(D_, lambda: _drop(seed=None), TypeError, r"^dropout_param\['seed'\] must be an int"),
)
add(
    "dropout",
    "seed negative",
    Case(
        D_,
        lambda: _drop(seed=-1),
        ValueError,
        r"^dropout_param\['seed'\] must lie in \[0, 4294967295\]",
    ),
)
add(
    "dropout",
    "seed 2**32",
    Case(D_, lambda: _drop(seed=2**32), ValueError, r"^dropout_param\['seed'\] must lie in"),
)
add(
    "dropout",
    "key seeds",
    Case(
        D_,
        lambda: _drop(seeds=1),
        ValueError,
        r"^dropout_param has unknown key 'seeds'.*Did you mean 'seed'\?",
    ),
)
add(
    "dropout",
    "key prob",
    Case(D_, lambda: _drop(prob=0.5), ValueError, r"^dropout_param has unknown key 'prob'"),
)
add(
    "dropout",
    "key P",
    Case(
        D_,
        lambda: _drop(P=0.5),
        ValueError,
        r"^dropout_param has unknown key 'P'; the keys it reads are 'mode', 'p', 'seed'",
    ),
)
add(
    "dropout",
    "key momentum",
    Case(D_, lambda: _drop(momentum=0.9), ValueError, r"^dropout_param has unknown key 'momentum'"),
)
# a bad key with a seed present: refused before reseeding (the RNG check sees it)
add(
    "dropout",
    "key + seed",
    Case(
        D_,
        lambda: _drop(seed=3, mdoe="test"),
        ValueError,
        r"unknown key 'mdoe'.*Did you mean 'mode'\?",
    ),
)
add("dropout", "bad p + seed", Case(D_, lambda: _drop(seed=3, p=2.0), ValueError, KEEP))
# dropout_backward
DB = dropout_backward
add(
    "dropout",
    "dout shape train",
    Case(
        DB,
        lambda: _drop_back("train", np.ones((5, 4))),
        ValueError,
        r"^dout must have shape \(4, 5\)",
    ),
)
add(
    "dropout",
    "dout shape test",
    Case(
        DB,
        lambda: _drop_back("test", np.ones((5, 4))),
        ValueError,
        r"^dout must have shape \(4, 5\)",
    ),
)
add(
    "dropout",
    "dout int",
    Case(
        DB,
        lambda: _drop_back("train", np.ones((4, 5), int)),
        TypeError,
        r"^dout must have a floating",
    ),
)
add(
    "dropout",
    "dout int test",
    Case(
        DB,
        lambda: _drop_back("test", np.ones((4, 5), int)),
        TypeError,
        r"^dout must have a floating",
    ),
)
add(
    "dropout",
    "dout list",
    Case(DB, lambda: _drop_back("train", [[0.0] * 5] * 4), TypeError, r"^dout must be a numpy"),
)

# convolution, both implementations
for impl, fwd, bwd in (
    ("conv naive", conv_forward_naive, conv_backward_naive),
    ("conv fast", conv_forward_fast, conv_backward_fast),
):
    add(
        impl,
        "x int",
        Case(
            fwd, lambda: _conv(x=np.ones((2, 3, 6, 6), int)), TypeError, r"^x must have a floating"
        ),
    )
    add(
        impl,
        "x complex",
        Case(
            fwd,
            lambda: _conv(x=np.ones((2, 3, 6, 6), complex)),
            TypeError,
            r"^x must have a floating",
        ),
    )
    add(
        impl,
        "x list",
        Case(
            fwd, lambda: _conv(x=np.ones((2, 3, 6, 6)).tolist()), TypeError, r"^x must be a numpy"
        ),
    )
    add(
        impl,
        "x 3-D",
        Case(
            fwd, lambda: _conv(x=np.ones((3, 6, 6))), ValueError, r"^x must be 4-D \(N, C, H, W\)"
        ),
    )
    add(
        impl,
        "x channels",
        Case(
            fwd,
            lambda: _conv(x=np.ones((2, 2, 6, 6))),
            ValueError,
            r"^x has 2 channels but w expects C = 3",
        ),
    )
    add(
        impl,
        "w 3-D",
        Case(
            fwd, lambda: _conv(w=np.ones((4, 3, 3))), ValueError, r"^w must be 4-D \(F, C, HH, WW\)"
        ),
    )
    add(
        impl,
        "w list",
        Case(
            fwd, lambda: _conv(w=np.ones((4, 3, 3, 3)).tolist()), TypeError, r"^w must be a numpy"
        ),
    )
    add(
        impl,
        "w complex",
        Case(
            fwd,
            lambda: _conv(w=np.ones((4, 3, 3, 3), complex)),
            TypeError,
            r"^w must have a real numeric",
        ),
    )
    add(
        impl,
        "w 0x0 filters",
        Case(
            fwd,
            lambda: _conv(w=np.ones((4, 3, 0, 0))),
            ValueError,
            r"^w's filters must be at least 1x1",
        ),
    )
    add(
        impl,
        "b length",
        Case(fwd, lambda: _conv(b=np.ones(3)), ValueError, r"^b must have shape \(4,\)"),
    )
    add(impl, "b None", Case(fwd, lambda: _conv(b=None), TypeError, r"^b must be a numpy"))
    add(
        impl,
        "param None",
        Case(fwd, lambda: _conv()[:3] + (None,), TypeError, r"^conv_param must be a dict"),
    )
    add(
        impl,
        "param tuple",
        Case(fwd, lambda: _conv()[:3] + ((1, 1),), TypeError, r"^conv_param must be a dict"),
    )
    add(
        impl,
        "no stride",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=_DELETE)),
            ValueError,
            r"^conv_param must contain 'stride'",
        ),
    )
    add(
        impl,
        "no pad",
        Case(
            fwd,
            lambda: _conv(_conv_param(pad=_DELETE)),
            ValueError,
            r"^conv_param must contain 'pad'",
        ),
    )
    add(
        impl,
        "stride 0",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=0)),
            ValueError,
            r"^conv_param\['stride'\] must be an integer >= 1; got 0",
        ),
    )
    add(
        impl,
        "stride -1",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=-1)),
            ValueError,
            r"^conv_param\['stride'\] must be an integer >= 1",
        ),
    )
    add(
        impl,
        "stride 2.5",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=2.5)),
            ValueError,
            r"^conv_param\['stride'\] .*non-integral 2.5",
        ),
    )
    add(
        impl,
        "stride str",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride="2")),
            TypeError,
            r"^conv_param\['stride'\] must be an integer >= 1; got '2'",
        ),
    )
    add(
        impl,
        "stride True",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=True)),
            TypeError,
            r"^conv_param\['stride'\] must be an integer",
        ),
    )
    add(
        impl,
        "stride None",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=None)),
            TypeError,
            r"^conv_param\['stride'\] must be an integer",
        ),
    )
    add(
        impl,
        "stride NaN",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=float("nan"))),
            ValueError,
            r"^conv_param\['stride'\] must be an integer",
        ),
    )
    add(
        impl,
        "stride inf",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=np.inf)),
            ValueError,
            r"^conv_param\['stride'\] must be an integer",
        ),
    )
    add(
        impl,
        "stride array",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=np.array([1]))),
            TypeError,
            r"^conv_param\['stride'\] must be an integer",
        ),
    )
    add(
        impl,
        "pad -1",
        Case(
            fwd,
            lambda: _conv(_conv_param(pad=-1)),
            ValueError,
            r"^conv_param\['pad'\] must be an integer >= 0",
        ),
    )
    add(
        impl,
        "pad 0.5",
        Case(
            fwd,
            lambda: _conv(_conv_param(pad=0.5)),
            ValueError,
            r"^conv_param\['pad'\] .*non-integral",
        ),
    )
    add(
        impl,
        "pad str",
        Case(
            fwd,
            lambda: _conv(_conv_param(pad="1")),
            TypeError,
            r"^conv_param\['pad'\] must be an integer",
        ),
    )
    add(
        impl,
        "key padding",
        Case(
            fwd,
            lambda: _conv(_conv_param(padding=1)),
            ValueError,
            r"^conv_param has unknown key 'padding'.*Did you mean 'pad'\?",
        ),
    )
    add(
        impl,
        "key strides",
        Case(
            fwd,
            lambda: _conv(_conv_param(strides=1)),
            ValueError,
            r"^conv_param has unknown key 'strides'.*Did you mean 'stride'\?",
        ),
    )
    add(
        impl,
        "key mode",
        Case(
            fwd,
            lambda: _conv(_conv_param(mode="train")),
            ValueError,
            r"^conv_param has unknown key 'mode'",
        ),
    )
    add(
        impl,
        "no tiling",
        Case(
            fwd,
            lambda: _conv(_conv_param(stride=3)),
            ValueError,
            r"^conv: the windows do not tile the input along its height",
        ),
    )
    add(
        impl,
        "filter too big",
        Case(
            fwd,
            lambda: _conv(_conv_param(pad=0), w=np.ones((4, 3, 7, 7))),
            ValueError,
            r"^conv: the height window \(w's HH = 7\) is larger than the padded input",
        ),
    )
    add(
        impl,
        "dout shape",
        Case(
            bwd,
            lambda fwd=fwd: _conv_back(fwd, np.ones((2, 4, 5, 5))),
            ValueError,
            r"^dout must have shape \(2, 4, 6, 6\)",
        ),
    )
    add(
        impl,
        "dout int",
        Case(
            bwd,
            lambda fwd=fwd: _conv_back(fwd, np.ones((2, 4, 6, 6), int)),
            TypeError,
            r"^dout must have a floating",
        ),
    )
    add(
        impl,
        "dout list",
        Case(
            bwd,
            lambda fwd=fwd: _conv_back(fwd, np.ones((2, 4, 6, 6)).tolist()),
            TypeError,
            r"^dout must be a numpy",
        ),
    )
    add(
        impl,
        "dout flat",
        Case(
            bwd,
            lambda fwd=fwd: _conv_back(fwd, np.ones(2 * 4 * 36)),
            ValueError,
            r"^dout must have shape",
        ),
    )

# max pooling, three implementations
for impl, fwd, bwd in (
    ("pool naive", max_pool_forward_naive, max_pool_backward_naive),
    ("pool fast", max_pool_forward_fast, max_pool_backward_fast),
    ("pool reshape", max_pool_forward_reshape, max_pool_backward_reshape),
):
    add(
        impl,
        "x int",
        Case(
            fwd, lambda: _pool(x=np.ones((2, 3, 6, 6), int)), TypeError, r"^x must have a floating"
        ),
    )
    add(
        impl,
        "x list",
        Case(
            fwd, lambda: _pool(x=np.ones((2, 3, 6, 6)).tolist()), TypeError, r"^x must be a numpy"
        ),
    )
    add(
        impl,
        "x 3-D",
        Case(
            fwd, lambda: _pool(x=np.ones((3, 6, 6))), ValueError, r"^x must be 4-D \(N, C, H, W\)"
        ),
    )
    add(
        impl,
        "param None",
        Case(fwd, lambda: (_pool()[0], None), TypeError, r"^pool_param must be a dict"),
    )
    add(
        impl,
        "param int",
        Case(fwd, lambda: (_pool()[0], 2), TypeError, r"^pool_param must be a dict"),
    )
    add(
        impl,
        "no pool_height",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_height=_DELETE)),
            ValueError,
            r"^pool_param must contain 'pool_height'",
        ),
    )
    add(
        impl,
        "no stride",
        Case(
            fwd,
            lambda: _pool(_pool_param(stride=_DELETE)),
            ValueError,
            r"^pool_param must contain 'stride'",
        ),
    )
    add(
        impl,
        "pool_height 0",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_height=0)),
            ValueError,
            r"^pool_param\['pool_height'\] must be an integer >= 1",
        ),
    )
    add(
        impl,
        "pool_width 2.5",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_width=2.5)),
            ValueError,
            r"^pool_param\['pool_width'\] .*non-integral 2.5",
        ),
    )
    add(
        impl,
        "pool_height NaN",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_height=float("nan"))),
            ValueError,
            r"^pool_param\['pool_height'\] must be an integer",
        ),
    )
    add(
        impl,
        "stride str",
        Case(
            fwd,
            lambda: _pool(_pool_param(stride="2")),
            TypeError,
            r"^pool_param\['stride'\] must be an integer >= 1; got '2'",
        ),
    )
    add(
        impl,
        "stride True",
        Case(
            fwd,
            lambda: _pool(_pool_param(stride=True)),
            TypeError,
            r"^pool_param\['stride'\] must be an integer",
        ),
    )
    add(
        impl,
        "key pool_size",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_size=2)),
            ValueError,
            r"^pool_param has unknown key 'pool_size'",
        ),
    )
    add(
        impl,
        "key pool_heigth",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_heigth=2)),
            ValueError,
            r"unknown key 'pool_heigth'.*Did you mean 'pool_height'\?",
        ),
    )
    add(
        impl,
        "window too big",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_height=7, pool_width=7, stride=7)),
            ValueError,
            r"^max pool: the height window \(pool_param\['pool_height'\] = 7\) is larger",
        ),
    )
    add(
        impl,
        "no tiling",
        Case(
            fwd,
            lambda: _pool(_pool_param(pool_height=4, pool_width=4, stride=4)),
            ValueError,
            r"the windows do not tile|tile x without overlap",
        ),
    )
    add(
        impl,
        "dout shape",
        Case(
            bwd,
            lambda fwd=fwd: _pool_back(fwd, np.ones((2, 3, 6, 6))),
            ValueError,
            r"^dout must have shape \(2, 3, 3, 3\)",
        ),
    )
    add(
        impl,
        "dout int",
        Case(
            bwd,
            lambda fwd=fwd: _pool_back(fwd, np.ones((2, 3, 3, 3), int)),
            TypeError,
            r"^dout must have a floating",
        ),
    )
    add(
        impl,
        "dout list",
        Case(
            bwd,
            lambda fwd=fwd: _pool_back(fwd, np.ones((2, 3, 3, 3)).tolist()),
            TypeError,
            r"^dout must be a numpy",
        ),
    )
R_ = max_pool_forward_reshape
add(
    "pool reshape",
    "not square",
    Case(
        R_,
        lambda: _pool(_pool_param(pool_height=3, pool_width=6, stride=3)),
        ValueError,
        r"^max_pool_forward_reshape needs square pools",
    ),
)
add(
    "pool reshape",
    "overlap",
    Case(
        R_,
        lambda: _pool(_pool_param(stride=1)),
        ValueError,
        r"^max_pool_forward_reshape needs square pools",
    ),
)

# losses
for loss_name, loss in (("softmax_loss", softmax_loss), ("svm_loss", svm_loss)):
    add(
        loss_name,
        "x list",
        Case(loss, lambda: _scores(x=[[0.0] * 3] * 4), TypeError, r"^x must be a numpy"),
    )
    add(
        loss_name,
        "x int",
        Case(loss, lambda: _scores(x=np.ones((4, 3), int)), TypeError, r"^x must have a floating"),
    )
    add(
        loss_name,
        "x complex",
        Case(
            loss, lambda: _scores(x=np.ones((4, 3), complex)), TypeError, r"^x must have a floating"
        ),
    )
    add(
        loss_name,
        "x 1-D",
        Case(loss, lambda: _scores(x=np.ones(4)), ValueError, r"^x must be 2-D \(N, C\)"),
    )
    add(
        loss_name,
        "x 3-D",
        Case(loss, lambda: _scores(x=np.ones((4, 3, 1))), ValueError, r"^x must be 2-D \(N, C\)"),
    )
    add(
        loss_name,
        "x no rows",
        Case(
            loss,
            lambda: _scores(x=np.ones((0, 3)), y=np.array([], int)),
            ValueError,
            r"^x must have at least one row",
        ),
    )
    add(
        loss_name,
        "x no classes",
        Case(
            loss,
            lambda: _scores(x=np.ones((4, 0))),
            ValueError,
            r"^x must have at least one class column",
        ),
    )
    add(
        loss_name,
        "y float",
        Case(
            loss,
            lambda: _scores(y=np.array([0.0, 2.0, 1.0, 1.0])),
            TypeError,
            r"^y must hold integer class labels; got dtype float64",
        ),
    )
    add(
        loss_name,
        "y bool",
        Case(
            loss,
            lambda: _scores(y=np.array([True, False, True, True])),
            TypeError,
            r"^y must hold integer class labels; got dtype bool",
        ),
    )
    add(
        loss_name,
        "y str",
        Case(
            loss,
            lambda: _scores(y=np.array(["0", "1", "2", "1"])),
            TypeError,
            r"^y must hold integer class labels",
        ),
    )
    add(
        loss_name,
        "y None",
        Case(
            loss, lambda: _scores()[:1] + (None,), TypeError, r"^y must hold integer class labels"
        ),
    )
    add(
        loss_name,
        "y ragged",
        Case(
            loss,
            lambda: _scores(y=[0, [1, 2], 1, 1]),
            TypeError,
            r"^y must be \(N,\) integer class labels",
        ),
    )
    add(
        loss_name,
        "y length",
        Case(
            loss,
            lambda: _scores(y=np.array([0, 1, 2])),
            ValueError,
            r"^y must have shape \(N,\) = \(4,\)",
        ),
    )
    add(
        loss_name,
        "y 2-D",
        Case(
            loss,
            lambda: _scores(y=np.array([[0, 1, 2, 1]])),
            ValueError,
            r"^y must have shape \(N,\)",
        ),
    )
    add(
        loss_name,
        "y scalar",
        Case(loss, lambda: _scores(y=2), ValueError, r"^y must have shape \(N,\)"),
    )
    add(
        loss_name,
        "y negative",
        Case(
            loss,
            lambda: _scores(y=np.array([0, -1, 1, 1])),
            ValueError,
            r"^labels y must lie in \[0, C\) = \[0, 3\).*\[-1\]",
        ),
    )
    add(
        loss_name,
        "y = C",
        Case(
            loss,
            lambda: _scores(y=[0, 3, 1, 1]),
            ValueError,
            r"^labels y must lie in \[0, C\) = \[0, 3\).*\[3\]",
        ),
    )
    add(
        loss_name,
        "y uint huge",
        Case(
            loss,
            lambda: _scores(y=np.array([0, 2**63, 1, 1], np.uint64)),
            ValueError,
            r"^labels y must lie in \[0, C\)",
        ),
    )


def area_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in CASES:
        area = key.split(":")[0]
        counts[area] = counts.get(area, 0) + 1
    return counts


@pytest.mark.parametrize("key", list(CASES))
def test_refused_clearly_and_nothing_changed(key):
    fn, build, error, match = CASES[key]
    args = build()
    before = copy.deepcopy(args)
    np.random.seed(12345)
    rng_before = np.random.get_state()
    with pytest.raises(error, match=match):
        fn(*args)
    assert same(args, before), "a refused call changed its arguments"
    rng_after = np.random.get_state()
    assert all(same(a, b) for a, b in zip(rng_before, rng_after)), "it drew or reseeded"


def test_every_layer_has_cases():
    counts = area_counts()
    assert set(counts) == {
        "affine", "relu", "sigmoid", "dropout", "conv naive", "conv fast",
        "pool naive", "pool fast", "pool reshape", "softmax_loss", "svm_loss",
    }  # fmt: skip
    assert min(counts.values()) >= 10, counts
