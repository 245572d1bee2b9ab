"""Issue 10's ops beyond the registry test: NumPy's dispatch protocols, Node methods and
operators against NumPy itself; prod's exact derivatives at zeros against closed forms;
quantile gradients against central differences; the builder-only shape functions against
NumPy; compiled functions against g.run; SymPy forms against sympy.diff."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.special
import sympy as sp

import graphc as gc

RNG = np.random.default_rng(10)
X = RNG.uniform(0.5, 2.0, (3, 4))


@pytest.fixture
def gx():
    g = gc.Graph()
    return g, g.placeholder("x", (None, 4))


def run(node, x, value=X):
    return node.graph.run(node, {x: value})


# -- NumPy dispatch, methods and operators --------------------------------------------------------
UFUNCS = [
    (lambda x: np.exp(x), lambda a: np.exp(a)),
    (lambda x: np.add(x, 1), lambda a: a + 1),
    (lambda x: np.ones((3, 4)) * x, lambda a: a),
    (lambda x: np.arange(4.0) - x, lambda a: np.arange(4.0) - a),
    (lambda x: np.float32(2) ** x, lambda a: 2.0 ** a),
    (lambda x: np.maximum(x, 1.2), lambda a: np.maximum(a, 1.2)),
    (lambda x: np.less(x, 1.0), lambda a: a < 1.0),
    (lambda x: np.full(4, 1.0) < x, lambda a: 1.0 < a),
    (lambda x: np.arctan2(x, 1.5), lambda a: np.arctan2(a, 1.5)),
    (lambda x: np.remainder(x, 0.7), lambda a: np.mod(a, 0.7)),
    (lambda x: np.divmod(x, 0.7)[0], lambda a: np.floor_divide(a, 0.7)),
    (lambda x: np.abs(-x), lambda a: a),
    (lambda x: np.matmul(x, np.ones((4, 2))), lambda a: a @ np.ones((4, 2))),
    (lambda x: scipy.special.erf(x), lambda a: scipy.special.erf(a)),
    (lambda x: np.add.reduce(x), lambda a: a.sum(axis=0)),
    (lambda x: np.multiply.reduce(x, axis=1, keepdims=True), lambda a: a.prod(1, keepdims=True)),
    (lambda x: np.add.accumulate(x, axis=1), lambda a: np.cumsum(a, axis=1)),
    (lambda x: np.rint(x * 3), lambda a: np.rint(a * 3)),
]


@pytest.mark.parametrize("build,expected", UFUNCS)
def test_ufuncs_on_nodes_build_nodes(gx, build, expected):
    g, x = gx
    node = build(x)
    assert isinstance(node, gc.Node)
    np.testing.assert_allclose(run(node, x), expected(X), rtol=1e-12)


FUNCTIONS = [
    (lambda x: np.sum(x, axis=0), lambda a: np.sum(a, axis=0)),
    (lambda x: np.mean(x, axis=(0, 1), keepdims=True), lambda a: np.mean(a, (0, 1), keepdims=True)),
    (lambda x: np.max(x, axis=1), lambda a: np.max(a, axis=1)),
    (lambda x: np.prod(x), lambda a: np.prod(a)),
    (lambda x: np.var(x, axis=0, ddof=1), lambda a: np.var(a, axis=0, ddof=1)),
    (lambda x: np.std(x), lambda a: np.std(a)),
    (lambda x: np.where(x > 1, x, -x), lambda a: np.where(a > 1, a, -a)),
    (lambda x: np.clip(x, 0.8, 1.5), lambda a: np.clip(a, 0.8, 1.5)),
    (lambda x: np.reshape(x, (2, -1)), lambda a: np.reshape(a, (2, -1))),
    (lambda x: np.transpose(x), lambda a: a.T),
    (lambda x: np.transpose(x, axes=(1, 0)), lambda a: a.T),
    (lambda x: np.reshape(x, (6, 2)), lambda a: a.reshape(6, 2)),  # shape= needs NumPy 2.1
    (lambda x: np.concatenate([x, x], axis=None), lambda a: np.concatenate([a, a], axis=None)),
    (lambda x: np.stack([x, 2 * x], axis=-1), lambda a: np.stack([a, 2 * a], axis=-1)),
    (lambda x: np.cumsum(x), lambda a: np.cumsum(a)),
    (lambda x: np.sort(x, axis=0), lambda a: np.sort(a, axis=0)),
    (lambda x: np.median(x, axis=1), lambda a: np.median(a, axis=1)),
    (lambda x: np.quantile(x, [0.2, 0.7], axis=0), lambda a: np.quantile(a, [0.2, 0.7], axis=0)),
    (lambda x: np.pad(x, 1, mode="edge"), lambda a: np.pad(a, 1, mode="edge")),
    (lambda x: np.round(x, 1), lambda a: np.round(a, 1)),
    (lambda x: np.dot(x, np.ones(4)), lambda a: np.dot(a, np.ones(4))),
    (lambda x: np.tril(np.flip(x, 1)), lambda a: np.tril(np.flip(a, 1))),
    (lambda x: np.expand_dims(x, 0), lambda a: np.expand_dims(a, 0)),
    (lambda x: np.zeros_like(x, dtype="float32"), lambda a: np.zeros_like(a, dtype="float32")),
]


@pytest.mark.parametrize("build,expected", FUNCTIONS)
def test_numpy_functions_on_nodes_build_nodes(gx, build, expected):
    g, x = gx
    node = build(x)
    assert isinstance(node, gc.Node)
    value, want = run(node, x), expected(X)
    assert value.dtype == want.dtype
    np.testing.assert_allclose(value, want, rtol=1e-12)


def test_numpy_shape_queries_answer_statically(gx):
    g, x = gx
    assert np.shape(x) == (None, 4) and np.ndim(x) == 2
    parts = np.split(x, [1, 3], axis=1)
    assert [run(p, x).shape for p in parts] == [(3, 1), (3, 2), (3, 1)]


METHODS = [
    (lambda x: x.sum(), lambda a: a.sum()),
    (lambda x: x.sum(axis=0, keepdims=True), lambda a: a.sum(axis=0, keepdims=True)),
    (lambda x: x.sum(1, "float32"), lambda a: a.sum(1, "float32")),
    (lambda x: x.mean(1), lambda a: a.mean(1)),
    (lambda x: x.max(), lambda a: a.max()),
    (lambda x: x.min(axis=0), lambda a: a.min(axis=0)),
    (lambda x: x.prod(axis=1), lambda a: a.prod(axis=1)),
    (lambda x: x.reshape(2, 6), lambda a: a.reshape(2, 6)),
    (lambda x: x.reshape((6, -1)), lambda a: a.reshape((6, -1))),
    (lambda x: x.reshape(-1), lambda a: a.reshape(-1)),
    (lambda x: x.astype("float32"), lambda a: a.astype("float32")),
    (lambda x: x.transpose(), lambda a: a.transpose()),
    (lambda x: x.transpose(1, 0), lambda a: a.transpose(1, 0)),
    (lambda x: x.transpose((1, 0)), lambda a: a.transpose((1, 0))),
    (lambda x: x.flatten(), lambda a: a.flatten()),
    (lambda x: x.ravel(), lambda a: a.ravel()),
    (lambda x: x.reshape(3, 4)[:1].squeeze(), lambda a: a[:1].squeeze()),
    (lambda x: x[:1].squeeze(0), lambda a: a[:1].squeeze(0)),
    (lambda x: x.dot(np.ones((4, 2))), lambda a: a.dot(np.ones((4, 2)))),
    (lambda x: x.clip(0.8, 1.5), lambda a: a.clip(0.8, 1.5)),
    (lambda x: x.clip(max=1.5), lambda a: a.clip(max=1.5)),
    (lambda x: x.var(0, ddof=1), lambda a: a.var(0, ddof=1)),
    (lambda x: x.std(keepdims=True), lambda a: a.std(keepdims=True)),
    (lambda x: (x > 1).any(axis=1), lambda a: (a > 1).any(axis=1)),
    (lambda x: (x > 1).all(), lambda a: (a > 1).all()),
    (lambda x: x.argmax(axis=1), lambda a: a.argmax(axis=1)),
    (lambda x: x.argmin(), lambda a: a.argmin()),
    (lambda x: x.cumsum(1), lambda a: a.cumsum(1)),
    (lambda x: x.cumprod(), lambda a: a.cumprod()),
    (lambda x: x.round(1), lambda a: a.round(1)),
    (lambda x: round(x * 10), lambda a: np.round(a * 10)),
]


@pytest.mark.parametrize("build,expected", METHODS)
def test_node_methods_follow_ndarray(gx, build, expected):
    g, x = gx
    value, want = run(build(x), x), expected(X)
    assert value.dtype == want.dtype
    np.testing.assert_allclose(value, want, rtol=1e-12)


def test_operators_and_reflected_operators():
    g = gc.Graph()
    a = np.array([[3.3, -2.7, 5.1], [0.4, -0.6, 7.9]])
    x = g.placeholder("x", (2, 3))
    cases = [(x // 1.5, a // 1.5), (7.0 // x, 7.0 // a), (x % 1.5, a % 1.5), (7.0 % x, 7.0 % a),
             (divmod(x, 1.5)[0], divmod(a, 1.5)[0]), (divmod(x, 1.5)[1], divmod(a, 1.5)[1]),
             (divmod(7.0, x)[1], divmod(7.0, a)[1]), (abs(x), abs(a)), (2 - x, 2 - a),
             (2 / x, 2 / a), (2 ** x, 2 ** a), (np.ones((3, 2)) @ x[:, :2].T, np.ones((3, 2)) @
                                               a[:, :2].T)]
    for node, want in cases:
        assert isinstance(node, gc.Node)
        np.testing.assert_allclose(g.run(node, {x: a}), want, rtol=1e-12)
    n = g.placeholder("n", (3,), "int64")
    np.testing.assert_array_equal(g.run(n // 2 + n % 3, {n: [-7, 5, 8]}),
                                  np.array([-7, 5, 8]) // 2 + np.array([-7, 5, 8]) % 3)


def test_mod_gradient_closed_form():
    g = gc.Graph()
    a, b = g.placeholder("a", (3,)), g.placeholder("b", (3,))
    da, db = gc.gradients(gc.sum(a % b), [a, b])
    A, B = np.array([3.3, -2.7, 5.1]), np.array([1.5, 1.5, -2.2])
    got = g.run([da, db], {a: A, b: B})
    np.testing.assert_allclose(got[0], np.ones(3))
    np.testing.assert_allclose(got[1], -np.floor(A / B))


@pytest.mark.parametrize("call,name", [
    (lambda x: np.exp(x, out=np.empty((3, 4))), "numpy.exp: the argument out="),
    (lambda x: np.add(x, 1, where=True), "numpy.add: the argument where="),
    (lambda x: np.gcd(x, 2), "numpy.gcd is not supported"),
    (lambda x: np.add.outer(x, x), "numpy.add.outer is not supported"),
    (lambda x: np.fft.fft(x), "numpy.fft.fft is not supported"),
    (lambda x: np.sum(x, out=np.empty(4)), "numpy.sum: the argument out="),
    (lambda x: np.quantile(x, 0.5, method="nearest"), "method='nearest'"),
    (lambda x: np.where(x), "numpy.where with one argument"),
    (lambda x: np.asarray(x), "is symbolic"),
])
def test_unsupported_numpy_calls_raise_graphc_errors_naming_them(gx, call, name):
    g, x = gx
    with pytest.raises(gc.GraphcError, match=name.replace("(", r"\(").replace(".", r"\.")):
        call(x)


def test_numpy_linalg_dispatches_to_gc_linalg_when_present(gx):
    g, x = gx
    linalg = getattr(gc, "linalg", None)
    if linalg is None or not hasattr(linalg, "solve"):
        with pytest.raises(gc.GraphcError, match="numpy.linalg.solve is not supported"):
            np.linalg.solve(x, x)
        return
    A = g.placeholder("A", (3, 3))
    b = g.placeholder("b", (3,))
    M = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]])
    node = np.linalg.solve(A, b)
    assert isinstance(node, gc.Node)
    np.testing.assert_allclose(g.run(node, {A: M, b: np.arange(3.0)}),
                               np.linalg.solve(M, np.arange(3.0)), rtol=1e-10)


# -- prod at zeros: the closed forms --------------------------------------------------------------
def _others(v):
    return np.array([np.prod(np.delete(v, k)) for k in range(len(v))])


def _hessian_of_prod(v):
    n = len(v)
    return np.array([[0.0 if i == j else np.prod(np.delete(v, [i, j])) for j in range(n)]
                     for i in range(n)])


@pytest.mark.parametrize("v", [np.array([1.5, -2.0, 0.5, 3.0]), np.array([1.5, 0.0, 0.5, 3.0]),
                               np.array([0.0, -2.0, 0.0, 3.0]), np.array([0.0, 0.0, 0.0, 2.0])])
def test_prod_gradient_and_hessian_are_exact_with_zeros(v):
    g = gc.Graph()
    x = g.placeholder("x", (None,))
    p = gc.prod(x)
    grad, hess = gc.grad(p, x), gc.hessian(p, x)
    value, dv, H = g.run([p, grad, hess], {x: v})
    assert value == np.prod(v)
    np.testing.assert_allclose(dv, _others(v), rtol=1e-14, atol=0)
    np.testing.assert_allclose(H, _hessian_of_prod(v), rtol=1e-14, atol=0)
    # third derivatives: d3 P / dx_i dx_j dx_k = product of the elements outside {i, j, k}
    third = g.run(gc.jacobian(hess, x), {x: v})
    for i, j, k in itertools.product(range(len(v)), repeat=3):
        want = 0.0 if len({i, j, k}) < 3 else np.prod(np.delete(v, [i, j, k]))
        assert third[i, j, k] == pytest.approx(want, abs=1e-14)


def test_prod_over_axes_with_zeros_matches_the_product_of_the_others():
    g = gc.Graph()
    x = g.placeholder("x", (2, 3, 2))
    v = np.array([[[0.0, 2.0], [1.5, 0.0], [3.0, 1.0]], [[1.0, 2.0], [0.0, -1.0], [2.0, 0.5]]])
    grad = gc.grad(gc.sum(gc.prod(x, axis=(0, 2)) * np.array([1.0, -2.0, 0.5])), x)
    want = np.zeros_like(v)
    for j, w in enumerate([1.0, -2.0, 0.5]):
        block = v[:, j, :].reshape(-1)
        want[:, j, :] = w * _others(block).reshape(2, 2)
    np.testing.assert_allclose(g.run(grad, {x: v}), want, rtol=1e-14)


# -- quantile and other selections: gradients vs central differences ------------------------------
@pytest.mark.parametrize("q,axis,keepdims", [(0.3, 1, False), (0.5, 0, True), (0.9, None, False),
                                             (1.0, -1, False), ((0.1, 0.75), (0, 1), False)])
def test_quantile_gradients_match_central_differences(q, axis, keepdims):
    g = gc.Graph()
    x = g.variable("x", RNG.standard_normal((4, 5)))
    w = RNG.standard_normal(np.shape(np.quantile(x.value, q, axis=axis, keepdims=keepdims)))
    loss = gc.sum(gc.quantile(x, q, axis=axis, keepdims=keepdims) * w)
    assert gc.check_gradients(loss, [x], {}) < 1e-6
    np.testing.assert_allclose(g.run(gc.quantile(x, q, axis=axis, keepdims=keepdims)),
                               np.quantile(x.value, q, axis=axis, keepdims=keepdims), rtol=1e-12)


def test_median_gradient_splits_between_the_two_middle_elements():
    g = gc.Graph()
    x = g.placeholder("x", (4,))
    grad = gc.grad(gc.median(x), x)
    np.testing.assert_allclose(g.run(grad, {x: [4.0, 1.0, 3.0, 2.0]}), [0.0, 0.0, 0.5, 0.5])


def test_sort_and_top_k_gradients_match_central_differences():
    g = gc.Graph()
    x = g.variable("x", RNG.standard_normal((3, 5)))
    values, indices = gc.top_k(x, 3)
    w = RNG.standard_normal((3, 3))
    assert gc.check_gradients(gc.sum(values * w), [x], {}) < 1e-6
    assert gc.check_gradients(gc.sum(gc.sort(x, axis=0) * RNG.standard_normal((3, 5))), [x],
                              {}) < 1e-6
    np.testing.assert_array_equal(g.run(indices), np.argsort(-x.value, axis=-1)[:, :3])


def test_var_std_logcumsumexp_gradients_match_central_differences():
    g = gc.Graph()
    x = g.variable("x", RNG.standard_normal((3, 4)))
    for node in (gc.var(x, axis=1, ddof=1), gc.std(x, axis=0), gc.logcumsumexp(x, axis=1),
                 gc.cumprod(x + 3.0, axis=0), gc.gelu(x), gc.gelu(x, approximate=True)):
        loss = gc.sum(node * RNG.standard_normal(node.shape))
        assert gc.check_gradients(loss, [x], {}) < 1e-6, node.op


# -- builder-only shape functions against NumPy, with unknown sizes ------------------------------
def test_shape_functions_match_numpy_with_unknown_sizes(gx):
    g, x = gx
    cases = [(gc.pad(x, ((1, 2), (0, 3)), mode="reflect"), np.pad(X, ((1, 2), (0, 3)), "reflect")),
             (gc.pad(x, 2, constant_values=5), np.pad(X, 2, constant_values=5)),
             (gc.pad(x, (1, 3), mode="symmetric"), np.pad(X, (1, 3), mode="symmetric")),
             (gc.tile(x, (2, 1, 3)), np.tile(X, (2, 1, 3))),
             (gc.repeat(x, 2), np.repeat(X, 2)),
             (gc.repeat(x, [1, 0, 2, 1], axis=1), np.repeat(X, [1, 0, 2, 1], axis=1)),
             (gc.roll(x, 5), np.roll(X, 5)),
             (gc.roll(x, (1, -2), axis=(0, 1)), np.roll(X, (1, -2), axis=(0, 1))),
             (gc.flip(x), np.flip(X)), (gc.flip(x, 1), np.flip(X, 1)),
             (gc.moveaxis(gc.reshape(x, (-1, 2, 2)), 0, -1), np.moveaxis(X.reshape(3, 2, 2), 0, -1)),
             (gc.swapaxes(x, 0, 1), X.T), (gc.triu(x, -1), np.triu(X, -1))]
    cases += list(zip(gc.split(x, [1, 3], axis=1), np.split(X, [1, 3], axis=1)))
    cases += list(zip(gc.split(x, 2, axis=1), np.split(X, 2, axis=1)))
    v = g.placeholder("v", (None,))
    cases += list(zip(gc.meshgrid(v, x[0]), np.meshgrid(np.arange(3.0), X[0])))
    cases += list(zip(gc.meshgrid(v, x[0], indexing="ij"),
                      np.meshgrid(np.arange(3.0), X[0], indexing="ij")))
    cases += list(zip(gc.broadcast_arrays(v[:, None], x[0]),
                      np.broadcast_arrays(np.arange(3.0)[:, None], X[0])))
    feed = {x: X, v: np.arange(3.0)}
    for node, want in cases:
        np.testing.assert_array_equal(g.run(node, feed), want)


def test_pad_tile_repeat_gradients_add_back_into_the_sources():
    g = gc.Graph()
    x = g.variable("x", RNG.standard_normal((3, 4)))
    for node in (gc.pad(x, ((2, 1), (3, 2)), mode="reflect"), gc.pad(x, 1, mode="edge"),
                 gc.pad(x, 2, mode="wrap"), gc.tile(x, (2, 2)), gc.repeat(x, [2, 0, 1], 0),
                 gc.roll(x, 3), gc.flip(x, 0)):
        loss = gc.sum(node * RNG.standard_normal(node.shape))
        assert gc.check_gradients(loss, [x], {}) < 1e-6, node.op


def test_bad_arguments_are_clear_errors(gx):
    g, x = gx
    with pytest.raises(gc.ShapeError, match=r"split: 3 equal parts need the size .*test_ops_"):
        gc.split(x, 3, axis=0)
    with pytest.raises(gc.ShapeError, match="split: 4 elements do not split into 3 equal"):
        gc.split(x, 3, axis=1)
    with pytest.raises(gc.ShapeError, match=r"pad: pad_width -1 has negative widths; built at "
                                            r".*test_ops_numpy_coverage.py"):
        gc.pad(x, -1)
    with pytest.raises(gc.ShapeError, match="repeat: 2 repeats do not fit axis 1 of size 4"):
        gc.repeat(x, [1, 2], axis=1)
    with pytest.raises(gc.ShapeError, match=r"quantile: attr 'q': 1.5 is out of range"):
        gc.quantile(x, 1.5)
    with pytest.raises(gc.ShapeError, match=r"top_k_indices: k = 5 is larger than the last size"):
        gc.top_k(x, 5)


# -- compiled functions agree with g.run; check_numerics sees the new ops ------------------------
def test_compiled_new_ops_agree_with_run(gx):
    g, x = gx
    outputs = [gc.erf(x) + gc.gammaln(x), gc.prod(x, axis=1), gc.quantile(x, 0.25, axis=1),
               gc.cumsum(x, axis=1), gc.pad(x, 1, mode="reflect"), gc.top_k(x, 2)[0],
               gc.hessian(gc.sum(gc.prod(x, axis=1)), x), gc.logaddexp(x, -x) % 0.5,
               gc.grad(gc.sum(gc.digamma(x) * gc.sort(x)), x)]
    f = gc.function([x], outputs)
    for got, want in zip(f(X), g.run(outputs, {x: X})):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    checked = gc.function([x], gc.sum(gc.log2(x - 1.0)), check_numerics=True)
    with pytest.raises(gc.NumericsError, match="log2"):
        checked(X)


def test_float32_is_kept(gx):
    g = gc.Graph()
    x = g.placeholder("x", (3,), "float32")
    for node in (gc.erf(x), gc.gelu(x), gc.polygamma(1, x + 2), gc.quantile(x, 0.3),
                 gc.var(x), gc.logcumsumexp(x), gc.log_sigmoid(x), gc.prod(x)):
        assert node.dtype == np.float32, node.op
        assert g.run(node, {x: np.ones(3, "float32")}).dtype == np.float32, node.op


# -- to_sympy knows the scalar ones ----------------------------------------------------------------
@pytest.mark.parametrize("f", [gc.tan, gc.arcsinh, gc.erf, gc.erfc, gc.gammaln, gc.digamma,
                               gc.cbrt, gc.log10, gc.expm1, gc.silu, gc.log_sigmoid,
                               lambda x: gc.polygamma(2, x), lambda x: gc.hypot(x, 2.0),
                               lambda x: gc.logaddexp(x, 1.0), lambda x: gc.arctan2(x, 0.5)])
def test_to_sympy_derivatives_agree_with_sympy(f):
    g = gc.Graph()
    x = g.placeholder("x")
    y = f(x)
    s = sp.Symbol("x", real=True)
    real = {"real": True}  # sympy.diff of abs, sqrt, ... needs real symbols
    expr, dexpr = gc.to_sympy(y, real), gc.to_sympy(gc.grad(y, x), real)
    assert float(sp.N((sp.diff(expr, s) - dexpr).subs(s, 0.7))) == pytest.approx(0, abs=1e-12)
    assert float(sp.N(expr.subs(s, 0.7))) == pytest.approx(float(g.run(y, {x: 0.7})), rel=1e-12)


# -- the structure declarations never miss a nonzero of a derivative ------------------------------
@pytest.mark.parametrize("build", [
    lambda x: gc.prod(x, axis=1), lambda x: gc.var(x, axis=0), lambda x: gc.std(x, axis=(0, 1)),
    lambda x: gc.cumsum(x, axis=1), lambda x: gc.cumprod(x, axis=0),
    lambda x: gc.logcumsumexp(x, axis=1), lambda x: gc.sort(x, axis=0),
    lambda x: gc.quantile(x, 0.3, axis=1), lambda x: gc.tril(x, 1), lambda x: gc.mod(x, 0.7),
    lambda x: gc.leaky_relu(x - 1), lambda x: gc.pad(x, 1, mode="reflect"),
    lambda x: gc.top_k(x, 2)[0], lambda x: gc.median(x)])
def test_sparsity_patterns_cover_the_derivatives(build):
    g = gc.Graph()
    x = g.placeholder("x", (4, 5))
    value = RNG.uniform(0.5, 2.0, (4, 5))
    y = build(x)
    J = g.run(gc.jacobian(y, x), {x: value}).reshape(-1, value.size)
    assert not np.any((J != 0) & ~gc.jacobian_sparsity(y, x).toarray())
    z = gc.sum(gc.sin(y))
    H = g.run(gc.hessian(z, x), {x: value}).reshape(value.size, value.size)
    assert not np.any((np.abs(H) > 1e-12) & ~gc.hessian_sparsity(z, x).toarray())


def test_cumprod_gradient_and_hessian_are_exact_with_zeros():
    g = gc.Graph()
    x = g.placeholder("x", (None,))
    w = np.array([1.0, -2.0, 0.5, 3.0, 1.5])
    loss = gc.sum(gc.cumprod(x) * w)
    for v in (np.array([1.5, 0.0, -2.0, 0.0, 3.0]), np.array([0.0, 2.0, 0.5, -1.0, 2.0])):
        grad, hess = g.run([gc.grad(loss, x), gc.hessian(loss, x)], {x: v})
        # d/dx_k sum_i w_i prod_{j<=i} x_j = sum_{i>=k} w_i prod_{j<=i, j!=k} x_j
        want = [sum(w[i] * np.prod(np.delete(v[:i + 1], k)) for i in range(k, 5))
                for k in range(5)]
        np.testing.assert_allclose(grad, want, rtol=1e-14, atol=0)
        want_h = [[0.0 if k == l else sum(w[i] * np.prod(np.delete(v[:i + 1], [k, l]))
                                          for i in range(max(k, l), 5)) for l in range(5)]
                  for k in range(5)]
        np.testing.assert_allclose(hess, want_h, rtol=1e-14, atol=0)
