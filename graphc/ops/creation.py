"""Creating arrays: ``zeros ones full eye arange linspace`` (static shapes) and ``full_like``.

A created array needs a graph to live in: pass ``graph=`` (a :class:`~graphc.Graph`, or any
node, whose graph is used). The result is a constant of that graph, so the compiler folds
arithmetic on it like any other constant. The ``*_like`` ops (``zeros_like``, ``ones_like``,
``full_like``) are ops instead: they read the shape of their input at run time, so they work
with sizes known only then.
"""
from __future__ import annotations

from typing import Any, Optional

import numbers

import numpy as np

from ..errors import DTypeError, GraphcError
from ..graph import DTypeLike, Graph, Node, Operand, apply
from ..shapes import shape_argument
from .attrs import dtype_name
from .common import dtype_argument
from .registry import Case, define


def _graph(graph) -> Graph:
    if isinstance(graph, Node):
        return graph.graph
    if isinstance(graph, Graph):
        return graph
    raise GraphcError(f"creating an array needs graph= (a gc.Graph or a node of it), not "
                      f"{type(graph).__name__}")


def _constant(graph, array, dtype, name):
    dtype = None if dtype is None else dtype_argument(dtype)
    return _graph(graph).constant(array if dtype is None else array.astype(dtype), name=name)


def zeros(shape: Any, dtype: Optional[DTypeLike] = "float64", *, graph: Any,
          name: Optional[str] = None) -> Node:
    """A constant of zeros of static ``shape`` (an int or a tuple) in ``graph``."""
    return _constant(graph, np.zeros(shape_argument(shape)), dtype, name)


def ones(shape: Any, dtype: Optional[DTypeLike] = "float64", *, graph: Any,
         name: Optional[str] = None) -> Node:
    """A constant of ones of static ``shape`` in ``graph``."""
    return _constant(graph, np.ones(shape_argument(shape)), dtype, name)


def full(shape: Any, fill_value: Any, dtype: Optional[DTypeLike] = None, *, graph: Any,
         name: Optional[str] = None) -> Node:
    """A constant of static ``shape`` filled with ``fill_value`` (dtype: NumPy's for the value
    unless given)."""
    return _constant(graph, np.full(shape_argument(shape), fill_value), dtype, name)


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: Optional[DTypeLike] = "float64", *,
        graph: Any, name: Optional[str] = None) -> Node:
    """The ``N x M`` identity (ones on the ``k``-th diagonal) as a constant in ``graph``."""
    return _constant(graph, np.eye(N, M, k), dtype, name)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Optional[DTypeLike] = None, *,
           graph: Any, name: Optional[str] = None) -> Node:
    """NumPy's ``arange`` (``arange(n)`` or ``arange(start, stop, step)``) as a constant."""
    array = np.arange(start) if stop is None and step == 1 else np.arange(start, stop, step)
    return _constant(graph, array, dtype, name)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             dtype: Optional[DTypeLike] = None, *, graph: Any, name: Optional[str] = None) -> Node:
    """``num`` evenly spaced numbers from ``start`` to ``stop`` (NumPy's ``linspace``)."""
    return _constant(graph, np.linspace(start, stop, num, endpoint=endpoint), dtype, name)


# -- full_like: a run-time shape ---------------------------------------------------------------
def _fill_value(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"expected a real number or bool, not {value!r:.60}")


def _full_like_infer(x, *, fill_value, dtype):
    dtype = x.dtype if dtype is None else dtype_argument(dtype)
    if dtype.kind not in "biuf":
        raise DTypeError(f"full_like makes real numbers or bools, not {dtype}")
    return x.shape, dtype, {"fill_value": _fill_value(fill_value), "dtype": dtype.name}


def _full_like(x, *, fill_value, dtype):
    return np.full(np.shape(x), fill_value, dtype=dtype)


def _full_like_reference(x, *, fill_value, dtype):
    out = np.empty(x.shape, dtype)
    for index in np.ndindex(x.shape):
        out[index] = fill_value
    return out


define("full_like", infer=_full_like_infer, kernel=_full_like, bprop=None,
       attrs={"fill_value": _fill_value, "dtype": dtype_name},
       reference=_full_like_reference,
       cases=[Case(((3, 4),), attrs={"fill_value": 2.5, "dtype": None}),
              Case(((2,),), attrs={"fill_value": 7, "dtype": "int32"}),
              Case(((),), attrs={"fill_value": True, "dtype": "bool"})],
       doc="An array of x's run-time shape filled with fill_value (x's dtype unless given).")


def full_like(x: Operand, fill_value: Any, dtype: Optional[DTypeLike] = None,
              name: Optional[str] = None) -> Node:
    """An array of ``x``'s (run-time) shape filled with ``fill_value``; ``x``'s dtype unless
    ``dtype`` is given. No gradient flows through it."""
    return apply("full_like", [x], {"fill_value": fill_value, "dtype": dtype}, name=name)
