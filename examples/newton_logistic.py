"""Newton's method with ``gc.hessian`` on logistic regression, beside plain gradient descent.

The cost is the mean logistic loss with a little L2 regularisation,

    J(w) = mean(softplus(x_i . w) - y_i x_i . w) + (lam / 2) |w|^2,

on synthetic data (features plus a column of ones for the intercept). J is smooth and strictly
convex, so Newton's step  w <- w - H^-1 g  converges quadratically: the number of correct
digits doubles at each step once it is close. Gradient descent with the safe step 1/L
(L bounds the Hessian's largest eigenvalue) takes many more, much cheaper, steps.

graphc gives both from one graph: ``gc.gradients`` for g and ``gc.hessian`` (the gradient
differentiated again) for H. Newton's step solves H d = g with NumPy; the gradient-descent step
is compiled once with ``gc.function(..., updates=gc.optimizers.sgd(loss, [w], lr=1 / L))``.

Run:  python examples/newton_logistic.py [--n 1000] [--d 10] [--gd-steps 200] [--out DIR]
Needs: matplotlib (``pip install -e ".[examples]"``).
Writes: DIR/newton_logistic.json (the graph, with its derivative nodes, as graphc JSON) and
DIR/newton_logistic.png and .svg (|grad| of both methods at each iteration, log scale).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import graphc as gc


def make_data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((n, d)), np.ones((n, 1))])
    w_true = rng.standard_normal(d + 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y


def plot_convergence(newton: list, descent: list, out: Path) -> list:
    """|grad| per iteration of both methods on a log scale (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    ax.semilogy([g for _, g in newton], "o-", label="Newton (gc.hessian)")
    ax.semilogy([g for _, g in descent], label="gradient descent, step 1/L")
    ax.set(xlabel="iteration", ylabel="|grad J|",
           title="Logistic regression: Newton's quadratic convergence")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    paths = [out / f"newton_logistic.{fmt}" for fmt in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of examples")
    parser.add_argument("--d", type=int, default=10, help="number of features")
    parser.add_argument("--lam", type=float, default=1e-3, help="L2 regularisation")
    parser.add_argument("--gd-steps", type=int, default=200, help="gradient-descent steps")
    parser.add_argument("--tol", type=float, default=1e-10, help="Newton stops at |g| < tol")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    X_data, y_data = make_data(args.n, args.d)

    # The model: one graph for the cost, its gradient and its Hessian.
    g = gc.Graph()
    X = g.placeholder("X", shape=(None, args.d + 1))
    y = g.placeholder("y", shape=(None,))
    w = g.variable("w", np.zeros(args.d + 1))
    loss = gc.mean(gc.sigmoid_cross_entropy(X @ w, y)) + args.lam / 2 * gc.sum(w * w)
    (grad,) = gc.gradients(loss, [w])
    H = gc.hessian(loss, w)  # shape (d + 1, d + 1)
    feed = {X: X_data, y: y_data}

    # Newton's method: w <- w - H^-1 g.
    newton = []
    while True:
        J, gv, Hv = g.run([loss, grad, H], feed)
        newton.append((float(J), float(np.linalg.norm(gv))))
        if newton[-1][1] < args.tol or len(newton) > 50:
            break
        w.value = w.value - np.linalg.solve(Hv, gv)
    w_newton = w.value.copy()
    steps = len(newton) - 1

    # Gradient descent with step 1/L, L = max eigenvalue of X^T X / (4 n) + lam >= |H|.
    L = np.linalg.eigvalsh(X_data.T @ X_data / (4 * args.n)).max() + args.lam
    w.value = np.zeros(args.d + 1)
    step = gc.function([X, y], [loss, gc.sqrt(gc.sum(grad * grad))],
                       updates=gc.optimizers.sgd(loss, [w], lr=1.0 / L))
    descent = [tuple(float(v) for v in step(X_data, y_data)) for _ in range(args.gd_steps)]
    best = newton[-1][0]

    print(f"logistic regression, n = {args.n}, d = {args.d} (+ intercept), lam = {args.lam}")
    print(f"{'iter':>5} | {'Newton loss':>20} {'|grad|':>9} | {'gradient descent loss':>22} "
          f"{'|grad|':>9}")
    shown = sorted(set(range(min(8, args.gd_steps))) | set(range(0, args.gd_steps, 25))
                   | {args.gd_steps - 1})
    for k in shown:
        left = (f"{newton[k][0]:>20.15f} {newton[k][1]:>9.1e}" if k < len(newton)
                else f"{'(converged)':>20} {'':>9}")
        print(f"{k:>5} | {left} | {descent[k][0]:>22.15f} {descent[k][1]:>9.1e}")
    print(f"Newton: |grad| < {args.tol:g} after {steps} iterations, loss {best:.15f}")
    print(f"gradient descent: after {args.gd_steps} steps loss is {descent[-1][0] - best:.2e} "
          f"above Newton's, |grad| = {descent[-1][1]:.1e}")
    print(f"distance between the two solutions: {np.linalg.norm(w.value - w_newton):.2e}")
    gc.save(g, args.out / "newton_logistic.json")
    plots = plot_convergence(newton, descent, args.out)
    print(f"wrote {', '.join(str(p) for p in [args.out / 'newton_logistic.json', *plots])}")


if __name__ == "__main__":
    main()
