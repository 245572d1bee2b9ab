"""One test table for every op, read from the registry (a new op cannot ship untested).

For each op and each of its cases: the kernel against the op's independent reference, the
inferred shape and dtype against the kernel's real output (with known and with ``None`` sizes),
and derivatives of order 1, 2 (and 3 for smooth ops) by the dot-product test
``<v, J^T u>`` (symbolic) vs ``<J v, u>`` (central differences), plus the full Jacobian from a
batch of cotangents, which checks that every rule works with leading batch dimensions.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import testing
from graphc.ops.registry import NOT_IMPLEMENTED, REGISTRY

LEAVES = {"placeholder", "variable", "constant"}
CASES = [(name, k) for name, op in sorted(REGISTRY.items()) if name not in LEAVES
         for k in range(len(op.cases))]
DIFFERENTIABLE = [c for c in CASES if REGISTRY[c[0]].differentiable]


def test_every_op_is_tested_and_declares_its_derivative():
    for name, op in REGISTRY.items():
        assert op.bprop is not NOT_IMPLEMENTED, f"op {name!r} has no bprop (use None if none)"
        if name not in {"placeholder", "variable"}:
            assert op.cases, f"op {name!r} has no test cases"
            assert op.reference is not None, f"op {name!r} has no reference"


@pytest.mark.parametrize("name,k", CASES)
def test_kernel_matches_reference_and_inferred_shape(name, k):
    assert testing.check_kernel(name, k)


def test_constant_kernel():
    g = gc.Graph()
    c = g.constant(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(g.run(c), np.arange(6.0).reshape(2, 3))
    x = g.placeholder("x", (), "float32")
    assert (x * 2.5).dtype == np.float32  # weak Python scalar
    assert g.run(x * 2.5, {x: 2}).dtype == np.float32


@pytest.mark.parametrize("name,k", DIFFERENTIABLE)
def test_derivatives_by_dot_product(name, k):
    if not testing.check_derivatives(name, k):
        pytest.skip("nothing to differentiate")


@pytest.mark.parametrize("name,k", DIFFERENTIABLE)
def test_jacobian_from_batched_cotangents(name, k):
    """Jacobians from a batch of cotangents, of the rule's own output, and with batch sizes
    known only at run time (the seed of a Jacobian of a node with a run-time size)."""
    if not testing.check_batched_cotangents(name, k):
        pytest.skip("nothing to differentiate")
