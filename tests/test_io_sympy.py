"""The SymPy bridge: to_sympy agrees with the kernels, with sympy.diff, and from_sympy inverts it."""
from __future__ import annotations

import random

import numpy as np
import pytest
import sympy as sp

import graphc as gc
from graphc.graph import apply
from graphc.io import sympy_bridge

X, Y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
REAL = {"real": True}  # the tests compare with sympy.diff, which needs real symbols


def scalar_graph():
    g = gc.Graph()
    return g, g.placeholder("x"), g.variable("y", 0.75)


def value(expr, x: float, y: float = 0.75) -> float:
    return float(sp.N(expr.subs({X: x, Y: y})))


# Each op of a scalar graph and the SymPy form it must give.
FORMS = [
    (lambda x, y: x + y, X + Y), (lambda x, y: x - y, X - Y), (lambda x, y: x * y, X * Y),
    (lambda x, y: x / y, X / Y), (lambda x, y: y ** x, Y ** X), (lambda x, y: -x, -X),
    (lambda x, y: gc.exp(x), sp.exp(X)), (lambda x, y: gc.log(y), sp.log(Y)),
    (lambda x, y: gc.log1p(y), sp.log(1 + Y)), (lambda x, y: gc.sqrt(y), sp.sqrt(Y)),
    (lambda x, y: gc.square(x), X ** 2), (lambda x, y: gc.sin(x), sp.sin(X)),
    (lambda x, y: gc.cos(x), sp.cos(X)), (lambda x, y: gc.tanh(x), sp.tanh(X)),
    (lambda x, y: gc.abs(x), sp.Abs(X)), (lambda x, y: gc.sign(x), sp.sign(X)),
    (lambda x, y: gc.relu(x), sp.Max(0, X)), (lambda x, y: gc.sigmoid(x), 1 / (1 + sp.exp(-X))),
    (lambda x, y: gc.softplus(x), sp.log(1 + sp.exp(X))),
    (lambda x, y: gc.maximum(x, y), sp.Max(X, Y)), (lambda x, y: gc.minimum(x, y), sp.Min(X, Y)),
    (lambda x, y: gc.clip(x, -1.0, y), sp.Min(sp.Max(X, -1), Y)),
    (lambda x, y: gc.where(x < y, x, 2.0 * y), sp.Piecewise((X, X < Y), (2 * Y, True))),
    (lambda x, y: gc.cast(x <= y, "float64"), sp.Piecewise((1, X <= Y), (0, True))),
    (lambda x, y: gc.where(gc.logical_and(x > 0, gc.logical_not(gc.equal(x, y))), 1.0, 0.0),
     sp.Piecewise((1, (X > 0) & sp.Ne(X, Y)), (0, True))),
    (lambda x, y: gc.sum(gc.reshape(gc.expand_dims(x, 0), (1, 1))), X),
    (lambda x, y: gc.mean(gc.broadcast_to(x, (1,))) + gc.zeros_like(y) + gc.ones_like(y), X + 1),
    (lambda x, y: gc.sigmoid_cross_entropy(x, y), sp.log(1 + sp.exp(X)) - X * Y),
    (lambda x, y: gc.cast(x, "int64"), sp.Piecewise((sp.floor(X), X >= 0),
                                                      (sp.ceiling(X), True))),
]


@pytest.mark.parametrize("k", range(len(FORMS)))
def test_each_scalar_op_has_its_sympy_form_and_value(k):
    build, want = FORMS[k]
    g, x, y = scalar_graph()
    node = build(x, y)
    expr = gc.to_sympy(node, REAL)
    assert sp.simplify(expr - want) == 0
    for xv in (-1.3, 0.4, 0.75, 2.2):
        assert np.isclose(value(expr, xv), float(g.run(node, {x: xv})))


