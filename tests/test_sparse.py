"""Sparse derivatives: patterns that never miss a structural nonzero (against dense Jacobians and
Hessians of random inputs), valid colourings, and compressed results equal to the dense ones."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

import graphc as gc
from graphc import sparse


def _rosenbrock(n):
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = gc.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return g, x, z


def _grid(N):
    """A 2-D minimal-surface-like energy on an N x N grid, 5-point differences."""
    g = gc.Graph()
    x = g.placeholder("x", (N * N,))
    u = gc.reshape(x, (N, N))
    dx, dy = u[1:, :-1] - u[:-1, :-1], u[:-1, 1:] - u[:-1, :-1]
    z = gc.sum(gc.sqrt(1 + dx * dx + dy * dy)) + 0.1 * gc.sum(u ** 4)
    return g, x, z


def _arrowhead(n):
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = gc.sum((x[0] * x[1:]) ** 2) + gc.sum(gc.exp(x))
    return g, x, z


PROBLEMS = [(_rosenbrock, 30), (_grid, 6), (_arrowhead, 25)]


@pytest.mark.parametrize("make,n", PROBLEMS)
def test_sparse_hessian_equals_the_dense_one(make, n):
    g, x, z = make(n)
    X = np.random.default_rng(n).uniform(-1, 1, size=x.shape)
    S = gc.sparse_hessian(z, x)
    H = g.run(S, {x: X})
    assert isinstance(H, sp.csr_matrix) and H.shape == (X.size, X.size)
    dense = g.run(gc.hessian(z, x), {x: X})
    np.testing.assert_allclose(H.toarray(), dense, rtol=1e-12, atol=1e-12)
    assert (H != H.T).nnz == 0  # exactly symmetric
    assert S.ncolors <= {_rosenbrock: 3, _grid: 12, _arrowhead: 2}[make]
    # the compiled function gives the same matrix
    f = gc.function([x], S)
    np.testing.assert_array_equal(f(X).toarray(), H.toarray())


def test_chained_rosenbrock_needs_three_colours_and_a_band():
    g, x, z = _rosenbrock(2000)
    P = gc.hessian_sparsity(z, x)
    assert P.nnz == 3 * 2000 - 2
    assert abs(sp.find(P)[0] - sp.find(P)[1]).max() == 1
    assert gc.sparse_hessian(z, x).ncolors == 3


def test_arrowhead_pattern_is_an_arrow():
    g, x, z = _arrowhead(8)
    P = gc.hessian_sparsity(z, x).toarray()
    want = np.eye(8, dtype=bool)
    want[0, :] = want[:, 0] = True
    np.testing.assert_array_equal(P, want)


def test_sparse_jacobian_in_both_modes():
    g = gc.Graph()
    x = g.placeholder("x", (12,))
    y = gc.concatenate([gc.sin(x[1:] * x[:-1]), gc.sum(x, keepdims=True)], axis=0)
    X = np.random.default_rng(3).standard_normal(12)
    dense = g.run(gc.jacobian(y, x), {x: X})
    for mode in ("fwd", "rev", "auto"):
        S = gc.sparse_jacobian(y, x, mode=mode)
        np.testing.assert_allclose(g.run(S, {x: X}).toarray(), dense, rtol=1e-12, atol=1e-12)
    # one dense row: reverse needs many colours, forward few... or the other way round;
    # auto picks the smaller
    fwd, rev = gc.sparse_jacobian(y, x, "fwd"), gc.sparse_jacobian(y, x, "rev")
    assert fwd.ncolors >= sparse.lower_bound(fwd.pattern)
    assert gc.sparse_jacobian(y, x).ncolors == min(fwd.ncolors, rev.ncolors)


def test_column_colouring_is_valid():
    rng = np.random.default_rng(0)
    P = sp.random(40, 30, density=0.1, random_state=1, format="csr").astype(bool)
    colours = sparse.column_colouring(P)
    for c in range(colours.max() + 1):
        assert (P[:, colours == c].sum(axis=1) <= 1).all()
    assert rng is not None


# -- the pattern never misses a nonzero: random graphs ---------------------------------------------
UNARY = [gc.sin, gc.exp, gc.tanh, gc.square, gc.relu, gc.abs, gc.sigmoid, gc.softplus,
         lambda v: -v, lambda v: v * 3.0]
BINARY = [gc.add, gc.sub, gc.mul, gc.maximum, lambda a, b: a / (1.5 + gc.square(b))]


@st.composite
def programs(draw):
    n = draw(st.integers(2, 6))
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    pool = [x]
    for _ in range(draw(st.integers(1, 7))):
        a = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["unary", "binary", "shift", "reduce", "matmul", "soft"]))
        if kind == "unary":
            node = draw(st.sampled_from(UNARY))(a)
        elif kind == "binary":
            node = draw(st.sampled_from(BINARY))(a, draw(st.sampled_from(pool)))
        elif kind == "shift" and a.shape[0] > 1:
            node = gc.concatenate([a[1:], a[:1]], axis=0) if draw(st.booleans()) else a[::-1]
        elif kind == "reduce":
            node = gc.broadcast_to(gc.sum(a * a), a.shape) if draw(st.booleans()) else \
                gc.max(gc.stack([a, a * 2]), axis=0)
        elif kind == "matmul":
            M = np.random.default_rng(len(g)).standard_normal((a.shape[0], a.shape[0]))
            M[np.abs(M) < 0.8] = 0
            node = g.constant(M) @ a
        else:
            node = gc.softmax(a) if draw(st.booleans()) else gc.reshape(
                gc.transpose(gc.reshape(a, (1, -1))), (-1,))
        pool.append(node)
    y = pool[-1]
    return g, x, y


@settings(max_examples=60, deadline=None)
@given(programs())
def test_patterns_contain_every_nonzero(program):
    g, x, y = program
    rng = np.random.default_rng(len(g))
    P = gc.jacobian_sparsity(y, x).toarray()
    z = gc.sum(y * y) + gc.sum(gc.sin(y))
    Q = gc.hessian_sparsity(z, x).toarray()
    assert (Q == Q.T).all()
    J, H = gc.jacobian(y, x), gc.hessian(z, x)
    for _ in range(3):
        X = rng.uniform(-2, 2, size=x.shape)
        Jv, Hv = g.run([J, H], {x: X})
        assert not (np.abs(Jv) > 0)[~P].any(), "a Jacobian nonzero outside the pattern"
        assert not (np.abs(Hv) > 1e-13)[~Q].any(), "a Hessian nonzero outside the pattern"
    S = gc.sparse_hessian(z, x)
    X = rng.uniform(-2, 2, size=x.shape)
    np.testing.assert_allclose(g.run(S, {x: X}).toarray(), g.run(H, {x: X}),
                               rtol=1e-10, atol=1e-10)


def test_sizes_must_be_known():
    g = gc.Graph()
    x = g.placeholder("x", (None,))
    with pytest.raises(gc.ShapeError, match="sizes known when the graph is built"):
        gc.hessian_sparsity(gc.sum(x * x), x)


def test_sparse_derivatives_among_other_outputs():
    g, x, z = _rosenbrock(6)
    S = gc.sparse_hessian(z, x)
    X = np.linspace(-1, 1, 6)
    ran = g.run({"H": S, "both": [z, S]}, {x: X})
    compiled = gc.function([x], [S, z])(X)
    dense = g.run(gc.hessian(z, x), {x: X})
    for H in (ran["H"], ran["both"][1], compiled[0]):
        assert isinstance(H, sp.csr_matrix)
        np.testing.assert_allclose(H.toarray(), dense, rtol=1e-12, atol=1e-12)
    assert compiled[1] == pytest.approx(ran["both"][0], rel=1e-15)


@pytest.mark.parametrize("order", ["largest_first", "smallest_last"])
def test_the_jacobian_of_a_gradient_is_as_sparse_as_the_hessian(order):
    g, x, z = _grid(7)
    gz = gc.grad(z, x)
    P = gc.jacobian_sparsity(gz, x)
    assert (P != gc.hessian_sparsity(z, x)).nnz == 0  # the scatters of the gradient are exact
    J, H = gc.sparse_jacobian(gz, x, order=order), gc.sparse_hessian(z, x, order=order)
    X = np.random.default_rng(7).uniform(-1, 1, 49)
    dense = g.run(gc.hessian(z, x), {x: X})
    np.testing.assert_allclose(g.run(J, {x: X}).toarray(), dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.run(H, {x: X}).toarray(), dense, rtol=1e-12, atol=1e-12)
    assert sparse.lower_bound(P) <= J.ncolors <= 12 and H.ncolors <= J.ncolors
    with pytest.raises(gc.GraphcError, match="colouring order"):
        gc.sparse_hessian(z, x, order="random")
