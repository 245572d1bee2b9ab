"""gc.to_onnx: models that onnx.checker accepts and onnxruntime runs to gc.function's values.

Every op of the registry is exported through its own test cases (known and unknown sizes,
float32 too), forward, through its gradient graph (which brings in sum_to, broadcast_like,
getitem_grad, concat_take, ...) and its Hessian graph; then the examples' models.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import graphc as gc
from graphc.graph import apply
from graphc.ops.registry import REGISTRY
from graphc.runtime import needed_nodes

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from graphc.io import onnx_export  # noqa: E402

LEAVES = {"placeholder", "variable", "constant"}
CASES = [(name, k) for name, op in sorted(REGISTRY.items()) if name not in LEAVES
         for k in range(len(op.cases))]


def run_onnx(model, feed: dict) -> list:
    """Check the model strictly, then run it with onnxruntime (inputs by name)."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.asarray(v) for k, v in feed.items()})


def untranslated(inputs, outputs) -> set:
    """The ops without an ONNX translation among those computing outputs from inputs."""
    fed = {n.id: n for n in inputs}
    needed = needed_nodes(outputs[0].graph, list(outputs), fed)
    return {n.op for n in needed if n.id not in fed} - LEAVES - set(onnx_export.RULES)


def export_or_name_the_missing_op(inputs, outputs):
    """The model, or None after checking that to_onnx names an op it cannot translate."""
    missing = untranslated(inputs, outputs)
    if not missing:
        return gc.to_onnx(inputs, outputs)
    ops = "|".join(sorted(missing))
    with pytest.raises(gc.GraphcError, match=rf"no translation for the op '({ops})' of "):
        gc.to_onnx(inputs, outputs)
    return None


def assert_same(got: list, want: list, rtol: float) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        b = np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        # relative to the largest entry (at least 1: an all-zero Hessian is rounding noise)
        scale = max(np.max(np.abs(b), initial=0.0), 1.0) if b.dtype.kind in "fc" else 0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def case_arrays(name, k):
    case = REGISTRY[name].cases[k]
    rng = np.random.default_rng(zlib.crc32(repr((name, k)).encode()))
    return case, [rng.uniform(case.low, case.high, size=item) if isinstance(item, tuple)
                  else np.asarray(item) for item in case.inputs]


def float_wrt(name, k) -> list:
    case, arrays = case_arrays(name, k)
    return list(case.wrt) if case.wrt is not None else \
        [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]


@pytest.mark.parametrize("unknown,dtype", [(False, "float64"), (True, "float64"),
                                           (False, "float32")],
                         ids=["known", "none_sizes", "float32"])
@pytest.mark.parametrize("name,k", CASES)
def test_every_op_exports_forward_and_gradient(name, k, unknown, dtype):
    case, arrays = case_arrays(name, k)
    arrays = [a.astype(dtype) if a.dtype == np.float64 else a for a in arrays]
    g = gc.Graph()
    inputs = [g.placeholder(f"in{i}", (None,) * a.ndim if unknown else a.shape, a.dtype)
              for i, a in enumerate(arrays)]
    try:
        node = apply(name, inputs, case.attrs)
    except gc.DTypeError:
        if dtype == "float64":
            raise
        pytest.skip("the case's attrs take float64 inputs (a composite's body)")
    feed = {f"in{i}": a for i, a in enumerate(arrays)}
    outputs = [node]
    if name not in onnx_export.RULES:  # an op without a translation says so, naming itself
        with pytest.raises(gc.GraphcError, match=rf"no translation for the op '{name}' of "
                                                 rf"{name} node '{node.name}' \(built at "):
            gc.to_onnx(inputs, node)
        return
    wrt = float_wrt(name, k)
    if REGISTRY[name].differentiable and wrt and node.dtype.kind == "f":
        want_value = gc.function(inputs, node)(*arrays)
        u = g.placeholder("u", (None,) * node.ndim if unknown else node.shape, node.dtype)
        feed["u"] = np.random.default_rng(7).uniform(-1, 1, np.shape(want_value)).astype(
            node.dtype)
        outputs += gc.gradients(gc.sum(node * u), [inputs[i] for i in wrt])
        inputs.append(u)
    model = export_or_name_the_missing_op(inputs, outputs)  # a gradient may need another op
    if model is None:
        return
    want = gc.function(inputs, outputs)(*feed.values())
    assert_same(run_onnx(model, feed), want, rtol=1e-12 if dtype == "float64" else 1e-6)


SECOND_ORDER = [(name, k) for name, k in CASES
                if REGISTRY[name].differentiable and float_wrt(name, k)]


