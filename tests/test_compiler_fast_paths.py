"""The compiled functions' fast paths compute what the NumPy path and g.run do: the
Python-float path of scalar programs (in any error state), 0-d float arguments,
``trust_input``, the error state set without ``np.errstate``, kernels called directly
(``np.add.reduce``, reshapes, indexes, broadcasts, ``sum_to``), and calls that go straight into
the generated function (keywords, wrong counts, locks)."""
import math
import threading
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc import ops
from graphc.compiler import codegen
from graphc.compiler.passes import DEFAULT_PASSES
from graphc.ops.registry import REGISTRY

SPECIAL = [3.0, -4.0, 0.0, -0.0, 1e300, -1e300, 800.0, -800.0, 1e-320, float("inf"),
           float("-inf"), float("nan")]


def cs231n():
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    f = (x + gc.sigmoid(y)) / (gc.sigmoid(x) + (x + y) ** 2)
    return g, x, y, [f, *gc.gradients(f, [x, y])]


def same_bits(a, b) -> bool:
    """Equal bit for bit (the sign of a zero included); any NaN matches any NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.isnan(a) and np.isnan(b)) or a.tobytes() == b.tobytes()


def test_float_path_gives_the_numpy_paths_values_bit_for_bit():
    g, x, y, outs = cs231n()
    f = gc.function([x, y], outs)
    assert "over Python floats" in f.source  # the float path is there
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither path may warn (inf and NaN are values)
        for a in SPECIAL:
            for b in SPECIAL:
                floats = f(a, b)
                arrays = f(np.array(a), np.array(b))
                run = g.run(outs, {x: a, y: b})
                for p, q, r in zip(floats, arrays, run):
                    assert type(p) is np.float64 and type(q) is np.float64
                    assert same_bits(p, q) and same_bits(p, r), (a, b, p, q, r)


def mixed():
    """A scalar function of every op of the float path, with both gradients."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    f = (gc.tanh(x) * gc.exp(-y) + gc.log(x * x + 1.0) + gc.sqrt(x * x + y * y)
         + gc.abs(x - y) + gc.log(y * y) + gc.expm1(x) / (x - 2.0) + gc.sigmoid(x * y)
         + gc.softplus(x - y))
    return g, x, y, [f, *gc.gradients(f, [x, y])]


