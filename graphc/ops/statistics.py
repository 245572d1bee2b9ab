"""More reductions over axes: ``prod``, ``var``, ``std``, ``any`` and ``all`` (``axis`` None, an
int or a tuple; ``keepdims``), with the internal op ``prod_others`` that makes ``prod``'s
derivatives exact where the input has zeros.

Why ``prod_others``. The textbook gradient ``prod(x) / x`` is 0/0 where an element is zero.
The gradient is the product of the *other* elements, which ``prod_others(x)`` computes with
prefix and suffix products (no division: exact with one zero or many). Its own derivatives are
the higher derivatives of ``P = prod(x)``, which are symmetric multilinear forms:
``prod_others(x, v1, ..., vm)[k] = D^(m+1) P [e_k, v1, ..., vm]`` (the mixed derivative of
``prod_{j != k} (x_j + t1 v1_j + ... + tm vm_j)`` at ``t = 0``). By that symmetry its rule is
itself: the cotangent joins the directions (for ``x``) or takes the place of one (for a
``v``), so the chain closes and every order of derivative is exact, zeros included.
"""
from __future__ import annotations

from typing import Optional

import builtins  # any and all below shadow the builtins in this module
import itertools

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Axis, Node, Operand, apply
from ..shapes import broadcast_shapes, fmt
from .attrs import ints, real
from .elementwise import add, div, mul, sub
from .reduce import _REDUCE_ATTRS, _extremum_reference, _reduce_infer, _spread, mean, \
    reduced_size, sum as reduce_sum
from .registry import Case, define
from .shape import expand_dims


# -- prod and prod_others ---------------------------------------------------------------------------
def _prod_bprop(node, g, i):
    x = node.inputs[0]
    axes = tuple(a - x.ndim for a in node.attrs["axis"])
    return mul(_spread(node, g), prod_others(x, (), axes))


def _reduced_tangent(node, t):
    """``sum(t, axis)`` of a reduction node's attrs, at negative axes (any batch of t)."""
    x = node.inputs[0]
    axes = tuple(a - x.ndim for a in node.attrs["axis"])
    return reduce_sum(t, axes, keepdims=node.attrs["keepdims"])


def _prod_jvp(node, tangents):
    x = node.inputs[0]
    axes = tuple(a - x.ndim for a in node.attrs["axis"])
    return _reduced_tangent(node, mul(tangents[0], prod_others(x, (), axes)))


def tangent_sum(terms):
    """The sum of the tangent terms that are not None (None when all are)."""
    terms = [t for t in terms if t is not None]
    out = terms[0] if terms else None
    for t in terms[1:]:
        out = add(out, t)
    return out


def _aligned(t, input_node, node):
    """A tangent ``batch + input.shape`` with size-1 dimensions inserted after its batch, so
    that it broadcasts against inputs shaped like the (broadcast) ``node`` (batch in front)."""
    extra = node.ndim - input_node.ndim
    if extra <= 0:
        return t
    return expand_dims(t, tuple(-input_node.ndim - 1 - k for k in range(extra)))


def multilinear_jvp(build, with_direction):
    """The jvp of an op ``build(x, directions)`` that is symmetric multilinear in its
    directions and whose derivative in x adds a direction: ``with_direction(node)`` is the
    index of the first direction among the inputs."""
    def jvp(node, tangents):
        x, *rest = node.inputs
        first = with_direction - 1
        fixed, directions = rest[:first], list(rest[first:])
        tangents = [None if t is None else _aligned(t, n, node)
                    for t, n in zip(tangents, node.inputs)]
        terms = []
        if tangents[0] is not None:
            terms.append(build(node, x, fixed, directions + [tangents[0]]))
        for i, t in enumerate(tangents[1:]):
            if t is not None:
                replaced = list(rest)
                replaced[i] = t
                terms.append(build(node, x, replaced[:first], replaced[first:]))
        return tangent_sum(terms)
    return jvp


def _prod_reference(x, *, axis, keepdims):
    out = x
    for a in sorted(axis, reverse=True):
        out = np.multiply.reduce(out, axis=a, keepdims=keepdims)
    return out


_ZEROS = np.array([[0.0, 2.0, -3.0], [0.0, 0.0, 1.5], [1.2, -0.5, 2.0], [0.0, 0.7, 0.0]])

