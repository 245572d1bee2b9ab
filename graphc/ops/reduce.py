"""Reductions over axes (``axis`` None, int or tuple, negatives allowed; ``keepdims``)."""
from __future__ import annotations

from typing import Optional

import builtins  # sum, max and min below shadow the builtins in this module
import math

import numpy as np

from ..errors import ShapeError
from ..graph import Axis, Node, Operand, apply
from ..shapes import normalize_axis, reduced_shape, size
from .broadcast import broadcast_like, broadcast_to
from .common import probe
from .compare import equal
from .elementwise import div, mul
from .attrs import axes, dtype_name, flag, ints
from .registry import Case, define
from .shape import expand_dims
from .special import cast


def _reduce_infer(kernel):
    def infer(x, *, axis, keepdims):
        axes = normalize_axis(axis, x.ndim)
        shape = reduced_shape(x.shape, axes, keepdims)
        return shape, probe(kernel, [x], axis=None), {"axis": axes, "keepdims": bool(keepdims)}
    return infer


def _spread(node, g):
    """The cotangent of a reduction spread back over the reduced axes (any leading batch)."""
    x = node.inputs[0]
    axes = node.attrs["axis"]
    if not node.attrs["keepdims"] and axes:
        g = expand_dims(g, tuple(a - x.ndim for a in axes))
    shape = g.shape[:g.ndim - x.ndim] + x.shape
    if None in shape:  # x or the batch (a Jacobian's seed) has sizes known only at run time
        return broadcast_like(g, x)
    return broadcast_to(g, shape)


def _mean_bprop(node, g, i):
    # Divide before spreading: the cotangent is smaller than the input.
    return _spread(node, div(g, reduced_size(node.inputs[0], node.attrs["axis"], node.dtype)))


_REDUCE_ATTRS = {"axis": axes, "keepdims": flag}

_REDUCE_CASES = [
    Case(((3, 4),), attrs={"axis": (1,), "keepdims": False}, order=3),
    Case(((2, 3, 4),), attrs={"axis": (0, 2), "keepdims": True}),
    Case(((3, 4),), attrs={"axis": (0, 1), "keepdims": False}),
    Case(((),), attrs={"axis": (), "keepdims": False}),
]

def _linear_reduction_jvp(reduce):
    """A sum or mean is linear: its tangent is the same reduction of the input's tangent, over
    negative axes (right whatever the tangent's batch)."""
    def jvp(node, tangents):
        x, (t,) = node.inputs[0], tangents
        return reduce(t, axis=tuple(a - x.ndim for a in node.attrs["axis"]),
                      keepdims=node.attrs["keepdims"])
    return jvp


define("sum", infer=_reduce_infer(np.sum), attrs=_REDUCE_ATTRS,
       structure="reduce", curvature="linear",
       jvp=_linear_reduction_jvp(lambda t, **kw: sum(t, **kw)),
       kernel=lambda x, *, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
       bprop=lambda node, g, i: _spread(node, g),
       reference=lambda x, *, axis, keepdims: np.add.reduce(x, axis=axis, keepdims=keepdims),
       cases=_REDUCE_CASES)


def _mean(x, *, axis, keepdims):
    """The mean of float32/float64 arrays as a sum, then a division by the count (a Python
    int, so float32 divides in float32, where ``np.mean`` divides by an intp in float64 and
    casts back: past 2^24 elements the float32 results may differ in the last bit), without
    np.mean's Python layers (5-8 us per call); other values go to np.mean (ints and float16
    accumulate wider there)."""
    if (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize >= 4
            and not isinstance(axis, int)):
        count = x.size if axis is None else math.prod(map(x.shape.__getitem__, axis))
        if count:
            return np.add.reduce(x, axis, None, None, keepdims) / count  # positional: 0.2 us less
    return np.mean(x, axis=axis, keepdims=keepdims)


