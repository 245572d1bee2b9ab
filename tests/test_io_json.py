"""The graphc JSON format: lossless and deterministic round trips, atomic save, safe loading."""
from __future__ import annotations

import json
import os
import zlib

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.graph import apply
from graphc.io import json_format
from graphc.ops.registry import REGISTRY

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SPECIAL = [np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, 2.2e-308, -1.5, 1e308]


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def roundtrip(graph: gc.Graph) -> gc.Graph:
    text = gc.to_json(graph)
    loaded = gc.from_json(text)
    assert gc.to_json(loaded) == text
    return loaded


def example_graph():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.array([[np.nan, -0.0, np.inf], [5e-324, -np.inf, 2.0]]).T)
    y = gc.tanh(x * 2.0) + gc.sum(W, axis=1)
    loss = gc.mean(y * y, name="loss")
    return g, x, W, loss


# -- round trips ---------------------------------------------------------------------------------
def test_document_layout_and_fields():
    g, x, W, loss = example_graph()
    doc = json.loads(gc.to_json(g))
    assert (doc["format"], doc["version"]) == ("graphc", 1)
    first = doc["nodes"][0]
    assert first == {"id": 0, "op": "placeholder", "name": "x", "inputs": [], "shape": [None, 3],
                     "dtype": "float64", "attrs": {}, "derivative": 0,
                     "site": json_format.portable_site(x.site)}
    assert doc["nodes"][1]["value"]["shape"] == [3, 2]
    assert [e["id"] for e in doc["nodes"]] == list(range(len(g)))
    assert doc["nodes"][-1]["inputs"] == [loss.inputs[0].id]
    jsonschema.Draft202012Validator(json_format.schema()).validate(doc)
    assert gc.to_json(example_graph()[0]) == gc.to_json(g)  # the same graph, the same bytes


def test_round_trip_keeps_everything_and_runs_and_differentiates_alike():
    g, x, W, loss = example_graph()
    (gW,) = gc.gradients(loss, [W])
    h = roundtrip(g)
    for a, b in zip(g.nodes, h.nodes):
        assert (a.id, a.op, a.name, a.shape, a.dtype, json_format.portable_site(a.site),
                a.derivative) == (b.id, b.op, b.name, b.shape, b.dtype, b.site, b.derivative)
        assert [i.id for i in a.inputs] == [i.id for i in b.inputs]
    assert same_bits(h["W"].value, W.value)
    X = np.random.default_rng(0).normal(size=(4, 3))
    want = g.run([loss, gW], {x: X})
    got = h.run([h["loss"], h[gW.name]], {"x": X})
    assert all(same_bits(a, b) for a, b in zip(want, got))
    again = gc.grad(h["loss"], h["W"])  # the loaded graph differentiates like the original
    assert same_bits(h.run(again, {"x": X}), want[1])
    compiled = gc.function([h["x"]], [h["loss"], h[gW.name]])  # and compiles
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(compiled(X), want))


def test_values_bit_for_bit_for_every_dtype():
    g = gc.Graph()
    nan_payload = np.array([0x7FF8000000000123], np.uint64).view(np.float64)
    values = {
        "f64": np.array(SPECIAL + [nan_payload[0]]),
        "f32": np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, 3.4e38], np.float32),
        "i64": np.array([[-2 ** 63, 2 ** 63 - 1], [0, -1]], np.int64),
        "b": np.array([True, False, True]),
        "empty": np.zeros((0, 3)),
        "scalar": np.array(-0.0),
    }
    for name, v in values.items():
        g.variable(name, v)
        g.constant(v, name=f"c_{name}")
    h = roundtrip(g)
    for name, v in values.items():
        assert same_bits(h[name].value, v) and same_bits(h[f"c_{name}"].value, v)
    assert h["f64"].value.flags.writeable and not h["c_f64"].value.flags.writeable


def test_weak_constants_stay_weak():
    g = gc.Graph()
    x = g.placeholder("x", (2,), dtype="float32")
    y = x * 2.5 + True
    h = roundtrip(g)
    assert h[y.name].dtype == np.float32
    assert same_bits(h.run(h[y.name], {"x": np.ones(2, np.float32)}),
                     g.run(y, {x: np.ones(2, np.float32)}))


