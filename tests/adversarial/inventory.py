"""An inventory of bad inputs across the public API, generated, with a verdict for each.

Every case calls one public function with one thing wrong and expects a clear refusal:
a ``TypeError`` or ``ValueError`` whose message names the argument (or dict key) at
fault, with every mutable argument (parameter dicts, arrays, models) exactly as it was.
``run(case)`` classifies the outcome:

- ``clear error``: the promised refusal;
- ``unclear error``: another exception type, or a message that does not name the argument;
- ``silent``: no exception at all;
- ``state changed``: refused, but something the caller owns was modified.

``tests/adversarial/test_inventory.py`` asserts every case is a clear error;
``python -m tests.adversarial.inventory`` prints the table by area (docs/guarantees.md).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normgrad import layers, optim
from normgrad.classifiers import FullyConnectedNet, ThreeLayerConvNet
from normgrad.fast_layers import conv_forward_fast, max_pool_forward_fast
from normgrad.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from normgrad.norms import registry
from normgrad.solver import Solver


@dataclass
class Case:
    """One bad call: ``call(*state)`` must raise, naming ``needle``, leaving ``state`` as is."""

    area: str
    name: str
    call: Callable[..., Any]
    needle: str  # a piece of the message: the argument or key at fault
    state: tuple[Any, ...] = field(default_factory=tuple)  # what the call may not change


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=True)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dict__") and hasattr(b, "__dict__") and type(a) is type(b):
        return _equal(vars(a), vars(b))
    return bool(a == b) if not (isinstance(a, float) and np.isnan(a)) else np.isnan(b)


def run(case: Case) -> tuple[str, str]:
    """(verdict, detail) for one case."""
    before = copy.deepcopy(case.state)
    try:
        case.call(*case.state)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if not _equal(before, case.state):
            return "state changed", message
        if case.needle not in message:
            return "unclear error", f"{type(exc).__name__}: {message}"
        return "clear error", message
    except Exception as exc:  # noqa: BLE001 - the verdict is the point
        return "unclear error", f"{type(exc).__name__}: {exc}"
    return "silent", "no exception"


# ---- malformed values ---------------------------------------------------------------

NOT_ARRAYS = [None, 3.0, "x", [[1.0, 2.0]], {"a": 1}]
BAD_DTYPES = [np.int64, np.bool_, np.complex128, object]
BAD_NUMBERS = ["1e-5", True, None, float("nan"), float("inf"), -1.0, [1e-5], np.ones(2)]


def _as(dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    if dtype is object:
        return np.empty(shape, dtype=object)
    return np.ones(shape, dtype=dtype)


# Inputs that look malformed but are documented as valid, so they are not cases.
VALID = {
    ("layernorm_nd", "gamma", None): "no scale (as F.layer_norm)",
    ("layernorm_nd", "beta", None): "no shift (as F.layer_norm)",
    ("layernorm_nd", "x", "extra axis"): "normalized over the new trailing axes",
    ("instancenorm", "x", "extra axis"): "one more spatial axis",
    ("rmsnorm", "eps", None): "np.finfo(x.dtype).eps, as F.rms_norm",
}


def _dout(y: np.ndarray) -> np.ndarray:
    """A random upstream gradient of y's shape (never ones: batch norm's dx would be 0)."""
    return np.random.default_rng(0).standard_normal(y.shape)


def _norm_cases() -> list[Case]:
    """Every registered normalization: x, gamma, beta, eps, keys, dout and cache."""
    out: list[Case] = []
    for spec in registry.SPECS:
        case = spec.cases[0]
        good = case.draw(np.random.default_rng(0))
        opts = dict(case.options)
        names = list(good)

        def call_with(
            inputs: dict[str, Any], spec: Any = spec, opts: dict = opts, **options: Any
        ) -> Callable[[], Any]:
            return lambda: spec.call(None, **{**opts, **options})(*inputs.values())

        area = f"norms: {spec.name}"
        for k in names:  # the arrays
            for bad in NOT_ARRAYS:
                if bad is None and (spec.name, k, None) in VALID:
                    continue
                out.append(Case(area, f"{k}={bad!r:.20}", call_with({**good, k: bad}), k))
            for dt in BAD_DTYPES if k == "x" else [np.complex128, object]:
                bad_arr = _as(dt, good[k].shape)
                out.append(
                    Case(area, f"{k} dtype {np.dtype(dt)}", call_with({**good, k: bad_arr}), k)
                )
            wrong = np.ones((*good[k].shape, 2))
            if (spec.name, k, "extra axis") not in VALID:
                out.append(Case(area, f"{k} shape {wrong.shape}", call_with({**good, k: wrong}), k))
        for bad in BAD_NUMBERS:  # eps, through the spec's own binding
            if bad is None and (spec.name, "eps", None) in VALID:
                continue
            out.append(Case(area, f"eps={bad!r:.20}", call_with(good, eps=bad), "eps"))

        # an unknown key and a misspelt one, on a real parameter dict the call must not touch
        forward = spec.forward
        for key in ("epsilon", "momentun", "runing_mean"):
            param = {"eps": 1e-5, key: 0.9}
            if "mode" in spec.param_keys:
                param["mode"] = "train"
            args = _positional(spec, good, param)
            out.append(Case(area, f"key {key!r}", lambda *a, f=forward: f(*a), key, args))

        # backward: a wrong cache, and a wrong dout
        y, cache = spec.call(None, **opts)(*good.values())
        for route_name, route in spec.routes.items():
            for bad_cache in (None, (1, 2), "cache", np.ones(3)):
                out.append(
                    Case(
                        area,
                        f"{route_name} cache={type(bad_cache).__name__}",
                        lambda c=bad_cache, r=route, y=y: r.backward(_dout(y), c),
                        "cache",
                    )
                )
            for bad_dout in (np.ones((*y.shape, 1)), _as(np.int64, y.shape), None):
                out.append(
                    Case(
                        area,
                        f"{route_name} dout={getattr(bad_dout, 'shape', None)}",
                        lambda d=bad_dout, r=route, c=cache: r.backward(d, c),
                        "dout",
                    )
                )
    return out


def _positional(spec: Any, good: dict[str, np.ndarray], param: dict[str, Any]) -> tuple:
    """The forward's positional arguments with ``param`` as its parameter dict."""
    if spec.name == "groupnorm":
        return (good["x"], good["gamma"], good["beta"], 2, param)
    if spec.name == "layernorm_nd":
        return (good["x"], good["gamma"], good["beta"], good["gamma"].shape, param)
    return (*good.values(), param)


