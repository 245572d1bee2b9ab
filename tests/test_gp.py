"""A Gaussian-process negative log marginal likelihood (issue 10): RBF kernel, Cholesky,
triangular solves and the log of the diagonal. Its value matches NumPy's closed form, its
gradient with respect to the hyper-parameters central differences, and its Hessian finite
differences of the gradient."""
from __future__ import annotations

import numpy as np

import graphc as gc


def nlml_graph(n):
    """The NLML as a function of theta = (log lengthscale, log signal sd, log noise sd)."""
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    y = g.placeholder("y", (n,))
    theta = g.placeholder("theta", (3,))
    lengthscale, signal, noise = gc.exp(theta[0]), gc.exp(theta[1]), gc.exp(theta[2])
    d = gc.expand_dims(x, 1) - gc.expand_dims(x, 0)
    K = signal ** 2 * gc.exp(-0.5 * d * d / lengthscale ** 2) + noise ** 2 * np.eye(n)
    L = gc.linalg.cholesky(K)
    alpha = gc.linalg.solve_triangular(L, y, lower=True)
    nlml = (0.5 * gc.sum(alpha * alpha) + gc.sum(gc.log(gc.linalg.diagonal(L)))
            + 0.5 * n * np.log(2 * np.pi))
    return g, x, y, theta, nlml


def nlml_numpy(X, Y, t):
    ell, s, sn = np.exp(t)
    d = X[:, None] - X[None, :]
    K = s ** 2 * np.exp(-0.5 * d ** 2 / ell ** 2) + sn ** 2 * np.eye(len(X))
    _, logdet = np.linalg.slogdet(K)
    return 0.5 * Y @ np.linalg.solve(K, Y) + 0.5 * logdet + 0.5 * len(X) * np.log(2 * np.pi)


def test_gp_nlml_gradient_and_hessian():
    rng = np.random.default_rng(7)
    X = np.sort(rng.uniform(-3, 3, 12))
    Y = np.sin(X) + 0.1 * rng.standard_normal(12)
    t0 = np.array([np.log(0.8), np.log(1.2), np.log(0.3)])
    g, x, y, theta, nlml = nlml_graph(12)
    grad = gc.grad(nlml, theta)
    hess = gc.hessian(nlml, theta)
    feed = {x: X, y: Y, theta: t0}
    value, G, H = g.run([nlml, grad, hess], feed)
    np.testing.assert_allclose(value, nlml_numpy(X, Y, t0), rtol=1e-12)

    eps = 1e-5
    basis = np.eye(3) * eps
    numeric_grad = [(nlml_numpy(X, Y, t0 + e) - nlml_numpy(X, Y, t0 - e)) / (2 * eps)
                    for e in basis]
    np.testing.assert_allclose(G, numeric_grad, rtol=1e-7, atol=1e-8)

    numeric_hess = np.stack([(g.run(grad, {**feed, theta: t0 + e})
                              - g.run(grad, {**feed, theta: t0 - e})) / (2 * eps)
                             for e in basis])
    np.testing.assert_allclose(H, numeric_hess, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)

    # The compiled function gives the same numbers.
    f = gc.function([x, y, theta], [nlml, grad, hess])
    for got, want in zip(f(X, Y, t0), (value, G, H)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
