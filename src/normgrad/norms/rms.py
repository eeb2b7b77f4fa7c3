"""RMS normalization: rescale by the root mean square, without centring.

Zhang & Sennrich 2019, "Root Mean Square Layer Normalization", arXiv:1910.07467,
equation 4.

Formula, for x: (*, *S) with S = gamma.shape, reducing over the trailing len(S) axes,
one statistic per leading index (for x: (N, D) and gamma: (D,), per sample)::

    ms    = 1/M sum_S x^2                     # (*, 1, ..., 1)  M = prod(S)
    xhat  = x / sqrt(ms + eps)                # (*, *S)
    y     = gamma * xhat                      # (*, *S)  no shift

As PyTorch's ``F.rms_norm(x, gamma.shape, gamma, eps)``. It is layer norm without the
mean, so it is not invariant to a shift of x, only to a rescaling. Train and test are
the same computation. Backward in closed form (``core.standardize_backward`` with
``center=False``), with dxhat = dout * gamma::

    dx = 1/sqrt(ms + eps) * (dxhat - xhat * mean_S(dxhat * xhat))

Without the mean there is no ``- mean_S(dxhat)`` term, so the components of dx over a
normalization group no longer sum to zero; what holds instead is
sum_S dx * x = (eps / (ms + eps)) * sum_S dxhat * xhat, which is 0 at eps = 0
(docs/derivation.md, section 9.6).

Numerics are ``core.standardize``'s (uncentred): correct for any finite x (groups whose
mean square + eps would over- or underflow are normalized on an exact power-of-two
rescaling), NaN in a group gives NaN in that group only. ``rms_param`` may hold ``eps``
and ``mode`` (ignored); any other key raises ``ValueError``. eps = 0 with an all-zero
group raises ``ValueError`` (xhat = 0/0; PyTorch returns NaN), and so does a gamma with
an empty axis; an empty leading axis gives an empty result. The backward refuses any
cache but ``rmsnorm_forward``'s (``TypeError``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import core, spec


class RMSNormCache(NamedTuple):
    """What ``rmsnorm_backward`` needs from the forward pass."""

    xhat: np.ndarray  # x's shape: dgamma = sum(dout * xhat), and the dx formula uses it
    inv_rms: np.ndarray  # (*, 1, ..., 1): 1 / sqrt(mean(x^2) + eps) per leading index
    gamma: np.ndarray  # S: dxhat = dout * gamma
    axes: tuple[int, ...]  # the trailing gamma.ndim axes reduced over


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, rms_param: dict[str, Any] | None
) -> tuple[np.ndarray, float]:
    """Check ``rmsnorm_forward``'s inputs; return (gamma, eps). Writes nothing.

    Shared by the reference and the fused forward passes (same checks, same messages).
    """
    v.float_array(x, "x")
    gamma = v.float_param(gamma, "gamma", x.dtype)  # integer -> x's dtype: float grads
    S = tuple(gamma.shape)
    k = len(S)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k :]) != S:
        want = "at least 1-D" if k == 0 else f"x's trailing shape, here {S}"
        raise ValueError(
            f"gamma's shape must equal the trailing axes of x that RMS norm normalizes "
            f"over ({want}); got gamma {S} and x {tuple(x.shape)}. For x: (N, D) pass "
            f"gamma of shape (D,), i.e. x.shape[-k:] for the last k axes."
        )
    if gamma.size == 0:
        raise ValueError(
            f"gamma must span at least one value to normalize over; got gamma of shape {S} "
            f"(an empty axis) for x of shape {tuple(x.shape)}."
        )
    param = core.read_param(rms_param, "rms_param")
    raw_eps = param.get("eps", 1e-5)
    eps = float(np.finfo(x.dtype).eps) if raw_eps is None else core.read_eps(param, "rms_param")
    return gamma, eps


def rmsnorm_forward(
    x: np.ndarray, gamma: np.ndarray, rms_param: dict[str, Any] | None = None
) -> tuple[np.ndarray, RMSNormCache]:
    """RMS normalization forward pass over the trailing axes of x that gamma spans.

    Args:
        x: (*, *S) input, any floating dtype, for S = gamma.shape; (N, D) with gamma
            (D,) is the usual case.
        gamma: S scale, at least 1-D. Read, never modified. An integer or bool array
            is cast to x's dtype, so dgamma is floating.
        rms_param: dict with ``eps`` (>= 0, default 1e-5; ``None`` means
            ``np.finfo(x.dtype).eps``, PyTorch's default for ``F.rms_norm``), or None;
            ``mode`` is ignored, any other key raises. Never modified.

    Returns:
        out: x's shape and dtype, and the cache for ``rmsnorm_backward``.

    Raises:
        TypeError: x is not a floating ndarray, gamma not a real numeric ndarray,
            rms_param not a dict, or eps neither a real number nor None.
        ValueError: gamma is 0-D or has an empty axis, x does not end in gamma's shape,
            eps < 0 or not finite, an unknown rms_param key, or eps = 0 with an all-zero
            group.
    """
    gamma, eps = parse_inputs(x, gamma, rms_param)
    k = gamma.ndim
    axes = tuple(range(x.ndim - k, x.ndim))  # the trailing axes
    st = core.standardize(x, axes, eps, center=False)  # xhat: x's shape; inv_std: 1 along S
    out = (gamma * st.xhat).astype(x.dtype, copy=False)  # x's shape
    cache = RMSNormCache(st.xhat.astype(x.dtype, copy=False), st.inv_std, gamma, axes)
    return out, cache


def rmsnorm_backward(dout: np.ndarray, cache: RMSNormCache) -> tuple[np.ndarray, np.ndarray]:
    """RMS normalization backward pass, simplified closed form.

    Args:
        dout: (*, *S) upstream gradient dL/dy (x's shape).
        cache: from ``rmsnorm_forward``.

    Returns:
        dx: x's shape, dgamma: S (gamma's shape).

    Raises:
        TypeError: cache is not ``rmsnorm_forward``'s, or dout is not a floating array.
        ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, RMSNormCache, "rmsnorm_backward", "rmsnorm_forward")
    xhat, inv_rms, gamma, axes = cache
    core.check_dout(dout, xhat.shape)
    dx, dgamma, _ = core.affine_norm_backward(
        dout, xhat, inv_rms, gamma, axes, gamma.shape, shift=False, center=False
    )
    assert dgamma is not None  # gamma was given
    return dx, dgamma


