"""Order statistics along one axis: ``sort``, ``argsort``, ``top_k``, ``median`` and
``quantile`` (NumPy's default linear interpolation).

Their gradients go through the selected elements: each rule gathers or scatters the cotangent
with the internal pair ``pick_along`` (``numpy.take_along_axis`` with an integer node of
positions) and its adjoint ``pick_along_adjoint`` (scatter-add into zeros), each the other's
rule, so every order of derivative works. The positions (``argsort``, ``top_k_indices``,
``quantile_index``) and ``quantile``'s interpolation weights are integer or constant-like nodes
without gradient. Ties are broken by position (stable sorts), so a tie's gradient goes to one
element. Axes are stored negative: rules work for cotangents with leading batch dimensions.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Axis, Node, Operand, apply, user_site
from ..shapes import float_dtype, fmt, normalize_axis, reduced_shape, same_dims
from .attrs import flag, integer, real
from .elementwise import mul
from .reduce import sum as reduce_sum
from .nn import _require_real
from .registry import Case, define
from .shape import expand_dims, reshape, stack, transpose


def _axis(x, axis) -> int:
    if x.ndim == 0:
        raise ShapeError("needs at least one dimension (use axis=None to flatten)")
    if axis is None or isinstance(axis, tuple):
        raise ShapeError(f"takes one integer axis, not {axis!r}")
    (a,) = normalize_axis(axis, x.ndim)
    return a - x.ndim


# -- pick_along / pick_along_adjoint: gather and scatter-add along an axis --------------------------
def _check_positions(index, trailing, axis):
    if index.dtype.kind not in "iu":
        raise DTypeError(f"positions must be integers, not {index.dtype}")
    if index.ndim != len(trailing) or not -index.ndim <= axis < 0:
        raise ShapeError(f"positions of shape {fmt(index.shape)} do not address axis {axis} of "
                         f"{fmt(trailing)}")
    for k, (a, b) in enumerate(zip(index.shape, trailing)):
        if k != index.ndim + axis and not same_dims(a, b):
            raise ShapeError(f"positions of shape {fmt(index.shape)} do not fit {fmt(trailing)} "
                             f"outside axis {axis}")


def _pick_along_infer(x, index, *, axis):
    lead = x.ndim - index.ndim
    if lead < 0:
        raise ShapeError(f"positions of shape {fmt(index.shape)} have more dimensions than "
                         f"{fmt(x.shape)}")
    _check_positions(index, x.shape[lead:], axis)
    return x.shape[:lead] + index.shape, x.dtype


def _lifted(index, ndim):
    index = np.asarray(index)
    return index.reshape((1,) * (ndim - index.ndim) + index.shape)


def _pick_along_kernel(x, index, *, axis):
    x = np.asarray(x)
    return np.take_along_axis(x, _lifted(index, x.ndim), axis=axis)


def _pick_along_adjoint_infer(g, index, like, *, axis):
    lead = g.ndim - like.ndim
    if lead < 0 or like.ndim < index.ndim:
        raise ShapeError(f"cannot scatter {fmt(g.shape)} by positions {fmt(index.shape)} into "
                         f"{fmt(like.shape)}")
    _check_positions(index, like.shape[like.ndim - index.ndim:], axis)
    _check_positions(index, g.shape[g.ndim - index.ndim:], axis)
    return g.shape[:lead] + like.shape, g.dtype


def scatter_along(g, index, size, axis):
    """Zeros with ``size`` along the negative ``axis`` (else ``g``'s shape), ``g`` added at
    ``index`` (repeated positions accumulate)."""
    g = np.asarray(g)
    index = np.broadcast_to(_lifted(index, g.ndim), g.shape)
    shape = list(g.shape)
    shape[axis] = size
    grid = list(np.indices(g.shape, sparse=True))
    grid[axis] = index
    if g.dtype.kind == "f" and g.size:  # bincount adds 5-10x faster than np.add.at
        flat = np.ravel_multi_index(tuple(np.broadcast_arrays(*grid)), shape)
        total = np.bincount(flat.ravel(), weights=g.ravel(), minlength=int(np.prod(shape)))
        return total.reshape(shape).astype(g.dtype, copy=False)
    out = np.zeros(shape, g.dtype)
    np.add.at(out, tuple(grid), g)
    return out


def _pick_along_adjoint_kernel(g, index, like, *, axis):
    return scatter_along(g, index, np.shape(like)[axis], axis)


def _pick_along_reference(x, index, *, axis):
    index = np.broadcast_to(_lifted(index, x.ndim), x.shape[:x.ndim - index.ndim] + index.shape)
    out = np.empty(index.shape, x.dtype)
    for at in np.ndindex(index.shape):
        source = list(at)
        source[axis] = index[at]
        out[at] = x[tuple(source)]
    return out


def _pick_along_adjoint_reference(g, index, like, *, axis):
    out = np.zeros(g.shape[:g.ndim - like.ndim] + like.shape, g.dtype)
    index = np.broadcast_to(_lifted(index, g.ndim), g.shape)
    for at in np.ndindex(g.shape):
        target = list(at)
        target[axis] = index[at]
        out[tuple(target)] += g[at]
    return out


_POSITIONS = np.array([[3, 0, 0], [1, 2, 3]])  # a repeated position

define("pick_along", infer=_pick_along_infer, attrs={"axis": integer(None, -1)},
       kernel=_pick_along_kernel, curvature="linear",
       jvp=lambda node, ts: None if ts[0] is None else pick_along(ts[0], node.inputs[1],
                                                                  node.attrs["axis"]),
       bprop=lambda node, g, i: None if i else pick_along_adjoint(
           g, node.inputs[1], node.inputs[0], node.attrs["axis"]),
       reference=_pick_along_reference,
       cases=[Case(((2, 4), _POSITIONS), attrs={"axis": -1}, order=3),
              Case(((4, 3), _POSITIONS), attrs={"axis": -2}),
              Case(((2, 2, 4), _POSITIONS), attrs={"axis": -1})],  # x has a leading batch
       doc="numpy.take_along_axis on the trailing dimensions (positions as an integer node).")
define("pick_along_adjoint", infer=_pick_along_adjoint_infer, attrs={"axis": integer(None, -1)},
       kernel=_pick_along_adjoint_kernel, curvature="linear",
       jvp=lambda node, ts: None if ts[0] is None else pick_along_adjoint(
           ts[0], node.inputs[1], node.inputs[2], node.attrs["axis"]),
       bprop=lambda node, g, i: None if i else pick_along(g, node.inputs[1], node.attrs["axis"]),
       reference=_pick_along_adjoint_reference,
       cases=[Case(((2, 3), _POSITIONS, (2, 4)), attrs={"axis": -1}, wrt=(0,)),
              Case(((2, 2, 3), _POSITIONS, (4, 3)), attrs={"axis": -2}, wrt=(0,)),
              Case(((2, 2, 3), _POSITIONS, (2, 2, 4)), attrs={"axis": -1}, wrt=(0,))],
       doc="The adjoint of pick_along: g added at the positions into zeros shaped like `like`.")


def pick_along(x, index, axis: int, name=None):
    """``numpy.take_along_axis(x, index, axis)`` on the trailing dimensions (``axis``
    negative; ``x`` may have extra leading dimensions)."""
    return apply("pick_along", [x, index], {"axis": axis}, name=name)


def pick_along_adjoint(g, index, like, axis: int, name=None):
    """Zeros of ``like``'s shape (after ``g``'s leading dimensions) with ``g`` added at
    ``index`` along the negative ``axis``: the adjoint of :func:`pick_along`."""
    return apply("pick_along_adjoint", [g, index, like], {"axis": axis}, name=name)


# -- sort / argsort / top_k -------------------------------------------------------------------------
def _sort_infer(x, *, axis):
    return x.shape, x.dtype, {"axis": _axis(x, axis)}


def _argsort_infer(x, *, axis):
    return x.shape, np.dtype(np.intp), {"axis": _axis(x, axis)}


def _stable_order(x, axis):
    """Positions in ascending order, ties by position (Python's sort is stable)."""
    x = np.moveaxis(x, axis, -1)
    out = np.empty(x.shape, np.intp)
    for at in np.ndindex(x.shape[:-1]):
        row = x[at]
        out[at] = sorted(range(len(row)), key=row.__getitem__)
    return np.moveaxis(out, -1, axis)


_SORT_CASES = [Case(((3, 4),), attrs={"axis": -1}, order=3),
               Case(((4, 3),), attrs={"axis": 0}),
               Case((np.array([[2.0, -1.0, 2.0, 0.5], [1.0, 1.0, 1.0, -3.0]]),), attrs={"axis": 1},
                    wrt=()),  # ties: sort has no derivative there
               Case((np.array([3, 1, 2, 1]),), attrs={"axis": 0})]

define("sort", infer=_sort_infer, attrs={"axis": integer()},
       kernel=lambda x, *, axis: np.sort(x, axis=axis, kind="stable"),
       bprop=lambda node, g, i: pick_along_adjoint(
           g, argsort(node.inputs[0], node.attrs["axis"]), node.inputs[0], node.attrs["axis"]),
       reference=lambda x, *, axis: np.take_along_axis(x, _stable_order(x, axis), axis),
       structure="group", curvature="linear",
       jvp=lambda node, ts: pick_along(ts[0], argsort(node.inputs[0], node.attrs["axis"]),
                                       node.attrs["axis"]),
       cases=_SORT_CASES, doc="Sorted along `axis`; the gradient goes back to where each "
                              "element came from.")
define("argsort", infer=_argsort_infer, attrs={"axis": integer()},
       kernel=lambda x, *, axis: np.argsort(x, axis=axis, kind="stable"), bprop=None,
       reference=lambda x, *, axis: _stable_order(x, axis), cases=_SORT_CASES,
       doc="The positions that sort `axis` (stable: ties keep their order).")


def _top_k_infer(x, *, k):
    if x.ndim == 0:
        raise ShapeError("top_k needs at least one dimension")
    if x.shape[-1] is not None and k > x.shape[-1]:
        raise ShapeError(f"k = {k} is larger than the last size {x.shape[-1]}")
    return x.shape[:-1] + (k,), np.dtype(np.intp)


def _top_k_kernel(x, *, k):
    x = np.asarray(x)
    n = x.shape[-1]
    if k > n:
        raise ValueError(f"k = {k} is larger than the last size {n}")
    # descending, ties by position: a stable ascending sort of the reversed row, reversed
    ascending = np.argsort(x[..., ::-1], axis=-1, kind="stable")
    return (n - 1 - ascending[..., ::-1])[..., :k]


def _top_k_reference(x, *, k):
    out = np.empty(x.shape[:-1] + (k,), np.intp)
    for at in np.ndindex(x.shape[:-1]):
        row = x[at]
        out[at] = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
    return out


define("top_k_indices", infer=_top_k_infer, attrs={"k": integer(0)}, kernel=_top_k_kernel,
       bprop=None, reference=_top_k_reference,
       cases=[Case(((3, 5),), attrs={"k": 2}),
              Case((np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]]),), attrs={"k": 3}),
              Case((np.array([4, 9, 1]),), attrs={"k": 0})],
       doc="Positions of the k largest elements along the last axis, largest first (ties: "
           "lower position first).")


