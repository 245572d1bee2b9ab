"""More ways to lay elements out, with NumPy's names: ``flip``, ``roll``, ``split``, ``pad``,
``tile``, ``repeat``, ``moveaxis``, ``swapaxes``, ``broadcast_arrays``, ``meshgrid``,
``tril`` and ``triu``.

Most are built from existing ops (``flip`` and ``split`` are slices, ``moveaxis`` and
``swapaxes`` transposes, ``broadcast_arrays`` and ``meshgrid`` broadcasts). ``pad``, ``tile``,
``repeat`` and ``roll`` move elements along one axis at a time by a *source map*: output
position ``p`` takes input element ``src[p]`` (or the fill value where ``src[p] = -1``), and
``src`` is NumPy's own function applied to ``arange(n)`` (``np.pad(arange(n), ...)``,
``np.tile``, ``np.repeat``, ``np.roll``), so the semantics are NumPy's by construction and
``n`` may be known only at run time. The internal op ``axis_map`` applies a map; its adjoint
``axis_map_adjoint`` adds each output element back into its source; each is the other's rule.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import functools

import numpy as np

from ..errors import GraphcError, ShapeError
from ..graph import Axis, Node, Operand, apply, user_site
from ..shapes import broadcast_shapes, fmt, normalize_axis, same_dims
from .attrs import choice, integer, ints, real
from .broadcast import broadcast_like, broadcast_to
from .indexing import getitem
from .registry import Case, define
from .shape import expand_dims, reshape, reshape_like, transpose
from .sorting import scatter_along

_KINDS = ("constant", "edge", "reflect", "symmetric", "wrap", "tile", "repeat", "roll")


@functools.lru_cache(maxsize=1024)
def source_map(kind: str, n: int, params: tuple) -> np.ndarray:
    """Output position -> input position along one axis of size ``n`` (-1: the fill value)."""
    positions = np.arange(n)
    if kind == "constant":
        src = np.pad(positions, params, constant_values=-1)
    elif kind in ("edge", "reflect", "symmetric", "wrap"):
        if n == 0 and any(params):
            raise ShapeError(f"cannot pad an empty dimension in mode {kind!r}")
        src = np.pad(positions, params, mode=kind)
    elif kind == "tile":
        src = np.tile(positions, params[0])
    elif kind == "repeat":
        if len(params) != 1 and len(params) != n:
            raise ShapeError(f"{len(params)} repeats do not fit a dimension of size {n}")
        src = np.repeat(positions, params[0] if len(params) == 1 else params)
    else:  # roll
        src = np.roll(positions, params[0])
    src = src.astype(np.intp)
    src.flags.writeable = False  # cached and shared
    return src


def _check_params(kind, params):
    wanted = 2 if kind in _KINDS[:5] else None if kind == "repeat" else 1
    if (wanted is not None and len(params) != wanted) or (kind == "repeat" and not params):
        raise ShapeError(f"mode {kind!r} takes {wanted or 'one or more'} parameters, not "
                         f"{params}")
    if kind in _KINDS[:7] and any(p < 0 for p in params):
        raise ShapeError(f"mode {kind!r} takes non-negative parameters, not {params}")


def _mapped_size(kind, n, params):
    if kind == "repeat" and len(params) > 1:
        if n is not None and n != len(params):
            raise ShapeError(f"{len(params)} repeats do not fit a dimension of size {n}")
        return int(sum(params))
    return None if n is None else len(source_map(kind, n, params))


def _axis_map_infer(x, *, axis, kind, params, fill):
    if not -x.ndim <= axis < 0:
        raise ShapeError(f"axis {axis} is out of range for {fmt(x.shape)}")
    _check_params(kind, params)
    shape = list(x.shape)
    shape[axis] = _mapped_size(kind, x.shape[axis], params)
    return tuple(shape), x.dtype


def _lifted_map(src, axis):
    return src.reshape((-1,) + (1,) * (-axis - 1))


def _axis_map_kernel(x, *, axis, kind, params, fill):
    x = np.asarray(x)
    src = source_map(kind, x.shape[axis], params)
    out = np.take(x, np.maximum(src, 0), axis=axis)
    if kind == "constant" and (src < 0).any():
        out = np.where(_lifted_map(src >= 0, axis), out, np.asarray(fill).astype(x.dtype))
    return out


def _axis_map_adjoint_infer(g, like, *, axis, kind, params):
    if not -like.ndim <= axis < 0 or g.ndim < like.ndim:
        raise ShapeError(f"axis {axis} is out of range for {fmt(like.shape)}")
    _check_params(kind, params)
    lead = g.ndim - like.ndim
    mapped = _mapped_size(kind, like.shape[axis], params)
    for k, (a, b) in enumerate(zip(g.shape[lead:], like.shape)):
        want = mapped if k == like.ndim + axis else b
        if not same_dims(a, want):
            raise ShapeError(f"a cotangent of shape {fmt(g.shape)} does not fit {fmt(like.shape)}"
                             f" mapped along axis {axis}")
    return g.shape[:lead] + like.shape, g.dtype


def _axis_map_adjoint_kernel(g, like, *, axis, kind, params):
    g = np.asarray(g)
    src = source_map(kind, np.shape(like)[axis], params)
    if (src < 0).any():  # the fill value's places send nothing back
        g = np.where(_lifted_map(src >= 0, axis), g, 0).astype(g.dtype)
    return scatter_along(g, _lifted_map(np.maximum(src, 0), axis), np.shape(like)[axis], axis)


_MAP_ATTRS = {"axis": integer(None, -1), "kind": choice(*_KINDS), "params": ints()}


def _axis_map_reference(x, *, axis, kind, params, fill):
    """NumPy's own function on the array (np.pad, np.tile, np.repeat, np.roll)."""
    a = x.ndim + axis
    if kind in _KINDS[:5]:
        width = [(0, 0)] * x.ndim
        width[a] = params
        extra = {"constant_values": fill} if kind == "constant" else {}
        return np.pad(x, width, mode=kind, **extra)
    if kind == "tile":
        reps = [1] * x.ndim
        reps[a] = params[0]
        return np.tile(x, reps)
    if kind == "repeat":
        return np.repeat(x, params[0] if len(params) == 1 else params, axis=a)
    return np.roll(x, params[0], axis=a)


