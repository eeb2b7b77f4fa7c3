"""A correct student solution, written the way cs231n's skeleton asks: the grader's fixture.

Tuple caches in the student's own order, the course's variable names, NumPy only (no
normgrad import): this is what ``normgrad grade`` sees in a finished
``cs231n/layers.py``. The grader's tests plant each catalog mistake (and mistakes the
catalog does not know) into it with ``render(edits=...)``, and the documentation's
example session grades it with the seed notebook's slip planted.
"""

from __future__ import annotations

HEADER = "import numpy as np\n"

FUNCTIONS: dict[str, str] = {
    "affine_forward": """
def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache
""",
    "affine_backward": """
def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db
""",
    "relu_forward": """
def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache
""",
    "relu_backward": """
def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx
""",
    "softmax_loss": """
def softmax_loss(x, y):
    N = x.shape[0]
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx
""",
    "svm_loss": """
def svm_loss(x, y):
    N = x.shape[0]
    correct = x[np.arange(N), y]
    margins = np.maximum(0, x - correct[:, None] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    positive = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    dx[np.arange(N), y] -= positive
    dx /= N
    return loss, dx
""",
    "batchnorm_forward": """
def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    out, cache = None, None
    if mode == "train":
        mu = np.mean(x, axis=0)
        var = np.var(x, axis=0)
        std = np.sqrt(var + eps)
        xhat = (x - mu) / std
        out = gamma * xhat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (x, mu, var, eps, xhat, gamma, bn_param)
    elif mode == "test":
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * xhat + beta
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache
""",
    "batchnorm_backward": """
def batchnorm_backward(dout, cache):
    x, mu, var, eps, xhat, gamma, bn_param = cache
    N = dout.shape[0]
    xmu = x - mu
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / (sqrtvar ** 2) * divar
    dvar = 0.5 * 1.0 / sqrtvar * dsqrtvar
    dsq = 1.0 / N * np.ones_like(dout) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dx1, axis=0)
    dx2 = 1.0 / N * np.ones_like(dout) * dmu
    dx = dx1 + dx2
    return dx, dgamma, dbeta
""",
    "batchnorm_backward_alt": """
def batchnorm_backward_alt(dout, cache):
    x, mu, var, eps, xhat, gamma, bn_param = cache
    N = dout.shape[0]
    std = np.sqrt(var + eps)
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dx = gamma / std * (dout - (dbeta + xhat * dgamma) / N)
    return dx, dgamma, dbeta
""",
    "layernorm_forward": """
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = np.mean(x, axis=1, keepdims=True)
    var = np.var(x, axis=1, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    cache = (x, mu, var, eps, xhat, gamma)
    return out, cache
""",
    "layernorm_backward": """
def layernorm_backward(dout, cache):
    x, mu, var, eps, xhat, gamma = cache
    std = np.sqrt(var + eps)
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    mean_dxhat = np.mean(dxhat, axis=1, keepdims=True)
    proj = np.mean(dxhat * xhat, axis=1, keepdims=True)
    dx = (dxhat - mean_dxhat - xhat * proj) / std
    return dx, dgamma, dbeta
""",
    "dropout_forward": """
def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask, out = None, None
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    elif mode == "test":
        out = x
    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache
""",
    "dropout_backward": """
def dropout_backward(dout, cache):
    dropout_param, mask = cache
    mode = dropout_param["mode"]
    if mode == "train":
        dx = dout * mask
    elif mode == "test":
        dx = dout
    return dx
""",
    "conv_forward_naive": """
def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho = 1 + (H + 2 * pad - HH) // stride
    Wo = 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    cache = (x, w, b, conv_param)
    return out, cache
""",
    "conv_backward_naive": """
def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    HH, WW = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis=(0, 2, 3))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            sl = (slice(None), slice(None), slice(i * stride, i * stride + HH),
                  slice(j * stride, j * stride + WW))
            dw += np.tensordot(dout[:, :, i, j], xp[sl], axes=([0], [0]))
            dxp[sl] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db
""",
    "max_pool_forward_naive": """
def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s
    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    cache = (x, pool_param)
    return out, cache
""",
    "max_pool_backward_naive": """
def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            top = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += top * dout[:, :, i, j][:, :, None, None]
    return dx
""",
    "spatial_batchnorm_forward": """
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out, cache = batchnorm_forward(rows, gamma, beta, bn_param)
    out = out.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return out, cache
""",
    "spatial_batchnorm_backward": """
def spatial_batchnorm_backward(dout, cache):
    N, C, H, W = dout.shape
    drows = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx, dgamma, dbeta = batchnorm_backward_alt(drows, cache)
    dx = dx.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return dx, dgamma, dbeta
""",
    "spatial_groupnorm_forward": """
def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    eps = gn_param.get("eps", 1e-5)
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    var = xg.var(axis=(2, 3, 4), keepdims=True)
    std = np.sqrt(var + eps)
    xhat = ((xg - mu) / std).reshape(N, C, H, W)
    out = gamma * xhat + beta
    cache = (G, xhat, std, gamma)
    return out, cache
""",
    "spatial_groupnorm_backward": """
def spatial_groupnorm_backward(dout, cache):
    G, xhat, std, gamma = cache
    N, C, H, W = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(N, G, C // G, H, W)
    xg = xhat.reshape(N, G, C // G, H, W)
    mean_dxhat = dxhat.mean(axis=(2, 3, 4), keepdims=True)
    proj = (dxhat * xg).mean(axis=(2, 3, 4), keepdims=True)
    dx = (dxhat - mean_dxhat - xg * proj) / std
    return dx.reshape(N, C, H, W), dgamma, dbeta
""",
}

FAST_LAYERS = """from .layers import conv_backward_naive, conv_forward_naive
from .layers import max_pool_backward_naive, max_pool_forward_naive


def conv_forward_fast(x, w, b, conv_param):
    return conv_forward_naive(x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    return conv_backward_naive(dout, cache)


def max_pool_forward_fast(x, pool_param):
    return max_pool_forward_naive(x, pool_param)


def max_pool_backward_fast(dout, cache):
    return max_pool_backward_naive(dout, cache)
"""


def render(
    edits: dict[str, list[tuple[str, str]]] | None = None,
    overrides: dict[str, str] | None = None,
    only: tuple[str, ...] | None = None,
    header: str = HEADER,
) -> str:
    """The solution as one ``layers.py``: ``edits`` replace text inside a function (each
    old text must occur exactly once in it), ``overrides`` replace whole functions, and
    ``only`` keeps just those functions.

    Raises:
        ValueError: an edit whose old text does not occur exactly once, or an unknown name.
    """
    edits, overrides = edits or {}, overrides or {}
    unknown = (set(edits) | set(overrides) | set(only or ())) - set(FUNCTIONS)
    if unknown:
        raise ValueError(f"unknown function(s) {sorted(unknown)}; the sample has {list(FUNCTIONS)}")
    parts = [header]
    for name, src in FUNCTIONS.items():
        if only is not None and name not in only:
            continue
        src = overrides.get(name, src)
        for old, new in edits.get(name, []):
            if src.count(old) != 1:
                raise ValueError(f"{old!r} occurs {src.count(old)} times in {name}; need exactly 1")
            src = src.replace(old, new)
        parts.append(src)
    return "\n".join(parts)
