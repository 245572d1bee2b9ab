"""Your own ops: ``gc.define_op`` registers a kernel op with the built-in op contract.

The callbacks are exactly those of :func:`graphc.ops.registry.define` (read its docstring):
``infer(*inputs, **attrs) -> (shape, dtype)`` on nodes, ``kernel(*arrays, **attrs)``,
``bprop(node, g, i) -> Node | None`` and the optional forward rule ``jvp(node, tangents)``. A
user's op differs from a built-in one in three ways only:

- its rules are watched: a bprop or jvp that returns an array instead of a node, a node of
  a shape that cannot be the input's, or builds an op nobody registered, raises a
  :class:`GraphcError` naming the op, the node and the input;
- its kernel is watched too: ``g.run`` and compiled functions check every output against
  the shape and dtype the rule inferred (built-in kernels are trusted, so they stay fast);
- it has a ``version``, saved with the graphs that use it (see :func:`graphc.load`'s
  ``ops=``): a file names the op and its version, never its code.

``gc.testing.check_op`` runs the registry test on it.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Optional, Sequence

from .errors import GraphcError, ShapeError, describe
from .graph import Node, apply
from .ops import registry
from .shapes import fmt

#: name -> version of every op registered through define_op (the rest are built in).
USER_OPS: dict[str, int] = {}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def define_op(name: str, *, infer: Callable, kernel: Callable, bprop: Optional[Callable] = None,
              jvp: Optional[Callable] = None, attrs: Optional[Mapping[str, Callable]] = None,
              arity: Optional[int] = None, reference: Optional[Callable] = None,
              cases: Sequence[registry.Case] = (), elementwise: bool = False,
              version: int = 1, doc: str = "") -> Callable[..., Node]:
    """Register the op ``name`` and return its builder: ``builder(*inputs, name=None,
    **attrs)`` builds one node (inputs may be nodes, arrays or scalars, like any op's).

    ``attrs`` declares the op's attrs with the checks of :mod:`graphc.ops.attrs`
    (``{"k": integer(1)}``); ``infer``'s keyword-only parameters must be exactly those.
    ``bprop=None`` makes the op non-differentiable (it passes zero gradient); without a
    ``jvp``, forward mode uses the bprop (see :mod:`graphc.forward`). ``reference`` and
    ``cases`` (:class:`graphc.ops.registry.Case`) are what :func:`graphc.testing.check_op`
    tests. Defining a user op again replaces it (re-running a notebook cell); a built-in
    op's name cannot be taken.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise GraphcError(f"define_op: an op name is a Python identifier, "
                          f"not {name!r}")
    if name in registry.REGISTRY and name not in USER_OPS:
        raise GraphcError(f"define_op: {name!r} is a built-in op; choose another name "
                          f"(e.g. 'my_{name}')")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GraphcError(f"define_op {name!r}: version must be a positive integer, not "
                          f"{version!r}")
    for label, fn in (("infer", infer), ("kernel", kernel), ("bprop", bprop), ("jvp", jvp),
                      ("reference", reference)):
        if fn is not None and not callable(fn):
            raise GraphcError(f"define_op {name!r}: {label} must be callable, not "
                              f"{type(fn).__name__}")
    if attrs and "name" in attrs:
        raise GraphcError(f"define_op {name!r}: 'name' cannot be an attr (it names the node)")
    previous = registry.REGISTRY.pop(name, None)
    try:
        registry.define(name, infer=infer, kernel=kernel,
                        bprop=None if bprop is None else _watched_bprop(name, bprop),
                        jvp=None if jvp is None else _watched_jvp(name, jvp),
                        reference=reference, cases=tuple(cases), elementwise=elementwise,
                        doc=doc, arity=arity, attrs=attrs, checked=True)
    except ValueError as exc:  # a rule whose parameters do not match its declared attrs
        if previous is not None:
            registry.REGISTRY[name] = previous
        raise GraphcError(f"define_op: {exc}") from None
    USER_OPS[name] = version
    return builder(name)


def builder(op_name: str) -> Callable[..., Node]:
    """The function that builds ``op_name`` nodes (what :func:`define_op` returns)."""
    def build_node(*inputs, name: Optional[str] = None, **attrs) -> Node:
        return apply(op_name, inputs, attrs, name)

    op = registry.get(op_name)
    build_node.__name__ = build_node.__qualname__ = op_name
    build_node.__doc__ = op.doc or f"Build a {op_name!r} node (an op made with gc.define_op)."
    build_node.op = op_name
    build_node.version = USER_OPS.get(op_name)
    return build_node


def op_name_of(op) -> str:
    """The op name behind a builder (``define_op``'s result) or a name."""
    from .composite import Composite
    if isinstance(op, str):
        return op
    if isinstance(op, Composite):
        raise GraphcError(f"the composite {op.name!r} is not a registered op: graphs save it "
                          "as its body (nothing to register), and gc.check_gradients checks "
                          "its derivatives on a call")
    name = getattr(op, "op", None)
    if isinstance(name, str):
        return name
    raise GraphcError(f"expected an op name or the builder gc.define_op returned, not "
                      f"{type(op).__name__}")


def _watched_bprop(op_name: str, bprop: Callable) -> Callable:
    def watched(node: Node, g: Node, i: int):
        part = _call_rule(op_name, "bprop", bprop, node, (node, g, i), f"input {i}")
        if part is not None:
            _check_part(op_name, "bprop", node, part, node.inputs[i], g.ndim - node.ndim,
                        f"input {i}")
        return part
    return watched


def _watched_jvp(op_name: str, jvp: Callable) -> Callable:
    def watched(node: Node, tangents: list):
        part = _call_rule(op_name, "jvp", jvp, node, (node, tangents), "the output")
        if part is not None:
            t = next(t for t in tangents if t is not None)
            batch = t.ndim - node.inputs[tangents.index(t)].ndim
            _check_part(op_name, "jvp", node, part, node, batch, "the output")
        return part
    return watched


def _call_rule(op_name, rule, fn, node, args, what):
    try:
        return fn(*args)
    except GraphcError:
        raise
    except KeyError as exc:  # graph.build's lookup: the rule built an op nobody registered
        if str(exc.args[0] if exc.args else "").startswith("unknown op"):
            raise GraphcError(f"the {rule} of op {op_name!r} (for {what} of {describe(node)}) "
                              f"builds an {exc.args[0]}: a rule may use registered ops only "
                              "(define it with gc.define_op first)") from None
        raise


def _check_part(op_name, rule, node, part, like: Node, batch: int, what: str) -> None:
    """A rule's result must be a node of ``node``'s graph whose shape sums (or broadcasts)
    to ``batch + like.shape``."""
    if not isinstance(part, Node):
        raise GraphcError(f"the {rule} of op {op_name!r} returned a {type(part).__name__} for "
                          f"{what} of {describe(node)}; a rule returns a graphc node (build it "
                          "with graphc ops on the nodes it is given) or None")
    if part.graph is not node.graph:
        raise GraphcError(f"the {rule} of op {op_name!r} returned a node of another graph for "
                          f"{what} of {describe(node)}")
    want = (None,) * batch + like.shape
    if part.ndim > len(want) and rule == "jvp":
        bad = True
    else:
        bad = any(have is not None and w is not None and have not in (w, 1) and w != 1
                  for have, w in zip(part.shape[::-1], want[::-1]))
    if bad:
        raise ShapeError(f"the {rule} of op {op_name!r} returned shape {fmt(part.shape)} for "
                         f"{what} of {describe(node)}, which cannot be {fmt(want)} (None: the "
                         "cotangent's batch dimensions)")