# -- quantile / median --------------------------------------------------------------------------------
def _quantile_infer(x, *, q, axis, keepdims):
    _require_real(x, allow_bool=False)
    axis = _axis(x, axis)
    if x.shape[axis] == 0:
        raise ShapeError("cannot take a quantile over an empty dimension")
    shape = reduced_shape(x.shape, (x.ndim + axis,), keepdims)
    return shape, float_dtype(x.dtype), {"q": q, "axis": axis, "keepdims": bool(keepdims)}


def _quantile_kernel(x, *, q, axis, keepdims):
    x = np.asarray(x)
    if x.shape[axis] == 0:  # (a size known only at run time; NumPy's IndexError says less)
        raise ValueError("cannot take a quantile over an empty dimension")
    return np.asarray(np.quantile(x, q, axis=axis, keepdims=keepdims)).astype(
        float_dtype(x.dtype), copy=False)


def _interpolation(n, q):
    """The two order statistics ``lo``, ``hi`` and the weight of ``hi`` (NumPy's linear
    method: the virtual position ``q (n - 1)``)."""
    position = q * (n - 1)
    lo = int(np.floor(position))
    return lo, min(lo + 1, n - 1), position - lo


def _quantile_bprop(node, g, i):
    x = node.inputs[0]
    q, axis = node.attrs["q"], node.attrs["axis"]
    if not node.attrs["keepdims"]:
        g = expand_dims(g, axis)
    weights = quantile_weights(x, q, axis)
    return pick_along_adjoint(mul(g, weights), quantile_index(x, q, axis), x, axis)


