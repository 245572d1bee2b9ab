"""Kinks, ties and large logits: the conventions API.md fixes, checked against closed forms.

relu'(0) = abs'(0) = 0; maximum/minimum/max/min split the gradient equally among tied inputs;
log_softmax, logsumexp, softplus, sigmoid and the cross-entropies have finite gradients and
Hessians for logits of magnitude 1e4.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def grad_at(build, value, dtype="float64"):
    value = np.asarray(value, dtype=dtype)
    g = gc.Graph()
    x = g.placeholder("x", value.shape, dtype)
    y = build(x)
    if y.shape != ():
        y = gc.sum(y)
    return np.asarray(g.run(gc.grad(y, x), {x: value}))


# -- kinks -----------------------------------------------------------------------------------------
def test_relu_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(grad_at(gc.relu, [-1.0, -0.0, 0.0, 1e-300, 2.0]),
                                  [0.0, 0.0, 0.0, 1.0, 1.0])


def test_abs_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(grad_at(gc.abs, [-3.0, -0.0, 0.0, 1e-300, 2.0]),
                                  [-1.0, 0.0, 0.0, 1.0, 1.0])


def test_second_derivatives_at_kinks_are_zero_and_finite():
    for build in (gc.relu, gc.abs):
        g = gc.Graph()
        x = g.placeholder("x", (3,))
        H = gc.hessian(gc.sum(build(x) * 3.0), x)
        np.testing.assert_array_equal(g.run(H, {x: np.array([-1.0, 0.0, 2.0])}), np.zeros((3, 3)))


@pytest.mark.parametrize("op,a,b,da,db", [
    (gc.maximum, [1.0, 2.0, 3.0], [1.0, 5.0, -1.0], [0.5, 0.0, 1.0], [0.5, 1.0, 0.0]),
    (gc.minimum, [1.0, 2.0, 3.0], [1.0, 5.0, -1.0], [0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
])
def test_ties_in_maximum_and_minimum_split_equally(op, a, b, da, db):
    g = gc.Graph()
    A = g.placeholder("a", (3,))
    B = g.placeholder("b", (3,))
    ga, gb = gc.gradients(gc.sum(op(A, B)), [A, B])
    got = g.run([ga, gb], {A: np.array(a), B: np.array(b)})
    np.testing.assert_array_equal(got[0], da)
    np.testing.assert_array_equal(got[1], db)


def test_ties_with_broadcasting_sum_the_shares():
    g = gc.Graph()
    x = g.placeholder("x", (4,))
    t = g.placeholder("t")  # a scalar threshold broadcast against x
    gx, gt = gc.gradients(gc.sum(gc.maximum(x, t)), [x, t])
    got = g.run([gx, gt], {x: np.array([0.0, 1.0, 1.0, 2.0]), t: 1.0})
    np.testing.assert_array_equal(got[0], [0.0, 0.5, 0.5, 1.0])
    assert float(got[1]) == 1.0 + 0.5 + 0.5  # wins at 0.0, ties at the two 1.0s


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_ties_in_max_and_min_split_equally(reduce):
    op = getattr(gc, reduce)
    sign = 1.0 if reduce == "max" else -1.0
    v = sign * np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, -1.0], [0.0, 7.0, 1.0, 2.0]])
    np.testing.assert_allclose(grad_at(lambda x: op(x), v),
                               [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_allclose(grad_at(lambda x: op(x, axis=1), v),
                               [[0, 0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3, 0], [0, 1, 0, 0]])
    np.testing.assert_allclose(grad_at(lambda x: op(x, axis=0, keepdims=True), v),
                               [[0, 0, 0, 0.5], [1, 0, 1, 0], [0, 1, 0, 0.5]])
    w = sign * np.array([[2.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(grad_at(lambda x: op(x) * 6.0, w), [[2, 2], [2, 0]])


def test_clip_at_a_bound_splits_and_is_one_inside():
    g = gc.Graph()
    x = g.placeholder("x", (5,))
    lo = g.placeholder("lo")
    gx, glo = gc.gradients(gc.sum(gc.clip(x, lo, 1.0)), [x, lo])
    got = g.run([gx, glo], {x: np.array([-2.0, -1.0, 0.0, 1.0, 3.0]), lo: -1.0})
    np.testing.assert_array_equal(got[0], [0.0, 0.5, 1.0, 0.5, 0.0])
    assert float(got[1]) == 1.5  # active at -2.0, tied at -1.0


# -- large logits ----------------------------------------------------------------------------------
BIG = np.array([1e4, -1e4, 0.0, 3.0, 1e4 - 1.0])


def _finite_everything(build, value, dtype, label_fn=None):
    """Value, gradient and Hessian of sum(build(x)) at ``value``: all finite."""
    g = gc.Graph()
    x = g.placeholder("x", np.shape(value), dtype)
    y = gc.sum(build(x))
    gx = gc.grad(y, x)
    H = gc.hessian(y, x)
    out = g.run([y, gx, H], {x: np.asarray(value, dtype)})
    for part in out:
        assert np.all(np.isfinite(part)), (part, label_fn)
        assert np.asarray(part).dtype == np.dtype(dtype)
    return [np.asarray(v, dtype=np.float64) for v in out]


def softmax_np(v):
    e = np.exp(v - v.max())
    return e / e.sum()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log_softmax_and_logsumexp_at_1e4(dtype):
    p = softmax_np(BIG)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    # logsumexp: gradient softmax, Hessian diag(p) - p p^T
    _, gx, H = _finite_everything(gc.logsumexp, BIG, dtype)
    np.testing.assert_allclose(gx, p, **tol)
    np.testing.assert_allclose(H, np.diag(p) - np.outer(p, p), **tol)
    # sum(log_softmax(x)) = sum(x) - n lse(x): gradient 1 - n p, Hessian -n (diag(p) - p p^T)
    n = BIG.size
    _, gx, H = _finite_everything(gc.log_softmax, BIG, dtype)
    np.testing.assert_allclose(gx, 1 - n * p, **tol)
    np.testing.assert_allclose(H, -n * (np.diag(p) - np.outer(p, p)), **tol)
    # softmax itself, through a weighting
    w = np.arange(1.0, n + 1)
    _, gx, _ = _finite_everything(lambda x: gc.softmax(x) * w.astype(dtype), BIG, dtype)
    np.testing.assert_allclose(gx, p * (w - p @ w), **tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softplus_and_sigmoid_at_1e4(dtype):
    s = 0.5 * (1 + np.tanh(BIG / 2))  # sigmoid without overflow
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    value, gx, H = _finite_everything(gc.softplus, BIG, dtype)
    np.testing.assert_allclose(gx, s, **tol)
    np.testing.assert_allclose(H, np.diag(s * (1 - s)), **tol)
    assert value == pytest.approx(np.sum(np.maximum(BIG, 0) + np.log1p(np.exp(-np.abs(BIG)))),
                                  rel=1e-6)
    _, gx, H = _finite_everything(gc.sigmoid, BIG, dtype)
    np.testing.assert_allclose(gx, s * (1 - s), **tol)
    np.testing.assert_allclose(H, np.diag(s * (1 - s) * (1 - 2 * s)), **tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropies_at_1e4(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [0.5, 1e4, -3.0]])
    labels = np.array([1, 2, 0])  # confidently wrong, right, wrong
    P = np.stack([softmax_np(row) for row in logits])
    onehot = np.eye(3)[labels]
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    value, gx, H = _finite_everything(lambda L: gc.softmax_cross_entropy(L, labels), logits,
                                      dtype)
    np.testing.assert_allclose(gx, P - onehot, **tol)
    assert value == pytest.approx(2e4 + (1e4 - 0.5), rel=1e-6)
    targets = np.array([[0.2, 0.3, 0.5], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
    _, gx, _ = _finite_everything(lambda L: gc.softmax_cross_entropy(L, targets.astype(dtype)),
                                  logits, dtype)
    np.testing.assert_allclose(gx, P - targets, **tol)
    t = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0], [0.25, 1.0, 0.0]])
    S = 0.5 * (1 + np.tanh(logits / 2))
    _, gx, H = _finite_everything(lambda L: gc.sigmoid_cross_entropy(L, t.astype(dtype)),
                                  logits, dtype)
    np.testing.assert_allclose(gx, S - t, **tol)
    np.testing.assert_allclose(H, np.diag((S * (1 - S)).ravel()).reshape(3, 3, 3, 3), **tol)


def test_large_logits_in_a_network_keep_gradients_finite():
    g = gc.Graph()
    X = g.placeholder("X", (None, 2))
    W = g.variable("W", np.array([[5e3, -5e3, 1.0], [-5e3, 5e3, 2.0]]))
    labels = g.placeholder("labels", (None,), "int64")
    loss = gc.mean(gc.softmax_cross_entropy(X @ W, labels)) + gc.mean(gc.logsumexp(X @ W))
    gW = gc.grad(loss, W)
    HW = gc.hessian(loss, W)
    out = g.run([loss, gW, HW], {X: np.array([[1.0, -1.0], [-1.0, 1.0]]),
                                 labels: np.array([1, 0])})
    assert all(np.all(np.isfinite(v)) for v in out)
    assert float(out[0]) == pytest.approx(0.5 * (2e4 + 2e4) + 1e4, rel=1e-12)
