"""(b) The CS231n function f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) with both
gradients, per call with Python floats and with 0-d arrays, vs the hand-written NumPy forward
and backward pass of the CS231n notes (and CasADi when installed); plus the compile time
(gradients + function). Then small-op gradient graphs (broadcasts, sum_to, indexing with
None) against hand-written NumPy: a tiny MLP with batch 4 and sum(tanh(u[:, None] w[None, :])).
Run: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_scalar.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import Call, available, interleaved, table  # noqa: E402


def build(**options):
    g = gc.Graph()
    x = g.placeholder("x", ())
    y = g.placeholder("y", ())
    f = (x + gc.sigmoid(y)) / (gc.sigmoid(x) + (x + y) ** 2)
    dx, dy = gc.gradients(f, [x, y])
    return gc.function([x, y], [f, dx, dy], **options)


def hand(x, y):
    """The staged computation of the CS231n notes (backprop, 'Patterns in backward flow')."""
    sigy = 1.0 / (1 + np.exp(-y))
    num = x + sigy
    sigx = 1.0 / (1 + np.exp(-x))
    xpy = x + y
    xpysqr = xpy ** 2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den ** 2)) * dinvden
    dsigx = dden
    dxpysqr = dden
    dx = (2 * xpy) * dxpysqr
    dy = (2 * xpy) * dxpysqr
    dx += ((1 - sigx) * sigx) * dsigx
    dx += dnum
    dsigy = dnum
    dy += ((1 - sigy) * sigy) * dsigy
    return f, dx, dy


def casadi_function():
    """The same function and gradients in CasADi (SX), or None if it is not installed."""
    if not available("casadi"):
        return None
    import casadi as ca
    cx, cy = ca.SX.sym("x"), ca.SX.sym("y")
    sig = lambda v: 1 / (1 + ca.exp(-v))  # noqa: E731
    cf = (cx + sig(cy)) / (sig(cx) + (cx + cy) ** 2)
    return ca.Function("f", [cx, cy], [cf, ca.gradient(cf, cx), ca.gradient(cf, cy)])


def scalar_calls() -> dict:
    """name -> a Call of the CS231n function and gradients, each checked against hand()."""
    fn, trusted = build(), build(trust_input=True)
    fx, fy = 3.0, -4.0
    X, Y = np.array(fx), np.array(fy)
    for args in ((fx, fy), (X, Y)):
        np.testing.assert_allclose(fn(*args), hand(*args), rtol=1e-13)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(fn(*args), trusted(*args)))
    calls = {"graphc float": Call(fn, fx, fy), "graphc 0-d": Call(fn, X, Y),
             "graphc trust float": Call(trusted, fx, fy), "graphc trust 0-d": Call(trusted, X, Y),
             "numpy float": Call(hand, fx, fy), "numpy 0-d": Call(hand, X, Y)}
    F = casadi_function()
    if F is not None:
        np.testing.assert_allclose([float(v) for v in F(fx, fy)], hand(fx, fy), rtol=1e-13)
        calls["casadi float"] = Call(F, fx, fy)
    return calls


# -- small-op gradient graphs -------------------------------------------------------------------
def tiny_mlp():
    """Loss 0.5 |tanh(X W + b) V + c|^2 and its 4 gradients, batch None (fed 4): the bias
    gradients go through broadcast_like and sums; (graphc Call, numpy Call)."""
    g = gc.Graph()
    X = g.placeholder("X", (None, 3))
    W, b = g.placeholder("W", (3, 5)), g.placeholder("b", (5,))
    V, c = g.placeholder("V", (5, 2)), g.placeholder("c", (2,))
    out = gc.tanh(X @ W + b) @ V + c
    loss = gc.sum(out * out) * 0.5
    f = gc.function([X, W, b, V, c], [loss, *gc.gradients(loss, [W, b, V, c])])

    def hand_mlp(X, W, b, V, c):
        h = np.tanh(X @ W + b)
        out = h @ V + c
        da = (out @ V.T) * (1 - h * h)
        return 0.5 * np.sum(out * out), X.T @ da, da.sum(axis=0), h.T @ out, out.sum(axis=0)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s) for s in ((4, 3), (3, 5), (5,), (5, 2), (2,))]
    for a, r in zip(f(*args), hand_mlp(*args)):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)
    return Call(f, *args), Call(hand_mlp, *args)


def outer_tanh():
    """sum(tanh(u[:, None] * w[None, :])) and its 2 gradients, u of size None (fed 4):
    indexing with None, its gradient, a broadcast seed; (graphc Call, numpy Call)."""
    g = gc.Graph()
    u, w = g.placeholder("u", (None,)), g.placeholder("w", (3,))
    p = gc.sum(gc.tanh(u[:, None] * w[None, :]))
    f = gc.function([u, w], [p, *gc.gradients(p, [u, w])])

    def hand_outer(u, w):
        t = np.tanh(u[:, None] * w[None, :])
        d = 1 - t * t
        return t.sum(), (d * w[None, :]).sum(axis=1), (d * u[:, None]).sum(axis=0)
    rng = np.random.default_rng(1)
    U, W = rng.standard_normal(4), rng.standard_normal(3)
    for a, r in zip(f(U, W), hand_outer(U, W)):
        np.testing.assert_allclose(a, r, rtol=1e-12)
    return Call(f, U, W), Call(hand_outer, U, W)


SMALL_OPS = {"tiny MLP batch 4": tiny_mlp, "sum tanh(u[:,None] w[None,:])": outer_tanh}


def main() -> None:
    compile_times = []
    for _ in range(5):
        start = time.perf_counter()
        fn = build()
        compile_times.append(time.perf_counter() - start)
    times = interleaved(scalar_calls(), rounds=7)
    base = {"float": times["numpy float"], "0-d": times["numpy 0-d"]}
    rows = [[name, t * 1e6, t / base["0-d" if "0-d" in name else "float"]]
            for name, t in times.items()]
    print("CS231n f(x, y) and both gradients, per call (best of interleaved rounds)")
    print(table(rows, ["system", "us", "vs numpy (same argument kind)"]))
    print(f"compile (build + gradients + function): {min(compile_times) * 1e3:.3g} ms; "
          f"terms {fn.stats['nodes']['source']} -> {fn.stats['nodes']['final']}\n")
    rows = []
    for name, make in SMALL_OPS.items():
        ours, theirs = make()
        t = interleaved({"graphc": ours, "numpy": theirs}, rounds=7)
        rows.append([name, t["graphc"] * 1e6, t["numpy"] * 1e6, t["graphc"] / t["numpy"]])
    print("Small-op gradient graphs, per call")
    print(table(rows, ["workload", "graphc us", "numpy us", "ratio"]))


if __name__ == "__main__":
    main()