def _quantile_jvp(node, tangents):
    x = node.inputs[0]
    q, axis = node.attrs["q"], node.attrs["axis"]
    picked = pick_along(tangents[0], quantile_index(x, q, axis), axis)
    return reduce_sum(mul(picked, quantile_weights(x, q, axis)), axis,
                      keepdims=node.attrs["keepdims"])


def _quantile_reference(x, *, q, axis, keepdims):
    lo, hi, w = _interpolation(x.shape[axis], q)
    s = np.take_along_axis(x, _stable_order(x, axis), axis)
    out = (1 - w) * np.take(s, [lo], axis) + w * np.take(s, [hi], axis)
    return out if keepdims else np.squeeze(out, axis)


define("quantile", infer=_quantile_infer,
       attrs={"q": real(0.0, 1.0), "axis": integer(), "keepdims": flag},
       kernel=_quantile_kernel, bprop=_quantile_bprop, reference=_quantile_reference,
       structure="reduce", curvature="linear", jvp=_quantile_jvp,
       cases=[Case(((3, 5),), attrs={"q": 0.3, "axis": -1, "keepdims": False}, order=3),
              Case(((4, 3),), attrs={"q": 0.5, "axis": 0, "keepdims": True}),
              Case(((2, 4),), attrs={"q": 1.0, "axis": 1, "keepdims": False}),
              Case(((2, 4),), attrs={"q": 0.0, "axis": 1, "keepdims": False}),
              Case((np.array([[1, 7, 3, 5]]),), attrs={"q": 0.25, "axis": 1, "keepdims": False})],
       doc="The q-quantile along `axis` by linear interpolation between order statistics "
           "(NumPy's default); the gradient goes to those two elements.")


