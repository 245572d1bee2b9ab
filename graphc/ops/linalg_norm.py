"""``norm``: ``numpy.linalg.norm``'s vector and matrix norms, built from reductions.

No op of its own: each norm is a graph of ``abs``, ``square``, ``sum``, ``max``/``min``,
``sqrt`` and ``pow``, so it differentiates to any order like them (the 2-norm and Frobenius
norm have no derivative at zero; ``max``/``min`` split ties equally).
"""
from __future__ import annotations

import numpy as np

from ..errors import GraphcError, ShapeError
from ..graph import as_node, graph_of
from ..shapes import normalize_axis
from .compare import not_equal
from .elementwise import abs as absolute, pow, sqrt, square
from .reduce import max as reduce_max, min as reduce_min, sum as reduce_sum
from .shape import squeeze
from .special import cast

_INF = float("inf")


def _vector_norm(x, ord, axis, keepdims, name):
    if ord is None or ord == 2:
        return sqrt(reduce_sum(square(x), axis, keepdims), name=name)
    if ord == _INF:
        return reduce_max(absolute(x), axis, keepdims, name=name)
    if ord == -_INF:
        return reduce_min(absolute(x), axis, keepdims, name=name)
    if ord == 1:
        return reduce_sum(absolute(x), axis, keepdims, name=name)
    if ord == 0:  # the number of nonzero entries (no derivative)
        return reduce_sum(cast(not_equal(x, 0), x.dtype), axis, keepdims, name=name)
    if isinstance(ord, str) or not isinstance(ord, (int, float, np.integer, np.floating)):
        raise GraphcError(f"norm: ord {ord!r} is not a vector norm (numbers, inf, -inf)")
    p = float(ord)
    return pow(reduce_sum(pow(absolute(x), p), axis, keepdims), 1.0 / p, name=name)


def _matrix_norm(x, ord, axes, keepdims, name):
    row, col = axes
    if ord in (None, "fro"):
        return sqrt(reduce_sum(square(x), axes, keepdims), name=name)
    if ord in (1, -1, _INF, -_INF):
        # 1: the largest column sum of |x|; inf: the largest row sum (-1, -inf: smallest)
        summed, picked = (row, col) if abs(ord) == 1 else (col, row)
        pick = reduce_max if ord > 0 else reduce_min
        sums = reduce_sum(absolute(x), summed, True)
        if keepdims:
            return pick(sums, picked, True, name=name)
        return squeeze(pick(sums, picked, True), axes, name=name)
    raise GraphcError(f"norm: the matrix norm ord={ord!r} is not supported (graphc has the "
                      "Frobenius norm and ord 1, -1, inf, -inf; 2, -2 and 'nuc' need an SVD)")


def norm(x, ord=None, axis=None, keepdims: bool = False, name=None):
    """``numpy.linalg.norm``: vector norms (``ord`` None/2, 1, inf, -inf, 0 or any p) over one
    axis, matrix norms (``"fro"``, 1, -1, inf, -inf) over two; with ``axis=None`` the whole of a
    1-D or 2-D ``x`` (or, with ``ord=None``, the 2-norm of any ``x`` flattened)."""
    graph = graph_of([x])
    if graph is None:
        raise GraphcError("norm: x must be a graphc node")
    x = as_node(graph, x)
    if axis is None:
        if ord is None:
            return sqrt(reduce_sum(square(x), None, keepdims), name=name)
        if x.ndim not in (1, 2):
            raise ShapeError(f"norm: with ord={ord!r} and no axis, x must be 1-D or 2-D, not "
                             f"{x.ndim}-D")
        axis = tuple(range(x.ndim))
    given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalize_axis(given, x.ndim)  # ShapeError for axes out of range or repeated
    given = tuple(int(a) % x.ndim for a in given)
    if len(given) == 1:
        return _vector_norm(x, ord, given, keepdims, name)
    if len(given) == 2:
        return _matrix_norm(x, ord, given, keepdims, name)
    raise ShapeError(f"norm: axis must name one or two axes, not {axis!r}")
