"""Diagonals: ``diagonal`` (a view, like ``numpy.diagonal``), its adjoint ``diagonal_grad``
(scatter into zeros), ``diag`` and ``trace``.

``diagonal``'s axes are stored negative (counted from the end), so the same attrs applied to a
cotangent with leading batch dimensions take each member's diagonal: the rules of both ops are
each other, closed under differentiation.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ShapeError
from ..graph import Node, Operand, apply
from ..shapes import fmt
from .attrs import integer
from .reduce import sum as reduce_sum
from .registry import Case, define


def _diagonal_length(n1, n2, offset):
    if n1 is None or n2 is None:
        return None
    return max(0, min(n1 + min(offset, 0), n2 - max(offset, 0)))


def _diagonal_axes(ndim, axis1, axis2):
    if ndim < 2:
        raise ShapeError(f"diagonal needs at least 2 dimensions, not {ndim}")
    for a in (axis1, axis2):
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of bounds for {ndim} dimensions")
    a1, a2 = axis1 % ndim - ndim, axis2 % ndim - ndim
    if a1 == a2:
        raise ShapeError(f"axis1 and axis2 cannot be the same ({axis1}, {axis2})")
    return a1, a2


def _diagonal_infer(x, *, offset, axis1, axis2):
    a1, a2 = _diagonal_axes(x.ndim, axis1, axis2)
    rest = tuple(d for k, d in enumerate(x.shape) if k - x.ndim not in (a1, a2))
    d = _diagonal_length(x.shape[a1], x.shape[a2], offset)
    return rest + (d,), x.dtype, {"offset": offset, "axis1": a1, "axis2": a2}


def _diagonal_reference(x, *, offset, axis1, axis2):
    moved = np.moveaxis(x, (axis1, axis2), (-2, -1))
    n1, n2 = moved.shape[-2:]
    d = _diagonal_length(n1, n2, offset)
    out = np.zeros(moved.shape[:-2] + (d,), x.dtype)
    for k in range(d):
        out[..., k] = moved[..., k + max(-offset, 0), k + max(offset, 0)]
    return out


_DIAGONAL_ATTRS = {"offset": integer(), "axis1": integer(), "axis2": integer()}

define("diagonal", infer=_diagonal_infer, attrs=_DIAGONAL_ATTRS,
       kernel=lambda x, *, offset, axis1, axis2: np.diagonal(x, offset, axis1, axis2),
       bprop=lambda node, g, i: diagonal_grad(g, node.inputs[0], **node.attrs),
       reference=_diagonal_reference, structure="select", curvature="linear",
       cases=[Case(((3, 3),), attrs={"offset": 0, "axis1": 0, "axis2": 1}, order=3),
              Case(((3, 4),), attrs={"offset": 1, "axis1": 0, "axis2": 1}),
              Case(((4, 3),), attrs={"offset": -2, "axis1": 0, "axis2": 1}),
              Case(((2, 3, 4),), attrs={"offset": 0, "axis1": 2, "axis2": 0}),
              Case(((2, 3, 3),), attrs={"offset": 0, "axis1": -2, "axis2": -1})],
       doc="numpy.diagonal: the diagonal of axes (axis1, axis2) becomes the last axis.")


def _diagonal_grad_infer(g, like, *, offset, axis1, axis2):
    _, _, attrs = _diagonal_infer(like, offset=offset, axis1=axis1, axis2=axis2)
    want, _, _ = _diagonal_infer(like, **attrs)
    lead = g.ndim - len(want)
    if lead < 0 or any(a is not None and b is not None and a != b
                       for a, b in zip(g.shape[lead:], want)):
        raise ShapeError(f"a diagonal of shape {fmt(g.shape)} does not fit {fmt(like.shape)}")
    return g.shape[:lead] + like.shape, g.dtype, attrs


def _diagonal_grad_kernel(g, like, *, offset, axis1, axis2):
    g = np.asarray(g)
    lead = g.ndim - (np.ndim(like) - 1)
    out = np.zeros(g.shape[:lead] + np.shape(like), g.dtype)
    view = np.moveaxis(out, (axis1, axis2), (-2, -1))  # a view: writing it writes out
    k = np.arange(g.shape[-1])
    view[..., k + max(-offset, 0), k + max(offset, 0)] = g
    return out


def _diagonal_grad_reference(g, like, *, offset, axis1, axis2):
    lead = g.ndim - (like.ndim - 1)
    out = np.zeros(g.shape[:lead] + like.shape)
    for index in np.ndindex(out.shape):
        i, j = index[axis1], index[axis2]
        if j - i == offset:
            rest = tuple(v for k, v in enumerate(index) if k - out.ndim not in (axis1, axis2))
            out[index] = g[rest + (min(i, j),)]
    return out


define("diagonal_grad", infer=_diagonal_grad_infer, attrs=_DIAGONAL_ATTRS,
       kernel=_diagonal_grad_kernel,
       bprop=lambda node, g, i: diagonal(g, **node.attrs) if i == 0 else None,
       reference=_diagonal_grad_reference, structure="select", curvature="linear",
       cases=[Case(((3,), (3, 3)), attrs={"offset": 0, "axis1": -2, "axis2": -1}, wrt=(0,)),
              Case(((3,), (3, 4)), attrs={"offset": 1, "axis1": -2, "axis2": -1}, wrt=(0,)),
              Case(((2, 3), (3, 2, 4)), attrs={"offset": -1, "axis1": -1, "axis2": -3},
                   wrt=(0,))],
       doc="diagonal's adjoint: g placed on the diagonal of zeros shaped like `like`.")


def diagonal(x: Operand, offset: int = 0, axis1: int = 0, axis2: int = 1,
             name: Optional[str] = None) -> Node:
    """The diagonal (``offset`` above the main one) of axes ``axis1`` and ``axis2``, like
    ``numpy.diagonal``: those axes are removed and the diagonal becomes the last axis."""
    return apply("diagonal", [x], {"offset": offset, "axis1": axis1, "axis2": axis2},
                 name=name)


def diagonal_grad(g, like, offset: int = 0, axis1: int = -2, axis2: int = -1, name=None):
    """``g`` placed on a diagonal of zeros shaped like ``like`` (the adjoint of
    :func:`diagonal`; ``g`` may carry leading batch dimensions)."""
    return apply("diagonal_grad", [g, like], {"offset": offset, "axis1": axis1,
                                              "axis2": axis2}, name=name)


# -- diag: vector to matrix (and back) ----------------------------------------------------------
def _diag_infer(v, *, k):
    if v.ndim != 1:
        raise ShapeError(f"diag builds a matrix from a vector, not from {fmt(v.shape)}")
    n = None if v.shape[0] is None else v.shape[0] + abs(k)
    return (n, n), v.dtype


def _diag_reference(v, *, k):
    n = v.shape[0] + abs(k)
    out = np.zeros((n, n), v.dtype)
    for i in range(v.shape[0]):
        out[i + max(-k, 0), i + max(k, 0)] = v[i]
    return out


define("diag", infer=_diag_infer, attrs={"k": integer()},
       kernel=lambda v, *, k: np.diag(v, k),
       bprop=lambda node, g, i: diagonal(g, node.attrs["k"], -2, -1),
       reference=_diag_reference, structure="select", curvature="linear",
       cases=[Case(((3,),), attrs={"k": 0}, order=3), Case(((2,),), attrs={"k": -1})],
       doc="numpy.diag of a vector: the matrix with v on its k-th diagonal.")


def diag(v: Operand, k: int = 0, name: Optional[str] = None) -> Node:
    """``numpy.diag``: a 1-D ``v`` gives the square matrix with ``v`` on its ``k``-th diagonal;
    a 2-D ``v`` gives its ``k``-th diagonal."""
    from ..graph import as_node, graph_of
    graph = graph_of([v])
    ndim = as_node(graph, v).ndim if graph is not None else np.ndim(v)
    if ndim == 2:
        return diagonal(v, k, 0, 1, name=name)
    return apply("diag", [v], {"k": k}, name=name)


def trace(x: Operand, offset: int = 0, axis1: int = 0, axis2: int = 1,
          name: Optional[str] = None) -> Node:
    """The sum along a diagonal, like ``numpy.trace`` (axes 0 and 1 by default; use
    ``gc.linalg.trace`` for the last two axes of a stack)."""
    return reduce_sum(diagonal(x, offset, axis1, axis2), axis=-1, name=name)
