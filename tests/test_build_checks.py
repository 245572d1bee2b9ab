"""Build-time checks reject only what cannot work: Python bools as conditions (almost always
``node == value``), and shapes that no run-time size could make fit."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def _graph():
    g = gc.Graph()
    return g, g.placeholder("x", (3,))


@pytest.mark.parametrize("build", [
    lambda x: gc.where(x == 0, 1.0, x),
    lambda x: gc.where(x != 0, x, 1.0),
    lambda x: gc.where(np.True_, x, 1.0),
    lambda x: gc.logical_not(x == 0),
    lambda x: gc.logical_and(x > 0, x != 1),
    lambda x: gc.logical_or(x == 2, x < 0),
])
def test_a_python_bool_condition_is_refused_pointing_to_gc_equal(build):
    g, x = _graph()
    with pytest.raises(gc.GraphcError, match=r"Python bool.*gc\.equal") as info:
        build(x)
    assert f"{__file__}:" in str(info.value)  # the user's line
    assert not any(n.op in ("where", "logical_not", "logical_and", "logical_or")
                   for n in g.nodes)


def test_the_comparisons_that_mean_it_still_work():
    g, x = _graph()
    y = gc.where(gc.equal(x, 0), 1.0, x)
    mask = gc.logical_and(x > 0, gc.not_equal(x, 1))
    xv = np.array([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(g.run(y, {x: xv}), [1.0, 1.0, 2.0])
    np.testing.assert_array_equal(g.run(mask, {x: xv}), [False, False, True])
    arr = gc.where(np.array([True, False, True]), x, 0.0)  # a bool array is a fine mask
    np.testing.assert_array_equal(g.run(arr, {x: xv}), [0.0, 0.0, 2.0])


def test_nodes_have_no_truth_value_and_no_iteration_but_are_dict_keys():
    g, x = _graph()
    with pytest.raises(gc.SymbolicValueError, match="truth value"):
        bool(x > 0)
    with pytest.raises(TypeError):  # also a TypeError, as Python's protocol expects
        list(x)
    with pytest.raises(gc.SymbolicValueError, match=r"placeholder node 'x'.*cannot be iterated"):
        a, b, c = x
    table = {x: 1, x > 0: 2}
    assert table[x] == 1 and len(table) == 2 and x in table


@pytest.mark.parametrize("shape,target,fed,ok", [
    ((None,), (3, 1), (1,), True),   # an unknown size may be 1
    ((None,), (3, 1), (2,), False),  # ... and if it is not, the run says so
    ((None, 1), (2, 4, 5), (4, 1), True),
    ((None,), (3, 4), (4,), True),
    ((None,), (3, 4), (1,), True),
])
def test_broadcast_to_with_unknown_sizes_is_decided_at_run_time(shape, target, fed, ok):
    g = gc.Graph()
    x = g.placeholder("x", shape)
    b = gc.broadcast_to(x, target)
    assert b.shape == target
    value = np.arange(np.prod(fed), dtype=float).reshape(fed)
    f = gc.function([x], b)
    if ok:
        want = np.broadcast_to(value, target)
        np.testing.assert_array_equal(g.run(b, {x: value}), want)
        np.testing.assert_array_equal(f(value), want)
    else:
        for call in (lambda: g.run(b, {x: value}), lambda: f(value)):
            with pytest.raises(gc.ShapeError, match="broadcast_to"):
                call()


@pytest.mark.parametrize("shape,target", [((2,), (3, 1)), ((3,), (3, 2)), ((None, 2), (2,)),
                                          ((2, None), (3, 3, 4))])
def test_impossible_broadcasts_are_still_refused_at_build_time(shape, target):
    g = gc.Graph()
    x = g.placeholder("x", shape)
    with pytest.raises(gc.ShapeError, match=r"cannot broadcast.*test_build_checks\.py:\d+"):
        gc.broadcast_to(x, target)


def test_the_gradient_of_an_unknown_size_broadcast_sums_back():
    g = gc.Graph()
    x = g.placeholder("x", (None,))
    y = gc.sum(gc.broadcast_to(x, (3, 1)) * np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(g.run(gc.grad(y, x), {x: [0.5]}), [6.0])
