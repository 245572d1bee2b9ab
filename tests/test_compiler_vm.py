"""The instruction-list back end (``backend="vm"``) keeps every promise of the generated
source: the same values bit for bit, the same errors naming the same node, updates, nested
outputs, random keys, check_numerics, trust_input, the caller's error state, copies."""
from __future__ import annotations

import collections
import importlib
import inspect

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import graphc as gc

import test_agreement
import test_compiler
import test_compiler_calls
from test_io_json import same_bits
import test_compiler_fast_paths

function_module = importlib.import_module("graphc.compiler.function")  # (not gc.function)


def _outcome(call):
    try:
        return "ok", call()
    except gc.GraphcError as exc:
        return type(exc), str(exc)


def _both(inputs, outputs, args, **options):
    """The outcome of the source and the VM back end on the same call."""
    source = gc.function(inputs, outputs, backend="source", **options)
    machine = gc.function(inputs, outputs, backend="vm", **options)
    assert source.stats["backend"] == "source" and machine.stats["backend"] == "vm"
    return _outcome(lambda: source(*args)), _outcome(lambda: machine(*args))


def _assert_same(outputs, want, got):
    """The same outcome: equal error class and message, or outputs equal bit for bit (BLAS
    products to a tight tolerance: a kernel may round by the alignment of its buffers)."""
    assert want[0] == got[0], (want, got)
    if want[0] != "ok":
        assert want[1] == got[1]
        return
    for node, a, b in zip(outputs, want[1], got[1]):
        if any(t.op == "matmul" for t in _ancestors(node)):
            assert test_agreement._same(a, b), (node, a, b)
        else:
            assert same_bits(a, b), (node, a, b)
        assert isinstance(a, np.ndarray) == isinstance(b, np.ndarray), (node, a, b)


def _ancestors(node):
    seen, stack = {}, [node]
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen[n.id] = n
            stack.extend(n.inputs)
    return seen.values()


@settings(max_examples=test_agreement.EXAMPLES, deadline=None,
          derandomize=not test_agreement.RANDOM, suppress_health_check=list(HealthCheck))
@given(test_agreement.programs(), st.booleans())
def test_vm_and_source_agree_bit_for_bit(program, check_numerics):
    inputs, outputs, feed = program
    args = [feed[x] for x in inputs]
    want, got = _both(inputs, outputs, args, check_numerics=check_numerics)
    _assert_same(outputs, want, got)


@pytest.mark.parametrize("depth", [3, 130])
def test_tanh_chain_gradient_bit_for_bit_and_auto_picks_by_size(depth):
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    h = x
    for _ in range(depth):
        h = gc.tanh(h)
    loss = gc.sum(h)
    dx = gc.grad(loss, x)
    X = np.linspace(-1, 1, 10)
    want, got = _both([x], [loss, dx], [X])
    _assert_same([loss, dx], want, got)
    auto = gc.function([x], [loss, dx])
    instructions = 4 * depth  # tanh, square, 1 - square, product per layer (the sum: 1 less)
    assert (instructions >= function_module.VM_THRESHOLD) == (depth == 130)
    assert auto.stats["backend"] == ("vm" if depth == 130 else "source")
    np.testing.assert_allclose(auto(X)[1], g.run(dx, {x: X}), rtol=1e-12)


def test_the_listing_names_every_node_and_is_no_program():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    w = g.variable("weights", np.ones(3))
    y = gc.sum(gc.tanh(x * w, name="it's"), name="total")
    f = gc.function([x], [y, gc.grad(y, w)], backend="vm")
    listing = f.source
    assert "'total'" in listing and "tanh" in listing and "'weights'" in listing
    assert '"it\'s"' in listing  # names are quoted
    with pytest.raises(SyntaxError):
        compile(listing, "<listing>", "exec")


def test_unknown_backend_is_an_error():
    g = gc.Graph()
    x = g.placeholder("x")
    with pytest.raises(gc.GraphcError, match="backend must be one of 'auto', 'source', 'vm'"):
        gc.function([x], x * 2.0, backend="numba")


def test_updates_nested_outputs_and_random_keys_match():
    def build():
        g = gc.Graph()
        x = g.placeholder("x", (4, 3))
        W = g.variable("W", np.linspace(-1, 1, 6).reshape(3, 2))
        noise = gc.random.normal(gc.random.key(g, seed=7), (4, 2))
        loss = gc.mean(gc.square(gc.tanh(x @ W) + 0.1 * noise))
        gW = gc.grad(loss, W)
        Pair = collections.namedtuple("Pair", "loss grad")
        return g, x, W, {"pair": Pair(loss, gW), "all": [loss, (gW,)]}, {W: W - 0.5 * gW}

    X = np.arange(12.0).reshape(4, 3) / 12
    runs = []
    for backend in ("source", "vm"):
        g, x, W, outputs, updates = build()
        f = gc.function([x], outputs, updates=updates, backend=backend)
        runs.append(([f(X) for _ in range(3)], W.value.copy()))
    (source_calls, source_W), (vm_calls, vm_W) = runs
    assert test_agreement._same(source_W, vm_W)  # (a BLAS product: tight tolerance)
    for a, b in zip(source_calls, vm_calls):
        assert type(b["pair"]).__name__ == "Pair" and type(b["all"][1]) is tuple
        assert test_agreement._same(a["pair"].loss, b["pair"].loss)
        assert test_agreement._same(a["all"][1][0], b["all"][1][0])
    assert not test_agreement._same(vm_calls[0]["pair"].loss, vm_calls[1]["pair"].loss)


