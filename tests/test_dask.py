"""graphc.dask: graphs run over chunks of rows give what gc.function gives on all the rows.

The oracle is gc.function on the concatenated NumPy data; agreement is to 1e-12 relative (in
the max norm of each output), float64. Tests on a LocalCluster of two worker processes share
one module-scoped cluster (a few seconds to start); the fault test starts its own.
"""
from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

try:
    import distributed
except ImportError:  # the cluster tests skip
    distributed = None

import graphc as gc  # noqa: E402
import graphc.dask as gdask  # noqa: E402

N, D = 103, 4


def close(got, want, rtol=1e-12):
    """Max-norm relative agreement; ``got`` may be a dask array."""
    got = np.asarray(got.compute() if hasattr(got, "compute") else got)
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = np.max(np.abs(want)) if want.size else 0.0
    assert np.max(np.abs(got - want), initial=0.0) <= rtol * scale, (got, want)


def chunked(value, chunks):
    return da.from_array(value, chunks=(chunks,) + value.shape[1:])


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, D))
    y = (rng.random(N) < 1 / (1 + np.exp(-X @ [1.0, -2.0, 0.5, 0.0]))).astype(float)
    return X, y


def logistic(rng=np.random.default_rng(3)):
    """A logistic model: its placeholders, variables and the nodes the tests compare."""
    g = gc.Graph()
    X = g.placeholder("X", (None, D))
    y = g.placeholder("y", (None,))
    w = g.variable("w", rng.normal(size=D))
    b = g.variable("b", 0.3)
    logits = X @ w + b
    loss = gc.mean(gc.sigmoid_cross_entropy(logits, y)) + 1e-3 * gc.sum(w * w)
    gw, gb = gc.gradients(loss, [w, b])
    H = gc.hessian(loss, w)
    return dict(g=g, X=X, y=y, w=w, b=b, logits=logits, p=gc.sigmoid(logits), loss=loss,
                gw=gw, gb=gb, H=H)


CHUNKINGS = [20, 103, (50, 1, 30, 22), 1000, 3]  # uneven last, one, ragged, bigger, 35 (2 levels)


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_logistic_outputs_equal_gc_function(data, chunks):
    m = logistic()
    X, y = data
    outs = [m["loss"], m["gw"], m["gb"], m["H"], m["logits"], m["p"]]
    want = gc.function([m["X"], m["y"]], outs)(X, y)
    f = gdask.function([m["X"], m["y"]], outs)
    got = f(chunked(X, chunks), chunked(y, chunks))
    assert f.passes == 1  # gradients and Hessian of a mean: one pass over the rows
    for g_, w_ in zip(got, want):
        close(g_, w_)
    assert all(isinstance(v, (np.ndarray, np.generic)) for v in got[:4])
    logits = got[4]
    assert isinstance(logits, da.Array)
    assert logits.chunks == chunked(X, chunks).chunks[:1]


def test_numpy_batch_inputs_and_keyword_arguments(data):
    m = logistic()
    X, y = data
    f = gdask.function([m["X"], m["y"]], {"loss": m["loss"], "gw": m["gw"]})
    got = f(y=y, X=X)
    want = gc.function([m["X"], m["y"]], {"loss": m["loss"], "gw": m["gw"]})(X, y)
    assert set(got) == {"loss", "gw"}
    close(got["loss"], want["loss"])
    close(got["gw"], want["gw"])


def test_updates_apply_on_the_client_after_the_reduction(data):
    X, y = data
    models = [logistic(np.random.default_rng(5)) for _ in range(2)]
    steps = []
    for m, make in zip(models, (gc.function, gdask.function)):
        updates = {m["w"]: m["w"] - 0.5 * m["gw"], m["b"]: m["b"] - 0.5 * m["gb"]}
        steps.append(make([m["X"], m["y"]], m["loss"], updates=updates))
    for _ in range(3):
        want = steps[0](X, y)
        got = steps[1](chunked(X, 17), chunked(y, 17))
        close(got, want)  # the loss before the step, as gc.function returns it
        close(models[1]["w"].value, models[0]["w"].value)
        close(models[1]["b"].value, models[0]["b"].value)


def test_reductions_that_need_several_passes(data):
    """Standardizing by batch statistics (mean, then variance) and the gradient of a max over
    the batch are exact: each pass gets the results of the previous ones."""
    X, _ = data
    g = gc.Graph()
    x = g.placeholder("x", (None, D))
    W = g.variable("W", np.random.default_rng(1).normal(size=(D, 2)))
    mu = gc.mean(x, axis=0)
    z = (x - mu) / gc.sqrt(gc.mean((x - mu) ** 2, axis=0))
    bn = gc.mean(gc.sum(gc.tanh(z @ W), axis=1))
    top = gc.max(x @ W)
    outs = [bn, gc.grad(bn, W), z, top, gc.grad(top, W)]
    want = gc.function([x], outs)(X)
    f = gdask.function([x], outs)
    assert f.passes == 3
    for g_, w_ in zip(f(chunked(X, 10)), want):
        close(g_, w_)


