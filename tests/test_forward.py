"""Forward mode: every op's tangent rule from the registry, checked against central differences
and against its bprop by the transposition identity <u, J v> = <J^T u, v>, at order 1 and 2;
then jacfwd, the mode choice, blocks for several targets and the graph sizes."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import testing
from graphc.forward import fallback_ops
from graphc.ops.registry import REGISTRY

from test_ops_registry import DIFFERENTIABLE


@pytest.mark.parametrize("name,k", DIFFERENTIABLE)
def test_tangents_match_differences_and_the_transposed_bprop(name, k):
    if not testing.check_forward(name, k):
        pytest.skip("nothing to differentiate")


@pytest.mark.parametrize("name,k", DIFFERENTIABLE)
def test_jacfwd_from_a_batch_of_tangents(name, k):
    if not testing.check_jacfwd(name, k):
        pytest.skip("nothing to differentiate")


# -- the user-level functions ------------------------------------------------------------------------
def _mlp():
    rng = np.random.default_rng(0)
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    W1 = g.variable("W1", rng.standard_normal((10, 30)) / 3)
    W2 = g.variable("W2", rng.standard_normal((30, 100)) / 5)
    y = gc.tanh(gc.tanh(x @ W1) @ W2)
    return g, x, y, rng.standard_normal(10)


def test_jacobian_modes_agree_and_auto_picks_forward_for_few_inputs():
    g, x, y, X = _mlp()
    J_rev, J_fwd, J_auto = (gc.jacobian(y, x, mode=m) for m in ("rev", "fwd", "auto"))
    assert J_rev.shape == J_fwd.shape == (100, 10)
    values = g.run([J_rev, J_fwd, J_auto], {x: X})
    np.testing.assert_allclose(values[1], values[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(values[2], values[1])  # auto took forward mode
    with pytest.raises(gc.GraphcError, match="mode must be one of"):
        gc.jacobian(y, x, mode="sideways")


def test_hessian_and_hvp_in_both_modes_against_the_closed_form():
    rng = np.random.default_rng(1)
    n = 6
    A = rng.standard_normal((n, n))
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = gc.sum(gc.tanh(g.constant(A) @ x)) ** 2 + 0.5 * gc.sum(x * x)
    X, V = rng.standard_normal(n), rng.standard_normal(n)
    t = np.tanh(A @ X)
    s = t.sum()
    d = 1 - t * t
    want = 2 * np.outer(A.T @ d, A.T @ d) + 2 * s * A.T @ np.diag(-2 * t * d) @ A + np.eye(n)
    for mode in ("rev", "fwd", "auto"):
        H, Hv = gc.hessian(z, x, mode=mode), gc.hvp(z, x, V, mode=mode)
        H_val, Hv_val = g.run([H, Hv], {x: X})
        np.testing.assert_allclose(H_val, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Hv_val, want @ V, rtol=1e-10, atol=1e-12)


def test_blocks_for_several_targets():
    rng = np.random.default_rng(2)
    g = gc.Graph()
    W = g.variable("W", rng.standard_normal((3, 2)))
    b = g.variable("b", rng.standard_normal(2))
    x = g.constant(rng.standard_normal((5, 3)))
    loss = gc.sum(gc.tanh(x @ W + b) ** 2)
    blocks = gc.hessian(loss, [W, b])
    assert [[blk.shape for blk in row] for row in blocks] == \
        [[(3, 2, 3, 2), (3, 2, 2)], [(2, 3, 2), (2, 2)]]

    def flat_loss(p):
        Wv, bv = p[:6].reshape(3, 2), p[6:]
        return np.sum(np.tanh(x.value @ Wv + bv) ** 2)
    p0 = np.concatenate([W.value.ravel(), b.value])
    eps, n = 1e-4, 8
    full = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * eps, np.eye(n)[j] * eps
            full[i, j] = (flat_loss(p0 + e_i + e_j) - flat_loss(p0 + e_i - e_j)
                          - flat_loss(p0 - e_i + e_j) + flat_loss(p0 - e_i - e_j)) / (4 * eps ** 2)
    values = [g.run(row) for row in blocks]
    np.testing.assert_allclose(values[0][1].reshape(6, 2), full[:6, 6:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values[1][0].reshape(2, 6), full[6:, :6], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values[1][1], full[6:, 6:], rtol=1e-5, atol=1e-6)
    # hvp over both, and jvp and jacobian with lists
    v = [np.ones((3, 2)), np.ones(2)]
    Hv = g.run(gc.hvp(loss, [W, b], v))
    np.testing.assert_allclose(np.concatenate([Hv[0].ravel(), Hv[1]]), full @ np.ones(8),
                               rtol=1e-5, atol=1e-6)
    y = x @ W + b
    tangents = g.run(gc.jvp([y, loss], [W, b], v))
    assert tangents[0].shape == (5, 2) and tangents[1].shape == ()
    jac = gc.jacobian([y, loss], [W, b])
    assert jac[0][1].shape == (5, 2, 2) and jac[1][0].shape == (3, 2)


def test_jvp_errors_name_the_problem():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    with pytest.raises(gc.ShapeError, match="tangent of shape"):
        gc.jvp(gc.sin(x), x, np.ones(4))
    with pytest.raises(gc.GraphcError, match="1 xs but 2 tangents"):
        gc.jvp(gc.sin(x), [x], [np.ones(3), np.ones(3)])
    i = g.placeholder("i", (3,), "int64")
    with pytest.raises(gc.DTypeError, match="only float nodes"):
        gc.jvp(gc.sin(x) * i, i, np.ones(3))


def test_unconnected_outputs_get_zero_tangents():
    g = gc.Graph()
    x, y = g.placeholder("x", (3,)), g.placeholder("y", (2,))
    t = gc.jvp([gc.sin(y), gc.cos(x)], x, np.ones(3))
    np.testing.assert_array_equal(g.run(t[0], {y: np.ones(2)}), np.zeros(2))


@pytest.mark.parametrize("depth", [10, 1000])
def test_forward_graph_is_at_most_three_times_the_forward_graph(depth):
    g = gc.Graph()
    x = g.placeholder("x", (4,))
    y = x
    for k in range(depth):
        y = gc.tanh(y * (1.0 + k / depth))
    before = len(g)
    gc.jvp(y, x, np.ones(4))
    assert len(g) - before <= 3 * before


def test_mlp_forward_graph_size():
    g, x, y, X = _mlp()
    before = len(g)
    gc.jvp(y, x, np.ones(10))
    assert len(g) - before <= 3 * before


def test_fallback_ops_are_the_ones_without_a_forward_rule():
    listed = fallback_ops()
    assert "concatenate" in listed and "matmul" not in listed and "exp" not in listed
    assert all(REGISTRY[name].jvp is None and not REGISTRY[name].elementwise for name in listed)


def test_jvp_appends_only_nodes_its_result_uses():
    """The transposed bprops' forward halves (and unused seeds) are dropped, as gradients'
    dead nodes are (issue 9, defect 13)."""
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    y = gc.max(gc.concatenate([x, gc.sin(x)], axis=0), axis=0)  # both use the fallback
    v, total = gc.ones_like(x), gc.sum(y)
    before = len(g)
    t = gc.jvp([y, total], x, v)
    needed, stack = set(), list(t)
    while stack:
        node = stack.pop()
        if node.id >= before and node.id not in needed:
            needed.add(node.id)
            stack.extend(node.inputs)
    assert needed == set(range(before, len(g)))
    X = np.random.default_rng(0).standard_normal((4, 3))
    eps = 1e-6
    numeric = (g.run(y, {x: X + eps}) - g.run(y, {x: X - eps})) / (2 * eps)
    np.testing.assert_allclose(g.run(t[0], {x: X}), numeric, rtol=1e-6, atol=1e-8)
