"""schedule() keeps the lower-peaking of the creation and the greedy plan, and its shortcuts
(one numbering for both, the greedy walk abandoned once it cannot peak lower, a walk's term
form made only for the plan kept) give the plans that plan() computes on its own."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc.compiler import ir, passes
from graphc.compiler.schedule import (LEAVES, Numbered, _greedy, _plan, greedy_order,
                                      plan, schedule)

import test_agreement
import test_compiler
from test_io_json import same_bits


def _facts(p):
    """A plan as plain data: orders, reuse, frees and liveness by term position."""
    index = {id(t): i for i, t in enumerate(p.order + p.leaves)}
    return ([index[id(t)] for t in p.order], p.peak_bytes, p.profile,
            sorted((index[k], index[id(v)]) for k, v in p.reuse.items()),
            [[index[id(t)] for t in f] for f in p.frees],
            sorted((index[k], v) for k, v in p.last_use.items() if k in index and v != -1))


def _check(program) -> str:
    creation = plan(program, [t for t in program.terms if t.op not in LEAVES], "creation")
    greedy = plan(program, greedy_order(program), "greedy")
    chosen = schedule(program)
    lower = (greedy.peak_bytes is not None and creation.peak_bytes is not None
             and greedy.peak_bytes < creation.peak_bytes)
    want = greedy if lower else creation
    assert chosen.strategy == want.strategy
    assert [id(t) for t in chosen.order] == [id(t) for t in want.order]
    assert _facts(chosen) == _facts(want)
    return chosen.strategy


@settings(max_examples=test_agreement.EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(test_agreement.programs())
def test_schedule_is_the_lower_of_both_plans(program):
    inputs, outputs, _ = program
    p = ir.from_graph(inputs[0].graph, inputs, outputs, [])
    _check(p)
    _check(passes.optimize(p)[0])


def _bound_check(program) -> int:
    """The greedy order gives up on a beat only when its plan would reach it too: its bound
    never exceeds the plan's live bytes. Returns how many beats it gave up on."""
    facts = Numbered(program)
    order = _greedy(facts)
    walk = _plan(facts, order)
    if walk.peak_bytes is None:
        return 0
    given_up = 0
    for beat in sorted(set(walk.profile) | {1, walk.peak_bytes + 1}):
        if _greedy(facts, beat) is None:
            given_up += 1
            assert _plan(facts, order, beat) is None, beat
        else:
            assert _greedy(facts, beat) == order
    assert _greedy(facts, walk.peak_bytes + 1) == order  # the bound never passes the peak
    return given_up


@settings(max_examples=test_agreement.EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(test_agreement.programs())
def test_the_greedy_order_gives_up_only_on_a_peak_its_plan_reaches(program):
    inputs, outputs, _ = program
    p = ir.from_graph(inputs[0].graph, inputs, outputs, [])
    _bound_check(p)
    _bound_check(passes.optimize(p)[0])


def test_the_greedy_order_gives_up_early_on_a_chain_gradient():
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    h = x
    for _ in range(50):
        h = gc.tanh(h)
    loss = gc.sum(h)
    p = passes.optimize(ir.from_graph(g, [x], [loss, gc.grad(loss, x)], []))[0]
    assert _bound_check(p) > 0
    facts = Numbered(p)
    creation = _plan(facts, facts.computed())
    assert _greedy(facts, creation.peak_bytes) is None  # the chain: creation order stays
    assert schedule(p).strategy == "creation"


def test_schedule_on_networks_picks_greedy_where_it_peaks_lower():
    strategies = []
    g, (x, y, *_), loss, grads, _ = test_compiler.mlp(batch=256)
    strategies.append(_check(passes.optimize(ir.from_graph(g, [x, y], [loss] + grads, []))[0]))
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    h = x
    for _ in range(50):
        h = gc.tanh(h)
    loss = gc.sum(h)
    strategies.append(_check(passes.optimize(
        ir.from_graph(g, [x], [loss, gc.grad(loss, x)], []))[0]))
    g = gc.Graph()
    x = g.placeholder("x", (64, 64))
    w = g.variable("w", np.eye(64))
    z = gc.sum(gc.exp(x @ w) * gc.sin(x))
    strategies.append(_check(passes.optimize(
        ir.from_graph(g, [x], [z, gc.grad(z, w)], []))[0]))
    assert "greedy" in strategies and "creation" in strategies


@pytest.mark.parametrize("backend", ["source", "vm"])
def test_a_masked_fill_never_writes_into_its_condition_or_an_input(backend):
    """where(c, x, False) on bools: the condition dies at the where and has the result's kind,
    but only x's buffer may be filled; an input or variable x is never written."""
    g = gc.Graph()
    a = g.placeholder("a", (4,))
    xb = g.placeholder("xb", (4,), dtype=bool)
    m = g.variable("m", np.array([True, True, False, True]))
    outputs = [gc.where(gc.greater(a, 0.0), xb, False), gc.logical_not(xb),
               gc.where(gc.less(a, 0.0), m, False)]
    A, X = np.array([1.0, -1.0, 1.0, -1.0]), np.array([True, True, False, True])
    expected = g.run(outputs, {a: A, xb: X})
    given = X.copy()
    f = gc.function([a, xb], outputs, backend=backend)
    for ours, theirs in zip(f(A, given), expected):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(given, X)
    np.testing.assert_array_equal(m.value, [True, True, False, True])


def _forced(order_of, strategy):
    """A stand-in for schedule() that plans one given order."""
    return lambda program: plan(program, order_of(program), strategy)


@settings(max_examples=test_agreement.EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(test_agreement.programs())
def test_the_order_changes_no_value_bit_for_bit(program):
    """Every random program of the agreement property gives the same bits (and the same
    error class) in greedy order as in creation order (about a third of them have two
    different orders): an order never changes a kernel's inputs, only when it runs."""
    inputs, outputs, feed = program
    args = [feed[x] for x in inputs]
    module = importlib.import_module("graphc.compiler.function")  # (the package exports the
    real, results = module.schedule, []                          # function of that name)
    try:
        for forced in (_forced(greedy_order, "greedy"),
                       _forced(lambda p: [t for t in p.terms if t.op not in LEAVES], "creation")):
            module.schedule = forced
            f = gc.function(inputs, outputs)
            results.append(test_agreement._outcome(lambda: f(*args)))
    finally:
        module.schedule = real
    (kind, got), (base_kind, base) = results
    assert kind == base_kind, (got, base)
    if kind == "ok":
        assert all(same_bits(a, b) for a, b in zip(got, base))
