"""Shared helpers for the benchmark scripts: timing, peak memory and table printing."""
from __future__ import annotations

import gc as _gc
import importlib.util
import time
import tracemalloc
from typing import Callable


def best_time(fn: Callable, *, repeat: int = 7, min_seconds: float = 0.2,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Best-of-``repeat`` seconds per call, each run long enough to be measured. ``clock``
    may be ``time.process_time``: CPU seconds of all the process's threads, which other
    programs sharing the CPU do not inflate (wall-clock time on a busy machine does)."""
    fn()
    number = 1
    while True:
        start = clock()
        for _ in range(number):
            fn()
        if clock() - start >= min_seconds / repeat:
            break
        number *= 2
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        for _ in range(number):
            fn()
        best = min(best, (clock() - start) / number)
    return best


def interleaved(fns: dict, *, rounds: int = 5, min_seconds: float = 0.1) -> dict:
    """Best seconds per call of each function, measured in alternation (fair on a busy box)."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, repeat=1, min_seconds=min_seconds))
    return best


def peak_bytes(fn: Callable) -> int:
    """Peak traced memory (NumPy allocations included) during one call, above the baseline."""
    _gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return peak - base


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def table(rows: list, headers: list) -> str:
    """A plain-text table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


# -- the workloads several scripts share (graphc is passed in: run_all.py compares checkouts) --
def tanh_hessian_problem(gc, n: int):
    """``z = sum(tanh(A x)) + x.x / 2`` with a seeded A of size n: (graph, x, z, A)."""
    import numpy as np

    A = np.random.default_rng(n).standard_normal((n, n)) / np.sqrt(n)
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = gc.sum(gc.tanh(g.constant(A, name="A") @ x)) + 0.5 * gc.sum(x * x)
    return g, x, z, A


def tanh_chain(gc, depth: int):
    """``sum(tanh(tanh(... x)))`` on a vector of 10, ``depth`` deep: (graph, x, loss)."""
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    h = x
    for _ in range(depth):
        h = gc.tanh(h)
    return g, x, gc.sum(h)