def test_a_softmax_over_the_batch_axis_takes_two_passes(data):
    X, y = data
    g = gc.Graph()
    x = g.placeholder("x", (None, D))
    t = g.placeholder("t", (None,))
    W = g.variable("W", np.random.default_rng(4).normal(size=(D, 2)))
    attention = gc.softmax(x @ W, axis=0)  # weights over the rows
    pooled = gc.sum(attention * (x @ W), axis=0)
    nll = -gc.sum(t * gc.log_softmax(x @ W[:, 0], axis=0))  # a likelihood normalized over rows
    loss = gc.sum(pooled ** 2) + nll
    outs = [loss, gc.grad(loss, W), attention, gc.hessian(loss, W)]
    want = gc.function([x, t], outs)(3 * X, y)
    f = gdask.function([x, t], outs)
    for g_, w_ in zip(f(chunked(3 * X, 8), chunked(y, 8)), want):
        close(g_, w_)
    assert f.kinds[attention.id].kind == "rows" and f.levels[attention.id] == 1


def test_other_batch_reductions(data):
    X, y = data
    g = gc.Graph()
    x = g.placeholder("x", (None, D))
    t = g.placeholder("t", (None,))
    labels = g.placeholder("labels", (None,), dtype="int64")
    W = g.variable("W", np.random.default_rng(2).normal(size=(D, 3)))
    ce = gc.mean(gc.softmax_cross_entropy(x @ W, labels))
    outs = [x.T @ x, t @ x, gc.logsumexp(x, axis=0), gc.min(x, axis=0, keepdims=True),
            gc.mean(x), gc.sum(x[:, 1:3] * 2.0), gc.mean(gc.log_softmax(x, axis=-1), axis=0),
            ce, gc.grad(ce, W), gc.hessian(ce, W)]
    classes = np.random.default_rng(0).integers(0, 3, N)
    want = gc.function([x, t, labels], outs)(X, y, classes)
    got = gdask.function([x, t, labels], outs)(chunked(X, 30), chunked(y, 30),
                                              chunked(classes, 30))
    for g_, w_ in zip(got, want):
        close(g_, w_)


def test_float32_is_honoured(data):
    X, _ = data
    g = gc.Graph()
    x = g.placeholder("x", (None, D), dtype="float32")
    w = g.variable("w", np.ones(D, dtype="float32"))
    loss = gc.mean(gc.square(x @ w)) * 0.5
    outs = [loss, gc.grad(loss, w)]
    want = gc.function([x], outs)(X.astype("float32"))
    got = gdask.function([x], outs)(chunked(X.astype("float32"), 25))
    for g_, w_ in zip(got, want):
        assert g_.dtype == np.float32
        close(g_, w_, rtol=1e-5)


def test_batch_free_inputs_and_lazy_results(data):
    m = logistic()
    X, y = data
    lr = m["g"].placeholder("lr", ())
    step = m["w"] - lr * m["gw"]
    want = gc.function([m["X"], m["y"], lr], [step, m["loss"]])(X, y, 0.1)
    f = gdask.function([m["X"], m["y"], lr], [step, m["loss"]], compute=False)
    got = f(chunked(X, 40), chunked(y, 40), 0.1)
    assert all(isinstance(v, da.Array) for v in got)
    for g_, w_ in zip(dask.compute(*got), want):
        close(g_, w_)


def test_a_fed_variable_and_the_usual_misuse_errors(data):
    m = logistic()
    X, y = data
    w0 = np.array([0.5, -0.5, 1.0, 2.0])
    want = gc.function([m["X"], m["y"], m["w"]], m["gw"])(X, y, w0)
    close(gdask.function([m["X"], m["y"], m["w"]], m["gw"])(chunked(X, 30), y, w0), want)
    with pytest.raises(gc.GraphcError, match="updates need the computed values"):
        gdask.function([m["X"], m["y"]], m["loss"], updates={m["b"]: m["b"] - m["gb"]},
                       compute=False)
    with pytest.raises(gc.MissingFeedError, match="placeholder 'y'"):
        gdask.function([m["X"]], m["loss"])
    f = gdask.function([m["X"], m["y"]], m["loss"])
    with pytest.raises(gc.MissingFeedError, match="'y'"):
        f(chunked(X, 30))
    with pytest.raises(gc.FeedError, match="no input named 'z'"):
        f(X, y, z=1)


def test_variables_travel_once_per_call_not_once_per_chunk():
    g = gc.Graph()
    x = g.placeholder("x", (None, 300))
    W = g.variable("W", np.random.default_rng(0).normal(size=(300, 300)))  # 720 kB
    rows = gdask.function([x], gc.tanh(x @ W))(da.ones((400, 300), chunks=(10, 300)))
    size = len(pickle.dumps(dict(rows.__dask_graph__())))
    assert rows.numblocks[0] == 40 and W.value.nbytes < size < 2 * W.value.nbytes


def refused(fn, *words):
    with pytest.raises(gdask.BatchError) as info:
        fn()
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert "test_dask.py:" in message  # the user's line
    return message


