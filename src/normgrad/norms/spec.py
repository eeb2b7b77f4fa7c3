"""What a normalization is, for everything that uses it: one ``NormSpec`` per layer.

Every module in ``normgrad.norms`` ends with a ``SPEC`` (or several) that records what
each consumer needs, so no consumer keeps a list of its own:

- the forward pass and every backward route (``routes``; ``fused``, the numba route,
  loaded lazily when numba is installed);
- the parameter dict (``param_name``, ``param_keys``) and the layouts it accepts;
- how to call it with its parameter dict bound (``bind``), which ``normgrad check``,
  the PyTorch parity tests and the proofs' code tie all use;
- its finite-difference cases (``cases``) and its PyTorch oracle (``torch``);
- its symbolic problem for ``normgrad derive`` (``symbolic``);
- the model blocks it can stand in (``blocks``): a fully connected sandwich (``fc``:
  affine - norm - activation) or a convolutional one (``conv``: conv - norm - ReLU -
  pool), under the name the models and ``normgrad train --norm`` use.

``normgrad.norms.registry`` lists the specs; everything else is derived from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Inputs = dict[str, np.ndarray]
Forward = Callable[..., tuple[np.ndarray, Any]]
Backward = Callable[[np.ndarray, Any], Any]
BlockKind = Literal["fc", "conv"]


@dataclass(frozen=True)
class CheckCase:
    """One backward route of one layer, and how to exercise it with finite differences.

    ``forward(*inputs.values()) -> (out, cache)`` and ``backward(dout, cache)`` returns
    one gradient per input, in order. ``make_inputs`` draws float64 inputs.
    """

    layer: str
    route: str
    forward: Forward
    backward: Backward
    make_inputs: Callable[[np.random.Generator], Inputs]


@dataclass(frozen=True)
class Route:
    """A backward route, and the forward that makes its cache (None: the spec's own)."""

    backward: Backward
    forward: Callable[..., tuple[np.ndarray, Any]] | None = None


@dataclass(frozen=True)
class CaseInputs:
    """One set of check inputs: a label, how to draw them, and the options to bind.

    ``options`` go to ``NormSpec.bind`` (``mode``, ``G``...); ``draw(rng)`` returns float64
    arrays named as the forward's leading arguments (x, gamma[, beta]).
    """

    label: str
    draw: Callable[[np.random.Generator], Inputs]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Block:
    """How a model sandwich calls the normalization, under the model's name for it.

    ``forward(x, gamma, beta, norm_param, **options) -> (out, cache)`` and
    ``backward(dout, cache) -> (dx, dgamma, dbeta)``, with dbeta None when the layer has
    no shift. ``param_shape(F)`` is gamma's (and beta's) shape for F features or
    channels. ``init_param()`` is a fresh ``norm_param`` for one layer; with
    ``train_mode`` the model sets its ``"mode"`` to "train" or "test" on every call.
    ``options`` names the model settings passed on as keywords (group norm: ``G``).
    ``fused`` loads the block's numba pair (``FusedBlock``, ``lazy_block``); it raises
    ImportError without numba, and is None for a layer with no fused route.
    ``cancels_bias``: in train mode the output does not depend on a bias added per
    feature (channel) before the layer, so that bias's gradient is exactly 0 (batch
    norm subtracts the batch mean of each feature; instance norm each channel's).
    """

    kind: BlockKind
    name: str
    forward: Forward
    backward: Backward
    param_shape: Callable[[int], tuple[int, ...]]
    init_param: Callable[[], dict[str, Any]] = dict
    train_mode: bool = False
    shift: bool = True
    options: tuple[str, ...] = ()
    cancels_bias: bool = False
    fused: Callable[[], FusedBlock] | None = None


@dataclass(frozen=True)
class FusedBlock:
    """A block's fused (numba) forward and backward, with the block's signatures.

    ``forward_relu``, when set, is the forward followed by ReLU in the same pass:
    ``(np.maximum(out, 0), cache)``, the cache for ``backward``. ``channel_major``: the
    forward reads an (N, C, H, W) view of channel-major (C, N, H, W) memory in place and
    the backward returns dx laid out the same way, so the conv sandwich can hand it its
    convolution's one-product output (``kernels.conv.conv_forward_channel_major``).
    ``relu_pool``, when set, is (forward, backward) of the norm, ReLU and a max pool in
    one pass each way: ``forward(x, gamma, beta, param, pool_param, **options)`` ->
    (out, cache) and ``backward(dout, cache)`` -> (dx, dgamma, dbeta).
    """

    forward: Forward
    backward: Backward
    forward_relu: Forward | None = None
    channel_major: bool = False
    relu_pool: tuple[Callable[..., Any], Callable[..., Any]] | None = None


def _last_axis(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[-1],)


@dataclass(frozen=True)
class Bench:
    """How ``normgrad bench`` draws the layer at the grid's sizes.

    ``maps``: conv-like (N, C, H, W) grid shapes, not (N, D) rows; ``param_shape(x_shape)``:
    gamma's (and beta's) shape for that x; ``options``: the layer options to bind there
    (group norm's G = 32, as in the paper).
    """

    maps: bool = False
    param_shape: Callable[[tuple[int, ...]], tuple[int, ...]] = _last_axis
    options: Mapping[str, Any] = field(default_factory=dict)


def _features(shape: Mapping[str, int]) -> tuple[int, ...]:
    return (shape["D"],)


@dataclass(frozen=True)
class AllSizes:
    """The normalization's proof for every group size (``normgrad derive --all``).

    ``group_shape(M)``: the library shape that holds exactly one normalization group of M
    values, for the tie to the NumPy code; ``param_shape(shape)``: gamma's shape there.
    ``build``: ``"module:function"`` (or a callable) returning a
    ``normgrad.symbolic.all_n.AllSizes`` problem, imported only when called; by default
    the function of ``normgrad.symbolic.all_n`` named as the ``Symbolic``.
    ``rows()`` and ``columns()`` give the two (N, D) layouts.
    """

    group_shape: Callable[[int], Mapping[str, int]]
    param_shape: Callable[[Mapping[str, int]], tuple[int, ...]]
    build: Callable[[], Any] | str | None = None

    @classmethod
    def rows(cls) -> AllSizes:
        """One group is one row of D features (layer and RMS norm): N = 1, D = M."""
        return cls(lambda M: {"N": 1, "D": M}, _features)

    @classmethod
    def columns(cls) -> AllSizes:
        """One group is one feature's column of N samples (batch norm and its kin)."""
        return cls(lambda M: {"N": M, "D": 1}, _features)

    def builder(self, name: str) -> Callable[[], Any]:
        """The build function of the ``Symbolic`` called ``name`` (imported now)."""
        if callable(self.build):
            return self.build
        module, _, function = (self.build or f"normgrad.symbolic.all_n:{name}").partition(":")
        fn: Callable[[], Any] = getattr(importlib.import_module(module), function)
        return fn


@dataclass(frozen=True)
class Symbolic:
    """The normalization's exact proof for ``normgrad derive``.

    ``build(**shape)`` returns a ``normgrad.symbolic.model.Problem``. It is a callable
    that imports SymPy only when called, or ``"module:function"`` for a builder that
    lives in ``normgrad.symbolic``. ``dims`` names its shape arguments in ``--shape``
    order; ``shapes`` are what ``derive --all`` proves; ``options`` names the shape
    arguments that are layer options rather than axes (group norm's ``G``). Each
    symbolic route mirrors the library route of the same name in ``NormSpec.routes``,
    and the code tie runs every one of those. ``all_sizes``: the proof for every group
    size, when there is one.
    """

    name: str
    dims: tuple[str, ...]
    shapes: tuple[Mapping[str, int], ...]
    build: Callable[..., Any] | str
    options: tuple[str, ...] = ()
    all_sizes: AllSizes | None = None

    def builder(self) -> Callable[..., Any]:
        """The build function (imported now when given as a string)."""
        if callable(self.build):
            return self.build
        module, _, name = self.build.partition(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return fn


@dataclass(frozen=True)
class NormSpec:
    """Everything normgrad knows about one normalization layer (see the module docstring).

    Attributes:
        name: the layer's name in ``normgrad check`` and the parity tests.
        title: a few words, e.g. "batch normalization".
        paper: the reference, e.g. "Ioffe & Szegedy 2015, arXiv:1502.03167".
        layout: x's layout, e.g. "(N, D)".
        forward: the reference forward pass.
        routes: backward route name -> ``Route``, every reference route.
        bind: ``bind(forward, **options)`` returns ``f(x, gamma[, beta]) -> (out,
            cache)``: ``forward`` (the reference one, or a route's own, which takes the
            same arguments) called with its parameter dict built from ``options``
            (``eps``, ``mode``, ``G``, ...).
        param_name: the parameter dict's name in the course (``bn_param``...).
        param_keys: every key the parameter dict reads, and what it means.
        cases: the check inputs, at least one.
        torch: ``torch(torch_module, inputs, **options) -> out``, PyTorch's forward on
            float64 tensors, for the autograd parity tests; None when PyTorch has no
            such layer (then the tests build the oracle from the spec's formula).
        symbolic: the exact proof, or None.
        blocks: the model sandwiches it can stand in.
        fused: returns the numba route (``Route`` with its own forward); raises
            ImportError without numba. None when there is no fused route.
        bench: how ``normgrad bench`` draws it (default: (N, D) rows, gamma (D,)).
    """

    name: str
    title: str
    paper: str
    layout: str
    forward: Forward
    routes: Mapping[str, Route]
    bind: Callable[..., Forward]
    param_name: str
    param_keys: Mapping[str, str]
    cases: tuple[CaseInputs, ...]
    torch: Callable[..., Any] | None
    symbolic: Symbolic | None
    blocks: tuple[Block, ...] = ()
    fused: Callable[[], Route] | None = None
    bench: Bench = Bench()

    def all_routes(self) -> dict[str, Route]:
        """The reference routes, plus ``fused`` when numba is installed."""
        routes = dict(self.routes)
        if self.fused is not None:
            try:
                routes["fused"] = self.fused()
            except ImportError:
                pass
        return routes

    def call(self, route: Route | None = None, **options: Any) -> Forward:
        """``f(x, gamma[, beta])``: the forward that makes ``route``'s cache (the
        reference forward when ``route`` is None or has none), with ``options`` bound."""
        forward = self.forward if route is None or route.forward is None else route.forward
        return self.bind(forward, **options)

    def check_cases(self) -> list[CheckCase]:
        """One ``CheckCase`` per route and input set, for ``normgrad check``."""
        out = []
        for case in self.cases:
            for route_name, route in self.all_routes().items():
                label = route_name if len(self.cases) == 1 else f"{route_name} {case.label}"
                out.append(
                    CheckCase(
                        self.name,
                        label,
                        self.call(route, **case.options),
                        route.backward,
                        case.draw,
                    )
                )
        return out


def lazy_route(module: str, forward: str, backward: str) -> Callable[[], Route]:
    """A ``fused`` loader: imports ``module`` (numba kernels) only when called."""

    def load() -> Route:
        mod = importlib.import_module(module)
        return Route(backward=getattr(mod, backward), forward=getattr(mod, forward))

    return load


def lazy_block(
    module: str,
    forward: str,
    backward: str,
    forward_relu: str | None = None,
    channel_major: bool = False,
    relu_pool: tuple[str, str] | None = None,
) -> Callable[[], FusedBlock]:
    """A ``Block.fused`` loader: imports ``module`` (numba kernels) only when called."""

    def load() -> FusedBlock:
        mod = importlib.import_module(module)
        relu = None if forward_relu is None else getattr(mod, forward_relu)
        pair = (
            None if relu_pool is None else (getattr(mod, relu_pool[0]), getattr(mod, relu_pool[1]))
        )
        return FusedBlock(getattr(mod, forward), getattr(mod, backward), relu, channel_major, pair)

    return load


def offset_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """x = 5 randn + 12, the course's check input: a missing centring shows at once."""
    return 5.0 * rng.standard_normal(shape) + 12.0


def affine_inputs(
    x_shape: tuple[int, ...], p_shape: tuple[int, ...], *, shift: bool = True
) -> Callable[[np.random.Generator], Inputs]:
    """A check-input drawer: offset x, and random gamma (and beta) of ``p_shape``."""

    def draw(rng: np.random.Generator) -> Inputs:
        inputs = {"x": offset_normal(rng, x_shape), "gamma": rng.standard_normal(p_shape)}
        if shift:
            inputs["beta"] = rng.standard_normal(p_shape)
        return inputs

    return draw