define("prod", infer=_reduce_infer(np.prod), attrs=_REDUCE_ATTRS,
       kernel=lambda x, *, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
       bprop=_prod_bprop, jvp=_prod_jvp, reference=_prod_reference, structure="reduce",
       cases=[Case(((3, 4),), attrs={"axis": (1,), "keepdims": False}, order=3),
              Case(((2, 3, 4),), attrs={"axis": (0, 2), "keepdims": True}),
              Case(((3, 4),), attrs={"axis": (0, 1), "keepdims": False}),
              Case((_ZEROS,), attrs={"axis": (1,), "keepdims": False}, order=3),  # 1, 2, 3 zeros
              Case((_ZEROS,), attrs={"axis": (0, 1), "keepdims": True}),
              Case(((),), attrs={"axis": (), "keepdims": False}),
              Case((np.array([[2, -3], [4, 0]]),), attrs={"axis": (0,), "keepdims": False})],
       doc="Product over `axis`; derivatives of every order exact with zeros in the input.")


def _prod_others_infer(x, *directions, axis):
    if builtins.any(not -x.ndim <= a < 0 for a in axis) or len(set(axis)) != len(axis):
        raise ShapeError(f"axes {axis} must be distinct negative axes of {fmt(x.shape)}")
    nodes = (x,) + directions
    if builtins.any(n.dtype.kind not in "biufc" for n in nodes):
        raise DTypeError("prod_others multiplies numbers")
    return (broadcast_shapes(*(n.shape for n in nodes)),
            np.result_type(*(n.dtype for n in nodes)), {"axis": tuple(sorted(axis))})


def _moved(arrays, axis):
    """The inputs broadcast together, the product axes moved to the end and flattened."""
    arrays = np.broadcast_arrays(*arrays)
    ndim = arrays[0].ndim
    source = [ndim + a for a in axis]
    target = list(range(ndim - len(axis), ndim))
    moved = [np.moveaxis(a, source, target) for a in arrays]
    shape = moved[0].shape
    count = int(np.prod(shape[ndim - len(axis):], dtype=np.int64))  # -1 is ambiguous when empty
    flat = [a.reshape(shape[:ndim - len(axis)] + (count,)) for a in moved]
    return flat, lambda out: np.moveaxis(out.reshape(shape), target, source)


