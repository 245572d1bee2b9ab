"""gradients() against independent oracles.

* SymPy: random scalar expressions are built twice, as a graphc graph and as a SymPy expression
  (by a small generator here, not through graphc.io), and their first and second derivatives
  are compared at random points.
* Hand-written NumPy back-propagation: the Deep Learning Book's Algorithms 6.3/6.4 (an MLP with
  tanh layers and squared error) and the MLP of section 6.5.7 (ReLU, softmax cross-entropy,
  L2 weight decay).
* The worked numbers of the CS231n notes on back-propagation ("Backpropagation, Intuitions").
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import sympy as sp

import graphc as gc

# -- a random expression generator: one graph, one SymPy expression, the values at K points ------
K = 12  # points evaluated at once: each variable is a placeholder of shape (K,)
NVARS = 3


class Expr:
    """The same expression three ways: a graphc node, a SymPy expression, NumPy values."""

    def __init__(self, node, sym, value):
        self.node, self.sym, self.value = node, sym, np.asarray(value, dtype=np.float64)


def _constant(rng, g):
    p, q = int(rng.integers(1, 7)), int(rng.choice([1, 2, 4]))
    p = -p if rng.random() < 0.3 else p
    return Expr(g.constant(np.float64(p / q)), sp.Rational(p, q), p / q)


def _ok(value, low=None, away=None, high=50.0):
    value = np.asarray(value)
    if not np.all(np.isfinite(value)) or np.max(np.abs(value)) > high:
        return False
    if low is not None and np.min(value) <= low:
        return False
    return away is None or np.min(np.abs(value)) > away


def _unary(name, a):
    """(graph node, SymPy expression, values) of a unary op, or None outside its domain."""
    v = a.value
    table = {
        "neg": (lambda: -a.node, lambda: -a.sym, lambda: -v, {}),
        "exp": (lambda: gc.exp(a.node), lambda: sp.exp(a.sym), lambda: np.exp(v), {"high": 3.0}),
        "log": (lambda: gc.log(a.node), lambda: sp.log(a.sym), lambda: np.log(v), {"low": 0.2}),
        "log1p": (lambda: gc.log1p(a.node), lambda: sp.log(1 + a.sym), lambda: np.log1p(v),
                  {"low": -0.7}),
        "sqrt": (lambda: gc.sqrt(a.node), lambda: sp.sqrt(a.sym), lambda: np.sqrt(np.abs(v)),
                 {"low": 0.2}),
        "square": (lambda: gc.square(a.node), lambda: a.sym ** 2, lambda: v ** 2, {}),
        "sin": (lambda: gc.sin(a.node), lambda: sp.sin(a.sym), lambda: np.sin(v), {}),
        "cos": (lambda: gc.cos(a.node), lambda: sp.cos(a.sym), lambda: np.cos(v), {}),
        "tanh": (lambda: gc.tanh(a.node), lambda: sp.tanh(a.sym), lambda: np.tanh(v), {}),
        "sigmoid": (lambda: gc.sigmoid(a.node), lambda: 1 / (1 + sp.exp(-a.sym)),
                    lambda: 1 / (1 + np.exp(-v)), {"high": 20.0}),
        "softplus": (lambda: gc.softplus(a.node), lambda: sp.log(1 + sp.exp(a.sym)),
                     lambda: np.log1p(np.exp(v)), {"high": 20.0}),
        "pow_const": None,
    }
    node, sym, value, domain = table[name]
    if not _ok(v, low=domain.get("low"), high=domain.get("high", 50.0)):
        return None
    return Expr(node(), sym(), value())


def _binary(name, a, b):
    u, w = a.value, b.value
    if name == "add":
        return Expr(a.node + b.node, a.sym + b.sym, u + w)
    if name == "sub":
        return Expr(a.node - b.node, a.sym - b.sym, u - w)
    if name == "mul":
        return Expr(a.node * b.node, a.sym * b.sym, u * w)
    if name == "div":
        if not _ok(w, away=0.3):
            return None
        return Expr(a.node / b.node, a.sym / b.sym, u / w)
    if name == "pow":  # a ** b with a > 0
        if not _ok(u, low=0.2, high=10.0) or not _ok(w * np.log(u), high=3.0):
            return None
        return Expr(a.node ** b.node, a.sym ** b.sym, u ** w)
    raise AssertionError(name)


def _pow_const(a, rng):
    p, q = [(2, 1), (3, 1), (-1, 1), (1, 2), (3, 2), (-1, 2), (-2, 1)][int(rng.integers(7))]
    u = a.value
    if (q != 1 and not _ok(u, low=0.2)) or (p < 0 and not _ok(u, away=0.3)):
        return None
    return Expr(a.node ** (p / q), a.sym ** sp.Rational(p, q), u ** (p / q))


UNARY = ["neg", "exp", "log", "log1p", "sqrt", "square", "sin", "cos", "tanh", "sigmoid",
         "softplus", "pow_const"]
BINARY = ["add", "sub", "mul", "div", "pow"]


def random_expression(rng, g, leaves, depth, root=False):
    """A random expression over ``leaves`` (a list of Expr), at most ``depth`` ops deep."""
    if depth == 0 or (not root and rng.random() < 0.2):
        return leaves[int(rng.integers(len(leaves)))] if rng.random() < 0.8 else \
            _constant(rng, g)
    for _ in range(8):  # retry ops whose domain the arguments miss
        if rng.random() < 0.5:
            name = UNARY[int(rng.integers(len(UNARY)))]
            a = random_expression(rng, g, leaves, depth - 1)
            out = _pow_const(a, rng) if name == "pow_const" else _unary(name, a)
        else:
            name = BINARY[int(rng.integers(len(BINARY)))]
            a = random_expression(rng, g, leaves, depth - 1)
            b = random_expression(rng, g, leaves, depth - 1)
            out = _binary(name, a, b)
        if out is not None and _ok(out.value, high=1e3):
            return out
    return Expr(gc.sin(leaves[0].node), sp.sin(leaves[0].sym), np.sin(leaves[0].value))


def _case(seed):
    rng = np.random.default_rng(zlib.crc32(f"sympy-{seed}".encode()))
    g = gc.Graph()
    # x0 and x2 positive (so that log, sqrt and pow apply to them), x1 of either sign
    points = rng.uniform([[0.3], [-1.5], [0.5]], [[2.0], [1.5], [1.5]], size=(NVARS, K))
    xs = [g.placeholder(f"x{i}", (K,)) for i in range(NVARS)]
    syms = sp.symbols(f"x0:{NVARS}", real=True)
    leaves = [Expr(x, s, p) for x, s, p in zip(xs, syms, points)]
    while True:
        expr = random_expression(rng, g, leaves, depth=int(rng.integers(3, 6)), root=True)
        if expr.sym.free_symbols and sp.count_ops(expr.sym) >= 3:
            return g, xs, syms, points, expr


@pytest.mark.parametrize("seed", range(60))
def test_first_and_second_derivatives_match_sympy(seed):
    g, xs, syms, points, expr = _case(seed)
    y = gc.sum(expr.node)  # elementwise in the K points: d y / d x_i is f_i at every point
    first = gc.gradients(y, xs)
    second = [gc.gradients(gc.sum(d), xs) for d in first]
    wanted = [expr.sym] + [sp.diff(expr.sym, s) for s in syms] + \
        [sp.diff(expr.sym, s, t) for s in syms for t in syms]
    reference = sp.lambdify(syms, wanted, "numpy")(*points)
    got = g.run([expr.node] + first + [d for row in second for d in row],
                {x: p for x, p in zip(xs, points)})
    for k, (value, ref) in enumerate(zip(got, reference)):
        ref = np.broadcast_to(np.asarray(ref, dtype=np.float64), np.shape(value))
        scale = 1.0 + np.max(np.abs(ref))
        np.testing.assert_allclose(value, ref, rtol=1e-9, atol=1e-10 * scale,
                                   err_msg=f"entry {k} of {wanted[k]} for f = {expr.sym}")


def test_the_generator_covers_every_op():
    seen = set()
    for seed in range(60):
        _, _, _, _, expr = _case(seed)
        seen |= {n.op for n in expr.node.graph.nodes}
    expected = {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "sqrt",
                "square", "sin", "cos", "tanh", "sigmoid", "softplus"}
    assert expected <= seen, expected - seen


# -- the Deep Learning Book, Algorithms 6.3 and 6.4 ------------------------------------------------
def test_mlp_of_algorithms_6_3_and_6_4():
    """Forward (6.3) and backward (6.4) for an MLP with tanh layers and squared-error cost
    plus lambda * Omega(theta), Omega the sum of squared weights, for one example x."""
    rng = np.random.default_rng(63)
    sizes = [4, 5, 3, 2]
    lam = 0.01
    Ws = [rng.standard_normal((m, n)) * 0.7 for n, m in zip(sizes, sizes[1:])]
    bs = [rng.standard_normal(m) * 0.1 for m in sizes[1:]]
    x_val, y_val = rng.standard_normal(sizes[0]), rng.standard_normal(sizes[-1])

    # graphc
    g = gc.Graph()
    x = g.placeholder("x", (sizes[0],))
    y = g.placeholder("y", (sizes[-1],))
    W = [g.variable(f"W{k + 1}", w) for k, w in enumerate(Ws)]
    b = [g.variable(f"b{k + 1}", v) for k, v in enumerate(bs)]
    h = x
    for Wk, bk in zip(W, b):
        h = gc.tanh(bk + Wk @ h)
    J = gc.sum(gc.square(h - y)) + lam * sum((gc.sum(Wk * Wk) for Wk in W[1:]),
                                             gc.sum(W[0] * W[0]))
    grads = gc.gradients(J, W + b)
    got = g.run(grads, {x: x_val, y: y_val})

    # Algorithm 6.3: forward propagation
    hs = [x_val]
    a_s = []
    for Wk, bk in zip(Ws, bs):
        a_s.append(bk + Wk @ hs[-1])
        hs.append(np.tanh(a_s[-1]))
    # Algorithm 6.4: backward computation
    gW, gb = [None] * len(Ws), [None] * len(Ws)
    grad = 2 * (hs[-1] - y_val)  # g <- grad_yhat J = grad_yhat L(yhat, y)
    for k in reversed(range(len(Ws))):
        grad = grad * (1 - np.tanh(a_s[k]) ** 2)  # g <- grad_a(k) J = g (.) f'(a(k))
        gb[k] = grad  # + lambda grad_b Omega (Omega has no biases)
        gW[k] = np.outer(grad, hs[k]) + lam * 2 * Ws[k]
        grad = Ws[k].T @ grad  # g <- grad_h(k-1) J = W(k)^T g
    for k in range(len(Ws)):
        np.testing.assert_allclose(got[k], gW[k], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got[len(Ws) + k], gb[k], rtol=1e-12, atol=1e-15)


# -- the Deep Learning Book, section 6.5.7 ---------------------------------------------------------
def mlp_657(g, rng, m=8, d=5, hidden=6, classes=4):
    X = g.placeholder("X", (None, d))
    y = g.placeholder("y", (None,), "int64")
    W1 = g.variable("W1", rng.standard_normal((d, hidden)) * 0.6)
    W2 = g.variable("W2", rng.standard_normal((hidden, classes)) * 0.6)
    lam = 1e-2
    H = gc.relu(X @ W1)
    U2 = H @ W2
    J_mle = gc.mean(gc.softmax_cross_entropy(U2, y))
    J = J_mle + lam * (gc.sum(gc.square(W1)) + gc.sum(gc.square(W2)))
    data = {X: rng.standard_normal((m, d)), y: rng.integers(0, classes, m)}
    return J, (X, y, W1, W2, lam), data


def test_mlp_of_section_6_5_7():
    rng = np.random.default_rng(657)
    g = gc.Graph()
    J, (X, y, W1, W2, lam), data = mlp_657(g, rng)
    gW1, gW2 = gc.gradients(J, [W1, W2])
    J_val, got1, got2 = g.run([J, gW1, gW2], data)

    # hand-written back-propagation (the book's figure 6.11)
    Xv, yv, W1v, W2v = data[X], data[y], W1.value, W2.value
    m = Xv.shape[0]
    U1 = Xv @ W1v
    Hv = np.maximum(U1, 0)
    U2 = Hv @ W2v
    Z = U2 - U2.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    J_ref = -np.mean(np.log(P[np.arange(m), yv])) + lam * (np.sum(W1v ** 2) + np.sum(W2v ** 2))
    G = P.copy()
    G[np.arange(m), yv] -= 1
    G /= m  # gradient of the mean cross-entropy with respect to U2
    ref2 = Hv.T @ G + 2 * lam * W2v
    GH = G @ W2v.T
    GU1 = GH * (U1 > 0)  # the ReLU gate: zero where its input is not positive
    ref1 = Xv.T @ GU1 + 2 * lam * W1v
    assert float(J_val) == pytest.approx(J_ref, rel=1e-13)
    np.testing.assert_allclose(got1, ref1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got2, ref2, rtol=1e-12, atol=1e-15)


def test_mlp_of_section_6_5_7_trains():
    """Gradient steps with the symbolic gradient lower the cost (the gradient points uphill)."""
    rng = np.random.default_rng(6571)
    g = gc.Graph()
    J, (X, y, W1, W2, lam), data = mlp_657(g, rng, m=16)
    gW1, gW2 = gc.gradients(J, [W1, W2])
    costs = []
    for _ in range(30):
        cost, d1, d2 = g.run([J, gW1, gW2], data)
        costs.append(float(cost))
        W1.value = W1.value - 0.5 * d1
        W2.value = W2.value - 0.5 * d2
    assert costs[-1] < 0.7 * costs[0]
    assert all(b <= a + 1e-12 for a, b in zip(costs, costs[1:]))


# -- CS231n notes, "Backpropagation, Intuitions" ---------------------------------------------------
def test_cs231n_simple_expression():
    # f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4: q = 3, f = -12
    g = gc.Graph()
    x, y, z = (g.placeholder(n) for n in "xyz")
    q = x + y
    f = q * z
    dq, dx, dy, dz = gc.gradients(f, [q, x, y, z])
    values = g.run([f, dq, dx, dy, dz], {x: -2.0, y: 5.0, z: -4.0})
    assert [float(v) for v in values] == [-12.0, -4.0, -4.0, -4.0, 3.0]


def test_cs231n_sigmoid_neuron():
    # f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) with w = [2, -3, -3], x = [-1, -2]
    g = gc.Graph()
    w = g.placeholder("w", (3,))
    x = g.placeholder("x", (2,))
    feed = {w: np.array([2.0, -3.0, -3.0]), x: np.array([-1.0, -2.0])}
    # as the notes draw the circuit, gate by gate
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    neg = dot * -1.0
    e = gc.exp(neg)
    den = e + 1.0
    f = 1.0 / den
    grads = gc.gradients(f, [w, x, dot, neg, e, den])
    fv, dw, dx, ddot, dneg, de, dden = g.run([f] + grads, feed)
    # the circuit's numbers, to the two decimals the notes print
    assert round(float(fv), 2) == 0.73
    assert [round(v, 2) for v in np.asarray(dx).tolist()] == [0.39, -0.59]
    assert [round(v, 2) for v in np.asarray(dw).tolist()] == [-0.2, -0.39, 0.2]
    assert round(float(dden), 2) == -0.53 and round(float(de), 2) == -0.53
    assert round(float(dneg), 2) == -0.2 and round(float(ddot), 2) == 0.2
    # and exactly: the notes' ddot = (1 - f) f, dx = w[:2] ddot, dw = [x0, x1, 1] ddot
    f_ref = 1 / (1 + math.exp(-1.0))
    ddot_ref = (1 - f_ref) * f_ref
    assert float(fv) == pytest.approx(f_ref, rel=1e-15)
    np.testing.assert_allclose(dx, [2 * ddot_ref, -3 * ddot_ref], rtol=1e-14)
    np.testing.assert_allclose(dw, [-1 * ddot_ref, -2 * ddot_ref, ddot_ref], rtol=1e-14)
    # the same neuron with the sigmoid op
    f2 = gc.sigmoid(gc.sum(w[:2] * x) + w[2])
    dw2, dx2 = g.run(gc.gradients(f2, [w, x]), feed)
    np.testing.assert_allclose(dw2, dw, rtol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-14)


def staged_backprop(x, y):
    """The CS231n notes' staged forward pass and its hand-written backward pass."""
    sigy = 1.0 / (1 + math.exp(-y))                 # (1)
    num = x + sigy                                  # (2)
    sigx = 1.0 / (1 + math.exp(-x))                 # (3)
    xpy = x + y                                     # (4)
    xpysqr = xpy ** 2                               # (5)
    den = sigx + xpysqr                             # (6)
    invden = 1.0 / den                              # (7)
    f = num * invden                                # (8)
    dnum = invden                                   # (8)
    dinvden = num                                   # (8)
    dden = (-1.0 / (den ** 2)) * dinvden            # (7)
    dsigx = (1) * dden                              # (6)
    dxpysqr = (1) * dden                            # (6)
    dxpy = (2 * xpy) * dxpysqr                      # (5)
    dx = (1) * dxpy                                 # (4)
    dy = (1) * dxpy                                 # (4)
    dx += ((1 - sigx) * sigx) * dsigx               # (3)
    dx += (1) * dnum                                # (2)
    dsigy = (1) * dnum                              # (2)
    dy += ((1 - sigy) * sigy) * dsigy               # (1)
    return f, dx, dy, {"num": dnum, "den": dden, "xpy": dxpy, "sigx": dsigx, "sigy": dsigy}


@pytest.mark.parametrize("point", [(3.0, -4.0), (-1.5, 0.25), (0.0, 2.0), (-2.0, 2.1)])
def test_cs231n_staged_function(point):
    # f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2)
    g = gc.Graph()
    x, y = g.placeholder("x"), g.placeholder("y")
    sigy = 1.0 / (1.0 + gc.exp(-y))
    num = x + sigy
    sigx = gc.sigmoid(x)
    xpy = x + y
    den = sigx + xpy ** 2
    f = num / den
    stages = {"num": num, "den": den, "xpy": xpy, "sigx": sigx, "sigy": sigy}
    grads = gc.gradients(f, [x, y] + list(stages.values()))
    got = g.run([f] + grads, {x: point[0], y: point[1]})
    f_ref, dx, dy, d_stages = staged_backprop(*point)
    assert float(got[0]) == pytest.approx(f_ref, rel=1e-14)
    assert float(got[1]) == pytest.approx(dx, rel=1e-12)
    assert float(got[2]) == pytest.approx(dy, rel=1e-12)
    for value, name in zip(got[3:], stages):
        assert float(value) == pytest.approx(d_stages[name], rel=1e-12), name
