"""The IR: graphs, nodes, names, variables, constants, build-time shape and dtype errors."""
import networkx as nx
import numpy as np
import pytest

import graphc as gc

HERE = __file__


def test_nodes_in_creation_order_with_lookup_by_name():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.ones((3, 2)))
    y = gc.exp(x)
    assert g.nodes == (x, W, y) and len(g) == 3
    assert g.placeholders == (x,) and g.variables == (W,)
    assert g["x"] is x and g[y.name] is y and "W" in g
    with pytest.raises(KeyError, match="no node named 'nope'"):
        g["nope"]


def test_node_fields_and_repr():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3), dtype="float32")
    y = gc.tanh(x, name="y")
    assert (y.graph, y.op, y.inputs, y.name) == (g, "tanh", (x,), "y")
    assert y.shape == (None, 3) and y.ndim == 2 and y.dtype == np.float32
    assert x.consumers == (y,)
    assert repr(y) == "<Node tanh 'y' shape=(None, 3) dtype=float32>"
    with pytest.raises(AttributeError, match="immutable"):
        y.op = "exp"


def test_x_times_x_is_one_consumer_and_two_edges():
    g = gc.Graph()
    x = g.placeholder("x", ())
    y = x * x
    assert x.consumers == (y,)
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.MultiDiGraph)
    assert nxg.number_of_edges(x.id, y.id) == 2
    assert nxg.nodes[y.id]["op"] == "mul" and nxg.nodes[x.id]["name"] == "x"


def test_names_are_unique():
    g = gc.Graph()
    g.placeholder("x")
    with pytest.raises(gc.GraphcError, match="duplicate name 'x'"):
        g.variable("x", 1.0)
    with pytest.raises(gc.GraphcError, match="duplicate name 'x'"):
        gc.exp(g["x"], name="x")


def test_python_scalars_and_arrays_become_constants():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y = x + np.array([1.0, 2.0]) + 3
    consts = [n for n in g.nodes if n.op == "constant"]
    assert len(consts) == 2
    np.testing.assert_array_equal(consts[0].value, [1.0, 2.0])
    np.testing.assert_array_equal(y.eval({x: [0.0, 0.0]}), [4.0, 5.0])
    with pytest.raises(gc.DTypeError, match="add: a value must be numbers or bools, not <U3"):
        x + "abc"


def test_weak_python_scalars_follow_numpy_2_promotion():
    g = gc.Graph()
    f32 = g.placeholder("f32", (), "float32")
    i32 = g.placeholder("i32", (), "int32")
    assert (f32 * 2.0).dtype == np.float32
    assert (i32 + 1).dtype == np.int32
    assert (i32 * 2.5).dtype == np.float64
    assert (f32 + g.constant(np.float64(1.0))).dtype == np.float64  # a strong constant
    assert (f32 * np.float64(2.0)).dtype == np.float64  # NumPy scalars are strong
    assert (f32 * np.float32(2.0)).dtype == np.float32
    assert gc.exp(i32).dtype == np.float64


def test_mixing_graphs_is_an_error():
    a, b = gc.Graph(), gc.Graph()
    x, y = a.placeholder("x"), b.placeholder("y")
    with pytest.raises(gc.GraphcError, match="cannot mix nodes of two graphs"):
        x + y


def test_variable_values_are_checked_on_write():
    g = gc.Graph()
    W = g.variable("W", np.zeros((2, 3)))
    W.value = np.ones((2, 3), dtype=np.float32)
    assert W.value.dtype == np.float64 and W.value.sum() == 6
    with pytest.raises(gc.ShapeError, match=r"shape \(3, 2\) to variable node 'W'"):
        W.value = np.ones((3, 2))
    with pytest.raises(gc.DTypeError, match="dtype complex128"):
        W.value = np.ones((2, 3), dtype=complex)
    source = np.ones((2, 3))
    W.value = source
    source[0, 0] = 5.0  # the variable holds its own copy
    assert W.value[0, 0] == 1.0
    with pytest.raises(gc.GraphcError, match="not a variable"):
        (W + 1).value = 3.0


def test_variable_and_constant_dtypes():
    g = gc.Graph()
    assert g.variable("a", 1.0).dtype == np.float64
    assert g.variable("b", [1, 2], dtype="float32").dtype == np.float32
    assert g.constant(3).dtype == np.int64
    with pytest.raises(gc.DTypeError, match="'c': 'nonsense' is not a dtype"):
        g.placeholder("c", (), dtype="nonsense")
    with pytest.raises(gc.ShapeError, match="bad size -1"):
        g.placeholder("d", (-1,))


def test_impossible_shape_names_op_shapes_node_and_user_line():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    with pytest.raises(gc.ShapeError) as info:
        x + g.placeholder("y", (4,))  # the line the message must name
    message = str(info.value)
    line = info.tb.tb_lineno
    assert message.startswith("add: shapes (None, 3), (4,) do not broadcast")
    assert "inputs: (None, 3) float64, (4,) float64" in message
    assert f"{HERE}:{line}" in message


