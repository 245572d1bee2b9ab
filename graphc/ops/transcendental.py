"""More elementwise math with NumPy's names: trigonometric and hyperbolic functions and their
inverses, exp/log variants, ``logaddexp``, ``hypot``, ``arctan2``, ``reciprocal`` and ``cbrt``.

Each rule is a graph of registered ops (reusing the forward output where it can), so every
order of derivative works; references are closed forms written with other functions.
"""
from __future__ import annotations

from typing import Optional

import math

import numpy as np

from ..graph import Node, Operand, apply
from .compare import equal, where
from .elementwise import _binary, _unary, add, div, mul, neg, sqrt, square, sub
from .nn import sigmoid
from .registry import Case

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _vectorized(f):
    """A float64 reference that applies the scalar ``f`` (from ``math``) element by element."""
    return np.vectorize(f, otypes=[np.float64])


# -- trigonometric and hyperbolic functions ---------------------------------------------------------
_unary("tan", np.tan, lambda node, g, i: mul(g, add(1, square(node))),
       reference=lambda x: np.sin(x) / np.cos(x), low=-1.2, high=1.2)
_unary("arcsin", np.arcsin, lambda node, g, i: div(g, sqrt(sub(1, square(node.inputs[0])))),
       reference=_vectorized(math.asin), low=-0.8, high=0.8)
_unary("arccos", np.arccos,
       lambda node, g, i: neg(div(g, sqrt(sub(1, square(node.inputs[0]))))),
       reference=_vectorized(math.acos), low=-0.8, high=0.8)
_unary("arctan", np.arctan, lambda node, g, i: div(g, add(1, square(node.inputs[0]))),
       reference=_vectorized(math.atan))
_unary("sinh", np.sinh, lambda node, g, i: mul(g, cosh(node.inputs[0])),
       reference=lambda x: (np.exp(x) - np.exp(-x)) / 2)
_unary("cosh", np.cosh, lambda node, g, i: mul(g, sinh(node.inputs[0])),
       reference=lambda x: (np.exp(x) + np.exp(-x)) / 2)
_unary("arcsinh", np.arcsinh, lambda node, g, i: div(g, sqrt(add(square(node.inputs[0]), 1))),
       reference=_vectorized(math.asinh))
_unary("arccosh", np.arccosh, lambda node, g, i: div(g, sqrt(sub(square(node.inputs[0]), 1))),
       reference=_vectorized(math.acosh), low=1.2, high=3.0)
_unary("arctanh", np.arctanh, lambda node, g, i: div(g, sub(1, square(node.inputs[0]))),
       reference=_vectorized(math.atanh), low=-0.8, high=0.8)

# -- exp and log variants ---------------------------------------------------------------------------
_unary("expm1", np.expm1, lambda node, g, i: mul(g, add(node, 1)),
       reference=_vectorized(math.expm1))
_unary("log2", np.log2, lambda node, g, i: div(g, mul(node.inputs[0], _LN2)),
       reference=lambda x: np.log(x) / _LN2, low=0.2, high=3.0)
_unary("log10", np.log10, lambda node, g, i: div(g, mul(node.inputs[0], _LN10)),
       reference=lambda x: np.log(x) / _LN10, low=0.2, high=3.0)
_unary("exp2", np.exp2, lambda node, g, i: mul(g, mul(node, _LN2)),
       reference=lambda x: np.exp(x * _LN2))
_unary("reciprocal", np.reciprocal, lambda node, g, i: neg(mul(g, square(node))),
       reference=lambda x: 1.0 / x, low=0.5, high=2.0,
       doc="1 / x (NumPy's: integer inputs stay integers).")
_unary("cbrt", np.cbrt, lambda node, g, i: div(g, mul(square(node), 3)),
       cases=[Case(((3, 4),), low=0.2, high=3.0, order=3), Case(((),), low=0.2, high=3.0),
              Case((np.array([-8.0, -0.3, 0.5, 27.0]),))],
       reference=lambda x: np.sign(x) * np.abs(x) ** (1 / 3),
       doc="The real cube root (negative for negative x).")


# -- binary functions -------------------------------------------------------------------------------
def _logaddexp_bprop(node, g, i):
    # d/da log(e^a + e^b) = e^a / (e^a + e^b) = sigmoid(a - b): bounded, never overflows
    a, b = node.inputs
    return mul(g, sigmoid(sub(a, b) if i == 0 else sub(b, a)))


