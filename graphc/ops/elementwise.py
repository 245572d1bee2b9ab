"""Elementwise arithmetic and math functions (NumPy broadcasting and type promotion).

Every bprop here works for a cotangent with extra leading batch dimensions, because
broadcasting lines dimensions up from the right; the gradient pass sums broadcast dimensions
back to each input's shape.
"""
from __future__ import annotations

import numpy as np

from ..graph import apply
from .common import elementwise_infer, is_constant, times
from .registry import Case, define


def _binary(name, ufunc, bprop, *, cases, reference=None, doc=""):
    define(name, infer=elementwise_infer(ufunc), kernel=ufunc, bprop=bprop,
           reference=reference or ufunc, cases=cases, elementwise=True, inplace=True, doc=doc)


def _unary(name, ufunc, bprop, *, cases=None, reference=None, low=-2.0, high=2.0, order=3,
           doc=""):
    cases = cases or [Case(((3, 4),), low=low, high=high, order=order), Case(((),), low=low,
                                                                              high=high)]
    define(name, infer=elementwise_infer(ufunc), kernel=ufunc, bprop=bprop,
           reference=reference or ufunc, cases=cases, elementwise=True, inplace=True, doc=doc)


_BROADCAST_CASES = [
    Case(((3, 4), (3, 4)), order=3),
    Case(((3, 1), (4,))),
    Case(((), (2, 3))),
]

# -- arithmetic -------------------------------------------------------------------------------
_binary("add", np.add, lambda node, g, i: g, cases=_BROADCAST_CASES)
_binary("sub", np.subtract, lambda node, g, i: g if i == 0 else neg(g), cases=_BROADCAST_CASES)
_binary("mul", np.multiply, lambda node, g, i: times(g, node.inputs[1 - i]),
        cases=_BROADCAST_CASES)


def _div_bprop(node, g, i):
    a, b = node.inputs
    if i == 0:
        return div(g, b)
    return neg(times(g, div(node, b)))  # d(a/b)/db = -(a/b)/b


_binary("div", np.true_divide, _div_bprop,
        cases=[Case(((3, 4), (3, 4)), low=0.5, high=2.0, order=3),
               Case(((3, 1), (4,)), low=0.5, high=2.0)])


def _pow_bprop(node, g, i):
    a, b = node.inputs
    if i == 0:  # b * a**(b-1), written without a division so that a = 0 stays finite
        exponent = sub(b, 1)
        return times(g, mul(b, a if is_constant(exponent, 1) else pow(a, exponent)))
    return times(g, mul(node, log(a)))


_binary("pow", np.power, _pow_bprop,
        cases=[Case(((3, 4), (3, 4)), low=0.5, high=2.0, order=3),
               Case(((3, 4), ()), low=0.5, high=2.0)])

_unary("neg", np.negative, lambda node, g, i: neg(g))

# -- transcendental functions: rules reuse the forward output where they can ------------------
_unary("exp", np.exp, lambda node, g, i: times(g, node))
_unary("log", np.log, lambda node, g, i: div(g, node.inputs[0]), low=0.2, high=3.0)
_unary("log1p", np.log1p, lambda node, g, i: div(g, add(node.inputs[0], 1)), low=-0.5, high=3.0)
_unary("sqrt", np.sqrt, lambda node, g, i: div(g, mul(node, 2)), low=0.2, high=3.0)
_unary("square", np.square, lambda node, g, i: times(g, mul(node.inputs[0], 2)))
_unary("sin", np.sin, lambda node, g, i: times(g, cos(node.inputs[0])))
_unary("cos", np.cos, lambda node, g, i: neg(times(g, sin(node.inputs[0]))))
_unary("tanh", np.tanh, lambda node, g, i: times(g, sub(1, square(node))))


def add(a, b, name=None):
    """``a + b`` with broadcasting."""
    return apply("add", [a, b], name=name)


def sub(a, b, name=None):
    """``a - b`` with broadcasting."""
    return apply("sub", [a, b], name=name)


def mul(a, b, name=None):
    """``a * b`` with broadcasting."""
    return apply("mul", [a, b], name=name)


def div(a, b, name=None):
    """``a / b`` (true division) with broadcasting."""
    return apply("div", [a, b], name=name)


def pow(a, b, name=None):
    """``a ** b`` with broadcasting."""
    return apply("pow", [a, b], name=name)


def neg(x, name=None):
    """``-x``."""
    return apply("neg", [x], name=name)


def exp(x, name=None):
    """Elementwise ``e**x``."""
    return apply("exp", [x], name=name)


def log(x, name=None):
    """Elementwise natural logarithm."""
    return apply("log", [x], name=name)


def log1p(x, name=None):
    """Elementwise ``log(1 + x)``, accurate for small ``x``."""
    return apply("log1p", [x], name=name)


def sqrt(x, name=None):
    """Elementwise square root."""
    return apply("sqrt", [x], name=name)


def square(x, name=None):
    """Elementwise ``x**2``."""
    return apply("square", [x], name=name)


def sin(x, name=None):
    """Elementwise sine."""
    return apply("sin", [x], name=name)


def cos(x, name=None):
    """Elementwise cosine."""
    return apply("cos", [x], name=name)


def tanh(x, name=None):
    """Elementwise hyperbolic tangent."""
    return apply("tanh", [x], name=name)
