"""Memory plans of functions whose inputs have None sizes: made at the first call for the
call's shapes (a shape specialisation), cached per shapes, capped."""
import os
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import graphc as gc
from graphc.compiler import arena, specialize
from test_compiler import measured_peak
from test_io_json import same_bits as one_same_bits

SIZES = (20, 16, 8, 4)


def mlp(batch, dtype="float64"):
    """A small MLP step (loss and the six gradients) with batch size ``batch``."""
    g = gc.Graph()
    x = g.placeholder("x", (batch, SIZES[0]), dtype)
    y = g.placeholder("y", (batch,), "int64")
    rng = np.random.default_rng(0)
    ws = []
    for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        ws.append(g.variable(f"W{k}", rng.standard_normal((n_in, n_out)).astype(dtype)))
        ws.append(g.variable(f"b{k}", rng.standard_normal(n_out).astype(dtype)))
    h = x
    for k in range(3):
        h = h @ ws[2 * k] + ws[2 * k + 1]
        if k < 2:
            h = gc.relu(h)
    # (the decay summed in two steps: one sum over all axes would be sum_of_products' BLAS
    # dot, which rounds otherwise than g.run's pairwise sum, and the tests compare bits)
    decay = gc.sum(gc.sum(ws[0] * ws[0], axis=0))
    loss = gc.mean(gc.softmax_cross_entropy(h, y)) + 1e-3 * decay
    return g, x, y, [loss] + gc.gradients(loss, ws)


def batch(n, seed=1, dtype="float64"):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], n)


def same_bits(a, b):
    """Lists of values with the same dtypes, shapes and bytes (NaN, inf, -0.0 included)."""
    return len(a) == len(b) and all(map(one_same_bits, a, b))


def test_plan_is_made_at_the_first_call():
    g, x, y, outs = mlp(None)
    f = gc.function([x, y], outs)
    assert f.stats["planned_peak_bytes"] is None
    assert f.stats["memory_plan"] == "generic: before the first call"
    assert f.stats["specializations"] == 0
    assert "x.ndim != 2" in f.source  # the generic program checks the known sizes only
    X, Y = batch(32)
    f(X, Y)
    assert f.stats["memory_plan"] == "specialized"
    assert f.stats["specialized_shapes"] == {"x": (32, 20), "y": (32,)}
    assert f.stats["specializations"] == 1
    assert f.stats["seconds"]["specialize"] > 0
    assert "x.shape != (32, 20)" in f.source
    # the plan of a function compiled for batch 32, but for mean's gradient: with a None
    # batch it broadcasts 1/N to a batch-sized column (8 bytes a row) at run time
    g32, x32, y32, outs32 = mlp(32)
    fixed = gc.function([x32, y32], outs32).stats
    assert fixed["planned_peak_bytes"] <= f.stats["planned_peak_bytes"] \
        <= fixed["planned_peak_bytes"] + 32 * 8 + 64
    assert f.stats["reused_buffers"] == fixed["reused_buffers"]
    assert "planned peak" in repr(f)


def test_static_shapes_have_a_static_plan():
    g, x, y, outs = mlp(32)
    f = gc.function([x, y], outs)
    assert f.stats["memory_plan"] == "static" and f.stats["specializations"] == 0
    assert f.stats["planned_peak_bytes"] is not None


def test_batched_mlp_reuses_buffers_with_the_values_of_the_generic_program_and_g_run(
        monkeypatch):
    monkeypatch.setattr(arena, "MAX_BYTES", 0)  # a call allocates the plan (no kept buffers)
    g, x, y, outs = mlp(None)
    f = gc.function([x, y], outs)
    monkeypatch.setattr(specialize, "MAX_SPECIALIZATIONS", 0)
    generic = gc.function([x, y], outs)  # no specialisation: the generic program runs
    X, Y = batch(512)  # batch-sized buffers dominate the peak (not Python's small objects)
    ours, theirs = f(X, Y), generic(X, Y)
    assert generic.stats["memory_plan"].startswith("generic: cache full")
    assert generic.stats["planned_peak_bytes"] is None
    assert f.stats["reused_buffers"] > generic.stats["reused_buffers"]
    assert "out=" in f.source and "_fill_where_not" in f.source  # batch-sized buffers reused
    assert same_bits(ours, theirs)
    assert same_bits(ours, g.run(outs, {x: X, y: Y}))
    # the plan is what the call allocates (NumPy reports to tracemalloc), below the generic
    planned = f.stats["planned_peak_bytes"]
    measured = measured_peak(lambda: f(X, Y))
    assert abs(measured - planned) <= 0.05 * planned + 16384, (planned, measured)
    assert measured < measured_peak(lambda: generic(X, Y))