def test_attrs_round_trip_with_their_types():
    cases = [None, True, 3, -2 ** 70, 1.5, -0.0, float("nan"), float("inf"), "s", (), (1, (None, "a")),
             [1, (2,)], np.arange(3.0), np.float32(1.5), np.int64(7), np.dtype("float32"),
             slice(1, None, -1), Ellipsis]
    for value in cases:
        back = json_format.decode_attr(json.loads(json.dumps(json_format.encode_attr(value))))
        assert type(back) is type(value), value
        if isinstance(value, np.ndarray):
            assert same_bits(back, value)
        elif isinstance(value, float) and np.isnan(value):
            assert np.isnan(back)
        else:
            assert back == value and repr(back) == repr(value)
    with pytest.raises(gc.GraphcError, match="cannot export an attr of type object"):
        json_format.encode_attr(object())


CASES = [(name, k) for name, op in sorted(REGISTRY.items())
         if name not in json_format.LEAVES for k in range(len(op.cases))]


@pytest.mark.parametrize("name,k", CASES)
def test_every_registered_op_round_trips(name, k):
    """Each case of the registry: the op's attrs, shape rule and kernel survive a round trip."""
    case = REGISTRY[name].cases[k]
    rng = np.random.default_rng(zlib.crc32(f"{name}{k}".encode()))
    g = gc.Graph()
    feed, inputs = {}, []
    for i, item in enumerate(case.inputs):
        if isinstance(item, tuple):
            inputs.append(g.placeholder(f"in{i}", item))
            feed[f"in{i}"] = rng.uniform(case.low, case.high, size=item)
        else:
            inputs.append(g.constant(np.asarray(item), name=f"in{i}"))
    node = apply(name, inputs, case.attrs, name="out")
    h = roundtrip(g)
    assert h["out"].attrs.keys() == node.attrs.keys()
    for key, value in node.attrs.items():  # same values and types: the compiler hashes attrs
        back = h["out"].attrs[key]
        assert type(back) is type(value)
        assert same_bits(back, value) if isinstance(value, np.ndarray) else \
            (back == value and hash(back) == hash(value))
    assert same_bits(h.run(h["out"], feed), g.run(node, feed))


def test_save_and_load(tmp_path):
    g, x, W, loss = example_graph()
    path = tmp_path / "g.json"
    gc.save(g, path)
    assert path.read_text(encoding="utf-8") == gc.to_json(g) + "\n"
    assert gc.to_json(gc.load(str(path))) == gc.to_json(g)
    assert os.listdir(tmp_path) == ["g.json"]  # no temporary file left behind


def test_save_is_atomic_when_the_write_fails(tmp_path, monkeypatch):
    g, *_ = example_graph()
    path = tmp_path / "g.json"
    path.write_text("old contents")

    def crash(src, dst):
        raise OSError("disk on fire")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        gc.save(g, path)
    assert path.read_text() == "old contents"
    assert os.listdir(tmp_path) == ["g.json"]


def test_load_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(gc.GraphFormatError, match="cannot read"):
        gc.load(tmp_path / "nope.json")


def test_minimal_hand_written_file():
    text = json.dumps({"format": "graphc", "version": 1, "nodes": [
        {"id": 10, "op": "placeholder", "inputs": [], "shape": [2]},
        {"id": 20, "op": "sum", "inputs": [10], "attrs": {"axis": -1, "keepdims": False}},
    ]})
    g = gc.from_json(text)
    assert [n.op for n in g.nodes] == ["placeholder", "sum"]
    assert g.nodes[1].attrs == {"axis": (0,), "keepdims": False}  # canonical form
    assert g.run(g.nodes[1], {g.nodes[0]: [1.0, 2.0]}) == 3.0


# -- random graphs (hypothesis) ----------------------------------------------------------------
UNARY = ["neg", "exp", "tanh", "sin", "square", "abs", "sign", "relu", "sigmoid", "logical_not"]
BINARY = ["add", "sub", "mul", "div", "maximum", "less", "equal"]
DTYPES = ["float64", "float32", "int64", "bool"]


