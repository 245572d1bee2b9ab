"""JAX-style functional scatter: ``index_add``, ``index_update`` and ``x.at[i].add/set/get``.

``index_add`` accumulates repeated indices (its gradients: ``g`` for x, ``take(g)`` for the
values). ``index_update`` with repeated indices is deterministic: the *last* occurrence wins
(its value is written, and only it receives gradient, through the ``index_winners`` mask; the
overwritten entries of x get none, through ``index_hit``). Indices are checked at run time as
for the gathers of :mod:`graphc.ops.gather`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Axis, Node, Operand, apply
from ..shapes import broadcast_shapes, fmt
from .attrs import integer
from .gather import (_IDX, _checked, _index_node, _negative_axis, _require_indices, _tail,
                     _take_infer, take)
from .registry import Case, define


# -- index_add / index_update -----------------------------------------------------------------------
def _scatter_infer(x, idx, v, *, axis):
    _require_indices(idx)
    shape, dtype, attrs = _take_infer(x, idx, axis=axis)
    try:
        out = broadcast_shapes(v.shape, shape)
    except ShapeError:
        out = None
    if out is None or len(out) != len(shape) or any(
            a is not None and b is not None and a != b for a, b in zip(out, shape)):
        raise ShapeError(f"values of shape {fmt(v.shape)} do not broadcast to the indexed "
                         f"shape {fmt(shape)}")
    if not np.can_cast(v.dtype, x.dtype, "same_kind"):
        raise DTypeError(f"values of dtype {v.dtype} cannot be written into {x.dtype}")
    return x.shape, x.dtype, attrs


def _index_add(x, idx, v, *, axis):
    out = np.array(x, copy=True)
    np.add.at(out, (Ellipsis, _checked(idx, out.shape[axis], out.ndim + axis)) + _tail(axis),
              np.asarray(v).astype(out.dtype, copy=False))
    return out


def _last_occurrence(flat: np.ndarray, n: int) -> np.ndarray:
    """Positions in ``flat`` that hold the last occurrence of their (normalised) index."""
    flat = flat % n if n else flat
    _, first_of_reversed = np.unique(flat[::-1], return_index=True)
    return np.sort(len(flat) - 1 - first_of_reversed)


def _index_update(x, idx, v, *, axis):
    out = np.array(x, copy=True)
    n = out.shape[axis]
    idx = _checked(idx, n, axis)
    k = out.ndim + axis
    shape = out.shape[:k] + idx.shape + out.shape[k + 1:]
    vals = np.broadcast_to(np.asarray(v).astype(out.dtype, copy=False), shape)
    vals = vals.reshape(out.shape[:k] + (-1,) + out.shape[k + 1:])
    flat = idx.reshape(-1)
    last = _last_occurrence(flat, n)
    out[(Ellipsis, flat[last]) + _tail(axis)] = np.take(vals, last, axis=axis)
    return out


def _index_add_reference(x, idx, v, *, axis):
    out = x.astype(x.dtype, copy=True)
    k = x.ndim + axis
    vals = np.broadcast_to(v, x.shape[:k] + idx.shape + x.shape[k + 1:])
    for index in np.ndindex(idx.shape):
        i = int(idx[index]) % x.shape[axis]
        out[(slice(None),) * k + (i,)] += vals[(slice(None),) * k + index]
    return out


def _index_update_reference(x, idx, v, *, axis):
    out = x.astype(x.dtype, copy=True)
    k = x.ndim + axis
    vals = np.broadcast_to(v, x.shape[:k] + idx.shape + x.shape[k + 1:])
    for index in np.ndindex(idx.shape):  # in order: a later write replaces an earlier one
        i = int(idx[index]) % x.shape[axis]
        out[(slice(None),) * k + (i,)] = vals[(slice(None),) * k + index]
    return out


def _index_update_bprop(node, g, i):
    x, idx, v = node.inputs
    axis = node.attrs["axis"]
    if i == 0:  # the overwritten entries of x get nothing
        return apply("where", [index_hit(idx, x, axis), 0.0, g])
    if i == 2:  # only the winning occurrence of each index gets its cotangent
        return apply("where", [index_winners(idx, x, axis), take(g, idx, axis), 0.0])
    return None


_SCATTER_CASES = [Case(((4, 3), np.array([3, 0, 3, -1]), (4, 3)), attrs={"axis": 0}),
                  Case(((2, 3), _IDX, (2, 2, 2)), attrs={"axis": -1}),
                  Case(((3, 2), np.array([2, 0]), (2,)), attrs={"axis": 0})]  # broadcast values

define("index_add", infer=_scatter_infer, kernel=_index_add, attrs={"axis": integer()},
       bprop=lambda node, g, i: g if i == 0 else None if i == 1 else take(
           g, node.inputs[1], node.attrs["axis"]),
       reference=_index_add_reference, cases=_SCATTER_CASES,
       doc="x with values added at indices along axis (repeated indices accumulate).")
define("index_update", infer=_scatter_infer, kernel=_index_update, attrs={"axis": integer()},
       bprop=_index_update_bprop, reference=_index_update_reference, cases=_SCATTER_CASES,
       doc="x with values written at indices along axis (on repeats the last one wins).")


def _hit_infer(idx, like, *, axis):
    _require_indices(idx)
    axis = _negative_axis(axis, like.ndim)
    return (like.shape[axis],) + (1,) * (-axis - 1), np.dtype(bool), {"axis": axis}


def _index_hit(idx, like, *, axis):
    n = np.shape(like)[axis]
    out = np.zeros(n, bool)
    out[_checked(idx, n, axis)] = True
    return out.reshape((n,) + (1,) * (-axis - 1))


def _winners_infer(idx, like, *, axis):
    _require_indices(idx)
    axis = _negative_axis(axis, like.ndim)
    return idx.shape + (1,) * (-axis - 1), np.dtype(bool), {"axis": axis}


def _index_winners(idx, like, *, axis):
    n = np.shape(like)[axis]
    idx = _checked(idx, n, axis)
    out = np.zeros(idx.size, bool)
    out[_last_occurrence(idx.reshape(-1), n)] = True
    return out.reshape(idx.shape + (1,) * (-axis - 1))


def _winners_reference(idx, like, *, axis):
    n = like.shape[axis]
    flat = [int(i) % n for i in idx.reshape(-1)]
    out = [all(flat[j] != flat[k] for k in range(j + 1, len(flat))) for j in range(len(flat))]
    return np.array(out, bool).reshape(idx.shape + (1,) * (-axis - 1))


define("index_hit", infer=_hit_infer, kernel=_index_hit, attrs={"axis": integer()},
       bprop=None,
       reference=lambda idx, like, *, axis: np.isin(
           np.arange(like.shape[axis]), idx % like.shape[axis]).reshape(
           (like.shape[axis],) + (1,) * (-axis - 1)),
       cases=[Case((np.array([3, 0, 3, -1]), (5, 2)), attrs={"axis": 0})],
       doc="True at the positions along axis that the indices name (shape (n, 1, ...)).")
define("index_winners", infer=_winners_infer, kernel=_index_winners, attrs={"axis": integer()},
       bprop=None, reference=_winners_reference,
       cases=[Case((np.array([3, 0, 3, -1, -2]), (4, 2)), attrs={"axis": 0})],
       doc="True where an index is the last occurrence of its position (index_update's "
           "winners).")



# -- builders --------------------------------------------------------------------------------------
def index_add(x: Operand, indices: Operand, values: Operand, axis: Axis = 0,
              name: Optional[str] = None) -> Node:
    """``x`` with ``values`` added at ``indices`` along ``axis`` (JAX's ``x.at[i].add(v)``);
    repeated indices accumulate. ``values`` broadcast to ``take(x, indices, axis)``'s shape."""
    return apply("index_add", [x, _index_node(x, indices), values], {"axis": axis}, name=name)


def index_update(x: Operand, indices: Operand, values: Operand, axis: Axis = 0,
                 name: Optional[str] = None) -> Node:
    """``x`` with ``values`` written at ``indices`` along ``axis`` (JAX's ``x.at[i].set(v)``).
    With repeated indices the last occurrence wins (deterministically)."""
    return apply("index_update", [x, _index_node(x, indices), values], {"axis": axis},
                 name=name)


def index_hit(indices, like, axis, name=None):
    """Bool ``(n, 1, ...)``: which positions along ``axis`` the indices name."""
    return apply("index_hit", [indices, like], {"axis": axis}, name=name)


def index_winners(indices, like, axis, name=None):
    """Bool ``indices.shape + (1, ...)``: the last occurrence of each position."""
    return apply("index_winners", [indices, like], {"axis": axis}, name=name)


# -- x.at[...] -------------------------------------------------------------------------------------
class At:
    """``x.at[indices]``: JAX's functional updates, ``.add(v)`` and ``.set(v)``. The index is
    integer indices (a node, array or list, along axis 0), or a tuple of full slices then
    the indices (along that axis)."""

    __slots__ = ("_x",)

    def __init__(self, x):
        self._x = x

    def __getitem__(self, index):
        return _AtIndex(self._x, index)


class _AtIndex:
    __slots__ = ("_x", "_indices", "_axis")

    def __init__(self, x, index):
        entries = index if isinstance(index, tuple) else (index,)
        if not entries or any(e != slice(None) for e in entries[:-1]) or \
                isinstance(entries[-1], slice):
            raise DTypeError("x.at[...] takes integer indices, optionally after full slices "
                             "(x.at[:, idx])")
        self._x, self._indices, self._axis = x, entries[-1], len(entries) - 1

    def add(self, values, name=None):
        return index_add(self._x, self._indices, values, self._axis, name=name)

    def set(self, values, name=None):
        return index_update(self._x, self._indices, values, self._axis, name=name)

    def get(self, name=None):
        return take(self._x, self._indices, self._axis, name=name)
