"""Layer normalization: per-sample statistics over the features.

Ba, Kiros & Hinton 2016, "Layer Normalization", arXiv:1607.06450, section 3.

Formula, for x: (N, D), reducing over the feature axis (axis 1), per sample n::

    mu_n   = 1/D sum_d x_nd                         # (N, 1)
    var_n  = 1/D sum_d (x_nd - mu_n)^2              # (N, 1)  biased
    xhat   = (x - mu) / sqrt(var + eps)             # (N, D)
    y      = gamma * xhat + beta                    # (N, D)  gamma, beta: (D,)

It is batch norm with the reduction axis turned from N to D, so train and test mode
are the same computation, there are no running statistics, and a batch of one works.
Backward in closed form (``core.standardize_backward``), with dxhat = dout * gamma::

    dx = 1/sqrt(var + eps) * (dxhat - mean_d(dxhat) - xhat * mean_d(dxhat * xhat))

Two entry points:

- ``layernorm_forward/backward``: the cs231n layer, x: (N, D), gamma and beta (D,);
- ``layernorm_nd_forward/backward``: PyTorch's ``F.layer_norm``, normalizing over the
  trailing ``normalized_shape`` of x: (*, *normalized_shape), gamma and beta each of
  shape ``normalized_shape`` or ``None`` (no scale, or no shift; the gradient of an
  absent parameter is returned as ``None``).

Numerics are ``core.standardize``'s: correct for any finite x (rows whose var + eps would
over- or underflow are normalized on an exact power-of-two rescaling), NaN in a row
gives NaN in that row only. ``ln_param`` may hold ``eps`` and the course's ``mode``
(ignored: train and test are the same); any other key is a typo and raises
``ValueError``. eps = 0 with a constant row raises ``ValueError`` (xhat = 0/0). D = 0
raises ``ValueError`` (nothing to normalize); N = 0 gives an empty result. Each backward
refuses a cache its forward did not make (``TypeError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from normgrad._internal import validate as v
from normgrad.norms import core, spec


class LayerNormCache(NamedTuple):
    """What ``layernorm_backward`` and ``layernorm_nd_backward`` need from the forward pass."""

    xhat: np.ndarray  # x's shape: dgamma = sum(dout * xhat), and the dx formula uses it
    inv_std: np.ndarray  # (N, 1) or (*, 1, ..., 1): 1 / sqrt(var + eps) per sample
    gamma: np.ndarray | None  # normalized_shape: dxhat = dout * gamma; None = no scale
    has_beta: bool  # whether a shift was given, so dbeta is an array rather than None
    axes: tuple[int, ...]  # the reduction axes: the trailing len(normalized_shape) axes
    dtype: np.dtype  # x's dtype: dx is cast back to it


def parse_inputs(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Check ``layernorm_forward``'s inputs; return (gamma, beta, eps). Writes nothing.

    Shared by the reference forward pass and the fused one, so both accept and reject
    exactly the same calls, with the same messages. Integer gamma and beta come back cast
    to x's dtype.
    """
    v.float_array(x, "x")
    v.ndim(
        x,
        "x",
        2,
        "(N, D)",
        "For any trailing normalized_shape use layernorm_nd_forward; for (N, C, H, W) "
        "per-sample statistics over (C, H, W) use layernorm_nd_forward with "
        "normalized_shape=(C, H, W).",
    )
    D = x.shape[1]
    if D == 0:
        raise ValueError(
            f"x must have at least one feature to normalize over (D >= 1); got shape "
            f"{tuple(x.shape)}."
        )
    gamma = v.float_param(gamma, "gamma", x.dtype)  # integer -> x's dtype: float grads
    beta = v.float_param(beta, "beta", x.dtype)
    v.shape(gamma, "gamma", (D,), "one scale per feature of x: (N, D)")
    v.shape(beta, "beta", (D,), "one shift per feature of x: (N, D)")
    eps = core.read_eps(core.read_param(ln_param, "ln_param"), "ln_param")
    return gamma, beta, eps


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, LayerNormCache]:
    """Layer normalization forward pass (cs231n signature and semantics).

    y = gamma * (x - mu) / sqrt(var + eps) + beta, with mu and var the mean and biased
    variance of each row of x over its D features. Train and test are identical.

    Args:
        x: (N, D) input, any floating dtype.
        gamma: (D,) scale. Read, never modified. An integer or bool array is cast to
            x's dtype, so dgamma is floating.
        beta: (D,) shift. Read, never modified. Likewise.
        ln_param: dict with ``eps`` (>= 0, default 1e-5); the course's ``mode`` is
            accepted and ignored, any other key raises. Never modified.

    Returns:
        out: (N, D) in x's dtype, and the cache for ``layernorm_backward``.

    Raises:
        TypeError: x is not a floating ndarray, gamma or beta not a real numeric ndarray,
            ln_param not a dict, or eps not a real number.
        ValueError: x is not 2-D or has D = 0, gamma or beta is not (D,), eps < 0 or not
            finite, an unknown ln_param key, or eps = 0 with a constant row.
    """
    gamma, beta, eps = parse_inputs(x, gamma, beta, ln_param)
    return _forward(x, gamma, beta, (1,), eps)


