"""Newton's method with a sparse Hessian: a minimal surface on an N x N grid.

The unknowns are the heights u of the grid's interior points (n = N^2), the boundary is fixed
at g(s, t) = sin(pi s) cosh(pi t) / cosh(pi) (with t in [0, 1]). The energy is the surface area,
sum over cells of h^2 sqrt(1 + |grad u|^2), with forward differences: each term couples a point
with its right and upper neighbours, so the Hessian has a 5-point-stencil-like pattern.

graphc finds that pattern from the graph, colours it (a handful of colours, whatever N), and
computes the whole sparse Hessian with one batch of Hessian-vector products; SciPy's `spsolve`
then takes each Newton step. Run: python examples/sparse_newton.py [--n 64] [--out out]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse.linalg as spla

import graphc as gc


def energy_graph(N: int):
    """The surface-area energy of the interior heights x (N*N of them), with the boundary."""
    h = 1.0 / (N + 1)
    s = np.linspace(0, 1, N + 2)
    boundary = np.sin(np.pi * s)[:, None] * np.cosh(np.pi * s)[None, :] / np.cosh(np.pi)
    g = gc.Graph()
    x = g.placeholder("x", (N * N,))
    # the full (N+2) x (N+2) grid: the fixed boundary around the unknown interior
    middle = gc.concatenate([boundary[1:-1, :1], gc.reshape(x, (N, N)), boundary[1:-1, -1:]],
                            axis=1)
    u = gc.concatenate([boundary[:1], middle, boundary[-1:]], axis=0)
    du_s = (u[1:, :-1] - u[:-1, :-1]) / h
    du_t = (u[:-1, 1:] - u[:-1, :-1]) / h
    area = h * h * gc.sum(gc.sqrt(1.0 + du_s * du_s + du_t * du_t))
    return g, x, area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="interior points per side")
    parser.add_argument("--out", default="out", help="folder for the picture")
    parser.add_argument("--tol", type=float, default=1e-10)
    args = parser.parse_args()
    N = args.n

    t0 = time.perf_counter()
    g, x, area = energy_graph(N)
    (grad,) = gc.gradients(area, [x])
    H = gc.sparse_hessian(area, x)
    step = gc.function([x], [area, grad])
    hess = gc.function([x], H)
    built = time.perf_counter() - t0
    print(f"n = {N * N} unknowns; Hessian pattern: {H.pattern.nnz} nonzeros, "
          f"{H.ncolors} colours (a row has up to {gc.sparse.lower_bound(H.pattern)} "
          f"nonzeros); built and compiled in {built:.2f} s")

    X = np.zeros(N * N)
    for k in range(20):
        value, gradient = step(X)
        norm = np.linalg.norm(gradient)
        print(f"  Newton {k}: area {value:.12f}  |grad| {norm:.2e}")
        if norm < args.tol:
            break
        direction = spla.spsolve(hess(X).tocsc(), gradient)
        t = 1.0  # backtracking: the energy is convex, but a full step can overshoot
        while step(X - t * direction)[0] > value and t > 1e-8:
            t /= 2
        X = X - t * direction
    print(f"converged: {norm < args.tol}; area {value:.10f} (a flat square has 1)")

    os.makedirs(args.out, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2))
    small = min(N * N, 144)
    P = H.pattern[:small, :small].tocoo()
    left.scatter(P.col, P.row, c=H.colors[P.col], cmap="tab10", s=8, marker="s")
    left.set_xlim(-0.5, small - 0.5)
    left.set_ylim(small - 0.5, -0.5)
    left.set_title(f"Hessian pattern (first {small} rows), coloured by column colour")
    right.imshow(X.reshape(N, N), origin="lower", cmap="viridis")
    right.set_title("minimal surface: interior heights")
    fig.tight_layout()
    path = os.path.join(args.out, "sparse_newton.png")
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