def _op_cases() -> list[Case]:
    rng = np.random.default_rng(1)
    x4 = rng.standard_normal((2, 3, 6, 6))
    w4 = rng.standard_normal((4, 3, 3, 3))
    b4 = rng.standard_normal(4)
    out: list[Case] = []
    conv_bad = [
        ({"stride": 0, "pad": 1}, "stride"),
        ({"stride": 1, "pad": -1}, "pad"),
        ({"stride": 2.5, "pad": 1}, "stride"),
        ({"stride": "1", "pad": 1}, "stride"),
        ({"stride": True, "pad": 1}, "stride"),
        ({"pad": 1}, "stride"),
        ({"stride": 1, "pad": 1, "strid": 2}, "strid"),
        ({"stride": 4, "pad": 0}, "stride"),
    ]
    for fn in (layers.conv_forward_naive, conv_forward_fast):
        for param, needle in conv_bad:
            out.append(Case("ops: conv", f"{fn.__name__} {param}", fn, needle, (x4, w4, b4, param)))
        for bad in NOT_ARRAYS:
            out.append(
                Case(
                    "ops: conv",
                    f"{fn.__name__} x={bad!r:.20}",
                    fn,
                    "x",
                    (bad, w4, b4, {"stride": 1, "pad": 1}),
                )
            )
        out.append(
            Case(
                "ops: conv",
                f"{fn.__name__} w channels",
                fn,
                "w",
                (x4, w4[:, :2], b4, {"stride": 1, "pad": 1}),
            )
        )
    pool_bad = [
        ({"pool_height": 0, "pool_width": 2, "stride": 2}, "pool_height"),
        ({"pool_height": 2, "pool_width": 2, "stride": -1}, "stride"),
        ({"pool_height": 2, "pool_width": "2", "stride": 2}, "pool_width"),
        ({"pool_height": 2, "pool_width": 2}, "stride"),
        ({"pool_height": 2, "pool_width": 2, "stride": 2, "pad": 1}, "pad"),
        ({"pool_height": 9, "pool_width": 2, "stride": 2}, "pool_height"),
    ]
    for fn in (layers.max_pool_forward_naive, max_pool_forward_fast):
        for param, needle in pool_bad:
            out.append(Case("ops: pool", f"{fn.__name__} {param}", fn, needle, (x4, param)))
    x2 = rng.standard_normal((5, 4))
    drop_bad = [
        ({"mode": "train"}, "p"),
        ({"mode": "train", "p": 0}, "p"),
        ({"mode": "train", "p": 1.5}, "p"),
        ({"mode": "train", "p": "0.5"}, "p"),
        ({"mode": "train", "p": True}, "p"),
        ({"mode": "eval", "p": 0.5}, "mode"),
        ({"mode": "train", "p": 0.5, "seed": 1.5}, "seed"),
        ({"mode": "train", "p": 0.5, "sed": 1}, "sed"),
    ]
    for param, needle in drop_bad:
        out.append(Case("ops: dropout", f"{param}", layers.dropout_forward, needle, (x2, param)))
    y = np.array([0, 1, 2, 0, 1])
    loss_bad = [
        (np.array([0, 1, 2, 0, 9]), "y"),
        (np.array([0, 1, 2, 0, -1]), "y"),
        (np.array([0.0, 1, 2, 0, 1]), "y"),
        (np.array([0, 1, 2]), "y"),
        (np.array([True, False, True, False, True]), "y"),
    ]
    for fn in (layers.softmax_loss, layers.svm_loss):
        for bad_y, needle in loss_bad:
            out.append(
                Case("ops: losses", f"{fn.__name__} y={bad_y.tolist()}", fn, needle, (x2, bad_y))
            )
        for bad in NOT_ARRAYS:
            out.append(Case("ops: losses", f"{fn.__name__} x={bad!r:.20}", fn, "x", (bad, y)))
    for fn in (layers.affine_forward,):
        for bad_w, needle in ((rng.standard_normal((3, 2)), "w"), ("w", "w"), (None, "w")):
            out.append(
                Case(
                    "ops: affine",
                    f"w={getattr(bad_w, 'shape', bad_w)}",
                    fn,
                    needle,
                    (x2, bad_w, np.zeros(2)),
                )
            )
    for name in (
        "affine_backward",
        "relu_backward",
        "sigmoid_backward",
        "dropout_backward",
        "conv_backward_naive",
        "max_pool_backward_naive",
    ):
        for bad_cache in (None, (1, 2, 3), "c"):
            fn = getattr(layers, name)
            out.append(
                Case(
                    "ops: caches",
                    f"{name} {type(bad_cache).__name__}",
                    lambda f=fn, c=bad_cache: f(np.ones((5, 4)), c),
                    "cache",
                )
            )
    return out