def piecewise():
    """A scalar function of max, min, relu, comparisons and where, with both gradients."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    f = (gc.relu(x) * y + gc.maximum(x, y) - gc.minimum(y, 0.5)
         + gc.where(x > y, x * x, y / 3.0) + gc.where(gc.logical_not(x <= 1.0), 1.0, -x))
    return g, x, y, [f, *gc.gradients(f, [x, y]), x >= y, gc.equal(x, y), gc.not_equal(x, y)]


GRID = SPECIAL + [0.5, -0.25, 2.0, 1e-200, -1e-200, 708.5, -708.5, 709.5, 1e-155, -1.0]


def numpy_path(v):
    """A 0-d argument the float path does not take (a big-endian float64: converted exactly
    by the argument check), so the call runs the generated NumPy code."""
    return np.array(v, dtype=">f8")


@pytest.mark.parametrize("build", [cs231n, mixed, piecewise])
def test_float_path_numpy_path_and_g_run_agree_bit_for_bit_in_any_error_state(build):
    g, x, y, outs = build()
    f = gc.function([x, y], outs)
    assert "over Python floats" in f.source
    for state in ({"all": "raise"}, {"all": "warn"}):
        with warnings.catch_warnings(), np.errstate(**state):
            warnings.simplefilter("error")  # no path may warn or raise: inf and NaN are values
            for a in GRID:
                for b in GRID:
                    floats = f(a, b)
                    arrays = f(np.array(a), np.array(b))
                    generated = f(numpy_path(a), numpy_path(b))
                    run = g.run(outs, {x: a, y: b})
                    for p, q, n, r in zip(floats, arrays, generated, run):
                        assert type(p) is type(q) is type(n) is type(r), (p, q, n, r)
                        assert same_bits(p, q) and same_bits(p, n) and same_bits(p, r), \
                            (a, b, p, n, r)


def test_float_path_computes_ordinary_values_and_hands_the_rest_to_numpy():
    g, x, y, outs = mixed()
    f = gc.function([x, y], outs)

    def numpy_path_taken(*args) -> bool:
        f._fn.__globals__["_fp_enter"] = fail  # the NumPy path's first step
        try:
            f(*args)
        except gc.GraphcError:
            return True
        finally:
            f._fn.__globals__["_fp_enter"] = enter
        return False

    def fail():
        raise RuntimeError("the NumPy path ran")
    enter = f._fn.__globals__["_fp_enter"]
    assert not numpy_path_taken(0.5, 0.25) and not numpy_path_taken(np.array(3.0), -4.0)
    for a, b in ((2.0, 1.0),  # expm1(x) / (x - 2): a division by zero
                 (800.0, 1.0),  # tanh, sigmoid: beyond the guards, as is exp(-y) for y=-800
                 (0.5, 0.0),  # log(y * y) = log(0)
                 (float("nan"), 1.0), (1e-200, 1.0)):  # NaN; tanh of a tiny value
        assert numpy_path_taken(a, b), (a, b)
    assert numpy_path_taken(numpy_path(0.5), 0.25)


def test_the_float_ops_match_numpy_on_many_arguments():
    """Each op of the float path against its NumPy kernel on a 0-d array, far from the
    special values too: random arguments over the whole exponent range."""
    rng = np.random.default_rng(15)
    values = np.concatenate([rng.standard_normal(800) * 10.0 ** rng.integers(-5, 6, 800),
                             rng.uniform(-750, 750, 200), GRID])
    g = gc.Graph()
    x = g.placeholder("x", ())
    for op in (gc.exp, gc.expm1, gc.log, gc.log1p, gc.tanh, gc.sqrt, gc.abs, gc.sign,
               gc.sigmoid, gc.softplus, gc.relu, lambda v: -v, lambda v: v * v):
        node = op(x)
        f = gc.function([x], node)
        assert "over Python floats" in f.source
        with np.errstate(all="ignore"):
            for v in values:
                assert same_bits(f(float(v)), g.run(node, {x: np.array(v)})), (node, v)
    y = g.placeholder("y", ())
    pairs = [(a, b) for a in SPECIAL + [1.5, -2.5] for b in SPECIAL + [1.5, -2.5]]
    for op in (gc.maximum, gc.minimum, lambda a, b: gc.where(a < b, a, b)):
        node = op(x, y)
        f = gc.function([x, y], node)
        assert "over Python floats" in f.source
        for a, b in pairs:  # NaN and zeros of both signs included
            assert same_bits(f(a, b), g.run(node, {x: np.array(a), y: np.array(b)})), (a, b)


def test_calls_with_keywords_and_wrong_counts():
    g, x, y, outs = cs231n()
    f = gc.function([x, y], outs)
    want = f(3.0, -4.0)
    for got in (f(3.0, y=-4.0), f(y=-4.0, x=3.0), f(*[3.0], **{"y": -4.0})):
        assert all(same_bits(p, q) for p, q in zip(got, want))
    with pytest.raises(gc.FeedError, match="takes 2 input"):
        f(3.0, -4.0, 1.0)
    with pytest.raises(gc.FeedError, match="given twice"):
        f(3.0, x=3.0)
    with pytest.raises(gc.MissingFeedError, match="'y'"):
        f(3.0)
    with pytest.raises(gc.MissingFeedError, match="'x'"):
        f(y=3.0)
    with pytest.raises(gc.FeedError, match="no input named 'z'"):
        f(3.0, -4.0, z=1.0)


def test_float_path_closed_form():
    g, x, y, outs = cs231n()
    f = gc.function([x, y], outs)
    a, b = 3.0, -4.0
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    den = s(a) + (a + b) ** 2
    value = (a + s(b)) / den
    dx = (1 - (s(a) * (1 - s(a)) + 2 * (a + b)) * value) / den
    dy = (s(b) * (1 - s(b)) - 2 * (a + b) * value) / den
    np.testing.assert_allclose(f(a, b), [value, dx, dy], rtol=1e-14)


def test_float_path_division_by_zero_falls_back_to_numpy():
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    outs = {"q": x / y, "x": x, "n": [-x]}
    f = gc.function([x, y], outs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(1.0, 0.0)
    assert got["q"] == np.inf and got["n"] == [-1.0]
    assert isinstance(got["x"], np.ndarray) and got["x"].shape == () and got["x"] == 1.0
    assert np.isnan(f(0.0, 0.0)["q"])
    for key in ("q", "x"):
        assert same_bits(f(1.0, 0.0)[key], g.run(outs, {x: 1.0, y: 0.0})[key])


def test_float_path_only_for_scalar_float64_programs():
    g = gc.Graph()
    x = g.placeholder("x", ())
    v = g.placeholder("v", (3,))
    assert "over Python floats" not in gc.function([x, v], gc.sum(x * v)).source
    assert "over Python floats" not in gc.function([x], gc.sin(x)).source  # no sin op
    x32 = g.placeholder("x32", (), "float32")
    f32 = gc.function([x32], x32 * 3.0)
    assert "over Python floats" not in f32.source
    checked = gc.function([x], x / 0.5, check_numerics=True)
    assert "over Python floats" not in checked.source
    with pytest.raises(gc.NumericsError):
        checked(float("inf"))
    out = f32(0.1)
    assert out.dtype == np.float32 and out == np.float32(0.1) * np.float32(3.0)


def test_fastmath_float_path_uses_math_exp_close_to_numpy():
    g = gc.Graph()
    x = g.placeholder("x", ())
    fast = gc.function([x], gc.sigmoid(x), passes=DEFAULT_PASSES + ("fastmath",))
    exact = gc.function([x], gc.sigmoid(x))
    assert fast._generated.globals["_math_exp"] is __import__("math").exp
    assert "_math_exp" not in exact.source
    for v in np.linspace(-30, 30, 61):
        np.testing.assert_allclose(fast(float(v)), exact(float(v)), rtol=4e-16, atol=0)
        assert same_bits(exact(float(v)), exact(np.array(v)))


def test_zero_d_arguments_of_every_kind():
    g = gc.Graph()
    x = g.placeholder("x", ())
    v = g.placeholder("v", (2,))
    f = gc.function([x, v], x * v)
    want = np.array([2.0, 4.0])
    for arg in (2.0, np.float64(2.0), np.array(2.0), 2, np.int32(2), np.float32(2.0), True * 2):
        np.testing.assert_array_equal(f(arg, [1.0, 2.0]), want)
    with pytest.raises(gc.FeedError, match="'x'"):
        f("2", [1.0, 2.0])
    with pytest.raises(gc.FeedError, match="shape"):
        f([2.0], [1.0, 2.0])
    assert f(np.float64(2.0), [1.0, 2.0]).dtype == np.float64


def test_trust_input_skips_the_checks_and_keeps_the_values():
    g, x, y, outs = cs231n()
    checked = gc.function([x, y], outs)
    trusted = gc.function([x, y], outs, trust_input=True)
    assert "_feed" not in trusted.source and "_feed" in checked.source
    for a, b in ((3.0, -4.0), (0.5, 0.25), (-2.0, 7.0)):
        for args in ((a, b), (np.array(a), np.array(b)), (np.float64(a), np.float64(b))):
            for p, q in zip(trusted(*args), checked(a, b)):
                assert same_bits(p, q)
    g2 = gc.Graph()
    m = g2.placeholder("m", (2, 3))
    t = gc.function([m], gc.sum(m, axis=1), trust_input=True)
    np.testing.assert_array_equal(t(np.ones((2, 3))), [3.0, 3.0])


def test_error_state_is_the_callers_again_after_a_call():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    f = gc.function([x], 1.0 / x)
    with np.errstate(all="raise"):
        before = np.geterr()
        np.testing.assert_array_equal(f(np.array([0.0, 2.0])), [np.inf, 0.5])
        assert np.geterr() == before
        with pytest.raises(FloatingPointError):  # the caller's state holds outside the call
            np.array([1.0]) / np.array([0.0])


def test_error_state_restored_when_a_call_fails():
    g = gc.Graph()
    v = g.placeholder("v", (None,))
    f = gc.function([v], gc.reshape(gc.exp(v), (3,)) / 0.0)
    before = np.geterr()
    with pytest.raises(gc.GraphcError, match="reshape"):
        f(np.ones(4))  # 4 values into shape (3,): the call fails inside the body
    assert np.geterr() == before


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           ((0, 2), True), (-1, False)])
def test_sum_as_add_reduce_and_expand_dims_as_reshape(axis, keepdims):
    g = gc.Graph()
    x = g.placeholder("x", (3, 4, 5))
    s = gc.sum(x * 2.0, axis=axis, keepdims=keepdims)
    e = gc.expand_dims(x * 2.0, (0, 3))
    f = gc.function([x], [s, e])
    assert "_add_reduce(" in f.source and ".reshape(" in f.source
    X = np.random.default_rng(0).standard_normal((3, 4, 5))
    got, want = f(X), g.run([s, e], {x: X})
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[1], np.expand_dims(X * 2.0, (0, 3)))
    assert got[0].shape == np.sum(X, axis=axis, keepdims=keepdims).shape


def test_sum_of_bool_and_int_keeps_numpys_dtypes():
    g = gc.Graph()
    b = g.placeholder("b", (4,), "bool")
    k = g.placeholder("k", (4,), "int32")
    outs = [gc.sum(gc.logical_not(b)), gc.sum(k * k, axis=0)]
    f = gc.function([b, k], outs)
    got = f(np.array([True, False, False, True]), np.arange(4, dtype=np.int32))
    want = g.run(outs, {b: np.array([True, False, False, True]), k: np.arange(4, dtype=np.int32)})
    for p, q in zip(got, want):
        assert p == q and np.asarray(p).dtype == np.asarray(q).dtype


def test_error_state_only_where_an_op_may_warn():
    g = gc.Graph()
    m = g.placeholder("m", (2, 3))
    k = g.placeholder("k", (), "int64")
    moves = gc.function([m], gc.reshape(gc.transpose(m), (6,)))
    assert "_fp_enter" not in moves.source
    np.testing.assert_array_equal(moves(np.arange(6.0).reshape(2, 3)), [0, 3, 1, 4, 2, 5])
    negate = gc.function([k], -k)
    assert "_fp_enter" in negate.source
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # -int64 min overflows: ignored, as g.run does
        assert negate(np.int64(-2**63)) == g.run(-k, {k: np.int64(-2**63)})


def test_broadcasts_sums_and_indexing_called_directly_give_the_kernels_values():
    """Each small op written directly in the generated code, against g.run (the registry's
    kernels), bit for bit, with sizes known and unknown."""
    g = gc.Graph()
    m = g.placeholder("m", (None, 3))
    v = g.placeholder("v", (None,))
    k = g.placeholder("k", (None, 3), "int8")
    one = g.constant(np.array([[-0.0]]))
    outs = {
        "single": ops.broadcast_like(one, m),  # one element: a strides-0 view
        "scalar": gc.broadcast_to(g.constant(2.5), (2, 3)),
        "row": ops.broadcast_like(g.constant(np.array([1.0, -2.0, 3.0])), m),
        "sum_to": ops.sum_to(m * 2.0, g.constant(np.ones((1, 3)))),
        "sum_to_lead": ops.sum_to(m * 2.0, g.constant(np.ones(3))),
        "sum_to_int8": ops.sum_to(k * k, g.constant(np.ones((1, 3), np.int8))),
        "sliced": (m * 1.0)[::-1, 1:],
        "picked": (m * 1.0)[:, 2],
        "stepped": (v * 1.0)[-1:0:-2],
        "expanded": gc.expand_dims(v * 1.0, (0, 2)),
        "inner": v[:, None] * g.constant(np.array([1.0, -1.0, 0.5]))[None, :],
    }
    f = gc.function([m, v, k], outs)
    for text in ("_broadcast_single(", "_broadcast_to(", "_add_reduce(", "[..., ::-1, 1:]",
                 "[..., :, 2]", "[..., -1:0:-2]", "[None, :, None]"):
        assert text in f.source, text
    # summing (None, 3) to (1, 3) depends on whether the run-time size is 1: the kernel's
    assert f.source.count("_k_sum_to(") == 2
    rng = np.random.default_rng(3)
    for rows in (1, 4):
        M = rng.standard_normal((rows, 3))
        M[0, 0] = -0.0
        V = rng.standard_normal(rows + 2)
        K = rng.integers(-100, 100, (rows, 3)).astype(np.int8)  # k * k wraps, as in NumPy
        got, want = f(M, V, K), g.run(outs, {m: M, v: V, k: K})
        for key in outs:
            assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype, key
            assert got[key].tobytes() == want[key].tobytes(), key
            got[key][...] = 0  # outputs are the caller's: writable, sharing nothing
        assert f(M, V, K)["single"].tobytes() == want["single"].tobytes()


def test_gradients_through_broadcast_and_indexing_as_g_run():
    g = gc.Graph()
    u, w = g.placeholder("u", (None,)), g.placeholder("w", (3,))
    X, b = g.placeholder("X", (None, 3)), g.placeholder("b", (3,))
    p = (gc.sum(gc.tanh(u[:, None] * w[None, :])) + gc.sum(gc.tanh(X * w + b) ** 2)
         + gc.sum(X[:, 1] * u) + gc.sum(X[1:, ::-1] * w))  # the other indexes: the kernel
    outs = [p, *gc.gradients(p, [u, w, X, b])]
    f = gc.function([u, w, X, b], outs)
    assert f.source.count("_k_getitem_grad(") == 2 and "_k_broadcast_like" not in f.source
    rng = np.random.default_rng(4)
    U, W, XX, B = (rng.standard_normal(s) for s in ((4,), (3,), (4, 3), (3,)))
    for a, r in zip(f(U, W, XX, B), g.run(outs, {u: U, w: W, X: XX, b: B})):
        assert np.asarray(a).tobytes() == np.asarray(r).tobytes()
    gu = f(U, W, XX, B)[1]  # d/du: (1 - tanh^2(u w^T)) w + X[:, 1], by hand
    np.testing.assert_allclose(gu, (1 - np.tanh(np.outer(U, W)) ** 2) @ W + XX[:, 1],
                               rtol=1e-12)


def test_a_broadcast_view_of_one_element_is_read_only_and_keeps_its_base():
    from graphc.compiler.codegen import broadcast_single
    base = np.array([[1.5]])
    view = broadcast_single(base, (2, 3))
    assert view.shape == (2, 3) and not view.flags.writeable and view.base is base
    np.testing.assert_array_equal(view, np.broadcast_to(base, (2, 3)))
    assert broadcast_single(np.float32(2.0), (0, 2)).dtype == np.float32


def test_a_function_with_updates_takes_keywords_and_releases_its_lock_after_an_error():
    g = gc.Graph()
    c = g.variable("c", 0.0)
    step = g.placeholder("step", ())
    f = gc.function([step], c, updates={c: c + step})
    assert f(step=1.0) == 0.0 and f(2.0) == 1.0
    with pytest.raises(gc.FeedError, match="takes 1 input"):
        f(1.0, 2.0)
    with pytest.raises(gc.FeedError, match="'step'"):
        f("one")
    done = []
    worker = threading.Thread(target=lambda: done.append(f(step=4.0)))
    worker.start()
    worker.join(timeout=10)
    assert done == [3.0] and c.value == 7.0  # the lock was free again


def test_a_function_with_shape_specialisations_takes_keywords_and_names_failing_nodes():
    g = gc.Graph()
    m = g.placeholder("m", (None, 3))
    n = g.placeholder("n", (None,))
    f = gc.function([m, n], gc.reshape(m * 2.0, (-1,)) + n)
    M = np.arange(6.0).reshape(2, 3)
    want = (M * 2.0).ravel() + 1.0
    for got in (f(M, np.ones(6)), f(n=np.ones(6), m=M), f(M, n=np.ones(6))):
        np.testing.assert_array_equal(got, want)
    assert f.stats["specializations"] == 1
    with pytest.raises(gc.FeedError, match="takes 2 input"):
        f(M, np.ones(6), 1.0)
    with pytest.raises(gc.MissingFeedError, match="'n'"):
        f(M)
    with pytest.raises(gc.ShapeError, match="add") as info:
        f(M, np.ones(5))  # 6 values + 5: the add fails in the program, named
    assert "test_compiler_fast_paths.py" in str(info.value)


@pytest.mark.parametrize("op", sorted(set(codegen.FLOAT_OPS) | set(codegen.FLOAT_STEPS)))
def test_float_path_outputs_have_the_types_of_the_numpy_path(op):
    """The float path returns what the generated NumPy path returns (which check_numerics
    always takes): a NumPy scalar, or a 0-d array (where; copies of non-fresh values)."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    if op == "where":
        out = gc.where(gc.less(x, y), x, y)
    elif op == "logical_not":
        out = gc.logical_not(gc.less(x, y))
    elif REGISTRY[op].arity[1] == 1:
        out = getattr(gc, op)(x)
    else:
        out = getattr(gc, op)(x, y)
    f = gc.function([x, y], out)
    assert "floats, float64 scalars or 0-d arrays" in f.source  # (the float path exists)
    expected = gc.function([x, y], out, check_numerics=True)(0.7, 1.3)
    assert expected == g.run(out, {x: 0.7, y: 1.3})
    for args in ((0.7, 1.3), (np.float64(0.7), np.float64(1.3)), (np.array(0.7), np.array(1.3))):
        value = f(*args)
        assert type(value) is type(expected) and value == expected


