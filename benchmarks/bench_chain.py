"""(c) Compile speed on the tanh chain's gradient graph: gc.grad + gc.function per node, per
phase and per back end, and the per-call time of both back ends.

For each depth D (4 D nodes) and round: build the chain, gc.grad, then gc.function with the
automatic choice, with backend="source" (up to --source-up-to) and with backend="vm"; wall
and CPU seconds (the CPU time is the steadier figure on a shared machine). Median (min-max)
over rounds. Per call: both back ends called in alternation on the same input.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_chain.py [--depths 250 1000 4000 16000 25000]
     [--rounds 3] [--source-up-to 4000] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import interleaved, table, tanh_chain  # noqa: E402

PHASES = ("passes", "schedule", "codegen")  # f.stats["seconds"]; codegen = lowering


def timed(fn):
    """(result, wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def one_round(depth: int, backends: list) -> dict:
    g, x, loss = tanh_chain(gc, depth)
    dx, grad_wall, grad_cpu = timed(lambda: gc.grad(loss, x))
    nodes = len(g)
    out = {"nodes": nodes, "grad": (grad_wall, grad_cpu), "functions": {}}
    for backend in backends:
        f, wall, cpu = timed(lambda: gc.function([x], [loss, dx], backend=backend))
        out[backend] = {"wall": wall, "cpu": cpu, "backend": f.stats["backend"],
                        "phases": {p: f.stats["seconds"][p] for p in PHASES}}
        out["functions"][backend] = f
    out["graph"] = (g, x, dx)
    return out


def summary(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "samples": values}


def measure(depth: int, rounds: int, with_source: bool) -> dict:
    backends = ["auto", "vm"] + (["source"] if with_source else [])
    runs = [one_round(depth, backends) for _ in range(rounds)]
    nodes = runs[0]["nodes"]
    per_node = lambda seconds: seconds / nodes * 1e6  # noqa: E731
    entry = {"depth": depth, "nodes": nodes, "auto_backend": runs[0]["auto"]["backend"],
             "grad_us_per_node": summary([per_node(r["grad"][0]) for r in runs]),
             "grad_cpu_us_per_node": summary([per_node(r["grad"][1]) for r in runs])}
    for backend in backends:
        entry[backend] = {
            "function_us_per_node": summary([per_node(r[backend]["wall"]) for r in runs]),
            "function_cpu_us_per_node": summary([per_node(r[backend]["cpu"]) for r in runs]),
            "total_us_per_node": summary([per_node(r[backend]["wall"] + r["grad"][0])
                                          for r in runs]),
            "phases_us_per_node": {p: statistics.median(per_node(r[backend]["phases"][p])
                                                        for r in runs) for p in PHASES}}
    last = runs[-1]
    g, x, dx = last["graph"]
    value = np.linspace(-1, 1, 10)
    fs = last["functions"]
    results = {b: fs[b](value) for b in backends}
    want = g.run(dx, {x: value})
    np.testing.assert_allclose(results["vm"][1], want, rtol=1e-12)
    for b in backends:  # every back end gives the same bits
        assert all(np.asarray(p).tobytes() == np.asarray(q).tobytes()
                   for p, q in zip(results[b], results["vm"])), b
    if with_source:
        calls = interleaved({"source": lambda: fs["source"](value),
                             "vm": lambda: fs["vm"](value)}, rounds=max(3, rounds))
        entry["call_us"] = {b: t * 1e6 for b, t in calls.items()}
        entry["call_vm_over_source"] = calls["vm"] / calls["source"]
    return entry


def print_table(entries: list) -> None:
    rows = []
    for e in entries:
        for backend in ("auto", "vm", "source"):
            if backend not in e:
                continue
            b = e[backend]
            f, c, t = (b["function_us_per_node"], b["function_cpu_us_per_node"],
                       b["total_us_per_node"])
            name = f"auto={e['auto_backend']}" if backend == "auto" else backend
            rows.append([e["depth"], e["nodes"], name,
                         f"{f['median']:.2f} ({f['min']:.2f}-{f['max']:.2f})",
                         f"{c['median']:.2f}",
                         *(round(b["phases_us_per_node"][p], 2) for p in PHASES),
                         f"{e['grad_us_per_node']['median']:.2f}", f"{t['median']:.2f}"])
    print("tanh chain's gradient graph: us per node (median (min-max) over rounds)")
    print(table(rows, ["depth", "nodes", "backend", "function", "function CPU", *PHASES,
                       "gradients", "grad+function"]))
    calls = [[e["depth"], round(e["call_us"]["source"], 1), round(e["call_us"]["vm"], 1),
              round(e["call_vm_over_source"], 2)] for e in entries if "call_us" in e]
    if calls:
        print("\nper call (us, best of alternated runs)")
        print(table(calls, ["depth", "source", "vm", "vm / source"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[250, 1000, 4000, 16000, 25000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source-up-to", type=int, default=4000,
                        help="also compile to source (and time calls) up to this depth")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    entries = [measure(d, args.rounds, d <= args.source_up_to) for d in args.depths]
    print_table(entries)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(entries, fh, indent=1)


if __name__ == "__main__":
    main()
