"""The ``sum_of_products`` rule: sum(x * y) and sum(square(x)) over all axes become one BLAS dot
(a two-operand einsum), within a few ulp of the exact sum, with NaN, inf, signs of zero and
dtypes as before; what it must not touch stays a product and a sum."""
import math
from fractions import Fraction

import numpy as np
import pytest

import graphc as gc
from graphc.compiler.rules import MIN_DOT_SIZE

RNG = np.random.default_rng(15)
SHAPE = (24, 30)  # 720 elements: above MIN_DOT_SIZE
BACKENDS = ["source", "vm"]


def _exact(x: np.ndarray, y: np.ndarray) -> float:
    """The exact sum of the products, rounded once to float64: float32 products are exact in
    float64 and math.fsum rounds their sum once; float64 products are summed as fractions."""
    if x.dtype == y.dtype == np.float32:
        return math.fsum((x.astype(np.float64) * y.astype(np.float64)).ravel().tolist())
    return float(sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(x.flat, y.flat)))


def _compiled(build, shapes, dtype, backend="source"):
    g = gc.Graph()
    xs = [g.placeholder(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    out = build(*xs)
    return g, xs, out, gc.function(xs, out, backend=backend)


def _fired(f) -> bool:
    return f.stats["rules"].get("sum_of_products", 0) > 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("square", [False, True])
def test_dot_is_within_a_few_ulp_of_the_exact_sum(square, dtype, backend):
    x = (RNG.standard_normal(SHAPE) * 0.05).astype(dtype)
    y = x if square else RNG.standard_normal(SHAPE).astype(dtype)
    build = (lambda a: gc.sum(a * a)) if square else (lambda a, b: gc.sum(a * b))
    g, xs, out, f = _compiled(build, [SHAPE] * (1 if square else 2), dtype, backend)
    assert _fired(f) and "einsum" in f.stats["ops"] and "square" not in f.stats["ops"]
    got = f(x) if square else f(x, y)
    feed = dict(zip(xs, [x] if square else [x, y]))
    want = g.run(out, feed)
    assert np.asarray(got).dtype == np.dtype(dtype) and np.shape(got) == ()
    assert type(got) is type(want)  # a NumPy scalar, as g.run's sum gives
    assert f.stats["upcasts"] == []
    exact = _exact(x, y)
    eps = np.finfo(dtype).eps
    scale = float(np.sum(np.abs(x.astype(np.float64) * y)))  # the condition of the sum
    for value in (got, want):
        assert abs(float(value) - exact) <= 8 * eps * scale, (float(value), exact)


@pytest.mark.parametrize("backend", BACKENDS)
def test_source_and_vm_agree_bit_for_bit(backend):
    x, y = RNG.standard_normal(SHAPE), RNG.standard_normal(SHAPE)
    _, _, _, f = _compiled(lambda a, b: gc.sum(a * b) + gc.sum(a * a), [SHAPE] * 2, "float64",
                           backend)
    _, _, _, ref = _compiled(lambda a, b: gc.sum(a * b) + gc.sum(a * a), [SHAPE] * 2,
                             "float64", "source")
    assert _fired(f) and f(x, y).tobytes() == ref(x, y).tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_keepdims_partial_axes_broadcasts_and_small_sums(backend):
    x = RNG.standard_normal(SHAPE)
    _, _, out, f = _compiled(lambda a: gc.sum(gc.square(a), keepdims=True), [SHAPE], "float64",
                             backend)
    assert _fired(f) and f(x).shape == (1, 1)
    np.testing.assert_allclose(f(x), np.sum(x * x, keepdims=True), rtol=1e-13)
    untouched = {
        "partial axes": (lambda a, b: gc.sum(a * b, axis=0), [SHAPE, SHAPE]),
        "broadcast": (lambda a, b: gc.sum(a * b), [SHAPE, SHAPE[1:]]),
        "small": (lambda a, b: gc.sum(a * b), [(MIN_DOT_SIZE - 1,)] * 2),
        "sum of a sum": (lambda a, b: gc.sum(a + b), [SHAPE, SHAPE]),
    }
    for name, (build, shapes) in untouched.items():
        g, xs, out, f = _compiled(build, shapes, "float64", backend)
        assert not _fired(f), name
        feed = {v: RNG.standard_normal(s) for v, s in zip(xs, shapes)}
        assert f(*feed.values()).tobytes() == np.asarray(g.run(out, feed)).tobytes(), name
    assert _fired(_compiled(lambda a, b: gc.sum(a * b), [(MIN_DOT_SIZE,)] * 2, "float64")[3])


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "complex128", "float16"])
def test_other_dtypes_are_left_alone(dtype):
    values = (RNG.standard_normal(SHAPE) * 3).astype(dtype)
    g, (x,), out, f = _compiled(lambda a: gc.sum(a * a), [SHAPE], dtype)
    assert not _fired(f) and "einsum" not in f.stats["ops"]
    assert np.asarray(f(values)).tobytes() == np.asarray(g.run(out, {x: values})).tobytes()


