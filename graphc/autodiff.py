"""Symbol-to-symbol back-propagation: the Deep Learning Book's ``build_grad`` (Alg. 6.5/6.6).

Given a cost node ``y`` and targets ``xs`` of a graph G:

1. **Prune** G to G': the nodes that are descendants of some x and ancestors of y. Edges into
   ``stop_at`` nodes and ``stop_gradient`` ops are cut (their inputs look constant); edges into
   non-differentiable ops (comparisons, sign, casts to int) carry zero.
2. **grad_table**: walk G' from y towards the xs in reverse creation order (creation order is
   topological, so when a node is reached every consumer has been handled). For each node,
   ask each consumer's ``bprop`` for the contribution along that edge; the node's gradient is
   the sum of the contributions, in a fixed order (consumers by creation, then input index).
3. The chores every rule would otherwise repeat live here, once: summing a broadcast
   contribution back to the input's shape, casting it to the input's dtype, skipping inputs
   that contribute nothing.

All new nodes are appended to the same graph, so the result can be differentiated again.
The work is linear in the edges of G'. The cotangent may carry leading batch dimensions, which
is how :func:`jacobian` (and :mod:`graphc.jacobians` on top of it) seeds many directions in one
pass.
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Sequence, Union

import numpy as np

from .errors import DisconnectedGradientError, DTypeError, GraphcError, ShapeError, describe
from .graph import Node, as_node, build, has_fresh_name
from .ops import registry
from .ops.broadcast import broadcast_like, broadcast_to, sum_to
from .ops.elementwise import add, mul
from .ops.reduce import sum as reduce_sum
from .ops.shape import expand_dims
from .ops.special import cast, eye_like, zeros_like
from .shapes import fmt, size

_UNCONNECTED = ("zero", "none", "raise")


def _is_float(node: Node) -> bool:
    return node.dtype.kind == "f"


def gradients(y: Node, xs: Union[Node, Sequence[Node]], grad_y: Any = None, *,
              stop_at: Sequence[Node] = (), unconnected: str = "zero") -> list:
    """Symbolic gradients of ``y`` with respect to each of ``xs``, as nodes of y's graph.

    ``y`` must be a scalar unless ``grad_y`` (the cotangent, y's shape) is given. ``xs`` may be
    placeholders, variables or intermediate nodes; ``stop_at`` nodes are held constant.
    ``unconnected`` says what an x that y does not depend on gets: ``"zero"`` a zeros node,
    ``"none"`` ``None``, ``"raise"`` a :class:`DisconnectedGradientError`.
    """
    if isinstance(xs, Node):
        xs = [xs]
    if isinstance(stop_at, Node):
        stop_at = [stop_at]
    xs, stop_at = list(xs), list(stop_at)
    if unconnected not in _UNCONNECTED:
        raise GraphcError(f"gradients: unconnected must be one of {_UNCONNECTED}, not "
                          f"{unconnected!r}")
    if not isinstance(y, Node):
        raise GraphcError(f"gradients: y must be a graphc Node, not {type(y).__name__}")
    for x in xs:
        if not isinstance(x, Node):
            raise GraphcError(f"gradients: xs must be nodes, not {type(x).__name__}")
        if x.graph is not y.graph:
            raise GraphcError(f"gradients: {describe(x)} belongs to another graph than y")
        if not _is_float(x):
            raise DTypeError(f"gradients: cannot differentiate with respect to {describe(x)} "
                             f"of dtype {x.dtype}; only float nodes have gradients")
    if not _is_float(y):
        raise DTypeError(f"gradients: {describe(y)} has dtype {y.dtype}; only float nodes "
                         "can be differentiated")
    if grad_y is None and y.shape != ():
        raise ShapeError(f"gradients: {describe(y)} has shape {fmt(y.shape)}; y must be a "
                         "scalar unless grad_y (of y's shape) is given")
    # One derivative context for the whole call: the seed is a derivative node too, and the
    # graph indexes its nodes for sharing once per outermost context, not once per step.
    start = len(y.graph)
    with y.graph._deriving(y.derivative + 1):
        if grad_y is None:
            seed = y.graph.constant(np.ones((), y.dtype))
        else:
            seed = as_node(y.graph, grad_y)
            if seed.ndim != y.ndim or any(a is not None and b is not None and a != b
                                          for a, b in zip(seed.shape, y.shape)):
                raise ShapeError(f"gradients: grad_y has shape {fmt(seed.shape)} but "
                                 f"{describe(y)} has shape {fmt(y.shape)}")
        out = build_grad(y, xs, seed, stop_at=stop_at, unconnected=unconnected)
        _only_used(y.graph, start, out)
    if grad_y is None:  # with grad_y the results are vector-Jacobian products, not dy/dx
        _name_results(y, xs, out, start)
    return out


def _only_used(graph, start: int, results):
    """``results``, after dropping the nodes built since ``start`` that they do not use (a
    rule's intermediate that sharing or folding made redundant, an unused seed), so that the
    graph holds no dead derivative nodes."""
    flat, stack = [], [results]
    while stack:  # results may be a node, or (nested) lists of nodes and Nones
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif item is not None:
            flat.append(item)
    graph._drop_unused(start, flat)
    return results


def _name_results(y: Node, xs: list, results: list, first: int) -> None:
    """Name each result this call built ``d(y)/d(x)`` (PyTensor's ``(dcost/dW)``), so that
    pictures, listings, errors and JSON say which node is which derivative."""
    for x, g in zip(xs, results):
        if g is not None and g.id >= first and g.op != "constant" and has_fresh_name(g):
            y.graph._rename(g, f"d({y.name})/d({x.name})")


def grad(y: Node, x: Node, **options: Any) -> Optional[Node]:
    """The gradient of scalar ``y`` with respect to one node ``x``."""
    return gradients(y, [x], **options)[0]


def build_grad(y: Node, xs: list, seed: Node, *, stop_at=(), unconnected="zero") -> list:
    """Algorithm 6.5 with a seed cotangent of shape ``batch + y.shape``."""
    graph = y.graph
    batch = seed.ndim - y.ndim
    nodes = graph._nodes
    stops = {n.id for n in stop_at}
    targets = {x.id for x in xs}

    # Forward sweep: the descendants of the xs that can carry gradient (float nodes reached
    # through differentiable ops, not cut by stop_at or stop_gradient).
    start = min(targets) if targets else y.id + 1
    carries = set(targets)
    for node in nodes[start:y.id + 1]:
        if node.id in targets or node.id in stops or not _is_float(node):
            continue
        if registry.REGISTRY[node.op].bprop is not None and \
                any(x.id in carries for x in node.inputs):
            carries.add(node.id)

    with graph._deriving(max(y.derivative + 1, seed.derivative)), graph._protecting(xs), \
            graph._sites_from(sys._getframe()):
        grad_table = _backward_sweep(y, seed, nodes[start:y.id + 1], carries, stops, batch)
        out, needed = [], None
        for x in xs:
            g = grad_table.get(x.id)
            if g is None:
                if needed is None:  # one sweep answers for every x without a gradient
                    needed = _ancestors(y, stops, start)
                if x.id not in needed:
                    if unconnected == "raise":
                        raise DisconnectedGradientError(
                            f"gradients: {describe(y)} does not depend on {describe(x)}")
                    if unconnected == "none":
                        out.append(None)
                        continue
                g = _zeros(x, seed, batch)
            out.append(g)
    return out


def _backward_sweep(y, seed, span, carries, stops, batch) -> dict:
    """Fill the grad_table, from y back to the earliest x (reverse creation order)."""
    grad_table: dict[int, Node] = {}
    contributions: dict[int, list] = {}
    if y.id in carries:
        grad_table[y.id] = seed if seed.dtype == y.dtype else cast(seed, y.dtype)
    for node in reversed(span):
        g = grad_table.get(node.id)
        if node.id != y.id:
            parts = contributions.pop(node.id, None)
            if parts is None:
                continue
            if len(parts) == 1:
                g = parts[0][1]
            else:
                parts.sort(key=_position)  # consumers in creation order, then input index
                g = _sum_contributions([part for _, part in parts])
            grad_table[node.id] = g
        if node.id in stops or node.id not in carries:
            continue
        _backprop_node(node, g, batch, carries, contributions)
    return grad_table


def _position(part: tuple) -> tuple:
    return part[0]


def _sum_contributions(parts: list) -> Node:
    """The sum of a node's contributions, in their order; a node contributed k times (the
    two inputs of ``x * x`` get the same one) is added once, as ``k * part``."""
    counts: dict = {}
    for part in parts:  # nodes hash by identity; a dict keeps the first-seen order
        counts[part] = counts.get(part, 0) + 1
    total = None
    for part, k in counts.items():
        term = part if k == 1 else _times(part, k)
        total = term if total is None else add(total, term)
    return total


_SPREADS = ("broadcast_to", "broadcast_like", "expand_dims")  # ops that only spread a value


def _times(part: Node, k: int) -> Node:
    """``k * part``. When part is ``c * v`` with c a small constant, or a one-element value
    spread out (mean's ``1/n``), k goes into c, so ``2 (c W)`` is built as ``(2c) W``: one
    product over W, not two (and ``2 (0.5 x)`` is x)."""
    if part.op == "mul":
        for i, factor in enumerate(part.inputs):
            spreads, core = [], factor
            while core.op in _SPREADS:
                spreads.append(core)
                core = core.inputs[0]
            if core.op != "constant" and not (spreads and size(core.shape) == 1):
                continue
            if core.dtype != part.dtype:  # k * c in a narrower dtype may wrap or round
                continue
            scaled = mul(core, k)  # a constant is multiplied at once while sharing
            folded = scaled.op == "constant" or core.op != "constant"
            if not folded or scaled.dtype != core.dtype:
                continue
            if scaled.op == "constant" and not np.isfinite(scaled.attrs["value"]).all():
                continue  # k c overflows where k (c v) may not
            for spread in reversed(spreads):  # spread out again as before
                scaled = build(part.graph, spread.op, (scaled,) + spread.inputs[1:],
                               dict(spread.attrs))
            other = part.inputs[1 - i]
            return mul(scaled, other) if i == 0 else mul(other, scaled)
    return mul(part, k)


def _ancestors(y: Node, stops: set, start: int) -> set:
    """Ids of the nodes (from ``start`` on) that y depends on through edges that are not cut
    by stop_at or stop_gradient. Paths through non-differentiable ops count: an x reached only
    through them is connected, with a zero gradient."""
    needed = {y.id}
    for node in reversed(y.graph._nodes[start:y.id + 1]):
        if node.id in needed and node.id not in stops and node.op != "stop_gradient":
            needed.update(i.id for i in node.inputs)
    return needed


def _zeros(x: Node, seed: Node, batch: int) -> Node:
    """A zero gradient for x (with the seed's batch dimensions in front). When the shape is
    known it does not depend on x, so running it needs no value of x (a disconnected
    placeholder need not be fed)."""
    shape = seed.shape[:batch] + x.shape
    if None not in shape:
        zero = x.graph.constant(np.zeros((), x.dtype))
        return zero if shape == () else broadcast_to(zero, shape)
    if batch == 0:
        return zeros_like(x)
    # Sizes known only at run time: zeros shaped like the seed's batch, then like x.
    lead = zeros_like(reduce_sum(seed, axis=tuple(range(batch, seed.ndim))))
    if x.ndim:
        lead = expand_dims(lead, tuple(range(-x.ndim, 0)))
    return cast(broadcast_like(lead, x), x.dtype) if lead.dtype != x.dtype else \
        broadcast_like(lead, x)


def _backprop_node(node: Node, g: Node, batch: int, carries: set, contributions: dict) -> None:
    """Ask ``node``'s bprop for the contribution to each input that carries gradient."""
    op = registry.REGISTRY[node.op]
    if op.bprop is None:  # not differentiable: carries gradient only when it is a target itself
        return
    if op.bprop is registry.NOT_IMPLEMENTED:
        raise GraphcError(f"gradients: the op {node.op!r} has no derivative rule yet, needed "
                          f"for {describe(node)}")
    for i, x in enumerate(node.inputs):
        if x.id not in carries:
            continue
        part = op.bprop(node, g, i)
        if part is None or _is_zero(part):  # contributes nothing: no dead arithmetic
            continue
        part = _fit(part, x, node, batch)
        contributions.setdefault(x.id, []).append(((node.id, i), part))


def _is_zero(node: Node) -> bool:
    """Whether ``node`` is a constant of zeros (a contribution that adds nothing)."""
    return node.op == "constant" and not node.attrs["value"].any()


def _fit(part: Node, x: Node, consumer: Node, batch: int) -> Node:
    """Sum a contribution down to ``batch + x.shape`` and cast it to x's dtype."""
    if len(part.shape) < batch + len(x.shape):
        part = broadcast_like(part, x)
    lead = len(part.shape) - batch - len(x.shape)
    ambiguous, ones = False, []
    for k, want in enumerate(x.shape):
        have = part.shape[batch + lead + k]
        if want == 1:
            if have != 1:
                ones.append(batch + lead + k)
        elif want is None:
            if have is not None or _may_broadcast(consumer, x, k):
                ambiguous = True
        elif have == 1:
            ambiguous = True  # needs broadcasting up; let the run-time rule do it
    if ambiguous:
        part = sum_to(part, x, batch)
    else:
        if ones:
            part = reduce_sum(part, axis=tuple(ones), keepdims=True)
        if lead:
            part = reduce_sum(part, axis=tuple(range(batch, batch + lead)))
    if part.dtype != x.dtype:
        part = cast(part, x.dtype)
    return part


def _may_broadcast(consumer: Node, x: Node, k: int) -> bool:
    """Whether x's unknown size at position k could have been broadcast by ``consumer``."""
    if not registry.REGISTRY[consumer.op].elementwise:
        return False
    pos = k - x.ndim  # right-aligned position
    for other in consumer.inputs:
        if other is x or other.ndim < -pos:
            continue
        if other.shape[pos] != 1:
            return True
    return False


# -- Jacobians (graphc.jacobians builds Hessians and both modes on this) ------------------------
def _identity_seed(y: Node) -> Node:
    """One cotangent per element of y, stacked in front: shape ``y.shape + y.shape``."""
    if None in y.shape:
        return eye_like(y)
    n = size(y.shape)
    return y.graph.constant(np.eye(n, dtype=y.dtype).reshape(y.shape + y.shape))


def jacobian(y: Node, x: Node) -> Node:
    """The Jacobian ``dy/dx`` as one node of shape ``y.shape + x.shape``.

    One reverse pass seeded with the identity as a batch of cotangents (batch dimensions
    ``y.shape``): the graph added does not grow with the size of y.
    """
    if not isinstance(y, Node) or not isinstance(x, Node):
        raise GraphcError("jacobian takes two graphc nodes")
    if not _is_float(y):
        raise DTypeError(f"jacobian: {describe(y)} has dtype {y.dtype}; it must be a float")
    if not _is_float(x):
        raise DTypeError(f"jacobian: cannot differentiate with respect to {describe(x)} of "
                         f"dtype {x.dtype}")
    if y.shape == ():
        return gradients(y, [x])[0]
    start = len(y.graph)
    with y.graph._deriving(y.derivative + 1):
        out = _only_used(y.graph, start, build_grad(y, [x], _identity_seed(y)))
    _name_results(y, [x], out, start)
    return out[0]
