"""Elementwise arithmetic and math functions (NumPy broadcasting and type promotion).

Every bprop here works for a cotangent with extra leading batch dimensions, because
broadcasting lines dimensions up from the right; the gradient pass sums broadcast dimensions
back to each input's shape.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import GraphcError
from ..graph import Node, Operand, apply
from .common import elementwise_infer, is_constant
from .compare import equal, greater, less, where
from .registry import Case, define


def _binary(name, ufunc, bprop, *, cases, reference=None, doc="", curvature="nonlinear"):
    define(name, infer=elementwise_infer(ufunc), kernel=ufunc, bprop=bprop, arity=2,
           curvature=curvature,
           reference=reference or ufunc, cases=cases, elementwise=True, inplace=True, doc=doc)


def _unary(name, ufunc, bprop, *, cases=None, reference=None, low=-2.0, high=2.0, order=3,
           doc="", curvature="nonlinear"):
    cases = cases or [Case(((3, 4),), low=low, high=high, order=order),
                      Case(((),), low=low, high=high)]
    define(name, infer=elementwise_infer(ufunc), kernel=ufunc, bprop=bprop, arity=1,
           curvature=curvature,
           reference=reference or ufunc, cases=cases, elementwise=True, inplace=True, doc=doc)


_BROADCAST_CASES = [
    Case(((3, 4), (3, 4)), order=3),
    Case(((3, 1), (4,))),
    Case(((), (2, 3))),
]

# -- arithmetic -------------------------------------------------------------------------------
_binary("add", np.add, lambda node, g, i: g, cases=_BROADCAST_CASES, curvature="linear")
_binary("sub", np.subtract, lambda node, g, i: g if i == 0 else neg(g), cases=_BROADCAST_CASES,
        curvature="linear")
_binary("mul", np.multiply, lambda node, g, i: mul(g, node.inputs[1 - i]),
        cases=_BROADCAST_CASES, curvature="bilinear")


def _div_bprop(node, g, i):
    a, b = node.inputs
    if i == 0:
        return div(g, b)
    return neg(mul(g, div(node, b)))  # d(a/b)/db = -(a/b)/b


_binary("div", np.true_divide, _div_bprop,
        cases=[Case(((3, 4), (3, 4)), low=0.5, high=2.0, order=3),
               Case(((3, 1), (4,)), low=0.5, high=2.0)])


def _pow_bprop(node, g, i):
    a, b = node.inputs
    if i == 0:  # b * a**(b-1), written without a division so that a = 0 stays finite
        exponent = sub(b, 1)
        return mul(g, mul(b, a if is_constant(exponent, 1) else pow(a, exponent)))
    # d/db a**b = a**b log a, whose limit where a**b = 0 (a = 0, b > 0) is 0, not 0 * -inf.
    # log's input is masked too: else its derivative 1/a = inf gives 0 * inf = NaN in second
    # derivatives (and, through a Jacobian's batch of seeds, in every row).
    vanishes = equal(node, 0)
    return mul(g, where(vanishes, 0, mul(node, log(where(vanishes, 1, a)))))


_binary("pow", np.power, _pow_bprop,
        cases=[Case(((3, 4), (3, 4)), low=0.5, high=2.0, order=3),
               Case(((3, 4), ()), low=0.5, high=2.0)])

_unary("neg", np.negative, lambda node, g, i: neg(g), curvature="linear")

# -- transcendental functions: rules reuse the forward output where they can ------------------
_unary("exp", np.exp, lambda node, g, i: mul(g, node))
_unary("log", np.log, lambda node, g, i: div(g, node.inputs[0]), low=0.2, high=3.0)
_unary("log1p", np.log1p, lambda node, g, i: div(g, add(node.inputs[0], 1)), low=-0.5, high=3.0)
_unary("sqrt", np.sqrt, lambda node, g, i: div(g, mul(node, 2)), low=0.2, high=3.0)
_unary("square", np.square, lambda node, g, i: mul(g, mul(node.inputs[0], 2)))
_unary("sin", np.sin, lambda node, g, i: mul(g, cos(node.inputs[0])))
_unary("cos", np.cos, lambda node, g, i: neg(mul(g, sin(node.inputs[0]))))
_unary("tanh", np.tanh, lambda node, g, i: mul(g, sub(1, square(node))))


def add(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a + b`` with broadcasting."""
    return apply("add", [a, b], name=name)


