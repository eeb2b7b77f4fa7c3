"""The registry is the one list of normalizations: every consumer must see every entry.

Each test enumerates ``normgrad.norms.registry.SPECS`` and fails if a consumer misses a
registered normalization: ``normgrad check``, the PyTorch parity (run here, for every
route and case of every spec), ``normgrad derive``, the model blocks, the models'
allowed names and ``normgrad train --norm``. The last test adds a toy spec with one
line and watches it reach every consumer, in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from normgrad.gradient_check import norm_rel_error
from normgrad.models import blocks
from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.models.fc_net import FullyConnectedNet
from normgrad.norms import registry
from normgrad.norms.spec import NormSpec
from normgrad.tools import block_cases, checks

SPECS = registry.SPECS
IDS = [s.name for s in SPECS]


def _routes(spec: NormSpec) -> list[tuple[str, object]]:
    return list(spec.all_routes().items())


def test_names_are_unique_and_every_spec_is_complete() -> None:
    assert len({s.name for s in SPECS}) == len(SPECS)
    for s in SPECS:
        assert s.routes and s.cases, s.name
        assert s.torch is not None, f"{s.name}: no PyTorch oracle"
        assert s.symbolic is not None, f"{s.name}: no symbolic proof"
        assert s.param_keys and "eps" in s.param_keys, s.name
        assert all(b.kind in ("fc", "conv") for b in s.blocks), s.name
    assert len({s.symbolic.name for s in SPECS if s.symbolic}) == len(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_normgrad_check_covers_every_route_and_case(spec: NormSpec) -> None:
    have = {(c.layer, c.route) for c in checks.cases()}
    for case in spec.cases:
        for route, _ in _routes(spec):
            label = route if len(spec.cases) == 1 else f"{route} {case.label}"
            assert (spec.name, label) in have
    assert spec.name in checks.layers()


def _torch_reference(spec: NormSpec, case, inputs: dict[str, np.ndarray], dout: np.ndarray):
    torch = pytest.importorskip("torch")
    tensors = {k: torch.tensor(a, requires_grad=True) for k, a in inputs.items()}
    out = spec.torch(torch, tensors, **case.options)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), {f"d{k}": t.grad.numpy() for k, t in tensors.items()}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_route_matches_torch_autograd_in_float64(spec: NormSpec, seed: int) -> None:
    for case in spec.cases:
        rng = np.random.default_rng(seed)
        inputs = case.draw(rng)
        for route_name, route in _routes(spec):
            out, cache = spec.call(route, **case.options)(*inputs.values())
            dout = rng.standard_normal(out.shape)  # random upstream gradient, never ones
            grads = route.backward(dout, cache)
            want_out, want = _torch_reference(spec, case, inputs, dout)
            where = f"{spec.name} {route_name} {case.label}"
            assert norm_rel_error(out, want_out) < 1e-12, where
            got = dict(zip(want, grads, strict=True))
            for name, w in want.items():
                assert got[name].shape == w.shape, (where, name)
                assert norm_rel_error(got[name], w) < 1e-10, (where, name)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_derive_knows_every_spec_and_every_route_has_a_twin(spec: NormSpec) -> None:
    pytest.importorskip("sympy")
    from normgrad.symbolic import registry as sym_registry

    assert spec.symbolic.name in sym_registry.layers()
    assert sym_registry.spec_of(spec.symbolic.name) is spec
    shape = sym_registry.default_shapes(spec.symbolic.name)[0]
    problem = sym_registry.build(spec.symbolic.name, **shape)
    assert set(problem.routes) == set(spec.routes)
    assert list(problem.params) == list(spec.cases[0].draw(np.random.default_rng(0)))


def test_every_block_reaches_the_models_the_sandwich_checks_and_the_cli() -> None:
    from normgrad.cli import build_parser
    from normgrad.tools import train
    from normgrad.tools.experiments import batch_size

    fc = {b.name for s in SPECS for b in s.blocks if b.kind == "fc"}
    conv = {b.name for s in SPECS for b in s.blocks if b.kind == "conv"}
    assert set(blocks.FC_BLOCKS) == fc and set(blocks.CONV_BLOCKS) == conv
    assert set(FullyConnectedNet.NORMALIZATIONS) == {None, *fc}
    assert set(ThreeLayerConvNet.NORMALIZATIONS) == {None, *conv}
    assert set(train.NORMS_BY_MODEL["fc"]) == {"none", *fc}
    assert set(train.NORMS_BY_MODEL["cnn"]) == {"none", *conv}
    assert set(batch_size.NORMS) == fc
    routes = {(c.layer, c.route.split()[0]) for c in block_cases.CASES}
    assert {("affine_norm_relu", n) for n in fc} <= routes
    assert {("conv_norm_relu_pool", n) for n in conv} <= routes
    parser = build_parser()
    for name in fc | conv:
        parser.parse_args(["train", "--norm", name])  # a choice argparse accepts


@pytest.mark.parametrize("name", sorted(blocks.FC_BLOCKS))
def test_every_fc_block_trains_in_the_net(name: str) -> None:
    np.random.seed(0)  # noqa: NPY002  (the course's global generator)
    net = FullyConnectedNet(
        [6, 5], input_dim=4, num_classes=3, normalization=name, dtype=np.float64
    )
    X, y = np.random.randn(8, 4), np.arange(8) % 3  # noqa: NPY002
    loss, grads = net.loss(X, y)
    assert np.isfinite(loss) and set(grads) == set(net.params)
    assert all(grads[k].shape == net.params[k].shape for k in grads)


@pytest.mark.parametrize("name", sorted(blocks.CONV_BLOCKS))
def test_every_conv_block_trains_in_the_convnet(name: str) -> None:
    np.random.seed(0)  # noqa: NPY002
    net = ThreeLayerConvNet(
        input_dim=(2, 6, 6),
        num_filters=4,
        filter_size=3,
        hidden_dim=5,
        num_classes=3,
        dtype=np.float64,
        normalization=name,
        num_groups=2,
    )
    X, y = np.random.randn(4, 2, 6, 6), np.arange(4) % 3  # noqa: NPY002
    loss, grads = net.loss(X, y)
    assert np.isfinite(loss) and set(grads) == set(net.params)


@pytest.mark.slow
def test_one_registry_line_reaches_every_consumer() -> None:
    # A toy normalization, layer norm under a new name, registered with one line before
    # any consumer is imported: every consumer must list it without being edited.
    script = textwrap.dedent("""
        import dataclasses
        from normgrad.norms import layer, registry, spec

        block = dataclasses.replace(layer.SPEC.blocks[0], name="toynorm")
        sym = dataclasses.replace(layer.SPEC.symbolic, name="toy")
        toy = dataclasses.replace(layer.SPEC, name="toynorm", blocks=(block,), symbolic=sym)
        registry.SPECS = (*registry.SPECS, toy)  # the one line

        from normgrad.cli import build_parser
        from normgrad.models.fc_net import FullyConnectedNet
        from normgrad.symbolic import registry as sym_registry
        from normgrad.tools import checks, train

        assert "toynorm" in checks.layers(), checks.layers()
        assert "toynorm" in FullyConnectedNet.NORMALIZATIONS
        assert "toynorm" in train.NORMS_BY_MODEL["fc"]
        assert "toy" in sym_registry.layers()
        build_parser().parse_args(["train", "--norm", "toynorm"])
        rows = checks.run_checks(["toynorm"])
        assert rows and all(r.passed for r in rows)
        print("reached", len(rows))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "reached" in r.stdout


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_bench_draws_every_spec_from_its_own_bench_field(spec) -> None:
    """``normgrad bench --op NAME`` takes shapes, gamma's shape and options from the spec:
    the forward accepts what it draws at a small shape of the same kind."""
    from normgrad.tools import bench

    if spec.name == "sync_batchnorm":
        pytest.skip("needs MPI ranks; benchmarked in docs/scaling.md")
    shape = (2, 64, 3, 4) if spec.bench.maps else (6, 5)
    assert len(bench.default_shapes(spec.name)[0]) == len(shape)
    inputs, dout = bench._inputs(spec, shape, "float64", np.random.default_rng(0))
    out, _ = spec.call(None, **{**spec.bench.options, "eps": 1e-5})(*inputs.values())
    assert out.shape == dout.shape == shape
