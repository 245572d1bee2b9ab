"""Calling compiled functions: any input name and output key, nested outputs, threads, and
allocation failures (issue 9, defects 3, 6, 10 and 11)."""
from __future__ import annotations

import collections
import enum
import sys
import threading

import numpy as np
import pytest

import graphc as gc


# -- names and keys never become code ---------------------------------------------------------------
def test_names_equal_under_nfkc_are_distinct_inputs():
    g = gc.Graph()
    wide, plain = g.placeholder("ｘ"), g.placeholder("x")  # NFKC("ｘ") == "x"
    f = gc.function([wide, plain], wide - plain)
    assert f(5.0, 2.0) == 3.0
    assert f(**{"ｘ": 5.0, "x": 2.0}) == 3.0
    assert f(x=2.0, **{"ｘ": 5.0}) == 3.0


class Color(enum.IntEnum):
    RED = 1


class Sneaky(str):
    def __repr__(self):
        raise AssertionError("the repr of a user's key was run")


def test_output_keys_of_any_type_come_back_as_given():
    g = gc.Graph()
    x = g.placeholder("x")
    keys = [np.str_("loss"), np.float64(0.5), Color.RED, Sneaky("s"), "plain", (1, "t"), None]
    outputs = {k: x * float(i) for i, k in enumerate(keys)}
    f = gc.function([x], outputs)
    got = f(2.0)
    assert list(got) == keys and all(type(a) is type(b) for a, b in zip(got, keys))
    assert [float(v) for v in got.values()] == [2.0 * i for i in range(len(keys))]
    assert "loss" not in f.source and "RED" not in f.source and "Sneaky" not in f.source
    assert got == g.run(outputs, {x: 2.0})


def test_a_key_whose_repr_is_code_never_runs():
    class Evil(str):
        def __repr__(self):
            return "__import__('os').system('echo pwned')"
    g = gc.Graph()
    x = g.placeholder("x")
    f = gc.function([x], {Evil("k"): x + 1.0})
    assert "__import__" not in f.source
    assert list(f(1.0).values()) == [2.0]


def test_a_name_that_is_no_identifier_and_a_bound_key_do_not_collide():
    g = gc.Graph()
    x = g.placeholder("my input")
    f = gc.function([x], {np.str_("a"): x * 2.0, 0.5: x + 1.0})
    assert {k: float(v) for k, v in f(3.0).items()} == {"a": 6.0, 0.5: 4.0}
    assert {k: float(v) for k, v in f(**{"my input": 3.0}).items()} == {"a": 6.0, 0.5: 4.0}


def test_a_str_subclass_name_with_its_own_repr_stays_out_of_the_source():
    class Name(str):
        def __repr__(self):
            return "'\nimport os\n'"
    g = gc.Graph()
    x = g.placeholder(Name("p"))
    f = gc.function([x], x * 2.0)
    assert "import os" not in f.source
    assert f(p=1.0) == 2.0


@pytest.mark.parametrize("name", ["self", "args", "kwargs", "_p0", "_values", "class", "np"])
def test_every_input_name_works_as_a_keyword(name):
    g = gc.Graph()
    x = g.placeholder(name)
    y = g.placeholder("y")
    f = gc.function([x, y], x - y)
    assert f(**{name: 5.0, "y": 1.0}) == 4.0
    assert f(5.0, y=1.0) == 4.0


def test_keyword_errors_still_name_the_inputs():
    g = gc.Graph()
    x = g.placeholder("my input")
    f = gc.function([x], x * 2.0)
    with pytest.raises(gc.FeedError, match="no input named 'nope'"):
        f(nope=1.0)
    with pytest.raises(gc.MissingFeedError, match="my input"):
        f()


