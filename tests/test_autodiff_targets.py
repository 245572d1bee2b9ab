"""Derivatives with respect to intermediate nodes, and graphs gradients() leaves behind.

Oracles: central finite differences with every target fed (so that the target is an independent
input, as the math of d/dt says), closed forms, and the same gradients asked separately.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.testing import numeric_gradient

X = np.array([[0.3, -1.2], [0.8, 0.5], [-0.4, 1.1]])
T_OTHER = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]) / 5  # a value of t that is not x.T


def _programs():
    """(name, build) pairs: build(x) -> (t, y) where t is an intermediate node that one of the
    derivative rules of y would build again (transpose(x)), and y is scalar."""
    def gram(x):
        t = x.T
        return t, gc.sum(x @ t)

    def squared_and_sine(x):
        t = gc.transpose(x)
        return t, gc.sum((x @ t) ** 2) + gc.sum(gc.sin(t))

    def left(x):
        t = x.T
        return t, gc.sum(gc.tanh(t @ x))

    def both_sides(x):
        t = x.T
        return t, gc.sum((t @ x) * (t @ x)) + gc.sum(x @ t)

    return [("gram", gram), ("squared_and_sine", squared_and_sine), ("left", left),
            ("both_sides", both_sides)]


PROGRAMS = _programs()


@pytest.mark.parametrize("name,build", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_gradient_by_an_intermediate_treats_it_as_an_independent_input(name, build):
    g = gc.Graph()
    x = g.placeholder("x", (3, 2))
    t, y = build(x)
    gt = gc.grad(y, t)
    H = gc.hessian(y, t)
    for tv in (X.T, T_OTHER):  # t fed: the derivative is a function of (x, t) as given
        feed = {x: X, t: tv}
        numeric = numeric_gradient(y, t, feed, 1e-6)
        np.testing.assert_allclose(g.run(gt, feed), numeric, rtol=1e-6, atol=1e-7)
        # the Hessian's rows are the gradients' derivatives: finite differences of gt
        rows = np.stack([numeric_gradient(gt[i, j], t, feed, 1e-6)
                         for i in range(2) for j in range(3)]).reshape(2, 3, 2, 3)
        np.testing.assert_allclose(g.run(H, feed), rows, rtol=1e-5, atol=1e-6)


def test_the_gram_example_of_the_issue_in_closed_form():
    g = gc.Graph()
    x = g.placeholder("x", (3, 2))
    t = x.T
    y = gc.sum(x @ t)
    gt, H = gc.grad(y, t), gc.hessian(y, t)
    want = X.T @ np.ones((3, 3))  # d sum(x @ t) / dt, whatever t is
    np.testing.assert_allclose(g.run(gt, {x: X, t: T_OTHER}), want, rtol=1e-12)
    assert np.max(np.abs(g.run(H, {x: X}))) == 0.0  # linear in t
    assert t not in _ancestors(gt)  # the derivative does not depend on the target at all


def test_jacobian_by_an_intermediate():
    g = gc.Graph()
    x = g.placeholder("x", (3, 2))
    t = x.T
    z = x @ t  # (3, 3), linear in t: J[i, j, k, l] = x[i, k] * (j == l)
    J = gc.jacobian(z, t)
    want = np.einsum("ik,jl->ijkl", X, np.eye(3))
    np.testing.assert_allclose(g.run(J, {x: X, t: T_OTHER}), want, rtol=1e-12)


def _ancestors(node) -> set:
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(n.inputs)
    return seen


# -- targets without a derivative rule, with an ancestor also a target --------------------------
@pytest.mark.parametrize("op", [gc.stop_gradient, gc.sign])
def test_a_target_without_derivative_and_its_ancestor(op):
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    s = op(x)
    y = gc.sum(s * gc.sin(x))
    together = gc.gradients(y, [s, x])
    apart = [gc.gradients(y, [s])[0], gc.gradients(y, [x])[0]]
    xv = np.array([0.4, -1.3, 2.0])
    sv = np.sign(xv) if op is gc.sign else xv
    got, ref = g.run(together, {x: xv}), g.run(apart, {x: xv})
    np.testing.assert_allclose(got[0], np.sin(xv), rtol=1e-12)  # d y / d s
    np.testing.assert_allclose(got[1], sv * np.cos(xv), rtol=1e-12)  # s holds still
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# -- no dead nodes ------------------------------------------------------------------------------
def _check_graph_invariants(g):
    """Ids are positions, inputs come first, consumers and names agree, the sharing index
    only holds live nodes under their own current keys."""
    from graphc.graph import _structural_key

    for k, n in enumerate(g.nodes):
        assert n.id == k and g[n.name] is n
        assert all(x.id < n.id and g.nodes[x.id] is x for x in n.inputs)
        assert all(n in c.inputs for c in n.consumers)
        assert all(n in g.nodes[x.id].consumers for x in n.inputs)
    for key, n in (g._memo or {}).items():
        assert g.nodes[n.id] is n
        if n.op != "constant":  # a folded constant is indexed under the op it replaced
            assert _structural_key(n.op, n.inputs, n.attrs) == key


def _appended_are_used(g, start, results):
    used = set()
    for r in results:
        used |= _ancestors(r)
    dead = [n for n in g.nodes[start:] if n not in used]
    assert dead == [], dead


def test_gradients_append_only_nodes_their_results_use():
    g = gc.Graph()
    x, y = g.placeholder("x"), g.placeholder("y")
    w = g.variable("w", 2.0)
    loss = (x * w - y) ** 2
    cases = [lambda: gc.gradients(loss, [w]), lambda: gc.gradients(loss, [w, x, y]),
             lambda: [gc.hessian(loss, w)], lambda: [gc.grad(gc.grad(loss, w), w)]]
    v = g.placeholder("v", (4,))
    z = gc.sum(gc.tanh(v) * v)
    u = gc.tanh(v) * 2.0
    cases += [lambda: [gc.hessian(z, v)], lambda: [gc.jacobian(u, v)],
              lambda: [gc.hvp(z, v, np.ones(4))],
              lambda: gc.gradients(z, [v, x], unconnected="zero")]
    for build in cases:
        start = len(g)
        results = build()
        _appended_are_used(g, start, results)
        _check_graph_invariants(g)
    feed = {x: 1.5, y: 0.5, v: np.linspace(-1, 1, 4)}
    assert gc.check_gradients(loss, [w, x, y], feed) < 1e-6
    assert gc.check_gradients(gc.hessian(z, v), [v], feed) < 1e-5


def test_dropping_dead_nodes_keeps_later_derivatives_right():
    """Repeated gradients of gradients on a graph whose tail was compacted several times."""
    g = gc.Graph()
    a, b = g.placeholder("a", (3,)), g.placeholder("b", (3,))
    f = gc.sum(a * b - b + 0.75 ** a + gc.exp(a * 0.5) * b)
    first = gc.gradients(f, [a, b])
    second = [gc.gradients(gc.sum(d), [a, b]) for d in first]
    _check_graph_invariants(g)
    av, bv = np.array([0.3, -0.2, 1.1]), np.array([1.0, 2.0, -0.5])
    want = [[np.log(0.75) ** 2 * 0.75 ** av + 0.25 * np.exp(av / 2) * bv,
             1 + 0.5 * np.exp(av / 2)],
            [1 + 0.5 * np.exp(av / 2), np.zeros(3)]]
    got = g.run([d for row in second for d in row], {a: av, b: bv})
    for k, value in enumerate(got):
        np.testing.assert_allclose(value, want[k // 2][k % 2], rtol=1e-12, atol=1e-14)
