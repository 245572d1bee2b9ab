"""Ops that move elements without arithmetic: reshape, transpose, expand_dims, squeeze,
concatenate and stack (with the internal ops their rules emit).

Rules address trailing dimensions only (negative axes), so a cotangent may carry leading batch
dimensions.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import DTypeError, GraphcError, ShapeError
from ..graph import Axis, Node, Operand, apply
from ..shapes import fmt, normalize_axis, shape_argument, size
from .indexing import FULL, index_trailing
from .attrs import axes, integer, ints
from .registry import Case, define


# -- reshape ----------------------------------------------------------------------------------
def _reshape_infer(x, *, shape):
    shape = shape_argument(shape)
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


def _reshape_jvp(node, tangents):
    (t,) = tangents
    batch = t.shape[:t.ndim - node.inputs[0].ndim]
    if None in node.shape or None in batch:
        return reshape_like(t, node, len(batch))
    return reshape(t, batch + node.shape)


define("reshape", infer=_reshape_infer, kernel=lambda x, *, shape: np.reshape(x, shape),
       structure="select", curvature="linear",
       attrs={"shape": ints(-1)}, jvp=_reshape_jvp,
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


define("reshape_like", infer=_reshape_like_infer, attrs={"lead": integer(0)},
       structure="select", curvature="linear",
       kernel=lambda x, like, *, lead: np.reshape(x, np.shape(x)[:lead] + np.shape(like)),
       bprop=lambda node, g, i: reshape_like(g, node.inputs[0], g.ndim - node.ndim) if i == 0
       else None,
       reference=lambda x, like, *, lead: x.reshape(x.shape[:lead] + like.shape),
       cases=[Case(((3, 4), (2, 6)), attrs={"lead": 0}, wrt=(0,)),
              Case(((2, 3, 4), (12,)), attrs={"lead": 1}, wrt=(0,))],
       doc="Reshape x (past its first `lead` dimensions) to the run-time shape of like.")


# -- transpose ----------------------------------------------------------------------------------
def _transpose_infer(x, *, axes):
    axes = tuple(reversed(range(x.ndim))) if axes is None else shape_argument(axes, "axes")
    if len(axes) != x.ndim or any(not -x.ndim <= a < x.ndim for a in axes) or \
            len({a % x.ndim for a in axes}) != x.ndim:
        raise ShapeError(f"axes {axes} are not a permutation of the {x.ndim} dimensions")
    axes = tuple(a % x.ndim for a in axes)
    return tuple(x.shape[a] for a in axes), x.dtype, {"axes": axes}


def _transpose_bprop(node, g, i):
    axes = node.attrs["axes"]
    batch = g.ndim - node.ndim
    inverse = tuple(np.argsort(axes))
    return transpose(g, tuple(range(batch)) + tuple(batch + int(a) for a in inverse))


def _transpose_jvp(node, tangents):
    (t,) = tangents
    batch = t.ndim - node.ndim
    return transpose(t, tuple(range(batch)) + tuple(batch + a for a in node.attrs["axes"]))


define("transpose", infer=_transpose_infer, kernel=lambda x, *, axes: np.transpose(x, axes),
       structure="select", curvature="linear",
       attrs={"axes": axes}, jvp=_transpose_jvp,
       bprop=_transpose_bprop, reference=lambda x, *, axes: np.transpose(x, axes),
       cases=[Case(((3, 4),), attrs={"axes": (1, 0)}, order=3),
              Case(((2, 3, 4),), attrs={"axes": (2, 0, 1)})])


# -- expand_dims / squeeze ----------------------------------------------------------------------
def _expand_dims_infer(x, *, axis):
    if axis is None:
        raise ShapeError("axis must be an int or a tuple of ints, not None")
    axes = shape_argument(axis, "an axis")  # lists too, like NumPy
    axes = normalize_axis(axes, x.ndim + len(axes))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return tuple(shape), x.dtype, {"axis": axes}


def _squeeze_infer(x, *, axis):
    if axis is None:
        if None in x.shape:  # NumPy would also drop the unknown sizes that turn out to be 1
            raise ShapeError(f"squeeze without axis needs known sizes, but the shape is "
                             f"{fmt(x.shape)}; name the axes to remove")
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
        for a in axes:
            if x.shape[a] not in (1, None):
                raise ShapeError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype, {"axis": axes}


define("expand_dims", infer=_expand_dims_infer, attrs={"axis": axes},
       structure="select", curvature="linear",
       kernel=lambda x, *, axis: np.expand_dims(x, axis),
       bprop=lambda node, g, i: squeeze(g, tuple(a - node.ndim for a in node.attrs["axis"])),
       jvp=lambda node, ts: expand_dims(ts[0], tuple(a - node.ndim
                                                     for a in node.attrs["axis"])),
       reference=lambda x, *, axis: np.expand_dims(x, axis),
       cases=[Case(((3, 4),), attrs={"axis": (0, 2)}, order=3), Case(((),), attrs={"axis": (0,)})])

define("squeeze", infer=_squeeze_infer, attrs={"axis": axes},
       structure="select", curvature="linear",
       jvp=lambda node, ts: squeeze(ts[0], tuple(a - node.inputs[0].ndim
                                                 for a in node.attrs["axis"])),
       kernel=lambda x, *, axis: np.squeeze(x, axis),
       bprop=lambda node, g, i: expand_dims(
           g, tuple(a - node.inputs[0].ndim for a in node.attrs["axis"])),
       reference=lambda x, *, axis: np.squeeze(x, axis),
       cases=[Case(((3, 1, 4, 1),), attrs={"axis": (1, 3)}, order=3),
              Case(((1,),), attrs={"axis": (0,)})])


def reshape(x: Operand, shape: Sequence[int], name: Optional[str] = None) -> Node:
    """``x`` with a new shape (one entry may be -1), like ``numpy.reshape``."""
    return apply("reshape", [x], {"shape": shape}, name=name)


def reshape_like(x: Operand, like: Node, lead: int = 0, name: Optional[str] = None) -> Node:
    """``x`` reshaped to ``like``'s run-time shape, keeping ``lead`` leading dimensions."""
    return apply("reshape_like", [x, like], {"lead": int(lead)}, name=name)


