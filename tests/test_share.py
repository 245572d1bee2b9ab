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


def _step(shape, dtype, batch=None):
    """loss = mean cross-entropy of z (a placeholder), and its gradient."""
    g = gc.Graph()
    z = g.placeholder("z", batch or shape, dtype)
    y = g.placeholder("y", (batch or shape)[:-1], "int64")
    loss = gc.mean(gc.softmax_cross_entropy(z, y))
    dz, = gc.gradients(loss, [z])
    return g, z, y, loss, dz


def _shared(f) -> int:
    return f.stats["rules"].get("share", 0)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # g.run's mean of the empty batch
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(128, 10), (300, 10), (300, 20), (64, 40), (5,), (2, 3, 4),
                                   (0, 5)])
def test_the_loss_and_its_gradient_keep_their_bits(shape, dtype, backend):
    """Every layout the kernels take (rows, columns, 17-32 classes where the loss goes by
    columns and the softmax by rows), non-finite rows, empty batches."""
    g, z, y, loss, dz = _step(shape, dtype)
    f = gc.function([z, y], [loss, dz], backend=backend)
    if 0 not in shape:  # (an empty gradient is folded to a constant)
        assert _shared(f) == 1 and f.stats["ops"]["cross-entropy and gradient"] == 1
        assert "softmax" not in f.stats["ops"] and "one_hot_like" not in f.stats["ops"]
    unshared = gc.function([z, y], [loss, dz], passes=UNSHARED, backend=backend)
    for special in (False, True):
        feeds = [_logits(shape, dtype, special), RNG.integers(0, shape[-1], shape[:-1])]
        got, want = f(*feeds), unshared(*feeds)
        reference = g.run([loss, dz], dict(zip([z, y], feeds)))
        for a, b, c in zip(got, want, reference):
            assert _bits(a) == _bits(b) == _bits(c)


def test_a_training_step_shares_the_pass():
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
    for n in (8, 3):  # sizes known at the call only: each specialisation infers the items
        feeds = [RNG.standard_normal((n, 6)), RNG.integers(0, 4, n).astype("int32")]
        for a, c in zip(f(*feeds), unshared(*feeds)):
            assert _bits(a) == _bits(c)
        assert "cross-entropy and gradient" in f.source
    # the gradient by hand: (softmax - one_hot) / n, through x
    p = np.exp(feeds[0] @ W.value)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(3), feeds[1]] -= 1
    assert np.allclose(f(*feeds)[1], feeds[0].T @ p / 3, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad", [4, -1])
def test_labels_out_of_range_raise_the_losss_error(bad):
    g = gc.Graph()
    z, y = g.placeholder("z", (3, 4)), g.placeholder("y", (3,), "int64")
    loss = gc.mean(gc.softmax_cross_entropy(z, y))
    line = sys._getframe().f_lineno - 1
    dz, = gc.gradients(loss, [z])
    feeds = (np.zeros((3, 4)), np.array([0, bad, 1]))
    errors = []
    for run in (lambda: g.run([loss, dz], {z: feeds[0], y: feeds[1]}),
                lambda: gc.function([z, y], [loss, dz])(*feeds),
                lambda: gc.function([z, y], [loss, dz], backend="vm")(*feeds)):
        with pytest.raises(gc.ShapeError, match=f"label {bad} is out of range for 4 classes") \
                as err:
            run()
        errors.append(str(err.value))
    assert errors[0] == errors[1] == errors[2]
    assert "softmax_cross_entropy node" in errors[0] and f"{HERE}:{line}" in errors[0]


def test_labels_of_the_wrong_shape_at_the_call():
    g, z, y, loss, dz = _step((4,), "float64", batch=(None, 4))
    feeds = (np.zeros((3, 4)), np.array([0, 1]))
    with pytest.raises(gc.ShapeError) as want:
        g.run([loss, dz], {z: feeds[0], y: feeds[1]})
    for backend in BACKENDS:
        with pytest.raises(gc.ShapeError) as got:
            gc.function([z, y], [loss, dz], backend=backend)(*feeds)
        assert str(got.value) == str(want.value)


def _untouched_cases():
    def gradient_alone(z, y, loss, dz):  # no loss to share the pass with
        return [dz]

    def softmax_read_too(z, y, loss, dz):
        return [loss, dz, gc.softmax(z)]

    def probabilities(z, y, loss, dz):  # dense targets: another gradient
        t = gc.softmax(gc.stop_gradient(z * 0.5))
        dense = gc.mean(gc.softmax_cross_entropy(z, t))
        return [dense, gc.gradients(dense, [z])[0]]

    def second_order(z, y, loss, dz):  # the Hessian reads the softmax again
        return [loss, gc.gradients(gc.sum(dz * dz), [z])[0]]

    return [gradient_alone, softmax_read_too, probabilities, second_order]


@pytest.mark.parametrize("case", _untouched_cases(), ids=lambda c: c.__name__)
def test_what_stays_as_it_is(case):
    g, z, y, loss, dz = _step((6, 5), "float64")
    outs = case(z, y, loss, dz)
    f = gc.function([z, y], outs)
    feeds = [_logits((6, 5), "float64"), RNG.integers(0, 5, 6)]
    want = g.run(outs, dict(zip([z, y], feeds)))
    if case.__name__ == "second_order":
        assert _shared(f) == 0
    else:
        assert _shared(f) == 0 and "cross-entropy and gradient" not in f.stats["ops"]
    for a, b in zip(f(*feeds), want):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-15)


def test_off_under_check_numerics():
    g, z, y, loss, dz = _step((6, 5), "float64")
    f = gc.function([z, y], [loss, dz], check_numerics=True)
    assert _shared(f) == 0
    with pytest.raises(gc.NumericsError, match="softmax"):
        f(_logits((6, 5), "float64", special=True), np.zeros(6, int))


@pytest.mark.parametrize("labels_dtype", ["int8", "uint8", "int32", "int64"])
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
            loss, grad = nn.softmax_cross_entropy_and_gradient(z, y)
            want = nn._softmax(z, axis=(-1,)) - nn._one_hot_like(y, z)
            assert _bits(loss) == _bits(nn._softmax_cross_entropy(z, y))
        assert _bits(grad) == _bits(want)
