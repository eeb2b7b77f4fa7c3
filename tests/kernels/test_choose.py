"""Which routes the models run: fused kernels for float32, the reference on request.

``normgrad.kernels.use_fused`` and ``NORMGRAD_FUSED=0`` force the reference; float64
sandwiches keep the reference norms (the course's printed values hold bit for bit);
float32 ones run the fused norms, and a cache always goes back through the route that
made it. The kernels are cached on disk: a second process loads them, compiling nothing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from normgrad import kernels
from normgrad.gradient_check import norm_rel_error
from normgrad.models import blocks
from normgrad.models.cnn import ThreeLayerConvNet
from normgrad.models.fc_net import FullyConnectedNet


def _fc_call(dtype, normalization="batchnorm"):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(dtype)
    w, b = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    g, be = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    return x, w, b, g, be


def test_use_fused_toggles_and_returns_the_previous_setting() -> None:
    previous = kernels.use_fused(False)
    try:
        assert not kernels.fused_enabled()
        assert kernels.use_fused(True) is False
        assert kernels.fused_enabled() == kernels.available()
    finally:
        kernels.use_fused(previous)
    with pytest.raises(TypeError, match="use_fused takes True or False"):
        kernels.use_fused(1)  # type: ignore[arg-type]


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm", "rmsnorm", "batchrenorm"])
def test_float32_fc_sandwiches_run_the_fused_norm_and_float64_the_reference(normalization) -> None:
    for dtype, fused in [(np.float32, True), (np.float64, False)]:
        x, w, b, g, be = _fc_call(dtype)
        be = None if normalization == "rmsnorm" else be
        out, cache = blocks.affine_norm_relu_forward(
            x, w, b, g, be, {"mode": "train"}, normalization
        )
        assert (type(cache.norm).__name__.startswith("Fused")) is fused
        assert (cache.fused is not None) is fused
        dout = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
        grads = blocks.affine_norm_relu_backward(dout, cache)
        assert grads[0].shape == x.shape and grads[0].dtype == dtype


def test_a_cache_goes_back_through_the_route_that_made_it() -> None:
    x, w, b, g, be = _fc_call(np.float32)
    dout = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    out, cache = blocks.affine_norm_relu_forward(x, w, b, g, be, {"mode": "train"}, "batchnorm")
    previous = kernels.use_fused(False)
    try:  # the fused cache still goes to the fused backward
        grads = blocks.affine_norm_relu_backward(dout, cache)
        ref_out, ref_cache = blocks.affine_norm_relu_forward(
            x, w, b, g, be, {"mode": "train"}, "batchnorm"
        )
        assert type(ref_cache.norm).__name__ == "BatchNormCache"
        ref = blocks.affine_norm_relu_backward(dout, ref_cache)
    finally:
        kernels.use_fused(previous)
    assert norm_rel_error(out, ref_out) < 1e-6
    dx, dw, db, dgamma, dbeta = grads
    for got, want in zip((dx, dw, dgamma, dbeta), (ref[0], ref[1], ref[3], ref[4]), strict=True):
        assert norm_rel_error(got, want) < 1e-5
    assert np.max(np.abs(db)) < 1e-6 * np.max(np.abs(dw))  # batch norm cancels the bias: 0


@pytest.mark.parametrize("normalization", [None, "batchnorm", "groupnorm", "instancenorm"])
def test_the_float32_convnet_agrees_with_the_reference(normalization) -> None:
    np.random.seed(0)  # noqa: NPY002  (the course's global generator)
    model = ThreeLayerConvNet(
        input_dim=(3, 8, 8),
        num_filters=4,
        filter_size=3,
        hidden_dim=6,
        normalization=normalization,
        num_groups=2,
        weight_scale=0.1,
    )
    X = np.random.randn(5, 3, 8, 8).astype(np.float32)  # noqa: NPY002
    y = np.arange(5) % 10
    loss, grads = model.loss(X, y)
    previous = kernels.use_fused(False)
    try:
        ref_loss, ref_grads = model.loss(X, y)
    finally:
        kernels.use_fused(previous)
    assert abs(loss - ref_loss) < 1e-6 * abs(ref_loss)
    _compare_grads(
        grads,
        ref_grads,
        cancelled={"b1"} if normalization in ("batchnorm", "instancenorm") else set(),
    )


def _compare_grads(grads, ref_grads, cancelled) -> None:
    scale = max(np.max(np.abs(g)) for g in ref_grads.values())
    for k in ref_grads:
        if k in cancelled:  # a bias the normalization subtracts out: exactly 0 but rounding
            assert np.max(np.abs(grads[k])) < 1e-6 * scale, k
        else:
            assert norm_rel_error(grads[k], ref_grads[k]) < 1e-4, k


def test_the_float32_fc_net_agrees_with_the_reference() -> None:
    np.random.seed(1)  # noqa: NPY002
    model = FullyConnectedNet([20, 30], input_dim=15, normalization="batchnorm", weight_scale=0.1)
    X, y = np.random.randn(16, 15), np.arange(16) % 10  # noqa: NPY002
    loss, grads = model.loss(X, y)
    assert type(model.bn_params[0]["running_mean"]) is np.ndarray
    previous = kernels.use_fused(False)
    try:
        ref_loss, ref_grads = model.loss(X, y)
    finally:
        kernels.use_fused(previous)
    assert abs(loss - ref_loss) < 1e-6 * abs(ref_loss)
    _compare_grads(grads, ref_grads, cancelled={"b1", "b2"})


def _subprocess(code: str, env_extra: dict[str, str] | None = None) -> str:
    import os

    env = {**os.environ, **(env_extra or {})}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_the_environment_variable_forces_the_reference() -> None:
    out = _subprocess(
        """
        import numpy as np
        from normgrad import kernels
        from normgrad.models import blocks
        x, w = np.ones((4, 3), np.float32), np.eye(3, dtype=np.float32)
        b = np.zeros(3, np.float32)
        g = np.ones(3, np.float32); be = np.zeros(3, np.float32)
        x[0, 0] = 2
        _, cache = blocks.affine_norm_relu_forward(x, w, b, g, be, {"mode": "train"}, "batchnorm")
        print(kernels.fused_enabled(), type(cache.norm).__name__)
        """,
        {"NORMGRAD_FUSED": "0"},
    )
    assert out.split() == ["False", "BatchNormCache"]


@pytest.mark.slow
def test_a_second_process_loads_the_kernels_without_compiling() -> None:
    code = """
        import numpy as np
        from normgrad.kernels import batchnorm, columns, flatrows, layer, rows
        x = np.random.default_rng(0).standard_normal((8, 5))
        p = {"mode": "train"}
        out, cache = batchnorm.batchnorm_forward_fused(x, np.ones(5), np.zeros(5), p)
        batchnorm.batchnorm_backward_fused(out, cache)
        out, cache = layer.layernorm_forward_fused(x, np.ones(5), np.zeros(5), {})
        layer.layernorm_backward_fused(out, cache)
        used = (flatrows._forward, rows._backward, columns._train_small, columns._backward_small)
        misses = sum(sum(k.stats.cache_misses.values()) for k in used)
        hits = sum(sum(k.stats.cache_hits.values()) for k in used)
        print(misses, hits)
        """
    _subprocess(code)  # the first process compiles (or loads) and writes the cache
    misses, hits = _subprocess(code).split()
    assert misses == "0" and int(hits) == 4


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("numba").config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads"
)
def test_a_second_process_loads_the_parallel_drivers_without_compiling() -> None:
    code = """
        import numba
        import numpy as np
        from normgrad.kernels import _parallel, flatrows, layer, rows
        numba.set_num_threads(2)
        x = np.random.default_rng(0).standard_normal((512, 1024))  # threads: 2
        out, cache = layer.layernorm_forward_fused(x, np.ones(1024), np.zeros(1024), {})
        layer.layernorm_backward_fused(out, cache)
        used = [_parallel.driver(k) for k in (flatrows._forward, rows._backward)]
        misses = sum(sum(k.stats.cache_misses.values()) for k in used)
        hits = sum(sum(k.stats.cache_hits.values()) for k in used)
        print(_parallel.ENABLED, misses, hits)
        """
    env = {"NORMGRAD_THREADS": "numba"}
    first = _subprocess(code, env).split()  # compiles (or loads) and writes the cache
    if first[0] != "True":
        pytest.skip("no thread-safe numba threading layer here: run() keeps its pool")
    assert _subprocess(code, env).split() == ["True", "0", "2"]


def test_layer_norm_takes_two_passes_in_cache_and_prefetches_out_of_it(loop_calls) -> None:
    """flatrows' choice at its real threshold: a 4 MiB float32 x (in cache on the machines
    we measured) takes the two-pass loop, 16 MiB and more the two-pass loop with a
    prefetch of the next row (float64 that size is pipelined: see test_rows_shapes)."""
    from normgrad.kernels import layer

    seen = loop_calls
    for rows in (1024, 4096):  # x: 4 MiB, then 16 MiB of float32
        x = np.ones((rows, 1024), np.float32)
        x[:, 0] = 2.0
        layer.layernorm_forward_fused(x, np.ones(1024, np.float32), np.zeros(1024, np.float32), {})
    assert seen and seen[0] == (False, False) and seen[-1] == (False, True)  # one per thread
    assert set(seen) == {(False, False), (False, True)}
