"""Shared helpers for the benchmark scripts: timing (:class:`Call`, :func:`best_time`), peak
memory and table printing."""
from __future__ import annotations

import gc as _gc
import importlib.util
import time
import timeit
import tracemalloc
from typing import Callable, Optional


class Call:
    """One system's call, timed as the statement ``fn(a0, a1, ...)`` that :mod:`timeit` runs
    with ``fn`` and the arguments as its globals: the function called directly, as a user's
    code calls it, with no wrapper frame timed with it (a lambda around the call costs
    0.05-0.08 us, 5-8 % of a 1 us call). ``then`` wraps the result inside the statement
    (``jax.block_until_ready``: JAX dispatches asynchronously, so waiting belongs to the
    call). A Call is also a zero-argument callable that makes the call once."""

    def __init__(self, fn: Callable, *args, then: Optional[Callable] = None) -> None:
        self.fn, self.args, self.then = fn, args, then

    def __call__(self):
        result = self.fn(*self.args)
        return result if self.then is None else self.then(result)

    def timer(self, clock: Callable[[], float] = time.perf_counter) -> timeit.Timer:
        """A Timer of the statement; the cyclic collector stays on (timeit turns it off by
        default), as in the user's program, so a call pays for the garbage it makes."""
        names = [f"_a{k}" for k in range(len(self.args))]
        stmt = f"_fn({', '.join(names)})"
        if self.then is not None:
            stmt = f"_then({stmt})"
        return timeit.Timer(stmt, setup="_gc_enable()", timer=clock,
                            globals={"_fn": self.fn, "_then": self.then,
                                     "_gc_enable": _gc.enable, **dict(zip(names, self.args))})


def loop_seconds(clock: Callable[[], float] = time.perf_counter, number: int = 10**6) -> float:
    """Seconds per iteration of timeit's loop with an empty statement: the harness's own
    share of every figure of :func:`best_time` (best of 5)."""
    timer = timeit.Timer("pass", timer=clock)
    return min(timer.timeit(number) for _ in range(5)) / number


def best_time(fn: Callable, *, repeat: int = 7, min_seconds: float = 0.2,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Best-of-``repeat`` seconds per call, each run long enough to be measured. ``fn`` is a
    :class:`Call` (timed as its statement) or a zero-argument callable (timed as
    ``fn()``). ``clock`` may be ``time.process_time``: CPU seconds of all the process's
    threads, which other programs sharing the CPU do not inflate (wall-clock time on a busy
    machine does)."""
    timer = (fn if isinstance(fn, Call) else Call(fn)).timer(clock)
    timer.timeit(1)
    number = 1
    while timer.timeit(number) < min_seconds / repeat:
        number *= 2
    return min(timer.timeit(number) / number for _ in range(repeat))


def interleaved(fns: dict, *, rounds: int = 5, min_seconds: float = 0.1) -> dict:
    """Best seconds per call of each function (a :class:`Call` or a zero-argument callable),
    measured in alternation (fair on a busy box)."""
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
