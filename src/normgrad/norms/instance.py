"""Instance normalization: per-sample, per-channel statistics over the spatial axes.

Ulyanov, Vedaldi & Lempitsky 2016, "Instance Normalization: The Missing Ingredient for
Fast Stylization", arXiv:1607.08022, equation 2.

Formula, for x: (N, C, H, W), reducing over (H, W), per sample n and channel c::

    mu_nc   = 1/(H W) sum_{h,w} x_nchw                   # (N, C, 1, 1)
    var_nc  = 1/(H W) sum_{h,w} (x_nchw - mu_nc)^2       # (N, C, 1, 1)  biased
    xhat    = (x - mu) / sqrt(var + eps)                 # (N, C, H, W)
    y       = gamma_c * xhat + beta_c                    # gamma, beta: (C,)

The same holds for x: (N, C, L) (reducing over L) and for more spatial axes: every axis
after the channel axis is reduced. It is group norm with G = C. Statistics are per
sample, so train and test are the same computation: there are no running statistics
(PyTorch's default, ``track_running_stats=False``). Backward in closed form
(``core.standardize_backward`` over the spatial axes), with dxhat = dout * gamma::

    dx = 1/sqrt(var + eps) * (dxhat - mean_hw(dxhat) - xhat * mean_hw(dxhat * xhat))

Numerics are ``core.standardize``'s: correct for any finite x (slices whose var + eps
would over- or underflow are normalized on an exact power-of-two rescaling), NaN in an
(n, c) slice gives NaN in that slice only. ``in_param`` may hold ``eps`` and ``mode``
(ignored); any other key raises ``ValueError``. eps = 0 with a constant slice, or empty
spatial axes, raises ``ValueError`` (PyTorch returns 0 for the first); N = 0 or C = 0
give an empty result. The backward refuses any cache but ``instancenorm_forward``'s
(``TypeError``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import core, spec


class InstanceNormCache(NamedTuple):
    """What ``instancenorm_backward`` needs from the forward pass."""

    xhat: np.ndarray  # (N, C, H, W): dgamma = sum(dout * xhat), and the dx formula uses it
    inv_std: np.ndarray  # (N, C, 1, 1): 1 / sqrt(var + eps) per sample and channel
    gamma: np.ndarray  # (1, C, 1, 1): gamma broadcast against x, dxhat = dout * gamma
    axes: tuple[int, ...]  # the spatial axes reduced over, (2, 3) for 4-D x


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, in_param: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Check ``instancenorm_forward``'s inputs; return (gamma, beta, eps). Writes nothing.

    Shared by the reference and the fused forward passes (same checks, same messages).
    """
    v.float_array(x, "x")
    if x.ndim < 3:
        raise ValueError(
            f"x must be 4-D (N, C, H, W) (or (N, C, L)) with spatial axes to normalize over; "
            f"got shape {tuple(x.shape)}. For (N, D) input use layernorm_forward, or add "
            f"a spatial axis with x.reshape(N, C, -1)."
        )
    if core.group_size(x.shape, tuple(range(2, x.ndim))) == 0:
        raise ValueError(
            f"x must have at least one spatial position per (n, c) slice to normalize "
            f"over; got shape {tuple(x.shape)}, whose spatial axes {tuple(x.shape[2:])} "
            "hold no values."
        )
    C = x.shape[1]
    gamma = v.float_param(gamma, "gamma", x.dtype)  # integer -> x's dtype: float grads
    beta = v.float_param(beta, "beta", x.dtype)
    v.shape(gamma, "gamma", (C,), "one scale per channel of x: (N, C, H, W)")
    v.shape(beta, "beta", (C,), "one shift per channel of x: (N, C, H, W)")
    eps = core.read_eps(core.read_param(in_param, "in_param"), "in_param")
    return gamma, beta, eps


def instancenorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, in_param: dict[str, Any]
) -> tuple[np.ndarray, InstanceNormCache]:
    """Instance normalization forward pass.

    Args:
        x: (N, C, H, W) input, any floating dtype; also (N, C, L) or more spatial axes.
            Each (n, c) slice needs at least one value.
        gamma: (C,) scale per channel. Read, never modified. An integer or bool array
            is cast to x's dtype, so dgamma is floating.
        beta: (C,) shift per channel. Read, never modified. Likewise.
        in_param: dict with ``eps`` (>= 0, default 1e-5); ``mode`` is ignored, train and
            test being identical; any other key raises. Never modified.

    Returns:
        out: x's shape and dtype, and the cache for ``instancenorm_backward``.

    Raises:
        TypeError: x is not a floating ndarray, gamma or beta not a real numeric
            ndarray, in_param not a dict, or eps not a real number.
        ValueError: x has fewer than 3 axes or an empty spatial axis, gamma or beta is
            not (C,), eps < 0 or not finite, an unknown in_param key, or eps = 0 with a
            constant slice.
    """
    gamma, beta, eps = parse_inputs(x, gamma, beta, in_param)
    C = x.shape[1]
    axes = tuple(range(2, x.ndim))  # the spatial axes
    bshape = (1, C) + (1,) * len(axes)  # gamma, beta broadcast against x
    gamma_b = gamma.reshape(bshape)  # (1, C, 1, 1)
    st = core.standardize(x, axes, eps)  # xhat: (N, C, H, W); inv_std: (N, C, 1, 1)
    out = (gamma_b * st.xhat + beta.reshape(bshape)).astype(x.dtype, copy=False)  # (N, C, H, W)
    cache = InstanceNormCache(st.xhat.astype(x.dtype, copy=False), st.inv_std, gamma_b, axes)
    return out, cache


def instancenorm_backward(
    dout: np.ndarray, cache: InstanceNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instance normalization backward pass, simplified closed form.

    Args:
        dout: (N, C, H, W) upstream gradient dL/dy (x's shape).
        cache: from ``instancenorm_forward``.

    Returns:
        dx: (N, C, H, W), dgamma: (C,), dbeta: (C,).

    Raises:
        TypeError: cache is not ``instancenorm_forward``'s, or dout is not a floating
            array. ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, InstanceNormCache, "instancenorm_backward", "instancenorm_forward")
    xhat, inv_std, gamma_b, axes = cache
    core.check_dout(dout, xhat.shape)
    dx, dgamma, dbeta = core.affine_norm_backward(
        dout, xhat, inv_std, gamma_b, axes, gamma_b.shape
    )  # params: (1, C, 1, 1)
    assert dgamma is not None and dbeta is not None  # both parameters were given
    C = gamma_b.shape[1]
    return dx, dgamma.reshape(C), dbeta.reshape(C)


# ---- specification ---------------------------------------------------------------------


def _bind(forward: spec.Forward, eps: float = 1e-5, **_: Any) -> spec.Forward:
    return lambda x, gamma, beta: forward(x, gamma, beta, {"eps": eps})


def _torch(torch: Any, inputs: dict[str, Any], eps: float = 1e-5, **_: Any) -> Any:
    return torch.nn.functional.instance_norm(
        inputs["x"], weight=inputs["gamma"], bias=inputs["beta"], eps=eps
    )


def _symbolic(N: int = 1, C: int = 2, H: int = 1, W: int = 3) -> Any:
    """Instance norm on x: (N, C, H, W) as SymPy expressions, statement by statement."""
    from normgrad.symbolic import model as m

    return m.standardize_problem(
        "instance",
        (N, C, H, W),
        (C,),
        (2, 3),
        ("per sample n and channel c, over (H, W)", "H*W"),
        param_view=(1, C, 1, 1),
    )


SPEC = spec.NormSpec(
    name="instancenorm",
    title="instance normalization",
    paper="Ulyanov, Vedaldi & Lempitsky 2016, arXiv:1607.08022",
    layout="(N, C, H, W)",
    forward=instancenorm_forward,
    routes={"closed": spec.Route(instancenorm_backward)},
    bind=_bind,
    param_name="in_param",
    param_keys={"eps": "added to var under the square root, >= 0 (default 1e-5)"},
    cases=(spec.CaseInputs("train", spec.affine_inputs((2, 3, 2, 3), (3,))),),
    torch=_torch,
    symbolic=spec.Symbolic(
        "instance",
        ("N", "C", "H", "W"),
        ({"N": 1, "C": 2, "H": 1, "W": 3}, {"N": 2, "C": 1, "H": 2, "W": 2}),
        _symbolic,
        all_sizes=spec.AllSizes(
            lambda M: {"N": 1, "C": 1, "H": 1, "W": M},
            lambda s: (s["C"],),
        ),
    ),
    blocks=(
        spec.Block(
            "conv",
            "instancenorm",
            instancenorm_forward,
            instancenorm_backward,
            param_shape=lambda F: (F,),
            cancels_bias=True,
            fused=spec.lazy_block(
                "normgrad.kernels.instance",
                "instancenorm_forward_fused",
                "instancenorm_backward_fused",
            ),
        ),
    ),
    bench=spec.Bench(maps=True, param_shape=lambda s: (s[1],)),
    fused=spec.lazy_route(
        "normgrad.kernels.instance", "instancenorm_forward_fused", "instancenorm_backward_fused"
    ),
)
