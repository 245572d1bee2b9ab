"""Every table of issue 15 in one run: graphc, hand-written NumPy and each installed peer
(torch, jax, pytensor, casadi, autograd: whichever import), timed in alternation, repeated;
medians and spreads (min-max over rounds), printed as tables and written as JSON.

Workloads: the MLP step (float64, float32), the CS231n scalar function with both gradients,
a tanh chain with a scalar weight per layer (loss and all gradients per call), the dense
Hessian of sum(tanh(A x)) + x.x/2, and gradients + compile time per node of a tanh chain.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/run_all.py [--json out.json] [--rounds 5]
     [--quick] [--only WORKLOAD] [--no-peers] [--all-cpus] [--cpu-time]
The run pins itself to one CPU (unless --all-cpus), so every system computes on one thread;
--cpu-time measures CPU seconds instead of wall time (fairer when others load the machine).

How a call is timed (the same for graphc, NumPy and every peer, so a figure measures the
function, not the harness): in every per-call workload (fusion's included) each system is a
``common.Call``, its function and arguments, timed by timeit as the statement ``fn(a, b)``
with them as globals, the call a user's code makes, with no wrapper frame (a lambda around
the call costs 0.05-0.08 us: 5-8 % of the 1 us CS231n call); JAX's statement waits for its
result (``block_until_ready(fn(a, b))``), with x64 switched on once for the whole run
(benchmarks/peers.py, bench_fusion.py), never per call. The compile workloads instead read
the clock around one build (gradients + ``gc.function``; for the peers' table also one
call): seconds, not a timeit statement. What
timeit adds, its loop with an empty statement, is measured per workload and printed under
the table (about 0.01 us). The cyclic collector stays on, as in a user's program. In each
round every system is timed once, in turn (interleaved): the number of calls is doubled
until one run lasts a third of the workload's budget (17 ms for most), and the figure is
the best of 3 such runs; the table gives the median and min-max of the per-round figures.
Before/after one change, interleaved process by process (the same run, fair on a busy box):
     python benchmarks/run_all.py --against /path/to/other/checkout --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
#: whether to time the installed peers (benchmarks/peers.py), the deepest scalar chain they
#: run, and their time limit per build in seconds (PyTensor and JAX unroll deep chains)
PEERS, PEER_DEPTH, PEER_SECONDS = True, 100, 60.0
#: the clock of every timing: wall time, or CPU time with --cpu-time (not inflated by other
#: programs on a busy machine)
CLOCK = time.perf_counter


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its finished children (the C
    compiler PyTensor runs while compiling)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _setup_path(root: str) -> None:
    sys.path.insert(0, HERE)
    sys.path.insert(0, root)


# -- timing --------------------------------------------------------------------------------------
def per_round(fns: dict, rounds: int, min_seconds: float = 0.05) -> dict:
    """Seconds per call of each function, one figure per round, systems alternating."""
    from common import best_time

    out = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            out[name].append(best_time(fn, repeat=3, min_seconds=min_seconds, clock=CLOCK))
    return out


def summary(samples: list) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


# -- workloads -----------------------------------------------------------------------------------
def mlp(dtype: str, rounds: int) -> dict:
    import numpy as np
    from common import Call
    from bench_mlp import BATCH, SIZES, build, hand, params

    g, step, _ = build(dtype)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((BATCH, SIZES[0])).astype(dtype)
    Y = rng.integers(0, SIZES[-1], BATCH)
    ps = params(dtype)
    tol = 1e-9 if dtype == "float64" else 2e-4
    expected = hand(X, Y, *ps)
    for a, b in zip(step(X, Y), expected):
        assert a.dtype == np.dtype(dtype) and np.allclose(a, b, rtol=tol, atol=tol)
    assert step.stats.get("upcasts", []) == []  # the step computes in its own dtype only
    fns = {"graphc": Call(step, X, Y), "numpy": Call(hand, X, Y, *ps)}
    _, batched, _ = build(dtype, batch=None)  # the batch size known at the call only
    fns["graphc batch None"] = Call(batched, X, Y)
    if PEERS:
        import peers
        from bench_mlp import DECAY
        fns.update(peers.mlp(dtype, X, Y, ps, expected, tol, DECAY))
    return {"unit": "ms", "scale": 1e3, "times": per_round(fns, rounds, 0.1)}


def scalar(rounds: int) -> dict:
    import numpy as np
    import graphc as gc
    from common import Call
    from bench_scalar import build, hand

    start = CLOCK()
    fn = build()
    compile_s = CLOCK() - start
    kw = {}
    if "trust_input" in _function_options(gc):
        g = gc.Graph()
        x, y = g.placeholder("x", ()), g.placeholder("y", ())
        f = (x + gc.sigmoid(y)) / (gc.sigmoid(x) + (x + y) ** 2)
        outs = [f, *gc.gradients(f, [x, y])]
        kw["trusted"] = gc.function([x, y], outs, trust_input=True)
        kw["fastmath"] = gc.function([x, y], outs, trust_input=True,
                                     passes=gc.compiler.passes.DEFAULT_PASSES + ("fastmath",))
    X, Y = np.array(3.0), np.array(-4.0)
    fx, fy = 3.0, -4.0
    np.testing.assert_allclose(fn(X, Y), hand(X, Y), rtol=1e-13)
    np.testing.assert_allclose(fn(fx, fy), hand(fx, fy), rtol=1e-13)
    fns = {"graphc 0-d": Call(fn, X, Y), "graphc float": Call(fn, fx, fy),
           "numpy 0-d": Call(hand, X, Y), "numpy float": Call(hand, fx, fy)}
    if "trusted" in kw:
        t = kw["trusted"]
        fns["graphc trust 0-d"] = Call(t, X, Y)
        fns["graphc trust float"] = Call(t, fx, fy)
        fast = kw["fastmath"]  # math.exp: may differ from NumPy's exp in the last bit
        np.testing.assert_allclose(fast(fx, fy), hand(fx, fy), rtol=1e-13)
        fns["graphc fastmath float"] = Call(fast, fx, fy)
    from common import available
    if available("casadi"):
        import casadi as ca
        cx, cy = ca.SX.sym("x"), ca.SX.sym("y")
        sig = lambda v: 1 / (1 + ca.exp(-v))  # noqa: E731
        cf = (cx + sig(cy)) / (sig(cx) + (cx + cy) ** 2)
        F = ca.Function("f", [cx, cy], [cf, ca.gradient(cf, cx), ca.gradient(cf, cy)])
        np.testing.assert_allclose([float(v) for v in F(fx, fy)], hand(fx, fy), rtol=1e-13)
        fns["casadi float"] = Call(F, fx, fy)
    if PEERS:
        import peers
        fns.update(peers.cs231n(fx, fy, hand(fx, fy)))
    return {"unit": "us", "scale": 1e6, "times": per_round(fns, rounds, 0.05),
            "compile_ms": compile_s * 1e3}


def small_ops(name: str, rounds: int) -> dict:
    """A small-op gradient graph of bench_scalar.SMALL_OPS (broadcasts, sum_to, indexing)."""
    from bench_scalar import SMALL_OPS

    ours, theirs = SMALL_OPS[name]()
    return {"unit": "us", "scale": 1e6,
            "times": per_round({"graphc": ours, "numpy": theirs}, rounds, 0.05)}


def _function_options(gc) -> set:
    import inspect
    return set(inspect.signature(gc.function).parameters)


def scalar_chain(depth: int, rounds: int) -> dict:
    """h <- tanh(w_k h) on a vector of 10, one scalar weight per layer fed per call as
    np.float64; loss = sum(h); the gradients of x and every w_k per call."""
    import numpy as np
    import graphc as gc
    from common import Call

    g = gc.Graph()
    x = g.placeholder("x", (10,))
    ws = [g.placeholder(f"w{k}", ()) for k in range(depth)]
    h = x
    for w in ws:
        h = gc.tanh(w * h)
    loss = gc.sum(h)
    start = CLOCK()
    f = gc.function([x] + ws, [loss] + gc.gradients(loss, [x] + ws))
    compile_s = CLOCK() - start
    rng = np.random.default_rng(depth)
    X = rng.standard_normal(10)
    W = [np.float64(v) for v in rng.uniform(0.5, 1.5, depth)]

    def hand(x, ws):
        hs = [x]
        for w in ws:
            hs.append(np.tanh(w * hs[-1]))
        loss = hs[-1].sum()
        g = np.ones_like(x)
        dws = [None] * len(ws)
        for k in range(len(ws) - 1, -1, -1):
            gz = g * (1 - hs[k + 1] * hs[k + 1])
            dws[k] = (gz * hs[k]).sum()
            g = gz * ws[k]
        return [loss, g] + dws

    ours, theirs = f(X, *W), hand(X, W)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    backend = f.stats.get("backend", "source")
    warm = 0  # a large program starts on the VM, then runs as generated source: time that
    while f.stats.get("backend", "source") == "vm" and warm < 1000:
        f(X, *W)
        warm += 1
    fns = {"graphc": Call(f, X, *W), "numpy": Call(hand, X, W)}
    timed_out = []
    if PEERS and depth <= PEER_DEPTH:
        import peers
        for who, fn in peers.scalar_chain(X, W, theirs, PEER_SECONDS).items():
            if fn is None:
                timed_out.append(who)
            else:
                fns[who] = fn
    return {"unit": "ms", "scale": 1e3, "times": per_round(fns, rounds, 0.05),
            "compile_ms": compile_s * 1e3, "timed_out": timed_out,
            "backend": f"{backend}, then {f.stats.get('backend', 'source')} after {warm} calls"}


def hessian(n: int, rounds: int) -> dict:
    import numpy as np
    import graphc as gc

    from common import Call, tanh_hessian_problem
    g, x, z, A = tanh_hessian_problem(gc, n)
    f = gc.function([x], gc.hessian(z, x))
    X = np.random.default_rng(n + 1).standard_normal(n)
    eye = np.eye(n)

    def hand(X):
        t = np.tanh(A @ X)
        return A.T @ ((-2 * t * (1 - t * t))[:, None] * A) + eye

    np.testing.assert_allclose(f(X), hand(X), rtol=1e-10, atol=1e-12)
    fns = {"graphc": Call(f, X), "numpy": Call(hand, X)}
    from common import available
    if available("casadi"):
        import casadi as ca
        cx = ca.SX.sym("x", n)
        cz = ca.sum1(ca.tanh(ca.mtimes(ca.DM(A), cx))) + 0.5 * ca.dot(cx, cx)
        H, _ = ca.hessian(cz, cx)
        F = ca.Function("h", [cx], [H])
        np.testing.assert_allclose(np.array(F(X)), hand(X), rtol=1e-10, atol=1e-12)
        fns["casadi"] = Call(F, X)
    if PEERS:
        import peers
        fns.update(peers.hessian(A, X, hand(X)))
    return {"unit": "ms", "scale": 1e3, "times": per_round(fns, rounds, 0.05),
            "nodes": f.stats["nodes"]}


def compile_chain(depth: int, repeats: int) -> dict:
    """gradients + function of a tanh chain on a vector of 10: seconds, and per node."""
    import numpy as np
    import graphc as gc

    from common import tanh_chain
    totals, per_node, function_per_node, parts = [], [], [], None
    for _ in range(repeats):
        g, x, loss = tanh_chain(gc, depth)
        start = CLOCK()
        dx = gc.grad(loss, x)
        built = CLOCK()
        f = gc.function([x], [loss, dx])
        total = CLOCK() - start
        totals.append(total)
        per_node.append(total / len(g) * 1e6)
        function_per_node.append((total - (built - start)) / len(g) * 1e6)
        parts = f.stats["seconds"]
    value = np.linspace(-1, 1, 10)
    np.testing.assert_allclose(f(value)[1], g.run(dx, {x: value}), rtol=1e-12)
    return {"unit": "s", "scale": 1, "times": {"graphc": totals},
            "us_per_node": summary(per_node), "nodes": len(g), "last_parts": parts,
            "function_us_per_node": summary(function_per_node),
            "backend": f.stats.get("backend", "source")}


def fusion(dtype: str, n: int, rounds: int) -> dict:
    """The 10-op expression of bench_fusion.py (4 transcendental ops) on n elements: graphc
    fused and unfused, NumPy naive and with out=, JAX and numexpr where installed."""
    import graphc as gc
    from bench_fusion import systems

    fns, _ = systems(gc, "transcendental", n, dtype, with_peers=PEERS)
    return {"unit": "ms", "scale": 1e3, "times": per_round(fns, rounds, 0.1)}


def compile_chain_peers(depth: int, repeats: int) -> dict:
    """The same gradient + compile (+ one call) at a depth the peers manage: graphc against
    each peer, seconds per build; a peer past PEER_SECONDS is listed under "timed out"."""
    import numpy as np
    import graphc as gc

    from common import tanh_chain
    value = np.linspace(-1, 1, 10)
    times, timed_out = {"graphc": []}, set()
    expected = None
    for _ in range(repeats):
        g, x, loss = tanh_chain(gc, depth)
        start = CLOCK()
        f = gc.function([x], [loss, gc.grad(loss, x)])
        result = f(value)
        times["graphc"].append(CLOCK() - start)
        expected = result
        if PEERS:
            import peers
            for who, seconds in peers.compile_chain(depth, value, expected, PEER_SECONDS,
                                                    CLOCK).items():
                if seconds is None:
                    timed_out.add(who)
                else:
                    times.setdefault(who, []).append(seconds)
    return {"unit": "s", "scale": 1, "times": times, "timed_out": sorted(timed_out)}


# -- the run -------------------------------------------------------------------------------------
def run(quick: bool, rounds: int, only: str = "") -> dict:
    depths = (10, 100) if quick else (10, 100, 1000, 3000)
    sizes = (10, 100) if quick else (10, 100, 300)
    chains = (250, 1000) if quick else (250, 1000, 4000, 16000)
    elements = (10**6,) if quick else (10**6, 10**7)
    peer_depth = 10 if quick else 30  # the peers' gradient + compile take tens of seconds past it
    repeats = max(1, rounds // 2)
    workloads = {f"mlp {dtype}": (lambda dtype=dtype: mlp(dtype, rounds))
                 for dtype in ("float64", "float32")}
    workloads["cs231n"] = lambda: scalar(rounds)
    from bench_scalar import SMALL_OPS
    for small in SMALL_OPS:
        workloads[f"small ops: {small}"] = lambda small=small: small_ops(small, rounds)
    for d in depths:
        workloads[f"scalar chain D={d}"] = lambda d=d: scalar_chain(d, rounds)
    for n in sizes:
        workloads[f"hessian n={n}"] = lambda n=n: hessian(n, rounds)
    for d in chains:
        workloads[f"compile chain D={d}"] = lambda d=d: compile_chain(d, repeats)
    workloads[f"compile chain D={peer_depth}"] = lambda: compile_chain_peers(peer_depth, repeats)
    workloads.update({f"fusion {t} n={n}": (lambda t=t, n=n: fusion(t, n, rounds))
                      for n in elements for t in ("float64", "float32")})
    from common import loop_seconds
    results = {}
    for name, build in workloads.items():
        if only in name:
            print(f"  {name} ...", file=sys.stderr, flush=True)
            results[name] = build()
            # timeit's own cost per call (an empty statement), part of every figure
            results[name]["loop_us"] = loop_seconds(CLOCK, 10**5) * 1e6
    for entry in results.values():
        entry["times"] = {k: summary(v) for k, v in entry["times"].items()}
    return results


def print_tables(results: dict, label: str = "") -> None:
    from common import table

    rows = []
    for name, entry in results.items():
        s = entry["scale"]
        base = next((t["median"] for k, t in entry["times"].items() if k.startswith("numpy")),
                    None)
        ours = next((t["median"] for k, t in entry["times"].items() if k.startswith("graphc")),
                    None)
        for system, t in entry["times"].items():
            ratio = t["median"] / base if base else float("nan")
            rows.append([name, system, t["median"] * s, t["min"] * s, t["max"] * s,
                         entry["unit"], ratio, t["median"] / ours if ours else float("nan")])
        for system in entry.get("timed_out", ()):
            rows.append([name, system, f"> {PEER_SECONDS:g}", "", "", "s", "", ""])
        if "us_per_node" in entry:
            u = entry["us_per_node"]
            rows.append([name, "us/node", u["median"], u["min"], u["max"], "us", "", ""])
        if "function_us_per_node" in entry:  # gc.function alone, and the back end it chose
            u = entry["function_us_per_node"]
            rows.append([name, f"function us/node ({entry['backend']})", u["median"], u["min"],
                         u["max"], "us", "", ""])
    print(f"issue 15 benchmarks {label}(median, min, max over rounds; x numpy, x graphc = "
          "median / their median)")
    print(table(rows, ["workload", "system", "median", "min", "max", "unit", "x numpy",
                       "x graphc"]))
    loops = [entry["loop_us"] * 1e3 for entry in results.values() if "loop_us" in entry]
    if loops:  # (timing a statement: the loop is all the harness adds to a call)
        print(f"timeit's loop with an empty statement, part of every figure above: "
              f"{min(loops):.0f}-{max(loops):.0f} ns per call")


def compare(roots: list, rounds: int, quick: bool, only: str = "") -> dict:
    """Alternate whole runs between checkouts (one subprocess each, one round per run)."""
    runs = {root: [] for root in roots}
    for _ in range(rounds):
        for root in roots:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
                path = tmp.name
            cmd = [sys.executable, os.path.abspath(__file__), "--root", root, "--rounds", "1",
                   "--json", path, "--quiet"] + (["--quick"] if quick else []) + \
                ([] if PEERS else ["--no-peers"]) + (["--only", only] if only else []) + \
                (["--cpu-time"] if CLOCK is cpu_seconds else [])
            subprocess.run(cmd, check=True)
            with open(path) as fh:
                runs[root].append(json.load(fh))
            os.unlink(path)
    merged = {}
    for root, results in runs.items():
        out = {}
        for name, entry in results[0].items():
            entry = dict(entry)
            entry["times"] = {
                system: summary([s for r in results for s in r[name]["times"][system]["samples"]])
                for system in entry["times"]}
            for key in ("us_per_node", "function_us_per_node"):
                if key in entry:
                    entry[key] = summary([s for r in results for s in r[name][key]["samples"]])
            out[name] = entry
        merged[root] = out
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="the small sizes only")
    parser.add_argument("--root", default=os.path.dirname(HERE), help="the graphc checkout")
    parser.add_argument("--against", help="another checkout: alternate runs, before/after")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--no-peers", action="store_true", help="graphc and NumPy only")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time calls in CPU seconds of the process (robust on a busy box)")
    parser.add_argument("--all-cpus", dest="one_cpu", action="store_false",
                        help="do not pin the run to one CPU (peers may then use threads)")
    parser.add_argument("--only", help="run the workloads whose name contains this")
    args = parser.parse_args()
    global PEERS, CLOCK
    PEERS = not args.no_peers
    CLOCK = cpu_seconds if args.cpu_time else time.perf_counter
    if args.one_cpu and hasattr(os, "sched_setaffinity"):
        # every system on one core: XLA and torch size their thread pools by the affinity,
        # so JAX and torch run single-threaded like NumPy under OPENBLAS_NUM_THREADS=1
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    if args.against:
        merged = compare([os.path.abspath(args.against), os.path.abspath(args.root)],
                         args.rounds, args.quick, args.only or "")
        _setup_path(args.root)
        for root, results in merged.items():
            print_tables(results, f"[{root}] ")
            print()
        output = merged
    else:
        _setup_path(os.path.abspath(args.root))
        output = run(args.quick, args.rounds, args.only or "")
        if not args.quiet:
            print_tables(output)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(output, fh, indent=1)


if __name__ == "__main__":
    main()