@st.composite
def random_graphs(draw):
    """A graph of random leaves (special values, several dtypes) and random ops."""
    g = gc.Graph()
    pool = []
    for i in range(draw(st.integers(1, 3))):
        shape = draw(st.sampled_from([(), (3,), (2, 3), (None, 3)]))
        pool.append(g.placeholder(f"p{i}", shape, draw(st.sampled_from(["float64", "float32"]))))
    for i in range(draw(st.integers(0, 3))):
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.sampled_from([(), (3,), (2, 3)]))
        raw = draw(st.lists(st.sampled_from(SPECIAL), min_size=6, max_size=6))
        value = np.resize(np.array(raw, dtype=np.float64), shape)
        with np.errstate(all="ignore"):
            value = value.astype(dtype) if dtype != "bool" else value > 0
        kind = draw(st.sampled_from(["variable", "constant"]))
        pool.append(getattr(g, kind)(value=value, name=f"{kind[0]}{i}"))
    for _ in range(draw(st.integers(1, 8))):
        choice = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "shape", "scalar"]))
        a = draw(st.sampled_from(pool))
        try:
            if choice == "unary":
                node = apply(draw(st.sampled_from(UNARY)), [a])
            elif choice == "binary":
                node = apply(draw(st.sampled_from(BINARY)), [a, draw(st.sampled_from(pool))])
            elif choice == "reduce":
                node = gc.sum(a, axis=draw(st.sampled_from([None, 0, -1])),
                              keepdims=draw(st.booleans()))
            elif choice == "shape":
                node = draw(st.sampled_from([gc.transpose, lambda v: gc.expand_dims(v, 0),
                                             lambda v: gc.cast(v, "float32")]))(a)
            else:
                node = a * draw(st.sampled_from([2, 0.5, -1.0, True]))
        except gc.GraphcError:
            continue
        pool.append(node)
    floats = [n for n in pool if n.dtype.kind == "f" and n.op != "constant"]
    if floats and draw(st.booleans()):
        y = gc.sum(draw(st.sampled_from(floats)))
        gc.gradients(y, [n for n in floats if n.op in ("placeholder", "variable")])
    return g


def feed_for(g: gc.Graph) -> dict:
    rng = np.random.default_rng(1)
    return {p.name: rng.normal(size=tuple(2 if d is None else d for d in p.shape)).astype(p.dtype)
            for p in g.placeholders}


@SETTINGS
@given(random_graphs())
def test_random_graphs_round_trip_with_identical_results(g):
    text = gc.to_json(g)
    h = gc.from_json(text)
    assert gc.to_json(h) == text and gc.to_json(g) == text  # deterministic and lossless
    jsonschema.Draft202012Validator(json_format.schema()).validate(json.loads(text))
    feed = feed_for(g)
    try:
        want = g.run(list(g.nodes), feed)
    except gc.ShapeError as exc:  # a None size the random feed cannot satisfy
        with pytest.raises(type(exc)):
            h.run(list(h.nodes), feed)
        return
    got = h.run(list(h.nodes), feed)
    assert all(same_bits(a, b) for a, b in zip(want, got))


@SETTINGS
@given(random_graphs(), st.data())
def test_truncated_files_always_fail_cleanly(g, data):
    text = gc.to_json(g)
    cut = data.draw(st.integers(0, len(text) - 1))
    with pytest.raises(gc.GraphFormatError):
        gc.from_json(text[:cut])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.sampled_from([0, 1, -1, 2])
    | st.floats(allow_nan=False) | st.text(max_size=5)
    | st.sampled_from(["float64", "int64", "bool", "object", "add", "<f8"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=2),
    max_leaves=6)


@SETTINGS
@given(random_graphs(), st.data())
def test_mutated_files_load_or_fail_with_a_format_error(g, data):
    """Whatever one mutation does, loading gives a valid graph or GraphFormatError."""
    doc = json.loads(gc.to_json(g))
    kind = data.draw(st.sampled_from(["field", "delete", "text"]))
    if kind == "text":
        text = gc.to_json(g)
        at = data.draw(st.integers(0, len(text) - 1))
        text = text[:at] + data.draw(st.sampled_from(list('0123456789[]{}",:-ntfeE. a\\'))) + \
            text[at + data.draw(st.integers(0, 1)):]
    else:
        entry = data.draw(st.sampled_from(doc["nodes"] + [doc]))
        key = data.draw(st.sampled_from(sorted(entry)))
        if kind == "delete":
            del entry[key]
        else:
            entry[key] = data.draw(JSON_VALUES)
        text = json.dumps(doc)
    try:
        h = gc.from_json(text)
    except gc.GraphFormatError:
        return
    assert gc.to_json(gc.from_json(gc.to_json(h))) == gc.to_json(h)


# -- targeted corruptions: each one must be caught, with the reason -----------------------------
def corrupt(path, value=None, delete=False):
    g, *_ = example_graph()
    doc = json.loads(gc.to_json(g))
    *keys, last = path
    target = doc
    for k in keys:
        target = target[k]
    if delete:
        del target[last]
    else:
        target[last] = value
    return json.dumps(doc)