def test_graphs_that_mix_rows_are_refused_naming_the_node():
    g = gc.Graph()
    x = g.placeholder("x", (None, D))
    w = g.variable("w", np.ones(D))
    refused(lambda: gdask.function([x], gc.jacobian(x @ w, w)), "eye_like node",
            "no batch rule for the op 'eye_like'")
    refused(lambda: gdask.function([x], gc.sum(gc.reshape(x, (-1,)) * 2)), "reshape node")
    refused(lambda: gdask.function([x], gc.sum(gc.concatenate([x, x], axis=0))),
            "concatenate node", "along the batch axis")
    refused(lambda: gdask.function([x], gc.sum(x[1:])), "getitem node", "selects rows")
    refused(lambda: gdask.function([x], gc.argmax(x[:, 0])), "argmax node")
    refused(lambda: gdask.function([x], gc.sum(x[:, 0][:, None] * x[:, 1][None, :])),
            "mul node", "every row with every row")


def test_a_chunk_that_does_not_fit_is_a_feed_error_before_any_task_runs():
    g = gc.Graph()
    x = g.placeholder("x", (None, D))
    f = gdask.function([x], gc.sum(x))
    ran = []

    def block(b):
        ran.append(b.shape)
        return b

    def counted(array):  # with meta given, dask does not call block to learn the result type
        return array.map_blocks(block, meta=np.empty((0,) * array.ndim, array.dtype))

    wrong = counted(da.ones((12, D + 1), chunks=(5, D + 1)))
    with pytest.raises(gc.FeedError, match=r"shape \(5, 5\) to placeholder node 'x'"):
        f(wrong)
    with pytest.raises(gc.FeedError, match="placeholder node 'x'"):
        f(counted(da.ones((12,), chunks=5)))
    with pytest.raises(gc.FeedError, match="dtype complex128"):
        f(counted(da.ones((12, D), chunks=5, dtype=complex)))
    assert not ran


def test_batch_inputs_must_have_the_same_rows(data):
    m = logistic()
    X, y = data
    with pytest.raises(gc.FeedError, match="103 and 100 rows"):
        gdask.function([m["X"], m["y"]], m["loss"])(chunked(X, 10), chunked(y[:100], 10))


def test_differently_chunked_batch_inputs_are_aligned(data):
    m = logistic()
    X, y = data
    want = gc.function([m["X"], m["y"]], m["gw"])(X, y)
    close(gdask.function([m["X"], m["y"]], m["gw"])(chunked(X, 10), chunked(y, 33)), want)


# -- a LocalCluster of two worker processes ---------------------------------------------------
needs_distributed = pytest.mark.skipif(distributed is None, reason="needs dask.distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as c:
        yield c


@needs_distributed
def test_local_cluster_gives_the_same_results(cluster, data):
    m = logistic()
    X, y = data
    outs = [m["loss"], m["gw"], m["H"], m["p"]]
    want = gc.function([m["X"], m["y"]], outs)(X, y)
    with distributed.Client(cluster) as client:
        f = gdask.function([m["X"], m["y"]], outs, client=client)
        got = f(chunked(X, 9), chunked(y, 9))
        for g_, w_ in zip(got, want):
            close(g_, w_)
        assert len(client.run(os.getpid)) == 2
        lazy = gdask.function([m["X"], m["y"]], outs, client=client, compute=False)
        got = client.compute(lazy(chunked(X, 20), chunked(y, 20)), sync=True)
        for g_, w_ in zip(got, want):
            close(g_, w_)


def _slow(block):
    time.sleep(0.1)
    return block


@needs_distributed
def test_a_worker_killed_during_a_gradient_changes_nothing(data):
    m = logistic()
    X, y = data
    outs = [m["loss"], m["gw"], m["H"]]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as c, \
            distributed.Client(c) as client:
        f = gdask.function([m["X"], m["y"]], outs, client=client)

        def inputs():
            return chunked(X, 6).map_blocks(_slow), chunked(y, 6)  # 18 tasks of 0.1 s

        clean = f(*inputs())
        while client.run_on_scheduler(_task_states):  # the clean run is forgotten
            time.sleep(0.02)
        pids = client.run(os.getpid)
        killed = []

        def kill_one_worker():
            while True:
                states = client.run_on_scheduler(_task_states)
                if sum(n for (name, state), n in states.items()
                       if name == "_run_chunk" and state == "memory") >= 3:
                    break
                time.sleep(0.02)
            victim = sorted(pids)[0]
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(states)

        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        faulty = f(*inputs())
        killer.join()
        (states,) = killed
        assert sum(n for (name, state), n in states.items()
                   if name == "_run_chunk" and state != "memory") > 0  # killed mid-call
        for a, b in zip(faulty, clean):
            np.testing.assert_array_equal(a, b)  # same tasks, same tree: the same numbers
        close(clean[1], gc.function([m["X"], m["y"]], m["gw"])(X, y))


def _task_states(dask_scheduler) -> dict:
    """{(task name, state): count} on the scheduler."""
    counts: dict = {}
    for ts in dask_scheduler.tasks.values():
        key = ts.key[0] if isinstance(ts.key, tuple) else ts.key
        name = str(key).rsplit("-", 1)[0]
        counts[name, ts.state] = counts.get((name, ts.state), 0) + 1
    return counts