# ---- specification ---------------------------------------------------------------------


def _bind(forward: spec.Forward, eps: float = 1e-5, **_: Any) -> spec.Forward:
    return lambda x, gamma: forward(x, gamma, {"eps": eps})


def _block_forward(
    x: np.ndarray, gamma: np.ndarray, beta: None, rms_param: dict[str, Any]
) -> tuple[np.ndarray, RMSNormCache]:
    """The model blocks' signature: RMS norm has no shift, so beta is None."""
    return rmsnorm_forward(x, gamma, rms_param)


def _block_backward(dout: np.ndarray, cache: RMSNormCache) -> tuple[np.ndarray, np.ndarray, None]:
    dx, dgamma = rmsnorm_backward(dout, cache)
    return dx, dgamma, None


def _torch(torch: Any, inputs: dict[str, Any], eps: float = 1e-5, **_: Any) -> Any:
    g = inputs["gamma"]
    return torch.nn.functional.rms_norm(inputs["x"], tuple(g.shape), g, eps)


def _symbolic(N: int = 2, D: int = 3) -> Any:
    """RMS norm on x: (N, D) as SymPy expressions, statement by statement as above."""
    from normgrad.symbolic import model as m

    return m.standardize_problem(
        "rms",
        (N, D),
        (D,),
        (1,),
        ("per sample n, over the features, without centring", "D"),
        center=False,
        shift=False,
    )


SPEC = spec.NormSpec(
    name="rmsnorm",
    title="RMS normalization",
    paper="Zhang & Sennrich 2019, arXiv:1910.07467",
    layout="(*, *gamma.shape)",
    forward=rmsnorm_forward,
    routes={"closed": spec.Route(rmsnorm_backward)},
    bind=_bind,
    param_name="rms_param",
    param_keys={
        "eps": "added to the mean square, >= 0 (default 1e-5; None: "
        "np.finfo(x.dtype).eps, as F.rms_norm)"
    },
    cases=(spec.CaseInputs("train", spec.affine_inputs((4, 6), (6,), shift=False)),),
    torch=_torch,
    symbolic=spec.Symbolic(
        "rms",
        ("N", "D"),
        ({"N": 2, "D": 3}, {"N": 1, "D": 4}),
        _symbolic,
        all_sizes=spec.AllSizes.rows(),
    ),
    blocks=(
        spec.Block(
            "fc",
            "rmsnorm",
            _block_forward,
            _block_backward,
            param_shape=lambda F: (F,),
            shift=False,
            fused=spec.lazy_block(
                "normgrad.kernels.rms", "block_forward_fused", "block_backward_fused"
            ),
        ),
    ),
    fused=spec.lazy_route(
        "normgrad.kernels.rms", "rmsnorm_forward_fused", "rmsnorm_backward_fused"
    ),
)
