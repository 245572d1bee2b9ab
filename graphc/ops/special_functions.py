"""Special functions from ``scipy.special``: ``erf``, ``erfc``, ``erfinv``, ``gammaln``,
``digamma`` and ``polygamma``.

The derivative chains close on registered ops: ``gammaln' = digamma``, ``digamma' =
polygamma(1, .)`` and ``polygamma(n, .)' = polygamma(n + 1, .)``, so every order works; the
error functions differentiate to ``exp``. References are independent implementations (the
standard library's ``math`` and mpmath's arbitrary-precision functions).
"""
from __future__ import annotations

from typing import Optional

import math

import mpmath
import numpy as np
from scipy import special

from ..graph import Node, Operand, apply
from ..shapes import float_dtype
from .attrs import integer
from .elementwise import exp, mul, neg, square
from .nn import _as_float, _float_unary_infer
from .registry import Case, define

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _vectorized(f):
    return np.vectorize(lambda v: float(f(v)), otypes=[np.float64])


def _float_kernel(f):
    """``f`` on floats, in the float dtype the rule gives (SciPy may compute wider)."""
    def kernel(x):
        x = _as_float(x)
        return np.asarray(f(x)).astype(x.dtype, copy=False)
    return kernel


def _special(name, f, bprop, reference, low, high, doc, ints=(1, 2)):
    define(name, infer=_float_unary_infer, kernel=_float_kernel(f), bprop=bprop,
           reference=reference,
           cases=[Case(((3, 4),), low=low, high=high, order=3), Case(((),), low=low, high=high),
                  Case((np.array(ints),))],
           elementwise=True, doc=doc)


_special("erf", special.erf,
         lambda node, g, i: mul(g, mul(exp(neg(square(node.inputs[0]))), _TWO_OVER_SQRT_PI)),
         _vectorized(math.erf), -2.0, 2.0, "The error function 2/sqrt(pi) int_0^x exp(-t^2) dt.")
_special("erfc", special.erfc,
         lambda node, g, i: neg(mul(g, mul(exp(neg(square(node.inputs[0]))),
                                           _TWO_OVER_SQRT_PI))),
         _vectorized(math.erfc), -2.0, 2.0, "1 - erf(x), accurate where erf(x) is near 1.")
_special("erfinv", special.erfinv,
         lambda node, g, i: mul(g, mul(exp(square(node)), 1.0 / _TWO_OVER_SQRT_PI)),
         _vectorized(mpmath.erfinv), -0.9, 0.9, "The inverse of erf on (-1, 1).", ints=(0, 0))
_special("gammaln", special.gammaln, lambda node, g, i: mul(g, digamma(node.inputs[0])),
         _vectorized(math.lgamma), 0.5, 4.0, "log |Gamma(x)|; its derivative is digamma.")
_special("digamma", special.digamma, lambda node, g, i: mul(g, polygamma(1, node.inputs[0])),
         _vectorized(mpmath.digamma), 0.5, 4.0,
         "The digamma function Gamma'(x) / Gamma(x); its derivative is polygamma(1, x).")


def _polygamma_infer(x, *, n):
    return _float_unary_infer(x)


def _polygamma_kernel(x, *, n):
    x = _as_float(x)
    return np.asarray(special.polygamma(n, x)).astype(float_dtype(x.dtype), copy=False)


define("polygamma", infer=_polygamma_infer, attrs={"n": integer(0)}, kernel=_polygamma_kernel,
       bprop=lambda node, g, i: mul(g, polygamma(node.attrs["n"] + 1, node.inputs[0])),
       reference=lambda x, *, n: _vectorized(lambda v: mpmath.polygamma(n, v))(x),
       cases=[Case(((3, 4),), attrs={"n": 1}, low=0.5, high=4.0, order=3),
              Case(((),), attrs={"n": 0}, low=0.5, high=4.0),
              Case(((2, 3),), attrs={"n": 3}, low=0.5, high=4.0)],
       elementwise=True,
       doc="The n-th derivative of digamma (n an attr); its derivative is polygamma(n + 1, x).")


# -- builders ---------------------------------------------------------------------------------------
def erf(x: Operand, name: Optional[str] = None) -> Node:
    """The error function, elementwise (``scipy.special.erf``)."""
    return apply("erf", [x], name=name)


def erfc(x: Operand, name: Optional[str] = None) -> Node:
    """The complementary error function ``1 - erf(x)``, elementwise (``scipy.special.erfc``)."""
    return apply("erfc", [x], name=name)


def erfinv(x: Operand, name: Optional[str] = None) -> Node:
    """The inverse error function on ``(-1, 1)``, elementwise (``scipy.special.erfinv``)."""
    return apply("erfinv", [x], name=name)


def gammaln(x: Operand, name: Optional[str] = None) -> Node:
    """``log |Gamma(x)|``, elementwise (``scipy.special.gammaln``); derivative ``digamma``."""
    return apply("gammaln", [x], name=name)


def digamma(x: Operand, name: Optional[str] = None) -> Node:
    """The digamma function ``d/dx log Gamma(x)`` (``scipy.special.digamma``)."""
    return apply("digamma", [x], name=name)


def polygamma(n: int, x: Operand, name: Optional[str] = None) -> Node:
    """The ``n``-th derivative of digamma (``scipy.special.polygamma``); ``n`` is a static int."""
    return apply("polygamma", [x], {"n": n}, name=name)
