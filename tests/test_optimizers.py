"""gc.optimizers against their update recurrences written by hand in NumPy, step by step."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

STEPS = 6


def problem(dtype):
    """Least squares, mean((A W + b - Y)^2), with its gradients written by hand."""
    rng = np.random.default_rng(0)
    A, Y = rng.normal(size=(8, 3)).astype(dtype), rng.normal(size=(8, 2)).astype(dtype)
    W0, b0 = rng.normal(size=(3, 2)).astype(dtype), rng.normal(size=(2,)).astype(dtype)
    g = gc.Graph()
    W, b = g.variable("W", W0), g.variable("b", b0)
    loss = gc.mean(gc.square(A @ W + b - Y), name="loss")

    A, Y = A.astype(np.float64), Y.astype(np.float64)

    def loss_and_grads(Wv, bv):
        R = A @ Wv + bv - Y
        return np.mean(R * R), [2 * A.T @ R / R.size, 2 * R.sum(axis=0) / R.size]

    return g, loss, [W, b], [W0.astype(np.float64), b0.astype(np.float64)], loss_and_grads


def sgd_ref(ps, gs, state, t, lr=0.05):
    return [p - lr * g for p, g in zip(ps, gs)]


def momentum_ref(ps, gs, state, t, lr=0.05, mu=0.8):
    state.setdefault("v", [np.zeros_like(p) for p in ps])
    state["v"] = [mu * v - lr * g for v, g in zip(state["v"], gs)]
    return [p + v for p, v in zip(ps, state["v"])]


def nesterov_ref(ps, gs, state, t, lr=0.05, mu=0.8):
    state.setdefault("v", [np.zeros_like(p) for p in ps])
    state["v"] = [mu * v - lr * g for v, g in zip(state["v"], gs)]
    return [p + mu * v - lr * g for p, v, g in zip(ps, state["v"], gs)]


def adagrad_ref(ps, gs, state, t, lr=0.1, eps=1e-10, start=0.1):
    state.setdefault("G", [np.full_like(p, start) for p in ps])
    state["G"] = [G + g * g for G, g in zip(state["G"], gs)]
    return [p - lr * g / (np.sqrt(G) + eps) for p, g, G in zip(ps, gs, state["G"])]


def rmsprop_ref(ps, gs, state, t, lr=0.01, rho=0.9, eps=1e-8):
    state.setdefault("s", [np.zeros_like(p) for p in ps])
    state["s"] = [rho * s + (1 - rho) * g * g for s, g in zip(state["s"], gs)]
    return [p - lr * g / (np.sqrt(s) + eps) for p, g, s in zip(ps, gs, state["s"])]


def adam_ref(ps, gs, state, t, lr=0.01, b1=0.8, b2=0.95, eps=1e-8):
    state.setdefault("m", [np.zeros_like(p) for p in ps])
    state.setdefault("v", [np.zeros_like(p) for p in ps])
    state["m"] = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], gs)]
    state["v"] = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], gs)]
    return [p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
            for p, m, v in zip(ps, state["m"], state["v"])]


CASES = {
    "sgd": (lambda L, P: gc.optimizers.sgd(L, P, lr=0.05), sgd_ref, []),
    "momentum": (lambda L, P: gc.optimizers.momentum(L, P, lr=0.05, momentum=0.8),
                 momentum_ref, ["momentum/v/W", "momentum/v/b"]),
    "nesterov": (lambda L, P: gc.optimizers.nesterov(L, P, lr=0.05, momentum=0.8),
                 nesterov_ref, ["nesterov/v/W", "nesterov/v/b"]),
    "adagrad": (lambda L, P: gc.optimizers.adagrad(L, P, lr=0.1, initial_accumulator=0.1),
                adagrad_ref, ["adagrad/G/W", "adagrad/G/b"]),
    "rmsprop": (lambda L, P: gc.optimizers.rmsprop(L, P, lr=0.01, rho=0.9), rmsprop_ref,
                ["rmsprop/s/W", "rmsprop/s/b"]),
    "adam": (lambda L, P: gc.optimizers.adam(L, P, lr=0.01, beta1=0.8, beta2=0.95), adam_ref,
             ["adam/t", "adam/m/W", "adam/v/W", "adam/m/b", "adam/v/b"]),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_each_step_follows_the_recurrence(name, dtype):
    build, reference, states = CASES[name]
    g, loss, params, values, grads = problem(dtype)
    before = len(g.variables)
    updates = build(loss, params)
    assert sorted(n.name for n in g.variables[before:]) == sorted(states)
    assert set(updates) == set(params) | {g[s] for s in states}
    step = gc.function([], loss, updates=updates)
    rtol = 1e-12 if dtype == "float64" else 2e-5
    state = {}
    for t in range(1, STEPS + 1):
        want_loss, gs = grads(*values)
        assert step() == pytest.approx(want_loss, rel=rtol)  # the loss before the update
        values = reference(values, gs, state, t)
        for p, want in zip(params, values):
            assert p.value.dtype == np.dtype(dtype), p.name
            np.testing.assert_allclose(p.value, want, rtol=rtol, atol=rtol * 1e-2,
                                       err_msg=f"{name} step {t}, {p.name}")
    assert want_loss < grads(*[v.astype(np.float64) for v in problem(dtype)[3]])[0]


def test_a_learning_rate_node_gives_a_schedule_and_float32_stays_float32():
    g, loss, params, values, grads = problem("float32")
    lr = g.placeholder("lr")  # float64: the updates are cast back to float32
    step = gc.function([lr], loss, updates=gc.optimizers.momentum(loss, params, lr=lr,
                                                                  momentum=0.5))
    state = {}
    for t, rate in enumerate([0.1, 0.05, 0.01], start=1):
        _, gs = grads(*values)
        step(rate)
        values = momentum_ref(values, gs, state, t, lr=rate, mu=0.5)
        for p, want in zip(params, values):
            assert p.value.dtype == np.float32
            np.testing.assert_allclose(p.value, want, rtol=2e-5, atol=1e-7)


def test_gradients_may_be_given_and_names_stay_unique():
    g, loss, params, values, grads = problem("float64")
    clipped = [gc.clip(d, -0.1, 0.1) for d in gc.gradients(loss, params)]
    first = gc.optimizers.adam(clipped, params)
    second = gc.optimizers.adam(loss, params)  # a second Adam on the same graph
    assert "adam/m/W" in g and "adam_1/m/W" in g and "adam_1/t" in g
    assert set(first).isdisjoint(set(second) - set(params))
    gc.function([], loss, updates=first)()
    _, gs = grads(*values)
    t1 = 1 - 0.9
    m = [t1 * np.clip(d, -0.1, 0.1) for d in gs]
    v = [(1 - 0.999) * np.clip(d, -0.1, 0.1) ** 2 for d in gs]
    want = [p - 0.001 * (mm / t1) / (np.sqrt(vv / (1 - 0.999)) + 1e-8)
            for p, mm, vv in zip(values, m, v)]
    for p, w in zip(params, want):
        np.testing.assert_allclose(p.value, w, rtol=1e-12)


def test_bad_input_is_a_clear_error():
    g, loss, (W, b), values, grads = problem("float64")
    with pytest.raises(gc.GraphcError, match="parameters must be variables"):
        gc.optimizers.sgd(loss, [W * 2.0])
    with pytest.raises(gc.GraphcError, match=r"lr must be a finite number >= 0, not -1"):
        gc.optimizers.sgd(loss, [W], lr=-1)
    with pytest.raises(gc.GraphcError, match=r"beta1 must be in \[0, 1\)"):
        gc.optimizers.adam(loss, [W], beta1=1.0)
    with pytest.raises(gc.GraphcError, match="given twice"):
        gc.optimizers.sgd(loss, [W, W])
    with pytest.raises(gc.ShapeError, match="has shape"):
        gc.optimizers.sgd([b], [W])
    with pytest.raises(gc.GraphcError, match="2 gradients given for 1"):
        gc.optimizers.sgd([b, b], [W])


def test_the_state_is_saved_with_the_graph(tmp_path):
    g, loss, params, values, grads = problem("float64")
    step = gc.function([], loss, updates=gc.optimizers.rmsprop(loss, params))
    step(), step()
    g2 = gc.from_json(gc.to_json(g))
    np.testing.assert_array_equal(g2["rmsprop/s/W"].value, g["rmsprop/s/W"].value)
