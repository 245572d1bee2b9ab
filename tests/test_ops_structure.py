"""matmul, indexing, concatenate/stack, max/min and argmax/argmin: what the registry test cannot
cover — error messages, None sizes, run-time broadcasting, NumPy's indexing forms, ties."""
import json

import numpy as np
import pytest

import graphc as gc
from graphc.ops import sum_to
from graphc.ops.registry import REGISTRY

HERE = __file__
RNG = np.random.default_rng(7)


def run(node, feed=None):
    return np.asarray(node.graph.run(node, feed))


def raises_here(error, build, *fragments):
    """``build()`` raises ``error`` whose message holds every fragment and this file's line."""
    with pytest.raises(error) as info:
        build()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert f"{HERE}:" in message, message
    return message


# -- matmul ---------------------------------------------------------------------------------------
def test_matmul_impossible_shapes_name_op_both_shapes_and_user_line():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    w = g.placeholder("w", (4, 2))
    with pytest.raises(gc.ShapeError) as info:
        x @ w  # the line the message must name
    message, line = str(info.value), info.tb.tb_lineno
    assert message.startswith("matmul: cannot multiply (None, 3) by (4, 2)")
    assert "contracted sizes 3 and 4 differ" in message
    assert "inputs: (None, 3) float64, (4, 2) float64" in message
    assert f"{HERE}:{line}" in message
    raises_here(gc.ShapeError, lambda: gc.matmul(x, g.placeholder("s", ())),
                "matmul", "at least one dimension")
    raises_here(gc.ShapeError,
                lambda: g.placeholder("a", (2, 3, 4)) @ g.placeholder("b", (3, 4, 5)),
                "matmul", "(2, 3, 4)", "(3, 4, 5)", "do not broadcast")
    raises_here(gc.ShapeError, lambda: g.placeholder("v", (3,)) @ g.placeholder("u", (4,)),
                "cannot multiply (3,) by (4,)")


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                                   ((5, 2, 3), (3,)), ((3,), (5, 3, 2)), ((1, 2, 3), (4, 3, 2)),
                                   ((4, 1, 2, 3), (5, 3, 1))])
def test_matmul_matches_numpy_with_known_and_unknown_sizes(sa, sb):
    a_val, b_val = RNG.standard_normal(sa), RNG.standard_normal(sb)
    expected = np.matmul(a_val, b_val)
    for unknown in (False, True):
        g = gc.Graph()
        a = g.placeholder("a", (None,) * len(sa) if unknown else sa)
        b = g.placeholder("b", (None,) * len(sb) if unknown else sb)
        y = a @ b
        assert len(y.shape) == expected.ndim
        assert unknown or y.shape == expected.shape
        np.testing.assert_allclose(run(y, {a: a_val, b: b_val}), expected)


def test_matmul_gradient_when_unknown_batch_sizes_broadcast_at_run_time():
    g = gc.Graph()
    a = g.placeholder("a", (None, 2, 3))
    b = g.placeholder("b", (None, 3, 4))
    w = g.constant(RNG.standard_normal((2, 4)))
    loss = gc.sum((a @ b) * w)
    ga, gb = gc.gradients(loss, [a, b])
    for a_val, b_val in [(RNG.standard_normal((1, 2, 3)), RNG.standard_normal((5, 3, 4))),
                         (RNG.standard_normal((5, 2, 3)), RNG.standard_normal((1, 3, 4)))]:
        feed = {a: a_val, b: b_val}
        va, vb = g.run([ga, gb], feed)
        assert va.shape == a_val.shape and vb.shape == b_val.shape
        full = np.broadcast_to(w.value, (5, 2, 4))
        np.testing.assert_allclose(vb, np.sum(np.swapaxes(a_val, -1, -2) @ full, 0,
                                              keepdims=True) if b_val.shape[0] == 1 else
                                   np.swapaxes(a_val, -1, -2) @ full)
        gc.check_gradients(loss, [a, b], feed)


def test_matmul_gradients_are_views_and_differentiate_again():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", RNG.standard_normal((3, 4)))
    v = g.variable("v", RNG.standard_normal(4))
    loss = gc.sum(gc.tanh(x @ W) @ v)
    gW = gc.grad(loss, W)
    assert any(n.op == "transpose" for n in g.nodes[loss.id:])  # x^T as a transpose view
    feed = {x: RNG.standard_normal((5, 3))}
    gc.check_gradients(loss, [W, v], feed)
    H = gc.hessian(loss, v)
    assert H.shape == (4, 4)
    np.testing.assert_allclose(run(H, feed), 0, atol=1e-12)  # linear in v
    assert gW.shape == (3, 4)


