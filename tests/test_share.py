"""The ``share`` pass: a softmax cross-entropy (integer labels) and its gradient computed in
one pass over the logits, with the unshared program's values bit for bit and the loss's own
errors; what it must not touch stays as it is."""
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.compiler.passes import DEFAULT_PASSES
from graphc.ops import nn

RNG = np.random.default_rng(15)
BACKENDS = ["source", "vm"]
UNSHARED = tuple(p for p in DEFAULT_PASSES if p != "share")
HERE = __file__


def _bits(a) -> bytes:
    a = np.asarray(a)
    return a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()


def _logits(shape, dtype, special=False):
    z = RNG.standard_normal(shape) * 4
    if special and z.size >= 3 * shape[-1]:
        rows = z.reshape(-1, shape[-1])
        rows[0] = -np.inf  # no softmax: NaN, as the kernels give
        rows[1, 0] = np.inf
        rows[2, 1] = np.nan
    return z.astype(dtype)


def _step(shape, dtype, special=False, batch=None):
    """loss = mean cross-entropy of logits z = h @ W + C (proven C-ordered: a matmul plus a
    constant, which carries the special values), and the gradient with respect to h."""
    g = gc.Graph()
    h = g.placeholder("h", (batch or shape)[:-1] + (3,), dtype)
    y = g.placeholder("y", (batch or shape)[:-1], "int64")
    W = g.variable("W", RNG.standard_normal((3, shape[-1])).astype(dtype))
    z = h @ W
    if special:
        z = z + g.constant(_logits(shape, dtype, special=True))
    loss = gc.mean(gc.softmax_cross_entropy(z, y))
    dh, = gc.gradients(loss, [h])
    return g, h, y, z, loss, dh


def _shared(f) -> int:
    return f.stats["rules"].get("share", 0)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # g.run's mean of the empty batch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(128, 10), (300, 10), (300, 20), (64, 40), (5,), (2, 3, 4),
                                   (0, 5)])
@pytest.mark.parametrize("special", [False, True])
def test_the_loss_and_its_gradient_keep_their_bits(shape, dtype, backend, special):
    """Every layout the kernels take (rows, columns, 17-32 classes where the loss goes by
    columns and the softmax by rows), non-finite rows, empty batches."""
    g, h, y, z, loss, dh = _step(shape, dtype, special)
    f = gc.function([h, y], [loss, dh], backend=backend)
    if 0 not in shape:  # (an empty gradient is folded to a constant)
        assert _shared(f) == 1 and f.stats["ops"]["cross-entropy and gradient"] == 1
        assert "softmax" not in f.stats["ops"] and "one_hot_like" not in f.stats["ops"]
    unshared = gc.function([h, y], [loss, dh], passes=UNSHARED, backend=backend)
    for labels_dtype in ("int64", "uint64", "uint8"):
        feeds = [RNG.standard_normal(shape[:-1] + (3,)).astype(dtype),
                 RNG.integers(0, shape[-1], shape[:-1]).astype(labels_dtype)]
        got, want = f(*feeds), unshared(*feeds)
        reference = g.run([loss, dh], dict(zip([h, y], feeds)))
        for a, b, c in zip(got, want, reference):
            assert _bits(a) == _bits(b) == _bits(c)


def test_a_training_step_with_sizes_known_at_the_call():
    g = gc.Graph()
    x = g.placeholder("x", (None, 6))
    y = g.placeholder("y", (None,), "int32")
    W = g.variable("W", RNG.standard_normal((6, 4)))
    b = g.variable("b", np.zeros(4))
    loss = gc.mean(gc.softmax_cross_entropy(x @ W + b, y))
    grads = gc.gradients(loss, [W, b])
    f = gc.function([x, y], [loss] + grads)
    assert _shared(f) == 1
    unshared = gc.function([x, y], [loss] + grads, passes=UNSHARED)
    for n in (8, 3):  # each specialisation infers the shared term's size again
        feeds = [RNG.standard_normal((n, 6)), RNG.integers(0, 4, n).astype("int32")]
        for a, c in zip(f(*feeds), unshared(*feeds)):
            assert _bits(a) == _bits(c)
        assert "cross-entropy and gradient" in f.source
    # the gradient by hand: (softmax - one_hot) / n, through x
    p = np.exp(feeds[0] @ W.value)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(3), feeds[1]] -= 1
    assert np.allclose(f(*feeds)[1], feeds[0].T @ p / 3, rtol=1e-12, atol=1e-15)


