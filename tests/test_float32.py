"""float32 is honoured: a float32 model, its gradients and its Hessians compute in float32
(no float64 term anywhere), ``f.stats["upcasts"]`` names the terms where a user's own float64
value widens float32, and ``g.run`` agrees with the compiled function."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.compiler.codegen import fill_where_not

F32 = np.dtype(np.float32)
SIZES, BATCH, DECAY = (12, 9, 7, 4), 6, 1e-4


def _wider_floats(nodes) -> list:
    """Nodes whose dtype is a float other than float32 (weak Python scalars aside)."""
    return [n for n in nodes if n.dtype.kind in "fc" and n.dtype != F32
            and not (n.op == "constant" and n.attrs["weak"])]


def _mlp():
    """benchmarks/bench_mlp.py's model in small: ReLU MLP, softmax cross-entropy, L2 decay."""
    rng = np.random.default_rng(0)
    g = gc.Graph()
    x = g.placeholder("x", (BATCH, SIZES[0]), "float32")
    y = g.placeholder("y", (BATCH,), "int64")
    ws = []
    for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        ws.append(g.variable(f"W{k}", rng.standard_normal((n_in, n_out)).astype(F32)))
        ws.append(g.variable(f"b{k}", rng.standard_normal(n_out).astype(F32)))
    h = x
    for k in range(3):
        h = h @ ws[2 * k] + ws[2 * k + 1]
        if k < 2:
            h = gc.relu(h)
    decay = gc.sum(ws[0] * ws[0]) + gc.sum(ws[2] * ws[2]) + gc.sum(ws[4] * ws[4])
    loss = gc.mean(gc.softmax_cross_entropy(h, y)) + DECAY * decay
    return g, x, y, ws, loss


def _mlp_by_hand(X, Y, W0, b0, W1, b1, W2, b2):
    """The same loss and gradients written in NumPy, in float64 (the oracle)."""
    X, W0, b0, W1, b1, W2, b2 = (np.asarray(v, np.float64) for v in (X, W0, b0, W1, b1, W2, b2))
    z1 = X @ W0 + b0
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W1 + b1
    h2 = np.maximum(z2, 0)
    z3 = h2 @ W2 + b2
    shifted = z3 - z3.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(Y))
    loss = -log_p[rows, Y].mean() + DECAY * sum(np.sum(W * W) for W in (W0, W1, W2))
    d3 = np.exp(log_p)
    d3[rows, Y] -= 1
    d3 /= len(Y)
    d2 = (d3 @ W2.T) * (z2 > 0)
    d1 = (d2 @ W1.T) * (z1 > 0)
    return [loss, X.T @ d1 + 2 * DECAY * W0, d1.sum(0), h1.T @ d2 + 2 * DECAY * W1, d2.sum(0),
            h2.T @ d3 + 2 * DECAY * W2, d3.sum(0)]


def test_float32_mlp_and_its_gradients_have_no_float64_term():
    g, x, y, ws, loss = _mlp()
    grads = gc.gradients(loss, ws)
    assert _wider_floats(g.nodes) == []
    f = gc.function([x, y], [loss] + grads)
    assert f.stats["upcasts"] == []
    rng = np.random.default_rng(1)
    X = rng.standard_normal((BATCH, SIZES[0])).astype(F32)
    Y = rng.integers(0, SIZES[-1], BATCH)
    compiled = f(X, Y)
    ran = g.run([loss] + grads, {x: X, y: Y})
    expected = _mlp_by_hand(X, Y, *(w.value for w in ws))
    for ours, other, oracle in zip(compiled, ran, expected):
        assert np.asarray(ours).dtype == F32 and np.asarray(other).dtype == F32
        np.testing.assert_allclose(ours, other, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ours, oracle, rtol=2e-4, atol=2e-5)