def _axis_map_adjoint_reference(g, like, *, axis, kind, params):
    """Column by column: the sum of the cotangent over the outputs each input reaches."""
    n = like.shape[axis]
    probe = _axis_map_reference(np.arange(n, dtype=float).reshape((-1,) + (1,) * (-axis - 1)),
                                axis=axis, kind=kind, params=params, fill=-1.0)
    probe = probe.reshape(-1)
    gm = np.moveaxis(g, axis, -1)
    out = np.stack([gm[..., probe == j].sum(axis=-1) for j in range(n)], axis=-1) if n else \
        np.zeros(gm.shape[:-1] + (0,), g.dtype)
    return np.moveaxis(out, -1, axis)


define("axis_map", infer=_axis_map_infer, attrs={**_MAP_ATTRS, "fill": real()},
       kernel=_axis_map_kernel, curvature="linear",
       jvp=lambda node, ts: axis_map(ts[0], **{**node.attrs, "fill": 0.0}),
       bprop=lambda node, g, i: axis_map_adjoint(g, node.inputs[0], **{
           k: v for k, v in node.attrs.items() if k != "fill"}),
       reference=_axis_map_reference,
       cases=[Case(((3, 4),), attrs={"axis": -1, "kind": "constant", "params": (2, 1),
                                     "fill": 1.5}, order=3),
              Case(((3, 4),), attrs={"axis": -2, "kind": "edge", "params": (2, 3), "fill": 0.0}),
              Case(((3, 4),), attrs={"axis": -1, "kind": "reflect", "params": (3, 5),
                                     "fill": 0.0}),
              Case(((2, 3),), attrs={"axis": -1, "kind": "symmetric", "params": (2, 1),
                                     "fill": 0.0}),
              Case(((2, 3),), attrs={"axis": -1, "kind": "wrap", "params": (1, 4), "fill": 0.0}),
              Case(((2, 3),), attrs={"axis": -2, "kind": "tile", "params": (3,), "fill": 0.0}),
              Case(((2, 3),), attrs={"axis": -1, "kind": "repeat", "params": (2,), "fill": 0.0}),
              Case(((2, 3),), attrs={"axis": -1, "kind": "repeat", "params": (0, 3, 1),
                                     "fill": 0.0}),
              Case(((2, 5),), attrs={"axis": -1, "kind": "roll", "params": (-7,), "fill": 0.0}),
              Case((np.array([[1, 2], [3, 4]]),), attrs={"axis": -1, "kind": "constant",
                                                          "params": (1, 1), "fill": 9.0})],
       doc="Elements moved along one axis by a NumPy source map (pad, tile, repeat, roll).")
