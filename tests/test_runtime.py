"""Graph.run: fetch structures, feeds, pruning, and the errors of bad feeds."""
import tracemalloc

import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import REGISTRY, Case, define


@pytest.fixture
def g():
    return gc.Graph()


def test_fetch_structures(g):
    x = g.placeholder("x", (2,))
    a, b = x + 1.0, x * 2.0
    feed = {x: np.array([1.0, 2.0])}
    np.testing.assert_array_equal(g.run(a, feed), [2.0, 3.0])
    out = g.run([a, b], feed)
    assert isinstance(out, list) and len(out) == 2
    out = g.run((a, b), feed)
    assert isinstance(out, tuple)
    out = g.run({"a": a, "b": b}, feed)
    np.testing.assert_array_equal(out["b"], [2.0, 4.0])
    with pytest.raises(gc.GraphcError, match="fetches must be a node"):
        g.run("a", feed)


def test_feed_by_name_and_any_node_may_be_fed(g):
    x = g.placeholder("x", ())
    h = gc.exp(x, name="h")
    y = h + 1.0
    assert g.run(y, {"x": 0.0}) == 2.0
    assert g.run(y, {h: 5.0}) == 6.0  # x is not needed any more
    assert g.run(y, {"h": 5.0}) == 6.0


def test_only_ancestors_computed_each_once(g):
    calls = []

    def kernel(x):
        calls.append(1)
        return x + 1

    define("_count_calls", infer=lambda x: (x.shape, x.dtype), kernel=kernel, bprop=None,
           reference=lambda x: x + 1, cases=[Case(((2,),))])
    try:
        from graphc.graph import apply
        x = g.placeholder("x", ())
        c = apply("_count_calls", [x])
        y = c * c + c
        unused = apply("_count_calls", [x])
        g.run([y, c], {x: 1.0})
        assert len(calls) == 1
        g.run(unused, {x: 1.0})
        assert len(calls) == 2
    finally:
        del REGISTRY["_count_calls"]


def test_missing_feed_names_every_missing_placeholder(g):
    x = g.placeholder("x", (None, 3))
    w = g.placeholder("w", (3,))
    y = x * w
    with pytest.raises(gc.MissingFeedError) as info:
        g.run(y)
    assert "'x' (None, 3) float64" in str(info.value) and "'w' (3,) float64" in str(info.value)
    with pytest.raises(gc.MissingFeedError, match="placeholder 'w'"):
        g.run(y, {x: np.ones((1, 3))})


def test_feed_shape_and_dtype_errors(g):
    x = g.placeholder("x", (None, 3))
    i = g.placeholder("i", (2,), dtype="int64")
    with pytest.raises(gc.FeedError, match=r"shape \(2, 4\) to placeholder node 'x'"):
        g.run(x, {x: np.ones((2, 4))})
    with pytest.raises(gc.FeedError, match=r"shape \(3,\)"):
        g.run(x, {x: np.ones(3)})
    with pytest.raises(gc.FeedError, match="dtype float64 to placeholder node 'i'.*same_kind"):
        g.run(i, {i: np.ones(2)})
    with pytest.raises(gc.FeedError, match="no node of that name"):
        g.run(x, {"nope": 1.0})
    # Safe casts are made: int into float, float64 into float32.
    assert g.run(x, {x: np.ones((1, 3), dtype=int)}).dtype == np.float64
    f32 = g.placeholder("f32", (), "float32")
    assert g.run(f32, {f32: 1.5}).dtype == np.float32


def test_run_time_shape_error_names_node_and_site(g):
    x = g.placeholder("x", (None, 3))
    y = g.placeholder("y", (None, 3))
    z = x + y
    with pytest.raises(gc.ShapeError) as info:
        g.run(z, {x: np.ones((2, 3)), y: np.ones((5, 3))})
    message = str(info.value)
    assert f"add node '{z.name}' (built at {z.site})" in message
    assert "inputs: (2, 3) float64, (5, 3) float64" in message


def test_variables_are_read_at_run_time(g):
    W = g.variable("W", 1.0)
    y = W * 3.0
    assert g.run(y) == 3.0
    W.value = 2.0
    assert g.run(y) == 6.0