def transpose(x: Operand, axes: Optional[Sequence[int]] = None,
              name: Optional[str] = None) -> Node:
    """Permute dimensions (reverse them by default), like ``numpy.transpose``; also ``x.T``."""
    return apply("transpose", [x], {"axes": axes}, name=name)


def expand_dims(x: Operand, axis: Axis, name: Optional[str] = None) -> Node:
    """Insert size-1 dimensions at ``axis`` (an int or a tuple), like ``numpy.expand_dims``."""
    return apply("expand_dims", [x], {"axis": axis}, name=name)


def squeeze(x: Operand, axis: Axis = None, name: Optional[str] = None) -> Node:
    """Remove size-1 dimensions (all known ones by default), like ``numpy.squeeze``."""
    return apply("squeeze", [x], {"axis": axis}, name=name)


# -- concatenate / stack --------------------------------------------------------------------------
# The bprops slice the cotangent back into the inputs' parts at negative axes (any batch).
# Parts whose offset or size is unknown at build time are taken by `concat_take`, which reads
# the sizes from the inputs at run time; its adjoint `concat_put` pads a part with zeros.
def _joined(xs, what):
    """The merged static shape of ``xs`` (None where unknown) and the dimensions whose known
    sizes differ."""
    if len({x.ndim for x in xs}) > 1:
        raise ShapeError(f"cannot {what} arrays of different numbers of dimensions: "
                         f"{', '.join(fmt(x.shape) for x in xs)}")
    out, differ = [], []
    for d in range(xs[0].ndim):
        known = {x.shape[d] for x in xs} - {None}
        out.append(min(known) if known else None)
        if len(known) > 1:
            differ.append(d)
    return out, differ


def _result_dtype(xs):
    try:
        return np.result_type(*(x.dtype for x in xs))
    except TypeError as exc:
        raise DTypeError(f"dtypes {', '.join(str(x.dtype) for x in xs)} do not combine "
                         f"({exc})") from None


def _concatenate_infer(*xs, axis):
    if not xs:
        raise ShapeError("concatenate needs at least one input")
    if xs[0].ndim == 0:
        raise ShapeError("cannot concatenate 0-d arrays")
    if axis is None or isinstance(axis, tuple):
        raise ShapeError(f"concatenate needs one integer axis, not {axis!r}")
    out, differ = _joined(xs, "concatenate")
    (axis,) = normalize_axis(axis, xs[0].ndim)
    for d in differ:
        if d != axis:
            raise ShapeError(f"cannot concatenate shapes {', '.join(fmt(x.shape) for x in xs)} "
                             f"along axis {axis}: the sizes in dimension {d} differ")
    sizes = [x.shape[axis] for x in xs]
    out[axis] = None if None in sizes else int(np.sum(sizes))
    return tuple(out), _result_dtype(xs), {"axis": axis}


def _part_index(ndim, axis, entry):
    """A canonical index over ``ndim`` trailing dimensions: ``entry`` at ``axis``, else all."""
    return tuple(entry if d == axis else FULL for d in range(ndim))


