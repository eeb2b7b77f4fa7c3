"""One normalization case seen as its groups: the quantities every diagnosis works with.

Batch norm, spatial batch norm, layer norm and group norm all standardize groups of M
values (``docs/derivation.md``, section 9.1). ``NormView`` reshapes one case into a view
in which the reduction axes R hold one group and gamma broadcasts against it, and
computes the reference forward's statistics there:

| kind | x | view | R (one group) | B (what dgamma sums over) |
|---|---|---|---|---|
| batch | (N, D) | (N, D) | (0,) | (0,) |
| spatial | (N, C, H, W) | (N, C, H, W) | (0, 2, 3) | (0, 2, 3) |
| layer | (N, D) | (N, D) | (1,) | (0,) |
| group | (N, C, H, W) | (N, G, C/G, H, W) | (2, 3, 4) | (0, 3, 4) |

The catalog's mutants (``catalog``), the path diagnosis (``invariants``) and the exact
counterexamples (``counterexample``) are written once on this view, for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("batch", "spatial", "layer", "group")


@dataclass
class NormView:
    """A normalization case in its group view (all arrays float64, keepdims along R)."""

    kind: str
    x_shape: tuple[int, ...]
    param_shape: tuple[int, ...]
    x: np.ndarray  # view: the input
    dout: np.ndarray  # view: the upstream gradient
    gamma: np.ndarray  # broadcasts against the view
    R: tuple[int, ...]  # the reduction axes of one group
    B: tuple[int, ...]  # the axes the parameter gradients sum over
    eps: float
    running: dict[str, Any] = field(default_factory=dict)  # batch and spatial, train mode
    beta: np.ndarray | float = 0.0  # broadcasts against the view (0 when absent)
    M: int = 0
    mu: np.ndarray = field(init=False)
    var: np.ndarray = field(init=False)
    std: np.ndarray = field(init=False)
    xhat: np.ndarray = field(init=False)
    dxhat: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.M = int(np.prod([self.x.shape[a] for a in self.R]))
        self.mu = self.mean(self.x)
        self.var = self.mean((self.x - self.mu) ** 2)
        self.std = np.sqrt(self.var + self.eps)
        self.xhat = (self.x - self.mu) / self.std
        self.dxhat = self.dout * self.gamma

    @property
    def batch_size(self) -> int:
        return int(self.x_shape[0])

    def mean(self, a: np.ndarray) -> np.ndarray:
        """The mean over each group, keepdims."""
        return np.mean(a, axis=self.R, keepdims=True)

    def total(self, a: np.ndarray) -> np.ndarray:
        """The sum over each group, keepdims."""
        return np.sum(a, axis=self.R, keepdims=True)

    def fold(self, a: np.ndarray) -> np.ndarray:
        """A view-shaped array (or one that broadcasts to it) back in x's shape."""
        return np.broadcast_to(a, self.x.shape).reshape(self.x_shape)

    def pfold(self, a: np.ndarray) -> np.ndarray:
        """A parameter gradient: ``a`` summed over B, in gamma's shape."""
        full = np.broadcast_to(a, self.x.shape)
        return np.sum(full, axis=self.B).reshape(self.param_shape)

    def groups(self, a: np.ndarray) -> np.ndarray:
        """(number of groups, M): each row one group's values of view-shaped ``a``."""
        full = np.broadcast_to(a, self.x.shape)
        keep = [ax for ax in range(full.ndim) if ax not in self.R]
        return np.transpose(full, keep + list(self.R)).reshape(-1, self.M)

    def to_view(self, a: np.ndarray) -> np.ndarray:
        """An x-shaped array (a student's dx) in the view."""
        return np.asarray(a, dtype=np.float64).reshape(self.x.shape)

    def dx(self) -> np.ndarray:
        """The exact dx, section 9.1.1's boxed formula, in x's shape."""
        g = self.dxhat
        return self.fold((g - self.mean(g) - self.xhat * self.mean(g * self.xhat)) / self.std)


def view(
    kind: str, inputs: dict[str, np.ndarray], dout: np.ndarray, eps: float, **kw: Any
) -> NormView:
    """The view of one case: ``inputs`` holds x, gamma (and beta); ``kw`` G and running stats.

    Raises:
        ValueError: an unknown kind.
    """
    x = np.asarray(inputs["x"], dtype=np.float64)
    gamma = np.asarray(inputs["gamma"], dtype=np.float64)
    beta = np.asarray(inputs.get("beta", np.zeros_like(gamma)), dtype=np.float64)
    d = np.asarray(dout, dtype=np.float64)
    running = kw.get("running") or {}
    shape: tuple[int, ...] = x.shape
    R: tuple[int, ...] = (0,)
    B: tuple[int, ...] = (0,)
    if kind == "spatial":
        shape, R, B = x.shape, (0, 2, 3), (0, 2, 3)
        pview: tuple[int, ...] = (1, x.shape[1], 1, 1)
    elif kind == "group":
        N, C, H, W = x.shape
        G = int(kw["G"])
        shape, R, B = (N, G, C // G, H, W), (2, 3, 4), (0, 3, 4)
        pview = (1, G, C // G, 1, 1)
    elif kind in ("batch", "layer"):
        R = (0,) if kind == "batch" else (1,)
        pview = (1, x.shape[1])
    else:
        raise ValueError(f"unknown normalization kind {kind!r}; choose one of {KINDS}.")
    return NormView(
        kind,
        x.shape,
        gamma.shape,
        x.reshape(shape),
        d.reshape(shape),
        gamma.reshape(pview),
        R,
        B,
        eps,
        running,
        beta.reshape(pview),
    )


def running_update(v: NormView, momentum: float, old_mean: np.ndarray, old_var: np.ndarray) -> dict:
    """The course's update: running = momentum * running + (1 - momentum) * batch."""
    mu = v.mu.reshape(old_mean.shape)
    var = v.var.reshape(old_var.shape)
    return {
        "running_mean": momentum * old_mean + (1 - momentum) * mu,
        "running_var": momentum * old_var + (1 - momentum) * var,
    }
