"""Elementwise fusion (graphc/compiler/fusion.py): which terms are fused, and that a fused
function gives bit for bit the values and the errors of the unfused program and of g.run.

Most tests shrink the size threshold and the block size, so that small arrays run through
many blocks with short last blocks; one test keeps the real thresholds.
"""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

import graphc as gc
from graphc.compiler import DEFAULT_PASSES, fusion
from graphc.ops.registry import REGISTRY
from test_io_json import same_bits

UNFUSED = tuple(p for p in DEFAULT_PASSES if p != "fuse")
RNG = np.random.default_rng(15)


@pytest.fixture
def small_blocks(monkeypatch):
    """Fuse any size, in blocks of 7 float64 or 14 float32 elements (short last blocks)."""
    monkeypatch.setattr(fusion, "MIN_BYTES", 1)
    monkeypatch.setattr(fusion, "BLOCK_BYTES", 56)


def special(shape, dtype) -> np.ndarray:
    """Random values with inf, -inf, NaN, -0.0, 0, huge and tiny numbers mixed in."""
    x = RNG.standard_normal(shape) * 3
    flat = x.reshape(-1)
    extras = [np.inf, -np.inf, np.nan, -0.0, 0.0, 1e300, -1e-300, 88.7, 710.0]
    picks = RNG.choice(flat.size, size=min(flat.size // 3, len(extras)), replace=False)
    flat[picks] = np.resize(extras, picks.size)
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        return x.astype(dtype)


#: The compiler's back ends, where it has several (the fused term is an ordinary term to each).
BACKENDS = ({"backend": "source"}, {"backend": "vm"}) if "backend" in inspect.signature(
    gc.function).parameters else ({},)


def check_agrees(inputs, outputs, feed_values, *, fused_groups=None):
    """The fused function (on every back end), the unfused one and g.run give the same bits;
    returns the fused function."""
    fused = [gc.function(inputs, outputs, passes=DEFAULT_PASSES, **b) for b in BACKENDS]
    unfused = gc.function(inputs, outputs, passes=UNFUSED)
    graph = inputs[0].graph
    want = graph.run(outputs, dict(zip(inputs, feed_values)))
    for f in fused + [unfused]:
        for a, b in zip(f(*feed_values), want):
            assert same_bits(a, b)
    fused = fused[0]
    if fused_groups is not None:
        assert fused.stats["rules"].get("fuse:groups", 0) == fused_groups
    return fused


# -- values: bit for bit --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [1, 6, 7, 8, 50])
def test_chain_on_vectors_agrees_bitwise(small_blocks, dtype, n):
    g = gc.Graph()
    x = g.placeholder("x", (n,), dtype)
    s = x * x
    y = gc.exp(-0.5 * s) * gc.sin(3 * x) + gc.log1p(s) * gc.tanh(x) - x / 7
    check_agrees([x], [y], [special((n,), dtype)], fused_groups=1 if n > 0 else 0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_broadcast_inputs_and_constants_agree_bitwise(small_blocks, dtype):
    """Inputs that broadcast into the group's shape along every axis, weak Python scalars,
    strong 0-d constants (which promote float32 to float64), ints and bool masks."""
    g = gc.Graph()
    x = g.placeholder("x", (3, 5, 11), dtype)
    row = g.placeholder("row", (11,), dtype)
    col = g.placeholder("col", (3, 1, 1), dtype)
    mid = g.placeholder("mid", (5, 1), dtype)
    k = g.placeholder("k", (3, 5, 11), "int32")
    c = g.constant(np.array(1.5, "float64"))
    mask = gc.greater(x, row)
    y = gc.sqrt(gc.abs(x * row + col)) / (mid - 2.5) + gc.maximum(x, mid) * mask
    z = (gc.tanh(y) + k * 0.25) * c - 1
    feed = [special((3, 5, 11), dtype), special((11,), dtype), special((3, 1, 1), dtype),
            special((5, 1), dtype), RNG.integers(-5, 5, (3, 5, 11)).astype("int32")]
    f = check_agrees([x, row, col, mid, k], [z], feed, fused_groups=1)
    assert f.outputs[0].dtype == np.float64 and f(*feed)[0].dtype == np.float64


@pytest.mark.parametrize("shape", [(4, 40), (2, 3, 2), (30, 1), (1, 30)])
def test_blocks_along_inner_axes_agree(monkeypatch, shape):
    """Shapes whose trailing part is larger than a block are cut along an inner axis."""
    monkeypatch.setattr(fusion, "MIN_BYTES", 1)
    monkeypatch.setattr(fusion, "BLOCK_BYTES", 40)  # 5 float64 elements
    g = gc.Graph()
    x = g.placeholder("x", shape)
    v = g.placeholder("v", shape[-1:])
    y = gc.cos(x - v) * gc.exp(x) + v
    check_agrees([x, v], [y], [special(shape, "float64"), special(shape[-1:], "float64")],
                 fused_groups=1)


def test_non_contiguous_inputs_run_step_by_step_with_the_same_values(small_blocks):
    g = gc.Graph()
    x = g.placeholder("x", (6, 9))
    y = gc.tanh(x) * 3 + gc.exp(-x)
    fortran = np.asfortranarray(special((6, 9), "float64"))
    strided = special((6, 18), "float64")[:, ::2]
    for value in (fortran, strided):
        check_agrees([x], [y], [value], fused_groups=1)


def test_mixed_layouts_keep_numpys_result_layout(small_blocks):
    """An F- and a C-ordered input: the members run step by step, and none writes into a
    dying member's F-ordered buffer where NumPy's own result is C-ordered (else the value's
    layout, and a later reduction's order of additions, would differ from g.run's)."""
    g = gc.Graph()
    x, y = g.placeholder("x", (30, 40)), g.placeholder("y", (30, 40))
    z = gc.exp(x) * 1.5 + y
    feeds = [np.asfortranarray(special((30, 40), "float64")), special((30, 40), "float64")]
    want = g.run([z], dict(zip([x, y], feeds)))[0]
    for b in BACKENDS:
        got = gc.function([x, y], [z], **b)(*feeds)[0]
        assert same_bits(got, want) and got.strides == want.strides
    n = 300  # the same through a sum: one order of additions, the same bits (real blocks)
    feeds = [np.asfortranarray(RNG.standard_normal((n, n))), RNG.standard_normal((n, n))]
    g = gc.Graph()
    x, y = g.placeholder("x", (n, n)), g.placeholder("y", (n, n))
    check_agrees([x, y], [gc.sum(gc.exp(x) * 1.5 + y, axis=1)], feeds, fused_groups=1)


def test_updates_and_several_outputs(small_blocks):
    g = gc.Graph()
    x = g.placeholder("x", (20,))
    W = g.variable("W", RNG.standard_normal(20))
    h = gc.tanh(W * x)
    loss = gc.sum(h * h)
    (gW,) = gc.gradients(loss, [W])
    f = gc.function([x], [loss, h], updates={W: W - 0.1 * gW})
    X = special((20,), "float64")
    before = W.value.copy()
    want_loss, want_h, want_gW = g.run([loss, h, gW], {x: X})
    got_loss, got_h = f(X)
    assert same_bits(got_loss, want_loss) and same_bits(got_h, want_h)
    W.value = before
    unfused = gc.function([x], [loss, h], updates={W: W - 0.1 * gW}, passes=UNFUSED)
    unfused(X)
    after_unfused = W.value.copy()
    W.value = before
    f(X)
    assert same_bits(W.value, after_unfused)
    assert f.stats["rules"]["fuse:groups"] >= 1


# -- plan facts -----------------------------------------------------------------------------------
def test_stats_count_groups_and_terms(small_blocks):
    g = gc.Graph()
    x = g.placeholder("x", (100,))
    y = gc.exp(gc.sin(x) * 2) + 1  # sin, mul, exp, add: one group of four
    f = gc.function([x], y)
    assert f.stats["rules"]["fuse:groups"] == 1 and f.stats["rules"]["fuse:terms"] == 4
    assert f.stats["ops"][fusion.FUSED] == 1
    assert not {"sin", "mul", "exp", "add"} & set(f.stats["ops"])
    (entry,) = [p for p in f.stats["passes"] if p["pass"] == "fuse"]
    assert entry["before"] - entry["after"] == 3
    assert f.stats["passes"][-1] is entry  # it runs last
    assert "fused elementwise" in f.source


def test_values_read_outside_the_group_end_it(small_blocks):
    """A value read by a non-fusable term (sum) or returned is computed by its own term."""
    g = gc.Graph()
    x = g.placeholder("x", (30,))
    a = gc.exp(x) * 2  # read by the sum and by b: the root of a group (exp, mul)
    b = gc.tanh(a) + 1  # a group (tanh, add)
    f = gc.function([x], [b, gc.sum(a)])
    assert f.stats["rules"]["fuse:groups"] == 2 and f.stats["rules"]["fuse:terms"] == 4
    X = special((30,), "float64")
    for got, want in zip(f(X), g.run([b, gc.sum(a)], {x: X})):
        assert same_bits(got, want)


def test_the_size_threshold():
    """Groups are fused from MIN_BYTES in their largest dtype on."""
    n = fusion.MIN_BYTES // 8
    g = gc.Graph()
    big = g.placeholder("big", (n,))
    small = g.placeholder("small", (n - 1,))
    half = g.placeholder("half", (n,), "float32")  # float32: half the bytes
    outputs = [gc.exp(big) * 2, gc.exp(small) * 2, gc.exp(half) * 2]
    f = gc.function([big, small, half], outputs)
    assert f.stats["rules"]["fuse:groups"] == 1 and f.stats["rules"]["fuse:terms"] == 2
    feed = [RNG.standard_normal(n), RNG.standard_normal(n - 1),
            RNG.standard_normal(n).astype("float32")]
    for got, want in zip(f(*feed), g.run(outputs, dict(zip([big, small, half], feed)))):
        assert same_bits(got, want)


def test_what_is_never_fused(small_blocks):
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    n = g.placeholder("n", (None,))
    i = g.placeholder("i", (10,), "int64")
    user = gc.define_op("test_fusion_user_sin", infer=lambda a: (a.shape, a.dtype),
                        kernel=np.sin, bprop=None)
    try:
        outputs = [user(x) * 2,                   # a user op's kernel, even a ufunc
                   gc.exp(n) * 2,                 # a size known only at run time
                   (i + 1) * 3,                   # integers
                   gc.sum(x) * 2 + 1,             # 0-d values
                   gc.relu(x) * 2]                # a kernel that is no plain ufunc
        f = gc.function([x, n, i], outputs)
        assert "fuse:groups" not in f.stats["rules"]
        numerics = gc.function([x], gc.exp(x) * 2, check_numerics=True)
        assert "fuse:groups" not in numerics.stats["rules"]
        assert not any(p["pass"] == "fuse" for p in numerics.stats["passes"])
        assert gc.function([x], gc.exp(x) * 2, optimize=False).stats["passes"] == []
    finally:
        from graphc.custom import USER_OPS
        del REGISTRY["test_fusion_user_sin"], USER_OPS["test_fusion_user_sin"]


def test_a_dying_input_buffer_takes_the_result(small_blocks):
    """The fused term writes into a dying input of its shape (the planner's out= reuse)."""
    g = gc.Graph()
    A = g.placeholder("A", (8, 5))
    B = g.placeholder("B", (5, 6))
    y = gc.tanh(A @ B) * 2 + 1
    f = check_agrees([A, B], [y], [RNG.standard_normal((8, 5)), RNG.standard_normal((5, 6))],
                     fused_groups=1)
    assert f.stats["reused_buffers"] == 1
    unfused = gc.function([A, B], y, passes=UNFUSED)
    assert f.stats["planned_peak_bytes"] <= unfused.stats["planned_peak_bytes"]


def test_real_thresholds_fuse_a_large_expression():
    n = fusion.MIN_BYTES // 4 + 5  # blocks of the real size, and a short last one
    g = gc.Graph()
    x = g.placeholder("x", (n,), "float32")
    y = gc.exp(-0.5 * x * x) * gc.sin(3 * x) + gc.log1p(x * x) * gc.tanh(x)
    check_agrees([x], [y], [special((n,), "float32")], fused_groups=1)


# -- errors ---------------------------------------------------------------------------------------
def test_a_failure_inside_a_group_names_the_member_like_the_unfused_program(
        small_blocks, monkeypatch):
    """The first block fails, the kernel re-runs the members on whole arrays, and the member
    that fails is named, with its inputs, as in the unfused program."""
    def fails_on_big(v):
        if abs(v) > 100:
            raise ValueError("argument too large for this test's sin")
        return np.sin(v)

    # A ufunc that raises for some elements (np.frompyfunc makes a real np.ufunc).
    monkeypatch.setitem(REGISTRY, "sin", dataclasses.replace(
        REGISTRY["sin"], kernel=np.frompyfunc(fails_on_big, 1, 1)))
    g = gc.Graph()
    x = g.placeholder("x", (12,))
    s = gc.sin(x * 2, name="the_sin")
    y = gc.exp(s) + 1
    fused = gc.function([x], y)
    assert fused.stats["rules"]["fuse:groups"] == 1
    X = np.linspace(-1, 1, 12)
    X[9] = 1e3
    messages = []
    runs = [gc.function([x], y, **b) for b in BACKENDS] + [
        gc.function([x], y, passes=UNFUSED), lambda X: g.run(y, {x: X})]
    for run in runs:
        with pytest.raises(gc.GraphcError) as info:
            run(X)
        messages.append(str(info.value))
    # the compiled programs fail alike (with out=, a cast error); g.run calls without out=
    assert len(set(messages[:-1])) == 1
    site = messages[-1].split(" failed at run time")[0]
    assert site.startswith("sin node 'the_sin' (built at ") and "test_fusion.py" in site
    assert messages[0].startswith(site + " failed at run time")


FUSABLE = sorted(name for name, op in REGISTRY.items()
                 if op.inplace and op.elementwise and isinstance(op.kernel, np.ufunc)
                 and not op.checked)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", FUSABLE)
def test_every_fusable_op_agrees_bitwise_in_short_blocks(small_blocks, name, dtype):
    """Each op whose kernel is a ufunc, on special values, in blocks of 7 (float64) or 14
    (float32) elements at every alignment: the values of whole-array calls, bit for bit."""
    op = REGISTRY[name]
    g = gc.Graph()
    xs = [g.placeholder(f"x{i}", (61,), dtype) for i in range(op.arity[0])]
    y = gc.graph.apply(name, xs)
    if y.dtype.kind not in "fb":
        pytest.skip(f"{name} gives {y.dtype}")
    z = gc.logical_not(y) if y.dtype == bool else y * 2.5
    feed = [special((61,), dtype) for _ in xs]
    check_agrees(xs, [z], feed, fused_groups=1)


def test_concurrent_calls_keep_their_own_block_buffers(small_blocks):
    """Calls from several threads at once: each call takes its own block buffers."""
    import threading

    g = gc.Graph()
    x = g.placeholder("x", (701,))
    y = gc.tanh(gc.sin(x) * 2 + x) * x
    f = gc.function([x], y)
    assert f.stats["rules"]["fuse:groups"] == 1
    values = [special((701,), "float64") for _ in range(4)]
    wants = [g.run(y, {x: v}) for v in values]
    bad = []

    def work(k):
        for _ in range(5):
            if not same_bits(f(values[k]), wants[k]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


@pytest.mark.parametrize("rows", [701, None], ids=["fixed", "specialised"])
def test_kept_block_buffers_are_counted_and_released(small_blocks, monkeypatch, rows):
    """A group keeps its block buffers between calls: stats["kept_bytes"] counts them (with
    the arenas'), release_buffers drops them, the next call makes them again."""
    from graphc.compiler import arena
    monkeypatch.setattr(arena, "MAX_BYTES", 0)  # no arenas: only the groups keep buffers
    g = gc.Graph()
    x, v = g.placeholder("x", (rows,)), g.placeholder("v", (rows,), dtype="float32")
    outs = [gc.tanh(gc.sin(x) * 2 + x) * x, gc.exp(v) * 3.0 - v]
    f = gc.function([x, v], outs)
    assert f.stats["kept_bytes"] == 0  # nothing made before the first call
    X, V = special((701,), "float64"), special((701,), "float32")
    want = g.run(outs, {x: X, v: V})
    assert all(same_bits(a, b) for a, b in zip(f(X, V), want))
    assert len(f._groups()) == 2  # (a specialisation's fusion is not in stats["rules"])
    # one set of block buffers per group: 56 bytes each (7 float64 or 14 float32 elements)
    kept = f.stats["kept_bytes"]
    assert kept > 0 and kept % 56 == 0
    assert f.release_buffers() == kept and f.stats["kept_bytes"] == 0
    assert all(same_bits(a, b) for a, b in zip(f(X, V), want))
    assert f.stats["kept_bytes"] == kept


def test_an_input_viewing_the_lent_buffer_is_not_overwritten(small_blocks):
    """A dying input lends its buffer to the result while another input, a view of the same
    buffer, is still read by later blocks: the blocks must not write into it."""
    g = gc.Graph()
    M = g.placeholder("M", (8, 5))
    N = g.placeholder("N", (5, 6))
    A = M @ N
    y = gc.exp(A) * A[0:1] + A
    feed = [RNG.standard_normal((8, 5)), RNG.standard_normal((5, 6))]  # finite: A[0] matters
    f = check_agrees([M, N], [y], feed, fused_groups=1)
    assert f.stats["reused_buffers"] == 1  # the planner lends A's buffer to the fused term


def test_the_upcast_report_names_fused_members(small_blocks):
    g = gc.Graph()
    x = g.placeholder("x", (30,), "float32")
    wide = gc.sin(x) * g.constant(np.array(2.0))  # a strong float64 constant widens
    y = gc.exp(wide) + 1
    fused = gc.function([x], y)
    assert fused.stats["rules"]["fuse:groups"] == 1
    unfused = gc.function([x], y, passes=UNFUSED)
    assert fused.stats["upcasts"] == unfused.stats["upcasts"] != []
    assert fused.stats["upcasts"][0]["node"] == wide.name


def test_batch_sizes_known_at_the_call_are_fused_in_the_specialisation(small_blocks):
    """A None batch size is not fused at compile time; the program planned for the call's
    shapes is (the same values, bit for bit)."""
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    w = g.placeholder("w", (3,))
    y = gc.tanh(x * w) * 2 + x
    f = gc.function([x, w], y)
    assert "fuse:groups" not in f.stats["rules"]
    X, W = special((20, 3), "float64"), special((3,), "float64")
    assert same_bits(f(X, W), g.run(y, {x: X, w: W}))
    assert "fused elementwise" in f.source
    assert same_bits(gc.function([x, w], y, passes=UNFUSED)(X, W), f(X, W))