def sub(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a - b`` with broadcasting."""
    return apply("sub", [a, b], name=name)


def mul(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a * b`` with broadcasting."""
    return apply("mul", [a, b], name=name)


def div(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a / b`` (true division) with broadcasting."""
    return apply("div", [a, b], name=name)


def pow(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a ** b`` with broadcasting.

    For a Python-number exponent 2 or 0.5 it builds ``square(a)`` or ``sqrt(a)`` (what NumPy's
    ``**`` operator computes for arrays): exact, and the same in ``g.run`` and compiled code.
    """
    exponent = _python_number(b)
    if isinstance(a, Node) and exponent is not None and (
            a.dtype.kind == "f" or (a.dtype.kind in "iu" and type(exponent) is int)):
        if exponent == 2:
            return square(a, name=name)
        if exponent == 0.5 and a.dtype.kind == "f":
            return sqrt(a, name=name)
    return apply("pow", [a, b], name=name)


def _python_number(value):
    """``value`` as a Python int or float when it is one, or a weak constant node of one."""
    if type(value) in (int, float):
        return value
    if isinstance(value, Node) and value.op == "constant" and value.attrs["weak"]:
        scalar = value.attrs["value"].item()
        return scalar if type(scalar) in (int, float) else None
    return None


def neg(x: Operand, name: Optional[str] = None) -> Node:
    """``-x``."""
    return apply("neg", [x], name=name)


def exp(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise ``e**x``."""
    return apply("exp", [x], name=name)


def log(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise natural logarithm.

    Of a node that has a stable logarithm it builds that instead, so values and gradients
    stay finite in ``g.run`` and compiled functions alike: ``log(sigmoid(x))`` is
    ``-softplus(-x)``, ``log(softmax(x))`` is ``log_softmax(x)``, ``log(1 + x)`` is
    ``log1p(x)`` (for float ``x``).
    """
    stable = _stable_log(x, name)
    return stable if stable is not None else apply("log", [x], name=name)


def _stable_log(x, name):
    """The stable form of ``log(x)`` for a float node ``x`` that has one, else None."""
    if not isinstance(x, Node) or x.dtype.kind != "f":
        return None
    if x.op in ("sigmoid", "softmax") and x.inputs[0].dtype == x.dtype:
        from .nn import log_softmax, softplus
        if x.op == "sigmoid":
            return neg(softplus(neg(x.inputs[0])), name=name)
        return log_softmax(x.inputs[0], axis=x.attrs["axis"], name=name)
    if x.op == "add":
        for one, other in (x.inputs, x.inputs[::-1]):
            # 1 + other has other's shape and dtype: log1p(other) is the same value
            if is_constant(one, 1) and other.shape == x.shape and other.dtype == x.dtype:
                return log1p(other, name=name)
    return None


def log1p(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise ``log(1 + x)``, accurate for small ``x``; ``log1p(exp(x))`` builds the
    stable ``softplus(x)`` (for float ``x``)."""
    if isinstance(x, Node) and x.op == "exp" and x.inputs[0].dtype.kind == "f" and \
            x.inputs[0].dtype == x.dtype:
        from .nn import softplus
        return softplus(x.inputs[0], name=name)
    return apply("log1p", [x], name=name)


def sqrt(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise square root."""
    return apply("sqrt", [x], name=name)


def square(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise ``x**2``."""
    return apply("square", [x], name=name)


def sin(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise sine."""
    return apply("sin", [x], name=name)


def cos(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise cosine."""
    return apply("cos", [x], name=name)


def tanh(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise hyperbolic tangent."""
    return apply("tanh", [x], name=name)


# -- kinks: abs, sign, maximum, minimum, clip -------------------------------------------------
# abs'(0) = 0 (through sign); maximum/minimum split the gradient equally between tied inputs,
# and clip differentiates as minimum(maximum(x, lo), hi). The rules emit comparisons (no
# derivative) and ``where``, so they differentiate again like any other graph.
def _split(g, win, tie):
    """``g`` where ``win``, ``g / 2`` where ``tie``, else 0 (in g's dtype, any batch)."""
    return where(win, g, where(tie, mul(g, 0.5), 0))


def _maximum_bprop(node, g, i):
    a, b = node.inputs
    return _split(g, greater(a, b) if i == 0 else greater(b, a), equal(a, b))


def _minimum_bprop(node, g, i):
    a, b = node.inputs
    return _split(g, less(a, b) if i == 0 else less(b, a), equal(a, b))


_INT_PAIR = (np.array([[3, -1, 2]]), np.array([[3, 0, -5], [1, 1, 1]]))

_unary("abs", np.abs, lambda node, g, i: mul(g, sign(node.inputs[0])), curvature="linear",
       cases=[Case(((3, 4),), order=3), Case(((),)), Case((np.array([-3, 0, 2]),))],
       reference=lambda x: np.where(x < 0, -x, x),
       doc="|x|; the derivative at 0 is taken as 0.")
define("sign", infer=elementwise_infer(np.sign), kernel=np.sign, bprop=None,
       arity=1, reference=lambda x: (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype),
       cases=[Case((np.array([-2.0, 0.0, 3.5, -0.0]),)), Case(((3, 4),)),
              Case((np.array([-3, 0, 2]),))],
       elementwise=True, inplace=True, doc="-1, 0 or 1 by the sign of x; no derivative.")
_binary("maximum", np.maximum, _maximum_bprop, curvature="linear",
        cases=_BROADCAST_CASES + [Case(_INT_PAIR)],
        reference=lambda a, b: np.where(a >= b, a, b) + 0 * b,
        doc="Elementwise larger value; ties split the gradient equally.")
_binary("minimum", np.minimum, _minimum_bprop, curvature="linear",
        cases=_BROADCAST_CASES + [Case(_INT_PAIR)],
        reference=lambda a, b: np.where(a <= b, a, b) + 0 * b,
        doc="Elementwise smaller value; ties split the gradient equally.")


def _clip_bprop(node, g, i):
    x, lo, hi = node.inputs
    m = maximum(x, lo)
    if i == 2:
        return _split(g, greater(m, hi), equal(m, hi))
    gm = _split(g, less(m, hi), equal(m, hi))  # the cotangent of m = maximum(x, lo)
    if i == 0:
        return _split(gm, greater(x, lo), equal(x, lo))
    return _split(gm, less(x, lo), equal(x, lo))


define("clip", infer=elementwise_infer(np.clip), kernel=np.clip, bprop=_clip_bprop, arity=3,
       curvature="linear",
       reference=lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
       cases=[Case(((3, 4), np.array(-0.5), np.array(0.7)), order=3),
              Case(((3, 4), (4,), (3, 1))),
              Case(((2, 3), (), ())),
              Case((np.array([-4, 0, 9]), np.array(-1), np.array(5)))],
       elementwise=True,
       doc="x limited to [lo, hi] elementwise: minimum(maximum(x, lo), hi).")


def abs(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise absolute value ``|x|``; its derivative at 0 is 0."""
    return apply("abs", [x], name=name)


def sign(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise sign (-1, 0 or 1); not differentiable (passes zero gradient)."""
    return apply("sign", [x], name=name)


def maximum(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """Elementwise maximum with broadcasting; tied inputs share the gradient equally."""
    return apply("maximum", [a, b], name=name)


def minimum(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """Elementwise minimum with broadcasting; tied inputs share the gradient equally."""
    return apply("minimum", [a, b], name=name)


def clip(x: Operand, lo: Optional[Operand], hi: Optional[Operand],
         name: Optional[str] = None) -> Node:
    """``x`` limited to ``[lo, hi]`` elementwise, like ``numpy.clip``.

    ``lo`` and ``hi`` may be scalars, arrays or nodes (they broadcast with ``x``); ``None``
    leaves that side open. The gradient is that of ``minimum(maximum(x, lo), hi)``: ties at a
    bound split it equally, and it reaches ``lo``/``hi`` where they are active.
    """
    if lo is None and hi is None:
        raise GraphcError("clip: give at least one of lo and hi")
    if lo is None:
        return minimum(x, hi, name=name)
    if hi is None:
        return maximum(x, lo, name=name)
    return apply("clip", [x, lo, hi], name=name)
