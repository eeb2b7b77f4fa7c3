"""cs231n-compatible ``cs231n.im2col``, a thin surface over ``normgrad.ops.im2col``.

``get_im2col_indices``, ``im2col_indices`` and ``col2im_indices`` with the course's
signatures and column layout, cols: (C*FH*FW, H'*W'*N); a geometry whose windows do not
tile the padded input raises ``ValueError`` where the course fails an assertion.
"""

from normgrad.ops.im2col import col2im_indices, get_im2col_indices, im2col_indices

__all__ = ["col2im_indices", "get_im2col_indices", "im2col_indices"]
