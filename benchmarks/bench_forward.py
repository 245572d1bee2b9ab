"""Forward mode vs reverse mode (issue 11).  Run: python benchmarks/bench_forward.py

1. The Jacobian of an MLP f: R^10 -> R^1000 by jacfwd (one forward sweep, 10 directions) and
   by jacobian(mode="rev") (one reverse sweep, 1000 directions): build, compile and per-call
   time, and the graph sizes.
2. The dense Hessian of (sum tanh(A x))^2 + x.x/2 at n = 10, 100, 300, and its
   Hessian-vector product at n = 1000: forward over reverse vs reverse over reverse (checked
   against the closed form), and JAX's jax.hessian / jvp(grad) when JAX is installed.
3. Forward-mode graph size relative to the forward graph: the MLP and a depth-1000 tanh chain.
"""
from __future__ import annotations

import os
import sys
import time

# one BLAS thread: on a shared 2-core machine, threads fighting for cores make matrix-vector
# products 10-100x slower at random, which would drown the difference between the modes
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphc as gc  # noqa: E402
from common import available, best_time, interleaved, table  # noqa: E402


def mlp(inputs=10, hidden=64, outputs=1000):
    rng = np.random.default_rng(0)
    g = gc.Graph()
    x = g.placeholder("x", (inputs,))
    W1 = g.constant(rng.standard_normal((inputs, hidden)) / np.sqrt(inputs), name="W1")
    W2 = g.constant(rng.standard_normal((hidden, outputs)) / np.sqrt(hidden), name="W2")
    return g, x, gc.tanh(gc.tanh(x @ W1) @ W2), rng.standard_normal(inputs)


def jacobian_rows() -> list:
    rows, values = [], {}
    for mode in ("fwd", "rev"):
        g, x, y, X = mlp()
        before = len(g)
        start = time.perf_counter()
        J = gc.jacfwd(y, x) if mode == "fwd" else gc.jacobian(y, x, mode="rev")
        built = time.perf_counter()
        f = gc.function([x], J)
        compiled = time.perf_counter()
        values[mode] = f(X)
        call = best_time(lambda: f(X), repeat=5, min_seconds=0.3)
        rows.append([mode, (built - start) * 1e3, (compiled - built) * 1e3, call * 1e3,
                     before, len(g) - before, f.stats["nodes"]["final"]])
    np.testing.assert_allclose(values["fwd"], values["rev"], rtol=1e-10, atol=1e-12)
    return rows


def problem(n: int):
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = gc.sum(gc.tanh(g.constant(A, name="A") @ x)) ** 2 + 0.5 * gc.sum(x * x)
    return g, x, z, A, rng.standard_normal(n), rng.standard_normal(n)


def closed_form(A, X):
    t = np.tanh(A @ X)
    d = 1 - t * t
    s = t.sum()
    u = A.T @ d
    return 2 * np.outer(u, u) + 2 * s * (A.T * (-2 * t * d)) @ A + np.eye(len(X))


def jax_functions(A):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    Aj = jnp.asarray(A)

    def z(x):
        return jnp.sum(jnp.tanh(Aj @ x)) ** 2 + 0.5 * jnp.sum(x * x)
    hess = jax.jit(jax.hessian(z))
    hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(z), (x,), (v,))[1])
    return hess, hvp


def hessian_rows() -> list:
    rows = []
    for n in (10, 100, 300):
        timings = {}
        for mode in ("fwd", "rev"):
            g, x, z, A, X, _ = problem(n)
            before = len(g)
            start = time.perf_counter()
            H = gc.hessian(z, x, mode=mode)
            built = time.perf_counter()
            f = gc.function([x], H)
            compiled = time.perf_counter()
            np.testing.assert_allclose(f(X), closed_form(A, X), rtol=1e-9, atol=1e-10)
            timings[mode] = (f, X, (built - start) * 1e3, (compiled - built) * 1e3,
                             len(g) - before, f.stats["nodes"]["final"])
        calls = interleaved({m: (lambda f=t[0], X=t[1]: f(X)) for m, t in timings.items()})
        jax_call = None
        if available("jax"):
            hess, _ = jax_functions(A)
            hess(X).block_until_ready()
            jax_call = best_time(lambda: hess(X).block_until_ready()) * 1e3
        for mode, (_, _, build, compile_, nodes, terms) in timings.items():
            rows.append([f"hessian n={n}", mode, build, compile_, calls[mode] * 1e3, nodes,
                         terms, "-" if jax_call is None else jax_call])
    n = 1000
    timings = {}
    for mode in ("fwd", "rev"):
        g, x, z, A, X, V = problem(n)
        before = len(g)
        start = time.perf_counter()
        Hv = gc.hvp(z, x, V, mode=mode)
        built = time.perf_counter()
        f = gc.function([x], Hv)
        compiled = time.perf_counter()
        np.testing.assert_allclose(f(X), closed_form(A, X) @ V, rtol=1e-9, atol=1e-9)
        timings[mode] = (f, X, (built - start) * 1e3, (compiled - built) * 1e3,
                         len(g) - before, f.stats["nodes"]["final"])
    calls = interleaved({m: (lambda f=t[0], X=t[1]: f(X)) for m, t in timings.items()})
    jax_call = None
    if available("jax"):
        _, hvp = jax_functions(A)
        hvp(X, V).block_until_ready()
        jax_call = best_time(lambda: hvp(X, V).block_until_ready()) * 1e3
    for mode, (_, _, build, compile_, nodes, terms) in timings.items():
        rows.append([f"hvp n={n}", mode, build, compile_, calls[mode] * 1e3, nodes, terms,
                     "-" if jax_call is None else jax_call])
    return rows


def size_rows() -> list:
    rows = []
    g, x, y, _ = mlp()
    forward = len(g)
    gc.jvp(y, x, np.ones(10))
    rows.append(["MLP 10-64-1000", forward, len(g) - forward, (len(g) - forward) / forward])
    g = gc.Graph()
    x = g.placeholder("x", (4,))
    y = x
    for k in range(1000):
        y = gc.tanh(y * (1.0 + k / 1000))
    forward = len(g)
    gc.jvp(y, x, np.ones(4))
    rows.append(["tanh chain, depth 1000", forward, len(g) - forward,
                 (len(g) - forward) / forward])
    return rows


def main() -> None:
    print("Jacobian of an MLP R^10 -> R^1000 (milliseconds; nodes added to the graph; terms "
          "after compiling)")
    print(table(jacobian_rows(), ["mode", "build", "compile", "call", "forward nodes",
                                  "derivative nodes", "compiled terms"]))
    print()
    print("Hessian and HVP of (sum tanh(A x))^2 + x.x/2: forward over reverse (fwd) vs "
          "reverse over reverse (rev), milliseconds" +
          ("" if available("jax") else "; JAX is not installed"))
    print(table(hessian_rows(), ["problem", "mode", "build", "compile", "call",
                                 "derivative nodes", "compiled terms", "JAX call"]))
    print()
    print("Forward-mode (jvp) graph size relative to the forward graph")
    print(table(size_rows(), ["graph", "forward nodes", "jvp nodes", "ratio"]))


if __name__ == "__main__":
    main()