define("axis_map_adjoint", infer=_axis_map_adjoint_infer, attrs=_MAP_ATTRS,
       kernel=_axis_map_adjoint_kernel, curvature="linear",
       jvp=lambda node, ts: None if ts[0] is None else axis_map_adjoint(
           ts[0], node.inputs[1], **node.attrs),
       bprop=lambda node, g, i: None if i else axis_map(g, fill=0.0, **node.attrs),
       reference=_axis_map_adjoint_reference,
       cases=[Case(((3, 7), (3, 4)), attrs={"axis": -1, "kind": "constant", "params": (2, 1)},
                   wrt=(0,)),
              Case(((2, 8, 4), (3, 4)), attrs={"axis": -2, "kind": "edge", "params": (2, 3)},
                   wrt=(0,)),
              Case(((3, 12), (3, 4)), attrs={"axis": -1, "kind": "reflect", "params": (3, 5)},
                   wrt=(0,)),
              Case(((2, 4), (2, 3)), attrs={"axis": -1, "kind": "repeat", "params": (0, 3, 1)},
                   wrt=(0,)),
              Case(((2, 5), (2, 5)), attrs={"axis": -1, "kind": "roll", "params": (2,)},
                   wrt=(0,))],
       doc="The adjoint of axis_map: each element of g added back into its source.")


def axis_map(x, axis: int, kind: str, params, fill=0.0, name=None):
    """``x`` rearranged along the negative ``axis`` by the source map of ``kind`` (see the
    module docstring); ``fill`` fills the places of ``kind="constant"`` padding."""
    return apply("axis_map", [x], {"axis": axis, "kind": kind, "params": tuple(params),
                                   "fill": fill}, name=name)


def axis_map_adjoint(g, like, axis: int, kind: str, params, name=None):
    """The adjoint of :func:`axis_map`: shaped like ``like`` (after ``g``'s batch dimensions)."""
    return apply("axis_map_adjoint", [g, like], {"axis": axis, "kind": kind,
                                                 "params": tuple(params)}, name=name)


# -- tril / triu ------------------------------------------------------------------------------------
def _triangle_infer(x, *, k):
    if x.ndim < 2:
        raise ShapeError(f"tril/triu need at least 2 dimensions, not {fmt(x.shape)}")
    return x.shape, x.dtype


def _triangle_reference(keep):
    def reference(x, *, k):
        rows, cols = x.shape[-2:]
        mask = np.array([[keep(j - i, k) for j in range(cols)] for i in range(rows)])
        return np.where(mask, x, np.zeros((), x.dtype))
    return reference


_TRIANGLE_CASES = [Case(((4, 4),), attrs={"k": 0}, order=3), Case(((2, 3, 5),), attrs={"k": 1}),
                   Case(((4, 3),), attrs={"k": -2}), Case((np.arange(6).reshape(2, 3),),
                                                          attrs={"k": 0})]

define("tril", infer=_triangle_infer, attrs={"k": integer()},
       kernel=lambda x, *, k: np.tril(x, k), bprop=lambda node, g, i: tril(g, node.attrs["k"]),
       jvp=lambda node, ts: tril(ts[0], node.attrs["k"]),
       structure="elementwise", curvature="linear",
       reference=_triangle_reference(lambda d, k: d <= k), cases=_TRIANGLE_CASES,
       doc="The last two dimensions with the elements above diagonal k zeroed.")
define("triu", infer=_triangle_infer, attrs={"k": integer()},
       kernel=lambda x, *, k: np.triu(x, k), bprop=lambda node, g, i: triu(g, node.attrs["k"]),
       jvp=lambda node, ts: triu(ts[0], node.attrs["k"]),
       structure="elementwise", curvature="linear",
       reference=_triangle_reference(lambda d, k: d >= k), cases=_TRIANGLE_CASES,
       doc="The last two dimensions with the elements below diagonal k zeroed.")


def tril(x: Operand, k: int = 0, name: Optional[str] = None) -> Node:
    """The lower triangle of the last two dimensions (elements above diagonal ``k`` are 0),
    like ``numpy.tril``."""
    return apply("tril", [x], {"k": k}, name=name)


