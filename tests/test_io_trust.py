"""Loaded files cannot harm: declared attrs, bounded work, the builders' invariants, and a
seeded fuzz test over mutations of real saved graphs.

Every file either raises GraphFormatError, or loads into a graph that runs, compiles and gives
the same values and the same errors through ``g.run`` and ``gc.function``.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import graphc as gc
from graphc.graph import apply
from graphc.ops.registry import REGISTRY


def _file(*nodes) -> str:
    return json.dumps({"format": "graphc", "version": 1, "nodes": list(nodes)})


def _array(value) -> dict:
    return gc.io.json_format.encode_array(np.asarray(value))


PLACEHOLDER = {"id": 0, "op": "placeholder", "inputs": [], "shape": [1000], "dtype": "float64"}


# -- defect: attributes from a file reached NumPy as keyword arguments ------------------------------
@pytest.mark.parametrize("attrs", [
    {"where": {"$array": _array(np.zeros(1000, bool))}},
    {"dtype": {"$dtype": "int8"}, "casting": "unsafe"},
    {"out": None},
])
def test_undeclared_attrs_are_refused_at_load(attrs):
    text = _file(PLACEHOLDER, {"id": 1, "op": "add", "inputs": [0, 0], "attrs": attrs})
    with pytest.raises(gc.GraphFormatError, match=r"node 1 \(add\).*unknown attrs"):
        gc.from_json(text)


def test_undeclared_attrs_are_refused_when_building():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    with pytest.raises(gc.DTypeError, match=r"mul: unknown attrs \['casting', 'dtype'\]"):
        apply("mul", [x, x], {"dtype": "int8", "casting": "unsafe"})


@pytest.mark.parametrize("op,attrs,message", [
    ("sum", {"axis": "0", "keepdims": False}, "an axis must be an int or a tuple of ints"),
    ("sum", {"axis": [0, 0], "keepdims": False}, "repeated axis"),
    ("transpose", {"axes": [0, 0]}, "not a permutation"),
    ("reduced_size", {"axis": [0], "dtype": None}, "attr 'dtype': expected a dtype, not None"),
    ("reduced_size", {"axis": [0], "dtype": "<U3"}, "numeric or bool dtype"),
    ("cast", {"dtype": {"$dtype": "float64"}, "extra": 1}, "unknown attrs"),
    ("sum", {"axis": None}, r"missing attrs \['keepdims'\]"),
])
def test_ill_typed_attrs_are_refused_at_load(op, attrs, message):
    text = _file({**PLACEHOLDER, "shape": [3, 2]}, {"id": 1, "op": op, "inputs": [0],
                                                    "attrs": attrs})
    with pytest.raises(gc.GraphFormatError, match=message):
        gc.from_json(text)


def test_every_op_declares_the_attrs_of_its_cases_and_its_arity():
    for name, op in REGISTRY.items():
        least, most = op.arity
        for case in op.cases:
            assert set(case.attrs) <= set(op.attrs), name
            assert least <= len(case.inputs) and (most is None or len(case.inputs) <= most), name


def test_nodes_store_only_declared_attrs():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    y = gc.sum(gc.softmax(x[:, 1:]) ** 2 + gc.sum(gc.concatenate([x, x], axis=1).T) * 0 + 1)
    gc.hessian(y, x)
    for node in g.nodes:
        assert set(node.attrs) <= set(REGISTRY[node.op].attrs), node


# -- defect: tiny files could demand unbounded work -------------------------------------------------
def test_a_tiny_file_cannot_ask_for_terabytes():
    text = _file({"id": 0, "op": "constant", "inputs": [], "value": _array(1.0)},
                 {"id": 1, "op": "broadcast_to", "inputs": [0], "attrs": {"shape": [2 ** 40]}},
                 {"id": 2, "op": "sum", "inputs": [1], "attrs": {"axis": None, "keepdims": False}})
    assert len(text) < 400
    with pytest.raises(gc.GraphFormatError, match=r"node 1 .*over the limit .*max_elements"):
        gc.from_json(text)  # refused while loading: nothing is allocated or computed


def test_load_limits_have_defaults_and_can_be_raised(tmp_path):
    g = gc.Graph()
    x = g.placeholder("x", (100, 100))
    y = gc.sum(x * 2.0)
    gc.save(g, tmp_path / "g.json")
    assert len(gc.load(tmp_path / "g.json")) == len(g)
    with pytest.raises(gc.GraphFormatError, match="max_elements"):
        gc.load(tmp_path / "g.json", max_elements=9999)
    with pytest.raises(gc.GraphFormatError, match="max_total_elements"):
        gc.from_json(gc.to_json(g), max_total_elements=15_000)
    h = gc.from_json(gc.to_json(g), max_elements=10_000, max_total_elements=40_000)
    assert h.run(h[y.name], {"x": np.ones((100, 100))}) == 20_000.0


# -- defect: loaded graphs must satisfy the invariants of built ones --------------------------------
def test_internal_ops_with_impossible_shapes_do_not_load():
    # sum_to(x: (1,), like: (3,)) used to load with shape (3,); the compiled function then
    # returned shape (1,) where g.run raised
    text = _file({"id": 0, "op": "placeholder", "inputs": [], "shape": [1]},
                 {"id": 1, "op": "placeholder", "inputs": [], "shape": [3]},
                 {"id": 2, "op": "sum_to", "inputs": [0, 1], "attrs": {"batch": 0}})
    with pytest.raises(gc.GraphFormatError, match=r"node 2 \(sum_to\).*cannot sum shape"):
        gc.from_json(text)
    g = gc.Graph()
    a, b = g.placeholder("a", (1,)), g.placeholder("b", (3,))
    with pytest.raises(gc.ShapeError, match="cannot sum shape"):
        gc.ops.sum_to(a, b)


def test_reduced_size_needs_a_real_dtype_and_axes_in_range():
    for attrs in ({"axis": [0], "dtype": None}, {"axis": [5], "dtype": "float64"}):
        text = _file({**PLACEHOLDER, "shape": [3]},
                     {"id": 1, "op": "reduced_size", "inputs": [0], "attrs": attrs})
        with pytest.raises(gc.GraphFormatError, match="reduced_size"):
            gc.from_json(text)


def test_concat_parts_must_fit_their_cotangent():
    g = gc.Graph()
    gg, a, b = g.placeholder("g", (4, 3)), g.placeholder("a", (2, 3)), g.placeholder("b", (3, 3))
    with pytest.raises(gc.ShapeError, match="parts add up to 5"):
        apply("concat_take", [gg, a, b], {"axis": -2, "part": 0})


def test_a_loaded_node_is_built_by_the_same_builder_as_in_python():
    """The stored shape must be the one the rule gives (a file cannot claim another)."""
    text = _file({**PLACEHOLDER, "shape": [3, 2]},
                 {"id": 1, "op": "sum", "inputs": [0], "attrs": {"axis": [0], "keepdims": False},
                  "shape": [3]})
    with pytest.raises(gc.GraphFormatError, match=r"stored shape \[3\] but the op gives \[2\]"):
        gc.from_json(text)


# -- defect: saved gradient graphs that did not load ------------------------------------------------
@pytest.mark.parametrize("parts", [2, 3, 5])
def test_gradients_of_concatenate_with_unknown_sizes_save_and_load(parts):
    g = gc.Graph()
    xs = [g.placeholder(f"x{i}", (None, 2)) for i in range(parts)]
    y = gc.sum(gc.concatenate(xs, axis=0) ** 2)
    grads = gc.gradients(y, xs)
    h = gc.from_json(gc.to_json(g))
    rng = np.random.default_rng(parts)
    feed = {f"x{i}": rng.normal(size=(i + 1, 2)) for i in range(parts)}
    for d, x in zip(grads, xs):
        np.testing.assert_allclose(h.run(h[d.name], feed), 2 * feed[x.name], rtol=1e-15)


# -- the fuzz test: seeded mutations of real saved graphs -------------------------------------------
def _real_graphs() -> list[gc.Graph]:
    graphs = []
    g = gc.Graph()  # an MLP with a cross-entropy loss and its gradients
    x = g.placeholder("x", (None, 4))
    labels = g.placeholder("labels", (None,), "int64")
    w1, w2 = g.variable("W1", np.full((4, 5), 0.1)), g.variable("W2", np.full((5, 3), -0.2))
    loss = gc.mean(gc.softmax_cross_entropy(gc.relu(x @ w1) @ w2, labels))
    gc.gradients(loss, [w1, w2])
    graphs.append(g)

    g = gc.Graph()  # logistic regression with its Hessian
    x, t = g.placeholder("x", (None, 3)), g.placeholder("t", (None,))
    w = g.variable("w", np.array([0.5, -1.0, 2.0]))
    loss = gc.mean(gc.sigmoid_cross_entropy(x @ w, t)) + 1e-3 * gc.sum(w * w)
    gc.hessian(loss, w)
    graphs.append(g)

    g = gc.Graph()  # shape ops and indexing with their gradients
    a = g.placeholder("a", (3, 4))
    b = g.placeholder("b", (None, 4))
    c = gc.concatenate([a, b, a[::-1]], axis=0)
    y = gc.sum(gc.reshape(c[1:, [0, 2, 2]], (-1,)) * 2) + gc.sum(gc.max(gc.transpose(a), axis=1))
    gc.gradients(y, [a, b])
    graphs.append(g)

    g = gc.Graph()  # reductions and a Jacobian with unknown sizes
    x = g.placeholder("x", (None,))
    y = gc.logsumexp(gc.stack([x, gc.exp(x) / 3, gc.tanh(x)]), axis=0)
    gc.jacobian(gc.where(x > 0, y, gc.minimum(x, 0.5)), x)
    graphs.append(g)
    return graphs


_INTERESTING = [0, 1, 2, -1, 3, 7, None, True, 2 ** 20, 2 ** 40, 2 ** 62, 0.5, "float32", "int8",
                "bool", "x", [], [0], [1, 0], {}, {"$float": "nan"}]


def _mutate(doc: dict, rng: np.random.Generator) -> dict:
    doc = copy.deepcopy(doc)
    nodes = doc["nodes"]
    entry = nodes[rng.integers(len(nodes))]
    kind = rng.integers(8)
    if kind == 0:  # another op
        entry["op"] = str(rng.choice(sorted(REGISTRY)))
    elif kind == 1:  # another input, an input more or one less
        inputs = entry.setdefault("inputs", [])
        choice = rng.integers(3)
        if choice == 0 and inputs:
            inputs[rng.integers(len(inputs))] = int(rng.integers(len(nodes)))
        elif choice == 1:
            inputs.append(int(rng.integers(max(1, entry.get("id", 1)))))
        elif inputs:
            inputs.pop()
    elif kind == 2:  # a field deleted
        key = str(rng.choice(sorted(entry)))
        del entry[key]
    elif kind == 3 and entry.get("attrs"):  # an attr changed, or one added
        attrs = entry["attrs"]
        key = str(rng.choice(sorted(attrs) + ["axis", "dtype", "where"]))
        attrs[key] = _INTERESTING[rng.integers(len(_INTERESTING))]
    elif kind == 4 and entry.get("shape") is not None:  # a size changed
        shape = entry["shape"]
        if shape:
            shape[rng.integers(len(shape))] = _INTERESTING[rng.integers(8)]
        else:
            shape.append(2)
    elif kind == 5:  # another dtype
        entry["dtype"] = str(rng.choice(["float32", "float64", "int64", "int8", "bool", "<f8"]))
    elif kind == 6 and "value" in entry:  # another stored value
        entry["value"] = _array(rng.normal(size=tuple(rng.integers(0, 3, rng.integers(3)))))
    else:  # a node moved or duplicated
        k = int(rng.integers(len(nodes)))
        nodes.insert(int(rng.integers(len(nodes) + 1)), copy.deepcopy(nodes[k]))
    return doc


def _outcome(call):
    """A call's values, or the class of the graphc error it raised (anything else fails)."""
    try:
        return call()
    except gc.GraphcError as exc:
        return type(exc)


