"""Gaussian-process regression: hyper-parameters fit by L-BFGS and Newton with exact derivatives.

The model (Rasmussen & Williams, ch. 2 and 5): y = f(x) + noise, f ~ GP(0, k) with the RBF
kernel k(x, x') = s^2 exp(-(x - x')^2 / (2 l^2)) and Gaussian noise of variance sn^2. The
hyper-parameters theta = log(l, s, sn) minimise the negative log marginal likelihood

    NLML(theta) = 1/2 y^T K^-1 y + 1/2 log det K + n/2 log 2 pi,   K = k(X, X) + sn^2 I,

computed stably with the Cholesky factor L of K: 1/2 |L^-1 y|^2 + sum(log diag L) + ...
graphc differentiates it (through ``gc.linalg.cholesky`` and ``solve_triangular``) for
L-BFGS's exact gradient (``scipy.optimize.minimize(jac=True)``), then ``gc.hessian`` polishes
the optimum with Newton steps. The posterior mean and variance at test points come from the
same factor: mean = K*^T K^-1 y, and the variance of a new observation
k** - |L^-1 K*|^2 + sn^2.

Run:  python examples/gaussian_process.py [--n 40] [--seed 0] [--out DIR]
Writes: DIR/gaussian_process.png (the data, the posterior mean and a band of +- 2 sd).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.optimize

import graphc as gc


def make_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-5, 5, n))
    y = np.sin(x) + 0.3 * np.cos(3 * x) + 0.2 * rng.standard_normal(n)
    return x, y


def rbf(a, b, lengthscale, signal):
    """The RBF kernel matrix between the points a (m,) and b (k,), as graphc nodes."""
    d = gc.expand_dims(a, 1) - gc.expand_dims(b, 0)
    return signal ** 2 * gc.exp(-0.5 * d * d / lengthscale ** 2)


def build(n_test: int):
    g = gc.Graph()
    x = g.placeholder("x", (None,))  # the training inputs: any number of points
    y = g.placeholder("y", (None,))
    x_test = g.placeholder("x_test", (n_test,))
    theta = g.placeholder("theta", (3,))  # log lengthscale, log signal sd, log noise sd
    lengthscale, signal, noise = gc.exp(theta[0]), gc.exp(theta[1]), gc.exp(theta[2])
    K = rbf(x, x, lengthscale, signal)
    K = K + noise ** 2 * gc.ops.eye_like(x)  # the identity of the run-time size of x
    L = gc.linalg.cholesky(K)
    alpha = gc.linalg.solve_triangular(L, y, lower=True)
    n = gc.cast(gc.sum(gc.ones_like(y)), "float64")
    nlml = gc.sum(alpha * alpha) / 2 + gc.sum(gc.log(gc.linalg.diagonal(L))) \
        + n / 2 * np.log(2 * np.pi)
    grad = gc.grad(nlml, theta)
    hess = gc.hessian(nlml, theta)
    # The posterior at the test points, from the same factor.
    K_star = rbf(x, x_test, lengthscale, signal)
    v = gc.linalg.solve_triangular(L, K_star, lower=True)
    mean = gc.sum(v * gc.expand_dims(alpha, 1), axis=0)
    var = signal ** 2 - gc.sum(v * v, axis=0) + noise ** 2
    return {"objective": gc.function([x, y, theta], [nlml, grad]),
            "newton": gc.function([x, y, theta], [nlml, grad, hess]),
            "posterior": gc.function([x, y, x_test, theta], [mean, var])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="number of training points")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--newton-steps", type=int, default=5, help="Newton polishing steps")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    x, y = make_data(args.n, args.seed)
    x_test = np.linspace(-6, 6, 200)
    f = build(len(x_test))

    def objective(theta):
        value, grad = f["objective"](x, y, theta)
        return float(value), np.asarray(grad, dtype=np.float64)

    theta0 = np.log([1.0, 1.0, 0.5])
    start = objective(theta0)[0]
    result = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B")
    theta = result.x
    print(f"GP regression on {args.n} noisy points of sin(x) + 0.3 cos(3x)")
    print(f"NLML at the start {start:.6f}; L-BFGS: {result.nit} iterations, "
          f"{result.nfev} evaluations, NLML {result.fun:.10f}")
    for step in range(args.newton_steps):
        value, grad, hess = f["newton"](x, y, theta)
        print(f"Newton step {step}: NLML {float(value):.12f}  |grad| {np.linalg.norm(grad):.2e}")
        if np.linalg.norm(grad) < 1e-12:
            break
        theta = theta - np.linalg.solve(hess, grad)
    value, grad, hess = f["newton"](x, y, theta)
    lengthscale, signal, noise = np.exp(theta)
    print(f"fitted: lengthscale {lengthscale:.6f}, signal sd {signal:.6f}, noise sd {noise:.6f}")
    print(f"NLML {float(value):.10f}, |grad| {np.linalg.norm(grad):.2e}, Hessian eigenvalues "
          + " ".join(f"{e:.4g}" for e in np.linalg.eigvalsh(hess)))

    try:  # an independent check: scikit-learn's log marginal likelihood of the same model
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
        kernel = ConstantKernel() * RBF() + WhiteKernel()
        gpr = GaussianProcessRegressor(kernel, optimizer=None).fit(x[:, None], y)
        sk_theta = np.log([signal ** 2, lengthscale, noise ** 2])
        print(f"scikit-learn's NLML at these hyper-parameters: "
              f"{-gpr.log_marginal_likelihood(sk_theta):.10f}")
    except ImportError:
        print("scikit-learn is not installed: skipping its check")

    mean, var = f["posterior"](x, y, x_test, theta)
    sd = np.sqrt(np.maximum(var, 0))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.fill_between(x_test, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.25,
                    label="posterior mean \u00b1 2 sd")
    ax.plot(x_test, mean, color="C0", label="posterior mean")
    ax.plot(x_test, np.sin(x_test) + 0.3 * np.cos(3 * x_test), "k--", lw=1, label="truth")
    ax.plot(x, y, "o", color="C3", ms=4, label="data")
    ax.set_title(f"GP regression: l = {lengthscale:.3f}, s = {signal:.3f}, sn = {noise:.3f}")
    ax.legend(loc="lower center", ncol=4, fontsize=8)
    path = args.out / "gaussian_process.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