def _hypot_bprop(node, g, i):
    # d/da sqrt(a^2 + b^2) = a / hypot; 0 at the origin (where the cone has no derivative)
    safe = where(equal(node, 0), 1, node)
    return mul(g, div(node.inputs[i], safe))


def _arctan2_bprop(node, g, i):
    y, x = node.inputs
    r2 = add(square(y), square(x))
    return mul(g, div(x, r2)) if i == 0 else neg(mul(g, div(y, r2)))


_PLANE = (np.array([[1.5, -0.7, 0.3], [-2.0, 0.9, -0.4]]),
          np.array([[0.6, 1.1, -1.8], [-0.5, -1.3, 0.8]]))  # every quadrant, away from 0

_binary("logaddexp", np.logaddexp, _logaddexp_bprop,
        cases=[Case(((3, 4), (3, 4)), order=3), Case(((3, 1), (4,))),
               Case((np.array([1e4, -1e4, 0.0]), np.array([1e4 - 1, 3.0, -800.0])), wrt=())],
        reference=lambda a, b: np.maximum(a, b) + np.log(1 + np.exp(-np.abs(a - b))),
        doc="log(exp(a) + exp(b)) without overflow; its derivative is sigmoid(a - b).")
_binary("hypot", np.hypot, _hypot_bprop,
        cases=[Case(_PLANE, order=3), Case(((3, 1), (4,)), low=0.5, high=2.0)],
        reference=lambda a, b: np.sqrt(a * a + b * b),
        doc="sqrt(a**2 + b**2) without overflow; the derivative at the origin is taken as 0.")
_binary("arctan2", np.arctan2, _arctan2_bprop,
        cases=[Case(_PLANE, order=3), Case(((3, 1), (4,)), low=0.5, high=2.0)],
        reference=_vectorized(math.atan2),
        doc="The angle of the point (x, y) (arguments y, x, like NumPy), in [-pi, pi].")


# -- builders ---------------------------------------------------------------------------------------
def tan(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise tangent."""
    return apply("tan", [x], name=name)


def arcsin(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise inverse sine, in [-pi/2, pi/2]."""
    return apply("arcsin", [x], name=name)


def arccos(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise inverse cosine, in [0, pi]."""
    return apply("arccos", [x], name=name)


def arctan(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise inverse tangent, in (-pi/2, pi/2)."""
    return apply("arctan", [x], name=name)


def arctan2(y: Operand, x: Operand, name: Optional[str] = None) -> Node:
    """The angle of the point ``(x, y)``, in ``[-pi, pi]`` (``y`` first, like ``numpy.arctan2``)."""
    return apply("arctan2", [y, x], name=name)


def sinh(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise hyperbolic sine."""
    return apply("sinh", [x], name=name)


def cosh(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise hyperbolic cosine."""
    return apply("cosh", [x], name=name)


def arcsinh(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise inverse hyperbolic sine."""
    return apply("arcsinh", [x], name=name)


def arccosh(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise inverse hyperbolic cosine (x >= 1)."""
    return apply("arccosh", [x], name=name)


def arctanh(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise inverse hyperbolic tangent (|x| < 1)."""
    return apply("arctanh", [x], name=name)


def expm1(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise ``exp(x) - 1``, accurate for small ``x``."""
    return apply("expm1", [x], name=name)


def log2(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise base-2 logarithm."""
    return apply("log2", [x], name=name)


def log10(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise base-10 logarithm."""
    return apply("log10", [x], name=name)


def exp2(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise ``2**x``."""
    return apply("exp2", [x], name=name)


def logaddexp(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``log(exp(a) + exp(b))`` computed without overflow (broadcasting)."""
    return apply("logaddexp", [a, b], name=name)


def hypot(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``sqrt(a**2 + b**2)`` computed without overflow (broadcasting); derivative 0 at 0."""
    return apply("hypot", [a, b], name=name)


def reciprocal(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise ``1 / x`` like ``numpy.reciprocal`` (integer inputs give integers)."""
    return apply("reciprocal", [x], name=name)


def cbrt(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise real cube root."""
    return apply("cbrt", [x], name=name)
