"""Scans along one axis: ``cumsum``, ``cumprod`` and ``logcumsumexp`` (``axis=None`` flattens
first, like NumPy).

The axis is stored negative, so rules address the same dimension when a cotangent carries
leading batch dimensions. The adjoint of a cumulative sum is a cumulative sum from the other
end (``cumsum``'s ``reverse`` attr), which keeps every rule closed under differentiation.

* ``cumprod``'s gradient is ``reverse_cumsum(g * cumprod(x)) / x``: it divides by ``x``, so
  it is not finite where ``x`` has zeros (``prod`` is exact there; use it when you can).
* ``logcumsumexp`` is computed by ``numpy.logaddexp.accumulate`` (stable); its gradient
  ``exp(x - M) * reverse_cumsum(g * exp(M - out))``, with ``M`` the last (largest) output,
  is finite while the outputs along the axis span less than about 700.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..graph import apply
from ..shapes import normalize_axis
from .attrs import flag, integer
from .common import probe
from .elementwise import div, exp, mul, sub
from .nn import _as_float, _require_real
from ..shapes import float_dtype
from .reduce import max as reduce_max
from .registry import Case, define
from .shape import reshape
from .special import stop_gradient


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
       bprop=lambda node, g, i: div(cumsum(mul(g, node), node.attrs["axis"], reverse=True),
                                    node.inputs[0]),
       reference=_cumprod_reference, structure="group",
       cases=[Case(((3, 4),), attrs={"axis": 1}, low=0.5, high=2.0, order=3),
              Case(((2, 3, 2),), attrs={"axis": 0}, low=0.5, high=2.0),
              Case((np.array([[-1.5, 0.7, 2.0], [0.6, -1.1, -0.9]]),), attrs={"axis": -1}),
              Case((np.array([[2, 0, 3], [1, -2, 4]]),), attrs={"axis": 1})],
       doc="Running products along `axis`; its gradient divides by x (not finite at zeros).")


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


def cumsum(x, axis=None, reverse: bool = False, name=None):
    """Running sums along ``axis`` (of the flattened ``x`` when ``axis`` is None), like
    ``numpy.cumsum``; ``reverse=True`` sums from the end."""
    x, axis = _flat(x, axis)
    return apply("cumsum", [x], {"axis": axis, "reverse": reverse}, name=name)


def cumprod(x, axis=None, name=None):
    """Running products along ``axis`` (flattened when None), like ``numpy.cumprod``. The
    gradient divides by ``x``: it is not finite where ``x`` is zero."""
    x, axis = _flat(x, axis)
    return apply("cumprod", [x], {"axis": axis}, name=name)


def logcumsumexp(x, axis=None, name=None):
    """``log(cumsum(exp(x)))`` along ``axis`` (flattened when None), computed stably, like
    ``jax.lax.cumlogsumexp``."""
    x, axis = _flat(x, axis)
    return apply("logcumsumexp", [x], {"axis": axis}, name=name)
