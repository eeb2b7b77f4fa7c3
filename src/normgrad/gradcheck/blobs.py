"""Numerical gradients of functions on "blobs" (cs231n ``eval_numerical_gradient_blobs``).

A blob is any object with two arrays: ``vals`` (its values) and ``diffs`` (the gradient
of a loss with respect to them). ``f(*inputs, output)`` reads every input blob's
``vals`` and writes its result into ``output.vals``; ``output.diffs`` is the upstream
gradient. For each input blob and each index i of its ``vals``, the course's scheme::

    diff[i] = sum((f at vals + h e_i  -  f at vals - h e_i) * output.diffs) / (2 h)

perturbing ``vals`` in place and restoring it. As in the course the result is one array
per input blob, in order, and ``output.vals`` is left as f last wrote it (at a perturbed
point). What this adds: every argument is checked before f is first called; an input
whose ``vals`` are integers is differentiated at a float64 copy that stands in for
``vals`` during the call (the caller's integer array is never written, and the blob gets
it back in a ``finally``); floating ``vals`` are restored bit for bit even when f raises;
and the result is floating even when a blob's ``diffs`` are integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from normgrad.gradcheck import inputs as arg
from normgrad.gradcheck.numerical import _lost_step


def _blob(blob: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A blob's (vals, diffs), both numpy arrays, else a ``TypeError`` naming ``name``."""
    missing = [a for a in ("vals", "diffs") if not hasattr(blob, a)]
    if missing:
        raise TypeError(
            f"{name} must be a blob, an object with numpy arrays .vals and .diffs; got "
            f"{type(blob).__name__} without .{' and .'.join(missing)}."
        )
    for a in ("vals", "diffs"):
        if not isinstance(getattr(blob, a), np.ndarray):
            raise TypeError(
                f"{name}.{a} must be a numpy.ndarray; got {type(getattr(blob, a)).__name__}."
            )
    return blob.vals, blob.diffs


def _check_inputs(inputs: Any, output: Any) -> tuple[Any, ...]:
    """Validate every input blob and the output blob; return the inputs as a tuple."""
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(
            f"inputs must be a tuple of input blobs; got {type(inputs).__name__}. For one "
            "blob pass (x,)."
        )
    inputs = tuple(inputs)
    _, out_diffs = _blob(output, "output")
    arg.upstream(out_diffs, "output.diffs")
    for i, blob in enumerate(inputs):
        if blob is output:
            raise ValueError(
                f"inputs[{i}] is the output blob: f writes into output.vals, so it cannot "
                "also be perturbed as an input. Pass a separate blob for the result."
            )
        vals, diffs = _blob(blob, f"inputs[{i}]")
        arg.point(vals, f"inputs[{i}].vals")  # real, finite, writeable if floating
        if diffs.shape != vals.shape:
            raise ValueError(
                f"inputs[{i}].diffs has shape {tuple(diffs.shape)}, but its .vals has "
                f"{tuple(vals.shape)}: a blob's diffs hold one gradient per value. Give "
                f"it diffs = np.zeros_like(vals)."
            )
    return inputs


def eval_numerical_gradient_blobs(
    f: Callable[..., Any], inputs: Sequence[Any], output: Any, h: float = 1e-5
) -> list[np.ndarray]:
    """Numerical gradients of ``f(*inputs, output)`` with respect to every input blob (cs231n).

    Args:
        f: called as ``f(*inputs, output)``; it writes its result into ``output.vals``
            (its return value is ignored).
        inputs: a tuple (or list) of input blobs, each with ``vals`` and ``diffs`` of
            one shape; ``vals`` real numbers, finite.
        output: the output blob; ``output.diffs`` is the upstream gradient (finite) and
            must have the shape f gives ``output.vals``.
        h: the step, a finite number > 0.

    Returns:
        A list with one array per input blob: diffs' shape, diffs' dtype when floating,
        else float64.

    Raises:
        TypeError: f not callable, inputs not a sequence of blobs, a blob without numpy
            ``vals``/``diffs``, non-real values, or f writing non-numbers.
        ValueError: h <= 0 or non-finite; a blob's diffs and vals differ in shape; the
            output blob among the inputs; output.vals and output.diffs differ in shape
            after f (checked at f's first call); non-finite values or diffs; a read-only
            floating vals; h lost to rounding.
    """
    arg.callable_arg(f, "f", "lambda x, w, out: ...")
    arg.step(h)
    inputs = _check_inputs(inputs, output)
    args = (*inputs, output)

    def evaluate() -> np.ndarray:
        f(*args)
        diffs = arg.upstream(output.diffs, "output.diffs")
        return arg.array_output(output.vals, "f (into output.vals)", diffs.shape, "output.diffs")

    numeric_diffs = []
    for i, blob in enumerate(inputs):
        original = blob.vals
        work, copied = arg.point(original, f"inputs[{i}].vals")
        saved = None if copied else work.copy()
        diffs = blob.diffs
        dtype = diffs.dtype if diffs.dtype.kind == "f" else np.dtype(np.float64)
        diff = np.zeros(work.shape, dtype=dtype)
        try:
            blob.vals = work  # the float64 copy stands in for integer vals
            for idx in np.ndindex(*work.shape):
                orig = work[idx].copy()
                try:
                    work[idx] = orig + h
                    if work[idx] == orig:
                        raise _lost_step(f"inputs[{i}].vals", work, idx, orig, h)
                    pos = evaluate()
                    work[idx] = orig - h
                    neg = evaluate()
                finally:
                    work[idx] = orig
                diff[idx] = np.sum((pos - neg) * output.diffs) / (2.0 * h)
        finally:
            blob.vals = original
            if saved is not None:
                np.copyto(original, saved)
        numeric_diffs.append(diff)
    return numeric_diffs


def eval_numerical_gradient_net(
    net: Any, inputs: Sequence[Any], output: Any, h: float = 1e-5
) -> list[np.ndarray]:
    """``eval_numerical_gradient_blobs`` with ``net.forward()`` as f (cs231n).

    ``net.forward()`` takes no arguments: it reads the input blobs it holds and writes
    ``output.vals``. Everything else is as ``eval_numerical_gradient_blobs``.

    Raises:
        TypeError: net has no callable ``forward``; otherwise as
            ``eval_numerical_gradient_blobs``.
    """
    forward = getattr(net, "forward", None)
    if not callable(forward):
        raise TypeError(
            f"net must have a forward() method that reads its input blobs and writes "
            f"output.vals; got {type(net).__name__} without one."
        )
    return eval_numerical_gradient_blobs(lambda *args: forward(), inputs, output, h=h)