def layernorm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer normalization backward pass, simplified closed form.

    Args:
        dout: (N, D) upstream gradient dL/dy.
        cache: from ``layernorm_forward``.

    Returns:
        dx: (N, D), dgamma: (D,), dbeta: (D,).

    Raises:
        TypeError: cache is not ``layernorm_forward``'s (a ``layernorm_nd_forward`` cache
            goes to ``layernorm_nd_backward``), or dout is not a floating array.
        ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, LayerNormCache, "layernorm_backward", "layernorm_forward")
    if not is_course_cache(cache):
        raise nd_cache_error("layernorm")
    return _backward(dout, cache)  # type: ignore[return-value]


def is_course_cache(cache: LayerNormCache) -> bool:
    """Whether a layer-norm cache came from ``layernorm_forward`` (not the nd forward)."""
    return not (
        cache.gamma is None or not cache.has_beta or cache.axes != (1,) or cache.xhat.ndim != 2
    )


def nd_cache_error(prefix: str, suffix: str = "") -> TypeError:
    """The error for a ``layernorm_nd_forward`` cache passed to the course's backward."""
    return TypeError(
        f"{prefix}_backward{suffix} needs the cache that {prefix}_forward{suffix} returns; "
        f"this one comes from {prefix}_nd_forward{suffix}. Pass it to "
        f"{prefix}_nd_backward{suffix}(dout, cache)."
    )


def parse_nd_inputs(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    normalized_shape: int | Sequence[int],
    ln_param: dict[str, Any] | None,
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[int, ...], float]:
    """Check ``layernorm_nd_forward``'s inputs; return (gamma, beta, S, eps). Writes nothing.

    Shared by the reference and the fused forward passes (same checks, same messages);
    S is normalized_shape as a tuple of ints.
    """
    v.float_array(x, "x")
    S = _normalized_shape(normalized_shape)
    k = len(S)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != S:
        raise ValueError(
            f"x must end in normalized_shape {S}: shape (*, {', '.join(map(str, S))}); got "
            f"{tuple(x.shape)}. Pass normalized_shape=x.shape[-k:] for the last k axes."
        )
    if gamma is not None:
        gamma = v.float_param(gamma, "gamma", x.dtype)  # integer -> x's dtype: float grads
    if beta is not None:
        beta = v.float_param(beta, "beta", x.dtype)
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None:
            v.shape(p, name, S, "normalized_shape, or None for no affine parameter")
    eps = core.read_eps(core.read_param(ln_param, "ln_param"), "ln_param")
    return gamma, beta, S, eps