BAD = [
    (("format",), "pickle", '"format" must be "graphc"'),
    (("version",), 2, "unsupported version 2"),
    (("version",), True, '"version" must be an integer'),
    (("nodes",), {}, '"nodes" must be a list'),
    (("extra",), 1, "unknown top-level keys"),
    (("nodes", 2), [], "node entry 2: must be a JSON object"),
    (("nodes", 1, "id"), 0, "node 0: duplicate id"),
    (("nodes", 1, "id"), "1", '"id" must be an integer'),
    (("nodes", 3, "op"), "os.system", "unknown op 'os.system'"),
    (("nodes", 3, "op"), "exp", "takes 1 inputs, got 2"),
    (("nodes", 3, "inputs"), [0, 9], "input 9 is not the id of an earlier node"),
    (("nodes", 3, "inputs"), [0, 3], "input 3 is not the id of an earlier node"),
    (("nodes", 3, "inputs"), [0], "takes 2 inputs, got 1"),
    (("nodes", 3, "name"), "x", "duplicate name"),
    (("nodes", 3, "name"), "", "non-empty string"),
    (("nodes", 3, "shape"), [None, 4], "stored shape [null, 4] but the op gives [null, 3]"),
    (("nodes", 3, "dtype"), "float32", "stored dtype float32 but the op gives float64"),
    (("nodes", 3, "dtype"), "object", "unsupported dtype 'object'"),
    (("nodes", 3, "attrs"), {"axis": 0}, "the op rejects its inputs or attrs"),
    (("nodes", 5, "attrs"), {"axis": [0]}, "missing attrs ['keepdims']"),
    (("nodes", 3, "derivative"), -1, "non-negative"),
    (("nodes", 3, "site"), 5, '"site" must be a string'),
    (("nodes", 3, "colour"), "red", "unknown keys ['colour']"),
    (("nodes", 3, "value"), None, '"value" is required for variables and constants, and only'),
    (("nodes", 0, "shape"), [2 ** 41], "bad size"),
    (("nodes", 0, "shape"), [2 ** 30, 2 ** 30], "more than"),
    (("nodes", 0, "shape"), [1] * 33, "at most 32"),
    (("nodes", 0, "inputs"), [0], "input 0 is not the id of an earlier node"),
    (("nodes", 1, "value", "data"), "AAAA", "cannot hold 48 bytes"),
    (("nodes", 1, "value", "data"), "!" * 64, "not valid base64"),
    (("nodes", 1, "value", "shape"), [3, 3], "cannot hold 72 bytes"),
    (("nodes", 1, "value", "dtype"), "O", "unsupported dtype 'O'"),
    (("nodes", 1, "value", "pickle"), "x", 'exactly "dtype", "shape" and "data"'),
    (("nodes", 1, "shape"), [2, 3], "stored shape [2, 3] but the op gives [3, 2]"),
    (("nodes", 1, "attrs"), {"weak": True}, "a variable has no attrs"),
    (("nodes", 2, "attrs", "weak"), "yes", '"weak" must be true or false'),
    (("nodes", 5, "attrs", "axis"), {"$eval": "1"}, "unknown attr tag '$eval'"),
    (("nodes", 5, "attrs", "axis"), [7], "out of bounds"),
]


@pytest.mark.parametrize("path,value,reason", BAD, ids=[str(b[0]) + str(b[1])[:12] for b in BAD])
def test_corruptions_are_format_errors_with_the_reason(path, value, reason):
    with pytest.raises(gc.GraphFormatError) as info:
        gc.from_json(corrupt(path, value))
    assert reason in str(info.value)


