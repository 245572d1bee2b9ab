"""Scans along one axis: ``cumsum``, ``cumprod`` and ``logcumsumexp`` (``axis=None`` flattens
first, like NumPy).

The axis is stored negative, so rules address the same dimension when a cotangent carries
leading batch dimensions. The adjoint of a cumulative sum is a cumulative sum from the other
end (``cumsum``'s ``reverse`` attr), which keeps every rule closed under differentiation.

* ``cumprod``'s derivatives never divide: its rule emits ``cumprod_adjoint`` (prefix
  products and a reverse recurrence), whose own rules emit ``cumprod_tangent`` and itself, as
  ``prod_others`` does for ``prod``; every order is exact with zeros in the input (the price:
  a Python loop along the axis).
* ``logcumsumexp`` is computed by ``numpy.logaddexp.accumulate`` (stable); its gradient
  ``exp(x - M) * reverse_cumsum(g * exp(M - out))``, with ``M`` the last (largest) output,
  is finite while the outputs along the axis span less than about 700.
"""
from __future__ import annotations

from typing import Optional

import itertools

import numpy as np

from ..errors import ShapeError
from ..graph import Axis, Node, Operand, apply
from ..shapes import normalize_axis
from .attrs import flag, integer
from .common import probe
from .elementwise import exp, mul, sub
from .nn import _as_float, _require_real
from ..shapes import float_dtype
from .reduce import max as reduce_max
from .registry import Case, define
from .shape import reshape
from .special import stop_gradient
from .statistics import _ZEROS, Multilinear, _moved, multilinear_jvp
from ..shapes import broadcast_shapes


def _axis(x, axis) -> int:
    if x.ndim == 0:
        raise ShapeError("a scan needs at least one dimension (use axis=None to flatten)")
    (a,) = normalize_axis(axis, x.ndim)
    return a - x.ndim


def _cumsum_infer(x, *, axis, reverse):
    return x.shape, probe(np.cumsum, [x]), {"axis": _axis(x, axis), "reverse": bool(reverse)}


def _cumsum_kernel(x, *, axis, reverse):
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    return np.cumsum(x, axis=axis)


def _cumsum_reference(x, *, axis, reverse):
    x = np.moveaxis(x, axis, -1)
    out = np.zeros(x.shape, np.result_type(x, np.int64) if x.dtype.kind in "biu" else x.dtype)
    n = x.shape[-1]
    for k in range(n):
        part = x[..., k:] if reverse else x[..., :k + 1]
        out[..., k] = np.add.reduce(part, axis=-1) if part.shape[-1] else 0
    return np.moveaxis(out, -1, axis)


_SCAN_ATTRS = {"axis": integer(), "reverse": flag}

define("cumsum", infer=_cumsum_infer, attrs=_SCAN_ATTRS, kernel=_cumsum_kernel,
       bprop=lambda node, g, i: cumsum(g, node.attrs["axis"], reverse=not node.attrs["reverse"]),
       jvp=lambda node, ts: cumsum(ts[0], node.attrs["axis"], reverse=node.attrs["reverse"]),
       reference=_cumsum_reference, structure="group", curvature="linear",
       cases=[Case(((3, 4),), attrs={"axis": 1, "reverse": False}, order=3),
              Case(((2, 3, 4),), attrs={"axis": 0, "reverse": True}),
              Case(((5,),), attrs={"axis": -1, "reverse": False}),
              Case((np.array([[1, 2], [3, 4]], dtype=np.int8),), attrs={"axis": 0, "reverse": False})],
       doc="Running sums along `axis` (from the end when `reverse`).")


def _cumprod_infer(x, *, axis):
    return x.shape, probe(np.cumprod, [x]), {"axis": _axis(x, axis)}


def _cumprod_reference(x, *, axis):
    x = np.moveaxis(x, axis, -1)
    out = np.stack([np.multiply.reduce(x[..., :k + 1], axis=-1) for k in range(x.shape[-1])], -1)
    return np.moveaxis(out, -1, axis)


define("cumprod", infer=_cumprod_infer, attrs={"axis": integer()},
       kernel=lambda x, *, axis: np.cumprod(x, axis=axis),
       bprop=lambda node, g, i: cumprod_adjoint(node.inputs[0], g, (), node.attrs["axis"]),
       jvp=lambda node, ts: cumprod_tangent(node.inputs[0], [ts[0]], node.attrs["axis"]),
       reference=_cumprod_reference, structure="group",
       cases=[Case(((3, 4),), attrs={"axis": 1}, order=3),
              Case(((2, 3, 2),), attrs={"axis": 0}),
              Case((_ZEROS,), attrs={"axis": -1}, order=3),
              Case((np.array([[2, 0, 3], [1, -2, 4]]),), attrs={"axis": 1})],
       doc="Running products along `axis`; derivatives of every order exact with zeros.")