def triu(x: Operand, k: int = 0, name: Optional[str] = None) -> Node:
    """The upper triangle of the last two dimensions (elements below diagonal ``k`` are 0),
    like ``numpy.triu``."""
    return apply("triu", [x], {"k": k}, name=name)


# -- builders over axis_map -------------------------------------------------------------------------
def _fail(function: str, message: str, error=ShapeError):
    """A builder's own check failed: name the function and the user's line."""
    raise error(f"{function}: {message}; built at {user_site()}")


def _negative_axes(x, axis) -> tuple:
    return tuple(a - x.ndim for a in normalize_axis(axis, x.ndim))


def _chain(x, steps, name):
    """``axis_map`` applied for each ``(axis, kind, params, fill)``; the last gets ``name``."""
    steps = list(steps)
    if not steps:
        return x if name is None else getitem(x, (), name=name)
    for k, (axis, kind, params, fill) in enumerate(steps):
        x = axis_map(x, axis, kind, params, fill, name=name if k == len(steps) - 1 else None)
    return x


def pad(x: Operand, pad_width: Any, mode: str = "constant", constant_values: Operand = 0,
        name: Optional[str] = None) -> Node:
    """``x`` padded like ``numpy.pad``: ``pad_width`` an int, a ``(before, after)`` pair for
    every axis, or one pair per axis; ``mode`` ``"constant"`` (with a scalar
    ``constant_values``), ``"edge"``, ``"reflect"``, ``"symmetric"`` or ``"wrap"``."""
    if mode not in _KINDS[:5]:
        _fail("pad", f"mode {mode!r} is not one of {', '.join(map(repr, _KINDS[:5]))}",
              GraphcError)
    ndim = getattr(x, "ndim", np.ndim(x))
    width = np.asarray(pad_width)
    if width.dtype.kind not in "iu":
        _fail("pad", f"pad_width must hold integers, not {pad_width!r}")
    try:
        width = np.broadcast_to(width, (ndim, 2))
    except ValueError:
        _fail("pad", f"pad_width {pad_width!r} does not fit {ndim} dimensions")
    if (width < 0).any():
        _fail("pad", f"pad_width {pad_width!r} has negative widths")
    if np.ndim(constant_values) != 0:
        _fail("pad", "constant_values must be one number", GraphcError)
    steps = [(a - ndim, mode, (int(b), int(e)), float(constant_values))
             for a, (b, e) in enumerate(width) if b or e]
    return _chain(x, steps, name)


def tile(x: Operand, reps: Union[int, Sequence[int]], name: Optional[str] = None) -> Node:
    """``x`` repeated ``reps`` times along each axis, like ``numpy.tile`` (a longer ``reps``
    adds leading axes)."""
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    if any(r < 0 for r in reps):
        _fail("tile", f"reps {reps} must not be negative")
    if len(reps) > x.ndim:
        x = expand_dims(x, tuple(range(len(reps) - x.ndim)))
    reps = (1,) * (x.ndim - len(reps)) + reps
    return _chain(x, [(a - x.ndim, "tile", (r,), 0.0) for a, r in enumerate(reps) if r != 1],
                  name)


def repeat(x: Operand, repeats: Union[int, Sequence[int]], axis: Axis = None,
           name: Optional[str] = None) -> Node:
    """Each element repeated ``repeats`` times (an int, or one count per element) along
    ``axis`` (of the flattened ``x`` when None), like ``numpy.repeat``."""
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    params = (int(repeats),) if np.ndim(repeats) == 0 else tuple(int(r) for r in repeats)
    (a,) = _negative_axes(x, axis)
    if any(r < 0 for r in params):
        _fail("repeat", f"repeats {params} must not be negative")
    if len(params) > 1 and x.shape[a] is not None and len(params) != x.shape[a]:
        _fail("repeat", f"{len(params)} repeats do not fit axis {axis} of size {x.shape[a]}")
    return axis_map(x, a, "repeat", params, name=name)


def roll(x: Operand, shift: Union[int, Sequence[int]], axis: Axis = None,
         name: Optional[str] = None) -> Node:
    """Elements shifted by ``shift`` along ``axis`` (an int or a tuple, with one shift each),
    wrapping around, like ``numpy.roll``; with ``axis=None`` the flattened ``x`` is rolled
    and the shape restored."""
    if axis is None:
        flat = axis_map(reshape(x, (-1,)), -1, "roll", (int(shift),))
        return reshape_like(flat, x, name=name)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    shifts = np.broadcast_to(np.asarray(shift), (len(axes),))
    steps = [(_negative_axes(x, a)[0], "roll", (int(s),), 0.0) for a, s in zip(axes, shifts)]
    return _chain(x, steps, name)


