"""A three-layer convolutional network, with an optional normalization after the conv.

cs231n assignment 2's ``ThreeLayerConvNet``, same signature, defaults and semantics::

    conv - [normalization] - relu - 2x2 max pool
         - affine - relu - affine - softmax

For input (N, C, H, W), F filters of size K x K (stride 1, pad (K - 1) // 2, so the conv
keeps H x W when K is odd), hidden size M and num_classes classes:

    W1: (F, C, K, K)            b1: (F,)        weight_scale * randn, zeros
    W2: (F * H/2 * W/2, M)      b2: (M,)
    W3: (M, num_classes)        b3: (num_classes,)
    gamma1, beta1: ``CONV_BLOCKS[normalization].param_shape(F)``: (F,) for "batchnorm"
        and "instancenorm", (1, F, 1, 1) for "groupnorm" (the course's group-norm shape);
        ones and zeros. Absent without a normalization.

W1, W2, W3 are drawn in that order, as in the course, so a seeded course notebook gets
the same weights. Regularization is 0.5 * reg * sum_i sum(W{i}**2). The normalization
option is beyond the course and takes any name in ``models.blocks.CONV_BLOCKS``: batch
norm normalizes each channel over (N, H, W) (Ioffe & Szegedy 2015), group norm each
sample's channel groups over (C/G, H, W) (Wu & He 2018), instance norm each sample's
channels over (H, W) (Ulyanov et al. 2016).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from normgrad.models.blocks import (
    CONV_BLOCKS,
    affine_relu_backward,
    affine_relu_forward,
    conv_norm_relu_pool_backward,
    conv_norm_relu_pool_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from normgrad.models.inputs import (
    check_X,
    check_y,
    float_dtype,
    option,
    positive_int,
    reg_strength,
    restore,
    snapshot,
)
from normgrad.models.inputs import weight_scale as checked_weight_scale
from normgrad.models.penalty import l2_term, sum_of_squares
from normgrad.ops.affine import affine_backward, affine_forward
from normgrad.ops.losses import softmax_loss


def _image_shape(input_dim: Any) -> tuple[int, int, int]:
    """input_dim as (C, H, W): three positive ints, H and W even (the 2x2 pool halves them)."""
    ok = isinstance(input_dim, (list, tuple)) or (
        isinstance(input_dim, np.ndarray) and input_dim.ndim == 1
    )
    if not ok or len(input_dim) != 3:
        raise (ValueError if ok else TypeError)(
            f"input_dim must be (C, H, W), three positive ints such as (3, 32, 32); got "
            f"{input_dim!r}. For flattened data use FullyConnectedNet(input_dim=D)."
        )
    C, H, W = (positive_int(s, f"input_dim[{i}]", example=32) for i, s in enumerate(input_dim))
    if H % 2 or W % 2:
        raise ValueError(
            f"input_dim must have an even height and width: the 2x2 max pool halves them; "
            f"got (C, H, W) = {(C, H, W)}. Crop or pad the images to an even size."
        )
    return C, H, W


class ThreeLayerConvNet:
    """conv - [norm] - relu - 2x2 max pool - affine - relu - affine - softmax (cs231n).

    Attributes:
        params: W1, b1, [gamma1, beta1], W2, b2, W3, b3.
        normalization: None or a key of ``CONV_BLOCKS``; num_groups: G for group norm.
        bn_params: ``[{"mode": "train"}]`` for batch norm (gains running statistics),
            ``[{}]`` for group norm, ``[]`` otherwise.
        reg, dtype: as given.
    """

    # The normalizations it supports: None and every conv block of the registry.
    NORMALIZATIONS: tuple[str | None, ...] = (None, *CONV_BLOCKS)

    def __init__(
        self,
        input_dim: Sequence[int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: type | np.dtype = np.float32,
        normalization: str | None = None,
        num_groups: int = 4,
    ) -> None:
        """Build the net; draws W1, W2, W3 from NumPy's global generator, in order.

        Args:
            input_dim: (C, H, W) of one input, positive ints; H and W even (the 2x2
                pool halves them).
            num_filters: F >= 1; filter_size: K, odd (the conv keeps H x W).
            hidden_dim: M >= 1; num_classes: number of classes, >= 1.
            weight_scale: the weights' standard deviation, a finite number > 0.
            reg: L2 strength, a finite number >= 0.
            dtype: a floating NumPy dtype, of every parameter.
            normalization: None (the course's net), "batchnorm" (spatial batch norm),
                "groupnorm" (spatial group norm with ``num_groups`` groups, dividing F) or
                any other key of ``CONV_BLOCKS``.
            num_groups: an int >= 1; it must divide F when the normalization takes G.

        Raises:
            TypeError: a size that is not an int (floats such as 32.0 included: the
                course's np.random.randn refuses them too), a number that is not real
                (a string, a bool), a dtype that is not floating, or a normalization that
                is not a string.
            ValueError: a size < 1, an even filter_size, an odd H or W, a negative or
                non-finite reg, a weight_scale <= 0 or non-finite, an unknown
                normalization, or num_groups not dividing num_filters. A refused call
                draws no random number.
        """
        # Every argument is checked before the first random draw: a refused call leaves
        # NumPy's global generator, which the course's notebooks seed, untouched.
        option(
            normalization,
            "normalization",
            self.NORMALIZATIONS,
            "For layer norm use FullyConnectedNet(normalization='layernorm').",
        )
        C, H, W = _image_shape(input_dim)
        F = positive_int(num_filters, "num_filters", example=32)
        K = positive_int(filter_size, "filter_size", example=7)
        if K % 2 == 0:
            raise ValueError(
                f"filter_size must be odd, so that the conv (stride 1, pad "
                f"(filter_size - 1) // 2) keeps H x W and the 2x2 pool halves it; got "
                f"{K}. Pass e.g. filter_size={K - 1 if K > 1 else 1} or {K + 1}."
            )
        hidden_dim = positive_int(hidden_dim, "hidden_dim", example=100)
        num_classes = positive_int(num_classes, "num_classes", example=10)
        checked_weight_scale(weight_scale)
        reg_strength(reg)
        float_dtype(dtype)
        num_groups = positive_int(num_groups, "num_groups", example=4)
        block = CONV_BLOCKS[normalization] if normalization is not None else None
        if block is not None and "G" in block.options and F % num_groups:
            raise ValueError(
                f"num_groups must divide num_filters = {F}; got {num_groups}. Pass one "
                f"of {[g for g in range(1, F + 1) if F % g == 0]}."
            )
        self.input_dim = (C, H, W)
        self.num_classes = int(num_classes)
        self.normalization = normalization
        self.num_groups = int(num_groups)
        self.reg = reg
        self.dtype = dtype
        self.conv_param = {"stride": 1, "pad": (K - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

        pad = self.conv_param["pad"]
        H_conv, W_conv = H + 2 * pad - K + 1, W + 2 * pad - K + 1  # stride 1
        pooled = F * (H_conv // 2) * (W_conv // 2)
        randn = np.random.randn  # noqa: NPY002  (the course's global generator, in order)
        self.params: dict[str, np.ndarray] = {
            "W1": weight_scale * randn(F, C, K, K),
            "b1": np.zeros(F),
            "W2": weight_scale * randn(pooled, hidden_dim),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * randn(hidden_dim, num_classes),
            "b3": np.zeros(num_classes),
        }
        self.bn_params: list[dict[str, Any]] = []
        if block is not None:
            self.params["gamma1"] = np.ones(block.param_shape(F))
            if block.shift:
                self.params["beta1"] = np.zeros(block.param_shape(F))
            self.bn_params = [block.init_param()]
        for name, param in self.params.items():
            self.params[name] = param.astype(dtype)

    def _conv_block_forward(self, X: np.ndarray) -> tuple[np.ndarray, Any]:
        """conv - [norm] - relu - pool: X (N, C, H, W) -> (N, F, H/2, W/2)."""
        W1, b1 = self.params["W1"], self.params["b1"]
        if self.normalization is None:
            return conv_relu_pool_forward(X, W1, b1, self.conv_param, self.pool_param)
        return conv_norm_relu_pool_forward(
            X,
            W1,
            b1,
            self.params["gamma1"],
            self.params.get("beta1"),
            self.conv_param,
            self.pool_param,
            self.bn_params[0],
            self.normalization,
            G=self.num_groups,
        )

    def _conv_block_backward(self, dout: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
        """Gradients of W1, b1 (and gamma1, beta1) from dout: (N, F, H/2, W/2)."""
        if self.normalization is None:
            _, dW1, db1 = conv_relu_pool_backward(dout, cache, need_dx=False)
            return {"W1": dW1, "b1": db1}
        _, dW1, db1, dgamma, dbeta = conv_norm_relu_pool_backward(dout, cache, need_dx=False)
        assert dgamma is not None  # a normalization always has a scale
        grads = {"W1": dW1, "b1": db1, "gamma1": dgamma}
        if dbeta is not None:
            grads["beta1"] = dbeta
        return grads

    @overload
    def loss(self, X: np.ndarray, y: None = None) -> np.ndarray: ...

    @overload
    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[np.floating, dict[str, np.ndarray]]: ...

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[np.floating, dict[str, np.ndarray]]:
        """Scores in test mode (y None), else the loss and its gradients (train mode).

        Args:
            X: (N, C, H, W) images. A floating X is used as it is, in its own dtype (the
                course's ThreeLayerConvNet does not cast X, unlike FullyConnectedNet, so
                float64 images against float32 weights compute in float64); an integer
                X (raw pixels) is cast to ``dtype``. NaN and infinite values are
                accepted and give a NaN loss, as in the course.
            y: (N,) integer labels in [0, num_classes), or None.

        Returns:
            y None: scores (N, num_classes). Otherwise (loss, grads): the loss a NumPy
            float64 scalar as the course's (2.508255638232932 for the course's sanity
            check with reg = 0.5), grads[k] shaped like params[k].

        Raises:
            TypeError: X is not a real numeric ndarray, or y not an integer ndarray.
            ValueError: X is not (N, C, H, W) with the model's (C, H, W), X has no rows,
                y is not (N,), a label lies outside [0, num_classes), or ``model.reg``
                was set to a negative or non-finite number. A refused call, or one that
                fails inside a layer, leaves the model as it was.
        """
        check_X(X, self.input_dim, "ThreeLayerConvNet")
        if X.ndim != 4:
            raise ValueError(
                f"ThreeLayerConvNet expects X of shape (N, {', '.join(map(str, self.input_dim))})"
                f"; got {tuple(X.shape)}. Reshape flattened images with "
                f"X.reshape(-1, {', '.join(map(str, self.input_dim))})."
            )
        if y is not None:
            check_y(y, X.shape[0], self.num_classes, "ThreeLayerConvNet")
        reg_strength(self.reg, "model.reg")  # notebooks set it after construction
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(self.dtype)  # the layers need floating input; floats stay as given
        saved = snapshot({}, self.bn_params)
        try:
            return self._loss(X, y)
        except BaseException:
            restore(saved, {}, self.bn_params)
            raise

    def _loss(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> np.ndarray | tuple[np.floating, dict[str, np.ndarray]]:
        """``loss`` once its arguments are checked: X already floating."""
        mode = "test" if y is None else "train"
        if self.normalization is not None and CONV_BLOCKS[self.normalization].train_mode:
            self.bn_params[0]["mode"] = mode

        p = self.params
        h1, cache1 = self._conv_block_forward(X)  # (N, F, H/2, W/2)
        h2, cache2 = affine_relu_forward(h1, p["W2"], p["b2"])  # (N, M)
        scores, cache3 = affine_forward(h2, p["W3"], p["b3"])  # (N, num_classes)
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        assert dh2 is not None  # need_dx is True
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
        grads.update(self._conv_block_backward(dh1, cache1))
        if self.reg:  # reg 0 adds exactly 0.0: skip the passes over every W
            # The course adds the three sums in the weights' dtype, then scales them.
            total = sum_of_squares(p["W1"]) + sum_of_squares(p["W2"]) + sum_of_squares(p["W3"])
            loss = loss + l2_term(self.reg, total)
            for name in ("W1", "W2", "W3"):
                grads[name] = grads[name] + self.reg * p[name]
        return loss, grads
