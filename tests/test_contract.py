"""The ``contract`` pass: ``x + a*y`` on large float arrays is one BLAS axpy into x's dying
buffer, rounded once (or, on a BLAS without fused multiply-adds, exactly as g.run rounds);
what it must not touch stays a product and a sum."""
from fractions import Fraction

import numpy as np
import pytest

import graphc as gc
from graphc.compiler import contract as contraction
from graphc.compiler.passes import DEFAULT_PASSES

RNG = np.random.default_rng(15)
BACKENDS = ["source", "vm"]
ROWS, COLS = 96, 96  # 9216 elements: above MIN_SIZE
UNCONTRACTED = tuple(p for p in DEFAULT_PASSES if p != "contract")


def _correct(x: np.ndarray, a: float, y: np.ndarray, negate=False) -> np.ndarray:
    """x + a*y (x - a*y) computed exactly, rounded once to x's dtype."""
    sign = -1 if negate else 1
    a = Fraction(float(np.asarray(a, x.dtype)))
    exact = [float(Fraction(float(p)) + sign * a * Fraction(float(q)))
             for p, q in zip(x.flat, y.flat)]
    return np.array(exact).astype(x.dtype).reshape(x.shape)


def _decay_step(dtype, decay=2e-4):
    """dW = X.T @ D + decay W, as a weight decay's gradient has it."""
    g = gc.Graph()
    X = g.placeholder("X", (32, ROWS), dtype)
    D = g.placeholder("D", (32, COLS), dtype)
    W = g.variable("W", RNG.standard_normal((ROWS, COLS)).astype(dtype))
    product = gc.transpose(X) @ D
    return g, (X, D, W, product), product + decay * W


def _feeds(dtype):
    return [RNG.standard_normal((32, ROWS)).astype(dtype),
            RNG.standard_normal((32, COLS)).astype(dtype)]


