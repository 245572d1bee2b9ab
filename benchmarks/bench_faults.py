"""Minor page faults and time per call of registry kernels on large arrays (issue 15).

glibc gives memory back to the OS when more than its trim threshold is free at the top of the
heap; a kernel that frees two or more temporaries of its input's size at its end leaves that
much, and the next call faults every page in again (about 250 faults per MB). This script
counts ``ru_minflt`` per call after 5 warm-up calls, in a fresh process per kernel and shape.

    python benchmarks/bench_faults.py --sweep               # every kernel with a shape case
    python benchmarks/bench_faults.py --only sigmoid,silu   # these ops (names, comma-separated)
    python benchmarks/bench_faults.py --only sigmoid --against DIR   # old (DIR) against new

Shapes: 128x1000 float64, 256x1000 float32 (1 MB each) and 1000x1000 float64 (8 MB); with
``--small`` 0-d and 128x10 instead (time only: nothing faults there). Inputs: each op's first
case whose inputs are all shapes (or, for the cross-entropies, labels built to fit), each
shape replaced by the one timed, uniform in the case's [low, high].
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LARGE = [("float64", (128, 1000)), ("float32", (256, 1000)), ("float64", (1000, 1000))]
SMALL = [("float64", ()), ("float64", (128, 10)), ("float32", (128, 10))]
# ops whose kernels are not about values on arrays (sources, indexing, shapes, linear algebra)
_SKIP = {"placeholder", "variable", "constant", "random_uniform", "random_normal",
         "random_permutation", "random_next", "composite", "eye_like", "broadcast_to",
         "broadcast_like", "reshape_like", "sum_to", "full_like"}


def _inputs(op, dtype, shape, rng):
    """(args, attrs) for ``op`` at ``shape``, or None when no case fits."""
    if op.name == "softmax_cross_entropy":
        logits = rng.standard_normal(shape).astype(dtype)
        if not shape:
            return None
        targets = rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype)
        return [(logits, targets), {}]
    for case in op.cases:
        if case.inputs and all(isinstance(s, tuple) for s in case.inputs):
            if any(len(s) != len(case.inputs[0]) for s in case.inputs):
                continue
            if op.elementwise or len(case.inputs[0]) == len(shape):
                args = tuple(rng.uniform(case.low, case.high, shape).astype(dtype)
                             for _ in case.inputs)
                if not shape:
                    args = tuple(a[()] for a in args)  # 0-d: NumPy scalars, as g.run passes
                attrs = dict(case.attrs)
                if isinstance(attrs.get("axis"), int):  # the canonical form kernels get
                    attrs["axis"] = (attrs["axis"],)
                return [args, attrs]
    return None


def measure(name: str, dtype: str, shape: tuple, calls: int = 20) -> dict:
    """us and minor faults per call of one kernel (call in a fresh process)."""
    from graphc.ops.registry import REGISTRY
    op = REGISTRY[name]
    spec = _inputs(op, dtype, shape, np.random.default_rng(0))
    if spec is None:
        return {}
    (args, attrs), kernel = spec, op.kernel
    with np.errstate(all="ignore"):
        for _ in range(5):
            kernel(*args, **attrs)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.process_time()
        for _ in range(calls):
            kernel(*args, **attrs)
        seconds = time.process_time() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        if seconds < 0.05:  # small arrays: time more calls, best of 5
            number = max(1, int(calls * 0.01 / max(seconds, 1e-9)))
            best = float("inf")
            for _ in range(5):
                start = time.process_time()
                for _ in range(number):
                    kernel(*args, **attrs)
                best = min(best, (time.process_time() - start) / number)
            seconds = best * calls
    return {"us": seconds / calls * 1e6, "faults": faults / calls}


def measure_all(names, dtype: str, shape: tuple) -> dict:
    out = {}
    for name in names:
        try:
            out[name] = measure(name, dtype, shape)
        except Exception as exc:  # an op whose first case does not scale: not timed
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _child(root: str, names, dtype, shape, batch=False) -> dict:
    """Run ``measure`` for each name in a fresh process under ``root`` (``batch``: all names
    in one process, for the sweep; glibc's thresholds only grow, to the same sizes here)."""
    out = {}
    for group in [names] if batch else [[n] for n in names]:
        code = (f"import sys, json; sys.path.insert(0, {root!r}); sys.path.insert(0, {HERE!r});"
                f"import bench_faults as b; print(json.dumps(b.measure_all({group!r}, "
                f"{dtype!r}, {tuple(shape)!r})))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=root, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        if proc.returncode:
            raise RuntimeError(proc.stderr)
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def _names(root: str, only: str) -> list:
    if only:
        return only.split(",")
    code = (f"import sys; sys.path.insert(0, {root!r}); from graphc.ops.registry import "
            f"REGISTRY; print(' '.join(REGISTRY))")
    names = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=root, check=True).stdout.split()
    return [n for n in names if n not in _SKIP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(HERE))
    parser.add_argument("--against", help="another checkout (before): rounds alternate")
    parser.add_argument("--only", default="", help="op names, comma-separated")
    parser.add_argument("--sweep", action="store_true", help="every op; print the faulting")
    parser.add_argument("--small", action="store_true", help="0-d and 128x10 instead")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch", action="store_true",
                        help="all ops in one process per shape (quicker; fewer faults show)")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()
    roots = ([os.path.abspath(args.against)] if args.against else []) + [
        os.path.abspath(args.root)]
    names = _names(roots[-1], args.only)
    sizes = SMALL if args.small else LARGE
    results = {}  # (root, dtype, shape) -> [run, ...]
    for _ in range(args.rounds):
        for dtype, shape in sizes:
            for root in roots:
                key = (root, dtype, shape)
                results.setdefault(key, []).append(_child(root, names, dtype, shape, args.batch))
    tags = ["before", "after"] if len(roots) > 1 else ["now"]
    print(f"{'kernel':24s} {'shape':>16s}" + "".join(
        f"{t + ' us (min-max)':>26s}{t + ' faults':>14s}" for t in tags))
    for name in names:
        for dtype, shape in sizes:
            cells, shown = [], False
            for root in roots:
                runs = [r[name] for r in results[(root, dtype, shape)] if "us" in r.get(name, {})]
                if not runs:
                    cells.append(f"{'-':>26s}{'-':>14s}")
                    continue
                us = sorted(r["us"] for r in runs)
                faults = float(np.median([r["faults"] for r in runs]))
                shown = shown or faults >= 10 or not args.sweep
                cells.append(f"{np.median(us):12.1f} ({us[0]:.1f}-{us[-1]:.1f})".rjust(26)
                             + f"{faults:14.0f}")
            if shown:
                tag = f"{dtype} {'x'.join(map(str, shape)) or '0-d'}"
                print(f"{name:24s} {tag:>16s}" + "".join(cells), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({f"{r}|{d}|{s}": v for (r, d, s), v in results.items()}, fh)


if __name__ == "__main__":
    main()