def _float_from_bits(bits: int) -> float:
    return float(np.array(bits, dtype=np.uint64).view(np.float64))


#: GRID and the edges of the float path's guards and branches: the smallest subnormal and
#: normal floats, the largest float, the sigmoid and softplus ranges and their neighbours
EDGES = GRID + [5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308,
                1.7976931348623157e308, -1.7976931348623157e308, 708.0, -708.0,
                np.nextafter(708.0, 800.0), np.nextafter(-708.0, -800.0), 345.0, -345.0,
                np.nextafter(345.0, 400.0), np.nextafter(-345.0, -400.0), -float("nan")]


@pytest.mark.parametrize("build", [cs231n, mixed, piecewise])
def test_float_path_with_every_argument_kind_and_trust_input_gives_g_runs_bits(build):
    """Floats, float64 scalars, 0-d arrays and mixtures of them, checked and trusted, on the
    guards' edges (subnormals, the largest float, both sides of 708 and 345, NaN of both
    signs): the same types and bits as g.run, and no warning in the caller's raise state."""
    g, x, y, outs = build()
    f = gc.function([x, y], outs)
    trusted = gc.function([x, y], outs, trust_input=True)
    kinds = (float, np.float64, np.array)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for k, a in enumerate(EDGES):
            for m, b in enumerate(EDGES[k % 3::3]):  # a third of the pairs: each value
                run = g.run(outs, {x: a, y: b})  # with a third of the others, both ways
                kind_a, kind_b = kinds[(k + m) % 3], kinds[(2 * k + m) % 3]  # every pairing
                for fn in (f, trusted):
                    for args in ((a, b), (kind_a(a), kind_b(b))):
                        for p, r in zip(fn(*args), run):
                            assert type(p) is type(r) and same_bits(p, r), (a, b, args, p, r)


