"""Graph building: the invariants its fast paths keep (sites, consumers, sharing keys, the
garbage collector's state) and build_grad adding equal contributions once."""
from __future__ import annotations

import gc as collector
import threading

import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import Case

from test_custom_ops import fresh_ops  # noqa: F401  (a fixture: the tests' ops are removed)

HERE = __file__


def _line_of(text: str) -> int:
    with open(HERE) as fh:
        return next(k for k, line in enumerate(fh, 1) if text in line)


def _consumers_by_scan(g) -> dict:
    """Each node's consumers, recomputed from the inputs (the oracle for node.consumers)."""
    out = {n.id: [] for n in g.nodes}
    for n in g.nodes:
        for x in dict.fromkeys(n.inputs):  # x * x is one consumer
            out[x.id].append(n)
    return out


def _tanh_chain(depth):
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    h = x
    for _ in range(depth):
        h = gc.tanh(h)
    return g, x, gc.sum(h)


# -- sites ---------------------------------------------------------------------------------------
def test_forward_and_derivative_nodes_point_at_the_users_line():
    g, x, loss = _tanh_chain(3)
    first = len(g)
    dx = gc.grad(loss, x)  # the gradient's line
    line = _line_of("dx = gc.grad(loss, x)  # the gradient's line")
    assert {n.site for n in g.nodes[first:]} == {f"{HERE}:{line}"}
    assert dx.site == f"{HERE}:{line}"
    assert loss.site == f"{HERE}:{_line_of('    return g, x, gc.sum(h)')}"


def _cube_bprop(node, g, i):
    (x,) = node.inputs
    return g * 3.0 * gc.square(x)  # the user's bprop line


def test_nodes_a_user_bprop_builds_point_at_that_bprop(fresh_ops):
    cube = gc.define_op("test_cube", infer=lambda x: (x.shape, x.dtype),
                        kernel=lambda x: x ** 3, bprop=_cube_bprop,
                        cases=[Case(((3,),))])
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    y = gc.sum(gc.tanh(cube(x)))
    first = len(g)
    dx = gc.grad(y, x)  # the grad call
    bprop_site = f"{HERE}:{_line_of('# the user' + chr(39) + 's bprop line')}"
    call_site = f"{HERE}:{_line_of('dx = gc.grad(y, x)  # the grad call')}"
    sites = {n.site for n in g.nodes[first:]}
    assert sites == {bprop_site, call_site}
    (square,) = [n for n in g.nodes[first:] if n.op == "square" and n.inputs == (x,)]
    assert square.site == bprop_site  # tanh's bprop squares too: at the call's line
    xv = np.array([0.3, -0.5, 0.9])
    t = np.tanh(xv ** 3)
    np.testing.assert_allclose(g.run(dx, {x: xv}), (1 - t * t) * 3 * xv ** 2, rtol=1e-12)


def test_inputs_of_two_graphs_fail_before_anything_is_built():
    g, h = gc.Graph(), gc.Graph()
    a, b = g.placeholder("a", (2,)), h.placeholder("b", (2,))
    with pytest.raises(gc.GraphcError, match="cannot mix nodes of two graphs.*'b'"):
        gc.where(a > 0, 3.0, b)
    assert [n.op for n in g.nodes] == ["placeholder", "constant", "greater"]  # no 3.0


# -- consumers -----------------------------------------------------------------------------------
def test_consumers_stay_right_when_gradients_drop_nodes():
    g, x, loss = _tanh_chain(4)
    assert x.consumers == (g.nodes[1],)  # indexed before the gradients
    gc.grad(loss, x)
    h = gc.square(x)
    for n in g.nodes:
        assert list(n.consumers) == _consumers_by_scan(g)[n.id], n
    assert h in x.consumers


def test_consumers_indexed_during_a_gradient_call_are_indexed_again_after_its_drops(
        fresh_ops):
    g, x, loss = _tanh_chain(3)
    seen = []

    def bprop(node, grad, i):  # reads consumers while derivative nodes are being built
        part = grad * 2.0
        seen.append(len(node.inputs[0].consumers))
        return part

    double = gc.define_op("test_double", infer=lambda a: (a.shape, a.dtype),
                          kernel=lambda a: 2 * a, bprop=bprop, cases=[Case(((3,),))])
    y = gc.sum(double(loss * x))
    gc.grad(y, x)
    assert seen
    for n in g.nodes:
        assert list(n.consumers) == _consumers_by_scan(g)[n.id], n


