"""(b) The CS231n function f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) with both
gradients, per call on 0-d arrays, vs the hand-written NumPy forward and backward pass of
the CS231n notes; plus the compile time (gradients + function).
Run: python benchmarks/bench_scalar.py
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import interleaved, table  # noqa: E402


def build():
    g = gc.Graph()
    x = g.placeholder("x", ())
    y = g.placeholder("y", ())
    f = (x + gc.sigmoid(y)) / (gc.sigmoid(x) + (x + y) ** 2)
    dx, dy = gc.gradients(f, [x, y])
    return gc.function([x, y], [f, dx, dy])


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


def main() -> None:
    compile_times = []
    for _ in range(5):
        start = time.perf_counter()
        fn = build()
        compile_times.append(time.perf_counter() - start)
    X, Y = np.array(3.0), np.array(-4.0)
    np.testing.assert_allclose(fn(X, Y), hand(X, Y), rtol=1e-13)
    times = interleaved({"graphc": lambda: fn(X, Y), "numpy": lambda: hand(X, Y)})
    rows = [[times["graphc"] * 1e6, times["numpy"] * 1e6, times["graphc"] / times["numpy"],
             min(compile_times) * 1e3, fn.stats["nodes"]["source"], fn.stats["nodes"]["final"]]]
    print("CS231n f(x, y) and both gradients on 0-d arrays, per call")
    print(table(rows, ["graphc us", "numpy us", "ratio", "compile ms (build+grad+function)",
                       "terms before", "terms after"]))


if __name__ == "__main__":
    main()