def random_scalar_graph(rng: random.Random, smooth: bool = True):
    """A random composition of the ops with a classical derivative (kinks when not smooth)."""
    g, x, y = scalar_graph()
    pool = [x, y]
    ops = ["add", "sub", "mul", "div", "exp", "sin", "cos", "tanh", "square", "neg", "log",
           "sqrt", "pow", "abs", "sigmoid", "softplus", "log1p"]
    if not smooth:
        ops += ["maximum", "minimum", "relu", "where", "clip"]
    for _ in range(rng.randint(1, 6)):
        a, b = rng.choice(pool), rng.choice(pool)
        op = rng.choice(ops)
        if op in ("add", "sub", "mul", "maximum", "minimum"):
            node = apply(op, [a, b])
        elif op == "div":
            node = a / (gc.square(b) + 1.0)
        elif op in ("log", "sqrt"):
            node = apply(op, [gc.square(a) + 0.5])
        elif op == "log1p":
            node = gc.log1p(gc.exp(a))
        elif op == "pow":
            node = a ** 3
        elif op == "where":
            node = gc.where(a < b, a * 2.0, b)
        elif op == "clip":
            node = gc.clip(a, -0.5, b)
        else:
            node = apply(op, [a])
        pool.append(node)
    return g, x, y, pool[-1]


@pytest.mark.parametrize("seed", range(40))
def test_sympy_derivative_simplifies_to_the_gradient_graph(seed):
    g, x, y, out = random_scalar_graph(random.Random(seed))
    dx, dy = gc.gradients(out, [x, y])
    expr = gc.to_sympy(out, REAL)
    assert sp.simplify(sp.diff(expr, X) - gc.to_sympy(dx, REAL)) == 0
    assert sp.simplify(sp.diff(expr, Y) - gc.to_sympy(dy, REAL)) == 0
    if seed % 4 == 0:  # second order: differentiate the gradient graph itself
        (dxx,) = gc.gradients(dx, [x])
        assert sp.simplify(sp.diff(expr, X, 2) - gc.to_sympy(dxx, REAL)) == 0


@pytest.mark.parametrize("seed", range(15))
def test_gradients_of_kinked_graphs_agree_with_sympy_away_from_kinks(seed):
    g, x, y, out = random_scalar_graph(random.Random(1000 + seed), smooth=False)
    expr, (dx,) = gc.to_sympy(out, REAL), gc.gradients(out, [x])
    derivative = sp.diff(expr, X)
    for xv in (-1.7, -0.3, 0.45, 1.9):
        assert np.isclose(value(expr, xv), float(g.run(out, {x: xv})))
        assert np.isclose(value(derivative.doit(), xv), float(g.run(dx, {x: xv})))


def test_from_sympy_builds_nodes_for_every_supported_form():
    g, x, y = scalar_graph()
    exprs = [X + 2 * Y - 3, X * Y / (1 + X ** 2), Y ** X, X ** -2, sp.sqrt(Y) + 1 / sp.sqrt(Y),
             sp.exp(X) - sp.log(Y), sp.sin(X) * sp.cos(Y) + sp.tanh(X), sp.Abs(X) + sp.sign(X),
             sp.Max(X, Y, 0), sp.Min(X, 2 * Y), sp.pi * X + sp.Rational(1, 3),
             sp.Piecewise((X, X < Y), (Y ** 2, sp.Eq(X, 1)), (0, True)),
             sp.Piecewise((X, (X > 0) & (Y >= 0.5)), (Y, True)), sp.Piecewise((1, X > 0))]
    for expr in exprs:
        node = gc.from_sympy(expr, {X: x, "y": y})
        assert node.graph is g
        for xv in (-0.7, 0.3, 1.0, 1.6):
            want = complex(sp.N(expr.subs({X: xv, Y: 0.75})))
            got = float(g.run(node, {x: xv}))
            assert np.isclose(got, want.real, equal_nan=True) or (np.isnan(got) and
                                                                 np.isnan(want.real)), expr


def test_from_sympy_of_to_sympy_computes_the_same_values():
    for seed in range(10):
        g, x, y, out = random_scalar_graph(random.Random(seed), smooth=seed % 2 == 0)
        back = gc.from_sympy(gc.to_sympy(out, REAL), {X: x, Y: y})
        for xv in (-1.1, 0.2, 1.4):
            assert np.isclose(g.run(back, {x: xv}), g.run(out, {x: xv}))


def test_from_sympy_keeps_the_dtype_of_the_nodes_and_shares_subexpressions():
    g = gc.Graph()
    x = g.placeholder("x", dtype="float32")
    node = gc.from_sympy(sp.sin(X) * 2 + sp.sin(X) ** 2, {X: x})
    assert node.dtype == np.float32
    assert sum(n.op == "sin" for n in g.nodes) == 1
    assert gc.from_sympy(sp.Integer(3), {}, graph=g).op == "constant"