def test_T_property_reverses_axes():
    g = gc.Graph()
    x = g.placeholder("x", (2, 3, 4))
    m = g.placeholder("m", (None, 3))
    assert x.T.shape == (4, 3, 2) and m.T.shape == (3, None)
    x_val = RNG.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(run(x.T, {x: x_val}), x_val.T)
    v = g.placeholder("v", (3,))
    assert v.T.shape == (3,)


# -- indexing -------------------------------------------------------------------------------------
INDICES = [
    0, -1, slice(1, None), slice(None, None, -1), slice(-2, 0, -1), slice(10, -10, -2),
    (1, 2), (-1, -2, -3), (Ellipsis, 1), (1, Ellipsis), (None, 0), (0, None, slice(None), None),
    (Ellipsis, None), (slice(None), None, 2), (), slice(2, 2), [2, 0, 2, -1], np.array([1, 0]),
    (slice(1, 3), [0, 2, 2], None), (0, slice(None), [1, 3]), (None, 0, Ellipsis, [1, 4]),
    (0, [3, 1], Ellipsis), (0, Ellipsis, [1, 2], None), (np.int64(1), slice(None, None, 2)),
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_forms_match_numpy(index):
    x_val = RNG.standard_normal((3, 4, 5))
    expected = x_val[index]
    g = gc.Graph()
    x = g.placeholder("x", (3, 4, 5))
    y = x[index]
    assert y.shape == expected.shape
    np.testing.assert_array_equal(run(y, {x: x_val}), expected)
    # None sizes: the static shape keeps what is known, the run-time value is NumPy's.
    xu = g.placeholder("xu", (None, 4, None))
    yu = xu[index]
    assert len(yu.shape) == expected.ndim
    assert all(s is None or s == d for s, d in zip(yu.shape, expected.shape))
    np.testing.assert_array_equal(run(yu, {xu: x_val}), expected)
    # The gradient scatters back (repeated indices add up).
    if expected.size:
        u = RNG.standard_normal(expected.shape)
        gx = gc.gradients(y, [x], grad_y=g.constant(u))[0]
        want = np.zeros_like(x_val)
        np.add.at(want, index if not isinstance(index, list) else (np.array(index),), u)
        np.testing.assert_allclose(run(gx, {x: x_val}), want)
        gc.check_gradients(gc.sum(gc.square(y)), x, {x: x_val})


def test_index_attrs_are_canonical_and_json_friendly():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    assert x[0].attrs == x[0, :].attrs == x[0, ...].attrs == x[-3].attrs
    assert x[0].attrs == {"index": (("int", 0), ("slice", None, None, 1)), "front": False}
    assert x[::-1, None].attrs["index"] == (("slice", None, None, -1), ("newaxis",),
                                            ("slice", None, None, 1))
    assert x[[0, -1]].attrs["index"][0] == ("array", (0, 2))

    def plain(value):
        return value is None or isinstance(value, (bool, int, str)) or \
            isinstance(value, tuple) and all(plain(v) for v in value)
    for node in (x[1:, ::2], x[..., None, 0], x[[1, 1]], g.placeholder("z", (2, 3, 4))[0, :, [1]]):
        assert all(plain(v) for v in node.attrs.values()), node.attrs
        hash(tuple(node.attrs.items()))
        json.dumps(dict(node.attrs))


def test_indexing_round_trips_through_json_and_differentiates_there():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4, 5))
    y = gc.sum(gc.square(x[0, :, [4, 1, 1]]) * x[..., None, 2][-1, None, :, 0])
    gx = gc.grad(y, x)
    g2 = gc.from_json(gc.to_json(g))
    x_val = RNG.standard_normal((3, 4, 5))
    np.testing.assert_allclose(g2.run(g2[gx.name], {"x": x_val}), run(gx, {x: x_val}))
    gc.check_gradients(g2[y.name], g2["x"], {"x": x_val})


