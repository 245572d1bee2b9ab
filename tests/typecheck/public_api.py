"""A user's program, type-checked by tests/test_typing.py with ``mypy --strict``: every public
name it calls must be annotated, and the annotations must say what users get (a Node from an
op, a list of nodes from gradients, a compiled Function, ...). It also runs, so it stays true."""
from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.compiler import Function


def build() -> tuple[gc.Graph, gc.Node, gc.Node, gc.Node, gc.Node]:
    g = gc.Graph()
    x: gc.Node = g.placeholder("x", shape=(None, 3))
    y = g.placeholder("y", shape=(None,), dtype="int64")
    W = g.variable("W", np.random.default_rng(0).normal(size=(3, 4)))
    b = g.variable("b", np.zeros(4), dtype="float64")
    logits: gc.Node = x @ W + b
    h = gc.relu(logits, name="h")
    loss = gc.mean(gc.softmax_cross_entropy(h, y)) + 1e-4 * gc.sum(W * W, axis=(0, 1))
    loss = loss + gc.sum(gc.where(h > 0.5, gc.exp(-h), gc.log1p(gc.square(h)))) * 0.0
    return g, x, y, W, loss


def main() -> float:
    g, x, y, W, loss = build()
    grads: list[gc.Node] = gc.gradients(loss, [W])
    H: gc.Node = gc.hessian(loss, g["b"])
    step: Function = gc.function([x, y], loss, updates={W: W - 0.1 * grads[0]})
    X = np.ones((5, 3))
    Y = np.arange(5) % 4
    first = float(step(X, Y))
    value = g.run(H, feed={x: X, "y": Y})
    shapes: tuple[int, ...] = np.shape(value)
    assert shapes == (4, 4)
    t: gc.Node = gc.concatenate([gc.reshape(W, (-1,)), gc.transpose(W).T[0]], axis=0)
    assert t.shape == (16,) and t.ndim == 1 and t.dtype == np.float64
    s = gc.stack([gc.cast(gc.argmax(W, axis=0), "float64"), gc.max(W, axis=0)])
    assert s.graph is g and all(isinstance(n, gc.Node) for n in s.inputs)
    text: str = gc.to_json(g)
    g2: gc.Graph = gc.from_json(text)
    assert len(g2) == len(g)
    objective: gc.ScipyObjective = gc.scipy_objective(loss, [W, g["b"]], feed={x: X, y: Y})
    jacobian: np.ndarray = objective.jac(objective.x0)
    now = float(loss.eval({x: X, y: Y}))
    assert jacobian.shape == (objective.size,) and abs(objective.fun(objective.x0) - now) < 1e-12
    assert first > now  # the step descended
    worst: float = gc.check_gradients(loss, [W], {x: X, y: Y})
    return worst


if __name__ == "__main__":
    print(main())