def test_mixed_dtypes_are_left_alone():
    """float32 * float64 is a float64 sum of float32 values: the dot would need an upcast."""
    g = gc.Graph()
    a, b = g.placeholder("a", SHAPE, "float32"), g.placeholder("b", SHAPE, "float64")
    f = gc.function([a, b], gc.sum(a * b))
    assert not _fired(f)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nan_inf_and_signs_of_zero_as_before(dtype, backend):
    g, (x, y), out, f = _compiled(lambda a, b: gc.sum(a * b), [SHAPE] * 2, dtype, backend)
    ones = np.ones(SHAPE, dtype)
    cases = {"nan": (np.nan, 1.0, np.nan), "inf": (np.inf, 2.0, np.inf),
             "-inf": (-np.inf, 2.0, -np.inf), "inf * 0": (np.inf, 0.0, np.nan)}
    for name, (a, b, want) in cases.items():
        X, Y = ones.copy(), ones.copy()
        X[3, 4], Y[3, 4] = a, b
        for value in (f(X, Y), g.run(out, {x: X, y: Y})):
            assert np.asarray(value).tobytes() == np.asarray(want, dtype).tobytes() or (
                np.isnan(want) and np.isnan(value)), (name, value)
    X = np.ones(SHAPE, dtype)
    X[0, 0] = np.inf
    Y = np.ones(SHAPE, dtype)
    Y[0, 1] = -np.inf
    X[0, 1] = 1.0
    assert np.isnan(f(X, Y)) and np.isnan(g.run(out, {x: X, y: Y}))  # inf + -inf
    # zeros of both signs, products all -0.0: the sum and the dot both start from +0.0
    for X, Y in ((-np.zeros(SHAPE, dtype), np.ones(SHAPE, dtype)),
                 (-np.zeros(SHAPE, dtype), -np.zeros(SHAPE, dtype))):
        for value in (f(X, Y), g.run(out, {x: X, y: Y})):
            assert value == 0 and not np.signbit(value)
    # a sum whose terms overflow is inf either way
    big = np.full(SHAPE, np.finfo(dtype).max / 4, dtype)
    assert f(big, ones) == np.inf and g.run(out, {x: big, y: ones}) == np.inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_sizes_empty_arrays_and_layouts(backend):
    g = gc.Graph()
    x = g.placeholder("x", (None, 300))
    f = gc.function([x], gc.sum(x * x), backend=backend)
    assert _fired(f)
    assert f(np.zeros((0, 300))) == 0.0 and not np.signbit(f(np.zeros((0, 300))))
    X = RNG.standard_normal((5, 300))
    np.testing.assert_allclose(f(X), np.sum(X * X), rtol=1e-13)
    # transposed and strided operands: the same values, from views laid out alike or not
    A = RNG.standard_normal((30, 24))
    g2, (a, b), out, f2 = _compiled(lambda u, v: gc.sum(gc.transpose(u) * v), [(30, 24), SHAPE],
                                    "float64", backend)
    assert _fired(f2)
    for B in (RNG.standard_normal(SHAPE), np.asfortranarray(RNG.standard_normal(SHAPE)),
              RNG.standard_normal((48, 30))[::2]):
        np.testing.assert_allclose(f2(A, B), _exact(A.T, B), rtol=1e-13)