def test_indexing_errors_name_the_problem_and_the_user_line():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    raises_here(gc.ShapeError, lambda: x[0, 1, 2], "getitem", "too many indices: 3 for 2")
    raises_here(gc.ShapeError, lambda: x[3], "getitem", "index 3 is out of bounds for "
                "dimension 0 of size 3", "inputs: (3, 4) float64")
    raises_here(gc.ShapeError, lambda: x[:, [0, 4]], "index 4 is out of bounds")
    raises_here(gc.ShapeError, lambda: x[::0], "slice step cannot be zero")
    raises_here(gc.ShapeError, lambda: x[..., ...], "single ellipsis")
    raises_here(gc.ShapeError, lambda: x[[0], [1]], "only one integer array")
    raises_here(gc.ShapeError, lambda: x[np.zeros((2, 2), int)], "only 1-D integer arrays")
    raises_here(gc.DTypeError, lambda: x[1.5], "getitem", "valid indices")
    raises_here(gc.DTypeError, lambda: x[[0.5]], "must be integers")
    # masks and node indices are gathers now (tests/test_ops_gather.py); their errors:
    raises_here(gc.ShapeError, lambda: x[np.array([True, False])], "boolean_mask",
                "does not match")
    raises_here(gc.DTypeError, lambda: x[g.placeholder("f", (2,))], "take", "integers")
    u = g.placeholder("u", (None, 4))
    assert u[7].shape == (4,)  # bounds of an unknown size are checked at run time
    with pytest.raises(gc.ShapeError, match="getitem"):
        run(u[7], {u: np.zeros((3, 4))})


def test_getitem_grad_is_batched_and_closed_under_differentiation():
    g = gc.Graph()
    x = g.placeholder("x", (4, 3))
    y = gc.square(x[[0, 0, 3], 1:])  # repeated rows, a slice
    J = gc.jacobian(y, x)
    x_val = RNG.standard_normal((4, 3))
    want = np.zeros((3, 2, 4, 3))
    for i, row in enumerate([0, 0, 3]):
        for j in range(2):
            want[i, j, row, j + 1] = 2 * x_val[row, j + 1]
    np.testing.assert_allclose(run(J, {x: x_val}), want)
    H = gc.hessian(gc.sum(gc.square(x[[0, 0, 3], 1:])), x)
    diag = np.zeros((4, 3))
    diag[0, 1:] = 4.0  # row 0 counted twice
    diag[3, 1:] = 2.0
    np.testing.assert_allclose(run(H, {x: x_val}), np.diag(diag.ravel()).reshape(4, 3, 4, 3))


# -- concatenate and stack ------------------------------------------------------------------------
def test_concatenate_and_stack_match_numpy_and_promote_dtypes():
    g = gc.Graph()
    a = g.placeholder("a", (2, 3))
    b = g.placeholder("b", (1, 3), "int32")
    a_val, b_val = RNG.standard_normal((2, 3)), np.array([[1, 2, 3]], np.int32)
    c = gc.concatenate([a, b])
    assert c.shape == (3, 3) and c.dtype == np.float64
    np.testing.assert_array_equal(run(c, {a: a_val, b: b_val}), np.concatenate([a_val, b_val]))
    s = gc.stack([a, a * 2, a], axis=-1)
    assert s.shape == (2, 3, 3) and s.attrs["axis"] == 2
    np.testing.assert_array_equal(run(s, {a: a_val}), np.stack([a_val, 2 * a_val, a_val], -1))
    assert gc.concatenate([a, np.ones((2, 1))], axis=1).shape == (2, 4)


def test_concatenate_and_stack_errors():
    g = gc.Graph()
    a = g.placeholder("a", (2, 3))
    raises_here(gc.ShapeError, lambda: gc.concatenate([a, g.placeholder("b", (2, 4))]),
                "concatenate", "cannot concatenate shapes (2, 3), (2, 4) along axis 0",
                "dimension 1 differ")
    raises_here(gc.ShapeError, lambda: gc.concatenate([a, g.placeholder("c", (3,))]),
                "different numbers of dimensions")
    raises_here(gc.ShapeError, lambda: gc.concatenate([g.placeholder("s", ())]), "0-d")
    raises_here(gc.ShapeError, lambda: gc.concatenate([a, a], axis=2), "out of bounds")
    raises_here(gc.ShapeError, lambda: gc.stack([a, g.placeholder("d", (3, 2))]),
                "stack", "(2, 3), (3, 2)", "the same shape")
    raises_here(gc.ShapeError, lambda: gc.stack([a, a], axis=3), "out of bounds")