# The derivatives of c_i = prod_{j <= i} x_j, exact with zeros (no division), closed under
# differentiation like prod_others: with D^m c_i the m-th derivative of c_i,
#   cumprod_tangent(x, v1..vm)[i] = D^m c_i [v1..vm]                            (m >= 1)
#   cumprod_adjoint(x, g, v1..vm)[k] = sum_{i >= k} g_i D^(m+1) c_i [e_k, v1..vm]
# Each is multilinear in g and the v's and its rules emit the other (see the bprops).
def _cumprod_derivative_infer(x, *others, axis):
    if not -x.ndim <= axis < 0:
        raise ShapeError(f"axis {axis} is out of range for {x.ndim} dimensions")
    nodes = (x,) + others
    return (broadcast_shapes(*(n.shape for n in nodes)),
            np.result_type(*(n.dtype for n in nodes)))


def _cumprod_tangent_kernel(x, *directions, axis):
    (x, *vs), restore = _moved((x,) + directions, (axis,))
    algebra = Multilinear(len(vs))
    factors = algebra.factors(x, vs)
    running = algebra.constant(np.ones(x.shape[:-1]), factors.dtype)
    out = np.empty(x.shape, factors.dtype)
    for i in range(x.shape[-1]):
        running = algebra.times(running, factors[..., i, :])
        out[..., i] = running[..., algebra.full]
    return restore(out).astype(factors.dtype)


def _cumprod_adjoint_kernel(x, g, *directions, axis):
    (x, g, *vs), restore = _moved((x, g) + directions, (axis,))
    if not vs:  # the gradient: the same recurrence on plain arrays, exclusive prefix products
        dtype = np.result_type(x, g)
        out = np.empty(x.shape, dtype)
        if x.shape[-1]:
            left = np.cumprod(np.concatenate([np.ones(x.shape[:-1] + (1,), dtype),
                                              x[..., :-1]], axis=-1), axis=-1)
            tail = g[..., -1].astype(dtype)
            out[..., -1] = left[..., -1] * tail
            for k in range(x.shape[-1] - 2, -1, -1):
                tail = g[..., k] + x[..., k + 1] * tail
                out[..., k] = left[..., k] * tail
        return restore(out).astype(dtype)
    algebra = Multilinear(len(vs))
    factors = algebra.factors(x, vs)
    dtype = np.result_type(factors, g)
    n = x.shape[-1]
    left = [algebra.constant(np.ones(x.shape[:-1]), dtype)]  # prod_{j < k} of the factors
    for k in range(n - 1):
        left.append(algebra.times(left[-1], factors[..., k, :]))
    out = np.empty(x.shape, dtype)
    tail = None  # S_k = sum_{i >= k} g_i prod_{k < j <= i} f_j = g_k + f_{k+1} S_{k+1}
    for k in range(n - 1, -1, -1):
        here = algebra.constant(g[..., k], dtype)
        tail = here if tail is None else here + algebra.times(factors[..., k + 1, :], tail)
        out[..., k] = algebra.times(left[k], tail)[..., algebra.full]
    return restore(out).astype(dtype)


def _ordered_choices(positions, m):
    return itertools.permutations(positions, m)


def _cumprod_tangent_reference(x, *directions, axis):
    (x, *vs), restore = _moved((x,) + directions, (axis,))
    out = np.zeros(x.shape, np.result_type(x, *vs))
    for at in np.ndindex(x.shape[:-1]):
        for i in range(x.shape[-1]):
            for chosen in _ordered_choices(range(i + 1), len(vs)):
                term = np.prod([v[at + (j,)] for v, j in zip(vs, chosen)])
                out[at + (i,)] += term * np.prod([x[at + (j,)] for j in range(i + 1)
                                                  if j not in chosen])
    return restore(out)


def _cumprod_adjoint_reference(x, g, *directions, axis):
    (x, g, *vs), restore = _moved((x, g) + directions, (axis,))
    out = np.zeros(x.shape, np.result_type(x, g, *vs))
    n = x.shape[-1]
    for at in np.ndindex(x.shape[:-1]):
        for k in range(n):
            for i in range(k, n):
                others = [j for j in range(i + 1) if j != k]
                for chosen in _ordered_choices(others, len(vs)):
                    term = np.prod([v[at + (j,)] for v, j in zip(vs, chosen)])
                    out[at + (k,)] += g[at + (i,)] * term * np.prod(
                        [x[at + (j,)] for j in others if j not in chosen])
    return restore(out)


def _cumprod_tangent_bprop(node, h, i):
    x, *directions = node.inputs
    if i == 0:
        return cumprod_adjoint(x, h, directions, node.attrs["axis"])
    return cumprod_adjoint(x, h, directions[:i - 1] + directions[i:], node.attrs["axis"])


def _cumprod_adjoint_bprop(node, h, i):
    x, g, *directions = node.inputs
    axis = node.attrs["axis"]
    if i == 0:
        return cumprod_adjoint(x, g, directions + [h], axis)
    if i == 1:
        return cumprod_tangent(x, [h] + directions, axis)
    directions[i - 2] = h
    return cumprod_adjoint(x, g, directions, axis)


