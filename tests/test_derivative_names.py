"""Names and derivative orders of the nodes ``gradients`` builds."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def model():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.arange(3.0))
    loss = gc.sum(gc.tanh(x @ W), name="loss")
    return g, x, W, loss


def test_results_are_named_after_the_cost_and_the_variable():
    g, x, W, loss = model()
    gW, gx = gc.gradients(loss, [W, x])
    assert (gW.name, gx.name) == ("d(loss)/d(W)", "d(loss)/d(x)")
    assert g["d(loss)/d(W)"] is gW
    assert gc.grad(loss, W) is gW  # the same derivative asked again is the same node
    H = gc.hessian(loss, W)
    assert H.name == "d(d(loss)/d(W))/d(W)"
    J = gc.jacobian(gc.tanh(x @ W, name="h"), W)
    assert J.name == "d(h)/d(W)"


def test_names_stay_unique_and_round_trip_through_json():
    g, x, W, loss = model()
    taken = g.constant(0.0, name="d(loss)/d(W)")  # the name is taken already
    gW = gc.grad(loss, W)
    assert gW is not taken and gW.name == "d(loss)/d(W)_1"
    g2 = gc.from_json(gc.to_json(g))
    assert [n.name for n in g2.nodes] == [n.name for n in g.nodes]
    feed = {"x": np.ones((2, 3))}
    np.testing.assert_allclose(g2.run(g2[gW.name], feed), g.run(gW, feed))


def test_errors_name_the_derivative():
    g, x, W, loss = model()
    gW = gc.grad(loss, W)
    with pytest.raises(gc.GraphcError, match=r"node 'd\(loss\)/d\(W\)'"):
        gW.value  # not a variable


def test_vector_jacobian_products_and_user_names_are_left_alone():
    g, x, W, loss = model()
    h = gc.tanh(x @ W, name="h")
    (v,) = gc.gradients(h, [W], grad_y=gc.ones_like(h))
    assert not v.name.startswith("d(")
    # a result that is a forward node keeps its name: d(sum(W * t))/dW is t itself
    t = gc.tanh(x[0])
    (gW,) = gc.gradients(gc.sum(W * t, name="y"), [W])
    assert gW is t and gW.name == f"tanh_{t.id}" and gW.derivative == 0


def test_derivative_order_survives_wrapping_a_derivative():
    g, x, W, loss = model()
    gW = gc.grad(loss, W)
    assert gW.derivative == 1
    penalty = gc.sum(gW * gW, name="penalty")  # built by the user from a first derivative
    assert penalty.derivative == 1
    second = gc.grad(penalty, W)
    assert second.derivative == 2
    added = [n for n in g.nodes if n.id > penalty.id]
    assert added and all(n.derivative == 2 for n in added)
    # a value that does not depend on a derivative stays in the forward graph
    assert gc.exp(W).derivative == 0
