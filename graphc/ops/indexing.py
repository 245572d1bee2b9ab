"""Indexing ``x[index]``: basic slicing, integers, ``None``, ``Ellipsis`` and one 1-D integer array.

The index lives in the node's attrs in a canonical, JSON-friendly form: a tuple with one tagged
entry per indexed dimension (and per new axis), never Python slices or ``Ellipsis``::

    ("slice", start, stop, step)    start/stop int or None, step a nonzero int
    ("int", i)                      removes the dimension
    ("newaxis",)                    inserts a dimension of size 1
    ("array", (i0, i1, ...))        one 1-D integer array (NumPy advanced indexing)

plus ``front``: whether NumPy moves the array's dimension to the front of the result (it does
when integers and the array are separated by a slice, ``None`` or ``...``).

A canonical index addresses the *trailing* dimensions of its input; any dimensions before them
are left alone. The builder expands the user's ``...`` (explicit, or implied at the end) into
full slices, so ``x[index]`` follows NumPy exactly, while the same attrs applied to a cotangent
with leading batch dimensions index each member of the batch: that is how the bprops of
``getitem`` and of its adjoint ``getitem_grad`` (scatter-add into zeros) stay batch-polymorphic
and closed under differentiation.
"""
from __future__ import annotations

from typing import Any, Optional

import functools

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Node, Operand, apply
from ..shapes import fmt
from .attrs import anything_of, flag
from .registry import Case, define

_TAGS = {"slice": 4, "int": 2, "newaxis": 1, "ellipsis": 1, "array": 2}
_CONSUMES = ("slice", "int", "array")  # entries that index an existing dimension
_FULL = ("slice", None, None, 1)
_RAW = object()  # marks "no raw index given"


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# -- parsing: a user's index (or attrs read back from JSON) as tagged entries --------------------
def _tagged(entry) -> tuple:
    tag = entry[0]
    if tag not in _TAGS or len(entry) != _TAGS[tag]:
        raise DTypeError(f"bad index entry {entry!r}")
    if tag == "slice":
        start, stop, step = entry[1:]
        if not all(v is None or _is_int(v) for v in (start, stop, step)):
            raise DTypeError(f"slice bounds must be integers or None, not {entry[1:]!r}")
        if step == 0:
            raise ShapeError("slice step cannot be zero")
        return ("slice", _opt_int(start), _opt_int(stop), 1 if step is None else int(step))
    if tag == "int":
        if not _is_int(entry[1]):
            raise DTypeError(f"bad integer index {entry[1]!r}")
        return ("int", int(entry[1]))
    if tag == "array":
        return _array_entry(entry[1])
    return (tag,)


def _opt_int(value):
    return None if value is None else int(value)


def _array_entry(values) -> tuple:
    array = np.asarray(values)
    if array.size == 0 and array.ndim == 1:
        return ("array", ())
    if array.dtype == np.bool_:
        raise DTypeError("boolean masks are not supported as indices (use gc.where)")
    if not np.issubdtype(array.dtype, np.integer):
        raise DTypeError(f"array indices must be integers, not {array.dtype}")
    if array.ndim == 0:
        return ("int", int(array))
    if array.ndim != 1:
        raise ShapeError(f"only 1-D integer arrays are supported as indices, not shape "
                         f"{array.shape}")
    return ("array", tuple(int(i) for i in array))


def _raw_entry(item) -> tuple:
    """One entry of a NumPy-style index as a tagged entry."""
    if isinstance(item, Node):
        raise DTypeError(f"cannot index with a graphc node ({item.op} '{item.name}'); indices "
                         "must be known when the graph is built")
    if item is None:
        return ("newaxis",)
    if item is Ellipsis:
        return ("ellipsis",)
    if isinstance(item, slice):
        return _tagged(("slice", item.start, item.stop, item.step))
    if _is_int(item):
        return ("int", int(item))
    if isinstance(item, (bool, np.bool_)):
        raise DTypeError("boolean indices are not supported (use gc.where)")
    if isinstance(item, tuple) and item and isinstance(item[0], str):
        return _tagged(item)
    if isinstance(item, (list, tuple, np.ndarray)):
        return _array_entry(item)
    raise DTypeError(f"only integers, slices, None, Ellipsis and 1-D integer arrays are valid "
                     f"indices, not {type(item).__name__}")