def test_the_memory_plan_counts_the_shared_array():
    """The shared term is one new array (the gradient and the loss), its parts views: the
    planned peak is the unshared one's, and so is the real one (tracemalloc)."""
    import tracemalloc
    g = gc.Graph()
    x = g.placeholder("x", (512, 256))
    y = g.placeholder("y", (512,), "int64")
    W = g.variable("W", RNG.standard_normal((256, 1000)) * 0.05)
    loss = gc.mean(gc.softmax_cross_entropy(x @ W, y))
    f = gc.function([x, y], [loss, gc.gradients(loss, [W])[0]])
    unshared = gc.function([x, y], [loss, gc.gradients(loss, [W])[0]], passes=UNSHARED)
    assert _shared(f) == 1
    feeds = [RNG.standard_normal((512, 256)), RNG.integers(0, 1000, 512)]
    peaks = []
    for fn in (f, unshared):
        fn(*feeds)  # (the arena is made at the first call)
        tracemalloc.start()
        fn(*feeds)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    loss_bytes = 512 * 8  # held in the shared array while the gradient lives
    assert f.stats["planned_peak_bytes"] <= unshared.stats["planned_peak_bytes"] + loss_bytes
    assert peaks[0] <= peaks[1] + loss_bytes, peaks


def test_a_loss_the_caller_keeps_holds_no_gradient():
    """The per-example loss is an output: a copy of its part, so it owns its values (a kept
    loss does not hold the gradient's bytes), as g.run's does."""
    g, h, y, z, loss, dh = _step((64, 40), "float64")
    per_example = loss.inputs[0]
    for backend in BACKENDS:
        f = gc.function([h, y], [per_example, dh], backend=backend)
        assert _shared(f) == 1
        feeds = [RNG.standard_normal((64, 3)), RNG.integers(0, 40, 64)]
        got = f(*feeds)
        assert got[0].flags.owndata and got[0].shape == (64,)
        for a, b in zip(got, g.run([per_example, dh], dict(zip([h, y], feeds)))):
            assert _bits(a) == _bits(b)


def test_logits_behind_a_long_chain():
    """The layout proof walks the program, not the recursion stack."""
    g = gc.Graph()
    h, y = g.placeholder("h", (8, 3)), g.placeholder("y", (8,), "int64")
    z = h @ g.constant(RNG.standard_normal((3, 5)))
    for _ in range(2000):
        z = gc.tanh(z)
    loss = gc.mean(gc.softmax_cross_entropy(z, y))
    f = gc.function([h, y], [loss, gc.gradients(loss, [h])[0]])
    assert _shared(f) == 1


@pytest.mark.parametrize("bad", [4, -1])
def test_labels_out_of_range_raise_the_losss_error(bad):
    g = gc.Graph()
    h, y = g.placeholder("h", (3, 2)), g.placeholder("y", (3,), "int64")
    loss = gc.mean(gc.softmax_cross_entropy(h @ g.constant(np.ones((2, 4))), y))
    line = sys._getframe().f_lineno - 1
    dh, = gc.gradients(loss, [h])
    feeds = (np.zeros((3, 2)), np.array([0, bad, 1]))
    errors = []
    for run in (lambda: g.run([loss, dh], {h: feeds[0], y: feeds[1]}),
                lambda: gc.function([h, y], [loss, dh])(*feeds),
                lambda: gc.function([h, y], [loss, dh], backend="vm")(*feeds)):
        with pytest.raises(gc.ShapeError, match=f"label {bad} is out of range for 4 classes") \
                as err:
            run()
        errors.append(str(err.value))
    assert errors[0] == errors[1] == errors[2]
    assert "softmax_cross_entropy node" in errors[0] and f"{HERE}:{line}" in errors[0]
    assert _shared(gc.function([h, y], [loss, dh])) == 1


def test_labels_of_the_wrong_shape_at_the_call():
    g, h, y, z, loss, dh = _step((4,), "float64", batch=(None, 4))
    feeds = (np.zeros((3, 3)), np.array([0, 1]))
    with pytest.raises(gc.ShapeError) as want:
        g.run([loss, dh], {h: feeds[0], y: feeds[1]})
    for backend in BACKENDS:
        f = gc.function([h, y], [loss, dh], backend=backend)
        assert _shared(f) == 1
        with pytest.raises(gc.ShapeError) as got:
            f(*feeds)
        assert str(got.value) == str(want.value)


