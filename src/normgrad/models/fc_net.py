"""A fully connected network of any depth, with an optional normalization and dropout.

cs231n assignment 2's ``FullyConnectedNet``, same signature and semantics. With L layers
(``len(hidden_dims) + 1``) the architecture is::

    {affine - [normalization] - relu - [dropout]} x (L - 1) - affine - softmax

Parameters, for layer i = 1..L with sizes dims = [input_dim, *hidden_dims, num_classes]:

    W{i}: (dims[i-1], dims[i])   weight_scale * np.random.randn, drawn in layer order
    b{i}: (dims[i],)             zeros
    gamma{i}: (dims[i],)         ones   (i < L, with a normalization)
    beta{i}: (dims[i],)          zeros  (i < L, with a normalization that has a shift)

all cast to ``dtype``. Regularization is 0.5 * reg * sum_i sum(W{i}**2); gamma, beta and
the biases are not regularized.

Beyond the course: ``normalization`` takes any name in ``models.blocks.FC_BLOCKS`` (the
course's ``"batchnorm"`` and ``"layernorm"``, and every other registered layer), and
``activation="sigmoid"`` replaces ReLU (the nets of Ioffe & Szegedy 2015, Figure 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from normgrad._internal import validate as v
from normgrad.models.blocks import FC_BLOCKS, affine_norm_act_backward, affine_norm_act_forward
from normgrad.models.inputs import (
    check_X,
    check_y,
    float_dtype,
    layer_sizes,
    option,
    positive_int,
    reg_strength,
    restore,
    snapshot,
)
from normgrad.models.inputs import weight_scale as checked_weight_scale
from normgrad.models.penalty import l2_term, sum_of_squares
from normgrad.ops._checks import seed as check_seed
from normgrad.ops.activations import ACTIVATIONS
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.dropout import dropout_backward, dropout_forward
from normgrad.ops.losses import softmax_loss


class FullyConnectedNet:
    """Multi-layer fully connected network with softmax loss (cs231n).

    Attributes:
        params: name -> array: W1, b1, gamma1, beta1, ..., WL, bL.
        num_layers: L = len(hidden_dims) + 1.
        normalization: None or a key of ``FC_BLOCKS`` ("batchnorm", "layernorm", ...).
        activation: "relu" (the course's) or "sigmoid".
        use_dropout: True when ``dropout_keep_ratio != 1``.
        dropout_param: ``{"mode", "p"}`` (+ ``"seed"``) for every dropout layer; empty
            without dropout.
        bn_params: one dict per hidden layer, the normalization's parameter dict:
            ``{"mode": "train"}`` for batch norm (it gains ``running_mean``/``running_var``
            in training), ``{}`` for layer norm, and an empty list without normalization.
        reg, dtype: as given.
    """

    # The normalizations it supports: None and every fully connected block.
    NORMALIZATIONS: tuple[str | None, ...] = (None, *FC_BLOCKS)
    ACTIVATIONS: tuple[str, ...] = tuple(ACTIVATIONS)

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: type | np.dtype = np.float32,
        seed: int | None = None,
        activation: str = "relu",
    ) -> None:
        """Build the net; draws W1, ..., WL from NumPy's global generator, in order.

        Args:
            hidden_dims: sizes of the L - 1 hidden layers, e.g. [100, 100]: a list, tuple,
                range or 1-D integer array of positive ints ([] is a softmax classifier).
            input_dim: D, the size of one flattened input, a positive int.
            num_classes: C, a positive int.
            dropout_keep_ratio: probability of KEEPING a unit, a real number in (0, 1];
                1 means no dropout layers.
            normalization: None, or a key of ``FC_BLOCKS`` ("batchnorm", "layernorm",
                "rmsnorm", ...).
            reg: L2 strength, a finite real number >= 0.
            weight_scale: standard deviation of the weights, a finite real number > 0.
            dtype: a floating NumPy dtype (float16 to longdouble), of every parameter and
                of the computation (float64 for gradient checks).
            seed: None, or an int in [0, 2**32 - 1]: dropout then reseeds with it on
                every call (deterministic masks, for gradient checking).
            activation: "relu" (default, the course's) or "sigmoid".

        Raises:
            TypeError: a size that is not an int (100.0 included: the course's
                np.random.randn refuses it too), hidden_dims not a sequence, a number
                that is not real (a string, a bool, None), a dtype that is not floating,
                a seed that is not an int, or a normalization or activation that is not
                a string.
            ValueError: a size < 1, dropout_keep_ratio outside (0, 1], a negative or
                non-finite reg, a weight_scale <= 0 or non-finite, a seed out of range,
                or an unknown normalization or activation. A refused call draws no
                random number.
        """
        # Every argument is checked before the first random draw: a refused call leaves
        # NumPy's global generator, which the course's notebooks seed, untouched.
        option(
            normalization,
            "normalization",
            self.NORMALIZATIONS,
            "For group norm over conv features use ThreeLayerConvNet(normalization='groupnorm').",
        )
        option(activation, "activation", self.ACTIVATIONS)
        hidden_dims = layer_sizes(hidden_dims, "hidden_dims", "[100, 100]")
        input_dim = positive_int(input_dim, "input_dim", example=3 * 32 * 32)
        num_classes = positive_int(num_classes, "num_classes", example=10)
        keep = v.real(
            dropout_keep_ratio,
            "dropout_keep_ratio",
            example=0.5,
            low=0.0,
            high=1.0,
            low_open=True,
        )
        reg_strength(reg)
        checked_weight_scale(weight_scale)
        float_dtype(dtype)
        if seed is not None:
            seed = check_seed(seed, "seed")

        self.normalization = normalization
        self.activation = activation
        self.use_dropout = keep != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.params: dict[str, np.ndarray] = {}

        block = FC_BLOCKS[normalization] if normalization is not None else None
        dims = [self.input_dim, *hidden_dims, self.num_classes]
        for i in range(1, self.num_layers + 1):
            # The course's global generator, in layer order: seeded notebooks reproduce.
            self.params[f"W{i}"] = weight_scale * np.random.randn(dims[i - 1], dims[i])  # noqa: NPY002
            self.params[f"b{i}"] = np.zeros(dims[i])
            if block is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(block.param_shape(dims[i]))
                if block.shift:
                    self.params[f"beta{i}"] = np.zeros(block.param_shape(dims[i]))

        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        self.bn_params: list[dict[str, Any]] = []
        if block is not None:
            self.bn_params = [block.init_param() for _ in range(self.num_layers - 1)]

        for name, param in self.params.items():
            self.params[name] = param.astype(dtype)

    def _set_mode(self, mode: str, bn_params: list[dict[str, Any]]) -> None:
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization is not None and FC_BLOCKS[self.normalization].train_mode:
            for bn_param in bn_params:
                bn_param["mode"] = mode

    def _hidden_forward(
        self, X: np.ndarray, bn_params: list[dict[str, Any]]
    ) -> tuple[np.ndarray, list[tuple[Any, Any]]]:
        """The hidden layers: X (N, D) -> h (N, H_{L-1}), and per layer (cache, drop cache)."""
        caches: list[tuple[Any, Any]] = []
        h = X  # (N, D)
        norm = self.normalization is not None
        for i in range(1, self.num_layers):
            h, cache = affine_norm_act_forward(
                h,
                self.params[f"W{i}"],
                self.params[f"b{i}"],
                self.params.get(f"gamma{i}"),
                self.params.get(f"beta{i}"),
                bn_params[i - 1] if norm else None,
                self.normalization,
                self.activation,
            )  # (N, H_i)
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self.dropout_param)  # (N, H_i)
            caches.append((cache, drop_cache))
        return h, caches

    def preactivations(self, X: np.ndarray, mode: str = "test") -> list[np.ndarray]:
        """The input to each hidden layer's activation, (N, H_i) each, without training.

        ``mode="train"`` normalizes with the statistics of X itself, as a training step
        would, on copies of the normalization's parameter dicts, so the running
        statistics are left as they are. Dropout is not applied.
        """
        check_X(X, (self.input_dim,), "FullyConnectedNet", any_layout=True)
        h = X.astype(self.dtype, copy=False)  # (N, D)
        scratch = [dict(p) for p in self.bn_params]
        if self.normalization is not None and FC_BLOCKS[self.normalization].train_mode:
            for p in scratch:
                p["mode"] = mode
        act_forward, _ = ACTIVATIONS[self.activation]
        out = []
        for i in range(1, self.num_layers):
            a, _ = affine_norm_act_forward(
                h,
                self.params[f"W{i}"],
                self.params[f"b{i}"],
                self.params.get(f"gamma{i}"),
                self.params.get(f"beta{i}"),
                scratch[i - 1] if scratch else None,
                self.normalization,
                activation=None,
            )  # (N, H_i): affine and normalization, no activation
            out.append(a)
            h, _ = act_forward(a)  # (N, H_i)
        return out

    @overload
    def loss(self, X: np.ndarray, y: None = None) -> np.ndarray: ...

    @overload
    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[np.floating, dict[str, np.ndarray]]: ...

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[np.floating, dict[str, np.ndarray]]:
        """Scores in test mode (y None), else the loss and its gradients (train mode).

        Args:
            X: (N, D) or (N, d_1, ..., d_k) with d_1 * ... * d_k = D, floating or integer;
                cast to ``dtype``. NaN and infinite values are accepted and give a NaN
                loss, as in the course (the Solver records it).
            y: (N,) integer labels in [0, C), or None.

        Returns:
            y None: scores (N, C). Otherwise (loss, grads): the loss a NumPy float64
            scalar, as the course's (longdouble for a longdouble model), and grads[k]
            shaped like params[k].

        Raises:
            TypeError: X is not a real numeric ndarray, or y not an integer ndarray.
            ValueError: X's row size is not input_dim, X has no rows, y is not (N,), a
                label lies outside [0, num_classes), or ``model.reg`` was set to a
                negative or non-finite number. A refused call, or one that fails inside
                a layer, leaves the model as it was (modes and running statistics).
        """
        check_X(X, (self.input_dim,), "FullyConnectedNet", any_layout=True)
        if y is not None:
            check_y(y, X.shape[0], self.num_classes, "FullyConnectedNet")
        reg_strength(self.reg, "model.reg")  # notebooks set it after construction
        X = X.astype(self.dtype, copy=False)
        saved = snapshot(self.dropout_param, self.bn_params)
        try:
            return self._loss(X, y)
        except BaseException:
            restore(saved, self.dropout_param, self.bn_params)
            raise

    def _loss(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> np.ndarray | tuple[np.floating, dict[str, np.ndarray]]:
        """``loss`` once its arguments are checked: X already in ``dtype``."""
        mode = "test" if y is None else "train"
        self._set_mode(mode, self.bn_params)

        L = self.num_layers
        h, caches = self._hidden_forward(X, self.bn_params)  # (N, H_{L-1})
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])

        if y is None:
            return scores  # (N, C)

        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            assert dh is not None  # every layer above the first passes a gradient down
            cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dh = dropout_backward(dh, drop_cache)
            # Layer 1's dx would be the data's gradient: skip its largest matrix product.
            dh, dW, db, dgamma, dbeta = affine_norm_act_backward(dh, cache, need_dx=i > 1)
            grads[f"W{i}"], grads[f"b{i}"] = dW, db
            if dgamma is not None:
                grads[f"gamma{i}"] = dgamma
            if dbeta is not None:
                grads[f"beta{i}"] = dbeta
        if self.reg:  # reg 0 adds exactly 0.0: skip the passes over every W
            for i in range(1, L + 1):
                W = self.params[f"W{i}"]
                loss = loss + l2_term(self.reg, sum_of_squares(W))  # as the course sums
                grads[f"W{i}"] += self.reg * W  # (in, out); grads are fresh arrays
        return loss, grads
