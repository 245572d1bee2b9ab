"""One meaning on every path: ``g.run``, the generated source and the VM back end convert a fed
value the same way, and refuse a bad one with the same graphc error, word for word, whatever
the caller's floating-point error state and warnings filter; a fused group's failure names the
member that failed; softmax_cross_entropy's label errors say what to do. (The table of bad
values at run time over all ops is tests/test_error_quality.py's ``RUN_TABLE``.)"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.compiler import DEFAULT_PASSES, fusion
from graphc.graph import apply
from graphc.ops.registry import REGISTRY
from graphc.shapes import fmt
from graphc.testing import case_arrays

HERE = os.path.basename(__file__)
SITE = re.compile(re.escape(HERE) + r":\d+")
F32_MAX = float(np.finfo(np.float32).max)
SNAN32 = np.array([0x7FA00000], np.uint32).view(np.float32)  # signalling NaNs
SNAN64 = np.array([0x7FF4000000000000], np.uint64).view(np.float64)
UNFUSED = tuple(p for p in DEFAULT_PASSES if p != "fuse")


def _paths(g, inputs: list, output) -> dict:
    """The three ways to evaluate ``output`` from ``inputs``, for :func:`_call`."""
    return {"run": (g, inputs, output), "source": gc.function(inputs, output, backend="source"),
            "vm": gc.function(inputs, output, backend="vm")}


def _call(path, values):
    """One path called on ``values``; every path from the same line (the same "called at")."""
    run = type(path) is tuple
    return path[0].run(path[2], dict(zip(path[1], values))) if run else path(*values)


@contextlib.contextmanager
def _raising_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


MODES = {
    "default": contextlib.nullcontext,
    "raise": lambda: np.errstate(all="raise"),
    "ignore": lambda: np.errstate(all="ignore"),
    "warnings-as-errors": _raising_warnings,
}

# (shape, dtype, value fed, words the message must hold)
REFUSED = [
    ((), "float32", 1e300, "overflows float32"),
    ((), "float32", -1e300, "overflows float32"),
    ((), "float32", np.float64(1e300), "overflows float32"),
    ((), "float32", np.array(1e300), "overflows float32"),
    ((3,), "float32", np.full(3, 1e300), "overflows float32"),
    ((3,), "float32", [1.0, -1e39, 2.0], "overflows float32"),
    ((2,), "float16", [1e5, 1.0], "overflows float16"),
    ((2,), "float16", np.array([70000, 1]), "overflows float16"),
    ((2,), "complex64", np.array([1e300 + 1j, 0j]), "overflows complex64"),
    ((2,), "int8", [1000, 2], "1000 is out of int8's range [-128, 127]"),
    ((2,), "int8", np.array([-129, 0]), "-129 is out of int8's range [-128, 127]"),
    ((), "int8", 200, "200 is out of int8's range"),
    ((1,), "uint8", np.array([300], dtype=np.uint16), "300 is out of uint8's range [0, 255]"),
    ((1,), "int64", np.array([2**63], dtype=np.uint64), "out of int64's range"),
    ((), "int64", 2**70, "an integer of 71 bits to placeholder node 'p' (built at "),
    ((), "float64", 2**1100, "out of float64's range"),
    ((), "float32", 2**200, "out of float32's range"),
    ((2,), "int64", [2**70, 1], "an integer of 71 bits to placeholder node 'p' (built at "),
    ((2,), "uint8", [2**70, -1], "an integer of 71 bits"),
    ((1,), "int8", np.array([200], dtype=object), "cannot feed 200 to placeholder node 'p'"),
    ((2,), "uint8", np.array([-1, 2], dtype=object), "-1 to placeholder node 'p' (built at "),
    ((2,), "float32", [2**200, 1], "out of float32's range"),
    ((2,), "float64", [2**1100, 0], "out of float64's range"),
    ((2,), "float64", [2**70, "a"], "a value must be numbers or bools, not object"),
    ((2,), "float16", [1e5, 1.0], "(whose largest finite value is 65504.0)"),
    ((3,), "float32", np.full(3, 1e300), "(whose largest finite value is 3.4028234663852886e+38)"),
    ((6,), "int32", np.array([0, 0, 0, 0, 0, 2**40]), "1099511627776 is out of int32's range"),
    ((2,), "int32", np.array([1, 2**40], ">i8"), "1099511627776 is out of int32's range"),
    ((2,), "uint8", np.array([1, 256], ">u2"), "256 is out of uint8's range [0, 255]"),
    ((2,), "int16", np.array([0, 40000], np.uint16), "40000 is out of int16's range [-32768, "),
    # a byte-swapped target (NumPy 2.4's checked cast does not check it either)
    ((2,), ">i4", np.array([1, 2**40]), "1099511627776 is out of >i4's range [-2147483648, "),
    ((2,), ">i2", np.array([1, -40000], np.int32), "-40000 is out of >i2's range [-32768, "),
    ((2,), ">u2", np.array([1, 70000], np.uint32), "70000 is out of >u2's range [0, 65535]"),
    ((2,), ">i4", np.array([1, 2**40], ">i8"), "1099511627776 is out of >i4's range"),
    # Python ints beyond 64 bits with floats: the value out of range is named, not a NaN
    ((2,), "float32", [float("nan"), 2**200], "an integer of 201 bits to placeholder node 'p'"),
    ((2,), "float32", [2**70, 1e300], "cannot feed 1e+300 to placeholder node 'p'"),
    ((2,), "float64", [2**1100, 1.5], "an integer of 1101 bits"),
    ((2,), "int64", [2**70, 1.5], "a value must be numbers or bools, not object"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", range(len(REFUSED)),
                         ids=[f"{c[1]}-{type(c[2]).__name__}-{k}" for k, c in enumerate(REFUSED)])
def test_a_value_the_dtype_cannot_hold_is_the_same_feed_error_on_every_path(k, mode):
    shape, dtype, value, words = REFUSED[k]
    g = gc.Graph()
    p = g.placeholder("p", shape, dtype=dtype)
    paths = _paths(g, [p], gc.neg(p, name="minus"))
    messages = {}
    for name, path in paths.items():
        with MODES[mode]():
            with pytest.raises(gc.FeedError) as info:
                _call(path, [value])
        messages[name] = str(info.value)
    message = messages["run"]
    assert messages["source"] == message and messages["vm"] == message, messages
    assert "placeholder node 'p'" in message and words in message, message
    built, called = SITE.findall(message)  # where p was built, where the call was made
    assert built == f"{HERE}:{p.site.rsplit(':', 1)[1]}"
    assert called == f"{HERE}:{_call.__code__.co_firstlineno + 3}"


@pytest.mark.parametrize("same_value", [True, False], ids=["same_value-cast", "min-max"])
@pytest.mark.parametrize("size", [3, 2**15 + 1])
def test_integer_narrowing_names_the_value_out_of_range_with_or_without_checked_casts(
        monkeypatch, same_value, size):
    """NumPy >= 2.4's checked cast (small arrays) and the min/max reductions (large arrays, or
    older NumPy) refuse the same values with the same words, and cast the same values alike."""
    if same_value and not runtime._SAME_VALUE:
        pytest.skip("this NumPy has no casting='same_value'")
    monkeypatch.setattr(runtime, "_SAME_VALUE", same_value)
    g = gc.Graph()
    p = g.placeholder("p", (None,), dtype="int16")
    f = gc.function([p], p + 1)
    fits = np.arange(size, dtype=np.int64) % 30000 - 15000
    np.testing.assert_array_equal(f(fits), (fits + 1).astype(np.int16))
    for bad, named in ((40000, "40000"), (-2**40, "-1099511627776")):
        value = fits.copy()
        value[size // 2] = bad
        for call in (lambda: g.run(p, {p: value}), lambda: f(value)):
            with pytest.raises(gc.FeedError, match=f"int64 to placeholder node 'p' .* of dtype "
                               f"int16: {named} is out of int16's range \\[-32768, 32767\\]"):
                call()


def test_a_function_with_updates_refuses_an_overflowing_value_before_updating():
    g = gc.Graph()
    p = g.placeholder("p", (2,), dtype="float32")
    w = g.variable("w", np.zeros(2, np.float32))
    step = gc.function([p], gc.sum(p), updates={w: w + p}, backend="source")
    machine = gc.function([p], gc.sum(p), updates={w: w + p}, backend="vm")
    messages = []
    for f in (step, machine):
        with np.errstate(all="raise"), pytest.raises(gc.FeedError) as info:
            f([1.0, 1e39])
        messages.append(str(info.value))
    assert messages[0] == messages[1]  # (both called from one line)
    assert "overflows float32" in messages[0] and SITE.search(messages[0])
    np.testing.assert_array_equal(w.value, [0.0, 0.0])  # nothing was written


# (shape, dtype, value fed, the value the placeholder holds: exact by construction)
ACCEPTED = [
    ((), "float32", F32_MAX, np.float32(F32_MAX)),
    ((), "float32", F32_MAX * (1 + 1e-9), np.float32(F32_MAX)),  # rounds down: no overflow
    ((), "float32", float("inf"), np.float32("inf")),
    ((), "float32", float("-inf"), np.float32("-inf")),
    ((), "float32", float("nan"), np.float32("nan")),
    ((), "float32", 1e-50, np.float32(0.0)),  # underflow is rounding, not an error
    ((3,), "float32", np.array([np.inf, -np.inf, np.nan]), np.array([np.inf, -np.inf, np.nan],
                                                                   np.float32)),
    ((2,), "int8", [127, -127], np.array([127, -127], np.int8)),
    ((), "int8", np.int64(-127), np.int8(-127)),
    ((1,), "int64", np.array([2**63 - 1], dtype=np.uint64), np.array([2**63 - 1])),
    ((0,), "int8", np.zeros(0, np.int64), np.zeros(0, np.int8)),
    ((), "float64", 2**70, np.float64(2.0**70)),  # a Python int beyond int64, held exactly
    ((), "float32", -2**80, np.float32(-2.0**80)),
    ((2,), "float64", [2**70, 1], np.array([2.0**70, 1.0])),  # a list of them: as a scalar
    ((2,), "float32", np.array([-2**80, True], dtype=object), np.array([-2.0**80, 1], np.float32)),
    ((2,), "float32", [1e-40, -1e-45], np.array([1e-40, -1e-45], np.float32)),  # subnormal
    ((2,), "float32", [-0.0, 3.0], np.array([-0.0, 3.0], np.float32)),
    ((2,), "float16", np.array([65504, -65504]), np.array([65504, -65504], np.float16)),
    ((2,), "float16", np.array([True, False]), np.array([1, 0], np.float16)),
    ((2,), "int8", np.array([True, False]), np.array([1, 0], np.int8)),
    ((2,), "int16", np.array([0, 32767], np.uint64), np.array([0, 32767], np.int16)),
    ((2,), "int64", np.array([-5, 7], np.int8), np.array([-5, 7])),
    ((2,), "int16", np.array([-5, 7], ">i8"), np.array([-5, 7], np.int16)),  # byte-swapped
    ((8,), "float32", np.arange(8.0), np.arange(8.0, dtype=np.float32)),  # beyond the few
    # a signalling NaN widened (NumPy raises its 'invalid' flag: a NaN is a value, not an error)
    ((1,), "float64", SNAN32, np.array([np.nan])),
    ((), "float64", SNAN32[0], np.float64(np.nan)),
    ((1,), "complex128", SNAN32.repeat(2).view(np.complex64), np.array([complex(np.nan, np.nan)])),
    ((2,), "longdouble", np.repeat(SNAN64, 2), np.full(2, np.nan, np.longdouble)),
    ((2,), ">i4", np.array([-2**31, 2**31 - 1]), np.array([-2**31, 2**31 - 1], np.int32)),
    # Python ints beyond 64 bits mixed with floats or complexes (NumPy converts them alike)
    ((2,), "float64", [2**70, 1.5], np.array([2.0**70, 1.5])),
    ((3,), "float64", [2**70, np.float64(1.5), True], np.array([2.0**70, 1.5, 1.0])),
    ((2,), "float32", [2**70, float("-inf")], np.array([2.0**70, -np.inf], np.float32)),
    ((2,), "complex128", [2**70, 1j], np.array([2.0**70, 1j])),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", range(len(ACCEPTED)))
def test_a_value_the_dtype_holds_converts_alike_on_every_path_without_a_warning(k, mode):
    shape, dtype, value, held = ACCEPTED[k]
    g = gc.Graph()
    p = g.placeholder("p", shape, dtype=dtype)
    expected = np.negative(held)
    for name, path in _paths(g, [p], gc.neg(p)).items():
        with MODES[mode](), warnings.catch_warnings():
            warnings.simplefilter("error")  # (a conversion that warns fails here too)
            result = _call(path, [value])
        assert np.asarray(result).dtype == np.dtype(dtype).newbyteorder("="), name  # (neg's)
        np.testing.assert_array_equal(result, expected, err_msg=name)


def test_a_fused_member_failing_in_a_lent_buffer_is_named_not_the_group_root(monkeypatch):
    """A fused group computed in place of a dying input cannot start again member by member
    (the input is half overwritten): the error names the member that failed, with its own
    inputs, as the unfused program's does."""
    def fails_on_big(v):
        if abs(v) > 100:
            raise ValueError("argument too large for this test's sin")
        return np.sin(v)

    monkeypatch.setattr(fusion, "MIN_BYTES", 1)
    monkeypatch.setattr(fusion, "BLOCK_BYTES", 56)  # several blocks
    # a ufunc that raises for some elements (np.frompyfunc makes a real np.ufunc)
    monkeypatch.setitem(REGISTRY, "sin", dataclasses.replace(
        REGISTRY["sin"], kernel=np.frompyfunc(fails_on_big, 1, 1)))
    g = gc.Graph()
    x = g.placeholder("x", (12, 3))
    c = gc.sum(x, axis=1, name="c")  # a fresh buffer, dying at the group: lent to it
    y = gc.exp(gc.sin(c * 2, name="the_sin")) + 1
    X = np.linspace(-1, 1, 36).reshape(12, 3)
    X[9] = 1e3  # fails in a late block, after earlier ones were written
    messages = []
    for backend in ("source", "vm"):
        f = gc.function([x], y, backend=backend)
        assert f.stats["rules"]["fuse:groups"] == 1
        assert backend == "vm" or "out=_v0" in f.source  # the lent buffer
        with pytest.raises(gc.GraphcError) as info:
            f(X)
        messages.append(str(info.value))
    with pytest.raises(gc.GraphcError) as info:
        gc.function([x], y, passes=UNFUSED)(X)
    assert messages[0] == messages[1] == str(info.value)
    assert messages[0].startswith("sin node 'the_sin' (built at "), messages[0]
    assert SITE.search(messages[0]) and messages[0].endswith("; inputs: (12,) float64")


