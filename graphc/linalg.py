"""``gc.linalg``: linear algebra with ``numpy.linalg``'s and ``scipy.linalg``'s names.

Everything is batched over leading dimensions like NumPy, and differentiable to any order
(see :mod:`graphc.ops.linalg`, :mod:`graphc.ops.linalg_decomp`, :mod:`graphc.ops.einsum`).
``trace`` and ``diagonal`` here are NumPy 2's ``numpy.linalg`` ones (the last two axes of a
stack); ``gc.trace`` and ``gc.diagonal`` are ``numpy.trace``/``numpy.diagonal`` (axes 0 and 1 by
default).
"""
from __future__ import annotations

from .ops.einsum import dot, einsum, inner, outer, tensordot
from .ops.linalg import cho_solve, det, inv, matmul, slogdet, solve, solve_triangular
from .ops.linalg_decomp import cholesky, eigh, eigvalsh
from .ops.linalg_diag import diag
from .ops.linalg_diag import diagonal as _diagonal
from .ops.linalg_norm import norm

__all__ = ["solve", "solve_triangular", "cho_solve", "inv", "det", "slogdet", "cholesky", "eigh",
           "eigvalsh", "trace", "diagonal", "diag", "outer", "inner", "dot", "tensordot",
           "einsum", "matmul", "norm"]


def diagonal(x, offset: int = 0, name=None):
    """The ``offset`` diagonal of each matrix of a stack (the last two axes), like NumPy 2's
    ``numpy.linalg.diagonal``."""
    return _diagonal(x, offset, -2, -1, name=name)


def trace(x, offset: int = 0, name=None):
    """The trace of each matrix of a stack (the last two axes), like NumPy 2's
    ``numpy.linalg.trace``."""
    from .ops.reduce import sum as reduce_sum
    return reduce_sum(diagonal(x, offset), axis=-1, name=name)