def test_errors_name_the_same_node_and_line():
    g = gc.Graph()
    x = g.placeholder("x", (None,))
    bad = gc.reshape(x, (2, -1), name="halves") * 2.0
    want, got = _both([x], bad, [np.ones(3)])
    assert want[0] is got[0] and want[1] == got[1]
    assert "'halves'" in got[1] and "test_compiler_vm.py" in got[1]
    for args, kwargs in [((), {}), ((1.0, 2.0), {}), ((), {"y": 1.0}),
                         ((np.ones(3),), {"x": np.ones(3)}), (("text",), {})]:
        messages = []
        for backend in ("source", "vm"):
            f = gc.function([x], bad, backend=backend)
            messages.append(_outcome(lambda: f(*args, **kwargs)))
        assert messages[0] == messages[1], (args, kwargs, messages)


def test_check_numerics_names_the_first_bad_node():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y = gc.log(x, name="the_log") * 2.0
    want, got = _both([x], y, [np.array([1.0, -1.0])], check_numerics=True)
    assert got[0] is gc.NumericsError and want == got and "'the_log'" in got[1]


def test_the_callers_error_state_holds_around_a_call():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    f = gc.function([x], gc.exp(x) + x / x, backend="vm")
    with np.errstate(all="raise"):
        got = f(np.array([1000.0, 0.0]))  # inf and NaN are values inside
        assert np.geterr()["over"] == "raise"
    assert np.isinf(got[0]) and np.isnan(got[1])


def test_trust_input_gives_the_same_values():
    g, x, y, outs = test_compiler_fast_paths.cs231n()
    for args in [(3.0, -4.0), (np.float64(0.5), np.array(2.0))]:
        want, got = _both([x, y], outs, args, trust_input=True)
        _assert_same(outs, want, got)


def test_outputs_never_share_memory_with_inputs_variables_or_each_other():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    v = g.variable("v", np.ones(3))
    y = x * 2.0
    f = gc.function([x], [x, v, y, y, gc.reshape(x, (3, 1))], backend="vm")
    X = np.arange(3.0)
    out = f(X)
    assert not any(np.shares_memory(o, X) or np.shares_memory(o, v.value) for o in out)
    assert not np.shares_memory(out[2], out[3])