# -- softmax_cross_entropy: labels of the wrong shape, and what the message says to do ---------
def _cross_entropy(logits, labels):
    """The NumPy formula: -log softmax(logits) at integer labels, or against probabilities."""
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    if labels.dtype.kind in "iu":
        return -np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    return -(labels * log_p).sum(axis=-1)


# (labels' shape, dtype, value, what the message must say, the fix it names)
LABELS = [
    ((1,), "int64", np.array([2]), "labels are not broadcast: give one label per example "
     "(gc.broadcast_to(labels, (4,))", lambda t: gc.broadcast_to(t, (4,))),
    ((), "int64", np.array(3), "labels are not broadcast", lambda t: gc.broadcast_to(t, (4,))),
    ((5,), "float64", np.full(5, 0.2), "give one row of probabilities per example",
     lambda t: gc.broadcast_to(t, (4, 5))),
    ((4, 1), "int64", np.array([[0], [4], [1], [1]]), "gc.squeeze(labels, -1)",
     lambda t: gc.squeeze(t, -1)),
    ((4, 5), "int64", np.eye(5, dtype=np.int64)[[0, 4, 1, 1]], "gc.cast(labels, logits.dtype)",
     lambda t: gc.cast(t, "float64")),
    ((4,), "float64", np.array([0.0, 4.0, 1.0, 1.0]), "gc.cast(labels, 'int64')",
     lambda t: gc.cast(t, "int64")),
]