define("mean", infer=_reduce_infer(np.mean), attrs=_REDUCE_ATTRS,
       structure="reduce", curvature="linear",
       jvp=_linear_reduction_jvp(lambda t, **kw: mean(t, **kw)),
       kernel=_mean,
       bprop=_mean_bprop,
       reference=lambda x, *, axis, keepdims: (np.add.reduce(x, axis=axis, keepdims=keepdims)
                                               / builtins.max(1, int(np.prod(
                                                   [x.shape[a] for a in axis])))),
       cases=_REDUCE_CASES[:3])


def _reduced_size_infer(x, *, axis, dtype):
    if any(a >= x.ndim for a in axis):
        raise ShapeError(f"axes {axis} are out of range for {x.ndim} dimensions")
    return (), np.dtype(dtype)


define("reduced_size", infer=_reduced_size_infer,
       attrs={"axis": ints(0), "dtype": dtype_name},
       kernel=lambda x, *, axis, dtype: np.array(
           np.prod([np.shape(x)[a] for a in axis], dtype=np.int64), dtype=dtype),
       bprop=None,
       reference=lambda x, *, axis, dtype: np.array(
           int(np.prod([x.shape[a] for a in axis])), dtype=dtype),
       cases=[Case(((3, 4),), attrs={"axis": (0, 1), "dtype": "float64"}),
              Case(((3, 4),), attrs={"axis": (1,), "dtype": "float32"})],
       doc="How many elements a reduction over `axis` combines, as a scalar of `dtype`.")


def reduced_size(x, axis, dtype):
    """Number of elements reduced over ``axis``: a constant when sizes are known."""
    count = size(tuple(x.shape[a] for a in axis))
    if count is not None:
        return x.graph.constant(np.array(count, dtype=dtype))
    return apply("reduced_size", [x], {"axis": tuple(axis), "dtype": np.dtype(dtype).name})


def _reduce(op, x, axis, keepdims, name):
    return apply(op, [x], {"axis": axis, "keepdims": keepdims}, name=name)


def sum(x: Operand, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Node:
    """Sum over ``axis`` (all axes by default), like ``numpy.sum``."""
    return _reduce("sum", x, axis, keepdims, name)


def mean(x: Operand, axis: Axis = None, keepdims: bool = False,
         name: Optional[str] = None) -> Node:
    """Mean over ``axis`` (all axes by default), like ``numpy.mean``."""
    return _reduce("mean", x, axis, keepdims, name)


# -- max / min: the gradient goes to the extremal elements, split equally among ties ----------
def _extremum_infer(kernel):
    plain = _reduce_infer(kernel)

    def infer(x, *, axis, keepdims):
        shape, dtype, attrs = plain(x, axis=axis, keepdims=keepdims)
        if any(x.shape[a] == 0 for a in attrs["axis"]):
            raise ShapeError(f"cannot take the {kernel.__name__} over an empty dimension")
        return shape, dtype, attrs
    return infer


def _extremum_bprop(node, g, i):
    """``g`` spread over the reduced axes, times ``mask / count``: the elements equal to the
    result share its gradient equally (the rule is piecewise constant, so it ends there)."""
    x = node.inputs[0]
    axes = node.attrs["axis"]
    best = node
    if not node.attrs["keepdims"] and axes:
        lost = tuple(a - x.ndim for a in axes)
        best, g = expand_dims(node, lost), expand_dims(g, lost)
    mask = cast(equal(x, best), node.dtype)
    return mul(g, div(mask, sum(mask, axes, keepdims=True)))


def _extremum_reference(ufunc):
    def reference(x, *, axis, keepdims):
        out = x
        for a in sorted(axis, reverse=True):
            out = ufunc.reduce(out, axis=a, keepdims=keepdims)
        return out
    return reference


_EXTREMUM_CASES = _REDUCE_CASES + [Case(((2, 3, 4),), attrs={"axis": (-1,), "keepdims": True})]

define("max", infer=_extremum_infer(np.max), attrs=_REDUCE_ATTRS,
       structure="reduce", curvature="linear",
       kernel=lambda x, *, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
       bprop=_extremum_bprop, reference=_extremum_reference(np.maximum), cases=_EXTREMUM_CASES,
       doc="Largest element over `axis`; tied elements share the gradient equally.")

define("min", infer=_extremum_infer(np.min), attrs=_REDUCE_ATTRS,
       structure="reduce", curvature="linear",
       kernel=lambda x, *, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
       bprop=_extremum_bprop, reference=_extremum_reference(np.minimum), cases=_EXTREMUM_CASES,
       doc="Smallest element over `axis`; tied elements share the gradient equally.")


# -- argmax / argmin: indices (intp), no derivative ----------------------------------------------
def _arg_infer(x, *, axis, keepdims):
    if axis is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axis, (int, np.integer)):
        (axis,) = axes = normalize_axis(axis, x.ndim)
    else:
        raise ShapeError(f"argmax/argmin take one integer axis or None, not {axis!r}")
    if any(x.shape[a] == 0 for a in axes):
        raise ShapeError("cannot take the argmax/argmin of an empty dimension")
    shape = reduced_shape(x.shape, axes, bool(keepdims))
    return shape, np.dtype(np.intp), {"axis": axis, "keepdims": bool(keepdims)}


