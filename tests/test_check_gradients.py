"""gc.check_gradients: central differences against the symbolic gradient.

Wrong gradients come from temporary ops whose bprop is deliberately off by a known amount;
they are removed from the registry after each test.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gc
from graphc.graph import apply
from graphc.ops.registry import REGISTRY, define
from graphc.testing import default_eps, numeric_gradient


@pytest.fixture
def square_op():
    """Register ``tmp_square`` (x**2) with a bprop of our choosing; unregister it afterwards."""
    names = []

    def make(bprop):
        name = f"tmp_square_{len(names)}"
        define(name, infer=lambda x: (x.shape, x.dtype), kernel=np.square, bprop=bprop)
        names.append(name)
        return lambda x: apply(name, [x])

    yield make
    for name in names:
        del REGISTRY[name]
    assert not any(n.startswith("tmp_square") for n in REGISTRY)


def test_a_correct_gradient_passes_and_returns_the_largest_error():
    rng = np.random.default_rng(0)
    g = gc.Graph()
    x = g.placeholder("x", (3, 2))
    W = g.variable("W", rng.standard_normal((2, 4)))
    y = gc.sum(gc.tanh(x @ W) ** 2) + gc.logsumexp(gc.reshape(x, (6,))) * gc.mean(gc.exp(W))
    err = gc.check_gradients(y, [x, W], {x: rng.standard_normal((3, 2))})
    assert isinstance(err, float) and 0.0 <= err < 1e-8


def test_the_returned_error_is_the_largest_absolute_difference(square_op):
    # bprop off by exactly 0.001 * (1 + index) per element
    offsets = np.array([1e-3, 2e-3, 3e-3])
    off_by = square_op(lambda node, g, i: g * (2.0 * node.inputs[0] + offsets))
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    y = gc.sum(off_by(x))
    err = gc.check_gradients(y, [x], {x: np.array([0.5, -1.0, 2.0])}, rtol=0.0, atol=0.01)
    assert err == pytest.approx(3e-3, rel=1e-5)


def test_a_wrong_gradient_raises_with_a_table_of_the_worst_entries(square_op):
    wrong = square_op(lambda node, g, i: g * (3.0 * node.inputs[0]))  # d x^2 is 2x, not 3x
    g = gc.Graph()
    x = g.placeholder("x", (5,))
    y = gc.sum(wrong(x), name="loss")
    xv = np.array([0.1, -4.0, 1.0, 0.0, 2.5])
    with pytest.raises(gc.GradientCheckError) as info:
        gc.check_gradients(y, [x], {x: xv})
    assert isinstance(info.value, gc.GraphcError) and isinstance(info.value, AssertionError)
    message = str(info.value)
    assert "'loss'" in message and "rtol=1e-05" in message
    header, *rows = [line for line in message.splitlines()[1:] if line.strip()]
    assert re.split(r"\s+", header.strip()) == ["node", "index", "symbolic", "numeric",
                                                "abs", "error"]
    # the failing entries, the worst first: |3x - 2x| = |x|; x = 0 agrees and is left out
    parsed = [re.split(r"\s+", row.strip()) for row in rows]
    assert [p[0] for p in parsed] == ["x"] * 4
    assert [p[1] for p in parsed] == ["(1,)", "(4,)", "(2,)", "(0,)"]
    for p, k in zip(parsed, [1, 4, 2, 0]):
        assert float(p[2]) == pytest.approx(3 * xv[k], rel=1e-6)
        assert float(p[3]) == pytest.approx(2 * xv[k], rel=1e-6)
        assert float(p[4]) == pytest.approx(abs(xv[k]), rel=1e-6)


def test_the_table_is_limited_to_the_ten_worst_entries_across_all_xs(square_op):
    wrong = square_op(lambda node, g, i: g * (2.0 * node.inputs[0] + 1.0))  # off by 1
    g = gc.Graph()
    a = g.placeholder("a", (4, 4))
    b = g.variable("b", np.full(3, 2.0))
    y = gc.sum(wrong(a)) * 2.0 + gc.sum(wrong(b))
    with pytest.raises(gc.GradientCheckError) as info:
        gc.check_gradients(y, [a, b], {a: np.zeros((4, 4))})
    rows = [line for line in str(info.value).splitlines()[2:] if line.strip()]
    assert len(rows) == 10
    assert rows[0].split()[0] == "a" and float(rows[0].split()[-1]) == pytest.approx(2.0)


def test_a_nan_gradient_is_reported(square_op):
    nan = square_op(lambda node, g, i: g * gc.log(node.inputs[0] - 10.0))
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    with np.errstate(all="ignore"):
        with pytest.raises(gc.GradientCheckError) as info:
            gc.check_gradients(gc.sum(nan(x)), [x], {x: np.array([1.0, 2.0])})
    assert "nan" in str(info.value).lower()


def test_non_scalar_y_is_checked_through_its_sum():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    y = gc.stack([gc.sin(x), x * x])  # (2, 3)
    assert gc.check_gradients(y, x, {x: np.array([0.3, -1.0, 2.0])}) < 1e-8


def test_feed_by_name_and_intermediate_xs():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    h = gc.exp(x)
    y = gc.sum(gc.log1p(h * h))
    assert gc.check_gradients(y, [h, x], {"x": np.array([0.1, -0.4])}) < 1e-8


def test_default_step_per_dtype():
    assert default_eps(np.float64) == pytest.approx(np.finfo(np.float64).eps ** (1 / 3))
    assert default_eps(np.float32) == pytest.approx(np.finfo(np.float32).eps ** (1 / 3))
    assert 1e-6 < default_eps(np.float64) < 1e-5 < 1e-3 < default_eps(np.float32) < 1e-2


def test_float32_graphs_check_with_a_looser_rtol():
    rng = np.random.default_rng(3)
    g = gc.Graph()
    x = g.placeholder("x", (6,), "float32")
    W = g.variable("W", rng.standard_normal((6, 3)).astype(np.float32))
    y = gc.sum(gc.tanh(x @ W) * gc.exp(x[:3])) + gc.sum(gc.softplus(x) * 3.0)
    feed = {x: rng.uniform(-1, 1, 6).astype(np.float32)}
    err = gc.check_gradients(y, [x, W], feed, rtol=1e-3, atol=1e-4)
    assert err < 1e-3
    with pytest.raises(gc.GradientCheckError):  # float64 tolerances are too tight for float32
        gc.check_gradients(y, [x, W], feed, rtol=1e-9, atol=1e-12)
    # the default float32 step is far better than the float64 one would be
    tiny = numeric_gradient(gc.sum(gc.sin(x)), x, feed, default_eps(np.float64))
    good = numeric_gradient(gc.sum(gc.sin(x)), x, feed, default_eps(np.float32))
    exact = np.cos(feed[x].astype(np.float64))
    assert np.max(np.abs(good - exact)) < 0.1 * np.max(np.abs(tiny - exact))


def test_numeric_gradient_is_central_differences():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y = gc.sum(x ** 3)
    xv = np.array([1.0, -2.0])
    eps = 1e-2
    want = ((xv + eps) ** 3 - (xv - eps) ** 3) / (2 * eps)  # = 3 x^2 + eps^2
    np.testing.assert_allclose(numeric_gradient(y, x, {x: xv}, eps), want, rtol=1e-10)


def test_check_gradients_does_not_change_the_feed():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    xv = np.array([0.5, 1.5])
    feed = {x: xv}
    gc.check_gradients(gc.sum(gc.sin(x)), [x], feed)
    np.testing.assert_array_equal(xv, [0.5, 1.5])
    assert list(feed) == [x]


def test_default_tolerances_follow_the_precision():
    g = gc.Graph()
    x = g.placeholder("x", (3,), "float32")
    feed = {x: np.float32([1.0, 2.0, 3.0])}
    assert gc.check_gradients(gc.sum(x ** 3), [x], feed) < 1e-2  # float32 defaults pass
    with pytest.raises(gc.GradientCheckError):
        gc.check_gradients(gc.sum(x ** 3), [x], feed, rtol=1e-5, atol=1e-8)