@pytest.mark.parametrize("k", range(len(LABELS)))
def test_cross_entropy_labels_of_a_wrong_shape_say_what_to_do_and_the_fix_works(k):
    shape, dtype, value, words, fix = LABELS[k]
    g = gc.Graph()
    logits = g.placeholder("logits", (4, 5))
    labels = g.placeholder("labels", shape, dtype=dtype)
    with pytest.raises(gc.ShapeError) as info:
        gc.softmax_cross_entropy(logits, labels, name="loss")
    message = str(info.value)
    assert "softmax_cross_entropy" in message and "'loss'" in message and SITE.search(message)
    assert f"got {fmt(shape)}: " in message, message
    assert words in message, message
    loss = gc.softmax_cross_entropy(logits, fix(labels), name="fixed")
    X = np.linspace(-2.0, 3.0, 20).reshape(4, 5)
    fixed = fix(gc.Graph().constant(value))  # the same fix on the value, for the oracle
    expected = _cross_entropy(X, np.asarray(fixed.graph.run(fixed)))
    for name, path in _paths(g, [logits, labels], loss).items():
        np.testing.assert_allclose(_call(path, [X, value]), expected, rtol=1e-12, err_msg=name)


# -- every op, run-time sizes that do not fit ----------------------------------------------------
#: Derivative-internal ops whose rules take their static shape from a "like" input the
#: derivative builds consistently: fed a like of size 1 against a larger run-time size, g.run
#: refuses the kernel's output (its static shape check) where compiled code returns it. Only
#: that difference is skipped; their other errors must agree as any op's.
LIKE_SHAPED = {"axis_map_adjoint", "conv2d_weight_grad", "pick_along", "pick_along_adjoint"}
LIKE_SHAPED_SKIPS = {"axis_map_adjoint": 5, "conv2d_weight_grad": 4, "pick_along": 3,
                     "pick_along_adjoint": 4}  # (variants skipped, of 103 where g.run errs)


