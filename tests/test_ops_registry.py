"""One test table for every op, read from the registry (a new op cannot ship untested).

For each op and each of its cases: the kernel against the op's independent reference, the
inferred shape and dtype against the kernel's real output (with known and with ``None`` sizes),
and derivatives of order 1, 2 (and 3 for smooth ops) by the dot-product test
``<v, J^T u>`` (symbolic) vs ``<J v, u>`` (central differences), plus the full Jacobian from a
batch of cotangents, which checks that every rule works with leading batch dimensions.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import graphc as gc
from graphc.graph import apply
from graphc.ops.registry import NOT_IMPLEMENTED, REGISTRY

LEAVES = {"placeholder", "variable", "constant"}
# Ops whose result size depends on the values (x[mask]): None even for known input shapes.
DATA_DEPENDENT_SIZES = {"boolean_mask"}
CASES = [(name, k) for name, op in sorted(REGISTRY.items()) if name not in LEAVES
         for k in range(len(op.cases))]


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _arrays(name, k):
    case = REGISTRY[name].cases[k]
    rng = _rng(name, k)
    return [rng.uniform(case.low, case.high, size=item) if isinstance(item, tuple)
            else np.asarray(item) for item in case.inputs]


def _build(name, k, arrays, unknown_sizes=False):
    case = REGISTRY[name].cases[k]
    g = gc.Graph()
    inputs = [g.placeholder(f"in{i}", (None,) * a.ndim if unknown_sizes else a.shape, a.dtype)
              for i, a in enumerate(arrays)]
    node = apply(name, inputs, case.attrs)
    return g, inputs, node


def _wrt(name, k, arrays):
    case = REGISTRY[name].cases[k]
    if case.wrt is not None:
        return list(case.wrt)
    return [i for i, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]


def test_every_op_is_tested_and_declares_its_derivative():
    for name, op in REGISTRY.items():
        assert op.bprop is not NOT_IMPLEMENTED, f"op {name!r} has no bprop (use None if none)"
        if name not in {"placeholder", "variable"}:
            assert op.cases, f"op {name!r} has no test cases"
            assert op.reference is not None, f"op {name!r} has no reference"


@pytest.mark.parametrize("name,k", CASES)
def test_kernel_matches_reference_and_inferred_shape(name, k):
    op = REGISTRY[name]
    arrays = _arrays(name, k)
    case = op.cases[k]
    ref = case.ref or op.reference
    for unknown in (False, True):
        g, inputs, node = _build(name, k, arrays, unknown)
        value = np.asarray(g.run(node, dict(zip(inputs, arrays))))
        expected = np.asarray(ref(*arrays, **node.attrs))
        assert value.shape == expected.shape
        assert value.dtype == node.dtype, f"kernel gives {value.dtype}, rule says {node.dtype}"
        assert all(s is None or s == d for s, d in zip(node.shape, value.shape)) and \
            len(node.shape) == value.ndim, f"rule says {node.shape}, kernel gives {value.shape}"
        if not unknown and name not in DATA_DEPENDENT_SIZES:
            assert None not in node.shape
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)


def test_constant_kernel():
    g = gc.Graph()
    c = g.constant(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(g.run(c), np.arange(6.0).reshape(2, 3))
    x = g.placeholder("x", (), "float32")
    assert (x * 2.5).dtype == np.float32  # weak Python scalar
    assert g.run(x * 2.5, {x: 2}).dtype == np.float32


def _directional(g, inputs, arrays, f, i, v, eps=1e-6):
    """<d f / d x_i, v> by central differences, f evaluated with the graph's run."""
    def at(t):
        feed = dict(zip(inputs, arrays))
        feed[inputs[i]] = arrays[i] + t * v
        return np.asarray(g.run(f, feed), dtype=np.float64)
    return (at(eps) - at(-eps)) / (2 * eps)


