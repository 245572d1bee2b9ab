"""L2-penalised logistic regression fitted by scipy.optimize with graphc's derivatives, checked
against scikit-learn's LogisticRegression (the same objective) and exported to ONNX.

scikit-learn's L2 logistic regression minimises, with labels y_i in {0, 1},

    J(w, b) = 1/2 |w|^2 + C sum_i [softplus(x_i . w + b) - y_i (x_i . w + b)],

the intercept b unpenalised. graphc builds J once; ``gc.scipy_objective(J, [w, b], feed)``
packs w and b into one flat vector and gives SciPy ``fun`` and ``jac`` (one compiled function,
cached per point), ``hess`` (the Hessian graph) and ``hessp`` (Hessian-vector products),
each compiled once. Second-order methods converge in a handful of iterations.

Run:  python examples/scipy_logistic.py [--C 1.0] [--out DIR]
Needs scikit-learn (for the data set and the reference fit); writes DIR/scipy_logistic.onnx
(the fitted classifier's probabilities) when the onnx package is installed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import graphc as gc

# What each method of scipy.optimize.minimize is given, and its stopping tolerance.
METHODS = {
    "trust-exact": ("hess", {"gtol": 1e-8}),
    "trust-krylov": ("hessp", {"gtol": 1e-8}),
    "trust-ncg": ("hessp", {"gtol": 1e-8}),
    "Newton-CG": ("hessp", {"xtol": 1e-12}),
    "L-BFGS-B": (None, {"gtol": 1e-10, "ftol": 1e-15, "maxiter": 10_000}),
    "BFGS": (None, {"gtol": 1e-7}),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=1.0, help="inverse penalty, as in sklearn")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_breast_cancer()
    X_data = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y_data = data.target.astype(np.float64)
    n, d = X_data.shape

    g = gc.Graph()
    X = g.placeholder("X", shape=(None, d))
    y = g.placeholder("y", shape=(None,))
    w = g.variable("w", np.zeros(d))
    b = g.variable("b", 0.0)
    logits = X @ w + b
    J = 0.5 * gc.sum(w * w) + args.C * gc.sum(gc.sigmoid_cross_entropy(logits, y))
    objective = gc.scipy_objective(J, [w, b], feed={X: X_data, y: y_data})

    started = time.perf_counter()
    reference = LogisticRegression(C=args.C, tol=1e-12, max_iter=1000,
                                   solver="newton-cholesky").fit(X_data, y_data)
    sklearn_seconds = time.perf_counter() - started
    want = np.r_[reference.coef_[0], reference.intercept_]

    print(f"breast cancer data: n = {n}, d = {d} (standardised), C = {args.C}")
    print(f"{'method':>13} {'second order':>12} {'iterations':>10} {'J':>18} "
          f"{'max |coef - sklearn|':>21} {'seconds':>8}")
    worst = 0.0
    for method, (second, options) in METHODS.items():
        extra = {second: getattr(objective, second)} if second else {}
        started = time.perf_counter()
        result = minimize(objective.fun, objective.x0, jac=objective.jac, method=method,
                          options=options, **extra)
        seconds = time.perf_counter() - started
        gap = float(np.max(np.abs(result.x - want)))
        worst = max(worst, gap)
        print(f"{method:>13} {second or '-':>12} {result.nit:>10} {result.fun:>18.10f} "
              f"{gap:>21.2e} {seconds:>8.3f}")
    print(f"{'sklearn':>13} {'(newton-cholesky)':>12} {reference.n_iter_[0]:>10} "
          f"{'':>18} {'':>21} {sklearn_seconds:>8.3f}")
    print(f"largest difference from scikit-learn: {worst:.2e}")

    objective.assign(result.x)
    accuracy = np.mean((X_data @ w.value + b.value > 0) == (y_data == 1))
    print(f"training accuracy {accuracy:.4f}")

    try:
        import onnx  # noqa: F401  (optional: pip install graphc[onnx])
    except ImportError:
        print("onnx is not installed: no ONNX model written")
        return
    path = args.out / "scipy_logistic.onnx"
    gc.to_onnx([X], {"probability": gc.sigmoid(logits)}, path)
    print(f"wrote {path}: the fitted classifier, probabilities from X")


if __name__ == "__main__":
    main()
