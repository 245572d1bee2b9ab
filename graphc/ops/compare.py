"""Comparisons, logical ops and ``where`` (NumPy broadcasting).

Comparisons and logical ops give bool results and have no derivative (``bprop=None``: they pass
zero gradient). ``where`` routes the cotangent to the branch that was chosen; its condition gets
nothing. Rules address dimensions from the right, so a cotangent may carry leading batch
dimensions.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import GraphcError
from ..graph import Node, Operand, apply, user_site
from ..shapes import broadcast_shapes
from .common import elementwise_infer, probe
from .registry import Case, define

# Concrete inputs with ties, so that equal/less_equal/... see every outcome.
_A = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]])
_B = np.array([[1.0, 0.0, 4.0], [-1.0, 0.5, 2.0]])
_COMPARE_CASES = [
    Case((_A, _B)),
    Case((_A, np.array([2.0, 0.0, 3.0]))),  # broadcasting, ties in places
    Case(((3, 4), ())),
    Case((np.array([1, 2, 3]), np.array([3, 2, 1]))),  # integers
]


def _compare(name, ufunc, doc):
    define(name, infer=elementwise_infer(ufunc), kernel=ufunc, bprop=None, reference=ufunc,
           arity=2,            cases=_COMPARE_CASES, elementwise=True, inplace=True, doc=doc)


_compare("less", np.less, "a < b, elementwise (bool).")
_compare("less_equal", np.less_equal, "a <= b, elementwise (bool).")
_compare("greater", np.greater, "a > b, elementwise (bool).")
_compare("greater_equal", np.greater_equal, "a >= b, elementwise (bool).")
_compare("equal", np.equal, "a == b, elementwise (bool).")
_compare("not_equal", np.not_equal, "a != b, elementwise (bool).")

# -- logical ops: truth values (nonzero is true), bool results ---------------------------------
_P = np.array([[True, False, True], [False, False, True]])
_Q = np.array([[True, True, False], [False, True, True]])

define("logical_not", infer=elementwise_infer(np.logical_not), kernel=np.logical_not, bprop=None,
       arity=1, reference=lambda x: x == 0, cases=[Case((_P,)), Case(((3, 4),))],
       elementwise=True, inplace=True)
define("logical_and", infer=elementwise_infer(np.logical_and), kernel=np.logical_and, bprop=None,
       arity=2, reference=lambda a, b: (a != 0) & (b != 0),
       cases=[Case((_P, _Q)), Case((_P, np.array([True, False, True])))],
       elementwise=True, inplace=True)
define("logical_or", infer=elementwise_infer(np.logical_or), kernel=np.logical_or, bprop=None,
       arity=2, reference=lambda a, b: (a != 0) | (b != 0),
       cases=[Case((_P, _Q)), Case((_P, np.array(False)))],
       elementwise=True, inplace=True)


# -- where --------------------------------------------------------------------------------------
def _where_infer(cond, a, b):
    shape = broadcast_shapes(cond.shape, a.shape, b.shape)
    return shape, probe(np.where, [cond, a, b])


def _where_bprop(node, g, i):
    # The chosen branch gets g, the other one zero (a weak 0 keeps g's dtype); cond gets nothing.
    cond = node.inputs[0]
    if i == 0:
        return None
    return where(cond, g, 0) if i == 1 else where(cond, 0, g)


def _where_reference(cond, a, b):
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    cond, a, b = (np.broadcast_to(v, shape) for v in (cond, a, b))
    out = np.empty(shape, np.result_type(a, b))
    for index in np.ndindex(shape):
        out[index] = a[index] if cond[index] else b[index]
    return out


define("where", infer=_where_infer, kernel=np.where, bprop=_where_bprop, curvature="linear",
       reference=_where_reference,
       cases=[Case((_P, (2, 3), (2, 3)), order=3),
              Case((np.array([True, False, True]), (2, 3), ())),  # cond and b broadcast
              Case((_P[:, :1], (3,), (2, 1)))],  # every input broadcast
       elementwise=True,
       doc="Elementwise choice: a where cond is true, else b (broadcasting).")


# -- builders -----------------------------------------------------------------------------------
def _no_python_bool(op: str, *conditions) -> None:
    """A condition that is a Python bool is almost always ``node == value`` or ``node != value``,
    which compare nodes by identity (so nodes can be dict keys): refuse it, naming gc.equal."""
    for what, value in conditions:
        if isinstance(value, (bool, np.bool_)):
            raise GraphcError(
                f"{op}: {what} is the Python bool {bool(value)}, not a node; "
                f"`node == value` and `node != value` compare identity in Python, so use "
                f"gc.equal(x, value) or gc.not_equal(x, value) for an elementwise comparison; "
                f"called at {user_site()}")


def less(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a < b`` elementwise, with broadcasting; a bool node without gradient."""
    return apply("less", [a, b], name=name)


def less_equal(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a <= b`` elementwise, with broadcasting; a bool node without gradient."""
    return apply("less_equal", [a, b], name=name)


def greater(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a > b`` elementwise, with broadcasting; a bool node without gradient."""
    return apply("greater", [a, b], name=name)


def greater_equal(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a >= b`` elementwise, with broadcasting; a bool node without gradient."""
    return apply("greater_equal", [a, b], name=name)


def equal(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a == b`` elementwise, with broadcasting; a bool node without gradient.

    (``node == other`` stays Python identity, so that nodes can be dict keys.)
    """
    return apply("equal", [a, b], name=name)


def not_equal(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a != b`` elementwise, with broadcasting; a bool node without gradient."""
    return apply("not_equal", [a, b], name=name)


def logical_not(x: Operand, name: Optional[str] = None) -> Node:
    """Elementwise logical NOT (nonzero counts as true); a bool node."""
    _no_python_bool("logical_not", ("the input", x))
    return apply("logical_not", [x], name=name)


def logical_and(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """Elementwise logical AND (nonzero counts as true), with broadcasting; a bool node."""
    _no_python_bool("logical_and", ("input a", a), ("input b", b))
    return apply("logical_and", [a, b], name=name)


def logical_or(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """Elementwise logical OR (nonzero counts as true), with broadcasting; a bool node."""
    _no_python_bool("logical_or", ("input a", a), ("input b", b))
    return apply("logical_or", [a, b], name=name)


def where(cond: Operand, a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``a`` where ``cond`` is true, else ``b``, like ``numpy.where`` (all three broadcast).

    The gradient flows to the chosen branch only; ``cond`` gets none.
    """
    _no_python_bool("where", ("the condition", cond))
    return apply("where", [cond, a, b], name=name)