def test_float_path_results_keep_nan_signs_payloads_and_signalling_nans():
    """The results' boxing changes no bit: a quiet NaN's sign and payload come through an
    add as they come on the NumPy path, and a signalling NaN that a neg, abs, sign or where
    passes on stays signalling without raising in the caller's raise state."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    outs = [x + y, -x, gc.abs(x), gc.sign(x), gc.where(y > 0.0, x, y), x * 2.0]
    f = gc.function([x, y], outs)
    assert "over Python floats" in f.source
    nans = [_float_from_bits(b) for b in (0x7FF8000000000000, 0xFFF8000000000000,
                                          0x7FF800000000BEEF, 0xFFFC00000000F00D,
                                          0x7FF0000000000001, 0xFFF4000000000000)]
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for v in nans:
            for args in ((v, 1.0), (np.float64(v), 1.0), (np.array(v), np.array(1.0))):
                run = g.run(outs, {x: np.array(v), y: np.array(1.0)})
                for p, r in zip(f(*args), run):
                    assert type(p) is type(r)
                    assert np.asarray(p).tobytes() == np.asarray(r).tobytes(), (hex(
                        np.array(v).view(np.uint64)), p, r)


def test_float_path_with_inputs_named_like_builtins():
    """Inputs named float and abs (parameters of the generated function) shadow no name the
    float path or the 0-d sigmoid uses."""
    g = gc.Graph()
    x, y = g.placeholder("float", ()), g.placeholder("abs", ())
    outs = [gc.sigmoid(x) * gc.abs(y), gc.softplus(y) + gc.tanh(x), gc.sigmoid(y)]
    f = gc.function([x, y], outs)
    assert "def _graphc_function(float=_NO, abs=_NO," in f.source
    for a, b in ((0.5, -2.0), (-3.0, 1e-200), (800.0, -0.0)):
        run = g.run(outs, {x: a, y: b})
        for args in ((a, b), (np.float64(a), np.float64(b)), (np.array(a), np.array(b)),
                     (numpy_path(a), numpy_path(b))):
            for p, r in zip(f(*args), run):
                assert type(p) is type(r) and same_bits(p, r), (args, p, r)


def test_float_path_leaves_other_arguments_to_the_numpy_path():
    """A 0-d array beside an argument the float path does not take (an int, a float32, a
    big-endian float) still computes g.run's values, and the caller's arrays are unchanged."""
    g, x, y, outs = cs231n()
    f = gc.function([x, y], outs)
    for other in (2, np.int32(-3), np.float32(0.5), np.array(0.5, np.float32), numpy_path(0.5)):
        X = np.array(3.0)
        run = g.run(outs, {x: X, y: other})
        for args in ((X, other), (other, X)):
            want = run if args[0] is X else g.run(outs, {x: other, y: X})
            for p, r in zip(f(*args), want):
                assert type(p) is type(r) and same_bits(p, r), (args, p, r)
        assert X.tobytes() == np.array(3.0).tobytes() and X.shape == ()


#: Integer constants a float64 may not hold: NumPy casts them to float64 (rounding) when
#: they meet a float64 operand, where Python would compare them exactly.
BIG_INTS = [2**53 - 1, 2**53, 2**53 + 1, 2**60 + 1, 2**63 - 1, -2**63, -(2**53 + 1),
            2**64 - 1, np.int64(2**53 + 1), np.int64(-(2**62 + 1)), np.uint64(2**64 - 1), True]


@pytest.mark.parametrize("c", BIG_INTS, ids=repr)
def test_float_path_casts_int_constants_to_float64_as_numpy_does(c):
    """A comparison, a selection or arithmetic of a float with an int constant (weak Python
    int or NumPy integer) gives NumPy's values and types: the constant cast to float64 first."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    outs = [gc.equal(x, c), gc.not_equal(c, x), gc.greater(x, c), gc.greater_equal(x, c),
            gc.less(c, x), gc.less_equal(x, c), gc.where(x >= c, x, y) * 2.0,
            gc.where(x > y, x, c), gc.where(x > y, c, x), gc.maximum(x, c), gc.minimum(c, y),
            x * c, y / c, c - x]
    f = gc.function([x, y], outs)
    assert "over Python floats" in f.source
    cast = float(np.asarray(c).astype(np.float64))  # NumPy's own cast: the oracle's constant
    for a in (cast, np.nextafter(cast, np.inf), np.nextafter(cast, -np.inf), 0.5):
        b = -1.0
        run = g.run(outs, {x: a, y: b})
        by_hand = [a == cast, cast != a, a > cast, a >= cast, cast < a, a <= cast,
                   (a if a >= cast else b) * 2.0, a if a > b else cast, cast if a > b else a,
                   max(a, cast), min(cast, b), a * cast, b / cast, cast - a]
        assert [float(v) for v in run] == by_hand, (c, a)
        for p, r in zip(f(a, b), run):
            assert type(p) is type(r) and np.asarray(p).dtype == np.asarray(r).dtype
            assert same_bits(p, r), (c, a, p, r)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_floats_skip_the_argument_check_beside_an_input_named_float(dtype, monkeypatch):
    """On the NumPy path a Python float becomes a NumPy scalar without the full argument
    check, also when an input named ``float`` (a parameter) shadows the builtin."""
    calls = []

    def counting(node, value):
        calls.append(node.name)
        return gc.runtime.check_feed_value(node, value)
    monkeypatch.setattr(codegen, "check_feed_value", counting)
    g = gc.Graph()
    x, y = g.placeholder("float", (), dtype=dtype), g.placeholder("y", (), dtype=dtype)
    out = x / y  # y = 0.0: the float path hands the call to the NumPy path
    f = gc.function([x, y], out)
    for a, b in ((1.5, 0.0), (1.5, 0.25)):
        value = f(a, b)
        want = g.run(out, {x: a, y: b})
        assert type(value) is type(want) and same_bits(value, want)
    assert calls == []
    f(1.5, 2)  # an int: the check converts it
    assert calls == ["y"]


