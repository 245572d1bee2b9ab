"""Graph building and compile speed: forward construction and ``gc.grad`` per node built, and
``gc.function`` of the loss and gradient per node of the whole graph, tanh chain.

Run: python benchmarks/bench_build.py [--depths 1000 4000 16000 50000] [--rounds 5]
Before/after one change, interleaved process by process (fair on a busy box):
     python benchmarks/bench_build.py --against /path/to/other/checkout
Where the time goes: python benchmarks/bench_build.py --profile 4000
(the function table's last columns are ``f.stats["seconds"]``: wall time of its stages)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(depths: list) -> dict:
    """Seconds of forward building and of gc.grad, and the nodes each added, per depth."""
    import graphc as gc
    from common import tanh_chain

    out = {}
    for depth in depths:
        start, cpu = time.perf_counter(), time.process_time()
        g, x, loss = tanh_chain(gc, depth)
        forward, forward_cpu = time.perf_counter() - start, time.process_time() - cpu
        built = len(g)
        start, cpu = time.perf_counter(), time.process_time()
        dx = gc.grad(loss, x)
        grads, grads_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        f = gc.function([x], [loss, dx])
        function, function_cpu = time.perf_counter() - start, time.process_time() - cpu
        out[str(depth)] = {"forward_s": forward, "forward_cpu_s": forward_cpu,
                           "forward_nodes": built, "grad_s": grads, "grad_cpu_s": grads_cpu,
                           "grad_nodes": len(g) - built, "function_s": function,
                           "function_cpu_s": function_cpu, "function_nodes": len(g),
                           "stages": f.stats["seconds"], "backend": f.stats["backend"]}
    return out


def profile(depth: int, top: int) -> None:
    import cProfile
    import pstats

    import graphc as gc
    from common import tanh_chain

    for phase in ("forward", "gradients", "function"):
        g, x, loss = tanh_chain(gc, depth)
        dx = gc.grad(loss, x) if phase == "function" else None
        prof = cProfile.Profile()
        prof.enable()
        if phase == "forward":
            tanh_chain(gc, depth)
        elif phase == "gradients":
            gc.grad(loss, x)
        else:
            gc.function([x], [loss, dx])
        prof.disable()
        print(f"== {phase}, depth {depth}")
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1000, 4000, 16000, 50000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--root", default=os.path.dirname(HERE), help="the graphc checkout")
    parser.add_argument("--against", help="another checkout: alternate runs, before/after")
    parser.add_argument("--profile", type=int, metavar="DEPTH", help="cProfile one depth")
    parser.add_argument("--once", action="store_true", help="one round, JSON on stdout")
    args = parser.parse_args()
    sys.path[:0] = [os.path.abspath(args.root), HERE]
    if args.profile:
        profile(args.profile, 25)
        return
    if args.once:
        print(json.dumps(measure(args.depths)))
        return
    roots = [os.path.abspath(r) for r in ([args.against] if args.against else [])]
    roots.append(os.path.abspath(args.root))
    samples = {root: [] for root in roots}
    for _ in range(args.rounds):
        for root in roots:  # a fresh process per round: no state carried between runs
            cmd = [sys.executable, os.path.abspath(__file__), "--root", root, "--once",
                   "--depths", *map(str, args.depths)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            samples[root].append(json.loads(done.stdout))
    for root in roots:
        print(f"[{root}] us per node built, median (min-max) over {args.rounds} rounds; "
              "wall clock and CPU time of this process")
        print(f"{'depth':>7} {'fwd nodes':>10} {'forward wall':>18} {'forward cpu':>18} "
              f"{'grad nodes':>11} {'gradients wall':>18} {'gradients cpu':>18} "
              f"{'grad s':>7}")
        for depth in map(str, args.depths):
            runs = [s[depth] for s in samples[root]]
            per = {key: [1e6 * r[f"{key}_s"] / max(1, r[f"{key.split('_')[0]}_nodes"])
                         for r in runs] for key in ("forward", "forward_cpu", "grad", "grad_cpu")}
            total = statistics.median(r["grad_s"] for r in runs)
            print(f"{depth:>7} {runs[0]['forward_nodes']:>10} {_spread(per['forward']):>18} "
                  f"{_spread(per['forward_cpu']):>18} {runs[0]['grad_nodes']:>11} "
                  f"{_spread(per['grad']):>18} {_spread(per['grad_cpu']):>18} {total:>7.2f}")
        print(f"{'depth':>7} {'nodes':>10} {'function wall':>18} {'function cpu':>18} "
              f"{'function s':>10}  stages (wall us per node: median)")
        for depth in map(str, args.depths):
            runs = [s[depth] for s in samples[root]]
            nodes = runs[0]["function_nodes"]
            wall = [1e6 * r["function_s"] / nodes for r in runs]
            cpu = [1e6 * r["function_cpu_s"] / nodes for r in runs]
            stages = "  ".join(
                f"{stage} {statistics.median(r['stages'][stage] for r in runs) / nodes * 1e6:.2f}"
                for stage in ("passes", "schedule", "codegen"))
            total = statistics.median(r["function_s"] for r in runs)
            print(f"{depth:>7} {nodes:>10} {_spread(wall):>18} {_spread(cpu):>18} "
                  f"{total:>10.2f}  {stages} ({runs[0]['backend']})")
        print()


def _spread(values: list) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    main()