def _entries(index) -> list:
    if isinstance(index, tuple) and not (index and isinstance(index[0], str)):
        return [_raw_entry(item) for item in index]
    return [_raw_entry(index)]


# -- canonical form and static shape -------------------------------------------------------------
def canonical(shape: tuple, index, front=False, raw=_RAW) -> tuple:
    """``(out_shape, index, front)`` of ``x[index]`` for an input of static ``shape``.

    ``raw`` is a NumPy-style index (its ``...`` is implied at the end when absent); otherwise
    ``index`` holds tagged entries that address the trailing dimensions.
    """
    if raw is not _RAW:
        entries = _entries(raw)
        if not any(e[0] == "ellipsis" for e in entries):
            entries.append(("ellipsis",))
        front = _numpy_moves_to_front(entries)
    else:
        entries = _entries(tuple(index))
        front = bool(front)
    if sum(e[0] == "ellipsis" for e in entries) > 1:
        raise ShapeError("an index can only have a single ellipsis ('...')")
    if sum(e[0] == "array" for e in entries) > 1:
        raise ShapeError("only one integer array is supported in an index")
    consumed = sum(e[0] in _CONSUMES for e in entries)
    if consumed > len(shape):
        raise ShapeError(f"too many indices: {consumed} for {len(shape)} dimensions")
    if any(e[0] == "ellipsis" for e in entries):
        k = next(j for j, e in enumerate(entries) if e[0] == "ellipsis")
        entries[k:k + 1] = [_FULL] * (len(shape) - consumed)
        consumed = len(shape)
    lead = len(shape) - consumed

    out, dim, place, index = list(shape[:lead]), lead, None, []
    for e in entries:
        if e[0] == "newaxis":
            out.append(1)
        elif e[0] == "slice":
            n = shape[dim]
            out.append(None if n is None else len(range(*slice(*e[1:]).indices(n))))
        elif e[0] == "int":
            e = ("int", _in_bounds(e[1], shape[dim], dim))
        elif e[0] == "array":
            e = ("array", tuple(_in_bounds(i, shape[dim], dim) for i in e[1]))
            place = len(out)
            out.append(len(e[1]))
        dim += e[0] in _CONSUMES
        index.append(e)
    if place is None or place == lead:
        front = False  # nothing to move
    if front:
        out.insert(lead, out.pop(place))
    return tuple(out), tuple(index), front


def _in_bounds(i: int, n, dim: int) -> int:
    if n is None:
        return i
    if not -n <= i < n:
        raise ShapeError(f"index {i} is out of bounds for dimension {dim} of size {n}")
    return i % n


def _numpy_moves_to_front(entries) -> bool:
    """NumPy's rule: advanced indices (the array, and then the integers too) that are not next
    to each other put their dimension first (``...`` separates even when it stands for none)."""
    if not any(e[0] == "array" for e in entries):
        return False
    places = [k for k, e in enumerate(entries) if e[0] in ("int", "array")]
    return places != list(range(places[0], places[-1] + 1))


@functools.lru_cache(maxsize=1024)
def _plan(index, front):
    return _Plan(index, front)


class _Plan:
    """How a kernel applies a canonical index: basic indexing, then ``take`` along ``axis``."""

    def __init__(self, index, front):
        self.basic, self.array, self.after = [], None, 0
        for e in index:
            if e[0] == "slice":
                self.basic.append(slice(*e[1:]))
            elif e[0] == "int":
                self.basic.append(e[1])
            elif e[0] == "newaxis":
                self.basic.append(None)
            else:
                self.basic.append(slice(None))
                self.array = np.array(e[1], dtype=np.intp)
                self.array.flags.writeable = False  # plans are cached and shared
                self.after = -1
            if self.array is not None and e[0] != "int":
                self.after += 1
        self.basic = (Ellipsis,) + tuple(self.basic)
        self.axis = -1 - self.after  # the array's dimension after basic indexing
        self.produced = sum(e[0] != "int" for e in index)  # trailing dimensions of the result
        self.consumed = sum(e[0] in _CONSUMES for e in index)
        self.front = front and self.array is not None


