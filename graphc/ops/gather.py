"""Indexing with nodes: gather (``take``, ``take_along_axis``, boolean masks, ``dynamic_slice``)
and the routing of ``x[node]``.

Each gather op has a scatter-add adjoint (``take_grad``, ``take_along_axis_grad``,
``boolean_mask_grad``, ``dynamic_slice_grad``: the cotangent added into zeros of the input's
run-time shape) whose own bprop is the gather again, so derivatives of any order stay in the
family. Axes are stored negative, and every kernel addresses the *trailing* dimensions, so the
same attrs applied to a cotangent with leading batch dimensions index each member of the batch.

Indices are checked at run time: an index outside ``[-n, n)`` (negative ones count from the
end, as in NumPy) raises :class:`graphc.IndexOutOfRangeError` naming the node; nothing wraps
silently. ``dynamic_slice`` is the exception by design: like JAX it *clamps* its starts so that
the slice fits (``start = clip(start, 0, n - size)``).

Functional scatter (``index_add``, ``index_update``, ``x.at[...]``) is in
:mod:`graphc.ops.scatter`.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import DTypeError, GraphcError, ShapeError
from ..graph import Axis, Node, Operand, apply, as_node, graph_of, user_site
from ..shapes import broadcast_shapes, fmt
from .attrs import integer, ints
from .registry import Case, define


# -- helpers --------------------------------------------------------------------------------------
def _require_indices(idx, what="indices"):
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{what} must be integers, not {idx.dtype}")


def _negative_axis(axis, ndim, what="axis"):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ShapeError(f"{what} must be an int, not {axis!r}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{what} {axis} is out of range for {ndim} dimensions")
    return int(axis) % ndim - ndim


def _checked(idx, n: int, axis: int) -> np.ndarray:
    """``idx`` as intp, each in ``[-n, n)``, else IndexError naming the first bad one."""
    idx = np.asarray(idx)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].flat[0]
        where = f"axis {axis}" if axis >= 0 else f"axis {axis} (from the end)"
        raise IndexError(f"index {bad} is out of range for {where} of size {n} "
                         f"(valid: {-n} to {n - 1})")
    return idx.astype(np.intp, copy=False)


def _tail(axis):
    return (slice(None),) * (-axis - 1)


# -- take and its adjoint take_grad --------------------------------------------------------------
def _take_infer(x, idx, *, axis):
    _require_indices(idx)
    if x.ndim == 0:
        raise ShapeError("cannot take from a 0-d value (reshape it first)")
    axis = _negative_axis(axis, x.ndim)
    k = x.ndim + axis
    return x.shape[:k] + idx.shape + x.shape[k + 1:], x.dtype, {"axis": axis}


def _take(x, idx, *, axis):
    x = np.asarray(x)
    return np.take(x, _checked(idx, x.shape[axis], x.ndim + axis), axis=axis)


def _take_reference(x, idx, *, axis):
    k = x.ndim + axis
    out = np.empty(x.shape[:k] + idx.shape + x.shape[k + 1:], x.dtype)
    for index in np.ndindex(idx.shape):
        out[(slice(None),) * k + index] = x[(slice(None),) * k + (int(idx[index]),)]
    return out


def _take_grad_infer(g, idx, like, *, axis):
    _require_indices(idx)
    axis = _negative_axis(axis, like.ndim)
    k = like.ndim + axis
    taken = like.shape[:k] + idx.shape + like.shape[k + 1:]
    batch = g.ndim - len(taken)
    if batch < 0:
        raise ShapeError(f"a cotangent of shape {fmt(g.shape)} does not fit {fmt(taken)}")
    return g.shape[:batch] + like.shape, g.dtype, {"axis": axis}


def _take_grad(g, idx, like, *, axis):
    g = np.asarray(g)
    n = np.shape(like)[axis]
    idx = _checked(idx, n, axis)
    lead = g.shape[:g.ndim - np.ndim(like) - idx.ndim + 1]
    out = np.zeros(lead + np.shape(like), g.dtype)
    np.add.at(out, (Ellipsis, idx) + _tail(axis), g)
    return out


def _take_grad_reference(g, idx, like, *, axis):
    k = like.ndim + axis
    batch = g.shape[:g.ndim - (like.ndim - 1 + idx.ndim)]
    out = np.zeros(batch + like.shape, g.dtype)
    b = len(batch)
    for index in np.ndindex(idx.shape):
        i = int(idx[index]) % like.shape[axis]
        out[(slice(None),) * (b + k) + (i,)] += g[(slice(None),) * (b + k) + index]
    return out


_IDX = np.array([[2, 0], [-1, 2]])

define("take", infer=_take_infer, kernel=_take, attrs={"axis": integer()},
       bprop=lambda node, g, i: None if i else take_grad(g, node.inputs[1], node.inputs[0],
                                                         node.attrs["axis"]),
       reference=_take_reference,
       cases=[Case(((4, 3), np.array([3, 0, 0, -1])), attrs={"axis": 0}, order=3),
              Case(((2, 3, 2), _IDX), attrs={"axis": 1}),
              Case(((3,), np.array(1)), attrs={"axis": -1})],
       doc="x's entries at integer indices (a node or array of any shape) along axis.")
define("take_grad", infer=_take_grad_infer, kernel=_take_grad, attrs={"axis": integer()},
       bprop=lambda node, c, i: None if i else take(c, node.inputs[1], node.attrs["axis"]),
       reference=_take_grad_reference,
       cases=[Case(((2, 2, 2, 2), _IDX, (2, 3, 2)), attrs={"axis": -2}, wrt=(0,)),
              Case(((4,), np.array([1, 1, -3, 0]), (3,)), attrs={"axis": -1}, wrt=(0,))],
       doc="The adjoint of take: g added into zeros of like's shape at the indices (repeats "
           "accumulate; g may carry leading batch dimensions).")


# -- take_along_axis -------------------------------------------------------------------------------
def _along_infer(x, idx, *, axis):
    _require_indices(idx)
    if not 0 < idx.ndim <= x.ndim:  # fewer: leading ones (how a batched cotangent is picked)
        raise ShapeError(f"indices must have as many dimensions as x ({x.ndim}), not "
                         f"{idx.ndim}")
    axis = _negative_axis(axis, idx.ndim)
    k = x.ndim + axis
    ids = (1,) * (x.ndim - idx.ndim) + idx.shape
    others = broadcast_shapes(x.shape[:k] + (1,) + x.shape[k + 1:],
                              ids[:k] + (1,) + ids[k + 1:])
    return others[:k] + (ids[k],) + others[k + 1:], x.dtype, {"axis": axis}


def _padded(idx, ndim):
    return idx.reshape((1,) * (ndim - idx.ndim) + idx.shape)


def _along(x, idx, *, axis):
    x = np.asarray(x)
    idx = _padded(_checked(idx, x.shape[axis], axis), x.ndim)
    k = x.ndim + axis
    xs, ids = list(x.shape), list(idx.shape)
    xs[k] = ids[k] = 1
    other = np.broadcast_shapes(tuple(xs), tuple(ids))
    x = np.broadcast_to(x, other[:k] + (x.shape[k],) + other[k + 1:])
    idx = np.broadcast_to(idx, other[:k] + (idx.shape[k],) + other[k + 1:])
    return np.take_along_axis(x, idx, axis=axis)


def _along_reference(x, idx, *, axis):
    k = x.ndim + axis
    shape = _along_infer(_Shape(x), _Shape(idx), axis=axis)[0]
    out = np.empty(shape, x.dtype)
    for index in np.ndindex(shape):
        src = tuple(0 if x.shape[d] == 1 and d != k else index[d] for d in range(x.ndim))
        at = tuple(0 if idx.shape[d] == 1 else index[d] for d in range(x.ndim))
        out[index] = x[src[:k] + (int(idx[at]),) + src[k + 1:]]
    return out


class _Shape:
    """Enough of a node for a shape rule (the references reuse the rules' shape logic)."""

    def __init__(self, a):
        self.shape, self.ndim, self.dtype = a.shape, a.ndim, a.dtype


def _along_grad_infer(g, idx, like, *, axis):
    _require_indices(idx)
    axis = _negative_axis(axis, like.ndim)
    shape = list(g.shape)
    shape[axis] = like.shape[axis]
    return tuple(shape), g.dtype, {"axis": axis}


def _along_grad(g, idx, like, *, axis):
    g = np.asarray(g)
    n = np.shape(like)[axis]
    idx = np.broadcast_to(_padded(_checked(idx, n, axis), g.ndim), g.shape)
    shape = list(g.shape)
    shape[axis] = n
    out = np.zeros(shape, g.dtype)
    grid = list(np.ix_(*[np.arange(s) for s in g.shape]))
    grid[axis] = idx
    np.add.at(out, tuple(grid), g)
    return out


def _along_grad_reference(g, idx, like, *, axis):
    shape = list(g.shape)
    shape[axis] = like.shape[axis]
    out = np.zeros(shape, g.dtype)
    idx = idx.reshape((1,) * (g.ndim - idx.ndim) + idx.shape)
    for index in np.ndindex(g.shape):
        at = tuple(0 if idx.shape[d] == 1 else index[d] for d in range(g.ndim))
        target = list(index)
        target[axis] = int(idx[at]) % like.shape[axis]
        out[tuple(target)] += g[index]
    return out


define("take_along_axis", infer=_along_infer, kernel=_along, attrs={"axis": integer()},
       bprop=lambda node, g, i: None if i else apply(
           "take_along_axis_grad", [g, node.inputs[1], node.inputs[0]], dict(node.attrs)),
       reference=_along_reference,
       cases=[Case(((3, 4), np.array([[0, 3], [1, 1], [-1, 2]])), attrs={"axis": 1}),
              Case(((3, 1), np.array([[0, 0, 2, 1]])), attrs={"axis": 0})],  # broadcasting
       doc="NumPy's take_along_axis: x picked at idx (same ndim; other sizes broadcast).")
define("take_along_axis_grad", infer=_along_grad_infer, kernel=_along_grad,
       attrs={"axis": integer()},
       bprop=lambda node, c, i: None if i else apply(
           "take_along_axis", [c, node.inputs[1]], dict(node.attrs)),
       reference=_along_grad_reference,
       cases=[Case(((2, 3, 2), np.array([[0, 3], [1, 1], [-1, 2]]), (3, 4)),
                   attrs={"axis": -1}, wrt=(0,))],
       doc="The adjoint of take_along_axis: g added at idx into zeros with like's size along "
           "axis (g may carry leading batch dimensions).")


# -- boolean masks ---------------------------------------------------------------------------------
def _mask_infer(x, mask, *, rest):
    if mask.dtype != np.bool_:
        raise DTypeError(f"a mask must be bool, not {mask.dtype}")
    k = x.ndim - rest - mask.ndim
    if mask.ndim == 0 or k < 0:
        raise ShapeError(f"a mask of shape {fmt(mask.shape)} does not fit {fmt(x.shape)}")
    if any(a is not None and b is not None and a != b
           for a, b in zip(x.shape[k:k + mask.ndim], mask.shape)):
        raise ShapeError(f"a mask of shape {fmt(mask.shape)} does not match the dimensions "
                         f"{fmt(x.shape[k:k + mask.ndim])} it selects from")
    return x.shape[:k] + (None,) + x.shape[k + mask.ndim:], x.dtype, {"rest": rest}


def _mask_check(x_dims, mask):
    if tuple(x_dims) != np.shape(mask):
        raise IndexError(f"a mask of shape {np.shape(mask)} does not match the dimensions "
                         f"{tuple(x_dims)} it selects from")


def _boolean_mask(x, mask, *, rest):
    x, mask = np.asarray(x), np.asarray(mask)
    k = x.ndim - rest - mask.ndim
    _mask_check(x.shape[k:k + mask.ndim], mask)
    flat = x.reshape(x.shape[:k] + (-1,) + x.shape[k + mask.ndim:])
    return flat[(Ellipsis, np.flatnonzero(mask)) + (slice(None),) * rest]


def _boolean_mask_reference(x, mask, *, rest):
    k = x.ndim - rest - mask.ndim
    picked = [x[(slice(None),) * k + index] for index in np.ndindex(mask.shape) if mask[index]]
    if not picked:
        return np.zeros(x.shape[:k] + (0,) + x.shape[k + mask.ndim:], x.dtype)
    return np.stack(picked, axis=k)


def _mask_grad_infer(g, mask, like, *, rest):
    _mask_infer(like, mask, rest=rest)
    batch = g.ndim - (like.ndim - mask.ndim + 1)
    if batch < 0:
        raise ShapeError(f"a cotangent of shape {fmt(g.shape)} does not fit the masked shape")
    return g.shape[:batch] + like.shape, g.dtype, {"rest": rest}


def _mask_grad(g, mask, like, *, rest):
    g, mask = np.asarray(g), np.asarray(mask)
    shape = np.shape(like)
    k = len(shape) - rest - mask.ndim
    _mask_check(shape[k:k + mask.ndim], mask)
    batch = g.shape[:g.ndim - (len(shape) - mask.ndim + 1)]
    out = np.zeros(batch + shape[:k] + (mask.size,) + shape[k + mask.ndim:], g.dtype)
    out[(Ellipsis, np.flatnonzero(mask)) + (slice(None),) * rest] = g
    return out.reshape(batch + shape)


def _mask_grad_reference(g, mask, like, *, rest):
    k = like.ndim - rest - mask.ndim
    batch = g.shape[:g.ndim - (like.ndim - mask.ndim + 1)]
    out = np.zeros(batch + like.shape, g.dtype)
    b = len(batch)
    j = 0
    for index in np.ndindex(mask.shape):
        if mask[index]:
            out[(slice(None),) * (b + k) + index] = g[(slice(None),) * (b + k) + (j,)]
            j += 1
    return out


_MASK = np.array([[True, False, True], [False, False, True]])

define("boolean_mask", infer=_mask_infer, kernel=_boolean_mask, attrs={"rest": integer(0)},
       bprop=lambda node, g, i: None if i else apply(
           "boolean_mask_grad", [g, node.inputs[1], node.inputs[0]], dict(node.attrs)),
       reference=_boolean_mask_reference,
       cases=[Case(((2, 3), _MASK), attrs={"rest": 0}, order=3),
              Case(((2, 3, 2), _MASK), attrs={"rest": 1}),
              Case(((2, 4), np.array([False, True, True, False])), attrs={"rest": 0}),
              Case(((3,), np.zeros(3, bool)), attrs={"rest": 0})],  # selects nothing
       doc="x[mask]: the entries where a bool mask (over rest-from-the-end dimensions) is "
           "True, flattened into one dimension of run-time size.")
def _mask_grad_bprop(node, c, i):
    if i:
        return None
    g = node.inputs[0]
    picked = apply("boolean_mask", [c, node.inputs[1]], dict(node.attrs))
    if None in g.shape or None not in picked.shape[c.ndim - node.ndim:]:
        return picked
    # the selected count is g's known size: say so, so that the gradient has g's shape
    return apply("reshape_like", [picked, g], {"lead": c.ndim - node.ndim})


define("boolean_mask_grad", infer=_mask_grad_infer, kernel=_mask_grad,
       attrs={"rest": integer(0)}, bprop=_mask_grad_bprop,
       reference=_mask_grad_reference,
       cases=[Case(((2, 3), _MASK, (2, 3)), attrs={"rest": 0}, wrt=(0,)),
              Case(((2, 3, 2), _MASK, (2, 3, 2)), attrs={"rest": 1}, wrt=(0,))],
       doc="The adjoint of boolean_mask: g written where the mask is True, zeros elsewhere.")


# -- dynamic_slice ---------------------------------------------------------------------------------
def _dyn_infer(x, starts, *, sizes):
    _require_indices(starts, "starts")
    k = len(sizes)
    if starts.ndim != 1 or starts.shape[0] not in (k, None):
        raise ShapeError(f"starts must be a 1-D int node of length {k}, not {fmt(starts.shape)}")
    if k > x.ndim:
        raise ShapeError(f"{k} slice sizes for {x.ndim} dimensions")
    for n, s in zip(x.shape[x.ndim - k:], sizes):
        if n is not None and s > n:
            raise ShapeError(f"slice sizes {sizes} exceed the shape {fmt(x.shape)}")
    return x.shape[:x.ndim - k] + tuple(sizes), x.dtype, {"sizes": tuple(sizes)}


def _clamped(starts, shape, sizes):
    starts = np.asarray(starts)
    if starts.shape != (len(sizes),):
        raise IndexError(f"starts must have {len(sizes)} entries, not shape {starts.shape}")
    out = []
    for start, n, s in zip(starts.tolist(), shape, sizes):
        if s > n:
            raise IndexError(f"a slice of size {s} does not fit a dimension of size {n}")
        out.append(slice(min(max(int(start), 0), n - s), min(max(int(start), 0), n - s) + s))
    return (Ellipsis,) + tuple(out)


def _dynamic_slice(x, starts, *, sizes):
    x = np.asarray(x)
    return x[_clamped(starts, x.shape[x.ndim - len(sizes):], sizes)]


def _dyn_reference(x, starts, *, sizes):
    k = x.ndim - len(sizes)
    out = x
    for d, (start, s) in enumerate(zip(starts, sizes)):
        n = x.shape[k + d]
        begin = int(np.clip(start, 0, n - s))
        out = np.take(out, list(range(begin, begin + s)), axis=k + d)
    return out


def _dyn_grad_infer(g, starts, like, *, sizes):
    _dyn_infer(like, starts, sizes=sizes)
    batch = g.ndim - like.ndim
    if batch < 0:
        raise ShapeError(f"a cotangent of shape {fmt(g.shape)} does not fit")
    return g.shape[:batch] + like.shape, g.dtype, {"sizes": tuple(sizes)}


def _dyn_grad(g, starts, like, *, sizes):
    g = np.asarray(g)
    shape = np.shape(like)
    out = np.zeros(g.shape[:g.ndim - len(shape)] + shape, g.dtype)
    out[_clamped(starts, shape[len(shape) - len(sizes):], sizes)] = g
    return out


def _dyn_grad_reference(g, starts, like, *, sizes):
    out = np.zeros(g.shape[:g.ndim - like.ndim] + like.shape, g.dtype)
    k = like.ndim - len(sizes)
    inner = tuple(int(np.clip(st, 0, like.shape[k + d] - s))
                  for d, (st, s) in enumerate(zip(starts, sizes)))
    for index in np.ndindex(*sizes):
        target = tuple(b + i for b, i in zip(inner, index))
        out[(Ellipsis,) + target] = g[(Ellipsis,) + index]
    return out


define("dynamic_slice", infer=_dyn_infer, kernel=_dynamic_slice, attrs={"sizes": ints(0)},
       bprop=lambda node, g, i: None if i else apply(
           "dynamic_slice_grad", [g, node.inputs[1], node.inputs[0]], dict(node.attrs)),
       reference=_dyn_reference,
       cases=[Case(((4, 5), np.array([1, 3])), attrs={"sizes": (2, 2)}, order=3),
              Case(((3, 4), np.array([-2, 9])), attrs={"sizes": (2, 3)}),  # clamped
              Case(((2, 4), np.array([1])), attrs={"sizes": (2,)})],  # trailing dims
       doc="The block of static sizes at run-time starts over the trailing dimensions; starts "
           "are clamped so the block fits (as in JAX).")
define("dynamic_slice_grad", infer=_dyn_grad_infer, kernel=_dyn_grad, attrs={"sizes": ints(0)},
       bprop=lambda node, c, i: None if i else apply(
           "dynamic_slice", [c, node.inputs[1]], dict(node.attrs)),
       reference=_dyn_grad_reference,
       cases=[Case(((3, 2, 2), np.array([1, 3]), (4, 5)), attrs={"sizes": (2, 2)}, wrt=(0,))],
       doc="The adjoint of dynamic_slice: g placed at the clamped starts in zeros of like's "
           "shape.")


# -- builders --------------------------------------------------------------------------------------
def _index_node(x, idx):
    """``idx`` as an integer node of x's graph (arrays and lists become constants)."""
    graph = graph_of([x, idx])
    if graph is None:
        raise GraphcError("needs a graphc node")
    if not isinstance(idx, Node):
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iub":
            raise DTypeError(f"indices must be integers, not {idx.dtype}")
    return as_node(graph, idx)


def take(x: Operand, indices: Operand, axis: Axis = None, name: Optional[str] = None) -> Node:
    """NumPy's ``take``: ``x``'s entries at integer ``indices`` (a node or array of any shape)
    along ``axis`` (``None``: of the flattened ``x``). Out-of-range indices raise
    :class:`graphc.IndexOutOfRangeError` at run time; negative ones count from the end. The
    gradient scatters back (repeats add up)."""
    if axis is None:
        from .shape import reshape
        x, axis = reshape(x, (-1,)), 0
    return apply("take", [x, _index_node(x, indices)], {"axis": axis}, name=name)


def take_grad(g, indices, like, axis, name=None):
    """Zeros of ``like``'s shape with ``g`` added at ``indices`` along ``axis`` (take's
    adjoint)."""
    return apply("take_grad", [g, indices, like], {"axis": axis}, name=name)


def take_along_axis(x: Operand, indices: Operand, axis: Axis, name: Optional[str] = None) -> Node:
    """NumPy's ``take_along_axis``: ``x`` picked at ``indices`` (same number of dimensions,
    the others broadcast) along ``axis``, e.g. with the result of ``argsort``."""
    return apply("take_along_axis", [x, _index_node(x, indices)], {"axis": axis}, name=name)


def boolean_mask(x: Operand, mask: Operand, name: Optional[str] = None) -> Node:
    """``x[mask]``: the entries where the bool ``mask`` (over ``x``'s leading dimensions) is
    True, in one dimension whose size is known only at run time. The gradient scatters back."""
    mask = _index_node(x, mask)
    return apply("boolean_mask", [x, mask], {"rest": x.ndim - mask.ndim}, name=name)


def dynamic_slice(x: Operand, starts: Any, sizes: Any, name: Optional[str] = None) -> Node:
    """The block of ``x`` of static ``sizes`` (one per dimension) at ``starts`` known at run
    time (a 1-D int node, or a list of ints and scalar int nodes). Like JAX, each start is
    clamped to ``[0, n - size]`` so the block always fits; no error for out-of-range starts."""
    try:
        sizes = tuple(int(s) for s in sizes)
    except (TypeError, ValueError) as exc:  # (a node among the sizes says so itself)
        raise ShapeError(f"dynamic_slice needs static sizes, a sequence of ints (one per "
                         f"dimension of {fmt(np.shape(x))}), not {sizes!r:.40}; built at "
                         f"{user_site()}") from exc
    if isinstance(starts, (list, tuple)):
        if any(isinstance(s, Node) for s in starts):
            from .shape import stack
            starts = stack([s if isinstance(s, Node) else np.int64(s) for s in starts])
        else:
            starts = np.asarray(starts, np.int64)
    if len(sizes) != x.ndim:
        raise ShapeError(f"dynamic_slice needs one size per dimension of {fmt(x.shape)}, "
                         f"got {sizes}")
    return apply("dynamic_slice", [x, _index_node(x, starts)], {"sizes": sizes}, name=name)


# -- x[node] and x.at[...] -------------------------------------------------------------------------
def node_index(x, index, name=None):
    """``x[index]`` where the index holds a node (or a static bool mask): routed to ``take``
    (one integer node among slices, integers, ``None`` and ``...``, with NumPy's placement of
    the result's dimensions) or ``boolean_mask`` (a bool mask);
    None when the index is static (plain getitem handles it)."""
    entries = index if isinstance(index, tuple) else (index,)
    nodes = [k for k, e in enumerate(entries) if isinstance(e, Node)]
    bool_arrays = [k for k, e in enumerate(entries) if not isinstance(e, Node) and
                   isinstance(e, (np.ndarray, list)) and np.asarray(e).dtype == np.bool_]
    if not nodes and not bool_arrays:
        return None
    if len(nodes) + len(bool_arrays) > 1:
        raise DTypeError("only one node or mask per index is supported; index in steps, or "
                         "use gc.take_along_axis")
    k = (nodes or bool_arrays)[0]
    idx = entries[k]
    others = entries[:k] + entries[k + 1:]
    if any(not (e is None or e is Ellipsis or isinstance(e, slice) or _is_int(e))
           for e in others):
        raise DTypeError("a node index combines only with slices, integers, None and '...'; "
                         "index in steps for more")
    is_mask = idx.dtype == np.bool_ if isinstance(idx, Node) else True
    if is_mask:
        if k != 0 or any(e is not Ellipsis for e in others):
            raise DTypeError("a mask index stands alone: write x[mask]")
        return boolean_mask(x, idx, name=name)
    from .indexing import getitem
    from .shape import transpose
    # the static part first (integers remove their dimensions), then take along the node's
    static = entries[:k] + (slice(None),) + entries[k + 1:]
    consumed = sum(isinstance(e, slice) or _is_int(e) for e in static)
    axis = 0
    for e in entries[:k]:
        axis += (x.ndim - consumed) if e is Ellipsis else 0 if _is_int(e) else 1
    if any(e is not Ellipsis and (_is_int(e) or e != slice(None)) for e in static):
        x = getitem(x, static)
    out = take(x, idx, axis=axis, name=None if _moves_to_front(entries, k) else name)
    if not _moves_to_front(entries, k) or axis == 0:
        return out
    # NumPy: integers and the array apart from each other put the array's dimensions first
    n, m = out.ndim, idx.ndim
    order = tuple(range(axis, axis + m)) + tuple(d for d in range(n) if not axis <= d < axis + m)
    return transpose(out, order, name=name)


def _is_int(e) -> bool:
    return isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_))


def _moves_to_front(entries, k) -> bool:
    """NumPy's rule for advanced indices (the integers and the array) that are not adjacent."""
    places = [j for j, e in enumerate(entries) if j == k or _is_int(e)]
    return places != list(range(places[0], places[-1] + 1))