def test_float32_specialisation_keeps_float32():
    g, x, y, outs = mlp(None, "float32")
    f = gc.function([x, y], outs)
    X, Y = batch(16, dtype="float32")
    result = f(X, Y)
    assert all(r.dtype == np.float32 for r in result)
    assert same_bits(result, g.run(outs, {x: X, y: Y}))
    assert f.stats["reused_buffers"] > 0


def test_new_batch_size_plans_again_and_old_ones_stay_cached():
    g, x, y, outs = mlp(None)
    f = gc.function([x, y], outs)
    X32, Y32 = batch(32)
    X7, Y7 = batch(7, seed=2)
    f(X32, Y32)
    peak32, source32 = f.stats["planned_peak_bytes"], f.source
    result7 = f(X7, Y7)
    assert f.stats["specializations"] == 2
    assert f.stats["specialized_shapes"] == {"x": (7, 20), "y": (7,)}
    assert "x.shape != (7, 20)" in f.source
    assert f.stats["planned_peak_bytes"] < peak32
    assert same_bits(result7, g.run(outs, {x: X7, y: Y7}))
    assert same_bits(f(X32, Y32), g.run(outs, {x: X32, y: Y32}))
    assert f.stats["specializations"] == 2  # found again, not made again
    assert f.source == source32 and f.stats["planned_peak_bytes"] == peak32


def test_arguments_by_name_and_as_lists_go_through_the_dispatch():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    w = g.placeholder("w", (3,))
    f = gc.function([x, w], gc.sum(gc.exp(x) * w, axis=1))
    X, W = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 0.5])
    expected = np.sum(np.exp(X) * W, axis=1)
    np.testing.assert_allclose(f(w=W, x=X), expected, rtol=1e-14)
    np.testing.assert_allclose(f(X.tolist(), W), expected, rtol=1e-14)
    assert f.stats["specializations"] == 1  # the list has the array's shape
    assert f.stats["specialized_shapes"] == {"x": (2, 3)}


def _error(fn):
    with pytest.raises(gc.GraphcError) as info:
        fn()
    return type(info.value), str(info.value)


def test_errors_are_those_of_g_run():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    y = g.placeholder("y", (None, 3))
    z = gc.sum(gc.exp(x) + y)
    f = gc.function([x, y], z)
    f(np.ones((4, 3)), np.ones((4, 3)))  # a specialisation exists
    # batch sizes that do not fit together: the node that fails, as g.run names it
    bad = np.ones((5, 3)), np.ones((6, 3))
    err = _error(lambda: f(*bad))
    assert err == _error(lambda: g.run(z, {x: bad[0], y: bad[1]}))
    assert err[0] is gc.ShapeError and "'add_" in err[1]
    assert f.stats["memory_plan"] == "generic: the input shapes do not fit together"
    assert f.stats["specializations"] == 1
    calls = []  # refused shapes are remembered: not inferred again at the next call
    original = specialize.specialize
    try:
        specialize.specialize = lambda *a: calls.append(a) or original(*a)
        assert _error(lambda: f(*bad)) == err
    finally:
        specialize.specialize = original
    assert calls == []
    # a shape that does not fit the placeholder: g.run's FeedError
    wrong = np.ones((5, 4)), np.ones((5, 3))
    # (both called from one line: a FeedError names the caller's line)
    err, by_run = _error(lambda: f(*wrong)), _error(lambda: g.run(z, dict(zip((x, y), wrong))))
    assert err == by_run
    assert err[0] is gc.FeedError
    assert f.stats["memory_plan"] == "generic: an argument does not fit its input"
    assert _error(lambda: f(np.ones((5, 3))))[0] is gc.MissingFeedError
    assert _error(lambda: f(np.ones((5, 3)), np.ones((5, 3)), 1))[0] is gc.FeedError
    assert f(np.ones((4, 3)), np.zeros((4, 3))) == pytest.approx(12 * np.e)


def test_a_cached_batch_size_with_wrong_other_sizes_is_g_runs_feed_error():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    z = gc.sum(x * 2.0)
    f = gc.function(x, z)
    f(np.ones((4, 3)))  # keyed by the batch size, 4
    for bad in (np.ones((4, 5)), np.ones((4, 3, 1)), [[1.0, 2.0]] * 4, "abcd"):
        err, by_run = _error(lambda: f(bad)), _error(lambda: g.run(z, {x: bad}))  # one line
        assert err == by_run
        assert err[0] is gc.FeedError
    assert f(np.ones((4, 3))) == 24.0


