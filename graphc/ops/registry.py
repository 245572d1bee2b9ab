"""The op registry: every op is defined once, with its shape/dtype rule, kernel and bprop.

The gradient pass, the executor, the compiler, the exporters and the tests all read ops from
:data:`REGISTRY`; a pass that needs a rule an op lacks fails naming the op.

The op contract
---------------
``infer(*inputs, **attrs) -> (shape, dtype)``
    Static rule. ``inputs`` are :class:`~graphc.Node` objects (read ``.shape``, ``.dtype``,
    ``.attrs``). Raise :class:`ShapeError`/:class:`DTypeError` with a plain message; the node
    builder adds the op, the node and the user's file and line. A rule may return
    ``(shape, dtype, attrs)`` to put the attrs in canonical form (``axis=-1`` as ``(1,)``).
``kernel(*values, **attrs) -> ndarray``
    The NumPy implementation. It must return exactly the inferred dtype, and must not modify its
    inputs. When ``inplace`` is set the kernel accepts ``out=`` and otherwise returns a new
    array (the compiler reuses dying buffers); ``elementwise`` marks broadcasting elementwise
    ops (the gradient pass reads it to spot run-time broadcasting of ``None`` sizes).
``bprop(node, g, i) -> Node | None``
    Back-propagation rule (the book's ``op.bprop``): given the forward node (its inputs are
    ``node.inputs``, the node itself is the forward output), ``g``, the gradient of the cost
    with respect to ``node``, and the position ``i`` of an input, return that input's
    contribution: a node, or ``None`` for "contributes nothing". The gradient pass asks only
    for the inputs that carry gradient. Rules build graph nodes only, never arrays, and emit
    registered, differentiable ops only, so every order of derivative works.
    ``g`` may carry extra *leading* batch dimensions (``g.shape == batch + node.shape``), which
    is how Jacobians and Hessians seed many directions at once: rules use negative axes and
    NumPy broadcasting so that they work for any batch, whose sizes may be ``None``. A
    contribution may have any shape that sums to the input's (broadcast dimensions are reduced
    by the gradient pass, which also casts to the input's dtype and adds the contributions of
    several consumers).
    ``bprop=None`` means the op has no derivative (comparisons, sign, casts to int): it passes
    zero gradient. Ops whose rule was never written raise at gradient-build time.
``cases``
    The op's test domain: a list of :class:`Case`. The registry test checks every case's
    kernel against ``reference``, the inferred shape and dtype against the kernel's output, and
    first and second derivatives against central finite differences. An op without cases fails
    that test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

#: Marker for a bprop that was never written (distinct from ``None``: not differentiable).
NOT_IMPLEMENTED = "not implemented"


@dataclass(frozen=True)
class Case:
    """One test point of an op: input shapes (random floats) or concrete arrays, and attrs.

    ``low``/``high`` bound the random inputs (keep away from kinks and poles); ``wrt`` lists the
    inputs to differentiate (default: every float input); ``ref`` overrides the op's reference.
    """

    inputs: tuple
    attrs: dict = field(default_factory=dict)
    low: float = -2.0
    high: float = 2.0
    wrt: Optional[tuple] = None
    ref: Optional[Callable] = None
    order: int = 2  # highest derivative order to check (3 for smooth ops)


@dataclass(frozen=True)
class Op:
    """One registered op: its rules, its test domain and the flags the compiler reads."""

    name: str
    infer: Callable[..., tuple]
    kernel: Optional[Callable[..., Any]]
    bprop: Any = NOT_IMPLEMENTED
    reference: Optional[Callable] = None  # independent NumPy/closed-form oracle for the tests
    cases: tuple = ()
    elementwise: bool = False  # output element i depends on input elements i (broadcasting)
    inplace: bool = False  # kernel accepts out= and returns a new array (buffer reuse)
    doc: str = ""

    @property
    def differentiable(self) -> bool:
        return self.bprop is not None


REGISTRY: dict[str, Op] = {}


def define(name: str, *, infer, kernel, bprop=NOT_IMPLEMENTED, reference=None, cases=(),
           elementwise=False, inplace=False, doc="") -> Op:
    """Register an op; each name is defined exactly once."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is defined twice")
    op = Op(name, infer, kernel, bprop, reference, tuple(cases), elementwise, inplace, doc)
    REGISTRY[name] = op
    return op


def get(name: str) -> Op:
    """The op called ``name``; KeyError naming it when there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None