def _model_cases() -> list[Case]:
    out: list[Case] = []
    fc_bad = [
        ({"hidden_dims": [10, 0]}, "hidden"),
        ({"hidden_dims": [10.5]}, "hidden"),
        ({"reg": -1.0}, "reg"),
        ({"reg": "0"}, "reg"),
        ({"weight_scale": float("nan")}, "weight_scale"),
        ({"weight_scale": 0.0}, "weight_scale"),
        ({"dropout_keep_ratio": 0}, "dropout"),
        ({"dropout_keep_ratio": 1.5}, "dropout"),
        ({"normalization": "batchnrom"}, "normalization"),
        ({"input_dim": 0}, "input_dim"),
        ({"num_classes": 1.5}, "num_classes"),
        ({"dtype": np.int32}, "dtype"),
        ({"activation": "tanh"}, "activation"),
        ({"seed": "1"}, "seed"),
    ]
    for kwargs, needle in fc_bad:
        kw = {"hidden_dims": [10, 10], "input_dim": 8, **kwargs}
        out.append(
            Case(
                "models: FullyConnectedNet",
                f"{kwargs}",
                lambda kw=kw: FullyConnectedNet(**kw),
                needle,
            )
        )
    cnn_bad = [
        ({"num_filters": 0}, "num_filters"),
        ({"filter_size": 4}, "filter_size"),
        ({"input_dim": (3, 7, 8)}, "input_dim"),
        ({"hidden_dim": -1}, "hidden_dim"),
        ({"normalization": "layernorm"}, "normalization"),
        ({"normalization": "groupnorm", "num_groups": 3}, "num_groups"),
        ({"reg": float("inf")}, "reg"),
        ({"weight_scale": -1.0}, "weight_scale"),
    ]
    for kwargs, needle in cnn_bad:
        kw = {"input_dim": (3, 8, 8), "num_filters": 4, "filter_size": 3, "hidden_dim": 5, **kwargs}
        out.append(
            Case(
                "models: ThreeLayerConvNet",
                f"{kwargs}",
                lambda kw=kw: ThreeLayerConvNet(**kw),
                needle,
            )
        )
    np.random.seed(0)  # noqa: NPY002
    net = FullyConnectedNet([6], input_dim=4, num_classes=3, normalization="batchnorm")
    loss_bad = [
        (np.ones((5, 3)), np.zeros(5, int), "X"),
        (np.ones((5, 4)), np.zeros(4, int), "y"),
        (np.ones((5, 4)), np.full(5, 3), "label"),
        (np.ones((5, 4)), np.zeros(5), "y"),
        ("X", np.zeros(5, int), "X"),
    ]
    for X, yb, needle in loss_bad:
        out.append(
            Case(
                "models: loss()",
                f"X {getattr(X, 'shape', X)} y {getattr(yb, 'shape', '')}",
                lambda m, X=X, yb=yb: m.loss(X, yb),
                needle,
                (net,),
            )
        )
    return out


