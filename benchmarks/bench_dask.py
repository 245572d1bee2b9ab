"""graphc.dask: the gradient of a logistic loss over more rows than a worker's memory.

1. Gradient of a mean logistic loss over --rows x 20 float64 rows (10^7 rows = 1.6 GB by
   default), generated lazily with dask.array.random, on a LocalCluster whose workers are
   limited to --memory-limit (1 GB) each: it completes; peak resident memory per worker; time
   with 1 and 2 workers; beside it the same gradient with gc.function on the same rows as one
   NumPy array (where it fits), and the time Dask takes only to generate the rows.
2. Overhead per chunk: the gradient over --overhead-rows rows already in memory, in tasks of
   10^4, 10^5 and 10^6 rows, against the same graphc kernel called on the same chunks in a
   Python loop (so that cache effects of the chunk size cancel), one BLAS thread everywhere:
   Dask's synchronous scheduler, and a one-worker LocalCluster with the rows persisted on the
   worker. Overhead = graphc.dask time / loop time - 1.

Run: python benchmarks/bench_dask.py [--rows 10000000] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dask  # noqa: E402
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import graphc as gc  # noqa: E402
import graphc.dask  # noqa: E402
from common import table  # noqa: E402

D = 20


def logistic_gradient():
    g = gc.Graph()
    X = g.placeholder("X", (None, D))
    y = g.placeholder("y", (None,))
    w = g.variable("w", np.linspace(-0.5, 0.5, D))
    b = g.variable("b", 0.1)
    loss = gc.mean(gc.sigmoid_cross_entropy(X @ w + b, y))
    return [X, y], gc.gradients(loss, [w, b]), w


def fresh(f, w):
    """``f`` with w nudged before each call: new task keys, so that Dask cannot hand back a
    result it still holds from the previous call (pure tasks with the same inputs)."""
    def call(*args):
        w.value = w.value + 1e-15
        return f(*args)
    return call


def lazy_rows(rows: int, chunk: int, seed: int = 0):
    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, D), chunks=(chunk, D))
    y = (rng.random(rows, chunks=chunk) < 0.5).astype(np.float64)
    return X, y


def _start_rss_sampler(dask_worker, period=0.05):
    """In each worker: a thread keeping the peak resident set size."""
    import psutil

    process = psutil.Process()
    dask_worker.graphc_peak_rss = process.memory_info().rss

    def sample():
        while getattr(dask_worker, "graphc_peak_rss", None) is not None:
            dask_worker.graphc_peak_rss = max(dask_worker.graphc_peak_rss,
                                              process.memory_info().rss)
            time.sleep(period)
    threading.Thread(target=sample, daemon=True).start()


def _peak_rss(dask_worker):
    return dask_worker.graphc_peak_rss


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def big_gradient(args) -> None:
    inputs, grads, w = logistic_gradient()
    rows, chunk = args.rows, args.chunk
    print(f"\n1. gradient over {rows:,} x {D} float64 rows ({rows * D * 8 / 1e9:.2f} GB), "
          f"tasks of {chunk:,} rows, workers limited to {args.memory_limit} each")
    results, reference = [], None
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          memory_limit=args.memory_limit, dashboard_address=":0",
                          silence_logs=50) as cluster, Client(cluster) as client:
            f = fresh(graphc.dask.function(inputs, grads, client=client), w)
            X, y = lazy_rows(rows, chunk)
            f(*lazy_rows(10 * chunk, chunk))  # compile the kernel on the workers
            client.run(_start_rss_sampler)
            t_grad = best_of(lambda: f(X, y), args.repeat)
            peaks = client.run(_peak_rss)
            scale = iter(range(1, 100))
            t_gen = best_of(lambda: client.compute([(X * next(scale)).sum(), y.sum()],
                                                   sync=True), args.repeat)
            w.value = np.linspace(-0.5, 0.5, D)
            value = graphc.dask.function(inputs, grads, client=client)(X, y)
            reference = value if reference is None else reference
            same = all(np.allclose(a, b, rtol=1e-12, atol=0) for a, b in zip(value, reference))
            results.append([workers, t_grad, t_gen, max(peaks.values()) / 2**20, same])
    print(table([[w, f"{t:.2f}", f"{g:.2f}", f"{p:.0f}", s] for w, t, g, p, s in results],
                ["workers", "gradient s", "generating only s", "peak RSS/worker MB",
                 "same result"]))
    print(f"speed-up 1 -> 2 workers: {results[0][1] / results[1][1]:.2f}x "
          f"(this machine has {os.cpu_count()} cores, shared)")
    if args.in_memory:
        X, y = lazy_rows(rows, chunk)
        Xn, yn = dask.compute(X, y, scheduler="threads")
        f = gc.function(inputs, grads)
        t_mem = best_of(lambda: f(Xn, yn), args.repeat)
        w.value = np.linspace(-0.5, 0.5, D)
        close = all(np.allclose(a, b, rtol=1e-10) for a, b in zip(f(Xn, yn), reference))
        print(f"in memory, gc.function on one {Xn.nbytes / 1e9:.2f} GB NumPy array "
              f"(data ready): {t_mem:.2f} s, same gradient: {close}; graphc.dask on 1 worker "
              f"minus generating: {results[0][1] - results[0][2]:.2f} s")
        del Xn, yn


def overhead(args) -> None:
    """Dask's cost per task: graphc.dask against the same kernel called on the same chunks in
    a Python loop (one BLAS thread everywhere, as in a Dask worker)."""
    from threadpoolctl import threadpool_limits

    inputs, grads, w = logistic_gradient()
    rows = args.overhead_rows
    Xn, yn = dask.compute(*lazy_rows(rows, 10**5, seed=1))
    f_mem = gc.function(inputs, grads)
    repeat = args.repeat + 3
    lines = []
    sizes = [s for s in (10**4, 10**5, 10**6) if s <= rows]
    with threadpool_limits(1), LocalCluster(n_workers=1, threads_per_worker=1,
                                            processes=True, dashboard_address=":0",
                                            silence_logs=50) as cluster, \
            Client(cluster, set_as_default=False) as client:
        t_whole = best_of(lambda: f_mem(Xn, yn), repeat)
        fs = fresh(graphc.dask.function(inputs, grads), w)
        fd = fresh(graphc.dask.function(inputs, grads, client=client), w)
        for chunk in sizes:
            def loop():
                return [f_mem(Xn[i:i + chunk], yn[i:i + chunk]) for i in range(0, rows, chunk)]
            t_loop = best_of(loop, repeat)
            X, y = da.from_array(Xn, chunks=(chunk, D)), da.from_array(yn, chunks=chunk)
            with dask.config.set(scheduler="synchronous"):
                t_sync = best_of(lambda: fs(X, y), repeat)
            # the same rows made on the worker (data sent from the client would arrive there
            # in message buffers, unaligned)
            Xp, yp = client.persist([a.rechunk({0: chunk}) for a in lazy_rows(rows, 10**5, 1)])
            fd(Xp, yp)
            t_dist = best_of(lambda: fd(Xp, yp), repeat)
            tasks = -(-rows // chunk)
            for name, t in (("synchronous", t_sync), ("1 worker", t_dist)):
                lines.append([name, chunk, tasks, t_loop * 1e3, t * 1e3, t / t_loop - 1,
                              (t - t_loop) / tasks * 1e6])
    print(f"\n2. overhead per chunk: gradient over {rows:,} x {D} rows in memory, one BLAS "
          f"thread; gc.function on the whole array: {t_whole * 1e3:.1f} ms")
    print(table([[s, f"{c:,}", n, f"{lp:.1f}", f"{t:.1f}", f"{o:+.0%}", f"{p:.0f}"]
                 for s, c, n, lp, t, o, p in lines],
                ["scheduler", "rows/task", "tasks", "kernel loop ms", "graphc.dask ms",
                 "overhead", "us/task"]))
    for scheduler in ("synchronous", "1 worker"):
        under = [c for s, c, n, lp, t, o, p in lines if s == scheduler and o < 0.10]
        print(f"{scheduler}: overhead under 10% from {min(under):,} rows per task"
              if under else f"{scheduler}: overhead above 10% at every chunk size tried")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10**7)
    parser.add_argument("--chunk", type=int, default=250_000)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--overhead-rows", type=int, default=2 * 10**6)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-in-memory", dest="in_memory", action="store_false")
    parser.add_argument("--only", choices=["big", "overhead"])
    parser.add_argument("--quick", action="store_true", help="10^6 rows, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.chunk, args.overhead_rows, args.repeat = 10**6, 100_000, 10**6, 1
    if args.only != "overhead":
        big_gradient(args)
    if args.only != "big":
        overhead(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
