"""Large-array kernels that compute in their result's buffer (issue 15: page faults).

Past 256 KB the activations, the sigmoid cross-entropy and log_softmax keep no temporary of
their result's size: their values come from the same ufuncs on the same operands, so they must
equal the plain NumPy expressions of their formulas bit for bit (the bits of a NaN aside: NumPy
itself passes on either NaN of two by an element's position), match the ops' references, leave
their inputs alone, and allocate little beyond the result (tracemalloc, not a timing).
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from graphc.ops.registry import REGISTRY

_SCALE, _ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
_C = math.sqrt(2.0 / math.pi)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _erf_gelu(x):
    from scipy import special
    return (0.5 * x * (1 + special.erf(x * math.sqrt(0.5)))).astype(x.dtype, copy=False)


# the formulas as plain NumPy expressions, and the kernel's attrs
FORMULAS = {
    "sigmoid": ({}, _sigmoid),
    "softplus": ({}, _softplus),
    "silu": ({}, lambda x: x * _sigmoid(x)),
    "log_sigmoid": ({}, lambda x: -_softplus(-x)),
    "softsign": ({}, lambda x: x / (1 + np.abs(x))),
    "elu": ({"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0)))),
    "selu": ({}, lambda x: _SCALE * np.where(x > 0, x, _ALPHA * np.expm1(np.minimum(x, 0)))),
    "leaky_relu": ({"negative_slope": 0.2}, lambda x: np.where(x > 0, x, x * 0.2)),
    "gelu": ({"approximate": True},
             lambda x: 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))),
    "gelu erf": ({"approximate": False}, _erf_gelu),
}
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -1e-310, 1e-45, 1.7e308, -3.4e38,
           65504.0, 1e4, -1e4, 708.0, -745.0, 88.0, -104.0, 1e-8, -1.0, 30.0]


def _big(dtype, layout="C", seed=0):
    """An array past 256 KB in ``dtype`` and ``layout``, with special values scattered."""
    rng = np.random.default_rng(seed)
    n = (300 * 1024) // np.dtype(dtype).itemsize + 37  # not a multiple of any piece
    x = rng.standard_normal(n) * 10
    x[rng.choice(n, len(SPECIAL), replace=False)] = SPECIAL
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    if layout == "F":
        return np.asfortranarray(x[:n - n % 7].reshape(-1, 7))
    if layout == "strided":
        return x[::2]
    return x


def _same_bits(got, want):
    """Equal in type, dtype, shape and every bit, but for the sign and payload of NaNs."""
    assert type(got) is type(want) and got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    assert np.array_equal(np.where(nan, 0, got).view(f"u{got.itemsize}"),
                          np.where(nan, 0, want).view(f"u{want.itemsize}"))


def _kernel(name):
    attrs, formula = FORMULAS[name]
    kernel = REGISTRY[name.split()[0]].kernel
    return (lambda x: kernel(x, **attrs)), formula


@pytest.mark.parametrize("name", FORMULAS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_large_kernels_are_their_formulas_bit_for_bit(name, dtype, layout):
    kernel, formula = _kernel(name)
    x = _big(dtype, layout)
    before = x.copy()
    with np.errstate(all="ignore"):
        got, want = kernel(x), formula(x)
    _same_bits(got, want)
    np.testing.assert_array_equal(x, before)  # never written into


@pytest.mark.parametrize("name", FORMULAS)
def test_large_integer_inputs_become_float64(name):
    kernel, formula = _kernel(name)
    x = np.arange(-20000, 20000, dtype=np.int64)
    got = kernel(x)
    assert got.dtype == np.float64
    _same_bits(got, formula(x.astype(np.float64)))


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "log_sigmoid", "softsign",
                                  "elu", "selu", "leaky_relu", "gelu", "gelu erf"])
def test_large_kernels_match_the_references(name):
    attrs, _ = FORMULAS[name]
    op = REGISTRY[name.split()[0]]
    x = np.random.default_rng(1).uniform(-6, 6, (200, 300))
    np.testing.assert_allclose(op.kernel(x, **attrs), op.reference(x, **attrs), rtol=1e-12,
                               atol=1e-15)


def _sigmoid_cross_entropy(x, t):
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


@pytest.mark.parametrize("targets", ["same", "float64", "bool", "int", "scalar", "row", "x row"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_sigmoid_cross_entropy_is_its_formula(dtype, targets):
    rng = np.random.default_rng(2)
    x = _big(dtype)
    x = x[:x.size - x.size % 256].reshape(256, -1)
    t = rng.uniform(0, 1, x.shape)
    t = {"same": t.astype(dtype), "float64": t, "bool": t > 0.5,
         "int": (t > 0.5).astype(np.int64), "scalar": 0.25, "row": t[0].astype(dtype),
         "x row": t.astype(dtype)}[targets]
    if targets == "x row":  # x broadcast over t
        x = x[:1]
    kernel = REGISTRY["sigmoid_cross_entropy"].kernel
    with np.errstate(all="ignore"):
        got, want = kernel(x, t), _sigmoid_cross_entropy(x, t)
    _same_bits(got, want)
    x64, t64 = np.broadcast_arrays(x.astype(np.float64), np.asarray(t, np.float64))
    near = np.broadcast_to(np.abs(x) < 4, x64.shape)  # (where the reference is accurate)
    ref = REGISTRY["sigmoid_cross_entropy"].reference(x64[near], t64[near])
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[near], ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(128, 1000), (3, 90001), (20000, 20)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_log_softmax_is_its_formula(shape, dtype):
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype) * 5
    z = x - np.max(x, axis=-1, keepdims=True)
    want = z - np.log(np.add.reduce(np.exp(z), axis=-1, keepdims=True))
    got = REGISTRY["log_softmax"].kernel(x, axis=(-1,))
    _same_bits(got, want)
    ref = np.log(REGISTRY["softmax"].reference(x.astype(np.float64), axis=-1))
    np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-5 if dtype == "float32" else 1e-12)


def _peak(fn, *args) -> int:
    fn(*args)
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("name", list(FORMULAS) + ["sigmoid_cross_entropy", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_kernels_allocate_little_besides_their_result(name, dtype, layout):
    if name == "log_softmax" and layout == "F":
        pytest.skip("rows of an F-ordered z are summed from a whole exp array (documented)")
    x = np.random.default_rng(4).standard_normal((256, 1000)).astype(dtype, order=layout)
    if name == "sigmoid_cross_entropy":
        fn, args = REGISTRY[name].kernel, (x, (x > 0).astype(dtype))
    elif name == "log_softmax":
        fn, args = (lambda v: REGISTRY[name].kernel(v, axis=(-1,))), (x,)
    else:
        fn, args = _kernel(name)[0], (x,)
    # the result, a quarter of it in scratch, masks (the old forms took 2 to 5 times x)
    assert _peak(fn, *args) <= 1.6 * x.nbytes


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_sigmoid_cross_entropy_of_a_broadcast_x(dtype):
    """A large x (past 256 KB) broadcast over the targets' rows: the values of the
    expression; shapes that do not broadcast: NumPy's own message, as for small arrays."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((1, 70000)) * 4).astype(dtype)
    t = rng.uniform(0, 1, (3, 70000)).astype(dtype)
    kernel = REGISTRY["sigmoid_cross_entropy"].kernel
    _same_bits(kernel(x, t), _sigmoid_cross_entropy(x, t))
    for small, bad in ((x[:, :7], t[:, :5]), (x, t[:, :7])):
        with pytest.raises(ValueError, match="operands could not be broadcast together"):
            kernel(small, bad)