def test_memory_follows_the_plan():
    """Values die where the plan frees them: a long chain of large arrays holds a few."""
    import tracemalloc

    g = gc.Graph()
    x = g.placeholder("x", (100_000,))
    h = x
    for _ in range(30):
        h = gc.exp(gc.sin(h))
    f = gc.function([x], gc.sum(h), backend="vm")
    X = np.ones(100_000)
    f(X)
    tracemalloc.start()
    try:
        f(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= f.stats["planned_peak_bytes"] + 300_000  # and not 60 arrays of 800 kB


# The compiler's own tests that check values, errors and behaviour (not the source text), on
# the VM: every program is lowered to it (threshold 0).
REUSED = [
    test_compiler.test_matches_graph_run_and_hand_numpy,
    test_compiler.test_keyword_arguments_and_output_structures,
    test_compiler.test_names_that_are_not_identifiers_work_as_keywords,
    test_compiler.test_weak_scalars_keep_float32_and_lists_are_fed,
    test_compiler.test_intermediate_nodes_may_be_inputs,
    test_compiler.test_constant_and_input_outputs,
    test_compiler.test_argument_errors,
    test_compiler.test_runtime_error_names_the_node_and_line,
    test_compiler.test_check_numerics_names_op_node_and_line,
    test_compiler.test_updates_use_old_values_and_are_written_after_outputs,
    test_compiler.test_sgd_step_matches_manual_updates,
    test_compiler.test_inputs_and_variables_are_never_overwritten,
    test_compiler.test_views_keep_their_buffers_alive,
    test_compiler.test_scalar_function_gradients,
    test_compiler.test_outputs_are_writable_and_never_the_variables_storage,
    test_compiler.test_cross_entropy_with_masked_logits_and_bad_labels_like_g_run,
    test_compiler.test_weak_constants_without_a_literal_keep_the_dtype,
    test_compiler.test_0d_outputs_never_alias_arguments_or_variables,
    test_compiler.test_outputs_that_rewriting_merges_are_distinct_arrays,
    test_compiler.test_an_output_that_is_an_updated_variable_returns_its_old_value,
    test_compiler_calls.test_names_equal_under_nfkc_are_distinct_inputs,
    test_compiler_calls.test_output_keys_of_any_type_come_back_as_given,
    test_compiler_calls.test_keyword_errors_still_name_the_inputs,
    test_compiler_calls.test_nested_outputs_match_g_run,
    test_compiler_calls.test_concurrent_updates_are_not_lost,
    test_compiler_fast_paths.test_zero_d_arguments_of_every_kind,
    test_compiler_fast_paths.test_error_state_is_the_callers_again_after_a_call,
    test_compiler_fast_paths.test_error_state_restored_when_a_call_fails,
    test_compiler_fast_paths.test_sum_of_bool_and_int_keeps_numpys_dtypes,
    test_agreement.test_log_sigmoid_is_stable_in_both_paths_with_its_gradient,
    test_agreement.test_default_passes_keep_values_at_inf_and_nan,
    test_agreement.test_compiled_scalar_sigmoid_is_the_kernel_bit_for_bit,
]


@pytest.mark.parametrize("test", REUSED, ids=lambda t: f"{t.__module__}.{t.__name__}")
def test_compiler_tests_hold_on_the_vm(test, monkeypatch):
    assert not inspect.signature(test).parameters
    monkeypatch.setattr(function_module, "VM_THRESHOLD", 0)
    test()


@pytest.mark.parametrize("size", [2**48, 2**62])
def test_allocation_failures_name_the_node_on_the_vm(size, monkeypatch):
    monkeypatch.setattr(function_module, "VM_THRESHOLD", 0)
    test_compiler_calls.test_an_allocation_failure_in_a_compiled_function_names_the_node(size)
    test_compiler_calls.test_an_allocation_failure_while_storing_an_update_names_the_node(
        monkeypatch)


def _long_chain(depth=130, size=10):
    g = gc.Graph()
    x = g.placeholder("x", (size,))
    h = x
    for _ in range(depth):
        h = gc.tanh(h)
    loss = gc.sum(h)
    return g, x, [loss, gc.grad(loss, x)]


def test_an_automatic_vm_turns_into_generated_source_after_enough_calls(monkeypatch):
    g, x, outputs = _long_chain()
    forced = gc.function([x], outputs, backend="vm")
    monkeypatch.setattr(function_module, "SOURCE_SECONDS_PER_INSTRUCTION", 1e-7)
    f = gc.function([x], outputs)  # 520 instructions: the VM, promoted once it ran 52 us
    assert f.stats["backend"] == "vm" and "instruction list" in f.source
    X = np.linspace(-1, 1, 10)
    first = f(X)  # long enough: the next call runs generated source
    assert f.stats["backend"] == "source" and f.source.startswith("def _graphc_function")
    assert f.stats["seconds"]["promotion"] > 0
    for a, b, c in zip(first, f(X), forced(X)):
        assert same_bits(a, b) and same_bits(a, c)
    with pytest.raises(gc.FeedError, match="'x'"):  # errors of generated source, explained
        f(np.ones((2, 2)))
    for _ in range(3):
        forced(X)
    assert forced.stats["backend"] == "vm"  # a back end asked for stays


@pytest.mark.parametrize("promoted", [False, True])
def test_keywords_and_wrong_calls_on_the_vm_and_after_promotion(promoted, monkeypatch):
    """The VM binds arguments through the Function, before and after turning into source."""
    g, x, outputs = _long_chain()
    monkeypatch.setattr(function_module, "SOURCE_SECONDS_PER_INSTRUCTION",
                        1e-7 if promoted else 1.0)
    f = gc.function([x], outputs)
    X = np.linspace(-1, 1, 10)
    expected = f(X)
    assert f.stats["backend"] == ("source" if promoted else "vm")
    for a, b in zip(f(x=X), expected):
        assert same_bits(a, b)
    with pytest.raises(gc.MissingFeedError, match="'x'"):
        f()
    with pytest.raises(gc.FeedError, match="takes 1 input"):
        f(X, X)
    with pytest.raises(gc.FeedError, match="no input named 'y'"):
        f(X, y=X)
    g, u, chained = _long_chain(size=None)
    h = gc.function([u], gc.reshape(chained[1], (3, -1), name="thirds"))
    for _ in range(3):  # a kernel failure names the node, on the VM and as source
        with pytest.raises(gc.ShapeError, match="'thirds'.*test_compiler_vm.py"):
            h(X)


def test_a_promoted_specialisation_keeps_values_and_errors(monkeypatch):
    """None sizes: each call shape's program is lowered (the VM here) and promoted alike."""
    monkeypatch.setattr(function_module, "SOURCE_SECONDS_PER_INSTRUCTION", 1e-7)
    g, x, outputs = _long_chain(size=None)
    forced = gc.function([x], outputs, backend="source")
    f = gc.function([x], outputs)
    X = np.linspace(-1, 1, 10)
    for _ in range(3):  # the VM, then generated source
        for a, b in zip(f(X), forced(X)):
            assert same_bits(a, b)
    assert f.source.startswith("def _graphc_function")
    assert f.stats["backend"] == "source"  # (stats follow the shown program's promotion)
    bad = gc.reshape(outputs[1], (2, -1), name="halves")
    h = gc.function([x], bad)
    for _ in range(3):
        with pytest.raises(gc.ShapeError, match="'halves'.*test_compiler_vm.py"):
            h(np.ones(3))