def layernorm_nd_forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    normalized_shape: int | Sequence[int],
    ln_param: dict[str, Any] | None = None,
) -> tuple[np.ndarray, LayerNormCache]:
    """Layer norm over the trailing ``normalized_shape`` of x, as PyTorch's F.layer_norm.

    For x: (*, *S) with S = normalized_shape, statistics are taken over the last len(S)
    axes, one mean and variance per leading index; y = gamma * xhat + beta with gamma
    and beta of shape S. Train and test are identical.

    Args:
        x: (*, *normalized_shape) input, any floating dtype, with at least one leading
            axis or none (x.shape == normalized_shape normalizes the whole array).
        gamma: normalized_shape scale, or None for no scale. Read, never modified.
            An integer or bool array is cast to x's dtype, so dgamma is floating.
        beta: normalized_shape shift, or None for no shift. Read, never modified.
            Likewise.
        normalized_shape: an int (one trailing axis) or a sequence of ints.
        ln_param: dict with ``eps`` (>= 0, default 1e-5; ``mode`` is ignored, any other
            key raises), or None. Never modified.

    Returns:
        out: x's shape and dtype, and the cache for ``layernorm_nd_backward``.

    Raises:
        TypeError: x is not a floating ndarray, or gamma or beta is neither a real
            numeric ndarray nor None.
        ValueError: x's trailing shape is not normalized_shape, gamma or beta has another
            shape, normalized_shape is empty or not positive, eps < 0, an unknown ln_param
            key, or eps = 0 with a constant group.
    """
    gamma, beta, S, eps = parse_nd_inputs(x, gamma, beta, normalized_shape, ln_param)
    k = len(S)
    return _forward(x, gamma, beta, tuple(range(x.ndim - k, x.ndim)), eps)


def layernorm_nd_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Backward of ``layernorm_nd_forward``, simplified closed form.

    Args:
        dout: (*, *normalized_shape) upstream gradient dL/dy.
        cache: from ``layernorm_nd_forward``.

    Returns:
        dx: x's shape; dgamma and dbeta: normalized_shape, or None where the forward
        pass had no gamma or no beta.

    Raises:
        TypeError: cache is not a layer-norm cache, or dout is not a floating array.
        ValueError: dout's shape is not x's.
    """
    v.cache_of(cache, LayerNormCache, "layernorm_nd_backward", "layernorm_nd_forward")
    return _backward(dout, cache)


def _normalized_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        S: tuple[Any, ...] = (int(normalized_shape),)
    else:
        try:
            S = tuple(normalized_shape)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"normalized_shape must be an int or a tuple of ints; got {normalized_shape!r}."
            ) from None
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in S):
        raise TypeError(
            f"normalized_shape must be an int or a tuple of ints, such as x.shape[-1:]; got "
            f"{normalized_shape!r}."
        )
    if not S or not all(s > 0 for s in S):
        raise ValueError(
            f"normalized_shape must be a non-empty tuple of positive ints, such as "
            f"x.shape[-1:]; got {normalized_shape!r}."
        )
    return tuple(int(s) for s in S)


def _forward(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    axes: tuple[int, ...],
    eps: float,
) -> tuple[np.ndarray, LayerNormCache]:
    st = core.standardize(x, axes, eps)  # xhat: x's shape; inv_std: 1 along axes
    out = st.xhat if gamma is None else gamma * st.xhat  # x's shape
    if beta is not None:
        out = out + beta  # x's shape
    out = np.asarray(out).astype(x.dtype, copy=gamma is None and beta is None)
    cache = LayerNormCache(
        st.xhat.astype(x.dtype, copy=False), st.inv_std, gamma, beta is not None, axes, x.dtype
    )
    return out, cache


def _backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    xhat, inv_std, gamma, has_beta, axes, _ = cache
    core.check_dout(dout, xhat.shape)
    pshape = [xhat.shape[a] for a in axes]  # normalized_shape
    return core.affine_norm_backward(dout, xhat, inv_std, gamma, axes, pshape, shift=has_beta)


# ---- specification ---------------------------------------------------------------------


def _bind(forward: spec.Forward, eps: float = 1e-5, **_: Any) -> spec.Forward:
    return lambda x, gamma, beta: forward(x, gamma, beta, {"eps": eps})


def _bind_nd(forward: spec.Forward, eps: float = 1e-5, ndim: int = 2, **_: Any) -> spec.Forward:
    """``layernorm_nd_forward`` over x's trailing ``ndim`` axes."""

    def call(x: np.ndarray, gamma: Any, beta: Any) -> tuple[np.ndarray, Any]:
        shape = x.shape[x.ndim - ndim :] if isinstance(x, np.ndarray) else (1,) * ndim
        return forward(x, gamma, beta, shape, {"eps": eps})

    return call


