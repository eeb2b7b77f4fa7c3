"""Group normalization: per-sample statistics over groups of channels.

Wu & He 2018, "Group Normalization", arXiv:1803.08494, section 3 (equations 1-3, 6).

Formula, for x: (N, C, H, W) with C split into G contiguous groups of C/G channels,
reducing over (C/G, H, W), per sample n and group g::

    xg      = x.reshape(N, G, C/G, H, W)
    mu_ng   = mean over (C/G, H, W) of xg               # (N, G, 1, 1, 1)
    var_ng  = mean over (C/G, H, W) of (xg - mu)^2      # (N, G, 1, 1, 1)  biased
    xhat    = ((xg - mu) / sqrt(var + eps)).reshape(N, C, H, W)
    y       = gamma * xhat + beta                       # gamma, beta: (1, C, 1, 1)

The affine parameters are per channel, not per group. Statistics are per sample, so
train and test are the same computation and there are no running statistics.

Special cases: G = 1 is layer norm over (C, H, W) with a per-channel affine; G = C is
instance norm. Backward in closed form (``core.standardize_backward`` over the group
axes), with dxhat = dout * gamma::

    dx = 1/sqrt(var + eps) * (dxhat - mean_g(dxhat) - xhat * mean_g(dxhat * xhat))

Numerics are ``core.standardize``'s: correct for any finite x (groups whose var + eps
would over- or underflow are normalized on an exact power-of-two rescaling), NaN in a
group gives NaN in that group only. ``gn_param`` may hold ``eps`` and the course's
``mode`` (ignored); any other key raises ``ValueError``. eps = 0 with a constant group,
or an empty group (C = 0, H = 0 or W = 0), raises ``ValueError``; N = 0 gives an empty
result. The backward refuses any cache but ``spatial_groupnorm_forward``'s
(``TypeError``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import core, spec

_GROUP_AXES = (2, 3, 4)  # (C/G, H, W) of the (N, G, C/G, H, W) view


class GroupNormCache(NamedTuple):
    """What ``spatial_groupnorm_backward`` needs from the forward pass."""

    xhat: np.ndarray  # (N, G, C/G, H, W): dgamma = sum(dout * xhat), and the dx formula
    inv_std: np.ndarray  # (N, G, 1, 1, 1): 1 / sqrt(var + eps) per sample and group
    gamma: np.ndarray  # (1, C, 1, 1): dxhat = dout * gamma
    dtype: np.dtype  # x's dtype: dx is cast back to it


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Check ``spatial_groupnorm_forward``'s inputs; return (gamma, beta, eps).

    Writes nothing. Shared by the reference and the fused forward passes, so both accept
    and reject the same calls with the same messages.
    """
    v.float_array(x, "x")
    v.ndim(
        x,
        "x",
        4,
        "(N, C, H, W)",
        "For (N, D) input use layernorm_forward (group norm with G = 1), or add "
        "spatial axes with x.reshape(N, D, 1, 1).",
    )
    N, C, H, W = x.shape
    if C * H * W == 0:
        raise ValueError(
            f"x must have at least one channel and one spatial position per sample to "
            f"normalize over; got shape {tuple(x.shape)} (N, C, H, W)."
        )
    if isinstance(G, (bool, np.bool_)) or not isinstance(G, (int, np.integer)):
        raise TypeError(
            f"G must be an int, the number of channel groups; got {G!r}. Pass a divisor "
            f"of the C = {C} channels as a plain int, e.g. G=int({G!r}) or G=1."
        )
    if G <= 0 or C % G != 0:
        divisors = [d for d in range(1, C + 1) if C % d == 0]
        raise ValueError(
            f"G must be a positive divisor of the C = {C} channels of x (shape "
            f"{tuple(x.shape)}) so that each group has C/G channels; got G = {G}. "
            f"Choose G from {divisors}."
        )
    gamma = v.float_param(gamma, "gamma", x.dtype)  # integer -> x's dtype: float grads
    beta = v.float_param(beta, "beta", x.dtype)
    why = "one value per channel, as the course; reshape a (C,) array with .reshape(1, C, 1, 1)"
    v.shape(gamma, "gamma", (1, C, 1, 1), why)
    v.shape(beta, "beta", (1, C, 1, 1), why)
    eps = core.read_eps(core.read_param(gn_param, "gn_param"), "gn_param")
    return gamma, beta, eps


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, GroupNormCache]:
    """Group normalization forward pass (cs231n signature and semantics).

    Args:
        x: (N, C, H, W) input, any floating dtype.
        gamma: (1, C, 1, 1) scale per channel. Read, never modified. An integer or bool
            array is cast to x's dtype, so dgamma is floating.
        beta: (1, C, 1, 1) shift per channel. Read, never modified. Likewise.
        G: number of groups, a positive int dividing C; channels
            [g*C/G, (g+1)*C/G) form group g.
        gn_param: dict with ``eps`` (>= 0, default 1e-5); ``mode`` is ignored, any
            other key raises. Never modified.

    Returns:
        out: (N, C, H, W) in x's dtype, and the cache for the backward pass.

    Raises:
        TypeError: x is not a floating ndarray, gamma or beta not a real numeric
            ndarray, G is not an int, gn_param is not a dict, or eps not a real number.
        ValueError: x is not 4-D or has an empty group, G does not divide C, gamma or
            beta is not (1, C, 1, 1), eps < 0 or not finite, an unknown gn_param key, or
            eps = 0 with a constant group.
    """
    gamma, beta, eps = parse_inputs(x, gamma, beta, G, gn_param)
    N, C, H, W = x.shape
    st = core.standardize(x.reshape(N, G, C // G, H, W), _GROUP_AXES, eps)
    xhat = st.xhat.reshape(N, C, H, W)  # (N, C, H, W)
    out = (gamma * xhat + beta).astype(x.dtype, copy=False)  # (N, C, H, W)
    cache = GroupNormCache(st.xhat.astype(x.dtype, copy=False), st.inv_std, gamma, x.dtype)
    return out, cache


def spatial_groupnorm_backward(
    dout: np.ndarray, cache: GroupNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group normalization backward pass, simplified closed form.

    Args:
        dout: (N, C, H, W) upstream gradient dL/dy.
        cache: from ``spatial_groupnorm_forward``.

    Returns:
        dx: (N, C, H, W), dgamma: (1, C, 1, 1), dbeta: (1, C, 1, 1).

    Raises:
        TypeError: cache is not ``spatial_groupnorm_forward``'s, or dout is not a
            floating array. ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, GroupNormCache, "spatial_groupnorm_backward", "spatial_groupnorm_forward")
    xhat_g, inv_std, gamma, _ = cache
    N, G, Cg, H, W = xhat_g.shape
    core.check_dout(dout, (N, G * Cg, H, W))
    gshape = (1, G, Cg, 1, 1)  # gamma's (1, C, 1, 1) in the (N, G, C/G, H, W) view
    dx, dgamma, dbeta = core.affine_norm_backward(
        dout.reshape(xhat_g.shape), xhat_g, inv_std, gamma.reshape(gshape), _GROUP_AXES, gshape
    )
    assert dgamma is not None and dbeta is not None  # both parameters were given
    C = G * Cg
    return dx.reshape(N, C, H, W), dgamma.reshape(1, C, 1, 1), dbeta.reshape(1, C, 1, 1)


# ---- specification ---------------------------------------------------------------------


def _bind(forward: spec.Forward, eps: float = 1e-5, G: int = 2, **_: Any) -> spec.Forward:
    return lambda x, gamma, beta: forward(x, gamma, beta, G, {"eps": eps})


def _block_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    gn_param: dict[str, Any],
    G: int | None = None,
) -> tuple[np.ndarray, GroupNormCache]:
    """The conv blocks' signature: G, the number of groups, comes as a keyword."""
    return spatial_groupnorm_forward(x, gamma, beta, block_groups(G), gn_param)


def block_groups(G: int | None) -> int:
    """G as the conv blocks pass it: a model must give it (``ValueError`` for None)."""
    if G is None:
        raise ValueError(
            "normalization='groupnorm' needs G, the number of channel groups; pass G as a "
            "divisor of the number of filters F = w.shape[0], e.g. G=1 (one group)."
        )
    return G


def _torch(torch: Any, inputs: dict[str, Any], eps: float = 1e-5, G: int = 2, **_: Any) -> Any:
    C = inputs["x"].shape[1]
    return torch.nn.functional.group_norm(
        inputs["x"], G, inputs["gamma"].reshape(C), inputs["beta"].reshape(C), eps
    )


def _symbolic(N: int = 1, C: int = 4, H: int = 1, W: int = 2, G: int = 2) -> Any:
    """Group norm on x: (N, C, H, W) as SymPy expressions, in the (N, G, C/G, H, W) view."""
    from normgrad.symbolic import model as m

    if G <= 0 or C % G:
        raise ValueError(f"group: G must be a positive divisor of C = {C}; got G = {G}.")
    return m.standardize_problem(
        "group",
        (N, C, H, W),
        (1, C, 1, 1),
        _GROUP_AXES,
        ("per sample n and group g, over (C/G, H, W)", "C/G*H*W"),
        view=(N, G, C // G, H, W),
        param_view=(1, G, C // G, 1, 1),
        options={"G": G},
    )


SPEC = spec.NormSpec(
    name="groupnorm",
    title="group normalization",
    paper="Wu & He 2018, arXiv:1803.08494",
    layout="(N, C, H, W)",
    forward=spatial_groupnorm_forward,
    routes={"closed": spec.Route(spatial_groupnorm_backward)},
    bind=_bind,
    param_name="gn_param",
    param_keys={"eps": "added to var under the square root, >= 0 (default 1e-5)"},
    cases=(spec.CaseInputs("train", spec.affine_inputs((2, 4, 2, 3), (1, 4, 1, 1)), {"G": 2}),),
    torch=_torch,
    symbolic=spec.Symbolic(
        "group",
        ("N", "C", "H", "W"),
        ({"N": 1, "C": 4, "H": 1, "W": 2, "G": 2}, {"N": 2, "C": 2, "H": 1, "W": 2, "G": 1}),
        _symbolic,
        options=("G",),
        all_sizes=spec.AllSizes(
            lambda M: {"N": 1, "C": M, "H": 1, "W": 1, "G": 1},
            lambda s: (1, s["C"], 1, 1),
        ),
    ),
    blocks=(
        spec.Block(
            "conv",
            "groupnorm",
            _block_forward,
            spatial_groupnorm_backward,
            param_shape=lambda F: (1, F, 1, 1),
            options=("G",),
            fused=spec.lazy_block(
                "normgrad.kernels.group", "block_forward_fused", "spatial_groupnorm_backward_fused"
            ),
        ),
    ),
    bench=spec.Bench(maps=True, param_shape=lambda s: (1, s[1], 1, 1), options={"G": 32}),
    fused=spec.lazy_route(
        "normgrad.kernels.group",
        "spatial_groupnorm_forward_fused",
        "spatial_groupnorm_backward_fused",
    ),
)
