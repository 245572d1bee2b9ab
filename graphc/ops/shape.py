"""Ops that move elements without arithmetic: reshape, transpose, expand_dims, squeeze.

Rules address trailing dimensions only (negative axes), so a cotangent may carry leading batch
dimensions.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..graph import apply
from ..shapes import fmt, normalize_axis, size
from .registry import Case, define


# -- reshape ----------------------------------------------------------------------------------
def _reshape_infer(x, *, shape):
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise ShapeError(f"bad target shape {shape}")
    known = size(tuple(d for d in shape if d != -1))
    total = size(x.shape)
    if -1 in shape:
        if total is not None:
            if known == 0 or total % known:
                raise ShapeError(f"cannot reshape {fmt(x.shape)} into {fmt(shape)}")
            out = tuple(total // known if d == -1 else d for d in shape)
        else:
            out = tuple(None if d == -1 else d for d in shape)
    else:
        if total is not None and total != known:
            raise ShapeError(f"cannot reshape {fmt(x.shape)} ({total} elements) into "
                             f"{fmt(shape)} ({known} elements)")
        out = shape
    return out, x.dtype, {"shape": shape}


def _reshape_bprop(node, g, i):
    x = node.inputs[0]
    batch = g.shape[:g.ndim - node.ndim]
    if None in x.shape or None in batch:  # sizes known only at run time: take them from x
        return reshape_like(g, x, len(batch))
    return reshape(g, batch + x.shape)


define("reshape", infer=_reshape_infer, kernel=lambda x, *, shape: np.reshape(x, shape),
       bprop=_reshape_bprop, reference=lambda x, *, shape: x.reshape(shape),
       cases=[Case(((3, 4),), attrs={"shape": (2, 6)}, order=3),
              Case(((3, 4),), attrs={"shape": (-1,)}), Case(((1,),), attrs={"shape": ()})])


def _reshape_like_infer(x, like, *, lead):
    if x.ndim < lead:
        raise ShapeError(f"cannot keep {lead} leading dimensions of {fmt(x.shape)}")
    rest, want = size(x.shape[lead:]), size(like.shape)
    if rest is not None and want is not None and rest != want:
        raise ShapeError(f"cannot reshape {fmt(x.shape[lead:])} like {fmt(like.shape)}")
    return x.shape[:lead] + like.shape, x.dtype


define("reshape_like", infer=_reshape_like_infer,
       kernel=lambda x, like, *, lead: np.reshape(x, np.shape(x)[:lead] + np.shape(like)),
       bprop=lambda node, g, i: reshape_like(g, node.inputs[0], g.ndim - node.ndim) if i == 0
       else None,
       reference=lambda x, like, *, lead: x.reshape(x.shape[:lead] + like.shape),
       cases=[Case(((3, 4), (2, 6)), attrs={"lead": 0}, wrt=(0,)),
              Case(((2, 3, 4), (12,)), attrs={"lead": 1}, wrt=(0,))],
       doc="Reshape x (past its first `lead` dimensions) to the run-time shape of like.")


# -- transpose ----------------------------------------------------------------------------------
def _transpose_infer(x, *, axes):
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) for a in axes)
    if sorted(a % x.ndim if x.ndim else a for a in axes) != list(range(x.ndim)) or \
            any(not -x.ndim <= a < x.ndim for a in axes):
        raise ShapeError(f"axes {axes} are not a permutation of the {x.ndim} dimensions")
    axes = tuple(a % x.ndim for a in axes)
    return tuple(x.shape[a] for a in axes), x.dtype, {"axes": axes}


def _transpose_bprop(node, g, i):
    axes = node.attrs["axes"]
    batch = g.ndim - node.ndim
    inverse = tuple(np.argsort(axes))
    return transpose(g, tuple(range(batch)) + tuple(batch + int(a) for a in inverse))


define("transpose", infer=_transpose_infer, kernel=lambda x, *, axes: np.transpose(x, axes),
       bprop=_transpose_bprop, reference=lambda x, *, axes: np.transpose(x, axes),
       cases=[Case(((3, 4),), attrs={"axes": (1, 0)}, order=3),
              Case(((2, 3, 4),), attrs={"axes": (2, 0, 1)})])


# -- expand_dims / squeeze ----------------------------------------------------------------------
def _expand_dims_infer(x, *, axis):
    axes = normalize_axis(axis, x.ndim + len(axis if isinstance(axis, tuple) else (axis,)))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return tuple(shape), x.dtype, {"axis": axes}


def _squeeze_infer(x, *, axis):
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
        for a in axes:
            if x.shape[a] not in (1, None):
                raise ShapeError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype, {"axis": axes}


define("expand_dims", infer=_expand_dims_infer,
       kernel=lambda x, *, axis: np.expand_dims(x, axis),
       bprop=lambda node, g, i: squeeze(g, tuple(a - node.ndim for a in node.attrs["axis"])),
       reference=lambda x, *, axis: np.expand_dims(x, axis),
       cases=[Case(((3, 4),), attrs={"axis": (0, 2)}, order=3), Case(((),), attrs={"axis": (0,)})])

define("squeeze", infer=_squeeze_infer,
       kernel=lambda x, *, axis: np.squeeze(x, axis),
       bprop=lambda node, g, i: expand_dims(
           g, tuple(a - node.inputs[0].ndim for a in node.attrs["axis"])),
       reference=lambda x, *, axis: np.squeeze(x, axis),
       cases=[Case(((3, 1, 4, 1),), attrs={"axis": (1, 3)}, order=3),
              Case(((1,),), attrs={"axis": (0,)})])


def reshape(x, shape, name=None):
    """``x`` with a new shape (one entry may be -1), like ``numpy.reshape``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return apply("reshape", [x], {"shape": shape}, name=name)


def reshape_like(x, like, lead: int = 0, name=None):
    """``x`` reshaped to ``like``'s run-time shape, keeping ``lead`` leading dimensions."""
    return apply("reshape_like", [x, like], {"lead": int(lead)}, name=name)


def transpose(x, axes=None, name=None):
    """Permute dimensions (reverse them by default), like ``numpy.transpose``; also ``x.T``."""
    return apply("transpose", [x], {"axes": None if axes is None else tuple(axes)}, name=name)


def expand_dims(x, axis, name=None):
    """Insert size-1 dimensions at ``axis`` (an int or a tuple), like ``numpy.expand_dims``."""
    return apply("expand_dims", [x], {"axis": axis}, name=name)


def squeeze(x, axis=None, name=None):
    """Remove size-1 dimensions (all known ones by default), like ``numpy.squeeze``."""
    return apply("squeeze", [x], {"axis": axis}, name=name)
