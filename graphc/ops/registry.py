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
``jvp(node, tangents) -> Node | None``
    Forward rule (optional; JAX's ``defjvp``): ``tangents[i]`` is None for an input that
    carries no tangent, else a node of shape ``batch + inputs[i].shape``; return the output's
    tangent (any shape that broadcasts to ``batch + node.shape``; the pass broadcasts, casts
    and adds). Without one, elementwise ops use their bprop (a diagonal Jacobian is its own
    transpose) and other ops the transpose of their bprop (see :mod:`graphc.forward`).
``structure`` and ``curvature``
    What :mod:`graphc.sparse` needs to know the sparsity of derivatives exactly: how output
    elements depend on input elements (``"elementwise"``, ``"select"``: each output element is
    a copy of one input element, ``"reduce"``/``"group"``: along ``axis``, ``"matmul"``,
    ``"reduce_to"``, or ``"dense"``: on everything, which is always safe) and whether the
    second derivative vanishes (``"linear"``, also for piecewise-linear ops), has only cross
    terms (``"bilinear"``) or not (``"nonlinear"``, the safe default).
``arity`` and ``attrs``
    How many inputs the op takes (an int, or ``(least, most)`` with ``most=None`` for any
    number) and its declared attrs: ``{name: check}`` with the checks of
    :mod:`graphc.ops.attrs`. Every node, built in Python or read from a file, is checked
    against both before ``infer`` runs; no kernel ever receives an undeclared attr. The
    default arity is read off ``infer``'s positional parameters.
``cases``
    The op's test domain: a list of :class:`Case`. The registry test checks every case's
    kernel against ``reference``, the inferred shape and dtype against the kernel's output, and
    first and second derivatives against central finite differences. An op without cases fails
    that test.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

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
    arity: tuple = (0, None)  # (least, most) inputs; most None: any number
    attrs: Mapping[str, Callable] = field(default_factory=dict)  # name -> check (ops/attrs.py)
    required: frozenset = frozenset()  # attrs without a default in the rule
    jvp: Optional[Callable] = None  # forward rule; None: derived from the bprop
    structure: str = "dense"  # how output elements depend on input elements (graphc.sparse)
    curvature: str = "nonlinear"  # "linear", "bilinear" or "nonlinear" (graphc.sparse)
    # user-defined ops (gc.define_op): g.run and compiled functions check each kernel output
    # against the inferred shape and dtype (built-in kernels are trusted: tested, and fast)
    checked: bool = False

    @property
    def differentiable(self) -> bool:
        return self.bprop is not None

    def check_call(self, count: int, attrs: Mapping) -> None:
        """``count`` inputs against the arity and the attr names against the declaration.

        Raises TypeError saying what is wrong; the node builder adds the op, the node and the
        user's line.
        """
        if attrs or self.required:
            unknown = sorted(map(str, set(attrs) - set(self.attrs)))
            if unknown:
                known = ", ".join(self.attrs) or "none"
                raise TypeError(f"unknown attrs {unknown} (declared: {known})")
            missing = sorted(self.required - set(attrs))
            if missing:
                raise TypeError(f"missing attrs {missing}")
        least, most = self.arity
        if count < least or (most is not None and count > most):
            wanted = (f"{least}" if least == most else
                      f"at least {least}" if most is None else f"{least} to {most}")
            raise TypeError(f"takes {wanted} inputs, got {count}")

    def checked_attrs(self, attrs: Mapping) -> dict:
        """The attrs a node stores (the rule's canonical form), each checked against its
        declaration: the kernel receives nothing else."""
        checked = {}
        for key, value in attrs.items():
            try:
                checked[key] = self.attrs[key](value)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"attr {key!r}: {exc}") from None
            except KeyError:
                raise TypeError(f"the rule made the undeclared attr {key!r}") from None
        return checked


REGISTRY: dict[str, Op] = {}


def define(name: str, *, infer, kernel, bprop=NOT_IMPLEMENTED, reference=None, cases=(),
           elementwise=False, inplace=False, doc="", arity=None, attrs=None, jvp=None,
           structure=None, curvature="nonlinear", checked=False) -> Op:
    """Register an op; each name is defined exactly once."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is defined twice")
    if arity is None:
        arity = _arity_of(infer)
    elif isinstance(arity, int):
        arity = (arity, arity)
    attrs = dict(attrs or {})
    required = _check_declaration(name, infer, attrs)
    op = Op(name, infer, kernel, bprop, reference, tuple(cases), elementwise, inplace, doc,
            tuple(arity), MappingProxyType(attrs), required, jvp,
            structure or ("elementwise" if elementwise else "dense"), curvature, checked)
    REGISTRY[name] = op
    return op


def _arity_of(infer) -> tuple:
    """``(least, most)`` inputs from the rule's positional parameters."""
    params = inspect.signature(infer).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    least = sum(p.default is p.empty for p in positional)
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    return least, None if variadic else len(positional)


def _check_declaration(name: str, infer, attrs: dict) -> frozenset:
    """The attrs the rule requires. A rule with named keyword parameters must declare exactly
    those attrs (catches drift between a rule and its declaration when an op is written)."""
    params = inspect.signature(infer).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return frozenset()
    named = {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    if named != set(attrs):
        raise ValueError(f"op {name!r}: infer takes attrs {sorted(named)} but declares "
                         f"{sorted(attrs)}")
    return frozenset(p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty)


def get(name: str) -> Op:
    """The op called ``name``; KeyError naming it when there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None
