"""The fused update rules give the reference rules' bits, and run only where they do.

``normgrad.kernels.rules`` runs every built-in rule in one pass; ``training.rules`` calls
it for C-contiguous float32/float64 arrays of one dtype with Python-float
hyperparameters. Here: 20 steps of every rule, fused and reference (``use_fused(False)``),
agree with ``np.array_equal`` in weights and state; the calls the kernels do not take
(NumPy-scalar hyperparameters, mixed dtypes, strided arrays, integer weights) give the
reference's results too, dtypes included; inputs are never written.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("numba")

from normgrad import kernels  # noqa: E402
from normgrad.training import rules  # noqa: E402

RULES = ["sgd", "sgd_momentum", "rmsprop", "adam"]


def _reference(rule, w, dw, config):
    previous = kernels.use_fused(False)
    try:
        return rules.UPDATE_RULES[rule](w, dw, config)
    finally:
        kernels.use_fused(previous)


def _same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    else:
        assert a == b


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (30, 40), (3, 200, 300)])
def test_twenty_steps_are_bit_identical(rule, dtype, shape) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape).astype(dtype)
    fused_w, fused_cfg = w, {"learning_rate": 1e-2}
    ref_w, ref_cfg = w.copy(), {"learning_rate": 1e-2}
    for _ in range(20):
        dw = rng.standard_normal(shape).astype(dtype)
        dw_before = dw.copy()
        w_before = fused_w.copy()
        fused_w, fused_cfg = rules.UPDATE_RULES[rule](fused_w, dw, fused_cfg)
        ref_w, ref_cfg = _reference(rule, ref_w, dw, ref_cfg)
        np.testing.assert_array_equal(dw, dw_before)  # inputs are never written
        assert not np.shares_memory(fused_w, w_before)
    _same(fused_w, ref_w)
    assert list(fused_cfg) == list(ref_cfg)
    for key in ref_cfg:
        _same(fused_cfg[key], ref_cfg[key])


def test_the_fused_kernel_really_runs(monkeypatch) -> None:
    from normgrad.kernels import rules as fused_rules

    calls = []
    monkeypatch.setattr(
        fused_rules, "adam", lambda *a: calls.append(a) or (a[0] * 1, a[2] * 1, a[3] * 1)
    )
    w = np.ones(4, np.float32)
    rules.adam(w, w, {})
    assert len(calls) == 1
    rules.adam(w, w, {"learning_rate": np.float64(1e-3)})  # a NumPy scalar: the reference
    assert len(calls) == 1


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
    "label",
    ["numpy scalar", "mixed dtypes", "strided", "integer w", "float16", "state dtype", "numpy t"],
)
def test_calls_the_kernels_do_not_take_give_the_reference(rule, label) -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    dw = rng.standard_normal((6, 5)).astype(np.float32)
    config: dict = {}
    if label == "numpy scalar":
        config["learning_rate"] = np.float64(1e-2)
    elif label == "mixed dtypes":
        dw = dw.astype(np.float64)
    elif label == "strided":
        w, dw = w[:, ::2], dw[:, ::2]
    elif label == "integer w":
        w = np.arange(30).reshape(6, 5)
    elif label == "float16":
        w, dw = w.astype(np.float16), dw.astype(np.float16)
    elif label == "state dtype":
        key = rules.STATE_KEYS[rule][0] if rules.STATE_KEYS[rule] else None
        if key is not None:
            config[key] = np.zeros(w.shape)
    elif label == "numpy t" and rule == "adam":
        config["t"] = np.int64(2)
    got_w, got = rules.UPDATE_RULES[rule](w, dw, copy.deepcopy(config))
    want_w, want = _reference(rule, w, dw, copy.deepcopy(config))
    _same(got_w, want_w)
    assert list(got) == list(want)
    for key in want:
        _same(got[key], want[key])


def test_a_refused_config_is_left_as_it_was() -> None:
    w = np.ones(3, np.float32)
    config = {"learning_rate": 1e-3, "beta1": 1.5}
    with pytest.raises(ValueError, match=r"config\['beta1'\]"):
        rules.adam(w, w, config)
    assert config == {"learning_rate": 1e-3, "beta1": 1.5}