def test_float32_training_step_with_an_optimizer_stays_float32():
    g, x, y, ws, loss = _mlp()
    step = gc.function([x, y], loss, updates=gc.optimizers.adam(loss, ws, lr=1e-3))
    assert step.stats["upcasts"] == []
    # Adam's bias corrections 1 - beta ** t are scalars of the int64 step count, computed in
    # float64 and cast to float32 (as PyTorch does): no float32 value is ever widened
    assert [n for n in _wider_floats(g.nodes) if n.shape != ()] == []
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((BATCH, SIZES[0])).astype(F32), rng.integers(0, 4, BATCH)
    first = step(X, Y)
    for _ in range(20):
        last = step(X, Y)
    assert np.asarray(last).dtype == F32 and last < first
    assert all(v.value.dtype == F32 for v in g.variables if v.dtype.kind == "f")


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_float32_hessian_has_no_float64_term(mode):
    n = 6
    A = (np.random.default_rng(n).standard_normal((n, n)) / np.sqrt(n)).astype(F32)
    g = gc.Graph()
    x = g.placeholder("x", (n,), "float32")
    z = gc.sum(gc.tanh(g.constant(A) @ x)) + 0.5 * gc.sum(x * x)
    H = gc.hessian(z, x) if mode == "rev" else gc.jacobian(gc.grad(z, x), x, mode="fwd")
    f = gc.function([x], H)
    assert f.stats["upcasts"] == [] and _wider_floats(g.nodes) == []
    X = np.linspace(-1, 1, n).astype(F32)
    t = np.tanh(A.astype(np.float64) @ X)
    closed_form = A.T.astype(np.float64) @ ((-2 * t * (1 - t * t))[:, None] * A) + np.eye(n)
    value = f(X)
    assert value.dtype == F32
    np.testing.assert_allclose(value, closed_form, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, g.run(H, {x: X}), rtol=1e-6, atol=1e-7)


def test_a_float64_array_the_user_adds_is_reported_as_an_upcast():
    g = gc.Graph()
    x = g.placeholder("x", (3,), "float32")
    widened = x + np.array([1.0, 2.0, 3.0])  # a strong float64 array: NumPy widens x
    out = gc.sum(gc.tanh(widened))
    f = gc.function([x], [out, gc.grad(out, x)])
    assert f.stats["upcasts"] == [{"op": "add", "node": widened.name, "site": widened.site,
                                   "dtype": "float64", "from": "float32"}]
    assert "test_float32.py" in widened.site
    X = np.array([0.5, -1.0, 2.0], F32)
    value, grad = f(X)
    assert value.dtype == np.float64 and grad.dtype == F32  # a gradient has its input's dtype
    expected = np.tanh(X.astype(np.float64) + [1.0, 2.0, 3.0])
    np.testing.assert_allclose(value, expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, 1 - expected ** 2, rtol=1e-6)
    np.testing.assert_array_equal(g.run(out, {x: X}), value)


def test_which_values_widen_float32():
    g = gc.Graph()
    x = g.placeholder("x", (2,), "float32")

    def reported(node):
        return [(u["op"], u["from"], u["dtype"]) for u in gc.function([x], node).stats["upcasts"]]

    assert reported(x * 2.5 + 1) == []  # Python numbers are weak
    assert reported(x * np.float32(2.5)) == []
    assert reported(x * np.float64(2.5)) == [("mul", "float32", "float64")]  # strong scalar
    assert reported(x.astype("float64")) == [("cast", "float32", "float64")]
    assert reported(gc.exp(x.astype("float16"))) == []  # narrowing is not an upcast
    assert reported(x + np.ones(2, np.int64)) == [("add", "float32", "float64")]  # NumPy's rule
    assert reported(x * np.ones(2, np.complex128)) == [("mul", "float32", "complex128")]
    assert reported(x * np.ones(2, np.complex64)) == []  # complex64 is float32's precision


def test_mean_and_softmax_of_float32_keep_float32_constants():
    """The derivative constants (mean's 1/n, the seed) are made in the graph's dtype."""
    g = gc.Graph()
    x = g.placeholder("x", (5, 3), "float32")
    loss = gc.mean(gc.log_softmax(x, axis=-1) * gc.sigmoid(x))
    grad = gc.grad(loss, x)
    assert grad.dtype == F32 and _wider_floats(g.nodes) == []
    X = np.random.default_rng(3).standard_normal((5, 3)).astype(F32)
    numeric = gc.check_gradients(loss, [x], {x: X})
    assert numeric < 1e-3


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int8", "bool"])
def test_masked_fill_is_where_bit_for_bit(dtype):
    """relu's gradient where(c, g, 0), written in g's dying buffer: the same bits as
    np.where, inf, NaN and -0.0 included; a -0.0 fill takes the masked-copy path."""
    rng = np.random.default_rng(4)
    base = np.array([1.5, -0.0, np.inf, -np.inf, np.nan, -2.0, 0.0, 3.0] * 6).reshape(6, 8)
    with np.errstate(invalid="ignore"):
        x = base.astype(dtype)
    for c in (rng.random((6, 8)) > 0.5, rng.random(8) > 0.5, np.zeros(8, bool)):
        for zero in (0, 0.0, -0.0, False):
            expected = np.where(c, x, np.asarray(zero, x.dtype))
            got = fill_where_not(c, x.copy(), zero)
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