# -- nested outputs ----------------------------------------------------------------------------------
def test_nested_outputs_match_g_run():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y, z = x * 2.0, gc.sum(x)
    Pair = collections.namedtuple("Pair", "first second")
    outputs = {"a": y, "b": [z, (y, Pair(z, {"deep": x}))], "c": (z,)}
    f = gc.function([x], outputs)
    X = np.array([1.0, 2.0])
    got, want = f(X), g.run(outputs, {x: X})
    assert type(got["b"][1][1]) is Pair and type(got["c"]) is tuple
    np.testing.assert_array_equal(got["b"][1][1].second["deep"], X)
    assert got["b"][1][1].second["deep"] is not X
    assert got.keys() == want.keys() and type(want["b"][1][1]) is Pair
    np.testing.assert_array_equal(got["b"][1][1].first, want["b"][1][1].first)
    np.testing.assert_array_equal(got["a"], want["a"])
    again = got["b"][1][0]
    assert not np.shares_memory(again, got["a"])


# -- threads ------------------------------------------------------------------------------------------
def test_concurrent_updates_are_not_lost():
    g = gc.Graph()
    c = g.variable("c", 0.0)
    d = g.variable("d", np.zeros(3))
    one = g.placeholder("one")
    w = g.variable("w", np.zeros(20000))
    slow = one + gc.sum(gc.exp(w)) * 0.0  # 1.0, after a kernel that releases the GIL
    up_c = gc.function([one], c, updates={c: c + slow})
    up_both = gc.function([one], [], updates={c: c + one, d: d + one})  # same variable c

    def work(f):
        for _ in range(100):
            f(1.0)
    threads = [threading.Thread(target=work, args=(up_c if i % 2 else up_both,))
               for i in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a busy machine does
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert c.value == 800.0
    np.testing.assert_array_equal(d.value, np.full(3, 400.0))


def test_functions_without_updates_take_no_lock():
    g = gc.Graph()
    x = g.placeholder("x")
    c = g.variable("c", 0.0)
    reader = gc.function([x], x + c)
    writer = gc.function([x], x, updates={c: c + x})
    assert reader._lock is None and writer._lock is not None
    assert writer._lock is gc.function([x], x, updates={c: c * x})._lock  # one per graph
    with writer._lock:  # held by another "call": readers still run
        done = []
        t = threading.Thread(target=lambda: done.append(reader(1.0)))
        t.start()
        t.join(timeout=10)
    assert done == [1.0]


# -- allocation failures ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [2**48, 2**62])
def test_an_allocation_failure_in_a_compiled_function_names_the_node(size):
    g = gc.Graph()
    x = g.placeholder("x", (1,))
    big = gc.mul(gc.broadcast_to(x, (size,)), 2.0, name="big")
    f = gc.function([x], big)
    with pytest.raises(gc.OutOfMemoryError) as info:
        f(np.ones(1))
    assert "ran out of memory" in str(info.value) and "test_compiler_calls.py" in str(info.value)
    with pytest.raises(gc.OutOfMemoryError):
        g.run(big, {x: np.ones(1)})


def _no_memory(*args, **kwargs):
    raise MemoryError("Unable to allocate 8.00 TiB")


def test_an_allocation_failure_while_storing_an_update_names_the_node(monkeypatch):
    from graphc.compiler import codegen

    g = gc.Graph()
    c = g.variable("c", np.zeros(2, np.float32))
    x = g.placeholder("x", (2,))
    monkeypatch.setattr(codegen, "_checked_value", _no_memory)
    f = gc.function([x], [], updates={c: gc.add(c, x, name="new_c")})  # float64: cast on store
    with pytest.raises(gc.OutOfMemoryError, match="'new_c'.*test_compiler_calls.py"):
        f(np.ones(2))
    np.testing.assert_array_equal(c.value, [0.0, 0.0])  # nothing written


def test_an_allocation_failure_while_copying_a_result_names_the_node(monkeypatch):
    from graphc import runtime

    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y = gc.reshape(x, (2, 1), name="view")
    monkeypatch.setattr(runtime, "as_result", _no_memory)
    with pytest.raises(gc.OutOfMemoryError, match="'view'.*copying its result"):
        g.run(y, {x: np.ones(2)})