def test_nodes_remember_where_they_were_built():
    g = gc.Graph()
    x = g.placeholder("x")
    y = gc.exp(x); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
    assert y.site == f"{HERE}:{line}"


def test_a_node_has_no_truth_value_and_is_not_iterable():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    with pytest.raises(gc.GraphcError, match="use gc.where"):
        bool(x > 0) if hasattr(gc, "greater") else bool(x)
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(x)


def test_deep_chain_builds_and_runs_without_recursion():
    g = gc.Graph()
    x = g.placeholder("x", ())
    y = x
    for _ in range(50_000):  # 100,000 nodes with the constants
        y = y + 1.0
    assert len(g) == 100_001
    assert float(g.run(y, {x: 0.5})) == 50_000.5


def test_inferred_dtype_depends_on_the_python_type_of_a_scalar():
    g = gc.Graph()
    i = g.placeholder("i", (3,), "int64")
    b = g.placeholder("b", (2,), "bool")
    assert (i * 2).dtype == np.int64 and (i * 2.0).dtype == np.float64  # 2 == 2.0
    assert (b + 1).dtype == np.int64 and (b + True).dtype == np.bool_  # 1 == True
    assert g.run(i * 2.0, {i: [1, 2, 3]}).dtype == np.float64


def test_names_must_be_printable():
    g = gc.Graph()
    with pytest.raises(gc.GraphcError, match="printable"):
        g.variable("W\n    import os #", np.ones(2))


def test_node_attrs_are_read_only():
    g = gc.Graph()
    s = gc.sum(g.placeholder("x", (2, 3)), axis=-1)
    assert s.attrs == {"axis": (1,), "keepdims": False}
    with pytest.raises(TypeError):
        s.attrs["axis"] = (0,)


@pytest.mark.parametrize("build, error, message", [
    (lambda g, x: gc.reshape(x, None), gc.ShapeError, "a shape must be an int or a tuple"),
    (lambda g, x: gc.reshape(x, (1.5, 4)), gc.ShapeError, "a shape must be an int or a tuple"),
    (lambda g, x: gc.sum(x, axis=1.0), gc.ShapeError, "an axis must be an int or a tuple"),
    (lambda g, x: gc.broadcast_to(x, (-1, 2, 3)), gc.ShapeError, "must not be negative"),
    (lambda g, x: gc.transpose(x, "ab"), gc.ShapeError, "axes must be an int or a tuple"),
    (lambda g, x: gc.concatenate(x), gc.GraphcError, "takes a list or tuple of nodes"),
    (lambda g, x: gc.clip(x, None, None), gc.GraphcError, "at least one of lo and hi"),
    (lambda g, x: gc.cast(x, str), gc.DTypeError, "cannot cast to <U0"),
    (lambda g, x: g.variable("v", [[1], [1, 2]]), gc.DTypeError, "'v': cannot make an array"),
    (lambda g, x: g.variable("v", None), gc.DTypeError, "'v': a value must be numbers"),
    (lambda g, x: g.constant("abc"), gc.DTypeError, "a value must be numbers or bools"),
    (lambda g, x: gc.to_dot(3), gc.GraphcError, "to_dot takes a Graph"),
    (lambda g, x: gc.cast(g.placeholder("i", (2,), "int8"), "int8") + 300, gc.DTypeError,
     "add: NumPy does not support dtypes int8"),
])
def test_bad_arguments_raise_graphc_errors(build, error, message):
    g = gc.Graph()
    x = g.placeholder("x", (2, 3))
    with pytest.raises(error, match=message):
        build(g, x)


# -- API.md promises that no other test pinned down -------------------------------------------------
@pytest.mark.parametrize("name", ["ShapeError", "DTypeError", "MissingFeedError", "FeedError",
                                  "DisconnectedGradientError", "GradientCheckError",
                                  "GraphFormatError"])
def test_every_documented_error_class_derives_from_graphc_error(name):
    cls = getattr(gc, name)
    assert isinstance(cls, type) and issubclass(cls, gc.GraphcError)
    assert issubclass(gc.GraphcError, Exception)


def test_node_eval_with_and_without_a_feed():
    g = gc.Graph()
    W = g.variable("W", np.array([[1.0, 2.0], [3.0, 4.0]]))
    c = g.constant(np.array([0.5, -1.0]))
    y = W @ c  # needs no feed
    np.testing.assert_array_equal(y.eval(), np.array([[1.0, 2.0], [3.0, 4.0]]) @ [0.5, -1.0])
    x = g.placeholder("x", (2,))
    z = x * 3.0
    np.testing.assert_array_equal(z.eval({x: np.array([1.0, -2.0])}), [3.0, -6.0])
    np.testing.assert_array_equal(z.eval({"x": np.array([2.0, 0.0])}), [6.0, 0.0])
    with pytest.raises(gc.MissingFeedError, match="'x'"):
        z.eval()