def test_bridge_errors_are_clear():
    g = gc.Graph()
    v = g.placeholder("v", (3,))
    with pytest.raises(gc.GraphcError, match="scalar graphs.*shape \\(3,\\)"):
        gc.to_sympy(gc.sum(v))
    x = g.placeholder("x")
    with pytest.raises(gc.GraphcError, match="no graphc op for gamma"):
        gc.from_sympy(sp.gamma(X), {X: x})
    with pytest.raises(gc.GraphcError, match="symbol 'y' has no node"):
        gc.from_sympy(X + Y, {X: x})
    with pytest.raises(gc.GraphcError, match="SymPy expression, not str"):
        gc.from_sympy("__import__('os')", {X: x})
    with pytest.raises(gc.GraphcError, match="exactly one graph"):
        gc.from_sympy(sp.Integer(1), {})


def test_an_op_without_a_rule_is_named(monkeypatch):
    g, x, y = scalar_graph()
    monkeypatch.delitem(sympy_bridge._to_sympy_rules(), "tanh")
    with pytest.raises(gc.GraphcError, match="the op 'tanh' has no SymPy form"):
        gc.to_sympy(gc.tanh(x))


# -- symbols and depth ---------------------------------------------------------------------------
def test_symbols_are_plain_by_default_so_that_subs_with_a_plain_symbol_works():
    g, x, y = scalar_graph()
    expr = gc.to_sympy(x * y + 1)
    assert expr.free_symbols == {sp.Symbol("x"), sp.Symbol("y")}
    assert expr.subs({sp.Symbol("x"): 2, sp.Symbol("y"): 3}) == 7
    real = gc.to_sympy(x * y + 1, assumptions={"real": True})
    assert real.free_symbols == {X, Y}
    assert real.subs({X: 2, Y: 3}) == 7
    assert sp.diff(gc.to_sympy(gc.abs(x), {"real": True}), X) == sp.sign(X)


def test_from_sympy_accepts_plain_and_real_symbols():
    g, x, y = scalar_graph()
    for a, b in ((sp.Symbol("x"), sp.Symbol("y")), (X, Y)):
        node = gc.from_sympy(sp.sin(a) * b, {a: x, b: y})
        assert np.isclose(float(g.run(node, {x: 0.5})), np.sin(0.5) * 0.75)
    node = gc.from_sympy(sp.sin(X) * sp.Symbol("y"), {"x": x, "y": y})  # mixed, by name
    assert np.isclose(float(g.run(node, {x: 0.5})), np.sin(0.5) * 0.75)


def test_bad_assumptions_are_a_graphc_error():
    g, x, y = scalar_graph()
    with pytest.raises(gc.GraphcError, match="assumptions"):
        gc.to_sympy(x, assumptions={"real": "yes"})
    with pytest.raises(gc.GraphcError, match="assumptions"):
        gc.to_sympy(x, assumptions=["real"])


def _numeric(expr, values: dict) -> tuple:
    """SymPy's own value of ``expr``, computed bottom-up in a loop (deep trees recurse in subs),
    and the symbols met."""
    done: dict = {}
    symbols = set()
    stack = [expr]
    while stack:
        e = stack[-1]
        todo = [a for a in e.args if id(a) not in done]  # by identity: == recurses
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        if isinstance(e, sp.Symbol):
            done[id(e)] = sp.Float(values[e.name], 30)
            symbols.add(e)
        elif not e.args:
            done[id(e)] = e
        else:
            done[id(e)] = e.func(*(done[id(a)] for a in e.args))  # numbers in, a number out
    return float(done[id(expr)]), symbols


def test_a_5000_deep_chain_converts_and_keeps_its_value():
    g = gc.Graph()
    x = g.placeholder("x")
    y = x
    for k in range(5000):
        y = gc.sin(y) if k % 3 == 0 else gc.tanh(y) * 1.5 if k % 3 == 1 else y + 0.25
    expr = gc.to_sympy(y)
    value, symbols = _numeric(expr, {"x": 0.3})
    assert symbols == {sp.Symbol("x")}  # plain symbols, also deep down (expr.free_symbols recurses)
    assert np.isclose(value, float(g.run(y, {x: 0.3})), rtol=1e-9)
    # a shallow expression stays evaluated however long the chain: x + 0.25 + 0.25 + ...
    z = x
    for _ in range(3000):
        z = z + 0.25
    assert gc.to_sympy(z) == sp.Symbol("x") + 750
