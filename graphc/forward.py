"""Forward mode, symbol to symbol: Jacobian-vector products as nodes of the same graph.

``jvp(y, x, v)`` pushes a tangent ``v`` (``x``'s shape, with optional leading batch
dimensions: many directions in one pass) forward through the ops between ``x`` and ``y``, in
creation order, and returns ``J v``, the linearisation of y at x applied to v. Each op's rule is
looked up in the registry, as ``gradients`` looks up bprops:

1. ``op.jvp(node, tangents)``, when the op has one (``tangents[i]`` is None for an input that
   carries no tangent, else a node of shape ``batch + inputs[i].shape``);
2. for elementwise ops, the bprop itself: their Jacobian is diagonal, so the contribution of
   input i along tangent t is the bprop applied to t;
3. otherwise the transpose of the bprop (the "double vjp"): the bprop is linear in its
   cotangent u, so J v is the gradient of <bprop(u), v> with respect to u. The forward part of
   that construction is dead in the result, and the compiler prunes it.

The pass broadcasts each contribution to ``batch + node.shape``, casts it to the node's dtype
and adds the contributions of several inputs. Every rule emits registered ops, so the result
can be differentiated again, in either mode, to any order.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .errors import DTypeError, GraphcError, ShapeError, describe
from .graph import Node, as_node
from .ops import registry
from .ops.broadcast import broadcast_like, broadcast_to
from .ops.elementwise import add
from .ops.shape import expand_dims
from .ops.special import cast, zeros_like
from .shapes import fmt


def _is_float(node: Node) -> bool:
    return np.issubdtype(node.dtype, np.floating)


def jvp(ys: Any, xs: Any, tangents: Any) -> Any:
    """Directional derivatives of ``ys`` along ``tangents`` at ``xs``: nodes of the same graph.

    ``ys`` and ``xs`` are a node or a list of nodes; ``tangents`` has one entry per x (a node,
    an array or a scalar), of shape ``batch + x.shape`` with the same leading ``batch`` for
    every x. The result has ys's structure, each entry of shape ``batch + y.shape`` (a zero
    node where y does not depend on any x).
    """
    single_y = isinstance(ys, Node)
    ys_list = [ys] if single_y else list(ys)
    xs_list = [xs] if isinstance(xs, Node) else list(xs)
    if not isinstance(tangents, (list, tuple)):
        tangents = [tangents]
    if not ys_list or not all(isinstance(y, Node) for y in ys_list + xs_list):
        raise GraphcError("jvp: ys and xs must be graphc nodes (or lists of them)")
    if len(tangents) != len(xs_list):
        raise GraphcError(f"jvp: {len(xs_list)} xs but {len(tangents)} tangents")
    graph = ys_list[0].graph
    for node in ys_list + xs_list:
        if node.graph is not graph:
            raise GraphcError(f"jvp: {describe(node)} belongs to another graph")
    for x in xs_list:
        if not _is_float(x):
            raise DTypeError(f"jvp: cannot differentiate with respect to {describe(x)} of "
                             f"dtype {x.dtype}; only float nodes have tangents")
    start = len(graph)  # every node from here on is this call's: those unused are dropped
    seeds = [_seed(x, t) for x, t in zip(xs_list, tangents)]
    batches = {s.ndim - x.ndim for s, x in zip(seeds, xs_list)}
    if len(batches) != 1:
        raise ShapeError("jvp: every tangent must carry the same number of leading batch "
                         "dimensions")
    level = max(n.derivative for n in ys_list + xs_list + seeds) + 1
    with graph._deriving(level):
        out = push_forward(ys_list, xs_list, seeds)
    # the transposed bprops' forward halves and unused seeds are dead in the result
    from .autodiff import _only_used
    _only_used(graph, start, out)
    return out[0] if single_y else out


def _seed(x: Node, tangent) -> Node:
    t = as_node(x.graph, tangent)
    lead = t.ndim - x.ndim
    if lead < 0 or any(a is not None and b is not None and a != b
                       for a, b in zip(t.shape[lead:], x.shape)):
        raise ShapeError(f"jvp: a tangent of shape {fmt(t.shape)} does not fit {describe(x)} "
                         f"of shape {fmt(x.shape)} (leading batch dimensions allowed)")
    return t if t.dtype == x.dtype else cast(t, x.dtype)


def push_forward(ys: list, xs: list, seeds: list) -> list:
    """The forward sweep: a tangent for every node between the xs and each y."""
    graph = ys[0].graph
    batch = seeds[0].ndim - xs[0].ndim
    table: dict[int, Node] = {}
    for x, s in zip(xs, seeds):
        table[x.id] = s if x.id not in table else add(table[x.id], s)
    start, stop = min(x.id for x in xs), max(y.id for y in ys)
    span = graph._nodes[start:stop + 1]
    needed = {y.id for y in ys}  # prune to the ancestors of the ys (G' of build_grad)
    for node in reversed(span):
        if node.id in needed:
            needed.update(x.id for x in node.inputs)
    for node in span:
        if node.id in table or node.id not in needed or not _is_float(node):
            continue
        tangents = [table.get(x.id) for x in node.inputs]
        if all(t is None for t in tangents):
            continue
        t = _tangent(node, tangents, batch)
        if t is not None:
            table[node.id] = t
    out = []
    for y in ys:
        t = table.get(y.id)
        out.append(t if t is not None else _zeros(y, seeds[0], batch))
    return out


def _tangent(node: Node, tangents: list, batch: int) -> Optional[Node]:
    """The tangent of ``node`` (shape ``batch + node.shape``), or None for zero."""
    op = registry.REGISTRY[node.op]
    if op.bprop is None:  # not differentiable: zero tangent (comparisons, sign, stop_gradient)
        return None
    if op.bprop is registry.NOT_IMPLEMENTED:
        raise GraphcError(f"jvp: the op {node.op!r} has no derivative rule yet, needed for "
                          f"{describe(node)}")
    if op.jvp is not None:
        parts = [op.jvp(node, tangents)]
    elif op.elementwise:
        parts = [op.bprop(node, _aligned(t, x, node, batch), i)
                 for i, (t, x) in enumerate(zip(tangents, node.inputs)) if t is not None]
    else:
        parts = [transposed_bprop(node, i, t)
                 for i, t in enumerate(tangents) if t is not None]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    total = parts[0]
    for p in parts[1:]:
        total = add(total, p)
    # sizes known only at run time may still be broadcast by an elementwise op
    hidden = op.elementwise and len(node.inputs) > 1 and None in node.shape
    return _fit(total, node, batch, hidden)


def _aligned(t: Node, x: Node, node: Node, batch: int) -> Node:
    """``t`` (``batch + x.shape``) with ones inserted after the batch, so that it broadcasts
    against ``node`` the way x did (an elementwise rule lines dimensions up from the right)."""
    missing = node.ndim - x.ndim
    if batch == 0 or missing <= 0:
        return t
    return expand_dims(t, tuple(range(batch, batch + missing)))


def _fit(t: Node, node: Node, batch: int, hidden: bool = False) -> Node:
    """Broadcast a contribution to ``batch + node.shape`` and cast it to node's dtype
    (``hidden``: the shapes may agree statically and still differ at run time)."""
    want_known = None not in node.shape and None not in t.shape[:batch]
    if hidden or t.ndim != batch + node.ndim or t.shape[batch:] != node.shape:
        if want_known:
            t = broadcast_to(t, t.shape[:batch] + node.shape)
        else:
            t = broadcast_like(t, node)
    if t.dtype != node.dtype:
        t = cast(t, node.dtype)
    return t


def transposed_bprop(node: Node, i: int, t: Node) -> Node:
    """``J_i t`` from the bprop alone: the gradient of ``<bprop(node, u, i), t>`` with respect
    to a cotangent u (the rule is linear in u, so the result does not depend on u's value)."""
    from .autodiff import _fit as fit_to_input, build_grad

    op = registry.REGISTRY[node.op]
    x = node.inputs[i]
    u = zeros_like(node)
    part = op.bprop(node, u, i)
    if part is None:
        return None
    part = fit_to_input(part, x, node, 0)
    (result,) = build_grad(part, [u], t, unconnected="none")
    return result


def _zeros(y: Node, seed: Node, batch: int) -> Node:
    from .autodiff import _zeros as reverse_zeros
    return reverse_zeros(y, seed, batch)


def fallback_ops() -> list:
    """The differentiable ops whose tangent comes from the transposed bprop (no forward rule
    of their own and not elementwise): a list of names, for the docs and the curious."""
    return sorted(name for name, op in registry.REGISTRY.items()
                  if op.jvp is None and not op.elementwise and op.bprop is not None
                  and op.bprop is not registry.NOT_IMPLEMENTED)
