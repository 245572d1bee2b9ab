"""Logistic regression on more rows than memory holds: graphc graphs run on Dask.

The data are generated lazily, chunk by chunk, with ``dask.array.random`` (nothing is ever held
in memory whole), so ``--rows 100000000`` (10^8 rows, 16 GB of features at 20 columns) runs on a
laptop; the default is small enough for CI. The same graphc graph gives the loss, its gradient
and its Hessian; ``graphc.dask.function`` runs it as one task per chunk plus a tree of sums.

1. full-batch gradient descent: the updates apply on the client after each pass;
2. Newton's method with the Hessian (a (d+1) x (d+1) matrix, summed over all rows);
3. the fitted weights against an in-memory fit (``gc.function``) on the first ``--check-rows``
   rows: equal to round-off when those are all the rows, within sampling noise otherwise.

    python examples/dask_logistic.py                     # 200 000 rows, seconds
    python examples/dask_logistic.py --rows 100000000 --workers 2
"""
from __future__ import annotations

import argparse
import sys
import time

import dask.array as da
import numpy as np
from dask.diagnostics import ProgressBar

import graphc as gc
import graphc.dask


def model(d: int, l2: float):
    """Mean logistic loss of theta = (w, b) with a small ridge, its gradient and Hessian."""
    g = gc.Graph()
    X = g.placeholder("X", (None, d))
    y = g.placeholder("y", (None,))
    theta = g.variable("theta", np.zeros(d + 1))
    logits = X @ theta[:d] + theta[d]
    loss = gc.mean(gc.sigmoid_cross_entropy(logits, y)) + 0.5 * l2 * gc.sum(theta[:d] ** 2)
    return X, y, theta, loss, gc.grad(loss, theta), gc.hessian(loss, theta)


def lazy_data(rows: int, d: int, chunk: int, seed: int):
    """Features and labels of a known logistic model, as dask arrays (computed chunk by chunk,
    the same values every time they are computed)."""
    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, d), chunks=(chunk, d))
    w_true = np.linspace(-1.0, 1.0, d)
    p = 1.0 / (1.0 + da.exp(-(X @ w_true + 0.5)))
    y = (rng.random(rows, chunks=chunk) < p).astype(np.float64)
    return X, y, np.append(w_true, 0.5)


def newton(fn, theta, tol: float, steps: int, report):
    """Newton steps theta -= H^-1 g until |g| < tol; returns the iterations taken."""
    for k in range(1, steps + 1):
        loss, grad, hess = fn()
        theta.value = theta.value - np.linalg.solve(hess, grad)
        report(k, loss, np.linalg.norm(grad))
        if np.linalg.norm(grad) < tol:
            return k
    return steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per Dask task")
    parser.add_argument("--gd-steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--newton-steps", type=int, default=12)
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--check-rows", type=int, default=1_000_000,
                        help="rows of the in-memory comparison (at most --rows)")
    parser.add_argument("--workers", type=int, default=0,
                        help="start a LocalCluster of this many worker processes "
                             "(0: Dask's threaded scheduler)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out", help="unused; accepted like the other examples")
    args = parser.parse_args(argv)
    d = args.features

    client = None
    if args.workers:
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                               dashboard_address=":0")
        client = Client(cluster)
    Xd, yd, truth = lazy_data(args.rows, d, args.chunk, args.seed)
    X, y, theta, loss, grad, hess = model(d, args.l2)
    print(f"{args.rows} rows x {d} features ({Xd.nbytes / 1e9:.2f} GB, generated lazily), "
          f"{Xd.numblocks[0]} chunks of {args.chunk} rows"
          + (f", {args.workers} worker processes" if client else ", threaded scheduler"))

    # 1. gradient descent: one pass over the rows per step, the update applied on the client
    step = graphc.dask.function([X, y], loss, updates={theta: theta - args.lr * grad},
                                client=client)
    started = time.perf_counter()
    first = last = None
    for k in range(args.gd_steps):
        last = step(Xd, yd)
        first = last if first is None else first
    if args.gd_steps:
        print(f"gradient descent: loss {float(first):.6f} -> {float(last):.6f} after "
              f"{args.gd_steps} steps ({time.perf_counter() - started:.1f} s)")

    # 2. Newton from where gradient descent stopped: loss, gradient and Hessian in one pass
    fn = graphc.dask.function([X, y], [loss, grad, hess], client=client, compute=client is None)
    print(f"the graph splits into {fn.passes} pass over the rows per call")
    started = time.perf_counter()

    def report(k, value, norm):
        print(f"  Newton {k}: loss {float(value):.12f}  |grad| {norm:.2e}", flush=True)

    def one_pass():
        if client is None:
            with ProgressBar(minimum=2.0, out=sys.stderr):  # for passes longer than 2 s
                return fn(Xd, yd)
        from distributed import progress  # compute=False: dask arrays, computed here
        futures = client.compute(fn(Xd, yd))
        if sys.stdout.isatty():  # a bar drawn with carriage returns: not into a log file
            progress(futures, notebook=False)
            print()
        return client.gather(futures)

    iterations = newton(one_pass, theta, 1e-10, args.newton_steps, report)
    fitted = theta.value.copy()
    print(f"Newton: |grad| < 1e-10 after {iterations} iterations "
          f"({time.perf_counter() - started:.1f} s)")
    print(f"fitted w[:4] {np.round(fitted[:4], 4)}  b {fitted[-1]:.4f}  "
          f"(true w[:4] {np.round(truth[:4], 4)}  b {truth[-1]:.4f})")

    # 3. the in-memory fit on the first rows, with gc.function and the same graph
    m = min(args.check_rows, args.rows)
    Xm, ym = Xd[:m].compute(), yd[:m].compute()
    theta.value = np.zeros(d + 1)
    local = gc.function([X, y], [loss, grad, hess])
    newton(lambda: local(Xm, ym), theta, 1e-10, args.newton_steps, lambda *a: None)
    gap = np.max(np.abs(theta.value - fitted))
    if m == args.rows:
        print(f"in-memory fit on all {m} rows: max |theta_dask - theta_memory| = {gap:.2e}")
    else:  # the subsample's estimate differs by sampling noise: measure it in standard errors
        hess_m = local(Xm, ym)[2]  # Fisher information per row, at the subsample's optimum
        se = np.sqrt(np.diag(np.linalg.inv(hess_m)) / m * (1 - m / args.rows))
        print(f"in-memory fit on the first {m} rows: max |theta_dask - theta_memory| = "
              f"{gap:.2e}, at most {np.max(np.abs(theta.value - fitted) / se):.1f} standard "
              "errors of the subsample")
    print(f"max |theta - theta_true| = {np.max(np.abs(fitted - truth)):.3f}")
    if client is not None:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