define("cumprod_tangent", infer=_cumprod_derivative_infer, attrs={"axis": integer(None, -1)},
       arity=(2, None), kernel=_cumprod_tangent_kernel, bprop=_cumprod_tangent_bprop,
       jvp=multilinear_jvp(lambda node, x, fixed, ds: cumprod_tangent(x, ds, node.attrs["axis"]),
                           1),
       reference=_cumprod_tangent_reference,
       cases=[Case(((3, 4), (3, 4)), attrs={"axis": -1}, order=3),
              Case((_ZEROS, (4, 3), (4, 3)), attrs={"axis": -1}),
              Case(((3, 2), (2, 3, 2)), attrs={"axis": -2})],
       doc="cumprod_tangent(x, v1..vm)[i] = the m-th derivative of cumprod(x)[i] at [v1..vm].")
define("cumprod_adjoint", infer=_cumprod_derivative_infer, attrs={"axis": integer(None, -1)},
       arity=(2, None), kernel=_cumprod_adjoint_kernel, bprop=_cumprod_adjoint_bprop,
       jvp=multilinear_jvp(lambda node, x, fixed, ds: cumprod_adjoint(
           x, fixed[0], ds, node.attrs["axis"]), 2),
       reference=_cumprod_adjoint_reference,
       cases=[Case(((3, 4), (3, 4)), attrs={"axis": -1}, order=3),
              Case((_ZEROS, (4, 3)), attrs={"axis": -1}, order=3),
              Case((_ZEROS, (4, 3), (4, 3)), attrs={"axis": -2}),
              Case(((3, 2), (2, 3, 2)), attrs={"axis": -2})],
       doc="cumprod_adjoint(x, g, v1..vm)[k] = sum over i >= k of g_i times the (m+1)-th "
           "derivative of cumprod(x)[i] at [e_k, v1..vm]: cumprod's rule, no division.")


def cumprod_tangent(x, directions, axis: int, name=None):
    """The mixed directional derivative of ``cumprod(x, axis)`` along ``directions``."""
    return apply("cumprod_tangent", [x, *directions], {"axis": axis}, name=name)


def cumprod_adjoint(x, g, directions, axis: int, name=None):
    """The cotangent ``g`` of ``cumprod(x, axis)`` pulled back to ``x`` (with ``directions``:
    through the higher derivatives), exact where ``x`` has zeros."""
    return apply("cumprod_adjoint", [x, g, *directions], {"axis": axis}, name=name)


def _logcumsumexp_infer(x, *, axis):
    _require_real(x)
    return x.shape, float_dtype(x.dtype), {"axis": _axis(x, axis)}


def _logcumsumexp_bprop(node, g, i):
    axis = node.attrs["axis"]
    top = stop_gradient(reduce_max(node, axis, keepdims=True))  # the value cancels out
    return mul(exp(sub(node.inputs[0], top)),
               cumsum(mul(g, exp(sub(top, node))), axis, reverse=True))


define("logcumsumexp", infer=_logcumsumexp_infer, attrs={"axis": integer()},
       kernel=lambda x, *, axis: np.logaddexp.accumulate(_as_float(x), axis=axis),
       bprop=_logcumsumexp_bprop, structure="group",
       reference=lambda x, *, axis: np.log(np.cumsum(np.exp(x), axis=axis)),
       cases=[Case(((3, 4),), attrs={"axis": 1}, order=3),
              Case(((2, 3, 2),), attrs={"axis": 0}),
              Case((np.array([1, 5, 2]),), attrs={"axis": 0}),
              Case((np.array([1e4, 1e4 + 1.0, -3.0]),), attrs={"axis": 0}, wrt=(),
                   ref=lambda x, *, axis: np.array([1e4, 1e4 + 1 + np.log1p(np.exp(-1)),
                                                    1e4 + 1 + np.log1p(np.exp(-1))]))],
       doc="log(cumsum(exp(x))) along `axis`, stable for large x.")


# -- builders ---------------------------------------------------------------------------------------
def _flat(x, axis):
    return (reshape(x, (-1,)), 0) if axis is None else (x, axis)


def cumsum(x: Operand, axis: Axis = None, reverse: bool = False,
           name: Optional[str] = None) -> Node:
    """Running sums along ``axis`` (of the flattened ``x`` when ``axis`` is None), like
    ``numpy.cumsum``; ``reverse=True`` sums from the end."""
    x, axis = _flat(x, axis)
    return apply("cumsum", [x], {"axis": axis, "reverse": reverse}, name=name)


def cumprod(x: Operand, axis: Axis = None, name: Optional[str] = None) -> Node:
    """Running products along ``axis`` (flattened when None), like ``numpy.cumprod``; its
    derivatives of every order are exact where ``x`` has zeros."""
    x, axis = _flat(x, axis)
    return apply("cumprod", [x], {"axis": axis}, name=name)


def logcumsumexp(x: Operand, axis: Axis = None, name: Optional[str] = None) -> Node:
    """``log(cumsum(exp(x)))`` along ``axis`` (flattened when None), computed stably, like
    ``jax.lax.cumlogsumexp``."""
    x, axis = _flat(x, axis)
    return apply("logcumsumexp", [x], {"axis": axis}, name=name)
