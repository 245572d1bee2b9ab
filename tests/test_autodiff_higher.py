"""Closure under differentiation: derivatives of derivatives, Jacobians, Hessians, HVPs.

Oracles: closed-form derivatives worked out by hand, and central finite differences of the
*forward* graph (first and second differences), never graphc's own derivative outputs.
"""
from __future__ import annotations


import numpy as np
import pytest

import graphc as gc


def run(g, node, feed):
    return np.asarray(g.run(node, feed), dtype=np.float64)


def fd_jacobian(f, x, eps=1e-6):
    """Jacobian of a NumPy function by central differences: shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=np.float64)
    y0 = np.asarray(f(x))
    out = np.zeros(y0.shape + x.shape)
    for index in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[index] = eps
        out[(Ellipsis,) + index] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps)
    return out


def fd_hessian(f, x, eps=1e-4):
    """Hessian of a scalar NumPy function by second central differences."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    H = np.zeros((n, n))
    flat = x.ravel()

    def at(*moves):
        z = flat.copy()
        for i, s in moves:
            z[i] += s * eps
        return float(f(z.reshape(x.shape)))
    for i in range(n):
        for j in range(i, n):
            H[i, j] = H[j, i] = (at((i, 1), (j, 1)) - at((i, 1), (j, -1)) - at((i, -1), (j, 1))
                                 + at((i, -1), (j, -1))) / (4 * eps * eps)
    return H.reshape(x.shape + x.shape)


# -- grads of grads of grads -----------------------------------------------------------------------
def tanh_derivatives(x):
    """tanh and its first four derivatives in closed form (t = tanh x, s = 1 - t^2)."""
    t = np.tanh(x)
    s = 1 - t ** 2
    return [t, s, -2 * t * s, -2 * s * (1 - 3 * t ** 2), 8 * t * s * (2 - 3 * t ** 2)]


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_fourth_derivative_of_tanh_by_repeated_gradients(dtype, rtol):
    g = gc.Graph()
    x = g.placeholder("x", (7,), dtype)
    d = gc.tanh(x)
    orders = [d]
    for _ in range(4):  # elementwise, so d/dx sum(f(x)) is f'(x) at every point
        (d,) = gc.gradients(gc.sum(d), [x])
        assert d.shape == (7,) and d.dtype == np.dtype(dtype)
        orders.append(d)
    xv = np.linspace(-2.5, 2.5, 7).astype(dtype)
    values = g.run(orders, {x: xv})
    for k, (got, want) in enumerate(zip(values, tanh_derivatives(xv.astype(np.float64)))):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=f"order {k}")


def test_third_derivative_via_grad_y_and_jacobian_agree():
    g = gc.Graph()
    x = g.placeholder("x", (5,))
    t = gc.tanh(x)
    (d1,) = gc.gradients(t, [x], grad_y=np.ones(5))
    (d2,) = gc.gradients(d1, [x], grad_y=np.ones(5))
    J3 = gc.jacobian(d2, x)  # diagonal: the third derivative
    xv = np.array([-1.3, -0.2, 0.0, 0.6, 1.9])
    np.testing.assert_allclose(run(g, J3, {x: xv}), np.diag(tanh_derivatives(xv)[3]),
                               rtol=1e-12, atol=1e-15)