def _contracted(f) -> int:
    return f.stats["rules"].get("contract", 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_weight_decay_gradient_is_one_axpy_rounded_once(dtype, backend):
    g, (X, D, W, product), dW = _decay_step(dtype)
    f = gc.function([X, D], dW, backend=backend)
    assert _contracted(f) == 1 and f.stats["ops"].get("scaled add") == 1
    assert "mul" not in f.stats["ops"] and "add" not in f.stats["ops"]
    assert f.stats["upcasts"] == []
    feeds = _feeds(dtype)
    got = f(*feeds)
    want, m = g.run([dW, product], dict(zip([X, D], feeds)))
    assert got.dtype == np.dtype(dtype) and got.shape == (ROWS, COLS)
    correct = _correct(m, 2e-4, W.value)
    # once rounded where the BLAS kernel fuses the multiply-add, else g.run's two roundings
    assert np.all((got == correct) | (got == want))
    assert np.count_nonzero(got == correct) >= np.count_nonzero(want == correct)


@pytest.mark.parametrize("form, negate", [
    (lambda m, c, w: m + c * w, False), (lambda m, c, w: c * w + m, False),
    (lambda m, c, w: m + w * c, False), (lambda m, c, w: w * c + m, False),
    (lambda m, c, w: m - c * w, True), (lambda m, c, w: m - w * c, True)])
def test_every_form_of_a_scaled_add(form, negate):
    g, (X, D, W, product), _ = _decay_step("float32")
    out = form(product, -0.37, W)
    f = gc.function([X, D], out)
    assert _contracted(f) == 1
    feeds = _feeds("float32")
    got = f(*feeds)
    want, m = g.run([out, product], dict(zip([X, D], feeds)))
    assert np.all((got == _correct(m, -0.37, W.value, negate)) | (got == want))


@pytest.mark.parametrize("rate_dtype, dtype", [("float32", "float32"), ("float64", "float64"),
                                               ("float32", "float64")])
def test_a_learning_rate_fed_at_call_time(rate_dtype, dtype):
    """An SGD step's x - lr*g, lr a 0-d input (a float32 rate with float64 arrays is exact
    in float64, so nothing is widened)."""
    g, (X, D, W, product), _ = _decay_step(dtype)
    lr = g.placeholder("lr", (), rate_dtype)
    out = product - lr * W
    f = gc.function([X, D, lr], out)
    plain = gc.function([X, D, lr], out, passes=UNCONTRACTED)
    assert _contracted(f) == 1
    assert len(f.stats["upcasts"]) == len(plain.stats["upcasts"]) == (rate_dtype != dtype)
    feeds = _feeds(dtype) + [np.asarray(0.1, rate_dtype)]
    got = f(*feeds)
    want, m = g.run([out, product], dict(zip([X, D, lr], feeds)))
    assert got.dtype == np.dtype(dtype)
    assert np.all((got == _correct(m, feeds[2], W.value, negate=True)) | (got == want))


def _uncontracted_cases():
    def small(g, X, D, W, m):  # 8 x 96 = 768 elements
        return gc.transpose(X[:, :8]) @ D + 2.0 * W[:8]

    def lives_on(g, X, D, W, m):  # x is an input: it would have to be copied first
        return g.placeholder("P", (ROWS, COLS)) + 2.0 * W

    def product_read_twice(g, X, D, W, m):
        p = 2.0 * W
        return [m + p, p]

    def x_read_twice(g, X, D, W, m):
        return [m + 2.0 * W, m]

    def broadcast(g, X, D, W, m):  # a bias: y broadcasts
        return m + 2.0 * g.variable("b", np.ones(COLS))

    def widened(g, X, D, W, m):  # a strong float64 factor of a float32 array
        w32 = g.variable("w32", np.ones((ROWS, COLS), "float32"))
        return m + np.float64(2.0) * w32

    def integers(g, X, D, W, m):
        k = g.placeholder("k", (ROWS, COLS), "int64")
        return gc.cast(m, "int64") + 2 * k

    def array_factor(g, X, D, W, m):  # a is not 0-d
        return m + g.variable("c", np.full((ROWS, COLS), 2.0)) * W

    return [small, lives_on, product_read_twice, x_read_twice, broadcast, widened, integers,
            array_factor]


@pytest.mark.parametrize("case", _uncontracted_cases(), ids=lambda c: c.__name__)
def test_what_stays_a_product_and_a_sum(case):
    g, (X, D, W, product), _ = _decay_step("float64")
    out = case(g, X, D, W, product)
    inputs = [X, D] + [n for n in g.nodes if n.op == "placeholder" and n not in (X, D)]
    f = gc.function(inputs, out)
    assert _contracted(f) == 0 and "scaled add" not in f.stats["ops"]
    feeds = _feeds("float64") + [np.ones(n.shape, n.dtype) for n in inputs[2:]]
    got, want = f(*feeds), g.run(out, dict(zip(inputs, feeds)))
    for a, b in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        assert np.array_equal(a, b)


def test_a_large_elementwise_chain_is_left_to_fusion():
    """From fuse's 8 MB on, exp(z) + 2 y is one fused pass (z, y read once), not an exp
    pass and an axpy."""
    g = gc.Graph()
    z, y = g.placeholder("z", (1000, 1100)), g.placeholder("y", (1000, 1100))
    f = gc.function([z, y], gc.exp(z) + 2.0 * y)
    assert _contracted(f) == 0 and f.stats["rules"]["fuse:groups"] == 1


def test_sizes_known_at_the_call_only():
    """A batch dimension of None: the program specialised to the call's shapes contracts."""
    g = gc.Graph()
    X = g.placeholder("X", (None, 64))
    W = g.variable("W", RNG.standard_normal((64, 160)))
    V = g.placeholder("V", (None, 160))
    out = X @ W + 0.5 * V
    f = gc.function([X, V], out)
    assert _contracted(f) == 0  # (None, 160): its size is not known yet
    feeds = [RNG.standard_normal((100, 64)), RNG.standard_normal((100, 160))]
    got = f(*feeds)
    assert "scaled add" in f.source
    m = g.run(X @ W, {X: feeds[0]})
    assert np.all((got == _correct(m, 0.5, feeds[1])) | (got == g.run(out, dict(zip([X, V],
                                                                                  feeds)))))


def test_off_by_choice_and_under_check_numerics():
    g, (X, D, W, product), dW = _decay_step("float64")
    assert _contracted(gc.function([X, D], dW, passes=UNCONTRACTED)) == 0
    checked = gc.function([X, D], dW, check_numerics=True)
    assert _contracted(checked) == 0
    g2, (X, D, W, product), dW = _decay_step("float64", decay=1e300)
    checked = gc.function([X, D], dW, check_numerics=True)
    W.value = np.full((ROWS, COLS), 1e10)  # 1e310: inf
    with pytest.raises(gc.NumericsError, match="mul"):  # the product, checked on its own
        checked(*_feeds("float64"))


def test_source_and_vm_agree_bit_for_bit():
    g, (X, D, W, product), dW = _decay_step("float32")
    feeds = _feeds("float32")
    a, b = (gc.function([X, D], dW, backend=k)(*feeds) for k in BACKENDS)
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_kernel_writes_where_it_is_told(dtype):
    x = RNG.standard_normal((40, 50)).astype(dtype)
    y = RNG.standard_normal((40, 50)).astype(dtype)
    correct = _correct(x, 3.0, y)
    two_roundings = x + np.asarray(3.0, dtype) * y

    def check(value):
        assert value.dtype == np.dtype(dtype) and value.flags.c_contiguous
        assert np.all((value == correct) | (value == two_roundings))

    kernel = contraction.scaled_add
    fresh = kernel(x, 3.0, y, negate=False)  # a new array; x and y unchanged
    check(fresh)
    assert fresh is not x and np.array_equal(x + 0, x)
    own = x.copy()
    assert kernel(own, 3.0, y, negate=False, out=own) is own  # x's own dying buffer
    check(own)
    place = np.empty_like(x)
    assert kernel(x, 3.0, y, negate=False, out=place) is place  # an arena place
    check(place)
    donor = y.copy()  # y's dying buffer: y is read before it is overwritten
    assert kernel(x, 3.0, donor, negate=False, out=donor) is donor
    check(donor)
    fortran = np.empty((40, 50), dtype, order="F")  # not C-ordered: computed aside, copied
    assert kernel(x, 3.0, y, negate=False, out=fortran) is fortran
    assert np.all((fortran == correct) | (fortran == two_roundings))
    transposed = np.ascontiguousarray(y.T).T  # y read through a C-ordered copy
    check(kernel(x, 3.0, transposed, negate=False))
    minus = kernel(x, -3.0, y, negate=True)  # x - (-3) y
    check(minus)
    empty = np.zeros((0, 50), dtype)
    assert kernel(empty, 3.0, empty, negate=False).shape == (0, 50)