def test_several_none_sizes_in_one_input():
    g = gc.Graph()
    x = g.placeholder("x", (None, None))
    v = g.placeholder("v", (None,))
    y = gc.exp(x) @ v
    f = gc.function([x, v], y)
    for n, m in ((2, 3), (3, 2), (2, 3)):
        X, V = np.linspace(-1, 1, n * m).reshape(n, m), np.linspace(0, 1, m)
        assert same_bits([f(X, V)], [g.run(y, {x: X, v: V})])
        assert f.stats["specialized_shapes"] == {"x": (n, m), "v": (m,)}
    assert f.stats["specializations"] == 2
    err = _error(lambda: f(np.ones((2, 3)), np.ones(4)))  # 3 columns, 4 weights
    assert err == _error(lambda: g.run(y, {x: np.ones((2, 3)), v: np.ones(4)}))


def test_a_kernel_error_inside_a_specialisation_names_the_node():
    g = gc.Graph()
    h = g.placeholder("h", (None, 4))
    labels = g.placeholder("labels", (None,), "int64")
    loss = gc.mean(gc.softmax_cross_entropy(h, labels))
    f = gc.function([h, labels], [loss, gc.gradients(loss, h)])
    feed = np.ones((2, 4)), np.array([0, 7])
    err = _error(lambda: f(*feed))
    assert f.stats["memory_plan"] == "specialized"
    assert err == _error(lambda: g.run(loss, {h: feed[0], labels: feed[1]}))
    assert err[0] is gc.IndexOutOfRangeError and "softmax_cross_entropy" in err[1]


def test_the_cache_is_capped_and_beyond_it_the_generic_program_runs(monkeypatch):
    monkeypatch.setattr(specialize, "MAX_SPECIALIZATIONS", 2)
    g = gc.Graph()
    x = g.placeholder("x", (None, 2))
    z = gc.exp(x) * 2.0 + x
    f = gc.function(x, z)
    values = {n: np.linspace(-1, 1, 2 * n).reshape(n, 2) for n in (1, 2, 3)}
    for n in (1, 2):
        f(values[n])
        assert f.stats["memory_plan"] == "specialized"
    result = f(values[3])
    assert f.stats["memory_plan"] == "generic: cache full (2 shape signatures)"
    assert f.stats["planned_peak_bytes"] is None and f.stats["specialized_shapes"] is None
    assert f.stats["specializations"] == 2
    assert "x.ndim != 2" in f.source
    assert same_bits([result], [g.run(z, {x: values[3]})])
    f(values[1])
    assert f.stats["memory_plan"] == "specialized"
    assert f.stats["specialized_shapes"] == {"x": (1, 2)}


def test_trust_input_and_check_numerics_carry_over_to_specialisations():
    g = gc.Graph()
    x = g.placeholder("x", (None, 2))
    y = gc.log(x) * 2.0
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    trusted = gc.function([x], y, trust_input=True)
    assert same_bits([trusted(X)], [g.run(y, {x: X})])
    assert "_feed" not in trusted.source and trusted.stats["memory_plan"] == "specialized"
    checked = gc.function([x], y, check_numerics=True)
    with pytest.raises(gc.NumericsError, match="log"):
        checked(np.array([[1.0, -1.0]]))
    assert checked.stats["memory_plan"] == "specialized"


def test_random_samples_advance_as_in_the_generic_program(monkeypatch):
    def build():
        g = gc.Graph()
        x = g.placeholder("x", (None, 4))
        y = gc.sum(gc.random.dropout(gc.tanh(x), 0.5, seed=3) * gc.random.normal(shape=x, seed=5))
        return gc.function(x, [y, gc.grad(y, x)])

    f = build()
    monkeypatch.setattr(specialize, "MAX_SPECIALIZATIONS", 0)
    generic = build()
    X = np.linspace(-1, 1, 12).reshape(3, 4)
    results = [f(X) for _ in range(3)]
    assert f.stats["memory_plan"] == "specialized"
    assert all(same_bits(r, generic(X)) for r in results)  # the same fresh samples per call
    assert not same_bits(results[0], results[1])