def test_mixed_partials_of_a_two_variable_function():
    # f = x^2 y^3 + sin(x y): closed-form mixed partials up to order 4
    g = gc.Graph()
    x = g.placeholder("x")
    y = g.placeholder("y")
    f = x * x * y ** 3 + gc.sin(x * y)
    fx = gc.grad(f, x)
    fxy = gc.grad(fx, y)
    fxyy = gc.grad(fxy, y)
    fxxyy = gc.grad(fxyy, x)
    fyx = gc.grad(gc.grad(f, y), x)
    xv, yv = 0.7, -1.1
    p = xv * yv
    got = g.run([fx, fxy, fxyy, fxxyy, fyx], {x: xv, y: yv})
    want_fxy = 6 * xv * yv ** 2 + np.cos(p) - p * np.sin(p)
    want = [2 * xv * yv ** 3 + yv * np.cos(p),
            want_fxy,
            12 * xv * yv - 2 * xv * np.sin(p) - p * xv * np.cos(p),
            12 * yv - 2 * np.sin(p) - 4 * p * np.cos(p) + p * p * np.sin(p),
            want_fxy]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_every_order_stays_a_registered_op_graph():
    from graphc.ops.registry import REGISTRY

    g = gc.Graph()
    x = g.placeholder("x", (3,))
    W = g.variable("W", np.array([[0.5, -1.0, 0.2], [1.5, 0.3, -0.7]]))
    y = gc.sum(gc.softplus(W @ gc.sigmoid(x)) ** 2) + gc.logsumexp(x * x)
    d = y
    for _ in range(3):
        d = gc.sum(gc.grad(d, x) * np.array([1.0, -2.0, 0.5]))
    assert all(n.op in REGISTRY for n in g.nodes)
    assert all(REGISTRY[n.op].bprop != "not implemented" for n in g.nodes)
    # the third directional derivative against finite differences of the second
    v = np.array([1.0, -2.0, 0.5])

    def second(xv):
        return float(run(g, d_second, {x: xv}))
    d_second = y
    for _ in range(2):
        d_second = gc.sum(gc.grad(d_second, x) * v)
    xv = np.array([0.3, -0.4, 0.8])
    numeric = fd_jacobian(second, xv) @ v
    assert float(run(g, d, {x: xv})) == pytest.approx(float(numeric), rel=1e-6)


