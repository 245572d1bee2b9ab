"""Ops without arithmetic on values: dtype casts, stop_gradient, zeros_like and ones_like."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..graph import DTypeLike, Node, Operand, apply
from .common import dtype_argument
from .attrs import dtype_name
from .registry import Case, define


def _cast_infer(x, *, dtype):
    dtype = dtype_argument(dtype, "cast to")
    return x.shape, dtype, {"dtype": dtype.name}


# A cast between float types passes the gradient on (the pass casts it back to the input's
# dtype); a cast to int or bool ends every path (the pass sees an integer node).
define("cast", infer=_cast_infer, kernel=lambda x, *, dtype: np.asarray(x).astype(dtype),
       curvature="linear",
       attrs={"dtype": dtype_name},
       bprop=lambda node, g, i: g,
       reference=lambda x, *, dtype: x.astype(dtype),
       cases=[Case(((3, 4),), attrs={"dtype": "float32"}, wrt=()),
              Case(((3, 4),), attrs={"dtype": "float64"}, order=3),
              Case(((3,),), attrs={"dtype": "int64"}, wrt=())],
       elementwise=True)

# stop_gradient is treated like a node in ``stop_at``: y does not depend on x through it.
define("stop_gradient", infer=lambda x: (x.shape, x.dtype), kernel=lambda x: x, bprop=None,
       reference=lambda x: x, cases=[Case(((3, 4),))], elementwise=True)


def _like_kernel(fill):
    def kernel(x):
        return np.full(np.shape(x), fill, dtype=np.result_type(x))
    return kernel


define("zeros_like", infer=lambda x: (x.shape, x.dtype), kernel=_like_kernel(0), bprop=None,
       reference=np.zeros_like, cases=[Case(((3, 4),)), Case(((),))], elementwise=True)
define("ones_like", infer=lambda x: (x.shape, x.dtype), kernel=_like_kernel(1), bprop=None,
       reference=np.ones_like, cases=[Case(((3, 4),)), Case(((),))], elementwise=True)


def _eye_like_kernel(y):
    shape = np.shape(y)
    n = int(np.prod(shape, dtype=np.int64))
    return np.eye(n, dtype=np.result_type(y)).reshape(shape + shape)


# The seeds of a Jacobian: one cotangent per element of y, stacked in front of y's shape.
define("eye_like", infer=lambda y: (y.shape + y.shape, y.dtype), kernel=_eye_like_kernel,
       bprop=None, reference=lambda y: np.eye(y.size).reshape(y.shape + y.shape),
       cases=[Case(((2, 3),)), Case(((3,),)), Case(((),))],
       doc="The identity of y's run-time size, shaped y.shape + y.shape.")


def cast(x: Operand, dtype: DTypeLike, name: Optional[str] = None) -> Node:
    """``x`` converted to ``dtype`` (NumPy ``astype``)."""
    return apply("cast", [x], {"dtype": dtype}, name=name)


def stop_gradient(x: Operand, name: Optional[str] = None) -> Node:
    """``x`` itself, seen by ``gradients`` as a constant."""
    return apply("stop_gradient", [x], name=name)


def eye_like(y: Node, name: Optional[str] = None) -> Node:
    """The identity matrix of ``y``'s size, shaped ``y.shape + y.shape`` (Jacobian seeds)."""
    return apply("eye_like", [y], name=name)


def zeros_like(x: Operand, name: Optional[str] = None) -> Node:
    """Zeros of ``x``'s shape and dtype."""
    return apply("zeros_like", [x], name=name)


def ones_like(x: Operand, name: Optional[str] = None) -> Node:
    """Ones of ``x``'s shape and dtype."""
    return apply("ones_like", [x], name=name)