def test_concatenate_with_unknown_sizes_along_the_axis():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    z = g.placeholder("z", (2, None))
    c = gc.concatenate([x, z, x])
    assert c.shape == (None, 3)
    w = g.constant(RNG.standard_normal(3))
    loss = gc.sum(gc.tanh(c) * w)
    gx, gz = gc.gradients(loss, [x, z])
    assert {n.op for n in g.nodes[loss.id:]} >= {"concat_take"}
    for rows in (1, 4):
        feed = {x: RNG.standard_normal((rows, 3)), z: RNG.standard_normal((2, 3))}
        vx, vz = g.run([gx, gz], feed)
        assert vx.shape == (rows, 3) and vz.shape == (2, 3)
        gc.check_gradients(loss, [x, z], feed)
    # Second order goes through concat_put (the adjoint of concat_take).
    hv = gc.hvp(loss, z, g.constant(np.ones((2, 3))))
    feed = {x: RNG.standard_normal((2, 3)), z: RNG.standard_normal((2, 3))}
    t = np.tanh(feed[z])
    np.testing.assert_allclose(run(hv, feed), -2 * t * (1 - t ** 2) * w.value)
    assert any(n.op == "concat_put" for n in g.nodes[gz.id:hv.id + 1])


def test_stack_with_unknown_sizes_and_batched_jacobian():
    g = gc.Graph()
    x = g.placeholder("x", (None, 2))
    s = gc.stack([x, gc.square(x)], axis=1)
    assert s.shape == (None, 2, 2)
    feed = {x: RNG.standard_normal((3, 2))}
    gc.check_gradients(gc.sum(s * s), x, feed)
    y = g.placeholder("y", (2,))
    J = gc.jacobian(gc.stack([y, 3 * y]), y)
    np.testing.assert_allclose(run(J, {y: np.ones(2)}), np.stack([np.eye(2), 3 * np.eye(2)]))


