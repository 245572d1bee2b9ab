"""(d) Dense Hessian of sum(tanh(A x)) + 0.5 x.x for n = 10, 100, 300: time to build the
Hessian graph, compile it, and call it (checked against the closed form
A^T diag(-2 tanh(Ax) (1 - tanh(Ax)^2)) A + I).  Run: python benchmarks/bench_hessian.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import best_time, table, tanh_hessian_problem  # noqa: E402


def measure(n: int) -> list:
    g, x, z, A = tanh_hessian_problem(gc, n)
    rng = np.random.default_rng(n + 1)
    start = time.perf_counter()
    H = gc.hessian(z, x)
    built = time.perf_counter()
    f = gc.function([x], H)
    compiled = time.perf_counter()
    X = rng.standard_normal(n)
    t = np.tanh(A @ X)
    want = A.T @ (((-2 * t * (1 - t * t))[:, None]) * A) + np.eye(n)
    np.testing.assert_allclose(f(X), want, rtol=1e-10, atol=1e-12)
    call = best_time(lambda: f(X), repeat=5, min_seconds=0.2)
    hand = best_time(lambda: A.T @ ((-2 * np.tanh(A @ X) * (1 - np.tanh(A @ X) ** 2))[:, None]
                                    * A) + np.eye(n), repeat=5, min_seconds=0.2)
    return [n, (built - start) * 1e3, (compiled - built) * 1e3, call * 1e3, hand * 1e3,
            f.stats["nodes"]["source"], f.stats["nodes"]["final"],
            f.stats["planned_peak_bytes"] // 1024]


def main() -> None:
    rows = [measure(n) for n in (10, 100, 300)]
    print("Dense Hessian of sum(tanh(A x)) + 0.5 x.x (milliseconds)")
    print(table(rows, ["n", "build", "compile", "call", "closed form", "terms before",
                       "terms after", "planned KiB"]))


if __name__ == "__main__":
    main()