def _arg_reference(pick):
    def first(v):  # Python's max/min return the first extremal position, like NumPy
        return pick(range(len(v)), key=v.__getitem__)

    def reference(x, *, axis, keepdims):
        if axis is None:
            out = np.array(first(x.reshape(-1)), dtype=np.intp)
            return out.reshape((1,) * x.ndim) if keepdims else out
        out = np.apply_along_axis(first, axis, x).astype(np.intp)
        return np.expand_dims(out, axis) if keepdims else out
    return reference


_ARG_CASES = [
    Case(((3, 4),), attrs={"axis": 1, "keepdims": False}),
    Case(((2, 3, 4),), attrs={"axis": None, "keepdims": True}),
    Case(((2, 3),), attrs={"axis": -2, "keepdims": True}),
    Case(((5,),), attrs={"axis": None, "keepdims": False}),
    Case((np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]),), attrs={"axis": 1, "keepdims": False}),
]

define("argmax", infer=_arg_infer, attrs=_REDUCE_ATTRS,
       kernel=lambda x, *, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims),
       bprop=None, reference=_arg_reference(max), cases=_ARG_CASES,
       doc="Index of the (first) largest element over `axis` (flattened when None).")

define("argmin", infer=_arg_infer, attrs=_REDUCE_ATTRS,
       kernel=lambda x, *, axis, keepdims: np.argmin(x, axis=axis, keepdims=keepdims),
       bprop=None, reference=_arg_reference(min), cases=_ARG_CASES,
       doc="Index of the (first) smallest element over `axis` (flattened when None).")


def max(x: Operand, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Node:
    """Largest element over ``axis`` (all axes by default), like ``numpy.max``.

    The gradient goes to the elements equal to the result, split equally among ties.
    """
    return _reduce("max", x, axis, keepdims, name)


def min(x: Operand, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Node:
    """Smallest element over ``axis`` (all axes by default), like ``numpy.min``.

    The gradient goes to the elements equal to the result, split equally among ties.
    """
    return _reduce("min", x, axis, keepdims, name)


def argmax(x: Operand, axis: Axis = None, keepdims: bool = False,
           name: Optional[str] = None) -> Node:
    """Index of the first largest element over one ``axis`` (of the flattened array when
    ``axis`` is None), like ``numpy.argmax``; an integer node without gradient."""
    return _reduce("argmax", x, axis, keepdims, name)


def argmin(x: Operand, axis: Axis = None, keepdims: bool = False,
           name: Optional[str] = None) -> Node:
    """Index of the first smallest element over one ``axis`` (of the flattened array when
    ``axis`` is None), like ``numpy.argmin``; an integer node without gradient."""
    return _reduce("argmin", x, axis, keepdims, name)