def test_relu_gradient_in_a_compiled_function_matches_run_bit_for_bit():
    g = gc.Graph()
    x = g.placeholder("x", (4, 3), "float32")
    w = g.placeholder("w", (3, 3), "float32")
    dw = gc.grad(gc.sum(gc.relu(x @ w) * x[:, :1]), w)
    f = gc.function([x, w], dw)
    assert "_fill_where_not" in f.source
    X = np.array([[1, -2, 0.5], [np.inf, 0, -1], [-0.0, 2, 3], [1, 1, -1]], F32)
    W = np.array([[1, -1, np.nan], [0.5, 2, -3], [-1, np.inf, 1]], F32)
    with np.errstate(all="ignore"):
        assert f(X, W).tobytes() == g.run(dw, {x: X, w: W}).tobytes()


def test_large_constant_expressions_of_a_hessian_fold_at_compile_time():
    """The Hessian's seed terms (I @ A.T, scaled) are constant: above FOLD_MAX_SIZE they
    fold too when no larger than an input constant, so each call computes only the terms
    that depend on x (gradients builds no I + I: equal contributions are added once);
    values as g.run's."""
    from graphc.compiler.passes import FOLD_MAX_SIZE
    n = 70
    assert n * n > FOLD_MAX_SIZE
    A = np.random.default_rng(n).standard_normal((n, n)) / np.sqrt(n)
    g = gc.Graph()
    x = g.placeholder("x", (n,))
    z = gc.sum(gc.tanh(g.constant(A) @ x)) + 0.5 * gc.sum(x * x)
    H = gc.hessian(z, x)
    f = gc.function([x], H)
    assert f.stats["ops"]["matmul"] == 2  # A x, and the one product with A
    assert f.stats["rules"].get("fold:matmul") and f.stats["ops"]["add"] == 1  # + I
    assert "transpose" not in f.stats["ops"]
    X = np.linspace(-1, 1, n)
    t = np.tanh(A @ X)
    np.testing.assert_allclose(f(X), A.T @ ((-2 * t * (1 - t * t))[:, None] * A) + np.eye(n),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f(X), g.run(H, {x: X}), rtol=1e-13, atol=1e-15)


def test_a_float32_graph_loaded_from_json_stays_float32():
    """Weak Python-number constants stay weak through the file format: the loaded MLP and
    its gradients compute in float32 as the original does, with the same values."""
    g, x, y, ws, loss = _mlp()
    grads = gc.gradients(loss, ws)
    loaded = gc.from_json(gc.to_json(g))
    outs = [loaded[n.name] for n in [loss] + grads]
    assert _wider_floats(loaded.nodes) == []
    f = gc.function([loaded["x"], loaded["y"]], outs)
    assert f.stats["upcasts"] == []
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((BATCH, SIZES[0])).astype(F32), rng.integers(0, 4, BATCH)
    for a, b in zip(f(X, Y), gc.function([x, y], [loss] + grads)(X, Y)):
        assert a.dtype == F32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_relu_kernel_is_numpy_maximum_bit_for_bit(dtype):
    """relu's kernel takes the maximum against a row of zeros (NumPy's fast loop): the same
    bits as np.maximum(x, 0), NaN, inf and -0.0 included, in place too."""
    from graphc.ops.nn import _relu
    x = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, -1.0, 2.0, 1e-40] * 6, dtype).reshape(6, 8)
    expected = np.maximum(x, 0).tobytes()
    assert _relu(x).tobytes() == expected
    y = x.copy()
    assert _relu(y, out=y) is y and y.tobytes() == expected
    assert _relu(x[0, 2]).tobytes() == np.maximum(x[0, 2], 0).tobytes()  # a NumPy scalar
