"""Elementwise fusion: a 10-op expression on large arrays, float64 and float32.

    y = exp(-0.5 s) sin(3 x) + log1p(s) tanh(x),  s = x x          (10 ops, 4 transcendental)
    y = ((((0.3 x + 1.2) x - 0.7) x + 2) x + 0.1) / (1 + x x)       (10 ops, + - * / only)

Systems, timed in alternation in one process: graphc (the default pipeline, which fuses),
graphc without the ``fuse`` pass, hand-written NumPy (naive, and in place with ``out=``),
and where installed JAX (``jit``) and numexpr (one thread, like single-threaded BLAS).
graphc's values are checked bit for bit against the naive NumPy program (the same ufuncs);
JAX and numexpr use their own math functions, so their largest difference is printed.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fusion.py [--sizes 1000000 10000000]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Call, available, interleaved, table  # noqa: E402

EXPRESSIONS = ("transcendental", "arithmetic")


# -- the expression, written once per system ------------------------------------------------------
def build(gc, expression: str, n: int, dtype: str, fuse: bool = True):
    """The compiled graphc function of ``expression`` on a vector of ``n``."""
    g = gc.Graph()
    x = g.placeholder("x", (n,), dtype)
    if expression == "transcendental":
        s = x * x
        y = gc.exp(-0.5 * s) * gc.sin(3 * x) + gc.log1p(s) * gc.tanh(x)
    else:
        y = ((((0.3 * x + 1.2) * x - 0.7) * x + 2) * x + 0.1) / (1 + x * x)
    passes = gc.compiler.DEFAULT_PASSES
    if not fuse:
        passes = tuple(p for p in passes if p != "fuse")
    return gc.function([x], y, passes=passes)


def numpy_naive(expression: str):
    if expression == "transcendental":
        def f(x):
            s = x * x
            return np.exp(-0.5 * s) * np.sin(3 * x) + np.log1p(s) * np.tanh(x)
    else:
        def f(x):
            return ((((0.3 * x + 1.2) * x - 0.7) * x + 2) * x + 0.1) / (1 + x * x)
    return f


def numpy_out(expression: str):
    """The same ufuncs in place: two temporaries per call instead of one per op."""
    if expression == "transcendental":
        def f(x):
            s = np.multiply(x, x)
            a = np.multiply(-0.5, s)
            np.exp(a, out=a)
            b = np.multiply(3, x)
            np.sin(b, out=b)
            np.multiply(a, b, out=a)
            np.log1p(s, out=s)
            np.tanh(x, out=b)
            np.multiply(s, b, out=s)
            return np.add(a, s, out=a)
    else:
        def f(x):
            a = np.multiply(0.3, x)
            np.add(a, 1.2, out=a)
            np.multiply(a, x, out=a)
            np.subtract(a, 0.7, out=a)
            np.multiply(a, x, out=a)
            np.add(a, 2, out=a)
            np.multiply(a, x, out=a)
            np.add(a, 0.1, out=a)
            b = np.multiply(x, x)
            np.add(1, b, out=b)
            return np.divide(a, b, out=a)
    return f


def peers(expression: str, dtype: str, X: np.ndarray) -> dict:
    """JAX and numexpr versions, for those installed: name -> the :class:`common.Call` of
    it on ``X`` (JAX's waits for its result)."""
    out = {}
    if available("jax"):
        import jax
        # float64 computes in float64 only with x64 on; float32 stays float32 with it (the
        # dtypes are checked in systems()): set once, as benchmarks/peers.py does, so that
        # no call enters a context manager
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy

        if expression == "transcendental":
            def body(x):
                s = x * x
                return jnp.exp(-0.5 * s) * jnp.sin(3 * x) + jnp.log1p(s) * jnp.tanh(x)
        else:
            def body(x):
                return ((((0.3 * x + 1.2) * x - 0.7) * x + 2) * x + 0.1) / (1 + x * x)
        out["jax"] = Call(jax.jit(body), X, then=jax.block_until_ready)
    if available("numexpr"):
        import numexpr
        numexpr.set_num_threads(1)
        # constants as scalars of the dtype: numexpr's literals are float64 (they upcast)
        text = ("exp(a * x * x) * sin(b * x) + log1p(x * x) * tanh(x)"
                if expression == "transcendental" else
                "((((a * x + b) * x - c) * x + d) * x + e) / (f + x * x)")
        values = (-0.5, 3) if expression == "transcendental" else (0.3, 1.2, 0.7, 2, 0.1, 1)
        constants = {k: np.asarray(v, dtype) for k, v in zip("abcdef", values)}
        out["numexpr"] = Call(numexpr.evaluate, text, {"x": X, **constants})
    return out


def inputs(n: int, dtype: str) -> np.ndarray:
    return np.random.default_rng(n).uniform(-2, 2, n).astype(dtype)


def systems(gc, expression: str, n: int, dtype: str, with_peers: bool = True) -> tuple:
    """``({name: common.Call}, {name: largest |difference| to graphc})``, after checking
    graphc bit for bit against naive NumPy and its unfused program (``with_peers``: JAX and
    numexpr too, where installed). Each system is timed as its own call, no wrapper frame."""
    X = inputs(n, dtype)
    fused, unfused = build(gc, expression, n, dtype), build(gc, expression, n, dtype, False)
    naive, inplace = numpy_naive(expression), numpy_out(expression)
    with np.errstate(all="ignore"):
        want = naive(X)
    got = fused(X)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), "graphc != NumPy"
    assert unfused(X).tobytes() == want.tobytes() and inplace(X).tobytes() == want.tobytes()
    fns = {"graphc": Call(fused, X), "graphc unfused": Call(unfused, X),
           "numpy": Call(naive, X), "numpy out=": Call(inplace, X)}
    differences = {}
    for name, call in (peers(expression, dtype, X) if with_peers else {}).items():
        value = np.asarray(call())
        assert value.dtype == want.dtype, (name, value.dtype)
        differences[name] = float(np.max(np.abs(value - want)))
        fns[name] = call
    return fns, differences


def main() -> None:
    import graphc as gc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        for expression in EXPRESSIONS:
            for dtype in ("float64", "float32"):
                fns, diffs = systems(gc, expression, n, dtype)
                best = interleaved(fns, rounds=args.rounds, min_seconds=0.2)
                base = best["numpy"]
                for name, t in best.items():
                    rows.append([expression, n, dtype, name, t * 1e3, base / t,
                                 diffs.get(name, 0.0)])
    print("elementwise fusion (best of rounds, ms; speed-up = numpy naive / system)")
    print(table(rows, ["expression", "n", "dtype", "system", "ms", "speed-up",
                       "max |diff|"]))


if __name__ == "__main__":
    with np.errstate(all="ignore"):
        main()