def _concatenate_bprop(node, g, i):
    axis = node.attrs["axis"]
    sizes = [x.shape[axis] for x in node.inputs[:i + 1]]
    if None in sizes:
        return concat_take(g, node.inputs, axis - node.ndim, i)
    start = int(np.sum(sizes[:-1]))
    return index_trailing(g, _part_index(node.ndim, axis, ("slice", start, start + sizes[-1], 1)))


def _concatenate_reference(*xs, axis):
    out = np.empty(xs[0].shape[:axis] + (sum(x.shape[axis] for x in xs),) + xs[0].shape[axis + 1:],
                   np.result_type(*xs))
    start = 0
    for x in xs:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + x.shape[axis])
        out[tuple(index)] = x
        start += x.shape[axis]
    return out


define("concatenate", infer=_concatenate_infer, attrs={"axis": axes},
       structure="select", curvature="linear",
       kernel=lambda *xs, axis: np.concatenate(xs, axis=axis),
       bprop=_concatenate_bprop, reference=_concatenate_reference,
       cases=[Case(((2, 3), (4, 3)), attrs={"axis": 0}, order=3),
              Case(((2, 3), (2, 1), (2, 2)), attrs={"axis": -1}),
              Case(((2, 3, 2), (2, 1, 2)), attrs={"axis": 1}),
              Case(((3,),), attrs={"axis": 0}),
              Case(((2, 3), (0, 3), (1, 3)), attrs={"axis": 0}),  # an empty part
              Case((np.array([1, 2]), (3,)), attrs={"axis": 0}, wrt=(1,))],  # int and float
       doc="numpy.concatenate along one axis (variadic inputs).")


def _stack_infer(*xs, axis):
    if not xs:
        raise ShapeError("stack needs at least one input")
    if axis is None or isinstance(axis, tuple):
        raise ShapeError(f"stack needs one integer axis, not {axis!r}")
    out, differ = _joined(xs, "stack")
    if differ:
        raise ShapeError(f"cannot stack shapes {', '.join(fmt(x.shape) for x in xs)}: all "
                         "inputs need the same shape")
    (axis,) = normalize_axis(axis, xs[0].ndim + 1)
    out.insert(axis, len(xs))
    return tuple(out), _result_dtype(xs), {"axis": axis}


def _stack_bprop(node, g, i):
    return index_trailing(g, _part_index(node.ndim, node.attrs["axis"], ("int", i)))


def _stack_reference(*xs, axis):
    out = np.empty(xs[0].shape[:axis] + (len(xs),) + xs[0].shape[axis:], np.result_type(*xs))
    for k, x in enumerate(xs):
        out[(slice(None),) * axis + (k,)] = x
    return out


define("stack", infer=_stack_infer, kernel=lambda *xs, axis: np.stack(xs, axis=axis),
       structure="select", curvature="linear",
       attrs={"axis": axes},
       bprop=_stack_bprop, reference=_stack_reference,
       cases=[Case(((2, 3), (2, 3)), attrs={"axis": 0}, order=3),
              Case(((2, 3), (2, 3), (2, 3)), attrs={"axis": -1}),
              Case(((3,), (3,)), attrs={"axis": 1}),
              Case(((), (), ()), attrs={"axis": 0})],
       doc="numpy.stack: join same-shaped inputs along a new axis (variadic inputs).")


# concat_take(g, *xs) = the part of g that xs[part] fills along `axis` (negative) of a
# concatenation of xs, offsets read from the inputs' run-time shapes; concat_put is its adjoint.
def _concat_offsets(xs, axis, part):
    sizes = [np.shape(x)[axis] for x in xs]
    start = int(np.sum(sizes[:part], dtype=np.int64))
    return start, start + sizes[part], int(np.sum(sizes, dtype=np.int64))


def _concat_slot(axis, start, stop):
    return (Ellipsis, slice(start, stop)) + (slice(None),) * (-axis - 1)


def _concat_take_kernel(g, *xs, axis, part):
    start, stop, _ = _concat_offsets(xs, axis, part)
    return np.asarray(g)[_concat_slot(axis, start, stop)]


def _concat_put_kernel(h, *xs, axis, part):
    start, stop, total = _concat_offsets(xs, axis, part)
    h = np.asarray(h)
    out = np.zeros(h.shape[:h.ndim + axis] + (total,) + h.shape[h.ndim + axis + 1:], h.dtype)
    out[_concat_slot(axis, start, stop)] = h
    return out


_PART_ATTRS = {"axis": integer(), "part": integer(0)}