def _static_shape_refusal(outcome) -> bool:
    """Whether g.run refused a kernel's output for not having its node's static shape."""
    return outcome[0] == "error" and "produced shape" in outcome[2] and \
        "but its static shape is" in outcome[2]
OPS = sorted(name for name, op in REGISTRY.items()
             if op.kernel is not None and op.cases and name not in ("composite",))


def _outcome(path, op, attrs, shapes, arrays):
    """``("ok", value)``, ``("error", class, message)`` or None when the rule refuses."""
    g = gc.Graph()
    inputs = [g.placeholder(f"in{i}", s, a.dtype) for i, (s, a) in enumerate(zip(shapes, arrays))]
    try:
        node = apply(op, inputs, attrs)
    except gc.GraphcError:
        return None
    f = None if path == "run" else gc.function(inputs, node, backend=path)
    try:
        value = g.run(node, dict(zip(inputs, arrays))) if f is None else f(*arrays)
    except Exception as exc:
        return ("error", type(exc), str(exc))
    return ("ok", np.asarray(value))


def _variants(arrays):
    """Inputs with run-time sizes that may not fit: one input's dimension grown by one (every
    size None), or cut to 1 (that input's sizes known, the others' None)."""
    for i, a in enumerate(arrays):
        for d in range(a.ndim):
            if a.shape[d] == 0:
                continue
            first = np.take(a, [0], axis=d)
            grown = [x if j != i else np.concatenate([x, first], axis=d)
                     for j, x in enumerate(arrays)]
            yield [(None,) * x.ndim for x in grown], grown
            if a.shape[d] > 1:
                cut = [x if j != i else first for j, x in enumerate(arrays)]
                yield [x.shape if j == i else (None,) * x.ndim for j, x in enumerate(cut)], cut