# -- builders over slices, transposes and broadcasts ------------------------------------------------
def flip(x: Operand, axis: Axis = None, name: Optional[str] = None) -> Node:
    """``x`` with the order of elements reversed along ``axis`` (all axes by default), like
    ``numpy.flip`` (a reversed slice)."""
    axes = normalize_axis(axis, x.ndim)
    return getitem(x, tuple(slice(None, None, -1) if d in axes else slice(None)
                            for d in range(x.ndim)), name=name)


def split(x: Operand, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> list:
    """A list of parts of ``x`` along ``axis``, like ``numpy.split``: an int gives that many
    equal parts (the size must be known and divisible), a sequence gives the split points."""
    (a,) = normalize_axis(axis, x.ndim)
    n = x.shape[a]
    if np.ndim(indices_or_sections) == 0:
        sections = int(indices_or_sections)
        if n is None:
            _fail("split", f"{sections} equal parts need the size of axis {a}, which is "
                           f"unknown in {fmt(x.shape)}; give split points instead")
        if sections <= 0 or n % sections:
            _fail("split", f"{n} elements do not split into {sections} equal parts")
        points = [n // sections * k for k in range(1, sections)]
    else:
        points = [int(p) for p in indices_or_sections]
    bounds = [None] + points + [None]
    lead = (slice(None),) * a
    return [getitem(x, lead + (slice(start, stop),)) for start, stop in zip(bounds, bounds[1:])]


def moveaxis(x: Operand, source: Union[int, Sequence[int]], destination: Union[int, Sequence[int]],
             name: Optional[str] = None) -> Node:
    """``x`` with axes moved from ``source`` to ``destination`` (ints or tuples), like
    ``numpy.moveaxis``."""
    src = [a % x.ndim if -x.ndim <= a < x.ndim else _bad_axis(a, x)
           for a in np.atleast_1d(source).tolist()]
    dst = [a % x.ndim if -x.ndim <= a < x.ndim else _bad_axis(a, x)
           for a in np.atleast_1d(destination).tolist()]
    if len(src) != len(dst):
        _fail("moveaxis", "source and destination need the same number of axes")
    order = [d for d in range(x.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, tuple(order), name=name)


def _bad_axis(a, x):
    _fail("moveaxis", f"axis {a} is out of bounds for {fmt(x.shape)}")


def swapaxes(x: Operand, axis1: int, axis2: int, name: Optional[str] = None) -> Node:
    """``x`` with two axes exchanged, like ``numpy.swapaxes``."""
    order = list(range(x.ndim))
    a, b = (normalize_axis(v, x.ndim)[0] for v in (axis1, axis2))
    order[a], order[b] = order[b], order[a]
    return transpose(x, tuple(order), name=name)


def broadcast_arrays(*xs: Operand) -> list:
    """The inputs broadcast against each other, like ``numpy.broadcast_arrays`` (a list; sizes
    known only at run time are taken from the other inputs then)."""
    shape = broadcast_shapes(*(x.shape for x in xs))
    out = []
    for x in xs:
        if x.shape == shape:
            out.append(x)
        elif None not in shape:
            out.append(broadcast_to(x, shape))
        else:
            for other in xs:
                if other is not x:
                    x = broadcast_like(x, other)
            out.append(x)
    return out


def meshgrid(*xs: Operand, indexing: str = "xy") -> list:
    """Coordinate grids from 1-D inputs, like ``numpy.meshgrid`` (``indexing`` ``"xy"``, the
    default, or ``"ij"``)."""
    if indexing not in ("xy", "ij"):
        _fail("meshgrid", f"indexing must be 'xy' or 'ij', not {indexing!r}", GraphcError)
    if any(x.ndim != 1 for x in xs):
        _fail("meshgrid", f"takes 1-D inputs, not {', '.join(fmt(x.shape) for x in xs)}")
    k = len(xs)
    places = list(range(k))
    if indexing == "xy" and k >= 2:
        places[0], places[1] = 1, 0
    shaped = [reshape(x, tuple(-1 if d == p else 1 for d in range(k)))
              for x, p in zip(xs, places)]
    return broadcast_arrays(*shaped)