def _exclusive_products(x):
    """``out[..., k] = prod_{j != k} x[..., j]``, by prefix and suffix products (no division)."""
    if x.shape[-1] == 0:
        return x.copy()
    ones = np.ones(x.shape[:-1] + (1,), x.dtype)
    left = np.cumprod(np.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, x[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return left * right


class Multilinear:
    """Polynomials in m variables ``t1..tm`` truncated to square-free terms: arrays whose last
    axis holds the 2**m coefficients, indexed by the subset of variables (a bit mask). Mixed
    derivatives of products are the coefficient of ``t1...tm`` (the ``full`` mask) in products
    of the factors ``x_j + sum_l t_l v_lj`` (``factors``)."""

    def __init__(self, m: int):
        self.full = (1 << m) - 1
        self.pairs = [(s, t) for s in range(self.full + 1) for t in range(self.full + 1)
                      if t & s == t]

    def factors(self, x, directions):
        out = np.zeros(x.shape + (self.full + 1,), np.result_type(x, *directions))
        out[..., 0] = x
        for l, v in enumerate(directions):
            out[..., 1 << l] = v
        return out

    def constant(self, c, dtype):
        out = np.zeros(np.shape(c) + (self.full + 1,), dtype)
        out[..., 0] = c
        return out

    def times(self, a, b):
        out = np.zeros(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
        for s, t in self.pairs:
            out[..., s] += a[..., t] * b[..., s ^ t]
        return out


def _multilinear_products(x, directions):
    """``D^(m+1) P [e_k, v1..vm]`` for each k, by prefix and suffix products of the factors
    (see :class:`Multilinear`)."""
    algebra = Multilinear(len(directions))
    factors = algebra.factors(x, directions)
    n = x.shape[-1]
    one = algebra.constant(np.ones(x.shape[:-1]), factors.dtype)
    left, right = [one], [one]
    for j in range(n - 1):
        left.append(algebra.times(left[-1], factors[..., j, :]))
        right.append(algebra.times(right[-1], factors[..., n - 1 - j, :]))
    out = np.zeros(x.shape, factors.dtype)
    for k in range(n):
        out[..., k] = algebra.times(left[k], right[n - 1 - k])[..., algebra.full]
    return out


def _prod_others_kernel(x, *directions, axis):
    flat, restore = _moved((x,) + directions, axis)
    if directions:
        out = _multilinear_products(flat[0], flat[1:])
    else:
        out = _exclusive_products(flat[0])
    dtype = np.result_type(x, *directions)
    return restore(out).astype(dtype)


def _prod_others_reference(x, *directions, axis):
    """Each mixed derivative as its sum over ordered choices of distinct other positions."""
    flat, restore = _moved((x,) + directions, axis)
    x, vs = flat[0], flat[1:]
    out = np.zeros(x.shape, np.result_type(x, *vs))
    n = x.shape[-1]
    for index in np.ndindex(x.shape[:-1]):
        for k in range(n):
            total = 0.0
            for chosen in itertools.permutations([j for j in range(n) if j != k], len(vs)):
                term = np.prod([v[index + (j,)] for v, j in zip(vs, chosen)])
                rest = [x[index + (j,)] for j in range(n) if j != k and j not in chosen]
                total += term * np.prod(rest)
            out[index + (k,)] = total
    return restore(out)


def _prod_others_bprop(node, g, i):
    x, *directions = node.inputs
    if i == 0:
        directions.append(g)
    else:
        directions[i - 1] = g
    return prod_others(x, directions, node.attrs["axis"])


define("prod_others", infer=_prod_others_infer, attrs={"axis": ints()}, arity=(1, None),
       kernel=_prod_others_kernel, bprop=_prod_others_bprop, reference=_prod_others_reference,
       jvp=multilinear_jvp(lambda node, x, fixed, ds: prod_others(x, ds, node.attrs["axis"]), 1),
       cases=[Case(((3, 4),), attrs={"axis": (-1,)}, order=3),
              Case((_ZEROS,), attrs={"axis": (-1,)}, order=3),
              Case((_ZEROS, (4, 3)), attrs={"axis": (-2, -1)}),
              Case(((2, 3), (2, 3), (2, 3)), attrs={"axis": (-1,)}),
              Case(((3, 4), (2, 3, 4)), attrs={"axis": (-1,)}),  # a direction with a batch
              Case(((2, 0),), attrs={"axis": (-1,)}),
              Case(((),), attrs={"axis": ()})],
       doc="prod_others(x, v1..vm)[k] = the (m+1)-th derivative of prod(x over axis) at "
           "[e_k, v1..vm]: the product of the other elements when m = 0 (no division).")


def prod_others(x, directions=(), axis=(-1,), name=None):
    """For each element, the product of the *other* elements along the negative ``axis``
    (``directions`` empty), or the mixed derivative of that product along ``directions``:
    the derivatives of :func:`prod`, exact where ``x`` has zeros."""
    return apply("prod_others", [x, *directions], {"axis": tuple(axis)}, name=name)


# -- var and std ------------------------------------------------------------------------------------
def _moment_infer(kernel):
    plain = _reduce_infer(kernel)

    def infer(x, *, axis, keepdims, ddof):
        if x.dtype.kind not in "iuf":
            raise DTypeError(f"var/std need real numbers, not {x.dtype}")
        shape, dtype, attrs = plain(x, axis=axis, keepdims=keepdims)
        return shape, dtype, {**attrs, "ddof": ddof}
    return infer


def _deviation(node):
    """``(x - mean) / (N - ddof)``: the shared factor of var's and std's derivatives."""
    x = node.inputs[0]
    axes = node.attrs["axis"]
    count = sub(reduced_size(x, axes, node.dtype), node.attrs["ddof"])
    return div(sub(x, mean(x, axes, keepdims=True)), count)


_MOMENT_ATTRS = {**_REDUCE_ATTRS, "ddof": real()}
_MOMENT_CASES = [Case(((3, 4),), attrs={"axis": (1,), "keepdims": False, "ddof": 0.0}, order=3),
                 Case(((2, 3, 4),), attrs={"axis": (0, 2), "keepdims": True, "ddof": 1.0}),
                 Case(((3, 4),), attrs={"axis": (0, 1), "keepdims": False, "ddof": 1.0}),
                 Case((np.array([[1, 4, 2], [0, 0, 9]]),),
                      attrs={"axis": (1,), "keepdims": False, "ddof": 0.0})]


def _var_reference(x, *, axis, keepdims, ddof):
    n = int(np.prod([x.shape[a] for a in axis]))
    centred = x - np.add.reduce(x, axis=axis, keepdims=True) / n
    return np.add.reduce(centred * centred, axis=axis, keepdims=keepdims) / (n - ddof)


define("var", infer=_moment_infer(np.var), attrs=_MOMENT_ATTRS,
       kernel=lambda x, *, axis, keepdims, ddof: np.var(x, axis=axis, keepdims=keepdims,
                                                        ddof=ddof),
       bprop=lambda node, g, i: mul(_spread(node, mul(g, 2)), _deviation(node)),
       jvp=lambda node, ts: _reduced_tangent(node, mul(mul(ts[0], 2), _deviation(node))),
       reference=_var_reference, cases=_MOMENT_CASES, structure="reduce",
       doc="Variance over `axis`, dividing by N - ddof.")
define("std", infer=_moment_infer(np.std), attrs=_MOMENT_ATTRS,
       kernel=lambda x, *, axis, keepdims, ddof: np.std(x, axis=axis, keepdims=keepdims,
                                                        ddof=ddof),
       bprop=lambda node, g, i: mul(_spread(node, div(g, node)), _deviation(node)),
       jvp=lambda node, ts: div(_reduced_tangent(node, mul(ts[0], _deviation(node))), node),
       reference=lambda x, **attrs: np.sqrt(_var_reference(x, **attrs)), cases=_MOMENT_CASES,
       structure="reduce",
       doc="Standard deviation over `axis`, dividing by N - ddof; its derivative is infinite "
           "where all the elements are equal.")


# -- any / all: bool results, no derivative ---------------------------------------------------------
_TRUTH = np.array([[True, False, False], [False, False, False], [True, True, True]])
_TRUTH_CASES = [Case((_TRUTH,), attrs={"axis": (1,), "keepdims": False}),
                Case((_TRUTH,), attrs={"axis": (0, 1), "keepdims": True}),
                Case((np.array([[0.0, 2.0], [0.0, 0.0]]),), attrs={"axis": (0,), "keepdims": False}),
                Case(((2, 3),), attrs={"axis": (), "keepdims": False})]

define("any", infer=_reduce_infer(np.any), attrs=_REDUCE_ATTRS,
       kernel=lambda x, *, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims), bprop=None,
       reference=lambda x, **attrs: _extremum_reference(np.logical_or)(x != 0, **attrs),
       cases=_TRUTH_CASES, doc="Whether any element over `axis` is nonzero (bool).")
define("all", infer=_reduce_infer(np.all), attrs=_REDUCE_ATTRS,
       kernel=lambda x, *, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims), bprop=None,
       reference=lambda x, **attrs: _extremum_reference(np.logical_and)(x != 0, **attrs),
       cases=_TRUTH_CASES, doc="Whether every element over `axis` is nonzero (bool).")


# -- builders ---------------------------------------------------------------------------------------
def prod(x: Operand, axis: Axis = None, keepdims: bool = False,
         name: Optional[str] = None) -> Node:
    """Product over ``axis`` (all axes by default), like ``numpy.prod``.

    The gradient is the product of the other elements (computed without division), so it is
    exact with zeros in ``x``, and so are the derivatives of every higher order.
    """
    return apply("prod", [x], {"axis": axis, "keepdims": keepdims}, name=name)


def var(x: Operand, axis: Axis = None, ddof: int = 0, keepdims: bool = False,
        name: Optional[str] = None) -> Node:
    """Variance over ``axis`` (all axes by default), dividing by ``N - ddof``, like
    ``numpy.var``."""
    return apply("var", [x], {"axis": axis, "keepdims": keepdims, "ddof": ddof}, name=name)


def std(x: Operand, axis: Axis = None, ddof: int = 0, keepdims: bool = False,
        name: Optional[str] = None) -> Node:
    """Standard deviation over ``axis``, dividing by ``N - ddof``, like ``numpy.std``."""
    return apply("std", [x], {"axis": axis, "keepdims": keepdims, "ddof": ddof}, name=name)


def any(x: Operand, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Node:
    """Whether any element over ``axis`` is nonzero, like ``numpy.any`` (a bool node)."""
    return apply("any", [x], {"axis": axis, "keepdims": keepdims}, name=name)


def all(x: Operand, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Node:
    """Whether every element over ``axis`` is nonzero, like ``numpy.all`` (a bool node)."""
    return apply("all", [x], {"axis": axis, "keepdims": keepdims}, name=name)
