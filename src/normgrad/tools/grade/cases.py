"""The seeded cases every course function is graded on (float64, random upstream gradients).

Each generator draws from one ``numpy.random.Generator``, so ``--seed`` reproduces a run.
The cases cover what hides bugs: the course's x = 5 randn + 12 (a missing centring
shows at once), N = 2 (batch norm's dx is then of order eps, section 6.4), D = 1, odd
sizes, a large eps (so a dropped eps shows), large groups (for the path diagnosis),
given and absent running statistics, and test mode. The upstream gradient is always
random normal, never ones (section 6.3: ones make batch norm's true dx exactly 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Case:
    """One call of a course function: its inputs, parameter dict and upstream gradient."""

    label: str
    inputs: dict[str, np.ndarray]  # the differentiable inputs, in argument order
    param: dict[str, Any] | None = None  # the param dict; every call gets a fresh copy
    extra: dict[str, Any] = field(default_factory=dict)  # G, y labels, conv/pool params
    dout: np.ndarray | None = None  # the upstream gradient (out's shape), None for losses
    mode: str = "train"
    backward: bool = True  # whether the backward is graded on this case


def course_x(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """x = 5 randn + 12, the course's check input."""
    return 5.0 * rng.standard_normal(shape) + 12.0


def _norm(
    rng: np.random.Generator,
    label: str,
    x_shape: tuple[int, ...],
    p_shape: tuple[int, ...],
    eps: float = 1e-5,
    *,
    unit: bool = False,
    mode: str = "train",
    running: bool = False,
    extra: dict[str, Any] | None = None,
) -> Case:
    x = rng.standard_normal(x_shape) if unit else course_x(rng, x_shape)
    gamma = rng.standard_normal(p_shape)
    beta = rng.standard_normal(p_shape)
    param: dict[str, Any] = {"mode": mode, "eps": eps}
    if running or mode == "test":
        C = p_shape[0] if len(p_shape) == 1 else x_shape[1]
        param["running_mean"] = 12.0 + rng.standard_normal(C)
        param["running_var"] = rng.uniform(10.0, 40.0, C)
        param["momentum"] = 0.9
    dout = rng.standard_normal(x_shape)
    return Case(
        label,
        {"x": x, "gamma": gamma, "beta": beta},
        param,
        extra or {},
        dout,
        mode,
        backward=mode == "train",
    )


def batchnorm(rng: np.random.Generator) -> list[Case]:
    return [
        _norm(rng, "course 4x5", (4, 5), (5,)),
        _norm(rng, "N=2", (2, 3), (3,), running=True),
        _norm(rng, "D=1", (5, 1), (1,)),
        _norm(rng, "odd 7x3", (7, 3), (3,), running=True),
        _norm(rng, "eps=0.5", (6, 4), (4,), 0.5, unit=True),
        _norm(rng, "N=16", (16, 3), (3,), running=True),
        _norm(rng, "test mode", (4, 5), (5,), mode="test"),
    ]


def spatial_batchnorm(rng: np.random.Generator) -> list[Case]:
    return [
        _norm(rng, "2x3x4x5", (2, 3, 4, 5), (3,)),
        _norm(rng, "N*H*W=2", (2, 2, 1, 1), (2,), running=True),
        _norm(rng, "odd 3x2x3x1", (3, 2, 3, 1), (2,), running=True),
        _norm(rng, "eps=0.5", (2, 2, 3, 3), (2,), 0.5, unit=True),
        _norm(rng, "test mode", (2, 3, 2, 2), (3,), mode="test"),
    ]


def layernorm(rng: np.random.Generator) -> list[Case]:
    return [
        _norm(rng, "course 4x5", (4, 5), (5,)),
        _norm(rng, "D=2", (4, 2), (2,)),
        _norm(rng, "N=1", (1, 6), (6,)),
        _norm(rng, "odd 5x7", (5, 7), (7,)),
        _norm(rng, "eps=0.5", (3, 6), (6,), 0.5, unit=True),
        _norm(rng, "D=16", (3, 16), (16,)),
    ]


def groupnorm(rng: np.random.Generator) -> list[Case]:
    def g(label: str, shape: tuple[int, int, int, int], G: int, eps: float = 1e-5, unit=False):
        return _norm(rng, label, shape, (1, shape[1], 1, 1), eps, unit=unit, extra={"G": G})

    return [
        g("2x6x4x5, G=2", (2, 6, 4, 5), 2),
        g("G=1", (2, 4, 3, 3), 1),
        g("G=C", (2, 4, 3, 3), 4),
        g("odd 1x6x2x3, G=3", (1, 6, 2, 3), 3),
        g("eps=0.5", (2, 4, 2, 2), 2, 0.5, True),
    ]


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.05):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-300) * (margin + np.abs(x)), x)


