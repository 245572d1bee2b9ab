"""Sparse Hessians from the graph's own structure: colours, pattern and colouring time, compile
and call time, peak memory, against the dense Hessian (where it fits) and CasADi (if installed).

Problems: chained Rosenbrock, a 2-D grid energy with a 5-point stencil, an arrowhead.
Run: python benchmarks/sparse_hessian.py [--sizes 1000 10000 100000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphc as gc  # noqa: E402
from graphc import sparse  # noqa: E402
from common import best_time, table  # noqa: E402


def rosenbrock(x, lib):
    return lib.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def grid(x, lib, N):
    u = lib.reshape(x, (N, N))
    dx, dy = u[1:, :-1] - u[:-1, :-1], u[:-1, 1:] - u[:-1, :-1]
    return lib.sum(lib.sqrt(1 + dx * dx + dy * dy)) + 0.1 * lib.sum(u ** 4)


def arrowhead(x, lib):
    return lib.sum((x[0] * x[1:]) ** 2) + lib.sum(lib.exp(x))


class _Graphc:
    sum, sqrt, exp, reshape = gc.sum, gc.sqrt, gc.exp, gc.reshape


def problems(n):
    N = int(round(np.sqrt(n)))
    return {"rosenbrock": (n, rosenbrock), "grid": (N * N, lambda x, lib: grid(x, lib, N)),
            "arrowhead": (n, arrowhead)}


def measure_graphc(name, n, energy):
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = energy(x, _Graphc)
    t0 = time.perf_counter()
    pattern = gc.hessian_sparsity(z, x)
    t1 = time.perf_counter()
    colours = sparse.star_colouring((pattern + pattern.T).tocsr())
    t2 = time.perf_counter()
    S = gc.sparse_hessian(z, x)
    f = gc.function([x], S)
    t3 = time.perf_counter()
    X = np.random.default_rng(0).uniform(-1, 1, n)
    tracemalloc.start()
    H = f(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    call = best_time(lambda: f(X), repeat=3, min_seconds=0.2)
    dense = float("nan")
    if n <= 2000:
        fd = gc.function([x], gc.hessian(z, x))
        np.testing.assert_allclose(H.toarray(), fd(X), rtol=1e-12, atol=1e-12)
        dense = best_time(lambda: fd(X), repeat=3, min_seconds=0.2) * 1e3
    del colours
    return [name, n, S.ncolors, pattern.nnz, round(t1 - t0, 3), round(t2 - t1, 3),
            round(t3 - t2, 3), round(call * 1e3, 3), round(dense, 3), peak // 1024]


def measure_casadi(name, n, energy):
    import casadi as ca

    class Lib:
        @staticmethod
        def sum(v):
            return ca.sum2(ca.sum1(v))
        sqrt, exp = staticmethod(ca.sqrt), staticmethod(ca.exp)

        @staticmethod
        def reshape(v, shape):
            return ca.reshape(v, shape[1], shape[0]).T  # C order

    x = ca.SX.sym("x", n)
    t0 = time.perf_counter()
    z = energy(x, Lib)
    H = ca.hessian(z, x)[0]
    f = ca.Function("h", [x], [H])
    built = time.perf_counter() - t0
    X = np.random.default_rng(0).uniform(-1, 1, n)
    call = best_time(lambda: f(X), repeat=3, min_seconds=0.2)
    return [name, n, round(built, 3), round(call * 1e3, 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    rows, peers = [], []
    try:
        import casadi  # noqa: F401
        have_casadi = True
    except ImportError:
        have_casadi = False
    for n in args.sizes:
        for name, (size, energy) in problems(n).items():
            rows.append(measure_graphc(name, size, energy))
            if have_casadi and size <= 10000:
                try:
                    peers.append(measure_casadi(name, size, energy))
                except Exception as exc:  # a construct this port does not express
                    peers.append([name, size, f"failed: {type(exc).__name__}", ""])
    print("graphc sparse Hessians (seconds for pattern/colouring/build+compile, "
          "milliseconds per call)")
    print(table(rows, ["problem", "n", "colours", "nnz", "pattern s", "colouring s",
                       "build+compile s", "call ms", "dense call ms", "peak KiB"]))
    if peers:
        print("\nCasADi SX: ca.hessian + ca.Function (seconds to build, milliseconds per call)")
        print(table(peers, ["problem", "n", "build s", "call ms"]))


if __name__ == "__main__":
    main()