# -- sharing keys of weak constants --------------------------------------------------------------
def test_weak_constants_are_shared_only_when_equal_bit_for_bit_and_type():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    with g._deriving(1):
        made = {repr(v): g._weak_constant(v) for v in (0.0, -0.0, 1, 1.0, True, float("nan"))}
        again = {repr(v): g._weak_constant(v) for v in (0.0, -0.0, 1, 1.0, True, float("nan"))}
    assert again == made  # each value found again
    assert len({id(n) for n in made.values()}) == 6  # and none taken for another
    assert np.signbit(made["-0.0"].attrs["value"]) and not np.signbit(made["0.0"].attrs["value"])
    assert made["1"].dtype == np.int64 and made["True"].dtype == np.bool_
    with g._deriving(1):  # the dtypes NumPy gives ops on them, weak scalars included
        assert gc.mul(x, 1).dtype == np.float64
        assert gc.add(g.placeholder("i", (2,), "int8"), 1).dtype == np.int8
        with pytest.raises(gc.DTypeError):
            gc.add(g["i"], 300)  # NumPy: 300 does not fit int8


# -- the garbage collector -----------------------------------------------------------------------
def test_the_collector_waits_during_gradients_and_is_restored_after(fresh_ops):
    g, x, loss = _tanh_chain(2)
    states = []

    def bprop(node, grad, i):
        states.append(collector.isenabled())
        return grad * 2.0

    double = gc.define_op("test_double_gc", infer=lambda a: (a.shape, a.dtype),
                          kernel=lambda a: 2 * a, bprop=bprop, cases=[Case(((3,),))])
    y = gc.sum(double(loss * x))
    assert collector.isenabled()
    gc.grad(y, x)
    assert states == [False] and collector.isenabled()
    collector.disable()  # a caller who turned it off keeps it off
    try:
        gc.hessian(y, x)
        assert not collector.isenabled()
    finally:
        collector.enable()

    def failing(node, grad, i):
        raise ValueError("a rule that fails")

    broken = gc.define_op("test_broken_gc", infer=lambda a: (a.shape, a.dtype),
                          kernel=lambda a: 2 * a, bprop=failing, cases=[Case(((3,),))])
    with pytest.raises(ValueError, match="a rule that fails"):  # on again after a failure
        gc.grad(gc.sum(broken(x)), x)
    assert collector.isenabled()


def test_gradients_in_threads_leave_the_collector_on():
    errors = []

    def work():
        try:
            for _ in range(5):
                g, x, loss = _tanh_chain(30)
                gc.grad(loss, x)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and collector.isenabled()


# -- equal contributions -------------------------------------------------------------------------
def _central_differences(f, x0, h=1e-6):
    out = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[i] = h
        out[i] = (f(x0 + e) - f(x0 - e)) / (2 * h)
    return out


def test_weight_decay_gradient_adds_its_term_once():
    rng = np.random.default_rng(0)
    g = gc.Graph()
    X = g.placeholder("X", (5, 4))
    W = g.variable("W", rng.standard_normal((4, 3)))
    loss = gc.sum(gc.tanh(X @ W)) + 1e-2 * gc.sum(W * W)
    first = len(g)
    dW = gc.grad(loss, W)
    added = g.nodes[first:]
    # matmul(X^T, spread(1 - t^2)) + (2 * 0.01) W: one add, no second decay term
    assert [n.op for n in added].count("add") == 1
    decay = [n for n in added if n.op == "mul" and W in n.inputs]
    assert len(decay) == 1
    (c,) = [i for i in decay[0].inputs if i is not W]
    np.testing.assert_array_equal(c.attrs["value"] if c.op == "constant"
                                  else c.inputs[0].attrs["value"], 2e-2)
    Xv = rng.standard_normal((5, 4))
    t = np.tanh(Xv @ W.value)
    want = Xv.T @ (1 - t * t) + 2e-2 * W.value  # closed form
    np.testing.assert_allclose(g.run(dW, {X: Xv}), want, rtol=1e-12)
    f = gc.function([X], dW)
    np.testing.assert_array_equal(f(Xv), g.run(dW, {X: Xv}))


def test_k_equal_contributions_become_k_times_one():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    s, e = gc.sin(x), gc.exp(x)
    ss = s * s
    y = gc.sum(ss * s) + gc.sum(e * e)  # s * s and e * e: one node as both inputs
    first = len(g)
    dx = gc.grad(y, x)
    xv = np.array([0.4, -1.1, 2.0])
    want = 3 * np.sin(xv) ** 2 * np.cos(xv) + 2 * np.exp(2 * xv)
    np.testing.assert_allclose(g.run(dx, {x: xv}), want, rtol=1e-12)
    fd = _central_differences(lambda v: g.run(y, {x: v}), xv)
    np.testing.assert_allclose(g.run(dx, {x: xv}), fd, rtol=1e-7)
    # e * e: both inputs contribute e itself (the seed's ones vanish): added once, as 2 e;
    # s * s * s: s gets s * s three times (twice from s * s, once from (s * s) * s): 3 s^2
    added = g.nodes[first:]
    factors = {(n.inputs[0].id, int(n.inputs[1].attrs["value"])) for n in added
               if n.op == "mul" and n.inputs[1].op == "constant"}
    assert factors == {(e.id, 2), (ss.id, 3)}
    assert [n.op for n in added].count("add") == 1  # the two sums' gradients, nothing else