def _same(a, b) -> bool:
    if isinstance(a, type) or isinstance(b, type):
        return a is b
    return all(np.shape(u) == np.shape(v) and np.asarray(u).dtype == np.asarray(v).dtype and
               np.allclose(u, v, rtol=1e-7, atol=1e-12, equal_nan=True) for u, v in zip(a, b))


def _check_loaded(h: gc.Graph, rng: np.random.Generator) -> None:
    """A loaded graph runs, compiles and agrees between the interpreter and the compiler."""
    feed = [rng.normal(size=tuple(2 if d is None else d for d in p.shape)).astype(p.dtype)
            for p in h.placeholders]
    sinks = [n for n in h.nodes if not n.consumers][-12:]
    interpreted = _outcome(lambda: h.run(sinks, dict(zip(h.placeholders, feed))))
    compiled = _outcome(lambda: gc.function(list(h.placeholders), sinks)(*feed))
    assert _same(interpreted, compiled), (interpreted, compiled)


def test_fuzzed_files_fail_cleanly_or_load_run_compile_and_agree():
    rng = np.random.default_rng(20261201)
    originals = [json.loads(gc.to_json(g)) for g in _real_graphs()]
    loaded = refused = 0
    for k in range(4000):
        doc = _mutate(originals[k % len(originals)], rng)
        if rng.random() < 0.3:  # a second mutation on top
            doc = _mutate(doc, rng)
        try:
            h = gc.from_json(json.dumps(doc), max_elements=10 ** 6)
        except gc.GraphFormatError:
            refused += 1
            continue
        loaded += 1
        _check_loaded(h, rng)
    assert loaded > 300 and refused > 2000, (loaded, refused)


def test_a_broadcast_that_fails_at_run_time_fails_in_both_paths():
    """Found by the fuzz test: the compiler dropped a broadcast of a constant to a run-time
    shape that does not fit (scalar_constant), so g.run raised and the function did not."""
    g = gc.Graph()
    x = g.placeholder("x", (3, 4))
    n = g.placeholder("n", (None,))
    y = x + gc.ops.broadcast_like(g.constant(np.ones(1)), n)
    feed = [np.ones((3, 4)), np.ones(21)]
    with pytest.raises(gc.GraphcError, match="broadcast"):
        g.run(y, dict(zip([x, n], feed)))
    with pytest.raises(gc.GraphcError, match="broadcast"):
        gc.function([x, n], y)(*feed)