@pytest.mark.parametrize("unknown", [False, True], ids=["known", "none_sizes"])
@pytest.mark.parametrize("name,k", SECOND_ORDER)
def test_every_op_exports_its_hessian_graph(name, k, unknown):
    """The Jacobian of a gradient: a batch of cotangents through every rule, twice."""
    case, arrays = case_arrays(name, k)
    g = gc.Graph()
    inputs = [g.placeholder(f"in{i}", (None,) * a.ndim if unknown else a.shape, a.dtype)
              for i, a in enumerate(arrays)]
    node = apply(name, inputs, case.attrs)
    x = inputs[float_wrt(name, k)[0]]
    outputs = [gc.jacobian(gc.grad(gc.sum(gc.tanh(node)), x), x)]
    model = export_or_name_the_missing_op(inputs, outputs)
    if model is None:
        return
    feed = {f"in{i}": a for i, a in enumerate(arrays)}
    assert_same(run_onnx(model, feed), gc.function(inputs, outputs)(*arrays), rtol=1e-10)


def test_translations_cover_the_ops_of_the_examples_and_of_gradients():
    assert set(onnx_export.RULES) <= set(REGISTRY)
    # Every op of the first round (the examples' models, and every op a bprop emits) has one;
    # an op added later without a translation raises the error tested above.
    covered = {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "sqrt",
               "square", "sin", "cos", "tanh", "abs", "sign", "maximum", "minimum", "clip",
               "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
               "logical_not", "logical_and", "logical_or", "where", "relu", "sigmoid",
               "softplus", "softmax", "log_softmax", "logsumexp", "softmax_cross_entropy",
               "sigmoid_cross_entropy", "one_hot", "one_hot_like", "sum", "mean", "max", "min",
               "argmax", "argmin", "reduced_size", "reshape", "reshape_like", "transpose",
               "expand_dims", "squeeze", "broadcast_to", "broadcast_like", "sum_to",
               "concatenate", "stack", "concat_take", "concat_put", "getitem", "getitem_grad",
               "matmul", "cast", "stop_gradient", "zeros_like", "ones_like", "eye_like"}
    assert not covered - set(onnx_export.RULES)


# -- the examples' models ---------------------------------------------------------------------
def quickstart(dtype):
    rng = np.random.default_rng(0)
    g = gc.Graph()
    x = g.placeholder("x", shape=(None, 3), dtype=dtype)
    t = g.placeholder("t", shape=(None,), dtype=dtype)
    W = g.variable("W", rng.standard_normal(3), dtype=dtype)
    b = g.variable("b", 0.0, dtype=dtype)
    loss = gc.mean((gc.tanh(x @ W + b) - t) ** 2) + 1e-4 * gc.sum(W * W)
    gW, gb = gc.gradients(loss, [W, b])
    H = gc.hessian(loss, W)
    X = rng.standard_normal((8, 3)).astype(dtype)
    return [x, t], [loss, gW, gb, H], [X, np.sin(X.sum(axis=1))]


def mlp(dtype):
    rng = np.random.default_rng(1)
    g = gc.Graph()
    X = g.placeholder("X", shape=(None, 64), dtype=dtype)
    y = g.placeholder("y", shape=(None,), dtype="int64")
    W1 = g.variable("W1", rng.normal(0.0, np.sqrt(2 / 64), (64, 32)), dtype=dtype)
    b1 = g.variable("b1", np.zeros(32), dtype=dtype)
    W2 = g.variable("W2", rng.normal(0.0, np.sqrt(2 / 32), (32, 10)), dtype=dtype)
    U2 = gc.relu(X @ W1 + b1) @ W2
    J = gc.mean(gc.softmax_cross_entropy(U2, y)) + 1e-4 * (gc.sum(gc.square(W1))
                                                           + gc.sum(gc.square(W2)))
    probabilities = gc.softmax(U2)
    return [X, y], [J, probabilities, gc.argmax(U2, axis=1), *gc.gradients(J, [W1, b1, W2])], \
        [rng.uniform(0, 16, (50, 64)).astype(dtype), rng.integers(0, 10, 50)]