@pytest.mark.parametrize("backend", ["source", "vm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_trusted_argument_that_fails_to_convert_names_the_argument_stage_and_input(
        dtype, backend):
    """trust_input skips the checks; an argument outside the promise that the conversion
    refuses is reported as an argument error in the check's words, naming the input, not as a
    failure while storing results."""
    g = gc.Graph()
    x, y = g.placeholder("x", (), dtype=dtype), g.placeholder("y", (), dtype=dtype)
    outs = [x * y + 1.0, gc.exp(y)]
    f = gc.function([x, y], outs, trust_input=True, backend=backend)
    checked = gc.function([x, y], outs, backend=backend)
    bad = ["a", None, np.array([3.0])] if dtype == "float64" and backend == "source" else ["a"]
    for value in bad:
        with pytest.raises(gc.FeedError) as plain:
            checked(0.5, value)
        with pytest.raises(gc.FeedError) as info:
            f(0.5, value)
        message = str(info.value)
        assert message.startswith("compiled function failed while converting its arguments")
        assert "placeholder node 'y'" in message and "test_compiler_fast_paths.py" in message
        assert str(plain.value).split(" (called at")[0] in message  # the check's own words
        assert message.endswith(f"(called at {__file__}:{info.tb.tb_lineno})")
    assert f(0.5, 2.0)[0] == 2.0  # and the function still works


@pytest.mark.parametrize("backend", ["source", "vm"])
def test_outputs_simplified_to_an_input_variable_or_constant_keep_g_runs_types(backend):
    """``x * 1.0`` simplified to ``x`` (and ``x - 0``, ``-(-x)``, a variable times one, a
    folded constant) is a NumPy scalar as in g.run, not a copy as a 0-d array; fetching ``x``
    itself or a ``where`` still gives g.run's 0-d arrays."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    n = g.placeholder("n", (), dtype="int64")
    v = g.variable("v", np.array(2.0))
    c = g.constant(1.5)
    outs = {"x*1": x * 1.0, "x-0": x - 0.0, "--x": -(-x), "v*1": v * 1.0, "exp(c)": gc.exp(c),
            "x": x, "where": gc.where(x > y, x, y), "n*1": n * 1, "x*1 again": 1.0 * x,
            "y*y": y * y}
    f = gc.function([x, y, n], outs, backend=backend)
    trusted = gc.function([x, y, n], outs, backend=backend, trust_input=True)
    for a, b in ((0.5, 1.0), (-0.0, 2.0), (float("nan"), 1.0)):
        run = g.run(outs, {x: a, y: b, n: 3})
        assert type(run["x*1"]) is np.float64 and type(run["x"]) is np.ndarray  # (the oracle)
        for fn, args in ((f, (a, b, 3)), (f, (np.array(a), np.array(b), np.array(3))),
                         (trusted, (a, b, np.array(3))),  # (trusted: arrays of the dtype)
                         (trusted, (np.array(a), np.array(b), np.array(3)))):
            got = fn(*args)
            for key, want in run.items():
                assert type(got[key]) is type(want), (key, args, got[key], want)
                assert same_bits(got[key], want), (key, args)
    value = f(np.array(0.5), 1.0, 3)["x"]
    value[()] = 7.0  # still a copy: the caller's array and the next call keep their values
    assert f(0.5, 1.0, 3)["x"] == 0.5


def _bool_float_program(rng):
    """A random scalar program where comparisons' bools meet float64: selected by where,
    maximum and minimum, then through exp, tanh, log1p and arithmetic, with int and bool
    constants (weak Python ones and NumPy ones) mixed in."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    constants = [0, 1, -3, True, False, 2.5, np.int64(2), np.bool_(True)]

    def pick(pool):  # a node of the pool or a constant
        if rng.random() < 0.25:
            c = constants[rng.integers(len(constants))]
            return g.constant(c) if isinstance(c, np.generic) else c
        return pool[rng.integers(len(pool))]

    def node(pool):
        return pool[rng.integers(len(pool))]

    floats, bools = [x, y], [x > 0.0]
    for _ in range(int(rng.integers(2, 7))):
        kind = rng.integers(5)
        if kind == 0:  # a comparison
            compare = [gc.greater, gc.less, gc.greater_equal, gc.equal][rng.integers(4)]
            bools.append(compare(node(floats), pick(floats + bools)))
        elif kind == 1:  # where, a bool selected beside a float
            a, b = pick(bools), node(floats)
            floats.append(gc.where(node(bools), *((a, b) if rng.random() < 0.5 else (b, a))))
        elif kind == 2:
            a, b = pick(bools), node(floats)
            op = gc.maximum if rng.random() < 0.5 else gc.minimum
            floats.append(op(*((a, b) if rng.random() < 0.5 else (b, a))))
        elif kind == 3:
            floats.append([gc.exp, gc.tanh, gc.log1p][rng.integers(3)](floats[-1]))
        else:
            floats.append(floats[-1] * pick(bools) + pick(floats))
    nodes = [n for n in floats[2:] + bools if isinstance(n, gc.Node) and n.op != "constant"]
    outs = [nodes[k] for k in rng.permutation(len(nodes))[:3]]
    return g, x, y, outs + [floats[-1]] if floats[-1] not in outs and len(floats) > 2 else outs


@pytest.mark.parametrize("backend", ["source", "vm"])
def test_comparison_results_meeting_float64_give_g_runs_values_and_types(backend):
    """A comparison's bool that where/maximum/minimum select into a float64 value is 1.0 or
    0.0 there, as NumPy casts it: exp(where(x > y, x > 0, y)) is e, not np.exp(True)'s
    float16 2.719, and where(x > y, x > 0, y) itself is array(1.), not array(True)."""
    g = gc.Graph()
    x, y = g.placeholder("x", ()), g.placeholder("y", ())
    b = x > 0.0
    outs = [gc.exp(gc.where(x > y, b, y)), gc.where(x > y, b, y), gc.tanh(gc.maximum(b, y)),
            gc.log1p(gc.minimum(y, b)), gc.maximum(b, y)]
    for trust in (False, True):
        f = gc.function([x, y], outs, backend=backend, trust_input=trust)
        if backend == "source":
            assert "over Python floats" in f.source
        got, run = f(1.0, 0.5), g.run(outs, {x: 1.0, y: 0.5})
        assert float(run[0]) == math.e and run[1].dtype == np.float64  # (the oracle)
        for p, r in zip(got, run):
            assert type(p) is type(r) and np.asarray(p).dtype == r.dtype and same_bits(p, r)
    rng = np.random.default_rng(15)
    values = [1.0, 0.5, -0.0, 0.0, -2.0, 3.0, float("nan"), float("inf")]
    for _ in range(25):
        g, x, y, outs = _bool_float_program(rng)
        fs = [gc.function([x, y], outs, backend=backend, trust_input=trust)
              for trust in (False, True)]
        for _ in range(4):
            a, b = values[rng.integers(len(values))], values[rng.integers(len(values))]
            run = g.run(outs, {x: a, y: b})
            for fn in fs:
                for args in ((a, b), (np.float64(a), np.array(b))):
                    for o, p, r in zip(outs, fn(*args), run):
                        assert type(p) is type(r), (o, args, p, r)
                        assert np.asarray(p).dtype == np.asarray(r).dtype, (o, args, p, r)
                        assert same_bits(p, r), (o, args, p, r)


@pytest.mark.parametrize("backend", ["source", "vm"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_trusted_python_ints_and_bools_for_0d_inputs_give_g_runs_values(dtype, backend):
    """trust_input with a Python int (or bool) for a 0-d integer input: the value g.run gives,
    also where rewriting made the input itself an output (``n * 1`` is ``n``)."""
    g = gc.Graph()
    n = g.placeholder("n", (), dtype=dtype)
    outs = [n * 1, n + 5, n, gc.equal(n, 1)] if dtype != "bool" else \
        [gc.logical_not(n), n, gc.where(n, 2.0, 3.0), n * True]
    f = gc.function([n], outs, backend=backend, trust_input=True)
    for value in ((3, -7, np.array(3, dtype=dtype)) if dtype != "bool"
                  else (True, False, np.array(True))):
        run = g.run(outs, {n: value})
        for p, r in zip(f(value), run):
            assert type(p) is type(r) and np.asarray(p).dtype == np.asarray(r).dtype, (p, r)
            assert same_bits(p, r), (value, p, r)
