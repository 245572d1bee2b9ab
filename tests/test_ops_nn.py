"""Activations, softmax family, cross-entropies, comparisons, where, kinks and their numerics.

The registry test checks every op's kernel, shape rule and derivatives on smooth points; here:
the cases it cannot cover (huge logits, ties and kinks, float32, error messages) and
hand-written NumPy oracles for the cross-entropies.
"""
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import REGISTRY

HERE = __file__
BIG = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4 + 1.0], [1e4, 1e4, -1e4], [0.5, -0.5, 2.0]])
LABELS = np.array([0, 2, 1, 1])


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def run(node, feed=None):
    return np.asarray(node.graph.run(node, feed))


# -- stability: values, first and second derivatives stay finite for logits of size 1e4 ---------
def _w(x):
    return x.graph.constant(np.arange(3.0), dtype=x.dtype)


LOSSES = {
    "softmax": lambda x, y: gc.sum(gc.softmax(x) * _w(x)),
    "log_softmax": lambda x, y: gc.sum(gc.log_softmax(x) * _w(x)),
    "logsumexp": lambda x, y: gc.sum(gc.logsumexp(x, axis=-1)),
    "logsumexp_all": lambda x, y: gc.logsumexp(x, axis=None),
    "softplus": lambda x, y: gc.sum(gc.softplus(x)),
    "sigmoid": lambda x, y: gc.sum(gc.sigmoid(x) * _w(x)),
    "sigmoid_ce": lambda x, y: gc.sum(gc.sigmoid_cross_entropy(x, 0.3)),
    "softmax_ce": lambda x, y: gc.mean(gc.softmax_cross_entropy(x, y)),
    "softmax_ce_probs": lambda x, y: gc.mean(
        gc.softmax_cross_entropy(x, gc.one_hot(y, 3, dtype=x.dtype) * 0.8 + 0.2 / 3)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("which", sorted(LOSSES))
def test_huge_logits_give_finite_values_and_derivatives(which, dtype):
    g = gc.Graph()
    x = g.placeholder("x", BIG.shape, dtype)
    y = g.placeholder("y", LABELS.shape, "int64")
    loss = LOSSES[which](x, y)
    gx = gc.grad(loss, x)
    hv = gc.hvp(loss, x, np.ones(BIG.shape, dtype))
    values = g.run([loss, gx, hv], {x: BIG, y: LABELS})
    for value in values:
        assert np.all(np.isfinite(value)), which
        assert value.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_huge_logits_have_the_right_values(dtype):
    g = gc.Graph()
    x = g.placeholder("x", BIG.shape, dtype)
    y = g.placeholder("y", LABELS.shape, "int64")
    feed = {x: BIG, y: LABELS}
    ce = run(gc.softmax_cross_entropy(x, y), feed)
    np.testing.assert_allclose(ce[:3], [0.0, np.log1p(2 * np.exp(-1.0)), np.log(2.0)],
                               rtol=1e-6, atol=1e-6)
    lse = run(gc.logsumexp(x, axis=-1), feed)
    np.testing.assert_allclose(lse[:3], [1e4, -1e4 + 1 + np.log1p(2 * np.exp(-1.0)),
                                         1e4 + np.log(2.0)], rtol=1e-6)
    np.testing.assert_array_equal(run(gc.softplus(x), feed)[0], np.array([1e4, 0.0, np.log(2)],
                                                                         dtype))
    np.testing.assert_array_equal(run(gc.sigmoid(x), feed)[0], np.array([1.0, 0.0, 0.5], dtype))
    np.testing.assert_allclose(run(gc.softmax(x), feed)[2], [0.5, 0.5, 0.0])
    sce = run(gc.sigmoid_cross_entropy(x, 1.0), feed)[0]
    np.testing.assert_allclose(sce, [0.0, 1e4, np.log(2.0)], rtol=1e-6)


def test_kernels_raise_no_floating_warnings():
    x = np.array([[1e4, -1e4, 0.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0]])
    with np.errstate(all="raise", under="ignore"):
        REGISTRY["sigmoid"].kernel(BIG)
        REGISTRY["softplus"].kernel(BIG)
        REGISTRY["softmax"].kernel(BIG, axis=(-1,))
        assert np.isneginf(REGISTRY["logsumexp"].kernel(x, axis=(-1,), keepdims=False)[1])
        assert np.isneginf(REGISTRY["log_softmax"].kernel(x, axis=(-1,))[2, 0])
        assert np.isnan(REGISTRY["softmax"].kernel(x, axis=(-1,))[1]).all()  # undefined
        REGISTRY["softmax_cross_entropy"].kernel(BIG, LABELS)
        REGISTRY["sigmoid_cross_entropy"].kernel(BIG, 0.5)


def test_logsumexp_edge_values():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    f = gc.logsumexp(x, axis=0)
    assert run(f, {x: [np.inf, 0.0, 1.0]}) == np.inf
    assert run(f, {x: [-np.inf] * 3}) == -np.inf
    assert run(f, {x: [-np.inf, 0.0, 0.0]}) == pytest.approx(np.log(2.0))


# -- kinks and ties ---------------------------------------------------------------------------
def test_relu_and_abs_have_zero_derivative_at_zero():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    feed = {x: [-1.0, 0.0, 2.0]}
    np.testing.assert_array_equal(run(gc.grad(gc.sum(gc.relu(x)), x), feed), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(run(gc.grad(gc.sum(gc.abs(x)), x), feed), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(run(gc.hessian(gc.sum(gc.relu(x) ** 2), x), feed),
                                  np.diag([0.0, 0.0, 2.0]))
    np.testing.assert_array_equal(run(gc.relu(x), feed), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(run(gc.abs(x), feed), [1.0, 0.0, 2.0])


@pytest.mark.parametrize("op,win_a", [(gc.maximum, [0.5, 1.0, 0.0]),
                                      (gc.minimum, [0.5, 0.0, 1.0])])
def test_maximum_minimum_split_ties_equally(op, win_a):
    g = gc.Graph()
    a = g.placeholder("a", (3,))
    b = g.placeholder("b", (3,))
    feed = {a: [1.0, 2.0, 3.0], b: [1.0, 0.0, 5.0]}
    ga, gb = g.run(gc.gradients(gc.sum(op(a, b)), [a, b]), feed)
    np.testing.assert_array_equal(ga, win_a)
    np.testing.assert_array_equal(gb, 1.0 - np.array(win_a))
    # The same node on both sides: the halves add up to the whole.
    np.testing.assert_array_equal(run(gc.grad(gc.sum(op(a, a)), a), feed), [1.0, 1.0, 1.0])
    # A broadcast scalar tied with some entries collects their halves.
    s = g.placeholder("s", ())
    gs = run(gc.grad(gc.sum(op(a, s)), s), {**feed, s: 2.0})
    assert gs == 1.5  # wins once, ties once


def test_clip_values_and_gradients_like_minimum_of_maximum():
    g = gc.Graph()
    x = g.placeholder("x", (5,))
    lo = g.placeholder("lo", ())
    hi = g.placeholder("hi", ())
    feed = {x: [-2.0, 0.0, 0.5, 1.0, 3.0], lo: 0.0, hi: 1.0}
    y = gc.clip(x, lo, hi)
    np.testing.assert_array_equal(run(y, feed), [0.0, 0.0, 0.5, 1.0, 1.0])
    gx, glo, ghi = g.run(gc.gradients(gc.sum(y), [x, lo, hi]), feed)
    np.testing.assert_array_equal(gx, [0.0, 0.5, 1.0, 0.5, 0.0])
    assert (glo, ghi) == (1.5, 1.5)
    composed = gc.minimum(gc.maximum(x, lo), hi)
    for mine, theirs in zip(g.run(gc.gradients(gc.sum(y * x), [x, lo, hi]), feed),
                            g.run(gc.gradients(gc.sum(composed * x), [x, lo, hi]), feed)):
        np.testing.assert_array_equal(mine, theirs)
    # Scalar bounds, one open side.
    np.testing.assert_array_equal(run(gc.clip(x, None, 1.0), feed), [-2.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(run(gc.clip(x, 0.0, None), feed), [0.0, 0.0, 0.5, 1.0, 3.0])
    with pytest.raises(gc.GraphcError, match="at least one of lo and hi"):
        gc.clip(x, None, None)


def test_sign_and_comparisons_pass_zero_gradient():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    feed = {x: [-1.0, 0.0, 2.0]}
    np.testing.assert_array_equal(run(gc.sign(x), feed), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(run(gc.grad(gc.sum(gc.sign(x) * 3.0), x), feed), 0.0)
    y = gc.sum(gc.cast(x > 0, "float64") * x)
    np.testing.assert_array_equal(run(gc.grad(y, x), feed), [0.0, 0.0, 1.0])
    assert not REGISTRY["sign"].differentiable and not REGISTRY["less"].differentiable


# -- float32 is honoured --------------------------------------------------------------------------
FLOAT_OPS = {
    "abs": lambda x: gc.abs(x), "maximum": lambda x: gc.maximum(x, 0.5),
    "minimum": lambda x: gc.minimum(x, x * 2), "clip": lambda x: gc.clip(x, -0.5, 0.5),
    "where": lambda x: gc.where(x > 0, x, 0), "relu": gc.relu, "sigmoid": gc.sigmoid,
    "softplus": gc.softplus, "softmax": gc.softmax, "log_softmax": gc.log_softmax,
    "logsumexp": lambda x: gc.logsumexp(x, axis=None, keepdims=True),
    "sigmoid_cross_entropy": lambda x: gc.sigmoid_cross_entropy(x, 0.25),
    "softmax_cross_entropy": lambda x: gc.softmax_cross_entropy(
        x, np.array([0, 1], dtype=np.int32)),
}


@pytest.mark.parametrize("which", sorted(FLOAT_OPS))
def test_float32_in_float32_out(which):
    g = gc.Graph()
    x = g.placeholder("x", (2, 3), "float32")
    y = FLOAT_OPS[which](x)
    assert y.dtype == np.float32
    value = run(y, {x: np.linspace(-1, 1, 6).reshape(2, 3)})
    assert value.dtype == np.float32
    gx = gc.grad(gc.sum(y), x)
    assert gx.dtype == np.float32 and run(gx, {x: np.ones((2, 3))}).dtype == np.float32


def test_int_inputs():
    g = gc.Graph()
    k = g.placeholder("k", (3,), "int64")
    assert gc.relu(k).dtype == np.int64 and gc.abs(k).dtype == np.int64
    assert gc.sigmoid(k).dtype == np.float64 and gc.softmax(k).dtype == np.float64
    np.testing.assert_array_equal(run(gc.relu(k), {k: [-2, 0, 3]}), [0, 0, 3])
    np.testing.assert_array_equal(run(gc.maximum(k, 1), {k: [-2, 0, 3]}), [1, 1, 3])
    assert gc.maximum(k, 1).dtype == np.int64 and gc.clip(k, 0, 1).dtype == np.int64


# -- comparisons and where ---------------------------------------------------------------------
def test_comparisons_are_bool_with_broadcasting():
    g = gc.Graph()
    a = g.placeholder("a", (2, 1))
    b = g.placeholder("b", (3,))
    feed = {a: [[1.0], [2.0]], b: [0.0, 1.0, 2.0]}
    A, B = np.array(feed[a]), np.array(feed[b])
    cases = [(a < b, A < B), (a <= b, A <= B), (a > b, A > B), (a >= b, A >= B),
             (gc.equal(a, b), A == B), (gc.not_equal(a, b), A != B),
             (gc.less(a, 1.5), A < 1.5), (gc.logical_not(a > b), ~(A > B)),
             (gc.logical_and(a > 0, b > 0), (A > 0) & (B > 0)),
             (gc.logical_or(a > 1, b > 1), (A > 1) | (B > 1))]
    for node, expected in cases:
        assert node.dtype == np.bool_ and node.shape == expected.shape
        value = run(node, feed)
        assert value.dtype == np.bool_
        np.testing.assert_array_equal(value, expected)
    assert (a == b) is False  # == stays identity on nodes


def test_where_broadcasts_and_routes_the_gradient():
    g = gc.Graph()
    c = g.placeholder("c", (3, 1), "bool")
    a = g.placeholder("a", (4,))
    b = g.placeholder("b", ())
    y = gc.where(c, a, b)
    assert y.shape == (3, 4) and y.dtype == np.float64
    feed = {c: [[True], [False], [True]], a: np.arange(4.0), b: -1.0}
    np.testing.assert_array_equal(run(y, feed), np.where(feed[c], feed[a], feed[b]))
    ga, gb = g.run(gc.gradients(gc.sum(y), [a, b]), feed)
    np.testing.assert_array_equal(ga, [2.0] * 4)  # two rows chose a
    assert gb == 4.0  # one row of four chose b
    # Unknown sizes: the gradient pass sums back at run time.
    x = g.placeholder("x", (None, None))
    z = gc.where(x > 0, x, 0.1 * x)
    X = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, -0.5]])
    np.testing.assert_array_equal(run(gc.grad(gc.sum(z), x), {x: X}), np.where(X > 0, 1.0, 0.1))
    with pytest.raises(gc.ShapeError, match=r"where: .*do not broadcast"):
        gc.where(c, g.placeholder("d", (2, 4)), b)


# -- cross-entropies against hand-written NumPy ------------------------------------------------
@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((5, 4)), np.array([3, 0, 1, 3, 2])


def test_softmax_cross_entropy_int_labels_vs_numpy(data):
    X, Y = data
    g = gc.Graph()
    x = g.placeholder("x", (None, 4))
    y = g.placeholder("y", (None,), "int64")
    b = g.variable("b", np.array([0.1, -0.2, 0.3, 0.0]))
    loss = gc.mean(gc.softmax_cross_entropy(x + b, y))
    gx, gb = gc.gradients(loss, [x, b])
    H = gc.hessian(loss, b)
    val, GX, GB, HB = g.run([loss, gx, gb, H], {x: X, y: Y})
    Z = X + b.value
    P = np_softmax(Z)
    onehot = np.eye(4)[Y]
    assert val == pytest.approx(-np.mean(np.log(P[np.arange(5), Y])), rel=1e-12)
    np.testing.assert_allclose(GX, (P - onehot) / 5, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(GB, (P - onehot).mean(0), rtol=1e-12, atol=1e-15)
    expected = np.mean([np.diag(p) - np.outer(p, p) for p in P], axis=0)
    np.testing.assert_allclose(HB, expected, rtol=1e-10, atol=1e-14)
    gc.check_gradients(loss, [x, b], {x: X, y: Y})


def test_softmax_cross_entropy_probability_targets_vs_numpy(data):
    X, Y = data
    T = np.random.default_rng(1).dirichlet(np.ones(4), size=5)
    g = gc.Graph()
    x = g.placeholder("x", (5, 4))
    t = g.placeholder("t", (5, 4))
    ce = gc.softmax_cross_entropy(x, t)
    assert ce.shape == (5,)
    gx, gt = gc.gradients(gc.sum(ce), [x, t])
    val, GX, GT = g.run([ce, gx, gt], {x: X, t: T})
    logp = np.log(np_softmax(X))
    np.testing.assert_allclose(val, -(T * logp).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(GX, np_softmax(X) - T, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(GT, -logp, rtol=1e-12)
    # One-hot targets give the same loss as the integer labels.
    same = gc.softmax_cross_entropy(x, gc.one_hot(g.constant(Y), 4))
    np.testing.assert_allclose(run(same, {x: X}),
                               run(gc.softmax_cross_entropy(x, g.constant(Y)), {x: X}))


def test_sigmoid_cross_entropy_vs_numpy():
    X = np.array([[-3.0, -0.2, 0.0, 0.7, 4.0]])
    T = np.array([[0.0, 1.0, 0.5, 0.3, 1.0]])
    g = gc.Graph()
    x = g.placeholder("x", X.shape)
    t = g.placeholder("t", T.shape)
    loss = gc.sigmoid_cross_entropy(x, t)
    gx, gt = gc.gradients(gc.sum(loss), [x, t])
    val, GX, GT = g.run([loss, gx, gt], {x: X, t: T})
    P = 1 / (1 + np.exp(-X))
    np.testing.assert_allclose(val, -(T * np.log(P) + (1 - T) * np.log(1 - P)), rtol=1e-12)
    np.testing.assert_allclose(GX, P - T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(GT, -X, rtol=1e-12)


def test_softmax_and_logsumexp_on_other_axes_with_batched_jacobians():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 3, 4))
    g = gc.Graph()
    x = g.placeholder("x", X.shape)
    s = gc.softmax(x, axis=1)
    assert s.attrs["axis"] == (-2,)
    np.testing.assert_allclose(run(s, {x: X}), np_softmax(X, axis=1), rtol=1e-12)
    lse = gc.logsumexp(x, axis=(0, 2), keepdims=True)
    assert lse.shape == (1, 3, 1) and lse.attrs == {"axis": (-3, -1), "keepdims": True}
    J = run(gc.jacobian(gc.logsumexp(x, axis=(0, 2)), x), {x: X})
    P = np.exp(X - np.log(np.exp(X).sum(axis=(0, 2), keepdims=True)))
    expected = np.zeros((3,) + X.shape)
    for k in range(3):
        expected[k, :, k, :] = P[:, k, :]
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_gradient_pattern_is_fusable():
    g = gc.Graph()
    L = g.placeholder("L", (None, 10))
    y = g.placeholder("y", (None,), "int64")
    gL = gc.grad(gc.sum(gc.softmax_cross_entropy(L, y)), L)
    # mul(expand_dims(g, -1), sub(softmax(L), one_hot_like(y, L))), g the per-example cotangent
    assert gL.op == "mul"
    ge, diff = gL.inputs
    assert ge.op == "expand_dims" and ge.attrs == {"axis": (1,)} and diff.op == "sub"
    s, onehot = diff.inputs
    assert (s.op, s.inputs, s.attrs) == ("softmax", (L,), {"axis": (-1,)})
    assert (onehot.op, onehot.inputs) == ("one_hot_like", (y, L))
    Lv = np.random.default_rng(0).standard_normal((3, 10))
    np.testing.assert_allclose(run(gL, {L: Lv, y: [1, 9, 0]}),
                               np_softmax(Lv) - np.eye(10)[[1, 9, 0]], rtol=1e-12)


def test_one_hot():
    g = gc.Graph()
    k = g.placeholder("k", (None,), "int32")
    h = gc.one_hot(k, 3)
    assert h.shape == (None, 3) and h.dtype == np.float64
    np.testing.assert_array_equal(run(h, {k: [2, 0, 3, -1]}),
                                  [[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]])
    h32 = gc.one_hot(k, 2, dtype="float32")
    assert h32.attrs == {"depth": 2, "dtype": "float32"} and h32.dtype == np.float32
    assert not REGISTRY["one_hot"].differentiable


# -- error messages --------------------------------------------------------------------------------
def test_softmax_cross_entropy_errors_name_shapes_and_user_line():
    g = gc.Graph()
    x = g.placeholder("x", (4, 5))
    with pytest.raises(gc.ShapeError) as err:
        gc.softmax_cross_entropy(x, g.placeholder("y", (5,), "int64"))
    message = str(err.value)
    assert "softmax_cross_entropy" in message and "integer labels must have shape (4,)" in message
    assert "got (5,)" in message and HERE in message
    with pytest.raises(gc.ShapeError, match=r"probability targets must have shape \(4, 5\)"):
        gc.softmax_cross_entropy(x, g.placeholder("t", (4,)))
    with pytest.raises(gc.DTypeError, match="labels must be integer class indices"):
        gc.softmax_cross_entropy(x, g.placeholder("yb", (4,), "bool"))
    with pytest.raises(gc.ShapeError, match="class axis"):
        gc.softmax_cross_entropy(g.placeholder("s", ()), g.placeholder("ys", (), "int64"))
    y = g.placeholder("y2", (4,), "int64")
    with pytest.raises(gc.ShapeError, match=r"label 5 is out of range for 5 classes"):
        g.run(gc.softmax_cross_entropy(x, y), {x: np.zeros((4, 5)), y: [0, 5, 1, 1]})


@pytest.mark.parametrize("bad", [5, -1])
def test_a_gradient_alone_checks_the_labels(bad):
    """Without the loss among the outputs its kernel does not run: the gradient's one-hot
    checks the labels itself, on every path, naming the node and the gradients() line."""
    g = gc.Graph()
    x = g.placeholder("x", (4, 5))
    y = g.placeholder("y", (4,), "int64")
    dx, = gc.gradients(gc.mean(gc.softmax_cross_entropy(x, y)), [x])
    line = sys._getframe().f_lineno - 1
    feeds = (np.zeros((4, 5)), [0, bad, 1, 1])
    for run in (lambda: g.run(dx, {x: feeds[0], y: feeds[1]}),
                lambda: gc.function([x, y], dx)(*feeds),
                lambda: gc.function([x, y], dx, backend="vm")(*feeds)):
        with pytest.raises(gc.ShapeError, match=f"label {bad} is out of range for 5 classes") \
                as err:
            run()
        assert f"{HERE}:{line}" in str(err.value)


def test_other_build_errors():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    with pytest.raises(gc.ShapeError, match=r"softmax: axis 2 is out of bounds .*2 dimensions"):
        gc.softmax(x, axis=2)
    with pytest.raises(gc.ShapeError, match=r"logsumexp: repeated axis"):
        gc.logsumexp(x, axis=(1, -1))
    with pytest.raises(gc.DTypeError, match="one_hot: indices must be integers, not float64"):
        gc.one_hot(x, 3)
    k = g.placeholder("k", (3,), "int64")
    with pytest.raises(gc.ShapeError, match="depth must be a non-negative int"):
        gc.one_hot(k, -1)
    with pytest.raises(gc.DTypeError, match="relu: x must have a real number dtype"):
        gc.relu(g.placeholder("b", (3,), "bool"))
    with pytest.raises(gc.DTypeError, match="sigmoid_cross_entropy: logits must"):
        gc.sigmoid_cross_entropy(g.placeholder("c", (3,), "complex128"), 1.0)
    with pytest.raises(gc.ShapeError, match=r"maximum: .*do not broadcast"):
        gc.maximum(x, g.placeholder("y", (3,)))
    with pytest.raises(gc.DTypeError, match="sign"):
        gc.sign(g.placeholder("b2", (3,), "bool"))


def test_one_hot_dtype_must_be_numeric():
    # Regression: one_hot accepted any NumPy dtype ("U1" gave strings, "O" objects).
    g = gc.Graph()
    idx = g.constant(np.array([0, 2]))
    for dtype in ("U1", object, "nonsense"):
        with pytest.raises(gc.DTypeError, match="dtype"):
            gc.one_hot(idx, 3, dtype=dtype)
    assert gc.one_hot(idx, 3, dtype="bool").dtype == np.bool_