def _concat_part_infer(kind):
    def infer(g, *xs, axis, part):
        axis, part = int(axis), int(part)
        if not -g.ndim <= axis < 0 or any(not -x.ndim <= axis for x in xs) or \
                not 0 <= part < len(xs):
            raise ShapeError(f"bad axis {axis} or part {part} for shapes "
                             f"{', '.join(fmt(x.shape) for x in (g,) + xs)}")
        sizes = [x.shape[axis] for x in xs]
        total = None if None in sizes else int(np.sum(sizes))
        size_, whole = (sizes[part], g.shape[axis]) if kind == "take" else (total, sizes[part])
        if kind == "take" and total is not None and whole is not None and whole != total:
            raise ShapeError(f"g has size {whole} along axis {axis}, the parts add up to {total}")
        if kind == "put" and whole is not None and g.shape[axis] is not None and \
                g.shape[axis] != whole:
            raise ShapeError(f"g has size {g.shape[axis]} along axis {axis}, part {part} has "
                             f"{whole}")
        shape = g.shape[:g.ndim + axis] + (size_,) + g.shape[g.ndim + axis + 1:]
        return shape, g.dtype, {"axis": axis, "part": part}
    return infer


def _concat_take_reference(g, *xs, axis, part):
    start = sum(x.shape[axis] for x in xs[:part])
    return np.take(g, list(range(start, start + xs[part].shape[axis])), axis=axis)


def _concat_put_reference(h, *xs, axis, part):
    pieces = [np.zeros(h.shape[:h.ndim + axis] + (x.shape[axis],) + h.shape[h.ndim + axis + 1:],
                       h.dtype) for x in xs]
    pieces[part] = h
    return np.concatenate(pieces, axis=axis)


define("concat_take", infer=_concat_part_infer("take"), kernel=_concat_take_kernel,
       structure="select", curvature="linear",
       attrs=_PART_ATTRS,
       bprop=lambda node, g, i: None if i else concat_put(g, node.inputs[1:], **node.attrs),
       reference=_concat_take_reference,
       cases=[Case(((5, 3), (2, 3), (3, 3)), attrs={"axis": -2, "part": 1}, wrt=(0,)),
              Case(((2, 2, 4), (2, 1), (2, 3)), attrs={"axis": -1, "part": 0}, wrt=(0,))],
       doc="The part of g that input `part` of a concatenation along `axis` fills (sizes "
           "read from the inputs at run time).")

define("concat_put", infer=_concat_part_infer("put"), attrs=_PART_ATTRS,
       kernel=_concat_put_kernel, structure="scatter", curvature="linear",
       bprop=lambda node, g, i: None if i else concat_take(g, node.inputs[1:], **node.attrs),
       reference=_concat_put_reference,
       cases=[Case(((3, 3), (2, 3), (3, 3)), attrs={"axis": -2, "part": 1}, wrt=(0,)),
              Case(((2, 2, 1), (2, 1), (2, 3)), attrs={"axis": -1, "part": 0}, wrt=(0,))],
       doc="The adjoint of concat_take: h in its place along `axis`, zeros elsewhere.")


def _node_list(xs, op: str) -> list:
    if isinstance(xs, Node) or not isinstance(xs, (list, tuple)):
        raise GraphcError(f"gc.{op} takes a list or tuple of nodes, not {type(xs).__name__}")
    return list(xs)


def concatenate(xs: Sequence[Operand], axis: int = 0, name: Optional[str] = None) -> Node:
    """Join ``xs`` (a list of nodes or arrays) along an existing ``axis``, like
    ``numpy.concatenate``; the sizes along ``axis`` may be unknown until run time."""
    return apply("concatenate", _node_list(xs, "concatenate"), {"axis": axis}, name=name)


def stack(xs: Sequence[Operand], axis: int = 0, name: Optional[str] = None) -> Node:
    """Join same-shaped ``xs`` along a new ``axis``, like ``numpy.stack``."""
    return apply("stack", _node_list(xs, "stack"), {"axis": axis}, name=name)


def concat_take(g: Node, xs: Sequence[Operand], axis: int, part: int,
                name: Optional[str] = None) -> Node:
    """The slice of ``g`` along negative ``axis`` that ``xs[part]`` fills in a concatenation
    of ``xs`` (offsets from the run-time shapes; g may carry leading batch dimensions)."""
    return apply("concat_take", [g, *xs], {"axis": axis, "part": part}, name=name)


def concat_put(h: Node, xs: Sequence[Operand], axis: int, part: int,
               name: Optional[str] = None) -> Node:
    """Zeros shaped like the concatenation of ``xs`` along negative ``axis`` (after h's batch
    dimensions), with ``h`` in the place of ``xs[part]``: the adjoint of :func:`concat_take`."""
    return apply("concat_put", [h, *xs], {"axis": axis, "part": part}, name=name)
