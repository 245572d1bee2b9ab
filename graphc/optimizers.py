"""Optimizers as update graphs, as TF1's ``tf.train`` and Lasagne's ``updates`` built them.

Each function takes a scalar ``loss`` (or the list of its gradients, one per parameter),
the variables to train and the hyper-parameters, and returns an ``updates`` dict for
:func:`graphc.function`. It adds the optimizer's state to the graph as variables named after
the parameters (``adam/m/W``, ``adam/v/W``, ``adam/t``), so a saved graph carries them, and
every update is an ordinary node, computed from the old values::

    step = gc.function([x, y], loss, updates=gc.optimizers.adam(loss, [W, b], lr=1e-3))

The recurrences are the usual ones (PyTorch's and Keras's documentation), with ``g`` the
gradient of the loss with respect to the parameter ``p`` and ``lr`` the learning rate.
Hyper-parameters may be numbers or nodes (a placeholder fed at each step gives a schedule).
Python numbers are weakly typed, so float32 parameters and their state stay float32.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from .autodiff import gradients
from .errors import GraphcError, ShapeError, describe
from .graph import Graph, Node
from .ops import cast, sqrt, square
from .shapes import fmt

__all__ = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]

Number = Union[float, Node]
LossOrGrads = Union[Node, Sequence[Node]]  # a scalar loss, or one gradient per parameter
Params = Union[Node, Sequence[Node]]


def sgd(loss: LossOrGrads, params: Params, lr: Number = 0.01) -> dict:
    """Plain gradient descent: ``p <- p - lr g``. No state."""
    params, grads = _prepare(loss, params, "sgd")
    lr = _hyper(lr, "sgd", "lr")
    return {p: _as(p, p - lr * g) for p, g in zip(params, grads)}


def momentum(loss: LossOrGrads, params: Params, lr: Number = 0.01,
             momentum: Number = 0.9, *, name: str = "momentum") -> dict:
    """Gradient descent with (heavy-ball) momentum, Keras's ``SGD(momentum=...)`` and the
    Deep Learning Book's algorithm 8.2, with a velocity ``v`` (state ``momentum/v/P``,
    starting at 0)::

        v <- momentum v - lr g
        p <- p + v

    (PyTorch keeps ``b = -v / lr`` instead: the same steps for a constant ``lr``.)
    """
    params, grads = _prepare(loss, params, name)
    lr, mu = _hyper(lr, name, "lr"), _hyper(momentum, name, "momentum", below_one=True)
    scope, updates = _scope(params[0].graph, name), {}
    for p, g in zip(params, grads):
        v = _state(scope, "v", p)
        updates[v] = _as(v, mu * v - lr * g)
        updates[p] = _as(p, p + updates[v])
    return updates


def nesterov(loss: LossOrGrads, params: Params, lr: Number = 0.01,
             momentum: Number = 0.9, *, name: str = "nesterov") -> dict:
    """Nesterov's accelerated gradient in the form of Sutskever et al. (2013) as Keras's
    ``SGD(momentum=..., nesterov=True)`` writes it, with a velocity ``v`` (state
    ``nesterov/v/P``, starting at 0)::

        v <- momentum v - lr g
        p <- p + momentum v_new - lr g

    (PyTorch's ``nesterov=True`` is the same for a constant ``lr``.)
    """
    params, grads = _prepare(loss, params, name)
    lr, mu = _hyper(lr, name, "lr"), _hyper(momentum, name, "momentum", below_one=True)
    scope, updates = _scope(params[0].graph, name), {}
    for p, g in zip(params, grads):
        v = _state(scope, "v", p)
        updates[v] = _as(v, mu * v - lr * g)
        updates[p] = _as(p, p + mu * updates[v] - lr * g)
    return updates


def adagrad(loss: LossOrGrads, params: Params, lr: Number = 0.01, eps: Number = 1e-10,
            initial_accumulator: float = 0.0, *, name: str = "adagrad") -> dict:
    """AdaGrad (Duchi, Hazan and Singer 2011) as PyTorch's ``Adagrad`` defines it, with the
    sum of squared gradients ``G`` (state ``adagrad/G/P``, starting at
    ``initial_accumulator``)::

        G <- G + g^2
        p <- p - lr g / (sqrt(G) + eps)
    """
    params, grads = _prepare(loss, params, name)
    lr, eps = _hyper(lr, name, "lr"), _hyper(eps, name, "eps")
    start = float(_hyper(initial_accumulator, name, "initial_accumulator", node_ok=False))
    scope, updates = _scope(params[0].graph, name), {}
    for p, g in zip(params, grads):
        G = _state(scope, "G", p, start)
        updates[G] = _as(G, G + square(g))
        updates[p] = _as(p, p - lr * g / (sqrt(updates[G]) + eps))
    return updates


def rmsprop(loss: LossOrGrads, params: Params, lr: Number = 0.01, rho: Number = 0.99,
            eps: Number = 1e-8, *, name: str = "rmsprop") -> dict:
    """RMSProp (Hinton's lecture 6e) as PyTorch's ``RMSprop`` defines it (``rho`` is its
    ``alpha``, Keras's ``rho``), with a running mean square ``s`` (state ``rmsprop/s/P``,
    starting at 0)::

        s <- rho s + (1 - rho) g^2
        p <- p - lr g / (sqrt(s) + eps)
    """
    params, grads = _prepare(loss, params, name)
    lr, eps = _hyper(lr, name, "lr"), _hyper(eps, name, "eps")
    rho = _hyper(rho, name, "rho", below_one=True)
    scope, updates = _scope(params[0].graph, name), {}
    for p, g in zip(params, grads):
        s = _state(scope, "s", p)
        updates[s] = _as(s, rho * s + (1 - rho) * square(g))
        updates[p] = _as(p, p - lr * g / (sqrt(updates[s]) + eps))
    return updates


def adam(loss: LossOrGrads, params: Params, lr: Number = 0.001, beta1: Number = 0.9,
         beta2: Number = 0.999, eps: Number = 1e-8, *, name: str = "adam") -> dict:
    """Adam (Kingma and Ba 2015) as PyTorch's ``Adam`` defines it, with moment estimates
    ``m`` and ``v`` (states ``adam/m/P``, ``adam/v/P``, starting at 0) and the step count
    ``t`` (state ``adam/t``, an int64 starting at 0)::

        t <- t + 1
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        p <- p - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    """
    params, grads = _prepare(loss, params, name)
    lr, eps = _hyper(lr, name, "lr"), _hyper(eps, name, "eps")
    beta1 = _hyper(beta1, name, "beta1", below_one=True)
    beta2 = _hyper(beta2, name, "beta2", below_one=True)
    graph = params[0].graph
    scope = _scope(graph, name)
    t = graph.variable(f"{scope}/t", np.zeros((), np.int64))
    updates = {t: t + 1}
    # The bias corrections are scalars of the step count: computed once, in float64, then
    # cast to each parameter's dtype (as PyTorch applies Python floats to its tensors).
    corrections = (1 - beta1 ** updates[t], 1 - beta2 ** updates[t])
    per_dtype: dict = {}
    for p, g in zip(params, grads):
        if p.dtype not in per_dtype:
            per_dtype[p.dtype] = tuple(_as(p, c) for c in corrections)
        c1, c2 = per_dtype[p.dtype]
        m, v = _state(scope, "m", p), _state(scope, "v", p)
        updates[m] = _as(m, beta1 * m + (1 - beta1) * g)
        updates[v] = _as(v, beta2 * v + (1 - beta2) * square(g))
        updates[p] = _as(p, p - lr * (updates[m] / c1) / (sqrt(updates[v] / c2) + eps))
    return updates


# -- helpers ---------------------------------------------------------------------------------------
def _prepare(loss_or_grads, params, who: str) -> tuple[list, list]:
    """The parameters as a list of distinct float variables of one graph, and their
    gradients: of the loss, or given (a list, one per parameter, Lasagne's convention)."""
    if isinstance(params, Node):
        params = [params]
    params = list(params)
    if not params:
        raise GraphcError(f"{who}: no parameters to train")
    for p in params:
        if not isinstance(p, Node) or p.op != "variable":
            raise GraphcError(f"{who}: parameters must be variables, not "
                              f"{describe(p) if isinstance(p, Node) else type(p).__name__}")
        if not np.issubdtype(p.dtype, np.floating):
            raise GraphcError(f"{who}: {describe(p)} has dtype {p.dtype}; only float "
                              "variables can be trained")
        if p.graph is not params[0].graph:
            raise GraphcError(f"{who}: {describe(p)} belongs to another graph than "
                              f"{describe(params[0])}")
    if len({p.id for p in params}) != len(params):
        raise GraphcError(f"{who}: a parameter is given twice")
    if isinstance(loss_or_grads, Node):
        if loss_or_grads.graph is not params[0].graph:
            raise GraphcError(f"{who}: the loss belongs to another graph than the parameters")
        return params, gradients(loss_or_grads, params)
    if not isinstance(loss_or_grads, (list, tuple)):
        raise GraphcError(f"{who}: give a scalar loss node or a list of gradients, not "
                          f"{type(loss_or_grads).__name__}")
    grads = list(loss_or_grads)
    if len(grads) != len(params):
        raise GraphcError(f"{who}: {len(grads)} gradients given for {len(params)} parameters")
    for p, g in zip(params, grads):
        if not isinstance(g, Node) or g.graph is not p.graph:
            raise GraphcError(f"{who}: the gradient of {describe(p)} must be a node of its graph")
        if g.shape != p.shape:
            raise ShapeError(f"{who}: the gradient {describe(g)} has shape {fmt(g.shape)} but "
                             f"{describe(p)} has shape {fmt(p.shape)}")
    return params, grads


def _hyper(value, who: str, what: str, *, below_one: bool = False, node_ok: bool = True):
    """A hyper-parameter: a node as it is, a number as a weakly typed Python float (so that
    float32 parameters stay float32), checked to be >= 0 (and < 1 where it is a decay)."""
    if isinstance(value, Node):
        if not node_ok:
            raise GraphcError(f"{who}: {what} must be a number, not a node")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GraphcError(f"{who}: {what} must be a number or a node, not {value!r}") from None
    if not number >= 0 or (below_one and not number < 1) or number == float("inf"):
        bound = "in [0, 1)" if below_one else "a finite number >= 0"
        raise GraphcError(f"{who}: {what} must be {bound}, not {value!r}")
    return number


def _scope(graph: Graph, name: str) -> str:
    """``name``, or ``name_1``, ``name_2``... when an optimizer of that name exists already."""
    if not isinstance(name, str) or not name or "/" in name or not name.isprintable():
        raise GraphcError(f"an optimizer's name must be printable, without '/', not {name!r}")
    taken = {n.name.split("/", 1)[0] for n in graph.nodes if "/" in n.name}
    scope, k = name, 1
    while scope in taken:
        scope, k = f"{name}_{k}", k + 1
    return scope


def _state(scope: str, what: str, p: Node, start: float = 0.0) -> Node:
    """A state variable shaped like ``p``, named ``scope/what/p``."""
    return p.graph.variable(f"{scope}/{what}/{p.name}", np.full(p.shape, start, p.dtype))


def _as(like: Node, node: Node) -> Node:
    """``node`` in ``like``'s dtype (a node-valued hyper-parameter may have promoted it)."""
    return node if node.dtype == like.dtype else cast(node, like.dtype)