def test_updates_with_a_batch_dimension():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    w = g.variable("w", np.zeros(3))
    loss = gc.mean(gc.square(x @ w - 1.0))
    (gw,) = gc.gradients(loss, [w])
    step = gc.function([x], loss, updates={w: w - 0.1 * gw})
    X = np.arange(12.0).reshape(4, 3) / 10
    w_expected = np.zeros(3)
    for n in (4, 2, 4):
        step(X[:n])
        w_expected = w_expected - 0.1 * (2 / n) * X[:n].T @ (X[:n] @ w_expected - 1.0)
    np.testing.assert_allclose(w.value, w_expected, rtol=1e-12)
    assert step.stats["specializations"] == 2


def test_threads_calling_with_different_shapes():
    g, x, y, outs = mlp(None)
    f = gc.function([x, y], outs)
    feeds = [batch(n, seed=n) for n in (3, 5, 8)]
    expected = [g.run(outs, {x: X, y: Y}) for X, Y in feeds]
    failures = []

    def work(k):
        for i in range(30):
            j = (k + i) % len(feeds)
            if not same_bits(f(*feeds[j]), expected[j]):
                failures.append(j)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert f.stats["specializations"] == 3  # each shape made once


def test_specialize_refuses_shapes_a_rule_rejects():
    g = gc.Graph()
    a = g.placeholder("a", (None, 3))
    b = g.placeholder("b", (None, 3))
    from graphc.compiler.ir import from_graph
    program = from_graph(g, [a, b], [a + b], [])
    ia, ib = program.inputs
    assert specialize.specialize(program, {ia: (2, 3), ib: (5, 3)}) is None
    good = specialize.specialize(program, {ia: (2, 3), ib: (1, 3)})
    assert good.outputs[0].shape == (2, 3)
    assert program.outputs[0].shape == (None, 3)  # the generic program is not changed


VALUES = [-800.0, -1.0, -0.0, 0.0, 5e-324, 0.5, 2.0, 800.0, float("inf"), float("nan")]
UNARY = [gc.exp, gc.tanh, gc.relu, gc.sigmoid, gc.square, gc.neg, gc.log1p, gc.abs]
BINARY = [gc.add, gc.sub, gc.mul, gc.div, gc.maximum]


@settings(max_examples=int(os.environ.get("GRAPHC_SPECIALIZE_EXAMPLES", "30")), deadline=None,
          derandomize=not os.environ.get("GRAPHC_AGREEMENT_RANDOM"),
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_batched_programs_agree_with_g_run_and_the_generic_program(data):
    """Elementwise ops, reductions over the batch and a matmul, with gradients: the
    specialisation gives the generic program's values bit for bit, and g.run's as compiled
    functions do (the default rewrites may change the sign of a zero or of a NaN)."""
    draw = data.draw
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    w = g.variable("w", np.array([[0.5, -1.0], [2.0, 0.0], [-0.0, 1.5]]))
    nodes = [x]
    for _ in range(draw(st.integers(1, 5))):
        a = draw(st.sampled_from(nodes))
        kind = draw(st.sampled_from(["unary", "binary", "scalar"]))
        if kind == "unary":
            nodes.append(draw(st.sampled_from(UNARY))(a))
        elif kind == "binary":
            nodes.append(draw(st.sampled_from(BINARY))(a, draw(st.sampled_from(nodes))))
        else:
            nodes.append(draw(st.sampled_from(BINARY))(a, draw(st.sampled_from([2.0, -0.5]))))
    top = nodes[-1] @ w
    loss = gc.sum(gc.mean(top, axis=0))
    outputs = [top, loss] + gc.gradients(loss, [x, w])
    n = draw(st.integers(1, 6))
    X = np.array(draw(st.lists(st.sampled_from(VALUES), min_size=3 * n, max_size=3 * n)))
    X = X.reshape(n, 3)
    f = gc.function([x], outputs)
    got = f(X)
    assert f.stats["memory_plan"] == "specialized"
    want = g.run(outputs, {x: X})
    generic = f._specializer._generic.fn(X)  # the program before specialisation
    assert same_bits(got, generic), f.source
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)  # NaN where NaN, 0.0 equal to -0.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_masked_fill_of_relus_gradient_is_where_bit_for_bit(dtype):
    from graphc.compiler.codegen import fill_where_not

    rng = np.random.default_rng(0)
    x = rng.choice(np.array([-0.0, 0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 5e-324]),
                   (7, 9)).astype(dtype)
    c = rng.random((7, 9)) > 0.5
    for mask in (c, c[0], c[:, :1]):  # the mask may broadcast to x's shape
        for zero in (0, 0.0, -0.0, np.array(0.0), np.array(-0.0, dtype)):
            want = np.where(mask, x, zero).astype(dtype)
            got = fill_where_not(mask, x.copy(), zero)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
