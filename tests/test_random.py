"""gc.random: reproducibility, fresh samples per compiled call, distributions (SciPy's tests),
the reparameterisation trick, dropout, JSON; and the creation functions."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import graphc as gc


def test_same_seed_same_samples_and_sampling_ops_differ():
    def sample(seed):
        g = gc.Graph()
        key = gc.random.key(g, seed)
        return g.run([gc.random.normal(key, (5,)), gc.random.normal(key, (5,))])
    a1, b1 = sample(3)
    a2, b2 = sample(3)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.allclose(a1, b1)  # two ops of one key draw different numbers (salts)
    assert not np.allclose(a1, sample(4)[0])


def test_function_advances_the_key_and_run_reads_it():
    g = gc.Graph()
    key = gc.random.key(g, 11)
    u = gc.random.uniform(key, (4,))
    f = gc.function([], u)
    first = g.run(u)
    np.testing.assert_array_equal(g.run(u), first)  # g.run leaves the key alone
    calls = [f() for _ in range(3)]
    np.testing.assert_array_equal(calls[0], first)  # same state, same samples
    assert not np.allclose(calls[0], calls[1]) and not np.allclose(calls[1], calls[2])
    assert key.value.tolist() == [11, 3]
    np.testing.assert_array_equal(g.run(u), gc.function([], u)())  # agree at any state
    # the same seed replays the same sequence in a fresh graph
    h = gc.Graph()
    f2 = gc.function([], gc.random.uniform(gc.random.key(h, 11), (4,)))
    for c in calls:
        np.testing.assert_array_equal(f2(), c)
    # an explicit update for the key wins over the automatic one
    f3 = gc.function([], u, updates={key: key})
    f3()
    f3()
    assert key.value.tolist() == [11, 4]  # advanced only by the one gc.function call above


def test_distributions_pass_scipy_tests():
    g = gc.Graph()
    key = gc.random.key(g, 0)
    n = 20000
    z = g.run(gc.random.normal(key, (n,), loc=1.5, scale=2.0))
    assert scipy.stats.kstest(z, "norm", args=(1.5, 2.0)).pvalue > 1e-3
    u = g.run(gc.random.uniform(key, (n,), low=-1.0, high=3.0))
    assert scipy.stats.kstest(u, "uniform", args=(-1.0, 4.0)).pvalue > 1e-3
    b = g.run(gc.random.bernoulli(key, 0.3, (n,)))
    assert b.dtype == bool and abs(b.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    logits = np.log(np.array([0.1, 0.2, 0.7]))
    draws = g.run(gc.random.categorical(key, np.tile(logits, (n, 1)) + g.constant(0.0)))
    counts = np.bincount(draws, minlength=3)
    assert scipy.stats.chisquare(counts, n * np.array([0.1, 0.2, 0.7])).pvalue > 1e-3
    p = g.run(gc.random.permutation(key, 10, graph=g))
    assert sorted(p.tolist()) == list(range(10))
    x = g.placeholder("x", (None, 2))
    rows = g.run(gc.random.permutation(key, x), {x: np.arange(10.0).reshape(5, 2)})
    assert sorted(rows[:, 0].tolist()) == [0, 2, 4, 6, 8]
    assert g.run(gc.random.normal(key, (3,), dtype="float32")).dtype == np.float32


def test_reparameterisation_differentiates_in_loc_and_scale():
    g = gc.Graph()
    key = gc.random.key(g, 5)
    mu = g.variable("mu", np.array([0.5, -1.0]))
    sigma = g.variable("sigma", np.array([1.5, 0.3]))
    sample = gc.random.normal(key, (1000, 2), loc=mu, scale=sigma)
    loss = gc.mean(gc.square(sample))
    gmu, gsigma = gc.gradients(loss, [mu, sigma])
    z = (g.run(sample) - mu.value) / sigma.value  # the standard normal draw behind it
    np.testing.assert_allclose(g.run(gmu), np.mean(2 * (mu.value + sigma.value * z), 0) / 2)
    np.testing.assert_allclose(g.run(gsigma), np.mean(2 * (mu.value + sigma.value * z) * z, 0)
                               / 2)
    gc.check_gradients(loss, [mu, sigma], feed={})


def test_dropout():
    g = gc.Graph()
    x = g.placeholder("x", (None, 50))
    y = gc.random.dropout(x, 0.25, seed=1)
    data = np.ones((400, 50))
    out = g.run(y, {x: data})
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.25) < 0.01
    np.testing.assert_allclose(out[out != 0], 1 / 0.75)
    gx = g.run(gc.grad(gc.sum(y), x), {x: data})
    np.testing.assert_array_equal(gx, out)  # the mask, scaled: the same sample
    assert gc.random.dropout(x, 0.5, seed=1, training=False) is x
    z = gc.random.dropout(x, 0.25, seed=1)  # same seed, another op: another mask
    assert not np.array_equal(g.run(z, {x: data}), out)
    with pytest.raises(gc.GraphcError, match="rate"):
        gc.random.dropout(x, 1.0, seed=0)


def test_random_graphs_round_trip_through_json(tmp_path):
    g = gc.Graph()
    key = gc.random.key(g, 9)
    x = g.placeholder("x", (None, 3))
    y = gc.random.dropout(x, 0.5, key) + gc.random.normal(key, x)
    f = gc.function([x], y)
    data = np.ones((4, 3))
    f(data)  # advance the key once; its value is saved with the graph
    gc.save(g, tmp_path / "g.json")
    g2 = gc.load(tmp_path / "g.json")
    np.testing.assert_array_equal(g2.run(g2[y.name], {"x": data}), g.run(y, {x: data}))
    f2 = gc.function([g2["x"]], g2[y.name])
    np.testing.assert_array_equal(f2(data), f(data))


def test_key_errors():
    g = gc.Graph()
    with pytest.raises(gc.GraphcError, match="seed"):
        gc.random.key(g, -1)
    with pytest.raises(gc.DTypeError, match="gc.random.key"):
        gc.random.normal(g.variable("k", np.zeros(2)), (3,))


def test_creation_functions():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3), "float32")
    cases = [(gc.zeros((2, 3), graph=g), np.zeros((2, 3))),
             (gc.ones(4, "int32", graph=x), np.ones(4, "int32")),
             (gc.full((2,), 7.5, graph=g), np.full(2, 7.5)),
             (gc.eye(3, 4, k=1, graph=g), np.eye(3, 4, 1)),
             (gc.arange(2, 11, 3, graph=g), np.arange(2, 11, 3)),
             (gc.arange(5, graph=g), np.arange(5)),
             (gc.linspace(0, 1, 5, graph=g), np.linspace(0, 1, 5))]
    for node, expected in cases:
        value = g.run(node)
        assert node.shape == expected.shape and value.dtype == expected.dtype
        np.testing.assert_array_equal(value, expected)
    filled = gc.full_like(x, 2)
    assert filled.dtype == np.float32 and filled.shape == (None, 3)
    np.testing.assert_array_equal(g.run(filled, {x: np.zeros((2, 3))}), np.full((2, 3), 2.0))
    assert gc.full_like(x, True, dtype="bool").dtype == np.bool_
    with pytest.raises(gc.GraphcError, match="graph="):
        gc.zeros((2,), graph=None)