def _torch(torch: Any, inputs: dict[str, Any], eps: float = 1e-5, **_: Any) -> Any:
    g = inputs["gamma"]
    return torch.nn.functional.layer_norm(inputs["x"], tuple(g.shape), g, inputs["beta"], eps)


def _symbolic(N: int = 2, D: int = 3) -> Any:
    """Layer norm on x: (N, D) as SymPy expressions, statement by statement as above."""
    from normgrad.symbolic import model as m

    return m.standardize_problem(
        "layer", (N, D), (D,), (1,), ("per sample n, over the features", "D")
    )


def _symbolic_nd(N: int = 1, A: int = 2, B: int = 2) -> Any:
    """``layernorm_nd`` on x: (N, A, B) over the trailing (A, B), symbolically."""
    from normgrad.symbolic import model as m

    return m.standardize_problem(
        "layer_nd",
        (N, A, B),
        (A, B),
        (1, 2),
        ("per sample n, over the trailing normalized_shape (A, B)", "A*B"),
    )


SPEC = spec.NormSpec(
    name="layernorm",
    title="layer normalization",
    paper="Ba, Kiros & Hinton 2016, arXiv:1607.06450",
    layout="(N, D)",
    forward=layernorm_forward,
    routes={"closed": spec.Route(layernorm_backward)},
    bind=_bind,
    param_name="ln_param",
    param_keys={"eps": "added to var under the square root, >= 0 (default 1e-5)"},
    cases=(spec.CaseInputs("train", spec.affine_inputs((4, 6), (6,))),),
    torch=_torch,
    symbolic=spec.Symbolic(
        "layer",
        ("N", "D"),
        ({"N": 2, "D": 3}, {"N": 1, "D": 4}),
        _symbolic,
        all_sizes=spec.AllSizes.rows(),
    ),
    blocks=(
        spec.Block(
            "fc",
            "layernorm",
            layernorm_forward,
            layernorm_backward,
            param_shape=lambda F: (F,),
            fused=spec.lazy_block(
                "normgrad.kernels.layer", "layernorm_forward_fused", "layernorm_backward_fused"
            ),
        ),
    ),
    fused=spec.lazy_route(
        "normgrad.kernels.layer", "layernorm_forward_fused", "layernorm_backward_fused"
    ),
)

ND_SPEC = spec.NormSpec(
    name="layernorm_nd",
    title="layer normalization over any trailing shape (F.layer_norm)",
    paper="Ba, Kiros & Hinton 2016, arXiv:1607.06450",
    layout="(*, *normalized_shape)",
    forward=layernorm_nd_forward,
    routes={"closed": spec.Route(layernorm_nd_backward)},
    bind=_bind_nd,
    param_name="ln_param",
    param_keys={"eps": "added to var under the square root, >= 0 (default 1e-5)"},
    cases=(spec.CaseInputs("train", spec.affine_inputs((2, 2, 3, 4), (3, 4))),),
    torch=_torch,
    symbolic=spec.Symbolic(
        "layer_nd",
        ("N", "A", "B"),
        ({"N": 1, "A": 2, "B": 2},),
        _symbolic_nd,
        all_sizes=spec.AllSizes(
            lambda M: {"N": 1, "A": M, "B": 1},
            lambda s: (s["A"], s["B"]),
        ),
    ),
    bench=spec.Bench(maps=True, param_shape=lambda s: s[1:], options={"ndim": 3}),
    fused=spec.lazy_route(
        "normgrad.kernels.layer", "layernorm_nd_forward_fused", "layernorm_nd_backward_fused"
    ),
)