@pytest.mark.parametrize("op", OPS)
def test_every_op_fed_sizes_that_may_not_fit_gives_one_answer_on_every_path(op):
    """Each path either computes the same values or raises the same graphc error."""
    skipped = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # (LAPACK-backed kernels may warn; not the subject)
        for k, case in enumerate(REGISTRY[op].cases):
            for shapes, arrays in _variants(case_arrays(op, k)):
                outcomes = [_outcome(p, op, case.attrs, shapes, arrays)
                            for p in ("run", "source", "vm")]
                if outcomes[0] is None:
                    continue
                run, *compiled = outcomes
                if op in LIKE_SHAPED and _static_shape_refusal(run) and \
                        all(other[0] == "ok" for other in compiled):
                    skipped.append(k)
                    continue
                for other in compiled:
                    assert other[0] == run[0], (k, shapes, outcomes)
                    if run[0] == "ok":
                        assert other[1].shape == run[1].shape and other[1].dtype == run[1].dtype
                        assert np.array_equal(other[1], run[1], equal_nan=True), (k, shapes)
                    else:
                        assert other[1:] == run[1:], (k, shapes)
                        assert issubclass(run[1], gc.GraphcError), run
    assert len(skipped) == LIKE_SHAPED_SKIPS.get(op, 0), skipped  # the skip stays this narrow


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "longdouble", "complex64",
                                   "clongdouble"])
def test_an_overflow_message_writes_the_largest_finite_value_exactly(dtype):
    """float() of longdouble's largest value is inf: the message writes it in NumPy's words."""
    largest = np.finfo(dtype).max
    text = runtime._largest_text(np.dtype(dtype))
    assert "inf" not in text and np.finfo(dtype).dtype.type(text) == largest, text