def _untouched_cases():
    def gradient_alone(g, z, y, loss):  # no loss to share the pass with
        return [gc.gradients(loss, [z])[0]]

    def softmax_read_too(g, z, y, loss):
        return [loss, gc.gradients(loss, [z])[0], gc.softmax(z)]

    def probabilities(g, z, y, loss):  # dense targets: another gradient
        t = gc.softmax(gc.stop_gradient(z * 0.5))
        dense = gc.mean(gc.softmax_cross_entropy(z, t))
        return [dense, gc.gradients(dense, [z])[0]]

    def second_order(g, z, y, loss):  # the Hessian reads the softmax again
        dz, = gc.gradients(loss, [z])
        return [loss, gc.gradients(gc.sum(dz * dz), [z])[0]]

    def logits_fed(g, z, y, loss):  # an argument may come in any layout
        p = g.placeholder("p", (6, 5))
        fed = gc.mean(gc.softmax_cross_entropy(p, y))
        return [fed, gc.gradients(fed, [p])[0]]

    def hand_written_gradient(g, z, y, loss):  # the one-hot before the loss
        grad = gc.softmax(z) - gc.ops.one_hot_like(y, z)
        late = gc.mean(gc.softmax_cross_entropy(z, y))
        return [late, grad]

    return [gradient_alone, softmax_read_too, probabilities, second_order, logits_fed,
            hand_written_gradient]


@pytest.mark.parametrize("case", _untouched_cases(), ids=lambda c: c.__name__)
def test_what_stays_as_it_is(case):
    g = gc.Graph()
    h, y = g.placeholder("h", (6, 3)), g.placeholder("y", (6,), "int64")
    z = h @ g.constant(RNG.standard_normal((3, 5)))
    if case.__name__ == "hand_written_gradient":
        outs = case(g, z, y, None)
    else:
        outs = case(g, z, y, gc.mean(gc.softmax_cross_entropy(z, y)))
    inputs = [h, y] + [n for n in g.nodes if n.op == "placeholder" and n not in (h, y)]
    f = gc.function(inputs, outs)
    assert _shared(f) == 0 and "cross-entropy and gradient" not in f.stats["ops"]
    feeds = [RNG.standard_normal((6, 3)), RNG.integers(0, 5, 6)] + [
        np.asfortranarray(_logits((6, 5), "float64")) for _ in inputs[2:]]
    want = g.run(outs, dict(zip(inputs, feeds)))
    for a, b in zip(f(*feeds), want):
        assert _bits(a) == _bits(b)


def test_off_under_check_numerics():
    """The softmax stays a term of its own, checked for NaN and inf."""
    g, h, y, z, loss, dh = _step((6, 5), "float64")
    f = gc.function([h, y], [loss, dh], check_numerics=True)
    assert _shared(f) == 0 and f.stats["ops"]["softmax"] == 1


@pytest.mark.parametrize("labels_dtype", ["int8", "uint8", "int32", "int64", "uint64"])
@pytest.mark.parametrize("layout", ["C", "F", "transposed"])
def test_the_kernel_is_the_three_kernels(layout, labels_dtype):
    for shape in [(40, 7), (300, 12), (300, 24), (3, 5, 6)]:
        z = _logits(shape, "float32", special=True)
        if layout == "F":
            z = np.asfortranarray(z)
        elif layout == "transposed" and z.ndim == 2:
            z = np.ascontiguousarray(z.T).T
        y = RNG.integers(0, shape[-1], shape[:-1]).astype(labels_dtype)
        with np.errstate(divide="ignore", invalid="ignore"):  # the -inf, inf and NaN rows
            flat = nn.softmax_cross_entropy_and_gradient(z, y)
            want = nn._softmax(z, axis=(-1,)) - nn._one_hot_like(y, z)
            loss = nn._softmax_cross_entropy(z, y)
        assert flat.shape == (z.size + y.size,) and flat.dtype == z.dtype
        # the values bit for bit (the gradient's layout is C here, whatever the logits')
        assert _bits(flat[:z.size].reshape(z.shape)) == _bits(np.ascontiguousarray(want))
        assert _bits(flat[z.size:].reshape(y.shape)) == _bits(loss)
