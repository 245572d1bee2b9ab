"""Indexing with nodes: routing of x[node], run-time bounds errors, scatter semantics (repeats),
masks, dynamic_slice clamping, x.at[...], g.run vs gc.function, JSON."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

X = np.arange(24.0).reshape(4, 6)


@pytest.fixture
def g():
    return gc.Graph()


def test_node_indices_follow_numpy(g):
    x = g.placeholder("x", (None, 6))
    i = g.placeholder("i", (None,), "int64")
    feed = {x: X, i: [3, -1, 0, 3]}
    for built, expected in [(x[i], X[[3, -1, 0, 3]]), (x[:, i], X[:, [3, -1, 0, 3]]),
                            (x[None, i], X[None, [3, -1, 0, 3]]),
                            (x[1:3, i], X[1:3, [3, -1, 0, 3]]),
                            (x[..., i], X[..., [3, -1, 0, 3]]),
                            (gc.take(x, i), np.take(X, [3, -1, 0, 3])),
                            (gc.take(x, i, axis=1), np.take(X, [3, -1, 0, 3], axis=1))]:
        np.testing.assert_array_equal(g.run(built, feed), expected)
        np.testing.assert_array_equal(gc.function([x, i], built)(X, [3, -1, 0, 3]), expected)
    j = g.placeholder("j", (2, 2), "int32")
    np.testing.assert_array_equal(g.run(x[j], {x: X, j: [[0, 1], [3, 3]]}), X[[[0, 1], [3, 3]]])


def test_node_indices_with_integers_follow_numpys_placement(g):
    A = np.arange(120.0).reshape(2, 3, 4, 5)
    x = g.placeholder("x", A.shape)
    i = g.placeholder("i", (2, 2), "int64")
    I = np.array([[0, 1], [1, -1]])
    for index in [(0, "i"), ("i", 1), (0, slice(None), "i"), (None, 0, "i"),
                  (slice(None), "i", Ellipsis, 1), (0, None, "i"), (1, slice(1, 3), "i", 2)]:
        built = x[tuple(i if e == "i" else e for e in index)]
        expected = A[tuple(I if e == "i" else e for e in index)]  # NumPy moves dims apart
        np.testing.assert_array_equal(g.run(built, {x: A, i: I}), expected)
    gc.check_gradients(gc.sum(gc.square(x[0, :, i])), [x], {x: A, i: I})


@pytest.mark.parametrize("build", [lambda x, i: x[i], lambda x, i: gc.take(x, i, axis=1),
                                   lambda x, i: gc.index_add(x, i, 1.0),
                                   lambda x, i: gc.index_update(x, i, 0.0),
                                   lambda x, i: gc.take_along_axis(x, i[None, :], axis=1)])
def test_out_of_range_indices_raise_naming_the_node(g, build):
    x = g.placeholder("x", (4, 6))
    i = g.placeholder("i", (None,), "int64")
    y = build(x, i)
    for bad in ([0, 6], [-7]):
        with pytest.raises(gc.IndexOutOfRangeError, match=rf"{y.op} node '{y.name}' \(built at "
                           r".*test_ops_gather.py:\d+\).*out of range") as info:
            g.run(y, {x: X, i: bad})
        assert isinstance(info.value, IndexError) and isinstance(info.value, gc.GraphcError)
        with pytest.raises(gc.IndexOutOfRangeError, match=rf"node '{y.name}'"):
            gc.function([x, i], y)(X, bad)


def test_index_add_accumulates_and_index_update_lets_the_last_win(g):
    x = g.placeholder("x", (4, 6))
    i = g.constant(np.array([1, 3, 1, -3]))  # 1 and -3 name the same row
    v = g.placeholder("v", (4, 6))
    vals = np.arange(24.0).reshape(4, 6) * 10
    added = np.array(X)
    np.add.at(added, [1, 3, 1, -3], vals)
    np.testing.assert_array_equal(g.run(gc.index_add(x, i, v), {x: X, v: vals}), added)
    updated = g.run(gc.index_update(x, i, v), {x: X, v: vals})
    np.testing.assert_array_equal(updated[1], vals[3])  # the last write to row 1 is entry 3
    np.testing.assert_array_equal(updated[3], vals[1])
    np.testing.assert_array_equal(updated[[0, 2]], X[[0, 2]])
    # gradients: the overwritten rows of x get nothing, and of v only the winners get g
    loss = gc.sum(gc.index_update(x, i, v) * np.arange(24.0).reshape(4, 6))
    gx, gv = g.run(gc.gradients(loss, [x, v]), {x: X, v: vals})
    w = np.arange(24.0).reshape(4, 6)
    np.testing.assert_array_equal(gx, np.where(np.isin(np.arange(4), [1, 3])[:, None], 0, w))
    np.testing.assert_array_equal(gv, np.stack([np.zeros(6), w[3], np.zeros(6), w[1]]))
    gc.check_gradients(gc.sum(gc.square(gc.index_add(x, i, v))), [x, v], {x: X, v: vals})


def test_at_is_index_add_and_update(g):
    x = g.placeholder("x", (4, 6))
    i = g.placeholder("i", (2,), "int64")
    feed = {x: X, i: [2, 2]}
    np.testing.assert_array_equal(g.run(x.at[i].add(1.0), feed), X + np.isin(
        np.arange(4), [2])[:, None] * 2)
    np.testing.assert_array_equal(g.run(x.at[:, i].set(-1.0), feed)[:, 2], -np.ones(4))
    np.testing.assert_array_equal(g.run(x.at[i].get(), feed), X[[2, 2]])


def test_boolean_masks_select_and_scatter_back(g):
    x = g.placeholder("x", (None, 6))
    picked = x[x > 10.0]
    assert picked.shape == (None,)
    np.testing.assert_array_equal(g.run(picked, {x: X}), X[X > 10])
    rows = x[np.array([True, False, True, False])]
    np.testing.assert_array_equal(g.run(rows, {x: X}), X[[0, 2]])
    gx = g.run(gc.grad(gc.sum(gc.square(picked)), x), {x: X})
    np.testing.assert_array_equal(gx, np.where(X > 10, 2 * X, 0))
    m = g.placeholder("m", (None,), "bool")
    with pytest.raises(gc.IndexOutOfRangeError, match="does not match"):
        g.run(x[m], {x: X, m: [True, False]})
    with pytest.raises(gc.DTypeError, match="stands alone"):
        x[1:, x[:, 0] > 0]


def test_take_along_axis_with_argsort_like_indices(g):
    x = g.placeholder("x", (4, 6))
    order = np.argsort(-X, axis=1)
    y = gc.take_along_axis(x, order, axis=1)
    np.testing.assert_array_equal(g.run(y, {x: X}), np.take_along_axis(X, order, axis=1))
    gc.check_gradients(gc.sum(y * np.arange(6.0)), [x], {x: X})


def test_dynamic_slice_clamps_like_jax(g):
    x = g.placeholder("x", (4, 6))
    s = g.placeholder("s", (), "int64")
    y = gc.dynamic_slice(x, [s, 2], (2, 3))
    for start, row in [(1, 1), (3, 2), (-5, 0), (100, 2)]:  # clamped into [0, 4 - 2]
        np.testing.assert_array_equal(g.run(y, {x: X, s: start}), X[row:row + 2, 2:5])
    gx = g.run(gc.grad(gc.sum(y), x), {x: X, s: 9})
    assert gx.sum() == 6 and gx[2:4, 2:5].all()


def test_node_index_errors(g):
    x = g.placeholder("x", (4, 6))
    i = g.placeholder("i", (2,), "int64")
    with pytest.raises(gc.DTypeError, match="only one node"):
        x[i, i]
    with pytest.raises(gc.DTypeError, match="combines only with"):
        x[[0, 1], i]
    with pytest.raises(gc.DTypeError, match="integers"):
        x[g.placeholder("f", (2,))]


def test_gather_graph_round_trips_through_json(g):
    x = g.placeholder("x", (None, 6))
    i = g.placeholder("i", (None,), "int64")
    y = gc.sum(gc.square(x[i])) + gc.sum(x[x > 3.0])
    grad = gc.grad(y, x)
    g2 = gc.from_json(gc.to_json(g))
    feed = {"x": X, "i": [0, 0, 3]}
    for a, b in zip(g.run([y, grad], feed), g2.run([g2[y.name], g2[grad.name]], feed)):
        np.testing.assert_array_equal(a, b)