def _training_cases() -> list[Case]:
    out: list[Case] = []
    w, dw = np.ones((3, 2)), np.ones((3, 2))
    rule_bad = [
        ("learning_rate", "fast"),
        ("learning_rate", float("nan")),
        ("learning_rate", -1.0),
        ("learning_rate", True),
        ("momentum", 1.5),
        ("beta1", 1.0),
        ("beta2", -0.1),
        ("decay_rate", 2.0),
        ("epsilon", 0.0),
        ("learning_rat", 1e-3),
        ("t", 1.5),
    ]
    for rule_name in ("sgd", "sgd_momentum", "rmsprop", "adam"):
        rule = optim.UPDATE_RULES[rule_name]
        for key, value in rule_bad:
            config = {key: value}
            out.append(
                Case(
                    "training: update rules",
                    f"{rule_name} {key}={value!r}",
                    lambda wa, da, c, r=rule: r(wa, da, c),
                    key,
                    (w, dw, config),
                )
            )
        out.append(
            Case(
                "training: update rules",
                f"{rule_name} dw shape",
                rule,
                "dw",
                (w, np.ones((2, 3)), {}),
            )
        )
    np.random.seed(0)  # noqa: NPY002
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, normalization="batchnorm")
    rng = np.random.default_rng(0)
    data = {
        "X_train": rng.standard_normal((20, 4)),
        "y_train": np.arange(20) % 3,
        "X_val": rng.standard_normal((6, 4)),
        "y_val": np.arange(6) % 3,
    }
    solver_bad = [
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("num_epochs", -1),
        ("lr_decay", float("nan")),
        ("lr_decay", "0.9"),
        ("update_rule", "adamw"),
        ("update_rule", 3),
        ("optim_config", [1]),
        ("print_every", 0),
        ("num_train_samples", -5),
        ("verbose", "yes"),
        ("learning_rate", 1e-3),
        ("resume_from", "/nonexistent/x.npz"),
    ]
    for key, value in solver_bad:
        out.append(
            Case(
                "training: Solver kwargs",
                f"{key}={value!r}",
                lambda m, d, k=key, val=value: Solver(m, d, **{k: val}),
                key if key != "resume_from" else "x.npz",
                (model, data),
            )
        )
    data_bad = [
        ({**data, "y_train": data["y_train"][:5]}, "y_train"),
        ({k: v for k, v in data.items() if k != "X_val"}, "X_val"),
        ({**data, "X_train": data["X_train"][:, :3]}, "X_train"),
        ({**data, "y_val": data["y_val"] + 3}, "y_val"),
    ]
    for bad_data, needle in data_bad:
        out.append(
            Case(
                "training: Solver data",
                f"{needle}",
                lambda m, d: Solver(m, d),
                needle,
                (model, bad_data),
            )
        )
    return out


