"""normgrad.ops as a package surface: it re-exports every layer of its modules."""

from __future__ import annotations

import importlib

import normgrad.ops as ops

LAYER_MODULES = ("activations", "affine", "conv", "dropout", "fast", "losses", "pool")


def test_all_names_every_layer_and_cache_of_its_modules():
    expected = set()
    for name in LAYER_MODULES:
        module = importlib.import_module(f"normgrad.ops.{name}")
        expected |= {
            n
            for n, obj in vars(module).items()
            if getattr(obj, "__module__", None) == module.__name__
            and (n.endswith(("_forward", "_backward", "_loss", "Cache")))
        }
    assert {"sigmoid_forward", "sigmoid_backward"} <= expected
    assert expected <= set(ops.__all__), sorted(expected - set(ops.__all__))
    for n in ops.__all__:
        assert getattr(ops, n) is not None
