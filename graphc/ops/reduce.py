"""Reductions over axes (``axis`` None, int or tuple, negatives allowed; ``keepdims``)."""
from __future__ import annotations

import numpy as np

from ..graph import apply
from ..shapes import normalize_axis, reduced_shape, size
from .common import probe
from .registry import Case, define


def _reduce_infer(kernel):
    def infer(x, *, axis, keepdims):
        axes = normalize_axis(axis, x.ndim)
        shape = reduced_shape(x.shape, axes, keepdims)
        return shape, probe(kernel, [x], axis=None), {"axis": axes, "keepdims": bool(keepdims)}
    return infer


def _spread(node, g):
    """The cotangent of a reduction spread back over the reduced axes (any leading batch)."""
    from .broadcast import broadcast_like, broadcast_to
    from .shape import expand_dims

    x = node.inputs[0]
    axes = node.attrs["axis"]
    if not node.attrs["keepdims"] and axes:
        g = expand_dims(g, tuple(a - x.ndim for a in axes))
    if None in x.shape:
        return broadcast_like(g, x)
    return broadcast_to(g, g.shape[:g.ndim - x.ndim] + x.shape)


def _mean_bprop(node, g, i):
    from .elementwise import div

    # Divide before spreading: the cotangent is smaller than the input.
    return _spread(node, div(g, reduced_size(node.inputs[0], node.attrs["axis"], node.dtype)))


_REDUCE_CASES = [
    Case(((3, 4),), attrs={"axis": (1,), "keepdims": False}, order=3),
    Case(((2, 3, 4),), attrs={"axis": (0, 2), "keepdims": True}),
    Case(((3, 4),), attrs={"axis": (0, 1), "keepdims": False}),
    Case(((),), attrs={"axis": (), "keepdims": False}),
]

define("sum", infer=_reduce_infer(np.sum),
       kernel=lambda x, *, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
       bprop=lambda node, g, i: _spread(node, g),
       reference=lambda x, *, axis, keepdims: np.add.reduce(x, axis=axis, keepdims=keepdims),
       cases=_REDUCE_CASES)

define("mean", infer=_reduce_infer(np.mean),
       kernel=lambda x, *, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
       bprop=_mean_bprop,
       reference=lambda x, *, axis, keepdims: (np.add.reduce(x, axis=axis, keepdims=keepdims)
                                               / max(1, int(np.prod([x.shape[a] for a in axis])))),
       cases=_REDUCE_CASES[:3])


def _reduced_size_infer(x, *, axis, dtype):
    return (), np.dtype(dtype)


define("reduced_size", infer=_reduced_size_infer,
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


def sum(x, axis=None, keepdims=False, name=None):
    """Sum over ``axis`` (all axes by default), like ``numpy.sum``."""
    return _reduce("sum", x, axis, keepdims, name)


def mean(x, axis=None, keepdims=False, name=None):
    """Mean over ``axis`` (all axes by default), like ``numpy.mean``."""
    return _reduce("mean", x, axis, keepdims, name)