def _gradcheck_cases() -> list[Case]:
    out: list[Case] = []
    x = np.random.default_rng(2).standard_normal((3, 2))
    for h in (0.0, -1e-5, float("nan"), "1e-5", None):
        out.append(
            Case(
                "gradcheck",
                f"eval_numerical_gradient h={h!r}",
                lambda xa, h=h: eval_numerical_gradient(
                    lambda a: float(a.sum()), xa, verbose=False, h=h
                ),
                "h",
                (x,),
            )
        )
    out.append(
        Case(
            "gradcheck",
            "f returns an array",
            lambda xa: eval_numerical_gradient(lambda a: a * 2, xa, verbose=False),
            "f",
            (x,),
        )
    )
    for df in (np.ones((2, 3)), np.ones(3), "df"):
        out.append(
            Case(
                "gradcheck",
                f"df={getattr(df, 'shape', df)}",
                lambda xa, df=df: eval_numerical_gradient_array(lambda a: a * 2, xa, df),
                "df",
                (x,),
            )
        )
    for bad in NOT_ARRAYS:
        out.append(
            Case(
                "gradcheck",
                f"x={bad!r:.20}",
                lambda b=bad: eval_numerical_gradient(lambda a: 0.0, b, verbose=False),
                "x",
            )
        )
    return out


def cases() -> list[Case]:
    """Every case, grouped by area."""
    return [*_norm_cases(), *_op_cases(), *_model_cases(), *_training_cases(), *_gradcheck_cases()]


def table() -> str:
    """Outcome counts by area, as docs/guarantees.md shows them."""
    verdicts = ("clear error", "unclear error", "silent", "state changed")
    counts: dict[str, Counter[str]] = {}
    for case in cases():
        counts.setdefault(case.area, Counter())[run(case)[0]] += 1
    rows = [f"| area | cases | {' | '.join(verdicts)} |", "|---|---|" + "---|" * len(verdicts)]
    total: Counter[str] = Counter()
    for area, c in counts.items():
        total.update(c)
        rows.append(f"| {area} | {sum(c.values())} | {' | '.join(str(c[v]) for v in verdicts)} |")
    rows.append(
        f"| **total** | {sum(total.values())} | {' | '.join(str(total[v]) for v in verdicts)} |"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