def test_gradients_are_unaffected():
    """Rules run on compiled terms only: the gradient of sum(x * x) is still 2 x, exactly."""
    g = gc.Graph()
    x = g.placeholder("x", SHAPE)
    loss = gc.sum(x * x)
    (dx,) = gc.gradients(loss, [x])
    f = gc.function([x], [loss, dx])
    X = RNG.standard_normal(SHAPE)
    value, grad = f(X)
    assert _fired(f) and grad.tobytes() == (2 * X).tobytes()
    assert g.run(dx, {x: X}).tobytes() == grad.tobytes()


def test_mlp_weight_decay_is_a_dot_in_float32():
    """The benchmark's weight decay: three dots, no squares, nothing computed in float64."""
    g = gc.Graph()
    ws = [g.variable(f"W{k}", RNG.standard_normal(s).astype("float32"))
          for k, s in enumerate([(784, 256), (256, 128), (128, 10)])]
    decay = gc.sum(ws[0] * ws[0]) + gc.sum(ws[1] * ws[1]) + gc.sum(ws[2] * ws[2])
    f = gc.function([], [decay] + gc.gradients(1e-4 * decay, ws))
    assert f.stats["rules"]["sum_of_products"] == 3 and "square" not in f.stats["ops"]
    assert f.stats["upcasts"] == []
    value = f()[0]
    exact = sum(_exact(w.value, w.value) for w in ws)
    assert value.dtype == np.float32
    assert abs(float(value) - exact) <= 8 * np.finfo(np.float32).eps * exact


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_dots_operands_keep_their_arena_places(backend):
    """A two-operand einsum makes a new value (schedule.is_fresh), so the temporaries it reads
    live in the arena; a one-operand einsum may be a view of its operand, whose buffer then
    stays its own."""
    g = gc.Graph()
    x = g.placeholder("x", (40, 40))
    outs = [gc.sum(gc.exp(x) * gc.sin(x)), gc.einsum("ij->ji", gc.exp(x) * 2.0) + gc.cos(x)]
    f = gc.function([x], outs, backend=backend)
    assert _fired(f) and f.stats["arena_bytes"] >= 2 * 40 * 40 * 8
    X = RNG.standard_normal((40, 40))
    first = [v.copy() for v in f(X)]
    f(-X)
    for got, want, again in zip(f(X), g.run(outs, {x: X}), first):
        np.testing.assert_allclose(got, want, rtol=1e-13)
        assert np.asarray(got).tobytes() == np.asarray(again).tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mean_squared_error_is_a_dot_over_the_count(dtype, backend):
    """mean((p - y) ** 2) of known sizes: the dot, divided by the count as mean's kernel
    divides (a Python int, so float32 stays float32); with a size known only at run time the
    mean is left alone."""
    p, y = (RNG.standard_normal(SHAPE).astype(dtype) for _ in range(2))
    g, xs, out, f = _compiled(lambda a, b: gc.mean((a - b) ** 2), [SHAPE] * 2, dtype, backend)
    assert _fired(f) and "mean" not in f.stats["ops"] and f.stats["upcasts"] == []
    got, want = f(p, y), g.run(out, dict(zip(xs, (p, y))))
    assert got.dtype == np.dtype(dtype) and type(got) is type(want)
    d = p - y  # the differences the graph computes (in its dtype); the oracle sums their squares
    exact = _exact(d, d) / d.size
    assert abs(float(got) - exact) <= 8 * np.finfo(dtype).eps * exact
    assert not _fired(_compiled(lambda a: gc.mean(a * a), [(None, 300)], dtype, backend)[3])


def test_more_dimensions_than_einsum_letters_are_left_alone():
    """einsum names at most 52 dimensions: a sum over more stays a product and a sum."""
    shape = (1,) * 45 + (2,) * 8  # 53 dimensions, 256 elements
    g, (x,), out, f = _compiled(lambda x: gc.sum(x * x), [shape], "float64")
    X = RNG.standard_normal(shape)
    assert not _fired(f)
    assert f(X).tobytes() == g.run(out, {x: X}).tobytes()