def test_values_are_released_after_their_last_use(g):
    x = g.placeholder("x", (1000, 1000))
    y = x
    for _ in range(10):
        y = gc.exp(y * 1e-9)  # each step makes 8 MB arrays
    value = np.zeros((1000, 1000))
    tracemalloc.start()
    g.run(y, {x: value})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * value.nbytes  # not 20 arrays alive at once


def test_results_are_numpy(g):
    x = g.placeholder("x", ())
    c = g.constant(2.0) + 0.0
    assert isinstance(g.run(x * 1.0, {x: 2.0}), (np.ndarray, np.generic))
    assert isinstance(g.run(c), (np.ndarray, np.generic))


def test_results_are_writable_and_never_the_variables_storage(g):
    W = g.variable("W", np.ones((2, 3)))
    (dW,) = gc.gradients(gc.sum(W), [W])  # a broadcast of the seed: a read-only view
    value, grad = g.run([W, dW])
    value[0, 0] = 7.0
    grad *= 2.0
    assert W.value[0, 0] == 1.0
    np.testing.assert_array_equal(grad, np.full((2, 3), 2.0))
    view = g.run(gc.transpose(W))
    view[0, 0] = 5.0
    assert W.value[0, 0] == 1.0


def test_results_never_alias_the_fed_arrays(g):
    p = g.placeholder("p", (3,))
    a = np.zeros(3)
    whole, part = g.run([p, p[1:]], {p: a})
    whole[0] = part[0] = 9.0
    np.testing.assert_array_equal(a, np.zeros(3))
    out = gc.function([p], [p, p[1:]])(a)
    out[0][0] = out[1][0] = 9.0
    np.testing.assert_array_equal(a, np.zeros(3))


# -- nested fetches (issue 9, defect 11) ---------------------------------------------------------
def test_nested_fetches_come_back_in_the_same_structure(g):
    import collections

    x = g.placeholder("x", (2,))
    y, z = x * 2.0, gc.sum(x)
    Pair = collections.namedtuple("Pair", "first second")
    fetches = {"a": y, "b": [z, (y, Pair(z, {"deep": x}))],
               "c": collections.OrderedDict(k=z), "e": []}
    out = g.run(fetches, {x: [1.0, 2.0]})
    assert list(out) == ["a", "b", "c", "e"]
    np.testing.assert_array_equal(out["a"], [2.0, 4.0])
    first, (again, pair) = out["b"]
    assert first == 3.0 and type(out["b"]) is list and type(out["b"][1]) is tuple
    assert type(pair) is Pair and pair.first == 3.0
    np.testing.assert_array_equal(pair.second["deep"], [1.0, 2.0])
    assert type(out["c"]) is collections.OrderedDict and out["c"]["k"] == 3.0
    assert out["e"] == []
    assert again is not out["a"] and not np.shares_memory(again, out["a"])


def test_a_node_fetched_twice_gives_two_arrays(g):
    x = g.placeholder("x", (2,))
    y = x * 2.0
    first, second, view = g.run([y, y, gc.reshape(y, (2, 1))], {x: [1.0, 2.0]})
    first[0] = 99.0
    assert second[0] == 2.0 and view[0, 0] == 2.0


def test_a_bad_leaf_in_nested_fetches_is_named(g):
    x = g.placeholder("x", ())
    with pytest.raises(gc.GraphcError, match=r"fetches\['b'\]\[1\] is a float"):
        g.run({"b": [x, 1.0]}, {x: 1.0})


# -- allocation failures (issue 9, defect 3) --------------------------------------------------------
@pytest.mark.parametrize("size", [2**48, 2**62])  # 2 PiB: beyond the address space; > intp
def test_an_allocation_failure_names_the_node(g, size):
    x = g.placeholder("x", (1,))
    big = gc.mul(gc.broadcast_to(x, (size,)), 2.0, name="big")
    with pytest.raises(gc.OutOfMemoryError) as info:
        g.run(big, {x: [1.0]})
    assert isinstance(info.value, MemoryError)
    message = str(info.value)
    assert "ran out of memory" in message and "test_runtime.py" in message
    assert "'big'" in message or "broadcast_to" in message
