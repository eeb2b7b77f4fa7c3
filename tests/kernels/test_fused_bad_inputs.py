"""Malformed input to every fused route: the reference's error, word for word, nothing changed.

The table of malformed calls is ``tests/norms/test_bad_inputs.py``'s, loaded from that
file (one table for both): every bad x, gamma, beta, parameter dict, option and empty
reduction it lists for a normalization is tried on the fused route too, which must raise
the same exception with the same message as the reference, and leave the parameter dict
(running statistics included), x, gamma and beta exactly as they were. Every fused
backward refuses every cache its forward did not make (``TypeError`` naming its forward)
and every bad dout, as the reference backwards do.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from normgrad.kernels import batchnorm as bn
from normgrad.kernels import group, instance, layer, renorm, rms, spatial


def _table() -> Any:
    path = Path(__file__).resolve().parents[1] / "norms" / "test_bad_inputs.py"
    spec = importlib.util.spec_from_file_location("_norms_bad_input_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


T = _table()


def _bn_call(forward):
    return lambda a: forward(a["x"], a["gamma"], a["beta"], a["param"])


# table name -> (fused forward call, fused backward, the fused forward's name)
FUSED = {
    "batchnorm": (
        _bn_call(bn.batchnorm_forward_fused),
        bn.batchnorm_backward_fused,
        "batchnorm_forward_fused",
    ),
    "batchrenorm": (
        _bn_call(renorm.batchrenorm_forward_fused),
        renorm.batchrenorm_backward_fused,
        "batchrenorm_forward_fused",
    ),
    "spatial_batchnorm": (
        _bn_call(spatial.spatial_batchnorm_forward_fused),
        spatial.spatial_batchnorm_backward_fused,
        "spatial_batchnorm_forward_fused",
    ),
    "layernorm": (
        _bn_call(layer.layernorm_forward_fused),
        layer.layernorm_backward_fused,
        "layernorm_forward_fused",
    ),
    "layernorm_nd": (
        lambda a: layer.layernorm_nd_forward_fused(
            a["x"], a["gamma"], a["beta"], a["normalized_shape"], a["param"]
        ),
        layer.layernorm_nd_backward_fused,
        "layernorm_nd_forward_fused",
    ),
    "groupnorm": (
        lambda a: group.spatial_groupnorm_forward_fused(
            a["x"], a["gamma"], a["beta"], a["G"], a["param"]
        ),
        group.spatial_groupnorm_backward_fused,
        "spatial_groupnorm_forward_fused",
    ),
    "instancenorm": (
        _bn_call(instance.instancenorm_forward_fused),
        instance.instancenorm_backward_fused,
        "instancenorm_forward_fused",
    ),
    "rmsnorm": (
        lambda a: rms.rmsnorm_forward_fused(a["x"], a["gamma"], a["param"]),
        rms.rmsnorm_backward_fused,
        "rmsnorm_forward_fused",
    ),
}
FORWARD = [c for c in T.FORWARD if c[0] in FUSED]


def test_every_fused_route_is_in_the_table() -> None:
    from normgrad.norms import registry

    assert set(FUSED) == {s.name for s in registry.SPECS if s.fused is not None}
    assert len(FORWARD) >= 8 * 50


@pytest.mark.parametrize(
    "name,label,apply,exc,pattern", FORWARD, ids=[f"{c[0]}: {c[1]}" for c in FORWARD]
)
def test_fused_forward_says_what_the_reference_says(name, label, apply, exc, pattern) -> None:
    lay = T.LAYERS[name]
    outcomes = []
    for call in (lay.call, FUSED[name][0]):
        args = T.good_args(lay)
        apply(lay, args)
        before = {k: T.snapshot(v) for k, v in args.items()}
        with pytest.raises(exc, match=pattern) as info:
            call(args)
        for k in before:  # the parameter dict (running stats too), x, gamma and beta
            T.assert_same(before[k], args[k])
        outcomes.append((type(info.value), str(info.value)))
    assert outcomes[0] == outcomes[1]


def _fused_caches() -> dict[str, Any]:
    return {name: fwd(T.good_args(T.LAYERS[name]))[1] for name, (fwd, _, _) in FUSED.items()}


# (fused backward, cache) pairs that are legitimately compatible
COMPATIBLE = {("layernorm_nd", "layernorm")}


def _backward_cases() -> list[tuple[str, str, Any]]:
    out = []
    for name in FUSED:
        for label, cache in [
            ("None", None),
            ("tuple", ("x", "xhat")),
            ("dict", {"x": 1}),
            ("array", np.zeros(3)),
        ]:
            out.append((name, label, cache))
        for other in FUSED:
            if other != name and (name, other) not in COMPATIBLE:
                out.append((name, f"{other}'s fused cache", ("fused", other)))
        for other in T.LAYERS:
            if T.SPEC_OF.get(other, other) != name and (name, other) not in COMPATIBLE:
                out.append((name, f"{other}'s reference cache", ("reference", other)))
    return out


BACKWARD = _backward_cases()


@pytest.mark.parametrize("name,label,cache", BACKWARD, ids=[f"{c[0]}: {c[1]}" for c in BACKWARD])
def test_fused_backward_refuses_a_cache_its_forward_did_not_make(name, label, cache) -> None:
    _, backward, forward_name = FUSED[name]
    if isinstance(cache, tuple) and cache and cache[0] in ("fused", "reference"):
        kind, other = cache
        lay = T.LAYERS[other]
        cache = (FUSED[other][0] if kind == "fused" else lay.call)(T.good_args(lay))[1]
    dout = np.random.default_rng(8).standard_normal(T.LAYERS[name].x_shape)
    with pytest.raises(TypeError, match=rf"needs the cache that {forward_name} returns"):
        backward(dout, cache)


DOUT = [(name, *case) for name in FUSED for case in T.DOUT]


@pytest.mark.parametrize("name,label,make,exc,pattern", DOUT, ids=[f"{c[0]}: {c[1]}" for c in DOUT])
def test_fused_backward_refuses_a_bad_dout(name, label, make, exc, pattern) -> None:
    forward, backward, _ = FUSED[name]
    out, cache = forward(T.good_args(T.LAYERS[name]))
    assert type(cache).__name__.startswith("Fused")
    before = T.snapshot(cache)
    with pytest.raises(exc, match=pattern):
        backward(make(np.random.default_rng(9).standard_normal(out.shape)), cache)
    for got, want in zip(cache, before, strict=True):
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(got, want)


def test_the_fused_layernorm_backward_sends_an_nd_cache_to_the_nd_backward() -> None:
    args = T.good_args(T.LAYERS["layernorm_nd"])
    _, cache = FUSED["layernorm_nd"][0](args)
    with pytest.raises(TypeError, match="Pass it to layernorm_nd_backward_fused"):
        layer.layernorm_backward_fused(np.ones(args["x"].shape), cache)
