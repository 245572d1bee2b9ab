"""The einsum kernel's two-operand plans (a BLAS dot, one matmul or one multiply of views, found
once per subscripts and shapes) against the sum of products written out, for many subscripts,
dtypes and memory layouts."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc.ops.einsum import FULL_DOT, _einsum_kernel, _einsum_reference, _join, _pair_plan, \
    parse

RNG = np.random.default_rng(7)

#: (subscripts, shapes, the plan: "dot", "product" or "numpy")
PAIRS = [
    ("ij,ij->", [(6, 5), (6, 5)], "dot"),
    ("i,i->", [(7,), (7,)], "dot"),
    (",->", [(), ()], "dot"),
    ("ij,ij->", [(0, 5), (0, 5)], "dot"),
    ("ij,ji->", [(4, 5), (5, 4)], "product"),
    ("ij,jk->ik", [(4, 5), (5, 3)], "product"),
    ("ij,ik->jk", [(6, 4), (6, 3)], "product"),
    ("ij,kj->ki", [(4, 5), (3, 5)], "product"),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], "product"),
    ("bi,bi->b", [(5, 4), (5, 4)], "product"),
    ("ijk,kj->i", [(2, 3, 4), (4, 3)], "product"),
    ("abc,bd->", [(2, 3, 4), (3, 5)], "product"),  # a's own letters summed first
    ("ijk,jl->lki", [(3, 4, 5), (4, 6)], "product"),
    ("i,j->ij", [(4,), (3,)], "product"),
    ("ab,cd->dbca", [(2, 3), (4, 5)], "product"),
    ("ab,ab->ba", [(2, 3), (2, 3)], "product"),
    ("ij,->ji", [(2, 3), ()], "product"),
    ("ij,jk->ik", [(0, 3), (3, 4)], "product"),
    ("ij,jk->ik", [(2, 0), (0, 4)], "product"),
    ("ab,b->a", [(5, 1), (1,)], "product"),
    ("ij,ij->ij", [(2, 3), (1, 3)], "numpy"),  # a size-1 dimension broadcast
    ("iij,j->ij", [(2, 2, 3), (3,)], "numpy"),  # a diagonal
]
DTYPES = ["float64", "float32", "int64", "int8", "bool"]


def _layouts(value: np.ndarray):
    """The value C-ordered, F-ordered, and as a strided view (the same elements)."""
    yield value
    if value.ndim:  # (np.asfortranarray makes a 0-d value 1-d)
        yield np.asfortranarray(value)
        wide = np.zeros(value.shape[:-1] + (2 * value.shape[-1],), value.dtype)
        wide[..., ::2] = value
        yield wide[..., ::2]


def _canonical(subscripts, shapes):
    return _join(*parse(subscripts, [len(s) for s in shapes]))


@pytest.mark.parametrize("subscripts, shapes, plan", PAIRS)
def test_two_operand_plans_match_the_written_out_sum(subscripts, shapes, plan):
    canon = _canonical(subscripts, shapes)
    found = _pair_plan(canon, *map(tuple, shapes))
    assert {"dot": found is FULL_DOT, "product": callable(found),
            "numpy": found is None}[plan], found
    for dtype in DTYPES:
        a, b = ((RNG.standard_normal(s) * 3).astype(dtype) for s in shapes)
        want = _einsum_reference(a, b, subscripts=canon)
        for la in _layouts(a):
            for lb in _layouts(b):
                got = _einsum_kernel(la, lb, subscripts=canon)
                assert isinstance(got, np.ndarray) and got.dtype == want.dtype
                assert got.shape == want.shape
                if dtype.startswith("float"):
                    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32"
                                               else 1e-12, atol=1e-5)
                else:  # integers wrap alike in any order, bools are exact
                    assert np.array_equal(got, want), (dtype, got, want)


def test_mixed_dtypes_and_python_scalars():
    a = RNG.standard_normal((4, 5)).astype("float32")
    b = RNG.standard_normal((4, 5))
    got = _einsum_kernel(a, b, subscripts="ij,ij->")
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.sum(a.astype(np.float64) * b), rtol=1e-12)
    got = _einsum_kernel(2.5, np.arange(3.0), subscripts=",i->i")
    assert got.tolist() == [0.0, 2.5, 5.0]
    got = _einsum_kernel(np.arange(3, dtype=np.int32), np.arange(3.0, dtype=np.float32),
                         subscripts="i,i->")
    assert got.dtype == np.float64 and got == 5.0


@pytest.mark.parametrize("backend", ["source", "vm"])
def test_compiled_einsums_equal_g_run_bit_for_bit(backend):
    """g.run and compiled code share the kernel: the same bits and result kinds."""
    g = gc.Graph()
    a, b = g.placeholder("a", (6, 5)), g.placeholder("b", (5, 4))
    outs = [gc.einsum("ij,jk->ik", a, b), gc.einsum("ij,ij->", a, a), gc.einsum("ij,jk->", a, b),
            gc.einsum("ij,kj->ki", a, gc.transpose(b)), gc.tensordot(a, b, 1)]
    f = gc.function([a, b], outs, backend=backend)
    A, B = RNG.standard_normal((6, 5)), RNG.standard_normal((5, 4))
    for got, want in zip(f(A, B), g.run(outs, {a: A, b: B})):
        assert type(got) is type(want) and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("subscripts, a, b", [
    ("ij,j->j", np.ones((4, 5), bool), np.arange(5)),  # bool rows summed as ints: 4 * j
    ("ij,k->k", np.full((4, 40), 100, np.int8), np.ones(2, np.int64)),  # 16000, not int8's -128
    ("c,bb->b", np.ones(3, bool), np.arange(4.0).reshape(2, 2) + 1),  # a diagonal, bool x float
    ("ab,bc->ac", np.full((3, 4), 1e-4, np.float16), np.ones((4, 2))),  # float16 x float64
])
def test_mixed_dtypes_compute_in_the_common_dtype(subscripts, a, b):
    """Letters of one operand are summed in the result's dtype, as NumPy's einsum loop does."""
    want = np.einsum(subscripts, a.astype(np.result_type(a, b)), b.astype(np.result_type(a, b)))
    got = _einsum_kernel(a, b, subscripts=subscripts)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_three_operands_take_the_declared_dtype_of_a_python_scalar():
    """A weak constant reaches the kernel as a Python float: the result is float64, as the
    node declares, on every path (and a donated buffer or an update keeps that dtype)."""
    g = gc.Graph()
    x = g.placeholder("x", (1000,), "float32")
    y = g.placeholder("y", (1000,), "float64")
    e = gc.einsum(",i,i->i", 0.1, x, x)
    out = gc.exp(e * y)
    X = RNG.standard_normal(1000).astype(np.float32)
    Y = RNG.standard_normal(1000)
    want = g.run(out, {x: X, y: Y})
    assert e.dtype == want.dtype == np.float64
    for backend in ("source", "vm"):
        got = gc.function([x, y], out, backend=backend)(X, Y)
        assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
    v = g.variable("v", np.zeros(3))
    x3 = g.placeholder("x3", (3,), "float32")
    gc.function([x3], [], updates={v: gc.einsum(",i,i->i", 2.5, x3, x3)})(
        np.arange(3, dtype=np.float32))
    assert g.run(v).dtype == np.float64 and g.run(v).tolist() == [0.0, 2.5, 10.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_full_dot_has_the_same_bits_in_every_layout(dtype):
    """C-ordered, F-ordered, strided and reversed operands give one result, bit for bit."""
    a = RNG.standard_normal((300, 200)).astype(dtype)
    b = RNG.standard_normal((300, 200)).astype(dtype)
    want = _einsum_kernel(a, b, subscripts="ij,ij->")
    for la in _layouts(a):
        for lb in [*_layouts(b), b[::-1, ::-1].copy()[::-1, ::-1]]:
            assert _einsum_kernel(la, lb, subscripts="ij,ij->").tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_long_dot_stays_within_a_few_ulp(dtype):
    """Past DOT_BLOCK elements the dot is cut into blocks summed pairwise: one long BLAS dot
    of 2^22 float32 squares drifts about 100 ulp from the exact sum; the blocks stay close."""
    from graphc.ops.einsum import DOT_BLOCK
    n = 1 << 22
    assert n > 8 * DOT_BLOCK
    x = (RNG.standard_normal(n) * 0.05 + 0.01).astype(dtype)
    got = _einsum_kernel(x, x, subscripts="i,i->")
    wide = x.astype(np.float64)
    exact = math.fsum((wide * wide).tolist()) if dtype == "float32" else \
        float(np.sum(x.astype(np.longdouble) ** 2))
    assert got.dtype == np.dtype(dtype)
    ulps = abs(float(got) - exact) / float(np.spacing(np.array(exact, dtype)))
    assert ulps <= 4, ulps