def test_more_corruptions():
    ok = gc.to_json(example_graph()[0])
    for text, reason in [
        ("", "not valid JSON"), ("[]", "top level must be a JSON object"),
        (ok.replace('"shape": [null, 3]', '"shape": [NaN, 3]', 1), "NaN is not valid JSON"),
        (ok.replace('"op": "placeholder"', '"op": "placeholder", "op": "x"', 1), "duplicate keys"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        ('{"format": "graphc", "version": 1' + "9" * 5000 + "}", "not valid JSON"),
        (json.dumps({"format": "graphc", "version": 1, "nodes": [
            {"id": 0, "op": "placeholder", "inputs": [], "shape": [2]},
            {"id": 1, "op": "cast", "inputs": [0], "attrs": {"dtype": "object"}}]}),
         "node 1 \\(cast\\): the op rejects its inputs or attrs: cast: cannot cast to object"),
    ]:
        with pytest.raises(gc.GraphFormatError, match=reason):
            gc.from_json(text)
    with pytest.raises(gc.GraphFormatError, match="bool data must be bytes 0 and 1"):
        json_format.decode_array({"dtype": "bool", "shape": [1], "data": "Ag=="})
    with pytest.raises(gc.GraphFormatError, match="takes str or bytes"):
        gc.from_json(None)


def test_loading_never_runs_code(tmp_path, monkeypatch):
    """Nothing from the file reaches eval/exec/pickle: sabotage them and load a full graph."""
    import builtins
    import pickle

    g, x, W, loss = example_graph()
    gc.gradients(loss, [W])
    text = gc.to_json(g)

    def forbidden(*args, **kwargs):
        raise AssertionError("code execution while loading")
    for module, name in [(builtins, "eval"), (builtins, "exec"), (pickle, "loads"),
                         (np, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    assert gc.to_json(gc.from_json(text)) == text


def test_schema_is_valid_and_the_documented_example_loads():
    schema = json_format.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                        "format.md")
    with open(docs, encoding="utf-8") as f:
        example = f.read().split("```json\n", 1)[1].split("```", 1)[0]
    jsonschema.Draft202012Validator(schema).validate(json.loads(example))
    g = gc.from_json(example)
    assert g["loss"].eval({"x": np.ones((2, 3))}) == 6.0
    assert g["loss"].site == "train.py:14"


def test_save_gives_ordinary_permissions_and_names_a_missing_folder(tmp_path):
    import os
    import stat

    g = gc.Graph()
    g.variable("w", np.ones(2))
    target = tmp_path / "g.json"
    gc.save(g, target)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask
    os.chmod(target, 0o640)
    gc.save(g, target)  # replacing a file keeps its permissions
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    with pytest.raises(gc.GraphcError, match="does not exist"):
        gc.save(g, tmp_path / "missing" / "g.json")


# -- regressions ---------------------------------------------------------------------------------
def test_an_attr_cannot_fill_an_input_of_the_op():
    """bind() let {"op": "relu", "inputs": [], "attrs": {"x": <array>}} load: relu of nothing."""
    array = {"$array": json_format.encode_array(np.ones(3))}
    for nodes in ([{"id": 0, "op": "relu", "inputs": [], "attrs": {"x": array}}],
                  [{"id": 0, "op": "placeholder", "inputs": [], "shape": [3]},
                   {"id": 1, "op": "matmul", "inputs": [0], "attrs": {"b": array}}]):
        text = json.dumps({"format": "graphc", "version": 1, "nodes": nodes})
        with pytest.raises(gc.GraphFormatError, match=r"unknown attrs \['[xb]'\]"):
            gc.from_json(text)


def test_numpy_scalar_attrs_keep_their_type_even_when_not_finite():
    """np.float64 subclasses float: it was written as a bare number, or as the unreadable
    {"$float": "np.float64(nan)"}."""
    for value in [np.float64(1.5), np.float64("nan"), np.float64("-inf")]:
        back = json_format.decode_attr(json.loads(json.dumps(json_format.encode_attr(value))))
        assert type(back) is np.float64 and same_bits(back, value)


def test_attr_order_does_not_change_the_bytes():
    g = gc.Graph()
    x = g.placeholder("x", (2, 3))
    apply("reduced_size", [x], {"axis": (1,), "dtype": np.dtype("float64")}, name="r")
    doc = json.loads(gc.to_json(g))
    doc["nodes"][1]["attrs"] = dict(reversed(list(doc["nodes"][1]["attrs"].items())))
    assert gc.to_json(gc.from_json(json.dumps(doc))) == gc.to_json(g)


def test_a_site_from_an_undecodable_file_name_saves_and_round_trips(tmp_path):
    """A surrogate-escaped site made save fail with UnicodeEncodeError."""
    g = gc.Graph()
    g._add("placeholder", (), {}, (3,), "float64", "x", site="/tmp/\udcffbad.py:3")
    gc.save(g, tmp_path / "g.json")
    (tmp_path / "g.json").read_bytes().decode("utf-8")  # valid UTF-8
    assert gc.load(tmp_path / "g.json")["x"].site == \
        json_format.portable_site("/tmp/\udcffbad.py:3")


def test_save_leaves_the_umask_alone_and_writes_through_a_symlink(tmp_path, monkeypatch):
    """Reading the umask by setting it raced with other threads creating files; and os.replace
    on a symlink replaced the link instead of updating its target."""
    g, *_ = example_graph()
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)

    def forbidden(mask):
        raise AssertionError("os.umask called")
    monkeypatch.setattr(os, "umask", forbidden)
    gc.save(g, link)
    gc.save(g, tmp_path / "new.json")
    assert link.is_symlink() and target.read_text() == gc.to_json(g) + "\n"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "new.json", "real.json"]
