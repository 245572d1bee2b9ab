"""Convolution and pooling beyond the registry table: SciPy as an oracle, the adjoint identity,
padding modes and layouts, g.run vs gc.function, second derivatives of a small CNN, errors."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import graphc as gc
from graphc.ops.conv import _conv2d_loop


def _conv_scipy(x, w):
    """Valid cross-correlation summed over input channels, one output channel at a time."""
    N, C = x.shape[:2]
    return np.stack([np.stack([sum(scipy.signal.correlate(x[n, c], w[o, c], mode="valid")
                                   for c in range(C)) for o in range(w.shape[0])])
                     for n in range(N)])


def test_conv2d_matches_scipy_correlate():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    g = gc.Graph()
    X = g.placeholder("X", (None, 3, 7, 6))
    y = gc.conv2d(X, w)
    assert y.shape == (None, 4, 5, 5)
    np.testing.assert_allclose(g.run(y, {X: x}), _conv_scipy(x, w), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,dilation", [(3, 1), (4, 1), (3, 2), ((2, 5), (1, 1))])
def test_same_padding_keeps_the_size(kernel, dilation):
    rng = np.random.default_rng(1)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    x, w = rng.standard_normal((1, 2, 6, 7)), rng.standard_normal((3, 2) + k)
    g = gc.Graph()
    y = gc.conv2d(g.constant(x), w, padding="same", dilation=dilation)
    assert y.shape == (1, 3, 6, 7)
    pads = y.attrs["padding"]
    expected = _conv2d_loop(x, w, stride=(1, 1), padding=pads,
                            dilation=(dilation, dilation) if isinstance(dilation, int)
                            else dilation, groups=1)
    np.testing.assert_allclose(g.run(y), expected, rtol=1e-12, atol=1e-12)
    # the extra row/column of an even (effective) kernel goes to the bottom/right, like PyTorch
    for (lo, hi), kk, d in zip(pads, k, y.attrs["dilation"]):
        assert lo + hi == d * (kk - 1) and hi - lo in (0, 1)


def test_nhwc_is_nchw_transposed_and_conv1d_is_np_correlate():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((4, 3, 3, 3))
    g = gc.Graph()
    nhwc = g.run(gc.conv2d(g.constant(x), w, padding=1, data_format="NHWC"))
    nchw = g.run(gc.conv2d(g.constant(x.transpose(0, 3, 1, 2)), w, padding=1))
    np.testing.assert_allclose(nhwc, nchw.transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    s, k = rng.standard_normal(9), rng.standard_normal(4)
    y = gc.conv1d(g.constant(s[None, None]), k[None, None])
    np.testing.assert_allclose(g.run(y)[0, 0], np.correlate(s, k, mode="valid"), rtol=1e-12)
    same = gc.conv1d(g.constant(s[None, None]), k[None, None], padding="same")
    assert same.shape == (1, 1, 9)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 3))  # groups=2
    attrs = dict(stride=2, padding=1, dilation=1, groups=2)
    g = gc.Graph()
    y = gc.conv2d(g.constant(x), w, **attrs)
    u = rng.standard_normal(y.shape)
    # conv_transpose2d's output_padding recovers the odd input height 7 (width 6: 1)
    back = gc.conv_transpose2d(g.constant(u), w, output_padding=(0, 1), **attrs)
    assert back.shape == x.shape
    lhs = float(np.sum(g.run(y) * u))
    rhs = float(np.sum(x * g.run(back)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def _small_cnn(g, x_value):
    rng = np.random.default_rng(4)
    X = g.constant(x_value)
    K = g.variable("K", rng.standard_normal((3, 2, 2, 2)))
    V = g.variable("V", rng.standard_normal((3 * 2 * 2, 2)))
    h = gc.tanh(gc.conv2d(X, K, padding=((1, 0), (0, 1))))
    h = gc.avg_pool2d(gc.max_pool2d(h, 2, stride=1), 2, stride=1)
    out = gc.reshape(h, (-1, 12)) @ V
    return K, V, gc.sum(gc.square(out))


def test_cnn_hessian_matches_finite_differences_of_the_gradient():
    g = gc.Graph()
    x = np.random.default_rng(5).standard_normal((2, 2, 4, 4))
    K, V, loss = _small_cnn(g, x)
    gK = gc.grad(loss, K)
    H = g.run(gc.hessian(loss, K))
    eps = 1e-5
    K0 = K.value.copy()
    numeric = np.zeros(K0.shape + K0.shape)
    for index in np.ndindex(K0.shape):
        step = np.zeros_like(K0)
        step[index] = eps
        K.value = K0 + step
        plus = g.run(gK)
        K.value = K0 - step
        minus = g.run(gK)
        numeric[index] = (plus - minus) / (2 * eps)
    K.value = K0
    np.testing.assert_allclose(H, np.moveaxis(numeric, range(4), range(4, 8)), rtol=1e-5,
                               atol=1e-6)
    gc.check_gradients(loss, [K, V], feed={})


def test_run_and_function_agree_on_conv_and_pool_gradients():
    g = gc.Graph()
    x = np.random.default_rng(6).standard_normal((2, 2, 4, 4))
    K, V, loss = _small_cnn(g, x)
    grads = gc.gradients(loss, [K, V])
    want = g.run([loss] + grads)
    for optimize in (True, False):
        got = gc.function([], [loss] + grads, optimize=optimize)()
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    checked = gc.function([], [loss] + grads, check_numerics=True)()
    np.testing.assert_allclose(checked[0], want[0], rtol=1e-12)


def test_max_pool_routes_ties_to_the_first_maximum():
    g = gc.Graph()
    x = g.constant(np.array([[1.0, 3.0], [3.0, 0.0]]))
    pooled = gc.max_pool2d(x, 2)
    assert g.run(pooled).tolist() == [[3.0]]
    np.testing.assert_array_equal(g.run(gc.grad(gc.sum(pooled), x)), [[0, 1], [0, 0]])


def test_conv_errors_name_the_op_and_the_line():
    g = gc.Graph()
    x = g.placeholder("x", (1, 3, 5, 5))
    with pytest.raises(gc.ShapeError, match=r"conv2d: input channels .*test_ops_conv.py"):
        gc.conv2d(x, np.zeros((2, 2, 3, 3)))
    with pytest.raises(gc.ShapeError, match="padding='same' needs stride 1"):
        gc.conv2d(x, np.zeros((2, 3, 3, 3)), stride=2, padding="same")
    with pytest.raises(gc.ShapeError, match="larger than the padded input"):
        gc.conv2d(x, np.zeros((2, 3, 7, 7)))
    with pytest.raises(gc.ShapeError, match="at most half the kernel"):
        gc.max_pool2d(x, 2, padding=2)
    with pytest.raises(gc.DTypeError, match="real numbers"):
        gc.conv2d(g.placeholder("b", (1, 3, 5, 5), "bool"), np.zeros((2, 3, 3, 3)))


def test_conv_graph_round_trips_through_json():
    g = gc.Graph()
    x = np.random.default_rng(7).standard_normal((2, 2, 4, 4))
    K, V, loss = _small_cnn(g, x)
    grads = gc.gradients(loss, [K, V])
    g2 = gc.from_json(gc.to_json(g))
    for a, b in zip(g.run([loss] + grads), g2.run([g2[loss.name]] + [g2[n.name] for n in grads])):
        np.testing.assert_array_equal(a, b)