def _getitem_kernel(x, *, index, front):
    plan = _plan(index, front)
    y = np.asarray(x)[plan.basic]
    if plan.array is not None:
        y = np.take(y, plan.array, axis=plan.axis)
        if plan.front:
            y = np.moveaxis(y, plan.axis, -plan.produced)
    return y


def _getitem_grad_kernel(g, like, *, index, front):
    plan = _plan(index, front)
    g = np.asarray(g)
    batch = g.shape[:g.ndim - (np.ndim(like) - plan.consumed + plan.produced)]
    out = np.zeros(batch + np.shape(like), dtype=g.dtype)
    view = out[plan.basic]  # basic indexing never selects an element twice
    if plan.array is None:
        view[...] = g
    else:  # the array may repeat an index: accumulate
        if plan.front:
            g = np.moveaxis(g, -plan.produced, plan.axis)
        np.add.at(view, (Ellipsis, plan.array) + (slice(None),) * plan.after, g)
    return out


# -- references: dimension by dimension with np.take (no NumPy indexing rules involved) --------
def _getitem_reference(x, *, index, front):
    lead = x.ndim - sum(e[0] in _CONSUMES for e in index)
    y, axis, place = x, lead, None
    for e in index:
        if e[0] == "newaxis":
            y = np.expand_dims(y, axis)
        elif e[0] == "slice":
            y = np.take(y, list(range(*slice(*e[1:]).indices(y.shape[axis]))), axis=axis)
        elif e[0] == "int":
            y = np.take(y, e[1], axis=axis)
            continue
        else:
            place = axis
            y = np.take(y, list(e[1]), axis=axis)
        axis += 1
    if front and place is not None:
        y = np.moveaxis(y, place, lead)
    return y


def _getitem_grad_reference(g, like, *, index, front):
    # Which element of `like` each element of like[index] is, then add g into those places.
    source = _getitem_reference(np.arange(like.size).reshape(like.shape), index=index,
                                front=front)
    batch = g.shape[:g.ndim - source.ndim]
    flat = np.zeros(batch + (like.size,), dtype=g.dtype)
    np.add.at(flat, (Ellipsis, source.reshape(-1)), g.reshape(batch + (-1,)))
    return flat.reshape(batch + like.shape)


# -- rules -----------------------------------------------------------------------------------------
def _index_attr(value) -> tuple:
    """Tagged entries (the canonical form); ``canonical`` checks each entry fully."""
    if not isinstance(value, tuple) or not all(isinstance(e, tuple) and e and
                                               isinstance(e[0], str) for e in value):
        raise TypeError(f"expected a tuple of tagged index entries, not {value!r:.60}")
    return value


# A NumPy-style index as the user wrote it; canonical() parses it entry by entry.
_raw_attr = anything_of(int, np.integer, slice, type(None), type(Ellipsis), tuple, list,
                        np.ndarray)
_INDEX_ATTRS = {"index": _index_attr, "front": flag}


def _getitem_infer(x, *, index=(), front=False, raw=_RAW):
    shape, index, front = canonical(x.shape, index, front, raw)
    return shape, x.dtype, {"index": index, "front": front}


def _getitem_grad_infer(g, like, *, index, front):
    indexed, index, front = canonical(like.shape, index, front)
    batch = g.ndim - len(indexed)
    if batch < 0 or any(a is not None and b is not None and a != b
                        for a, b in zip(g.shape[batch:], indexed)):
        raise ShapeError(f"a cotangent of shape {fmt(g.shape)} does not fit the indexed "
                         f"shape {fmt(indexed)}")
    return g.shape[:batch] + like.shape, g.dtype, {"index": index, "front": front}


def _getitem_grad_bprop(node, g, i):
    if i == 1:
        return None  # only like's shape is used
    return index_trailing(g, node.attrs["index"], node.attrs["front"])


