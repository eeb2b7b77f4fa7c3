"""The L2 penalty's sums of squares, added up in the order behind the course's numbers.

The course's models add ``0.5 * reg * np.sum(W**2)`` for each weight matrix W. For float32
weights that sum runs in float32, so its last bits depend on the order of the additions.
NumPy up to 2.2 reduced an array in chunks of 8192 elements (its buffer size): each chunk
summed pairwise, the chunk sums added one after another. Later NumPy sums a contiguous
array pairwise in one pass, which rounds differently. The course's notebooks print values
computed the first way: ConvolutionalNetworks.ipynb's sanity check prints
2.508255638232932 with ``reg = 0.5``, which one-pass summation misses by 1.5e-8. So
``sum_of_squares`` adds in the chunked order on every NumPy. For arrays of at most 8192
elements (every weight in the course's gradient checks) the two orders are the same.
"""

from __future__ import annotations

import numpy as np

#: NumPy's default buffer size, the chunk its reductions used up to version 2.2.
CHUNK = 8192


def sum_of_squares(W: np.ndarray) -> np.floating:
    """sum(W**2) in W's dtype (float16 widened to float32), chunked as NumPy <= 2.2 did.

    Args:
        W: a weight array of any shape, read in C order as ``np.sum`` read it.

    Returns:
        A NumPy scalar: float32 for float16 and float32 W, float64 for float64 W.
    """
    dtype = np.promote_types(W.dtype, np.float32)  # float16 squares overflow at 256
    sq = np.square(W, dtype=dtype).ravel()  # (W.size,)
    total = np.sum(sq[:CHUNK])
    for start in range(CHUNK, sq.size, CHUNK):
        total = total + np.sum(sq[start : start + CHUNK])  # in dtype, one chunk at a time
    return total


def l2_term(reg: float, total: np.floating) -> np.floating:
    """0.5 * reg * total, in at least float64: what the course's loss adds.

    The course multiplies the Python float ``0.5 * reg`` by a NumPy float32 sum, which
    NumPy before 2.0 computed in float64 (NumPy 2 would keep float32 and round). The
    sum is widened first so every NumPy gives the course's number.
    """
    wide = np.promote_types(total.dtype, np.float64).type(total)  # exact
    return 0.5 * float(reg) * wide