def test_three_equal_contributions_sum_exactly_as_three_times_one():
    g = gc.Graph()
    x = g.placeholder("x", ())
    e = gc.exp(x)
    y = gc.add(gc.add(e, e), e)  # dy/de gets the seed three times
    first = len(g)
    dx = gc.grad(y, x)
    assert [n.op for n in g.nodes[first:]].count("add") == 0
    for v in (0.3, -2.0, 5.5):
        np.testing.assert_allclose(g.run(dx, {x: v}), 3 * np.exp(v), rtol=1e-15)


def test_unequal_contributions_keep_their_order():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y = gc.sum(gc.sin(x) + gc.cos(x) + gc.exp(x))
    dx = gc.grad(y, x)
    h = gc.Graph()
    xh = h.placeholder("x", (2,))
    yh = gc.sum(gc.sin(xh) + gc.cos(xh) + gc.exp(xh))
    dh = gc.grad(yh, xh)
    assert gc.to_text(g) == gc.to_text(h)  # deterministic construction
    xv = np.array([0.1, 0.7])
    np.testing.assert_allclose(g.run(dx, {x: xv}), np.cos(xv) - np.sin(xv) + np.exp(xv),
                               rtol=1e-14)
    assert dh is not None


def test_float32_weight_decay_stays_float32():
    g = gc.Graph()
    W = g.placeholder("W", (3, 2), "float32")
    loss = gc.sum(gc.tanh(W)) + 0.5 * gc.sum(W * W)
    dW = gc.grad(loss, W)
    assert dW.dtype == np.float32
    Wv = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
    t = np.tanh(Wv)
    np.testing.assert_allclose(g.run(dW, {W: Wv}), 1 - t * t + Wv, rtol=1e-6)


def test_a_spread_scalar_takes_the_factor_not_the_whole_array():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))  # mean's 1/n is known only at run time
    h = gc.tanh(x)
    y = gc.mean(h * h)
    first = len(g)
    dx = gc.grad(y, x)
    doubled = [n for n in g.nodes[first:] if n.op == "mul" and any(
        i.op == "constant" and i.attrs["value"] == 2 for i in n.inputs)]
    assert [n.shape for n in doubled] == [()]  # 2 * (1/n), spread after
    xv = np.random.default_rng(3).standard_normal((4, 3))
    t = np.tanh(xv)
    np.testing.assert_allclose(g.run(dx, {x: xv}), 2 * t * (1 - t * t) / t.size, rtol=1e-14)
    fd = _central_differences(lambda v: g.run(y, {x: v}), xv)
    np.testing.assert_allclose(g.run(dx, {x: xv}), fd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("value", [np.array(100, np.int8), np.array(40000, np.float16),
                                   np.array(0.1, np.float32), np.array(1e308)])
def test_a_factor_that_would_wrap_round_or_overflow_is_not_folded(value):
    """x*c + c*x contributes c*x twice: 2 goes into c only where 2c is exact in the product's
    dtype (an int8 100 would wrap, a float16 40000 overflow, a float32 0.1 round)."""
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    c = g.constant(value)
    gx, = gc.gradients(gc.sum(gc.sin(x * c + c * x)), [x])
    X = np.full(3, 0.3 if float(value) < 1e300 else 1e-300)
    cv = float(value)
    expected = cv * np.cos(2 * (cv * X)) * 2  # (in this order: no overflow at 1e308)
    np.testing.assert_allclose(g.run(gx, {x: X}), expected, rtol=1e-12)
    np.testing.assert_allclose(gc.function([x], gx)(X), expected, rtol=1e-12)


def test_consumers_read_from_threads_are_indexed_once(monkeypatch):
    """The consumer index is extended on demand; threads reading it at once extend it once."""
    import sys
    import threading

    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: overlapping catch-ups if unguarded
    try:
        g = gc.Graph()
        x = g.placeholder("x", (3,))
        y = x
        for _ in range(5000):
            y = y * 1.5 + x
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(len(x.consumers)))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert seen == [5001] * 4  # every add, and the first product
    assert len(g._consumers) == len(g)