# -- Hessians --------------------------------------------------------------------------------------
def tanh_quadratic(n, seed=0, m=None):
    """f(x) = sum(tanh(A x)) + 0.5 x.x, with its Hessian A^T diag(-2 t (1 - t^2)) A + I."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m or n, n)) / np.sqrt(n)
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    f = gc.sum(gc.tanh(g.constant(A) @ x)) + 0.5 * gc.sum(x * x)

    def hessian(xv):
        t = np.tanh(A @ xv)
        return A.T @ np.diag(-2 * t * (1 - t ** 2)) @ A + np.eye(n)
    return g, x, f, hessian, rng.standard_normal(n)


def test_hessian_of_a_vector_function_matches_its_closed_form():
    g, x, f, hessian, xv = tanh_quadratic(6)
    H = gc.hessian(f, x)
    assert H.shape == (6, 6) and H.dtype == np.float64
    got = run(g, H, {x: xv})
    np.testing.assert_allclose(got, hessian(xv), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got, got.T, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", [(), (1,), (2, 3), (2, 1, 2)])
def test_hessian_for_x_of_any_shape(shape):
    rng = np.random.default_rng(len(shape))
    B = rng.standard_normal(shape) if shape else 0.7
    g = gc.Graph()
    X = g.placeholder("X", shape)

    def f_np(Xv):
        return np.sum(np.sin(Xv * B) * Xv) + np.sum(Xv) ** 2 * np.exp(np.mean(Xv) / 3)
    f = gc.sum(gc.sin(X * B) * X) + gc.sum(X) ** 2 * gc.exp(gc.mean(X) / 3.0)
    H = gc.hessian(f, X)
    assert H.shape == shape + shape
    Xv = rng.uniform(-1, 1, shape)
    got = run(g, H, {X: Xv})
    np.testing.assert_allclose(got, fd_hessian(f_np, Xv), rtol=1e-6, atol=1e-6)
    n = int(np.prod(shape))
    flat = got.reshape(n, n)
    np.testing.assert_allclose(flat, flat.T, rtol=1e-12, atol=1e-13)


def test_hessian_of_a_matrix_variable_in_a_network():
    rng = np.random.default_rng(5)
    Xd = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    g = gc.Graph()
    W = g.variable("W", rng.standard_normal((3, 3)) * 0.5)
    loss = gc.mean(gc.softmax_cross_entropy(g.constant(Xd) @ W, labels))

    def loss_np(Wv):
        z = Xd @ Wv
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -np.mean(logp[np.arange(4), labels])
    H = gc.hessian(loss, W)
    assert H.shape == (3, 3, 3, 3)
    got = run(g, H, {})
    np.testing.assert_allclose(got, fd_hessian(loss_np, W.value), rtol=1e-5, atol=1e-7)
    # symmetric as a 9x9 matrix, and positive semi-definite (the loss is convex in W)
    flat = got.reshape(9, 9)
    np.testing.assert_allclose(flat, flat.T, atol=1e-14)
    assert np.linalg.eigvalsh(flat).min() > -1e-12


def test_hessian_of_a_function_linear_in_x_is_zero_and_of_a_constant_too():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    H = gc.hessian(gc.sum(x * np.array([1.0, 2.0, 3.0])), x)
    assert H.shape == (3, 3)
    np.testing.assert_array_equal(run(g, H, {x: np.ones(3)}), np.zeros((3, 3)))
    c = g.placeholder("c")
    H0 = gc.hessian(c * 2.0, x)
    np.testing.assert_array_equal(run(g, H0, {x: np.ones(3), c: 1.0}), np.zeros((3, 3)))


def test_hessian_needs_a_scalar():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    with pytest.raises(gc.ShapeError):
        gc.hessian(x * 2.0, x)


def _hessian_size(n):
    g, x, f, hessian, xv = tanh_quadratic(n)
    start = len(g)
    H = gc.hessian(f, x)
    return g, x, H, len(g) - start, hessian, xv


def test_hessian_graph_size_does_not_grow_with_n():
    sizes = {}
    for n in (10, 100, 1000):
        g, x, H, added, hessian, xv = _hessian_size(n)
        sizes[n] = added
        assert H.shape == (n, n)
        if n <= 100:
            np.testing.assert_allclose(run(g, H, {x: xv}), hessian(xv), rtol=1e-10, atol=1e-12)
    # (up to 64 elements the seed's ones are one folded constant, above a broadcast constant)
    assert sizes[10] <= sizes[100] == sizes[1000] <= sizes[10] + 1, sizes
    assert sizes[10] < 60


# -- Jacobians -------------------------------------------------------------------------------------
def test_jacobian_shape_is_y_shape_plus_x_shape_and_matches_finite_differences():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 4))
    g = gc.Graph()
    X = g.placeholder("X", (4, 2))
    Y = gc.softmax(g.constant(A) @ gc.tanh(X), axis=0)  # (3, 2)

    def f_np(Xv):
        z = A @ np.tanh(Xv)
        e = np.exp(z - z.max(axis=0))
        return e / e.sum(axis=0)
    J = gc.jacobian(Y, X)
    assert J.shape == (3, 2, 4, 2)
    Xv = rng.standard_normal((4, 2))
    np.testing.assert_allclose(run(g, J, {X: Xv}), fd_jacobian(f_np, Xv), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("y_shape,x_shape", [((), (3,)), ((4,), ()), ((2, 2), (3,)),
                                             ((3,), (2, 2)), ((), ())])
def test_jacobian_shapes(y_shape, x_shape):
    rng = np.random.default_rng(7)
    C = rng.standard_normal(y_shape + x_shape)
    g = gc.Graph()
    x = g.placeholder("x", x_shape)
    axes = tuple(range(-len(x_shape), 0))
    y = gc.sum(gc.exp(x * 0.5) * C, axis=axes) if axes else gc.exp(x * 0.5) * C
    J = gc.jacobian(y, x)
    assert J.shape == y_shape + x_shape
    xv = rng.standard_normal(x_shape)

    def f_np(xv):
        v = np.exp(xv * 0.5) * C
        return np.sum(v, axis=axes) if axes else v
    np.testing.assert_allclose(run(g, J, {x: xv}), fd_jacobian(f_np, xv), rtol=1e-7, atol=1e-9)


def test_jacobian_of_a_gradient_is_the_hessian_and_a_jacobian_of_that_the_third_derivative():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    f = gc.sum(x ** 4) / 4.0 + x[0] * x[1] * x[2]
    T = gc.jacobian(gc.hessian(f, x), x)
    assert T.shape == (3, 3, 3)
    xv = np.array([0.5, -1.0, 2.0])
    want = np.zeros((3, 3, 3))
    for i in range(3):
        want[i, i, i] = 6 * xv[i]
    for perm in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]:
        want[perm] = 1.0
    np.testing.assert_allclose(run(g, T, {x: xv}), want, rtol=1e-14)


def test_jacobian_and_hessian_with_sizes_known_only_at_run_time():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.random.default_rng(3).standard_normal((3, 4)))
    y = gc.tanh(x @ W)
    J, H = gc.jacobian(y, W), gc.hessian(gc.sum(y * y), x)
    assert J.shape == (None, 4, 3, 4) and H.shape == (None, 3, None, 3)
    X = np.random.default_rng(4).standard_normal((2, 3))
    eps, numeric = 1e-6, np.zeros((2, 4, 3, 4))
    for index in np.ndindex(3, 4):
        step = np.zeros((3, 4))
        step[index] = eps
        numeric[(Ellipsis,) + index] = (np.tanh(X @ (W.value + step))
                                        - np.tanh(X @ (W.value - step))) / (2 * eps)
    np.testing.assert_allclose(run(g, J, {x: X}), numeric, rtol=1e-6, atol=1e-8)
    hess = run(g, H, {x: X})
    assert hess.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(hess, hess.transpose(2, 3, 0, 1), atol=1e-12)
    assert not hess[0, :, 1, :].any()  # rows of x do not interact


def test_jacobian_errors():
    g = gc.Graph()
    k = g.placeholder("k", (3,), "int64")
    z = g.placeholder("z", (3,))
    with pytest.raises(gc.DTypeError):
        gc.jacobian(k * 2, z)
    with pytest.raises(gc.DTypeError):
        gc.jacobian(z * 2.0, k)


def test_jacobian_of_unconnected_y_is_zero():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    z = g.placeholder("z", (3,))
    J = gc.jacobian(gc.exp(z), x)
    assert J.shape == (3, 2)
    np.testing.assert_array_equal(run(g, J, {x: np.ones(2), z: np.ones(3)}), np.zeros((3, 2)))


# -- Hessian-vector products -----------------------------------------------------------------------
def test_hvp_equals_hessian_times_v_without_forming_the_hessian():
    g, x, f, hessian, xv = tanh_quadratic(8, seed=3, m=5)  # A is 5 x 8
    v = g.placeholder("v", (8,))
    start = len(g)
    Hv = gc.hvp(f, x, v)
    assert Hv.shape == (8,)
    # no node of the HVP graph has the Hessian's shape or size
    assert all(n.shape != (8, 8) and np.prod(n.shape) < 64 for n in g.nodes[start:])
    vv = np.random.default_rng(4).standard_normal(8)
    np.testing.assert_allclose(run(g, Hv, {x: xv, v: vv}), hessian(xv) @ vv, rtol=1e-12)


def test_hvp_for_a_matrix_x():
    rng = np.random.default_rng(9)
    g = gc.Graph()
    X = g.placeholder("X", (2, 3))
    f = gc.sum(gc.tanh(X) ** 3) + gc.sum(X, axis=0)[1] * gc.sum(X * X)

    def f_np(Xv):
        return np.sum(np.tanh(Xv) ** 3) + np.sum(Xv, axis=0)[1] * np.sum(Xv * Xv)
    Xv, V = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    got = run(g, gc.hvp(f, X, V), {X: Xv})
    want = np.tensordot(fd_hessian(f_np, Xv), V, axes=2)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # and against the Hessian node
    H = run(g, gc.hessian(f, X), {X: Xv})
    np.testing.assert_allclose(got, np.tensordot(H, V, axes=2), rtol=1e-12, atol=1e-12)


def test_hvp_rejects_a_v_of_another_shape():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    with pytest.raises(gc.ShapeError):
        gc.hvp(gc.sum(x * x), x, np.ones(4))