# -- max / min: ties split the gradient equally ---------------------------------------------------
@pytest.mark.parametrize("op", ["max", "min"])
def test_ties_split_the_gradient_equally(op):
    reduce = getattr(gc, op)
    sign = 1.0 if op == "max" else -1.0
    g = gc.Graph()
    x = g.placeholder("x", (2, 4))
    x_val = sign * np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    feed = {x: x_val}
    np.testing.assert_allclose(run(gc.grad(reduce(x), x), feed),
                               [[0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(run(gc.grad(gc.sum(reduce(x, axis=1)), x), feed),
                               [[0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(run(gc.grad(gc.sum(reduce(x, axis=0, keepdims=True)), x), feed),
                               [[0, 0, 0, 0], [1, 1, 1, 1]])
    three = sign * np.array([[2.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(run(gc.grad(reduce(x[:, :2]), x), {x: np.pad(three, ((0, 0),
                                                                                    (0, 2)))}),
                               np.pad(np.array([[1, 1], [1, 0]]) / 3, ((0, 0), (0, 2))))
    # With a batch of cotangents (the Jacobian) and with unknown sizes.
    J = gc.jacobian(reduce(x, axis=-1), x)
    np.testing.assert_allclose(run(J, feed), [[[0, 0.5, 0.5, 0], [0] * 4],
                                              [[0] * 4, [0.25] * 4]])
    u = g.placeholder("u", (None, None))
    np.testing.assert_allclose(run(gc.grad(gc.sum(reduce(u, axis=0)), u), {u: x_val}),
                               [[0, 0, 0, 0], [1, 1, 1, 1]])
    # The rule is piecewise constant: the Hessian is zero.
    np.testing.assert_allclose(run(gc.hessian(reduce(x), x), feed), 0)


def test_max_min_values_errors_and_integer_inputs():
    g = gc.Graph()
    x = g.placeholder("x", (3, 0))
    raises_here(gc.ShapeError, lambda: gc.max(x, axis=1), "max", "empty dimension")
    assert gc.max(x, axis=0).shape == (0,)
    i = g.placeholder("i", (3,), "int32")
    assert gc.min(i).dtype == np.int32
    assert run(gc.min(i), {i: [4, -2, 7]}) == -2
    raises_here(gc.ShapeError, lambda: gc.max(i, axis=1), "max", "out of bounds")


# -- argmax / argmin ------------------------------------------------------------------------------
def test_argmax_argmin_match_numpy_and_pass_no_gradient():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    x_val = np.array([[1.0, 3.0, 3.0], [0.0, -1.0, -1.0]])
    for op in ("argmax", "argmin"):
        for axis, keepdims in [(None, False), (None, True), (1, False), (-2, True)]:
            y = getattr(gc, op)(x, axis=axis, keepdims=keepdims)
            want = getattr(np, op)(x_val, axis=axis, keepdims=keepdims)
            assert y.dtype == want.dtype and len(y.shape) == want.ndim
            np.testing.assert_array_equal(run(y, {x: x_val}), want)
        assert not REGISTRY[op].differentiable
    loss = gc.sum(x) + gc.sum(gc.cast(gc.argmax(x, axis=1), "float64"))
    np.testing.assert_array_equal(run(gc.grad(loss, x), {x: x_val}), np.ones((2, 3)))
    raises_here(gc.ShapeError, lambda: gc.argmax(x, axis=(0, 1)), "one integer axis")


def test_squeeze_without_axis_needs_known_sizes():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3, 1))
    with pytest.raises(gc.ShapeError, match="squeeze without axis needs known sizes"):
        gc.squeeze(x)
    assert gc.squeeze(x, axis=-1).shape == (None, 3)


def test_reductions_differentiate_against_a_batch_of_unknown_size():
    # Regression: sum/mean's rule asked broadcast_to for a shape with None in the batch.
    g = gc.Graph()
    p = g.placeholder("p", (None, 4))
    W = g.variable("W", RNG.standard_normal((3, 4)))
    P = RNG.standard_normal((2, 4))
    for reduce, scale in ((gc.sum, 1.0), (gc.mean, 1 / 3)):
        J = run(gc.jacobian(reduce(W, axis=0) + p, W), {p: P})
        expected = np.zeros((2, 4, 3, 4))
        for j in range(4):
            expected[:, j, :, j] = scale
        np.testing.assert_allclose(J, expected)


def test_expand_dims_axis_forms_like_numpy():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    assert gc.expand_dims(x, [0, 3]).shape == np.expand_dims(np.zeros((3, 4)), [0, 3]).shape
    assert gc.expand_dims(x, (-1, 0)).shape == (1, 3, 4, 1)
    raises_here(gc.ShapeError, lambda: gc.expand_dims(x, None), "not None")  # was 3 new axes


def test_transpose_rejects_non_permutations():
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    for axes in ((0, 0), (0,), (0, 2), (0, 1, 2)):
        raises_here(gc.ShapeError, lambda: gc.transpose(x, axes), "not a permutation")
    assert gc.transpose(x, (-1, 0)).shape == (4, 3)
    assert gc.transpose(g.placeholder("s", ())).shape == ()


def test_sum_to_keeps_small_integer_dtypes():
    # Regression: NumPy's add.reduce widened int8 to int64 while the rule said int8.
    g = gc.Graph()
    x = g.constant(np.ones((2, 3, 4), np.int8))
    like = g.placeholder("like", (None, 1), "int8")
    y = sum_to(x, like)
    assert y.dtype == np.int8
    value = run(y, {like: np.zeros((3, 1), np.int8)})
    assert value.dtype == np.int8
    np.testing.assert_array_equal(value, np.full((3, 1), 8))
    with pytest.raises(gc.DTypeError, match="sum_to adds numbers"):
        sum_to(g.placeholder("b", (3,), "bool"), like)


def test_pow_second_derivatives_are_finite_where_the_base_is_zero():
    # Regression: d/db a**b masked a**b log a where a**b = 0 but not log's input, so the
    # derivative of log (1/a = inf) gave 0 * inf = NaN, in every row of a batched Jacobian.
    g = gc.Graph()
    a, b = g.placeholder("a", (3,)), g.placeholder("b", (3,))
    ga, gb = gc.gradients(gc.sum(a ** b), [a, b])
    A, B = np.array([0.0, 1.5, 2.0]), np.array([2.0, 3.0, 0.5])
    with np.errstate(all="raise"):
        Hab, Hbb, Haa = (run(gc.jacobian(d, x), {a: A, b: B})
                         for d, x in ((gb, a), (gb, b), (ga, a)))
    log_a = np.log(A[1:])
    p = A[1:] ** B[1:]
    np.testing.assert_allclose(np.diag(Hab), [0.0, *(p / A[1:] * (1 + B[1:] * log_a))])
    np.testing.assert_allclose(np.diag(Hbb), [0.0, *(p * log_a ** 2)])
    np.testing.assert_allclose(np.diag(Haa), B * (B - 1) * A ** (B - 2))
    for H in (Hab, Hbb, Haa):
        np.testing.assert_array_equal(H - np.diag(np.diag(H)), 0)