def _positions_infer(x, *, q, axis):
    axis = _axis(x, axis)
    shape = list(x.shape)
    shape[axis] = 2
    return tuple(shape), np.dtype(np.intp), {"q": q, "axis": axis}


def _quantile_index_kernel(x, *, q, axis):
    x = np.asarray(x)
    lo, hi, _ = _interpolation(x.shape[axis], q)
    order = np.argsort(x, axis=axis, kind="stable")
    return np.take(order, [lo, hi], axis=axis)


def _weights_infer(x, *, q, axis):
    axis = _axis(x, axis)
    return (2,) + (1,) * (-axis - 1), float_dtype(x.dtype), {"q": q, "axis": axis}


def _quantile_weights_kernel(x, *, q, axis):
    _, _, w = _interpolation(np.shape(x)[axis], q)
    return np.array([1 - w, w], float_dtype(np.result_type(x))).reshape((2,) + (1,) * (-axis - 1))


_POSITION_ATTRS = {"q": real(0.0, 1.0), "axis": integer()}

define("quantile_index", infer=_positions_infer, attrs=_POSITION_ATTRS,
       kernel=_quantile_index_kernel, bprop=None,
       reference=lambda x, *, q, axis: np.take(_stable_order(x, axis),
                                               list(_interpolation(x.shape[axis], q)[:2]), axis),
       cases=[Case(((3, 5),), attrs={"q": 0.3, "axis": -1}),
              Case(((4, 3),), attrs={"q": 1.0, "axis": 0})],
       doc="Where the two order statistics of a quantile are along `axis`.")
define("quantile_weights", infer=_weights_infer, attrs=_POSITION_ATTRS,
       kernel=_quantile_weights_kernel, bprop=None,
       reference=lambda x, *, q, axis: np.array(
           [1 - (q * (x.shape[axis] - 1)) % 1, (q * (x.shape[axis] - 1)) % 1]).reshape(
               (2,) + (1,) * (-axis - 1)),
       cases=[Case(((3, 5),), attrs={"q": 0.3, "axis": -1}),
              Case(((4, 3),), attrs={"q": 0.6, "axis": 0})],
       doc="The interpolation weights of quantile_index's two elements (from the run-time size).")


