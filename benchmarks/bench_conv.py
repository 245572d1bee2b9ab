"""conv2d: graphc's kernel (one compiled node) vs a hand-written NumPy im2col + matmul.

Forward convolution at a few CNN sizes (NCHW, OIHW, stride 1, "same" padding), float64,
timed alternately in one process; the ratio is graphc / hand-written (1.0 = as fast). The
hand-written version builds the column matrix with explicit slicing (no stride tricks), the
textbook im2col, then one matmul.  Run: python benchmarks/bench_conv.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphc as gc  # noqa: E402
from common import interleaved, table  # noqa: E402

# (batch, in channels, height/width, out channels, kernel)
SIZES = [(32, 1, 8, 16, 3), (32, 16, 8, 32, 3), (64, 3, 32, 32, 3), (16, 64, 16, 64, 3),
         (8, 32, 28, 64, 5)]


def im2col_conv(x, w, pad):
    """The textbook version: pad, copy each kernel tap's shifted image into the columns."""
    N, C, H, W = x.shape
    O, _, K, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    cols = np.empty((N, OH, OW, C, K, K))
    for i in range(K):
        for j in range(K):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + OH, j:j + OW].transpose(0, 2, 3, 1)
    out = cols.reshape(N * OH * OW, -1) @ w.reshape(O, -1).T
    return out.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for N, C, S, O, K in SIZES:
        x = rng.standard_normal((N, C, S, S))
        w = rng.standard_normal((O, C, K, K))
        g = gc.Graph()
        X = g.placeholder("X", (None, C, S, S))
        Wt = g.variable("W", w)
        f = gc.function([X], gc.conv2d(X, Wt, padding="same"))
        np.testing.assert_allclose(f(x), im2col_conv(x, w, K // 2), rtol=1e-10, atol=1e-10)
        best = interleaved({"graphc": lambda: f(x), "numpy": lambda: im2col_conv(x, w, K // 2)})
        flops = 2 * N * O * S * S * C * K * K
        rows.append([f"{N}x{C}x{S}x{S} * {O}x{C}x{K}x{K}", best["graphc"] * 1e3,
                     best["numpy"] * 1e3, best["graphc"] / best["numpy"],
                     flops / best["graphc"] / 1e9])
    print(table(rows, ["input * weights", "graphc ms", "im2col ms", "ratio", "graphc GFLOP/s"]))


if __name__ == "__main__":
    main()
