"""Compiled results have g.run's types: a NumPy scalar where g.run gives one, a 0-d array
where it gives that (on both back ends, with and without passes, from arrays and from Python
floats), and the operator shortcuts give the kernels' dtypes for every dtype."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc.compiler import codegen, vm
from graphc.graph import apply
from graphc.ops.registry import REGISTRY

import test_agreement
from test_custom_ops import fresh_ops  # noqa: F401  (a fixture: the test's op is removed)

BACKENDS = ("source", "vm")
LEAVES = {"placeholder", "variable", "constant"}


def _types_agree(inputs, outputs, feed, passes=None):
    g = inputs[0].graph
    try:
        want = g.run(outputs, feed)
    except gc.GraphcError:
        return []
    bad = []
    for backend in BACKENDS:
        kw = {} if passes is None else {"passes": passes}
        f = gc.function(inputs, outputs, backend=backend, **kw)
        got = f(*[feed[x] for x in inputs])
        for node, a, w in zip(outputs, got, want):
            if type(a) is not type(w) or np.asarray(a).dtype != np.asarray(w).dtype:
                bad.append((node.op, backend, passes, type(a), type(w)))
    return bad


@pytest.mark.parametrize("build,passes", [
    (gc.sum, None), (lambda x: gc.clip(x, -1.0, 1.0), ()),
    (lambda x: gc.clip(x, -1.0, 1.0), None), (lambda x: gc.stop_gradient(x * 2.0), ()),
    (lambda x: gc.stop_gradient(x * 2.0), None), (lambda x: gc.reshape(x * 2.0, ()), None),
    (lambda x: gc.where(x > 0, x * 2.0, x), None)])
def test_zero_d_results_have_g_runs_type(build, passes):
    g = gc.Graph()
    x = g.placeholder("x")
    y = build(x)
    for value in (np.array(0.5), 0.5, np.float64(0.5)):  # (floats take the float path)
        assert _types_agree([x], [y], {x: value}, passes) == []


def _zero_d_nodes(name, case, dtype):
    """The op over 0-d inputs (placeholders, and scalars made by ``2 * x``), or None."""
    g = gc.Graph()
    xs = [g.placeholder(f"x{i}", dtype=dtype) for i in range(len(case.inputs))]
    built = []
    for args in (xs, [x * np.asarray(2, dtype)[()] for x in xs]):
        zero_d = {k: () for k in ("axis", "axes", "shape") if k in case.attrs}
        for attrs in (case.attrs, {}, {**case.attrs, **zero_d},
                      {**case.attrs, "axis": None} if "axis" in case.attrs else None):
            if attrs is None:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    built.append(apply(name, args, attrs))
            except (gc.GraphcError, TypeError, ValueError):
                continue
    return xs, built


OPS = sorted(name for name, op in REGISTRY.items() if name not in LEAVES and op.cases)


@pytest.mark.parametrize("name", OPS)
def test_every_op_over_zero_d_inputs_gives_g_runs_type(name):
    tried = 0
    for dtype in ("float64", "float32", "int64", "bool"):
        xs, nodes = _zero_d_nodes(name, REGISTRY[name].cases[0], dtype)
        if not nodes:
            continue
        tried += 1
        feed = {x: np.asarray(1 + k, dtype) for k, x in enumerate(xs)}
        with np.errstate(all="ignore"):
            for passes in (None, ()):
                assert _types_agree(xs, nodes, feed, passes) == [], name
    if not tried:
        pytest.skip(f"{name} takes no 0-d inputs")


@pytest.mark.parametrize("build", [
    gc.sum, gc.mean, gc.max, gc.min, gc.prod, gc.std, gc.var, gc.logsumexp,
    lambda v: gc.argmax(v), lambda v: gc.all(v > 0), lambda v: gc.any(v > 0),
    lambda v: v[1], lambda v: gc.matmul(v, v), lambda v: gc.stop_gradient(gc.sum(v)),
    lambda v: gc.reshape(gc.sum(v, keepdims=True), ())])
def test_zero_d_results_of_arrays_have_g_runs_type(build):
    for shape, value in (((3,), np.array([0.5, -1.0, 2.0])), ((None,), np.array([0.5, 2.0])),
                         ((5000,), np.linspace(-1.0, 1.0, 5000))):  # (probed at size 1)
        g = gc.Graph()
        v = g.placeholder("v", shape=shape)
        assert _types_agree([v], [build(v)], {v: value}) == []


@settings(max_examples=test_agreement.EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(test_agreement.programs())
def test_random_programs_give_g_runs_types(program):
    inputs, outputs, feed = program
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _types_agree(inputs, outputs, feed) == []


DTYPES = [np.dtype(c) for c in "?bhilqBHILQefdgFDGO"]


def _dtype_or_error(compute):
    try:
        with np.errstate(all="ignore"):
            return np.asarray(compute()).dtype
    except TypeError:
        return TypeError


@pytest.mark.parametrize("op", sorted(codegen.OPERATORS))
def test_operator_shortcuts_give_the_kernels_dtype(op):
    """Where an operator shortcut is taken it gives the ufunc's dtype (or both refuse the
    dtype); where it is left out, it would not have."""
    ufunc, template = codegen.OPERATORS[op]
    text = template.format(*(f"a{i}" for i in range(ufunc.nin)))
    for dtype in DTYPES:
        for value in (np.ones(3, dtype), np.ones(3, dtype)[0]):  # arrays and NumPy scalars
            args = (value,) * ufunc.nin
            want = _dtype_or_error(lambda: ufunc(*args))
            shortcuts = [_dtype_or_error(lambda: eval(text, dict(zip(("a0", "a1"), args)))),
                         _dtype_or_error(lambda: vm.OPERATOR_FUNCTIONS[op](*args))]
            if codegen.operator_fits(op, dtype):
                assert shortcuts == [want, want], (op, dtype)
            else:
                assert want not in shortcuts, (op, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_square_of_bools_is_int8_as_in_g_run(backend):
    g = gc.Graph()
    x = g.placeholder("x", shape=(3,), dtype="bool")
    y = gc.square(x)
    value = np.array([True, False, True])
    want = g.run(y, {x: value})
    got = gc.function([x], y, backend=backend)(value)
    assert y.dtype == want.dtype == got.dtype == np.int8
    assert np.array_equal(got, [1, 0, 1])


def test_compiling_never_runs_a_users_kernel(fresh_ops):
    """Result types come from probing built-in kernels only: a user's kernel (which may count
    its calls or keep what it is given) runs at calls, never on made-up values at compile time."""
    seen = []

    def kernel(x):
        seen.append(np.array(x))
        return x * 2.0

    double = gc.define_op("result_types_counted", infer=lambda x: (x.shape, x.dtype),
                          kernel=kernel)
    g = gc.Graph()
    x = g.placeholder("x", ())
    for backend in ("source", "vm"):
        f = gc.function([x], [double(x) + 1.0], backend=backend)
        assert seen == []
        assert float(f(3.0)[0]) == 7.0 and [float(v) for v in seen] == [3.0]
        seen.clear()
