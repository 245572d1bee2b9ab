"""Linear algebra (issue 10): hand-derived derivatives, einsum against NumPy over many
subscripts, the NumPy-named products, dtypes, unknown sizes, compiled functions and errors.

The registry test already checks every op's kernel, shapes and derivatives of order 1 and 2 by
the dot-product test; these tests check the closed forms users know (d logdet A = A^-T, ...).
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(10)


def well_conditioned(n, *batch):
    return RNG.uniform(-1, 1, batch + (n, n)) + 3 * np.eye(n)


def spd(n, *batch):
    x = RNG.uniform(-1, 1, batch + (n, n))
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def lower_gradient(sym):
    """The gradient with respect to the lower triangle read by cholesky/eigh, from the
    gradient of the symmetric matrix: off-diagonal entries stand for two."""
    return np.tril(sym + sym.T) - np.diag(np.diag(sym))


# -- hand-derived derivatives ------------------------------------------------------------------
def test_gradient_of_logdet_is_inverse_transpose():
    A = well_conditioned(4)
    g = gc.Graph()
    a = g.placeholder("a", (4, 4))
    sign, logdet = gc.linalg.slogdet(a)
    grad = gc.grad(logdet, a)
    value, s, d = g.run([grad, sign, logdet], {a: A})
    np.testing.assert_allclose(d, np.log(abs(np.linalg.det(A))), rtol=1e-12)
    assert s == np.sign(np.linalg.det(A))
    np.testing.assert_allclose(value, np.linalg.inv(A).T, rtol=1e-10, atol=1e-12)
    # and of det itself: det(A) A^-T
    np.testing.assert_allclose(g.run(gc.grad(gc.linalg.det(a), a), {a: A}),
                               np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-10)


def test_logdet_through_cholesky_reads_the_lower_triangle():
    A = spd(4)
    g = gc.Graph()
    a = g.placeholder("a", (4, 4))
    L = gc.linalg.cholesky(a)
    logdet = 2 * gc.sum(gc.log(gc.linalg.diagonal(L)))
    value = g.run(gc.grad(logdet, a), {a: A})
    np.testing.assert_allclose(value, lower_gradient(np.linalg.inv(A)), rtol=1e-10, atol=1e-12)
    # a symmetric parametrisation gets the full symmetric gradient back
    s = g.placeholder("s", (4, 4))
    sym_logdet = 2 * gc.sum(gc.log(gc.linalg.diagonal(gc.linalg.cholesky((s + s.T) / 2))))
    np.testing.assert_allclose(g.run(gc.grad(sym_logdet, s), {s: A}), np.linalg.inv(A),
                               rtol=1e-10)


def test_derivative_of_inverse():
    A, dA = well_conditioned(3), RNG.standard_normal((3, 3))
    U = RNG.standard_normal((3, 3))
    g = gc.Graph()
    a = g.placeholder("a", (3, 3))
    grad = gc.grad(gc.sum(gc.linalg.inv(a) * U), a)
    Ai = np.linalg.inv(A)
    # <U, d inv> = <U, -A^-1 dA A^-1> for every direction dA
    np.testing.assert_allclose(np.sum(g.run(grad, {a: A}) * dA), np.sum(U * (-Ai @ dA @ Ai)),
                               rtol=1e-10)
    np.testing.assert_allclose(g.run(grad, {a: A}), -Ai.T @ U @ Ai.T, rtol=1e-10)


def test_derivative_of_solve():
    A, B, U = well_conditioned(3), RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2))
    g = gc.Graph()
    a, b = g.placeholder("a", (3, 3)), g.placeholder("b", (3, 2))
    ga, gb = gc.gradients(gc.sum(gc.linalg.solve(a, b) * U), [a, b])
    X = np.linalg.solve(A, B)
    b_bar = np.linalg.solve(A.T, U)
    va, vb = g.run([ga, gb], {a: A, b: B})
    np.testing.assert_allclose(vb, b_bar, rtol=1e-10)
    np.testing.assert_allclose(va, -b_bar @ X.T, rtol=1e-10)


def test_solve_triangular_and_cho_solve():
    A = spd(4)
    B = RNG.standard_normal((4, 3))
    L = np.linalg.cholesky(A)
    g = gc.Graph()
    l, b = g.placeholder("l", (4, 4)), g.placeholder("b", (4, 3))
    for lower, trans in [(True, 0), (True, "T"), (False, "N"), (False, 1)]:
        M = L if lower else L.T
        x = gc.linalg.solve_triangular(l, b, lower=lower, trans=trans)
        op = M.T if trans in (1, "T") else M
        np.testing.assert_allclose(g.run(x, {l: M, b: B}), np.linalg.solve(op, B), rtol=1e-10)
    x = gc.linalg.cho_solve((l, True), b)
    np.testing.assert_allclose(g.run(x, {l: L, b: B}), np.linalg.solve(A, B), rtol=1e-10)
    gc.check_gradients(gc.sum(x ** 2), [l, b], {l: L, b: B})


def test_eigh_values_vectors_and_their_gradients():
    A = spd(4)
    g = gc.Graph()
    a = g.placeholder("a", (4, 4))
    w, v = gc.linalg.eigh(a)
    W, V = g.run([w, v], {a: A})
    np.testing.assert_allclose(W, np.linalg.eigvalsh(A), rtol=1e-12)
    np.testing.assert_allclose(V @ np.diag(W) @ V.T, A, atol=1e-12)
    # d lambda_max / dA = v v^T (a simple eigenvalue), on the lower triangle
    top = gc.linalg.eigvalsh(a)[-1]
    np.testing.assert_allclose(g.run(gc.grad(top, a), {a: A}),
                               lower_gradient(np.outer(V[:, -1], V[:, -1])), atol=1e-10)
    # UPLO="U" reads the other triangle; eigenvector-dependent losses by finite differences
    wu, vu = gc.linalg.eigh(a, UPLO="U")
    loss = gc.sum(vu[0, :] * vu[1, :] * wu)
    gc.check_gradients(loss, [a], {a: A})
    assert np.allclose(g.run(gc.grad(loss, a), {a: A})[np.tril_indices(4, -1)], 0)


def test_cholesky_upper_and_batches():
    A = spd(3, 2)
    g = gc.Graph()
    a = g.placeholder("a", (2, 3, 3))
    U = g.run(gc.linalg.cholesky(a, upper=True), {a: A})
    np.testing.assert_allclose(np.swapaxes(U, -1, -2) @ U, A, atol=1e-12)
    np.testing.assert_allclose(U, np.linalg.cholesky(A, upper=True), atol=1e-12)


def test_second_derivatives_of_logdet_and_solve():
    """The Hessian of log det A is -A^-T (x) A^-T (as a 4-index tensor)."""
    A = well_conditioned(3)
    g = gc.Graph()
    a = g.placeholder("a", (3, 3))
    H = g.run(gc.hessian(gc.linalg.slogdet(a)[1], a), {a: A})
    Ai = np.linalg.inv(A)
    np.testing.assert_allclose(H, -np.einsum("li,jk->ijkl", Ai, Ai), rtol=1e-9, atol=1e-12)


# -- einsum against NumPy ------------------------------------------------------------------------
EINSUM_TABLE = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("i,i", [(3,), (3,)]),
    ("i,j", [(3,), (2,)]),
    ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ji", [(2, 2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("...ij,jk", [(2, 2, 3), (3, 2)]),
    ("i...->...", [(3, 2, 2)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ij,ij->ij", [(2, 3), (1, 3)]),
    ("ijk,kj->i", [(2, 3, 4), (4, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ab,bc,cd,d->a", [(2, 3), (3, 2), (2, 3), (3,)]),
    ("Ab,bA->", [(2, 3), (3, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]),
    (",i->i", [(), (3,)]),
    ("i,i,i->", [(3,), (3,), (3,)]),
    ("ijij->", [(2, 3, 2, 3)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUM_TABLE)
def test_einsum_matches_numpy_with_gradients(subscripts, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    g = gc.Graph()
    xs = [g.placeholder(f"x{k}", s) for k, s in enumerate(shapes)]
    y = gc.einsum(subscripts, *xs)
    feed = dict(zip(xs, arrays))
    np.testing.assert_allclose(g.run(y, feed), np.einsum(subscripts, *arrays), rtol=1e-12,
                               atol=1e-12)
    u = RNG.standard_normal(y.shape)
    loss = gc.sum(y * u) + 0.5 * gc.sum(y * y)  # second-order terms through the bprop
    gc.check_gradients(loss, xs, feed)
    # the Hessian of the loss (einsum of einsums) against finite differences of the gradient
    x0 = xs[0]
    H = g.run(gc.hessian(loss, x0), feed)
    grad = gc.grad(loss, x0)
    eps = 1e-6
    for index in list(np.ndindex(x0.shape))[:4]:
        e = np.zeros(x0.shape)
        e[index] = eps
        plus = g.run(grad, {**feed, x0: arrays[0] + e})
        minus = g.run(grad, {**feed, x0: arrays[0] - e})
        np.testing.assert_allclose(H[(Ellipsis,) + index], (plus - minus) / (2 * eps),
                                   rtol=1e-5, atol=1e-6)


def test_einsum_sublist_form_and_unknown_sizes():
    A, B = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    g = gc.Graph()
    a, b = g.placeholder("a", (None, None)), g.placeholder("b", (None, 4))
    y = gc.einsum(a, [0, 1], b, [1, Ellipsis])
    assert y.shape == (4, None)  # implicit output: "..." first, then the single letters
    np.testing.assert_allclose(g.run(y, {a: A, b: B}), np.einsum(A, [0, 1], B, [1, Ellipsis]))
    ga = gc.grad(gc.sum(y ** 2), a)
    np.testing.assert_allclose(g.run(ga, {a: A, b: B}), 2 * (A @ B) @ B.T, rtol=1e-12)
    # a None size that is a broadcast 1 at run time
    c = g.placeholder("c", (None, 3))
    d = g.placeholder("d", (2, 3))
    gc_ = gc.grad(gc.sum(gc.einsum("ij,ij->ij", c, d)), c)
    D = RNG.standard_normal((2, 3))
    np.testing.assert_allclose(g.run(gc_, {c: np.ones((1, 3)), d: D}), D.sum(0, keepdims=True))


def test_einsum_errors_name_the_problem():
    g = gc.Graph()
    a = g.placeholder("a", (2, 3))
    with pytest.raises(gc.ShapeError, match="name 3"):
        gc.einsum("ijk", a)
    with pytest.raises(gc.ShapeError, match="'j' has sizes 3 and 4"):
        gc.einsum("ij,jk", a, g.placeholder("b", (4, 2)))
    with pytest.raises(gc.ShapeError, match="invalid character"):
        gc.einsum("i1", a)
    with pytest.raises(gc.ShapeError, match="appear in no operand"):
        gc.einsum("ij->ik", a)
    with pytest.raises(gc.ShapeError, match="2 operands"):
        gc.einsum("ij,jk", a)


# -- the NumPy-named products and diagonals -------------------------------------------------------
@pytest.mark.parametrize("fn,shapes,kwargs", [
    ("tensordot", [(2, 3, 4), (3, 4, 2)], {}),
    ("tensordot", [(2, 3, 4), (4, 3)], {"axes": ([1, 2], [1, 0])}),
    ("tensordot", [(2, 3), (4,)], {"axes": 0}),
    ("tensordot", [(2, 3), (3, 2)], {"axes": (1, 0)}),
    ("dot", [(3,), (3,)], {}), ("dot", [(2, 3), (3,)], {}), ("dot", [(), (2, 3)], {}),
    ("dot", [(2, 3, 4), (5, 4, 2)], {}), ("dot", [(4,), (2, 4, 3)], {}),
    ("inner", [(2, 3), (4, 3)], {}), ("outer", [(2, 2), (3,)], {}),
    ("trace", [(3, 3)], {}), ("trace", [(3, 4, 2)], {"offset": 1}),
    ("diagonal", [(3, 4)], {"offset": -1}), ("diagonal", [(2, 3, 4)], {"axis1": 1, "axis2": 2}),
    ("diag", [(3,)], {"k": 1}), ("diag", [(3, 4)], {"k": -1}),
])
def test_numpy_products_and_diagonals(fn, shapes, kwargs):
    arrays = [RNG.standard_normal(s) for s in shapes]
    g = gc.Graph()
    xs = [g.placeholder(f"x{k}", s) for k, s in enumerate(shapes)]
    y = getattr(gc, fn)(*xs, **kwargs)
    feed = dict(zip(xs, arrays))
    np.testing.assert_allclose(g.run(y, feed), getattr(np, fn)(*arrays, **kwargs), rtol=1e-12,
                               atol=1e-12)
    if y.shape:
        gc.check_gradients(gc.sum(y * y), xs, feed)


def test_linalg_trace_and_diagonal_use_the_last_two_axes():
    X = RNG.standard_normal((2, 3, 3))
    g = gc.Graph()
    x = g.placeholder("x", X.shape)
    np.testing.assert_allclose(g.run(gc.linalg.trace(x), {x: X}), np.linalg.trace(X))
    np.testing.assert_allclose(g.run(gc.linalg.diagonal(x, 1), {x: X}),
                               np.linalg.diagonal(X, offset=1))


@pytest.mark.parametrize("ord,axis,keepdims", [
    (None, None, False), (None, None, True), (2, 1, False), (1, 0, True), (np.inf, 1, False),
    (-np.inf, 0, False), (3, 1, False), ("fro", None, False), (1, None, False),
    (np.inf, (0, 1), True), (-1, (1, 0), False), (None, (0, 1), False)])
def test_norm_matches_numpy(ord, axis, keepdims):
    X = RNG.uniform(0.5, 2, (3, 4)) * RNG.choice([-1, 1], (3, 4))
    g = gc.Graph()
    x = g.placeholder("x", X.shape)
    y = gc.linalg.norm(x, ord, axis, keepdims)
    np.testing.assert_allclose(g.run(y, {x: X}), np.linalg.norm(X, ord, axis, keepdims),
                               rtol=1e-12)
    gc.check_gradients(gc.sum(y), [x], {x: X})


def test_norm_rejects_what_it_cannot_do():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    with pytest.raises(gc.GraphcError, match="'nuc' need an SVD"):
        gc.linalg.norm(x, "nuc")
    with pytest.raises(gc.ShapeError, match="1-D or 2-D"):
        gc.linalg.norm(g.placeholder("t", (2, 2, 2)), 1)


# -- dtypes, unknown sizes, compiled functions, errors --------------------------------------
def test_float32_is_honoured_and_integers_become_float64():
    A = well_conditioned(3).astype(np.float32)
    g = gc.Graph()
    a = g.placeholder("a", (3, 3), "float32")
    for node in [gc.linalg.solve(a, a), gc.linalg.inv(a), gc.linalg.det(a),
                 gc.linalg.slogdet(a)[1], gc.linalg.cholesky(a @ a.T),
                 gc.linalg.eigh(a)[1], gc.linalg.solve_triangular(a, a[:, 0]),
                 gc.einsum("ij,jk", a, a)]:
        assert node.dtype == np.float32
        assert g.run(node, {a: A}).dtype == np.float32
    i = g.placeholder("i", (2, 2), "int64")
    assert gc.linalg.inv(i).dtype == np.float64
    assert g.run(gc.linalg.inv(i), {i: np.array([[2, 0], [0, 4]])}).dtype == np.float64
    with pytest.raises(gc.DTypeError, match="float16"):
        gc.linalg.inv(g.placeholder("h", (2, 2), "float16"))


def test_unknown_sizes_build_run_and_differentiate():
    g = gc.Graph()
    a = g.placeholder("a", (None, None))
    b = g.placeholder("b", (None,))
    L = gc.linalg.cholesky(a)
    x = gc.linalg.solve_triangular(L, b, lower=True)
    loss = gc.sum(x * x) + gc.linalg.slogdet(a)[1] + gc.sum(gc.linalg.eigvalsh(a) ** 2)
    A, B = spd(5), RNG.standard_normal(5)
    feed = {a: A, b: B}
    gc.check_gradients(loss, [a, b], feed)
    H = g.run(gc.hessian(loss, b), feed)
    np.testing.assert_allclose(H, 2 * np.linalg.inv(A), rtol=1e-9)


def test_compiled_function_agrees_with_run_and_checks_numerics():
    A, B = spd(4), RNG.standard_normal((4, 2))
    g = gc.Graph()
    a, b = g.placeholder("a", (4, 4)), g.placeholder("b", (4, 2))
    L = gc.linalg.cholesky(a)
    outs = [gc.linalg.solve(a, b), gc.linalg.inv(a), gc.linalg.det(a), gc.linalg.slogdet(a)[1],
            gc.linalg.solve_triangular(L, b, lower=True), gc.linalg.eigh(a)[0],
            gc.einsum("ij,jk->ik", a, b), gc.trace(a), gc.linalg.norm(b)]
    loss = gc.sum(outs[0] ** 2) + outs[3] + gc.sum(outs[4])
    outs += gc.gradients(loss, [a, b])
    f = gc.function([a, b], outs)
    for got, want in zip(f(A, B), g.run(outs, {a: A, b: B})):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    checked = gc.function([a, b], outs, check_numerics=True)
    checked(A, B)
    with pytest.raises(gc.GraphcError):
        checked(np.full((4, 4), np.nan), B)


def test_singular_and_indefinite_matrices_fail_naming_the_node():
    g = gc.Graph()
    a = g.placeholder("a", (2, 2))
    inverse = gc.linalg.inv(a, name="my_inverse")
    with pytest.raises(gc.GraphcError, match="my_inverse"):
        g.run(inverse, {a: np.ones((2, 2))})
    chol = gc.linalg.cholesky(a, name="my_factor")
    with pytest.raises(gc.GraphcError, match="my_factor"):
        g.run(chol, {a: -np.eye(2)})
    f = gc.function([a], chol)
    with pytest.raises(gc.GraphcError, match="my_factor"):
        f(-np.eye(2))


def test_shape_errors_at_build_time():
    g = gc.Graph()
    a, b = g.placeholder("a", (3, 3)), g.placeholder("b", (4, 2))
    with pytest.raises(gc.ShapeError, match=r"solve.*test_linalg.py"):
        gc.linalg.solve(a, b)
    with pytest.raises(gc.ShapeError, match="square"):
        gc.linalg.inv(b)
    with pytest.raises(gc.ShapeError, match="trans must be"):
        gc.linalg.solve_triangular(a, a, trans="X")
    with pytest.raises(gc.ShapeError, match="batch dimensions"):
        gc.linalg.solve(g.placeholder("s", (2, 3, 3)), g.placeholder("r", (4, 3, 1)))


def test_json_round_trip_keeps_canonical_subscripts():
    g = gc.Graph()
    a = g.placeholder("a", (2, 3, 3))
    y = gc.einsum("...ii->...i", a, name="y")
    w = gc.linalg.eigh(a)[0]
    g2 = gc.from_json(gc.to_json(g))
    assert g2["y"].attrs["subscripts"] == y.attrs["subscripts"] == "aii->ai"
    A = RNG.standard_normal((2, 3, 3))
    np.testing.assert_allclose(g2.run(g2["y"], {"a": A}), np.einsum("...ii->...i", A))
    np.testing.assert_allclose(g2.run(g2[w.name], {"a": A}), g.run(w, {a: A}))


def test_every_linalg_name_is_documented():
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    missing = [n for n in gc.linalg.__all__ if f"gc.linalg.{n}" not in text
               and f"`{n}`" not in text]
    assert not missing, missing
    for n in gc.linalg.__all__:
        assert getattr(gc.linalg, n).__doc__, n


def test_sparse_hessian_patterns_cover_the_dense_hessian():
    """The structure and curvature declarations (diagonal, diag, triangle: linear selections;
    einsum: linear in each operand) never miss a nonzero of the Hessian."""
    g = gc.Graph()
    x = g.placeholder("x", (3, 3))
    v = g.placeholder("v", (3,))
    z = (gc.sum(gc.linalg.diagonal(x) ** 3) + gc.sum(gc.einsum("ij,j,ij->i", x, v, x) ** 2)
         + gc.sum(gc.diag(v) * x) ** 2 + gc.linalg.slogdet(x @ x.T + 3 * np.eye(3))[1]
         + gc.sum(gc.linalg.cholesky(x @ x.T + 3 * np.eye(3))))
    X, V = well_conditioned(3), RNG.standard_normal(3)
    for target in (x, v):
        H = g.run(gc.hessian(z, target), {x: X, v: V})
        n = target.shape[0] ** target.ndim
        pattern = gc.hessian_sparsity(z, target).toarray()
        assert pattern[np.abs(H.reshape(n, n)) > 1e-12].all()
    diag_only = gc.hessian_sparsity(gc.sum(gc.linalg.diagonal(x) ** 3), x).toarray()
    np.testing.assert_array_equal(diag_only, np.diag(np.eye(3).ravel()).astype(bool))


def test_numpy_functions_on_nodes_build_the_linalg_ops():
    A, B = well_conditioned(3), RNG.standard_normal(3)
    g = gc.Graph()
    a, b = g.placeholder("a", (3, 3)), g.placeholder("b", (3,))
    nodes = [np.linalg.solve(a, b), np.einsum("ij,j", a, b), np.linalg.slogdet(a)[1],
             np.trace(a), np.linalg.norm(b, 1), np.outer(b, b)]
    assert [n.op for n in nodes] == ["solve", "einsum", "getitem", "sum", "sum", "einsum"]
    wants = [np.linalg.solve(A, B), np.einsum("ij,j", A, B), np.linalg.slogdet(A)[1],
             np.trace(A), np.linalg.norm(B, 1), np.outer(B, B)]
    for got, want in zip(g.run(nodes, {a: A, b: B}), wants):
        np.testing.assert_allclose(got, want, rtol=1e-12)
