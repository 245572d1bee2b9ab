"""Derivatives of any order: tanh up to order 4, and Hessian-vector products.

graphc differentiates symbol to symbol: ``gc.grad`` returns nodes of the same graph, so the
result can be differentiated again, as often as you like.

1. The first four derivatives of tanh, each built by differentiating the previous one, against
   their closed forms in t = tanh(x):
       tanh'    = 1 - t^2
       tanh''   = -2 t (1 - t^2)
       tanh'''  = (1 - t^2)(6 t^2 - 2)
       tanh'''' = 8 t (1 - t^2)(2 - 3 t^2)
   and, through ``gc.to_sympy``, against SymPy's ``diff(tanh(x), x, k)``.
2. A Hessian-vector product ``gc.hvp(z, w, v)`` (two backward passes, never forming H)
   against the dense Hessian ``gc.hessian(z, w) @ v`` for the n-dimensional Rosenbrock function.

Run:  python examples/higher_order.py [--n 1000] [--out DIR]
Writes: DIR/tanh_derivatives.dot (tanh and its derivative graphs, one cluster per order).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import graphc as gc

CLOSED_FORMS = {
    1: lambda t: 1 - t ** 2,
    2: lambda t: -2 * t * (1 - t ** 2),
    3: lambda t: (1 - t ** 2) * (6 * t ** 2 - 2),
    4: lambda t: 8 * t * (1 - t ** 2) * (2 - 3 * t ** 2),
}


def tanh_derivatives(out: Path) -> float:
    g = gc.Graph()
    x = g.placeholder("x", shape=(None,))
    derivatives = [gc.tanh(x)]
    sizes = [len(g)]
    for _ in range(4):
        # tanh acts elementwise, so the gradient of the sum is the elementwise derivative.
        derivatives.append(gc.grad(gc.sum(derivatives[-1]), x))
        sizes.append(len(g))

    points = np.linspace(-2.0, 2.0, 9)
    values = g.run(derivatives, {x: points})
    t = np.tanh(points)
    print("derivatives of tanh, graphc vs closed form, at x =", points)
    worst = 0.0
    for k in range(1, 5):
        error = np.max(np.abs(values[k] - CLOSED_FORMS[k](t)))
        worst = max(worst, error)
        print(f"  order {k}: graph has {sizes[k]:>3} nodes, max |graphc - closed form| = "
              f"{error:.2e}   values {np.round(values[k], 4)}")
    (out / "tanh_derivatives.dot").write_text(gc.to_dot(derivatives))
    print(f"  wrote {out / 'tanh_derivatives.dot'}")
    return worst


def tanh_sympy() -> bool:
    """The same derivatives on a scalar graph, read back as SymPy expressions."""
    import sympy as sp

    g = gc.Graph()
    x = g.placeholder("x")
    d = gc.tanh(x)
    s = sp.Symbol("x", real=True)
    agree = True
    for k in range(1, 5):
        d = gc.grad(d, x)
        difference = sp.simplify(gc.to_sympy(d, {"real": True}) - sp.diff(sp.tanh(s), s, k))
        agree &= difference == 0
        print(f"  order {k}: to_sympy(d) - sympy.diff(tanh(x), x, {k}) simplifies to {difference}")
    return agree


def rosenbrock_hvp(n: int) -> float:
    g = gc.Graph()
    w = g.placeholder("w", shape=(n,))
    v = g.placeholder("v", shape=(n,))
    z = gc.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)
    hv = gc.hvp(z, w, v)
    H = gc.hessian(z, w)

    rng = np.random.default_rng(0)
    feed = {w: rng.uniform(-1.5, 1.5, n), v: rng.standard_normal(n)}
    start = time.perf_counter()
    hv_value = g.run(hv, feed)
    t_hvp = time.perf_counter() - start
    start = time.perf_counter()
    H_value = g.run(H, feed)
    t_dense = time.perf_counter() - start
    error = np.max(np.abs(hv_value - H_value @ feed[v])) / np.max(np.abs(hv_value))
    print(f"\nRosenbrock in n = {n} dimensions: Hessian-vector product vs dense Hessian")
    print(f"  gc.hvp(z, w, v)          shape {hv_value.shape}, {t_hvp * 1e3:7.2f} ms")
    print(f"  gc.hessian(z, w) @ v     H shape {H_value.shape}, {t_dense * 1e3:7.2f} ms")
    print(f"  max relative difference  {error:.2e}")
    print(f"  H is symmetric: {np.allclose(H_value, H_value.T)}; "
          f"tridiagonal: {np.count_nonzero(np.triu(H_value, 2)) == 0}")
    return error


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="Rosenbrock dimension (>= 2)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    worst = tanh_derivatives(args.out)
    print("\nthe same derivatives, symbolically:")
    agree = tanh_sympy()
    error = rosenbrock_hvp(args.n)
    ok = worst < 1e-12 and agree and error < 1e-12
    print(f"\ntanh derivatives match the closed forms: {worst < 1e-12}; "
          f"match SymPy: {agree}; hvp matches the dense Hessian: {error < 1e-12}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
