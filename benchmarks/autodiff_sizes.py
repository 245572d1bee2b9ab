"""How big are derivative graphs, and how long do they take to build and run?

Table 1: forward vs gradient node counts (the Deep Learning Book's 6.5.7 MLP, the MLP of
Algorithms 6.3/6.4, a depth-1000 chain, a depth-60 graph with 2**60 paths), with a waste audit
of the appended nodes: dead nodes (ancestors of no gradient), products with a constant of ones,
sums with a constant of zeros, and structural duplicates.
Table 2: Hessians of f(x) = sum(tanh(A x)) + 0.5 x.x for n = 10, 100, 1000: nodes added,
build time, run time (graph.run and gc.function, best of 3), error against the closed form.

Run: python benchmarks/autodiff_sizes.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import best_time, table  # noqa: E402


# -- graphs ----------------------------------------------------------------------------------------
def mlp_657():
    """Section 6.5.7: H = relu(X W1), U2 = H W2, J = mean CE(U2, y) + lam (|W1|^2 + |W2|^2)."""
    rng = np.random.default_rng(0)
    g = gc.Graph()
    X = g.placeholder("X", (None, 20))
    y = g.placeholder("y", (None,), "int64")
    W1 = g.variable("W1", rng.standard_normal((20, 16)) * 0.3)
    W2 = g.variable("W2", rng.standard_normal((16, 5)) * 0.3)
    H = gc.relu(X @ W1)
    U2 = H @ W2
    J = gc.mean(gc.softmax_cross_entropy(U2, y)) + 1e-3 * (gc.sum(gc.square(W1))
                                                             + gc.sum(gc.square(W2)))
    feed = {X: rng.standard_normal((32, 20)), y: rng.integers(0, 5, 32)}
    return g, J, [W1, W2], feed


def mlp_63():
    """Algorithms 6.3/6.4: three tanh layers a = b + W h, h = tanh(a), squared error."""
    rng = np.random.default_rng(1)
    g = gc.Graph()
    x = g.placeholder("x", (8,))
    t = g.placeholder("t", (4,))
    sizes = [8, 16, 16, 4]
    params, h = [], x
    for k, (n, m) in enumerate(zip(sizes, sizes[1:])):
        W = g.variable(f"W{k + 1}", rng.standard_normal((m, n)) * 0.4)
        b = g.variable(f"b{k + 1}", np.zeros(m))
        params += [W, b]
        h = gc.tanh(b + W @ h)
    J = gc.sum(gc.square(h - t))
    return g, J, params, {x: rng.standard_normal(8), t: rng.standard_normal(4)}


def chain(depth=1000):
    """z <- tanh(z), ``depth`` times, on a vector; y = sum(z)."""
    g = gc.Graph()
    x = g.placeholder("x", (8,))
    z = x
    for _ in range(depth):
        z = gc.tanh(z)
    return g, gc.sum(z), [x], {x: np.linspace(-1, 1, 8)}


def diamonds(depth=60):
    """z <- sin(z) + cos(z), ``depth`` times: 2**depth paths from x to z."""
    g = gc.Graph()
    x = g.placeholder("x")
    z = x
    for _ in range(depth):
        z = gc.sin(z) + gc.cos(z)
    return g, z, [x], {x: 0.3}


# -- measuring -------------------------------------------------------------------------------------
def ancestors(outputs, start):
    """Ids of the nodes at or after ``start`` that some output needs."""
    seen, stack = set(), [n for n in outputs if n is not None]
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        stack.extend(n.inputs)
    return {i for i in seen if i >= start}


def _all(node, value):
    return node.op == "constant" and node.attrs["value"].size > 0 and \
        bool(np.all(node.attrs["value"] == value))


def audit(graph, start, outputs):
    """Waste among the nodes appended since ``start``."""
    added = graph.nodes[start:]
    live = ancestors(outputs, start)
    dead = [n for n in added if n.id not in live]
    by_one = [n for n in added if n.op == "mul" and any(_all(i, 1) for i in n.inputs)
              and any(i.shape == n.shape and i.dtype == n.dtype and not _all(i, 1)
                      for i in n.inputs)]
    by_zero = [n for n in added if n.op in ("add", "sub") and any(_all(i, 0) for i in n.inputs)]
    keys = {}
    for n in added:
        if n.op in ("constant", "placeholder", "variable"):
            continue
        key = (n.op, tuple(i.id for i in n.inputs), repr(sorted(n.attrs.items(), key=str)))
        keys[key] = keys.get(key, 0) + 1
    duplicates = sum(c - 1 for c in keys.values())
    return {"dead": len(dead), "dead_nonconst": sum(n.op != "constant" for n in dead),
            "mul_by_one": len(by_one), "add_zero": len(by_zero), "duplicates": duplicates}


def gradient_table():
    rows = []
    for label, make in [("MLP of 6.5.7 (relu, softmax CE, L2)", mlp_657),
                        ("MLP of Alg. 6.3/6.4 (3 tanh layers)", mlp_63),
                        ("chain z <- tanh(z), depth 1000", chain),
                        ("z <- sin z + cos z, depth 60 (2^60 paths)", diamonds)]:
        g, y, xs, feed = make()
        forward = len(g)
        t0 = time.perf_counter()
        grads = gc.gradients(y, xs)
        build = time.perf_counter() - t0
        added = len(g) - forward
        waste = audit(g, forward, grads)
        ops = [n.op for n in g.nodes[forward:]]
        compiled = gc.function(list(feed), grads)
        rows.append([label, forward, added, round(added / forward, 2),
                     len(ops) - ops.count("constant"), compiled.stats["nodes"]["final"],
                     f"{build * 1e3:.1f}", waste["dead"], waste["mul_by_one"],
                     waste["add_zero"], waste["duplicates"]])
        g.run(grads, feed)  # every gradient runs
    headers = ["graph", "forward", "added", "ratio", "added non-const", "compiled terms",
               "build ms", "unused", "x1", "+0", "dup"]
    return table(rows, headers)


def hessian_table(sizes=(10, 100, 1000)):
    rows = []
    for n in sizes:
        rng = np.random.default_rng(n)
        A = rng.standard_normal((n, n)) / np.sqrt(n)
        g = gc.Graph()
        x = g.placeholder("x", (n,))
        Av = g.variable("A", A)
        f = gc.sum(gc.tanh(Av @ x)) + 0.5 * gc.sum(x * x)
        forward = len(g)
        t0 = time.perf_counter()
        H = gc.hessian(f, x)
        build = time.perf_counter() - t0
        added = len(g) - forward
        xv = rng.standard_normal(n)
        value = g.run(H, {x: xv})
        run = best_time(lambda: g.run(H, {x: xv}), repeat=3)
        fn = gc.function([x], H)
        compiled_value = fn(xv)
        compiled = best_time(lambda: fn(xv), repeat=3)
        t = np.tanh(A @ xv)
        exact = A.T @ (((-2 * t * (1 - t ** 2)))[:, None] * A) + np.eye(n)
        numpy_time = best_time(lambda: A.T @ (((-2 * t * (1 - t ** 2)))[:, None] * A)
                               + np.eye(n), repeat=3)
        err = max(np.max(np.abs(value - exact)), np.max(np.abs(compiled_value - exact)))
        waste = audit(g, forward, [H])
        rows.append([n, forward, added, fn.stats["nodes"]["final"], f"{build * 1e3:.1f}",
                     f"{run * 1e3:.1f}", f"{compiled * 1e3:.1f}", f"{numpy_time * 1e3:.1f}",
                     f"{err:.1e}", waste["dead"]])
    headers = ["n", "forward", "added", "compiled terms", "build ms", "run ms",
               "compiled ms", "numpy ms", "max error", "unused"]
    return table(rows, headers)


def op_histogram():
    """Which ops the 6.5.7 MLP's gradient appends."""
    g, y, xs, _ = mlp_657()
    start = len(g)
    gc.gradients(y, xs)
    counts = {}
    for n in g.nodes[start:]:
        counts[n.op] = counts.get(n.op, 0) + 1
    return ", ".join(f"{op} {k}" for op, k in sorted(counts.items(), key=lambda kv: -kv[1]))


def main():
    print("Gradient graphs (gradients(y, xs); 'added' counts every appended node)")
    print(gradient_table())
    print()
    print("Nodes appended for the 6.5.7 MLP:", op_histogram())
    print()
    print("Hessian of f(x) = sum(tanh(A x)) + 0.5 x.x (gc.hessian; one batched reverse pass)")
    print(hessian_table())


if __name__ == "__main__":
    main()