def logistic(dtype):
    rng = np.random.default_rng(2)
    g = gc.Graph()
    X = g.placeholder("X", shape=(None, 5), dtype=dtype)
    y = g.placeholder("y", shape=(None,), dtype=dtype)
    w = g.variable("w", rng.standard_normal(5), dtype=dtype)
    b = g.variable("b", 0.1, dtype=dtype)
    loss = gc.mean(gc.sigmoid_cross_entropy(X @ w + b, y)) + 1e-3 / 2 * gc.sum(w * w)
    return [X, y], [loss, *gc.gradients(loss, [w, b]), gc.hessian(loss, w)], \
        [rng.standard_normal((40, 5)).astype(dtype), (rng.random(40) < 0.5).astype(dtype)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model", [quickstart, mlp, logistic])
def test_the_examples_models_run_alike_in_onnxruntime(model, dtype, tmp_path):
    inputs, outputs, values = model(dtype)
    path = tmp_path / f"{model.__name__}.onnx"
    proto = gc.to_onnx(inputs, outputs, path)
    assert proto.opset_import[0].version >= 17
    assert onnx.load(path) == proto
    got = run_onnx(proto, {n.name: v for n, v in zip(inputs, values)})
    assert_same(got, gc.function(inputs, outputs)(*values), rtol=1e-6)
    assert [o.name for o in proto.graph.output[:1]] == [outputs[0].name]


def test_inputs_have_symbolic_sizes_and_variables_are_initializers():
    inputs, outputs, values = logistic("float64")
    X, y = inputs
    w = X.graph["w"]
    model = gc.to_onnx(inputs, outputs[:2])
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "X_0" and dims[1].dim_value == 5
    stored = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    np.testing.assert_array_equal(stored["w"], w.value)
    assert [i.name for i in model.graph.input] == ["X", "y"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    f = gc.function(inputs, outputs[:2])
    for n in (1, 7, 40):  # one model for every batch size
        got = session.run(None, {"X": values[0][:n], "y": values[1][:n]})
        assert_same(got, f(values[0][:n], values[1][:n]), rtol=1e-12)


def test_weak_scalars_keep_float32_and_int_ops_promote_like_numpy():
    g = gc.Graph()
    x = g.placeholder("x", (4,), "float32")
    i = g.placeholder("i", (4,), "int32")
    outputs = [x * 2.5 + 1, i / 2, i + x, gc.sum(i), gc.mean(i), i < 1.5, gc.equal(i, 2),
               gc.exp(i), gc.where(i > 0, x, 7), gc.cast(x, "int64"), gc.one_hot(i, 3)]
    values = [np.array([0.5, -1.25, 3.0, 1e-8], np.float32), np.array([-1, 0, 2, 5], np.int32)]
    got = run_onnx(gc.to_onnx([x, i], outputs), {"x": values[0], "i": values[1]})
    assert_same(got, gc.function([x, i], outputs)(*values), rtol=1e-6)
    assert got[0].dtype == np.float32


def test_accurate_log1p_and_stable_softmax_family_at_the_extremes():
    g = gc.Graph()
    x = g.placeholder("x", (5,))
    outputs = [gc.log1p(x * 1e-12), gc.softplus(x * 1e4), gc.sigmoid_cross_entropy(x * 1e4, 1.0),
               gc.logsumexp(x * 1e4), gc.log_softmax(x * 1e4), gc.softmax(x * 1e4),
               gc.sigmoid(x * 1e4), gc.grad(gc.sum(gc.softplus(x * 1e4)), x)]
    value = np.array([-1.5, -0.2, 0.0, 0.7, 2.0])
    got = run_onnx(gc.to_onnx([x], outputs), {"x": value})
    assert_same(got, gc.function([x], outputs)(value), rtol=1e-12)
    assert all(np.isfinite(v).all() for v in got)


def test_an_op_without_translation_names_the_op_and_the_node(monkeypatch):
    monkeypatch.delitem(onnx_export.RULES, "sin")
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    y = gc.sin(x, name="wave")
    with pytest.raises(gc.GraphcError, match=r"op 'sin' of sin node 'wave' \(built at .*\.py:\d+"):
        gc.to_onnx([x], [gc.exp(y)])


def test_bad_arguments():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    t = g.placeholder("t", (3,))
    with pytest.raises(gc.MissingFeedError, match="'t'"):
        gc.to_onnx([x], [x * t])
    with pytest.raises(gc.GraphcError, match="another graph"):
        gc.to_onnx([x], [gc.Graph().placeholder("z", ())])


def test_outputs_by_name_and_an_input_as_an_output():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    model = gc.to_onnx(x, {"same": x, "twice": 2 * x, "again": x})
    assert [o.name for o in model.graph.output] == ["same", "twice", "again"]
    got = run_onnx(model, {"x": np.array([1.0, -2.0])})
    assert_same(got, [np.array([1.0, -2.0]), np.array([2.0, -4.0]), np.array([1.0, -2.0])], 0)
