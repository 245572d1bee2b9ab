"""(c) gradients() + function() time for a tanh chain of depth 250, 1000 and 4000.
Run: python benchmarks/bench_chain.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import table, tanh_chain  # noqa: E402


def measure(depth: int) -> list:
    g, x, loss = tanh_chain(gc, depth)
    start = time.perf_counter()
    dx = gc.grad(loss, x)
    grads = time.perf_counter() - start
    f = gc.function([x], [loss, dx])
    total = time.perf_counter() - start
    value = np.linspace(-1, 1, 10)
    np.testing.assert_allclose(f(value)[1], g.run(dx, {x: value}), rtol=1e-12)
    s = f.stats["seconds"]
    return [depth, len(g), grads, s["passes"], s["schedule"], s["codegen"], total,
            total / len(g) * 1e6]


def main() -> None:
    rows = [measure(d) for d in (250, 1000, 4000)]
    print("tanh chain: gc.grad + gc.function (seconds)")
    print(table(rows, ["depth", "nodes", "gradients", "passes", "schedule", "codegen",
                       "total", "us/node"]))


if __name__ == "__main__":
    main()