def _dot_test(g, inputs, arrays, f, wrt, rng, depth, label):
    """Check the first derivative of f by the dot-product test; recurse ``depth`` times."""
    for i in wrt:
        u = rng.standard_normal(f.shape if None not in f.shape else
                                np.shape(g.run(f, dict(zip(inputs, arrays)))))
        grad = gc.gradients(f, [inputs[i]], grad_y=g.constant(u))[0]
        assert grad.shape == inputs[i].shape and grad.dtype == inputs[i].dtype
        v = rng.standard_normal(arrays[i].shape)
        symbolic = float(np.sum(np.asarray(g.run(grad, dict(zip(inputs, arrays)))) * v))
        numeric = float(np.sum(_directional(g, inputs, arrays, f, i, v) * u))
        assert symbolic == pytest.approx(numeric, rel=1e-5, abs=1e-6), \
            f"{label}: order-{depth} derivative w.r.t. input {i}"
        if depth > 1:
            _dot_test(g, inputs, arrays, grad, wrt, rng, depth - 1, label)


@pytest.mark.parametrize("name,k", [c for c in CASES if REGISTRY[c[0]].differentiable])
def test_derivatives_by_dot_product(name, k):
    arrays = _arrays(name, k)
    wrt = _wrt(name, k, arrays)
    if not wrt:
        pytest.skip("no float input to differentiate")
    g, inputs, node = _build(name, k, arrays)
    if not np.issubdtype(node.dtype, np.floating):
        pytest.skip("integer result")
    depth = REGISTRY[name].cases[k].order
    _dot_test(g, inputs, arrays, node, wrt, _rng(name, k, "dot"), depth, name)


@pytest.mark.parametrize("name,k", [c for c in CASES if REGISTRY[c[0]].differentiable])
def test_jacobian_from_batched_cotangents(name, k):
    arrays = _arrays(name, k)
    wrt = _wrt(name, k, arrays)
    g, inputs, node = _build(name, k, arrays)
    if not wrt or not np.issubdtype(node.dtype, np.floating):
        pytest.skip("nothing to differentiate")
    feed = dict(zip(inputs, arrays))
    for i in wrt:
        J = np.asarray(g.run(gc.jacobian(node, inputs[i]), feed))
        assert len(J.shape) == node.ndim + inputs[i].ndim and all(
            a is None or b is None or a == b for a, b in zip(J.shape, node.shape + inputs[i].shape))
        np.testing.assert_allclose(J, _numeric_jacobian(g, inputs, arrays, node, i),
                                   rtol=1e-5, atol=1e-6)
        # Batched cotangents through the rules' own output: the Jacobian of a gradient.
        u = _rng(name, k, "u").standard_normal(np.shape(g.run(node, feed)))
        grad = gc.gradients(node, [inputs[i]], grad_y=g.constant(u))[0]
        for j in wrt:
            H = np.asarray(g.run(gc.jacobian(grad, inputs[j]), feed))
            np.testing.assert_allclose(H, _numeric_jacobian(g, inputs, arrays, grad, j),
                                       rtol=1e-5, atol=1e-6)


def _numeric_jacobian(g, inputs, arrays, f, i):
    """d f / d x_i by central differences, one basis direction at a time."""
    out = np.zeros(np.shape(g.run(f, dict(zip(inputs, arrays)))) + arrays[i].shape)
    for index in np.ndindex(arrays[i].shape):
        e = np.zeros(arrays[i].shape)
        e[index] = 1.0
        out[(Ellipsis,) + index] = _directional(g, inputs, arrays, f, i, e)
    return out


@pytest.mark.parametrize("name,k", [c for c in CASES if REGISTRY[c[0]].differentiable])
def test_jacobian_with_unknown_batch_sizes(name, k):
    """Cotangents whose batch sizes are None at build time (the seed of a Jacobian of a node
    with a run-time size): every rule must build and give the same derivatives."""
    arrays = _arrays(name, k)
    wrt = _wrt(name, k, arrays)
    g, inputs, node = _build(name, k, arrays)
    if not wrt or not np.issubdtype(node.dtype, np.floating):
        pytest.skip("nothing to differentiate")
    pad = g.placeholder("pad", (None,) + node.shape, node.dtype)  # y = node, repeated 2 times
    feed = dict(zip(inputs, arrays))
    feed[pad] = np.zeros((2,) + np.shape(g.run(node, feed)), node.dtype)
    for i in wrt:
        J = np.asarray(g.run(gc.jacobian(node + pad, inputs[i]), feed))
        expected = _numeric_jacobian(g, inputs, arrays, node, i)
        np.testing.assert_allclose(J, np.stack([expected, expected]), rtol=1e-5, atol=1e-6)
