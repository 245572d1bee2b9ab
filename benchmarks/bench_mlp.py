"""(a) MLP 784-256-128-10, batch 128, ReLU, softmax cross-entropy + L2 weight decay.

Loss and all six gradients per call, float64 and float32: graphc's compiled function vs a
hand-written NumPy forward + backward pass, timed alternately in one process; plus the peak
memory of one step (tracemalloc counts NumPy's allocations).  Run: python benchmarks/bench_mlp.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import interleaved, peak_bytes, table  # noqa: E402

SIZES = (784, 256, 128, 10)
BATCH = 128
DECAY = 1e-4


def params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        out.append((rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)).astype(dtype))
        out.append(np.zeros(n_out, dtype))
    return out


def build(dtype, batch=BATCH):
    """The graph and the compiled step: loss and the gradients of W1, b1, W2, b2, W3, b3.
    ``batch=None`` leaves the batch size to the call (the memory plan is made at the first
    call for its shapes)."""
    g = gc.Graph()
    x = g.placeholder("x", (batch, SIZES[0]), dtype)
    y = g.placeholder("y", (batch,), "int64")
    names = ["W1", "b1", "W2", "b2", "W3", "b3"]
    ws = [g.variable(n, v) for n, v in zip(names, params(dtype))]
    h = x
    for k in range(3):
        h = h @ ws[2 * k] + ws[2 * k + 1]
        if k < 2:
            h = gc.relu(h)
    decay = gc.sum(ws[0] * ws[0]) + gc.sum(ws[2] * ws[2]) + gc.sum(ws[4] * ws[4])
    loss = gc.mean(gc.softmax_cross_entropy(h, y)) + DECAY * decay
    grads = gc.gradients(loss, ws)
    return g, gc.function([x, y], [loss] + grads), (x, y, loss, grads)


def hand(x, y, W1, b1, W2, b2, W3, b3):
    """A straightforward NumPy forward and backward pass (CS231n style)."""
    n = x.shape[0]
    z1 = x @ W1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2 + b2
    h2 = np.maximum(z2, 0)
    z3 = h2 @ W3 + b3
    shifted = z3 - z3.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean() + DECAY * (
        np.sum(W1 * W1) + np.sum(W2 * W2) + np.sum(W3 * W3))
    dz3 = np.exp(log_p)
    dz3[np.arange(n), y] -= 1
    dz3 /= n
    dW3 = h2.T @ dz3 + 2 * DECAY * W3
    db3 = dz3.sum(axis=0)
    dh2 = dz3 @ W3.T
    dh2[z2 <= 0] = 0
    dW2 = h1.T @ dh2 + 2 * DECAY * W2
    db2 = dh2.sum(axis=0)
    dh1 = dh2 @ W2.T
    dh1[z1 <= 0] = 0
    dW1 = x.T @ dh1 + 2 * DECAY * W1
    db1 = dh1.sum(axis=0)
    return loss, dW1, db1, dW2, db2, dW3, db3


def main() -> None:
    rows = []
    for dtype, batch in (("float64", BATCH), ("float32", BATCH), ("float64", None),
                         ("float32", None)):
        g, step, (x, y, loss, grads) = build(dtype, batch)
        rng = np.random.default_rng(1)
        X = rng.standard_normal((BATCH, SIZES[0])).astype(dtype)
        Y = rng.integers(0, SIZES[-1], BATCH)
        ps = params(dtype)
        ours, theirs = step(X, Y), hand(X, Y, *ps)
        tol = 1e-9 if dtype == "float64" else 2e-4
        for a, b in zip(ours, theirs):
            assert a.dtype == np.dtype(dtype), (a.dtype, dtype)
            assert np.allclose(a, b, rtol=tol, atol=tol), "graphc and NumPy disagree"
        assert step.stats.get("upcasts", []) == [], step.stats["upcasts"]  # all in one dtype
        times = interleaved({"graphc": lambda: step(X, Y), "numpy": lambda: hand(X, Y, *ps)})
        mem_ours = peak_bytes(lambda: step(X, Y))
        mem_hand = peak_bytes(lambda: hand(X, Y, *ps))
        kept = step.stats["kept_bytes"]  # the arena, made before tracemalloc started
        rows.append([dtype, batch, times["graphc"] * 1e3, times["numpy"] * 1e3,
                     times["graphc"] / times["numpy"], step.stats["planned_peak_bytes"] // 1024,
                     mem_ours // 1024, kept // 1024, mem_hand // 1024, mem_ours / mem_hand,
                     (mem_ours + kept) / mem_hand])
    print("MLP 784-256-128-10, batch 128 (declared as 128 or None): loss + 6 gradients per call")
    print(table(rows, ["dtype", "batch", "graphc ms", "numpy ms", "ratio", "planned KiB",
                       "graphc peak KiB", "kept KiB", "numpy peak KiB", "mem ratio",
                       "(peak+kept) ratio"]))


if __name__ == "__main__":
    main()
