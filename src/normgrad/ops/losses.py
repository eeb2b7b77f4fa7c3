"""Classification losses on scores x: (N, C) with labels y: (N,), means over the batch.

Both return ``(loss, dx)`` as the course does, not ``(out, cache)``: a loss is the end
of the graph, so its gradient is computed in the same call.

Softmax (cross-entropy) loss, as torch.nn.functional.cross_entropy with mean reduction::

    p_ij = exp(x_ij - max_j x_ij) / sum_k exp(x_ik - max_j x_ij)   # (N, C) shifted: no overflow
    L    = -1/N sum_i log p_{i, y_i}
    dx   = (p - onehot(y)) / N                                       # (N, C)

Multiclass SVM (Weston-Watkins hinge) loss with margin 1 (cs231n)::

    m_ij = max(0, x_ij - x_{i, y_i} + 1)  for j != y_i,  m_{i, y_i} = 0   # (N, C)
    L    = 1/N sum_ij m_ij
    dx_ij       = [m_ij > 0] / N                        for j != y_i
    dx_{i, y_i} = -(number of j with m_ij > 0) / N

torch.nn.functional.multi_margin_loss divides each row's sum by C as well, so
``svm_loss = C * multi_margin_loss``. The hinge is not differentiable where a margin is
exactly 0; there the subgradient 0 is used, as in the course.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from normgrad._internal import validate as v


def _check_scores_labels(
    x: np.ndarray, y: np.ndarray | Sequence[int]
) -> tuple[int, int, np.ndarray]:
    """Validate x: (N, C) floats and y: (N,) integers in [0, C); return N, C and y.

    y may be any integer array (int8 ... uint64) or a Python sequence of ints, read with
    ``np.asarray`` as the course's indexing reads it; bools and floats are refused.
    """
    v.float_array(x, "x")
    v.ndim(x, "x", 2, "(N, C): one row of C class scores per sample")
    N, C = x.shape
    if not isinstance(y, np.ndarray):
        try:
            y = np.asarray(y)
        except (TypeError, ValueError):  # ragged lists and the like
            raise TypeError(
                f"y must be (N,) integer class labels, an integer array or a list of ints; "
                f"got a {type(y).__name__} NumPy cannot read as one array. Pass "
                "np.asarray(labels, dtype=np.int64)."
            ) from None
    if y.size == 0 and y.dtype == np.float64:
        y = y.astype(np.int64)  # np.asarray([]) is float64: an empty list of labels
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"y must hold integer class labels; got dtype {y.dtype}. "
            "Convert it with y.astype(np.int64)."
        )
    if y.shape != (N,):
        raise ValueError(
            f"y must have shape (N,) = ({N},), one label per row of x: (N, C) = {tuple(x.shape)}; "
            f"got y of shape {tuple(y.shape)}."
        )
    if N == 0:
        raise ValueError(
            f"x must have at least one row: the loss is a mean over N; got x of shape "
            f"{tuple(x.shape)}. Pass a non-empty batch."
        )
    if C == 0:
        raise ValueError(
            f"x must have at least one class column: (N, C) with C >= 1; got x of shape "
            f"{tuple(x.shape)}."
        )
    if y.min() < 0 or y.max() >= C:
        bad = y[(y < 0) | (y >= C)]
        raise ValueError(
            f"labels y must lie in [0, C) = [0, {C}) for x with C = {C} classes; "
            f"got {bad.size} out of range, e.g. {bad[:5].tolist()}."
        )
    return N, C, y


def _scalar(loss: np.floating) -> np.floating:
    """The loss as a NumPy scalar of at least float64, as the course's loss is.

    The course computes ``np.sum(...) / N`` on float64 scores, so its loss is a
    ``np.float64``; a model adding its float32 regularization to it stays float64. A
    Python float would not (under NumPy 2 a Python float plus a ``np.float32`` is a
    float32). float16 and float32 losses are widened exactly; a longdouble loss keeps
    its precision.
    """
    return np.promote_types(loss.dtype, np.float64).type(loss)


def softmax_loss(x: np.ndarray, y: np.ndarray | Sequence[int]) -> tuple[np.floating, np.ndarray]:
    """Softmax cross-entropy loss, mean over the batch (cs231n signature).

    Args:
        x: (N, C) class scores (logits).
        y: (N,) integer labels, 0 <= y[i] < C: any integer dtype, or a list of ints.

    Returns:
        loss: a NumPy float64 scalar (longdouble for longdouble x), and dx: (N, C), x's
        dtype, its gradient with respect to x. NaN or infinite scores give a NaN loss,
        as in the course (a diverging run is recorded, not stopped, by the Solver).

    Raises:
        TypeError: x is not a floating ndarray, or y does not hold integers.
        ValueError: x not 2-D or empty (N = 0 or C = 0), y not (N,), or a label outside
            [0, C).
    """
    N, _, y = _check_scores_labels(x, y)
    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)  # (N, C) max 0 per row: exp cannot overflow
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)
    log_probs = shifted - log_z  # (N, C)
    loss = -log_probs[rows, y].sum() / N
    dx = np.exp(log_probs)  # (N, C) probabilities
    dx[rows, y] -= 1.0
    dx /= N
    return _scalar(loss), dx


def svm_loss(x: np.ndarray, y: np.ndarray | Sequence[int]) -> tuple[np.floating, np.ndarray]:
    """Multiclass SVM hinge loss with margin 1, mean over the batch (cs231n signature).

    Args:
        x: (N, C) class scores.
        y: (N,) integer labels, 0 <= y[i] < C: any integer dtype, or a list of ints.

    Returns:
        loss: a NumPy float64 scalar (longdouble for longdouble x), and dx: (N, C), x's
        dtype, its (sub)gradient with respect to x. NaN scores give a NaN loss.

    Raises:
        TypeError: x is not a floating ndarray, or y does not hold integers.
        ValueError: x not 2-D or empty (N = 0 or C = 0), y not (N,), or a label outside
            [0, C).
    """
    N, _, y = _check_scores_labels(x, y)
    rows = np.arange(N)
    correct = x[rows, y][:, None]  # (N, 1)
    margins = np.maximum(0.0, x - correct + 1.0)  # (N, C)
    margins[rows, y] = 0.0  # the correct class contributes no margin
    loss = margins.sum() / N
    active = (margins > 0).astype(x.dtype)  # (N, C) which hinges are open
    dx = active  # (N, C) d/dx_ij for j != y_i
    dx[rows, y] = -active.sum(axis=1)  # the correct score appears in every open hinge
    dx /= N
    return _scalar(loss), dx
