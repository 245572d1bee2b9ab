"""Jacobians, Hessians and Hessian-vector products in either mode, for one target or blocks.

Reverse mode (:mod:`graphc.autodiff`) costs one sweep seeded with a batch of cotangents, one
per output element; forward mode (:mod:`graphc.forward`) one sweep seeded with a batch of
tangents, one per input element. ``mode="auto"`` takes the smaller batch: forward when x has
fewer elements than y. Both build a graph whose size does not grow with the batch.

Every function accepts lists: ``jacobian([y1, y2], [x1, x2])[i][j]`` is dy_i/dx_j and
``hessian(z, [W, b])[i][j]`` is d2z / dxs[i] dxs[j], like ``jax.hessian`` on a tuple.
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np

from . import autodiff
from .errors import DTypeError, GraphcError, ShapeError, describe
from .forward import jvp
from .graph import Node, as_node
from .ops.elementwise import add, mul
from .ops.reduce import sum as reduce_sum
from .ops.shape import transpose
from .ops.special import eye_like
from .shapes import fmt, size

MODES = ("auto", "rev", "fwd")
Nodes = Union[Node, Sequence[Node]]


def _check_mode(mode: str, where: str) -> None:
    if mode not in MODES:
        raise GraphcError(f"{where}: mode must be one of {MODES}, not {mode!r}")


def _float(node, where: str, role: str) -> None:
    if not isinstance(node, Node):
        raise GraphcError(f"{where}: {role} must be a graphc node, not {type(node).__name__}")
    if not np.issubdtype(node.dtype, np.floating):
        raise DTypeError(f"{where}: {describe(node)} has dtype {node.dtype}; only float nodes "
                         "can be differentiated")


def _pick(mode: str, inputs: int | None, outputs: int | None) -> str:
    """Forward when it takes fewer directions; reverse when sizes are unknown (the batch of
    a Jacobian usually has run-time rows, and reverse is the more economical default)."""
    if mode != "auto":
        return mode
    if inputs is not None and outputs is not None and inputs < outputs:
        return "fwd"
    return "rev"


def jacobian(ys: Nodes, xs: Nodes, mode: str = "auto") -> Any:
    """The Jacobian ``dy/dx`` as a node of shape ``y.shape + x.shape``.

    ``mode`` is ``"rev"`` (one reverse sweep seeded with the identity over y), ``"fwd"`` (one
    forward sweep seeded with the identity over x) or ``"auto"`` (the smaller of the two).
    With lists, the result is a list (or a list of lists) of blocks.
    """
    _check_mode(mode, "jacobian")
    for what, value in (("y", ys), ("x", xs)):
        if not isinstance(value, (Node, list, tuple)):  # (a string would recurse forever)
            raise GraphcError(f"jacobian: {what} must be a node or a list of nodes, not "
                              f"{type(value).__name__}")
    if not isinstance(ys, Node):
        return [jacobian(y, xs, mode) for y in ys]
    if not isinstance(xs, Node):
        return [jacobian(ys, x, mode) for x in xs]
    y, x = ys, xs
    _float(y, "jacobian", "y")
    _float(x, "jacobian", "x")
    if _pick(mode, size(x.shape), size(y.shape)) == "fwd":
        return jacfwd(y, x)
    return autodiff.jacobian(y, x)


def jacfwd(y: Node, x: Node) -> Node:
    """The Jacobian ``dy/dx`` (shape ``y.shape + x.shape``) by one forward sweep whose tangents
    are the identity over x (a batch of ``x.shape`` directions)."""
    _float(y, "jacfwd", "y")
    _float(x, "jacfwd", "x")
    if None in x.shape:
        seed = eye_like(x)
    else:
        n = size(x.shape)
        seed = x.graph.constant(np.eye(n, dtype=x.dtype).reshape(x.shape + x.shape))
    start = len(y.graph)
    with y.graph._deriving(max(y.derivative, x.derivative) + 1):
        t = jvp(y, x, seed)  # shape x.shape + y.shape: the batch of directions leads
        if x.ndim == 0 or y.ndim == 0:
            return autodiff._only_used(y.graph, start, t)
        order = tuple(range(x.ndim, x.ndim + y.ndim)) + tuple(range(x.ndim))
        return autodiff._only_used(y.graph, start, transpose(t, order))


def hessian(z: Node, xs: Nodes, mode: str = "auto") -> Any:
    """The Hessian of scalar ``z``: shape ``x.shape + x.shape``, by differentiating the
    gradient again (``"fwd"``: forward over reverse; ``"rev"``: reverse over reverse).

    With a list of xs, the blocks ``[i][j]`` = d2z / dxs[i] dxs[j].
    """
    _check_mode(mode, "hessian")
    if not isinstance(z, Node) or z.shape != ():
        what = f"{describe(z)} of shape {fmt(z.shape)}" if isinstance(z, Node) else \
            type(z).__name__
        raise ShapeError(f"hessian: z must be a scalar node, not {what}")
    targets = [xs] if isinstance(xs, Node) else list(xs)
    for x in targets:
        _float(x, "hessian", "x")
    start = len(z.graph)
    with z.graph._deriving(z.derivative + 1):  # one context: the node index is built once
        grads = autodiff.gradients(z, targets)
        # The gradient has as many elements as x: both modes take n directions. On the
        # dense-Hessian benchmark (benchmarks/bench_modes.py) reverse over reverse builds one
        # node fewer and calls 5-10 % faster, so it is the default.
        chosen = "rev" if mode == "auto" else mode
        blocks = [[jacfwd(g, x) if chosen == "fwd" else autodiff.jacobian(g, x)
                   for x in targets] for g in grads]
        autodiff._only_used(z.graph, start, blocks)  # the gradients may be unused: drop them
    return blocks[0][0] if isinstance(xs, Node) else blocks


def hvp(z: Node, xs: Nodes, vs: Any, mode: str = "auto") -> Any:
    """The Hessian-vector product ``H v`` without forming H (shape of x; lists of xs and vs
    give the list of ``sum_j H_ij v_j``).

    ``"fwd"`` is forward over reverse (one jvp of the gradient), ``"rev"`` reverse over
    reverse (the gradient of <gradient, v>); ``"auto"`` takes forward over reverse.
    """
    _check_mode(mode, "hvp")
    if not isinstance(z, Node) or z.shape != ():
        what = f"{describe(z)} of shape {fmt(z.shape)}" if isinstance(z, Node) else \
            type(z).__name__
        raise ShapeError(f"hvp: z must be a scalar node, not {what}")
    single = isinstance(xs, Node)
    targets = [xs] if single else list(xs)
    vectors = [vs] if single else list(vs)
    if len(vectors) != len(targets):
        raise GraphcError(f"hvp: {len(targets)} xs but {len(vectors)} vectors")
    for x in targets:
        _float(x, "hvp", "x")
    start = len(z.graph)  # (an array v becomes a constant, which the result may not need)
    vectors = [as_node(x.graph, v) for x, v in zip(targets, vectors)]
    for x, v in zip(targets, vectors):
        if v.ndim != x.ndim or any(a is not None and b is not None and a != b
                                   for a, b in zip(v.shape, x.shape)):
            raise ShapeError(f"hvp: v has shape {fmt(v.shape)} but {describe(x)} has shape "
                             f"{fmt(x.shape)}")
    with z.graph._deriving(z.derivative + 1):
        grads = autodiff.gradients(z, targets)
        if mode in ("auto", "fwd"):
            out = jvp(grads, targets, vectors)
        else:  # H is symmetric: H v is the gradient of <grad z, v>
            inner = None
            for g, v in zip(grads, vectors):
                term = reduce_sum(mul(g, v))
                inner = term if inner is None else add(inner, term)
            out = autodiff.gradients(inner, targets)
        autodiff._only_used(z.graph, start, out)  # the gradients may be unused: drop them
    return out[0] if single else out