# -- builders -------------------------------------------------------------------------------------
def _flat(x, axis):
    return (reshape(x, (-1,)), 0) if axis is None else (x, axis)


def sort(x: Operand, axis: Axis = -1, name: Optional[str] = None) -> Node:
    """``x`` sorted along ``axis`` (flattened when None), like ``numpy.sort``; the gradient
    goes back to each element's place (ties: by position)."""
    x, axis = _flat(x, axis)
    return apply("sort", [x], {"axis": axis}, name=name)


def argsort(x: Operand, axis: Axis = -1, name: Optional[str] = None) -> Node:
    """The positions that sort ``x`` along ``axis`` (stable), like ``numpy.argsort``."""
    x, axis = _flat(x, axis)
    return apply("argsort", [x], {"axis": axis}, name=name)


def top_k(x: Operand, k: int, name: Optional[str] = None) -> Node:
    """``(values, indices)`` of the ``k`` largest elements along the last axis, largest
    first, like ``jax.lax.top_k`` (ties: the lower index first). The values' gradient goes to
    the chosen elements."""
    indices = apply("top_k_indices", [x], {"k": k}, name=None if name is None else name + "_indices")
    return pick_along(x, indices, -1, name=name), indices


def quantile_index(x, q: float, axis: int, name=None):
    """The positions along negative ``axis`` of the two order statistics of the ``q``-quantile."""
    return apply("quantile_index", [x], {"q": q, "axis": axis}, name=name)


def quantile_weights(x, q: float, axis: int, name=None):
    """The linear-interpolation weights of the two order statistics of the ``q``-quantile."""
    return apply("quantile_weights", [x], {"q": q, "axis": axis}, name=name)


def _one_axis(x, axis, keepdims):
    """``x`` with the quantile axes merged into one (the last when several), and the shape a
    keepdims result must take, if any."""
    if axis is None:
        return reshape(x, (-1,)), 0, ((1,) * x.ndim if keepdims else None)
    if isinstance(axis, (int, np.integer)):
        return x, int(axis), None
    axes = normalize_axis(axis, x.ndim)
    kept = [d for d in range(x.ndim) if d not in axes]
    if None in [x.shape[d] for d in kept]:
        raise ShapeError(f"quantile over axes {tuple(axis)} needs the other sizes known, "
                         f"not {fmt(x.shape)}")
    merged = reshape(transpose(x, tuple(kept) + axes), tuple(x.shape[d] for d in kept) + (-1,))
    return merged, -1, (reduced_shape(x.shape, axes, True) if keepdims else None)


def quantile(x: Operand, q: Operand, axis: Axis = None, keepdims: bool = False,
             name: Optional[str] = None) -> Node:
    """The ``q``-quantile(s) of ``x`` over ``axis`` (None: all elements; an int or a tuple),
    linear interpolation like ``numpy.quantile``'s default. ``q`` is a number in [0, 1] or a
    sequence of them (stacked along a new first axis). The gradient goes to the one or two
    elements the result interpolates."""
    if isinstance(q, Node):
        raise DTypeError(f"quantile: q must be a number in [0, 1] or a sequence of them, "
                         f"known when the graph is built, not {q.op} node '{q.name}'; built "
                         f"at {user_site()}")
    if np.ndim(q) == 1:
        return stack([quantile(x, float(v), axis, keepdims) for v in np.asarray(q)], name=name)
    if np.ndim(q) > 1:
        raise ShapeError(f"quantile: q must be a number or a 1-D sequence, not shape "
                         f"{np.shape(q)}; built at {user_site()}")
    q = float(q)
    merged, one, shape = _one_axis(x, axis, keepdims)
    out = apply("quantile", [merged], {"q": q, "axis": one, "keepdims": shape is None and keepdims},
                name=None if shape is not None else name)
    return out if shape is None else reshape(out, shape, name=name)


def median(x: Operand, axis: Axis = None, keepdims: bool = False,
           name: Optional[str] = None) -> Node:
    """The median over ``axis`` (the mean of the two middle elements for even sizes), like
    ``numpy.median``; the gradient goes to those elements."""
    return quantile(x, 0.5, axis, keepdims, name=name)

