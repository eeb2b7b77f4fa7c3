"""Layer, group, instance and RMS norm, symbolically, mirroring their NumPy modules.

Each ``build_*`` repeats the forward and the backward of ``normgrad.norms.<layer>`` on
object arrays (same reshapes, same reduction axes, the closed form through the symbolic
twin of ``core.standardize_backward``), and keeps one route, ``closed``, because each
of these modules has one backward function.
"""

from __future__ import annotations

import numpy as np

from normgrad.symbolic import core
from normgrad.symbolic.model import (
    Problem,
    first_group,
    make_symbols,
    standardize,
    standardize_backward,
    sum_to_shape,
)

#: The shapes ``derive --all`` proves, as keyword arguments of each ``build_*``.
SHAPES: dict[str, tuple[dict[str, int], ...]] = {
    "layer": ({"N": 2, "D": 3}, {"N": 1, "D": 4}),
    "group": ({"N": 1, "C": 4, "H": 1, "W": 2, "G": 2}, {"N": 2, "C": 2, "H": 1, "W": 2, "G": 1}),
    "instance": ({"N": 1, "C": 2, "H": 1, "W": 3}, {"N": 2, "C": 1, "H": 2, "W": 2}),
    "rms": ({"N": 2, "D": 3}, {"N": 1, "D": 4}),
}


def build_layer(N: int = 2, D: int = 3) -> Problem:
    """Layer norm, x: (N, D), statistics per row over D; mirrors norms.layer."""
    core.check_size("layer", (N, D), D)
    x, gamma, beta, dout, eps = make_symbols((N, D), (D,))
    axes = (1,)
    xhat, mu, var, inv_std = standardize(x, axes, eps)
    y = gamma * xhat + beta  # (N, D)
    p = Problem("layer", (N, D), {"x": x, "gamma": gamma, "beta": beta}, dout, eps, y,
                core.radicals_of(var + eps), first_group(x, mu, var, axes))
    dbeta = sum_to_shape(dout, (D,))  # (D,)
    dgamma = sum_to_shape(dout * xhat, (D,))  # (D,)
    dx = standardize_backward(dout * gamma, xhat, inv_std, axes)  # (N, D)
    p.routes = {"closed": {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}}
    return p


def build_group(N: int = 1, C: int = 4, H: int = 1, W: int = 2, G: int = 2) -> Problem:
    """Group norm, x: (N, C, H, W), G groups of C/G channels; mirrors norms.group."""
    if G <= 0 or C % G:
        raise ValueError(f"group: G must be a positive divisor of C = {C}; got G = {G}.")
    core.check_size("group", (N, C, H, W), (C // G) * H * W)
    x, gamma, beta, dout, eps = make_symbols((N, C, H, W), (1, C, 1, 1))
    axes = (2, 3, 4)
    xg = x.reshape(N, G, C // G, H, W)
    xhat_g, mu, var, inv_std = standardize(xg, axes, eps)
    xhat = xhat_g.reshape(N, C, H, W)  # (N, C, H, W)
    y = gamma * xhat + beta  # (N, C, H, W)
    p = Problem("group", (N, C, H, W), {"x": x, "gamma": gamma, "beta": beta}, dout, eps, y,
                core.radicals_of(var + eps), first_group(xg, mu, var, axes), G=G)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
    dgamma = np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
    dxhat = (dout * gamma).reshape(xhat_g.shape)  # (N, G, C/G, H, W)
    dx = standardize_backward(dxhat, xhat_g, inv_std, axes).reshape(N, C, H, W)
    p.routes = {"closed": {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}}
    return p


def build_instance(N: int = 1, C: int = 2, H: int = 1, W: int = 3) -> Problem:
    """Instance norm, x: (N, C, H, W), statistics per (n, c) over (H, W); mirrors norms.instance."""
    core.check_size("instance", (N, C, H, W), H * W)
    x, gamma, beta, dout, eps = make_symbols((N, C, H, W), (C,))
    axes = (2, 3)
    gamma_b = gamma.reshape(1, C, 1, 1)  # (1, C, 1, 1)
    xhat, mu, var, inv_std = standardize(x, axes, eps)
    y = gamma_b * xhat + beta.reshape(1, C, 1, 1)  # (N, C, H, W)
    p = Problem("instance", (N, C, H, W), {"x": x, "gamma": gamma, "beta": beta}, dout, eps,
                y, core.radicals_of(var + eps), first_group(x, mu, var, axes))
    sum_axes = (0, *axes)
    dbeta = dout.sum(axis=sum_axes)  # (C,)
    dgamma = np.sum(dout * xhat, axis=sum_axes)  # (C,)
    dx = standardize_backward(dout * gamma_b, xhat, inv_std, axes)  # (N, C, H, W)
    p.routes = {"closed": {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}}
    return p


def build_rms(N: int = 2, D: int = 3) -> Problem:
    """RMS norm, x: (N, D), gamma: (D,), no shift, no centring; mirrors norms.rms."""
    core.check_size("rms", (N, D), D)
    x, gamma, _, dout, eps = make_symbols((N, D), (D,), beta=False)
    axes = (1,)
    xhat, mu, var, inv_rms = standardize(x, axes, eps, center=False)
    y = gamma * xhat  # (N, D)
    p = Problem("rms", (N, D), {"x": x, "gamma": gamma}, dout, eps, y,
                core.radicals_of(var + eps), first_group(x, mu, var, axes), center=False)
    dgamma = sum_to_shape(dout * xhat, (D,))  # (D,)
    dx = standardize_backward(dout * gamma, xhat, inv_rms, axes, center=False)  # (N, D)
    p.routes = {"closed": {"dx": dx, "dgamma": dgamma}}
    return p


BUILDERS = {
    "layer": build_layer,
    "group": build_group,
    "instance": build_instance,
    "rms": build_rms,
}