def affine(rng: np.random.Generator) -> list[Case]:
    out = []
    for label, xs, (D, M) in (
        ("4x2x3", (4, 2, 3), (6, 5)),
        ("2x7", (2, 7), (7, 3)),
        ("1x1", (1, 1), (1, 1)),
        ("odd 3x2x2x2", (3, 2, 2, 2), (8, 4)),
    ):
        inputs = {
            "x": rng.standard_normal(xs),
            "w": rng.standard_normal((D, M)),
            "b": rng.standard_normal(M),
        }
        out.append(Case(label, inputs, dout=rng.standard_normal((xs[0], M))))
    return out


def relu(rng: np.random.Generator) -> list[Case]:
    return [
        Case(label, {"x": _away_from_zero(rng, s)}, dout=rng.standard_normal(s))
        for label, s in (("4x5", (4, 5)), ("3x2x3", (3, 2, 3)), ("1", (1,)))
    ]


def _conv_out(x: tuple, w: tuple, stride: int, pad: int) -> tuple[int, int, int, int]:
    H = 1 + (x[2] + 2 * pad - w[2]) // stride
    W = 1 + (x[3] + 2 * pad - w[3]) // stride
    return (x[0], w[0], H, W)


def conv(rng: np.random.Generator) -> list[Case]:
    out = []
    for label, xs, ws, stride, pad in (
        ("2x3x5x5, 3x3, pad 1", (2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
        ("stride 2", (1, 2, 7, 7), (3, 2, 3, 3), 2, 1),
        ("odd 3x1x4x6, 2x3, pad 0", (3, 1, 4, 6), (2, 1, 2, 3), 1, 0),
        ("one output", (1, 1, 3, 3), (1, 1, 3, 3), 1, 0),
    ):
        inputs = {
            "x": rng.standard_normal(xs),
            "w": rng.standard_normal(ws),
            "b": rng.standard_normal(ws[0]),
        }
        param = {"stride": stride, "pad": pad}
        out.append(
            Case(label, inputs, param, dout=rng.standard_normal(_conv_out(xs, ws, stride, pad)))
        )
    return out


def _pool(rng: np.random.Generator, shapes: tuple) -> list[Case]:
    out = []
    for label, xs, k, stride in shapes:
        x = rng.permutation(np.arange(int(np.prod(xs)), dtype=np.float64)).reshape(xs) / 7.0
        x = x + 0.01 * rng.standard_normal(xs)  # distinct values: no ties inside a window
        H, W = 1 + (xs[2] - k) // stride, 1 + (xs[3] - k) // stride
        param = {"pool_height": k, "pool_width": k, "stride": stride}
        out.append(Case(label, {"x": x}, param, dout=rng.standard_normal((xs[0], xs[1], H, W))))
    return out


def pool(rng: np.random.Generator) -> list[Case]:
    return _pool(
        rng,
        (
            ("2x3x4x4, 2x2 stride 2", (2, 3, 4, 4), 2, 2),
            ("overlapping 3x3 stride 2", (1, 2, 5, 5), 3, 2),
            ("2x1x6x4", (2, 1, 6, 4), 2, 2),
            ("odd 3x3 stride 3", (3, 2, 3, 3), 3, 3),
        ),
    )


def pool_tiling(rng: np.random.Generator) -> list[Case]:
    """Windows that tile x exactly: what the course's fast pooling supports without Cython."""
    return _pool(
        rng,
        (
            ("2x3x4x4, 2x2 stride 2", (2, 3, 4, 4), 2, 2),
            ("2x1x6x4", (2, 1, 6, 4), 2, 2),
            ("odd 3x3 stride 3", (3, 2, 3, 3), 3, 3),
        ),
    )


def _labels(rng: np.random.Generator, N: int, C: int) -> np.ndarray:
    return rng.integers(0, C, N)


def softmax(rng: np.random.Generator) -> list[Case]:
    out = []
    for label, (N, C), scale in (
        ("course 5x4", (5, 4), 0.001),
        ("3x7", (3, 7), 2.0),
        ("1x3", (1, 3), 1.0),
    ):
        x = scale * rng.standard_normal((N, C))
        out.append(Case(label, {"x": x}, extra={"y": _labels(rng, N, C)}))
    return out


def svm(rng: np.random.Generator) -> list[Case]:
    out = []
    for label, (N, C) in (("5x4", (5, 4)), ("3x7", (3, 7)), ("1x3", (1, 3))):
        for _ in range(100):
            x, y = rng.standard_normal((N, C)), _labels(rng, N, C)
            margins = x - x[np.arange(N), y][:, None] + 1.0
            margins[np.arange(N), y] = 1.0
            if np.min(np.abs(margins)) > 1e-3:  # no hinge exactly at its kink
                break
        out.append(Case(label, {"x": x}, extra={"y": y}))
    return out


def dropout(rng: np.random.Generator) -> list[Case]:
    out = []
    for label, p, mode in (
        ("p=0.3", 0.3, "train"),
        ("p=0.75", 0.75, "train"),
        ("p=1", 1.0, "train"),
        ("test mode", 0.5, "test"),
    ):
        x = 10.0 + rng.standard_normal((40, 50))
        param = {"mode": mode, "p": p, "seed": int(rng.integers(0, 2**31))}
        out.append(Case(label, {"x": x}, param, dout=rng.standard_normal(x.shape), mode=mode))
    return out
