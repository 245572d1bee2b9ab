"""The softmax family's, one_hot_like's and the relu backward's kernels per call, at the MLP's
shapes (logits 128x10, hidden 128x256) and at long, tall, 1-d and 3-d ones, float32 and float64.

    python benchmarks/bench_nn_kernels.py                       # this checkout
    python benchmarks/bench_nn_kernels.py --against DIR --rounds 5   # before/after, alternated
    python benchmarks/bench_nn_kernels.py --after-matmul --only 128x   # as inside the MLP step

With ``--against``, whole runs alternate between the two checkouts (one subprocess each per
round); the table gives the median and the min-max over the rounds of each checkout's best
CPU time, and after/before. With ``--after-matmul`` each call is timed alone right after a
128x784 @ 784x256 float32 matmul, as in the MLP step, where the matmuls evict the kernels' code
and data (a small kernel then costs 1.5-3x its warm time): the best over 5 repeats of the 25th
percentile of 100 such calls' wall times.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LOGIT_SHAPES = [(128, 10), (128, 1000), (10000, 10), (10,), (1000,), (8, 16, 10)]


def cases():
    """(name, call) for every kernel and shape timed."""
    from graphc.compiler.codegen import fill_where_not
    from graphc.ops.registry import REGISTRY
    rng = np.random.default_rng(0)
    out = []
    for dtype in ("float32", "float64"):
        for shape in LOGIT_SHAPES:
            x = rng.standard_normal(shape).astype(dtype)
            labels = rng.integers(0, shape[-1], shape[:-1])
            targets = rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype)
            tag = f"{dtype} {'x'.join(map(str, shape))}"
            k = {name: REGISTRY[name].kernel for name in (
                "softmax", "log_softmax", "logsumexp", "softmax_cross_entropy",
                "one_hot_like")}
            out += [
                (f"softmax {tag}", lambda k=k, x=x: k["softmax"](x, axis=(-1,))),
                (f"log_softmax {tag}", lambda k=k, x=x: k["log_softmax"](x, axis=(-1,))),
                (f"logsumexp {tag}",
                 lambda k=k, x=x: k["logsumexp"](x, axis=(-1,), keepdims=False)),
                (f"sce int labels {tag}",
                 lambda k=k, x=x, y=labels: k["softmax_cross_entropy"](x, y)),
                (f"sce prob labels {tag}",
                 lambda k=k, x=x, t=targets: k["softmax_cross_entropy"](x, t)),
                (f"one_hot_like {tag}", lambda k=k, x=x, y=labels: k["one_hot_like"](y, x))]
        h = rng.standard_normal((128, 256)).astype(dtype)
        g = rng.standard_normal((128, 256)).astype(dtype)
        tag = f"{dtype} 128x256"
        mean, total = REGISTRY["mean"].kernel, REGISTRY["sum"].kernel
        out += [(f"relu {tag}", lambda h=h, r=REGISTRY["relu"].kernel: r(h)),
                (f"greater {tag}", lambda h=h, k=REGISTRY["greater"].kernel: k(h, 0)),
                (f"fill_where_not {tag}",
                 lambda c=h > 0, g=g: fill_where_not(c, g.copy(), 0)),  # copy: timed apart
                (f"copy (fill's share) {tag}", lambda g=g: g.copy()),
                (f"sum axis 0 {tag}",
                 lambda h=h: total(h, axis=(0,), keepdims=False)),
                (f"mean of 128 {dtype}",
                 lambda v=h[:, 0].copy(): mean(v, axis=(0,), keepdims=False))]
    return out


def cpu_best(fn, repeat=5, min_seconds=0.02) -> float:
    fn()
    number = 1
    while True:
        start = time.process_time()
        for _ in range(number):
            fn()
        if time.process_time() - start >= min_seconds:
            break
        number *= 2
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best


def after_matmul(fn, repeat=5, calls=100) -> float:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((128, 784)).astype(np.float32)
    b = rng.standard_normal((784, 256)).astype(np.float32)
    out = np.empty((128, 256), np.float32)
    best = float("inf")
    for _ in range(repeat):
        times = []
        for _ in range(calls):
            np.matmul(a, b, out=out)
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        best = min(best, float(np.percentile(times, 25)))
    return best


def run_once(root: str, only: str = "", cold: bool = False) -> dict:
    sys.path.insert(0, root)
    timer = after_matmul if cold else cpu_best
    with np.errstate(all="ignore"):
        return {name: timer(fn) * 1e6 for name, fn in cases() if only in name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(HERE))
    parser.add_argument("--against", help="another checkout: alternate runs, before/after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="the kernels whose name contains this")
    parser.add_argument("--after-matmul", action="store_true",
                        help="time each call alone right after a big matmul (as in the MLP step)")
    parser.add_argument("--json", help="(internal) write one run's results here")
    args = parser.parse_args()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(run_once(args.root, args.only, args.after_matmul), fh)
        return
    roots = ([os.path.abspath(args.against)] if args.against else []) + [
        os.path.abspath(args.root)]
    runs = {root: [] for root in roots}
    for _ in range(args.rounds):
        for root in roots:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
                path = tmp.name
            subprocess.run([sys.executable, __file__, "--root", root, "--json", path,
                            "--only", args.only] + ["--after-matmul"] * args.after_matmul,
                           check=True)
            with open(path) as fh:
                runs[root].append(json.load(fh))
            os.unlink(path)
    names = list(runs[roots[0]][0])
    heads = [f"{'before' if len(roots) > 1 and r == roots[0] else 'now'} us (min-max)"
             for r in roots] + (["after/before"] if len(roots) > 1 else [])
    print(f"{'kernel':38s}" + "".join(f"{h:>24s}" for h in heads))
    for name in names:
        cells, medians = [], []
        for root in roots:
            values = sorted(run[name] for run in runs[root])
            median = float(np.median(values))
            medians.append(median)
            cells.append(f"{median:8.2f} ({values[0]:.2f}-{values[-1]:.2f})")
        if len(roots) > 1:
            cells.append(f"{medians[1] / medians[0]:.2f}")
        print(f"{name:38s}" + "".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
