"""Rounding, integer division and floating-point classification, with NumPy's names.

``floor``, ``ceil``, ``trunc``, ``round``, ``floor_divide`` and ``isnan``/``isfinite``/``isinf``
are piecewise constant: ``bprop=None`` (they pass zero gradient). ``mod`` (also called
``remainder``, as in NumPy, where both names are one ufunc) is ``a - floor(a / b) * b``: its
derivative is 1 with respect to ``a`` and ``-floor(a / b)`` with respect to ``b`` (away from
the jumps).
"""
from __future__ import annotations

from typing import Optional

import builtins  # round below shadows the builtin in this module
import math

import numpy as np

from ..graph import Node, Operand, apply
from .attrs import integer
from .common import elementwise_infer
from .elementwise import _binary, mul, neg
from .registry import Case, define


def _vectorized(f):
    return np.vectorize(f, otypes=[np.float64])


_HALVES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.7, 3.2, -0.0])
_INTS = np.array([[3, -2, 0], [7, -9, 1]])
_ROUNDING_CASES = [Case(((3, 4),), low=-5.0, high=5.0), Case((_HALVES,)), Case((_INTS,)),
                   Case(((),))]


def _piecewise_constant(name, ufunc, reference, doc):
    define(name, infer=elementwise_infer(ufunc), kernel=ufunc, bprop=None, arity=1,
           reference=reference, cases=_ROUNDING_CASES, elementwise=True, inplace=True, doc=doc)


_piecewise_constant("floor", np.floor, _vectorized(math.floor),
                    "The largest integer <= x (integer inputs stay integers); no derivative.")
_piecewise_constant("ceil", np.ceil, _vectorized(math.ceil),
                    "The smallest integer >= x; no derivative.")
_piecewise_constant("trunc", np.trunc, _vectorized(math.trunc),
                    "x rounded toward zero; no derivative.")


def _round_infer(x, *, decimals):
    return x.shape, np.round(np.zeros((), x.dtype), decimals).dtype


define("round", infer=_round_infer, attrs={"decimals": integer(-20, 20)},
       kernel=lambda x, *, decimals: np.round(x, decimals), bprop=None,
       reference=lambda x, *, decimals: _vectorized(lambda v: builtins.round(v, decimals))(x),
       cases=[Case(((3, 4),), attrs={"decimals": 0}, low=-5.0, high=5.0),
              Case((_HALVES,), attrs={"decimals": 0}),  # halves go to the even neighbour
              Case(((3, 4),), attrs={"decimals": 2}),
              Case((np.array([1234, -5678]),), attrs={"decimals": -2})],
       elementwise=True,
       doc="x rounded to `decimals` places, halves to even (numpy.round); no derivative.")

# -- mod / floor_divide: Python's sign convention (the result has b's sign), like NumPy ----------
_A = np.array([[3.3, -2.7, 5.1], [0.4, -0.6, 7.9]])
_B = np.array([[1.5, 1.5, -2.2], [0.7, 0.7, 2.5]])  # a / b stays away from integers
_DIVISION_CASES = [Case((_A, _B), order=3), Case((_A, np.array(0.75))),
                   Case((np.array([7, -7, 7, -7]), np.array([3, 3, -3, -3])))]


def _mod_bprop(node, g, i):
    a, b = node.inputs
    return g if i == 0 else neg(mul(g, floor_divide(a, b)))


_binary("mod", np.mod, _mod_bprop, cases=_DIVISION_CASES,
        reference=lambda a, b: a - np.floor(a / b) * b, curvature="linear",
        doc="The remainder a - floor(a/b) * b, with b's sign (numpy.mod, numpy.remainder).")
define("floor_divide", infer=elementwise_infer(np.floor_divide), kernel=np.floor_divide,
       bprop=None, arity=2, reference=lambda a, b: np.floor(a / b), cases=_DIVISION_CASES,
       elementwise=True, inplace=True, doc="floor(a / b) (Python's //); no derivative.")

# -- classification: bool results -----------------------------------------------------------------
_SPECIAL = np.array([0.0, np.nan, np.inf, -np.inf, -1.5, 2.0])
_CLASSIFY_CASES = [Case((_SPECIAL,)), Case((_INTS,)), Case(((3, 4),))]

define("isnan", infer=elementwise_infer(np.isnan), kernel=np.isnan, bprop=None, arity=1,
       reference=lambda x: x != x, cases=_CLASSIFY_CASES, elementwise=True,
       doc="Whether x is NaN (bool); no derivative.")
define("isinf", infer=elementwise_infer(np.isinf), kernel=np.isinf, bprop=None, arity=1,
       reference=lambda x: (x == np.inf) | (x == -np.inf), cases=_CLASSIFY_CASES,
       elementwise=True, doc="Whether x is +inf or -inf (bool); no derivative.")
define("isfinite", infer=elementwise_infer(np.isfinite), kernel=np.isfinite, bprop=None,
       arity=1, reference=lambda x: (x == x) & (x != np.inf) & (x != -np.inf),
       cases=_CLASSIFY_CASES, elementwise=True,
       doc="Whether x is neither NaN nor infinite (bool); no derivative.")


# -- builders ---------------------------------------------------------------------------------------
def floor(x: Operand, name: Optional[str] = None) -> Node:
    """The largest integer ``<= x`` elementwise; piecewise constant (no gradient)."""
    return apply("floor", [x], name=name)


def ceil(x: Operand, name: Optional[str] = None) -> Node:
    """The smallest integer ``>= x`` elementwise; piecewise constant (no gradient)."""
    return apply("ceil", [x], name=name)


def trunc(x: Operand, name: Optional[str] = None) -> Node:
    """``x`` rounded toward zero elementwise; piecewise constant (no gradient)."""
    return apply("trunc", [x], name=name)


def round(x: Operand, decimals: int = 0, name: Optional[str] = None) -> Node:
    """``x`` rounded to ``decimals`` places, halves to even, like ``numpy.round``; no gradient."""
    return apply("round", [x], {"decimals": decimals}, name=name)


def mod(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a % b`` with the sign of ``b``, like ``numpy.mod``. Its gradient is 1 with respect to
    ``a`` and ``-floor(a / b)`` with respect to ``b``."""
    return apply("mod", [a, b], name=name)


remainder = mod  # numpy.remainder is numpy.mod


def floor_divide(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a // b``, like ``numpy.floor_divide``; piecewise constant (no gradient)."""
    return apply("floor_divide", [a, b], name=name)


def isnan(x: Operand, name: Optional[str] = None) -> Node:
    """Whether each element is NaN (a bool node)."""
    return apply("isnan", [x], name=name)


def isinf(x: Operand, name: Optional[str] = None) -> Node:
    """Whether each element is +inf or -inf (a bool node)."""
    return apply("isinf", [x], name=name)


def isfinite(x: Operand, name: Optional[str] = None) -> Node:
    """Whether each element is finite (a bool node)."""
    return apply("isfinite", [x], name=name)