define("getitem", infer=_getitem_infer, kernel=_getitem_kernel,
       structure="select", curvature="linear",
       attrs={**_INDEX_ATTRS, "raw": _raw_attr},
       bprop=lambda node, g, i: getitem_grad(g, node.inputs[0], node.attrs["index"],
                                             node.attrs["front"]),
       jvp=lambda node, ts: index_trailing(ts[0], node.attrs["index"], node.attrs["front"]),
       reference=_getitem_reference,
       cases=[Case(((4, 5),), attrs={"raw": (slice(1, None, 2), slice(None, None, -1))}),
              Case(((3, 4, 5),), attrs={"raw": (Ellipsis, 1)}),
              Case(((3, 4),), attrs={"raw": (None, -1, slice(-3, None))}),
              Case(((5,),), attrs={"raw": slice(4, 0, -2)}),
              Case(((3,),), attrs={"raw": 1}),  # a scalar result
              Case(((4,),), attrs={"raw": slice(2, 2)}),  # an empty result
              Case(((2, 3),), attrs={"raw": (Ellipsis, None)}),
              Case(((4, 3),), attrs={"raw": [3, 0, -1, 0]}),  # repeated index
              Case(((3, 4, 2),), attrs={"raw": (slice(1, 3), [1, 3, 1], None)}),
              Case(((3, 4, 2),), attrs={"raw": (0, slice(None), [1, 0, 1])})],  # moved to front
       doc="x[index]: basic slicing, integers, None, Ellipsis and one 1-D integer array.")

define("getitem_grad", infer=_getitem_grad_infer, kernel=_getitem_grad_kernel,
       structure="scatter", curvature="linear",
       attrs=_INDEX_ATTRS,
       bprop=_getitem_grad_bprop, reference=_getitem_grad_reference,
       cases=[Case(((2,), (4,)), attrs={"index": (("slice", 1, None, 2),), "front": False},
                   wrt=(0,)),
              Case(((2, 3, 2), (3, 4)), attrs={"index": (("slice", 3, None, -2),),
                                               "front": False}, wrt=(0,)),
              Case(((3, 4), (3, 4, 2)), attrs={"index": (("int", 0), _FULL, ("array", (1, 0, 1))),
                                               "front": True}, wrt=(0,)),
              Case(((2, 2, 1, 2), (3, 2)), attrs={"index": (("array", (2, 2)), ("newaxis",), _FULL),
                                               "front": False}, wrt=(0,))],
       doc="The adjoint of getitem: g added into zeros of like's run-time shape at index "
           "(g may carry leading batch dimensions).")


def getitem(x: Operand, index: Any, name: Optional[str] = None) -> Node:
    """``x[index]`` with NumPy semantics (also written ``x[...]`` on a node).

    Supports slices (negative bounds and steps included), integers, ``None``/``np.newaxis``,
    ``Ellipsis`` and one 1-D integer array or list; the index must be known when the graph is
    built. The gradient scatters back into zeros of ``x``'s shape (repeated indices add up).

    An integer *node* among slices, ``None`` and ``...`` gathers with :func:`graphc.take`
    along its dimension, and a bool mask (a node or an array) selects with
    :func:`graphc.boolean_mask` (a result of run-time size).
    """
    from .gather import node_index  # indexing with nodes lives with the other gathers
    routed = node_index(x, index, name=name)
    if routed is not None:
        return routed
    return apply("getitem", [x], {"raw": index}, name=name)


def getitem_grad(g: Node, like: Node, index: Any, front: bool = False,
                 name: Optional[str] = None) -> Node:
    """Zeros of ``like``'s run-time shape (after ``g``'s leading batch dimensions) with ``g``
    added at the canonical ``index`` (the attrs of a getitem node)."""
    return apply("getitem_grad", [g, like], {"index": tuple(index), "front": bool(front)},
                 name=name)


def index_trailing(x: Operand, index: Any, front: bool = False,
                   name: Optional[str] = None) -> Node:
    """``x`` indexed by a canonical ``index`` (tagged entries) on its trailing dimensions;
    the dimensions before them are kept (how bprops index a cotangent with a batch)."""
    return apply("getitem", [x], {"index": tuple(index), "front": bool(front)}, name=name)


FULL = _FULL  # the canonical entry of a whole dimension
