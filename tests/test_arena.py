"""Arenas: a compiled program's temporary buffers kept across calls (graphc/compiler/arena.py).

Each test runs on both back ends (generated source and the instruction list): values bit for
bit g.run's, results that never change at a later call, no arena shared by two running calls
(threads, a kernel calling its own function), the arena back in its pool after an error, and
the memory bounds."""
import itertools
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc.compiler import arena, fusion
from graphc.compiler.arena import layout
from test_agreement import programs
from test_custom_ops import fresh_ops  # noqa: F401  (a fixture: the hook ops are removed)
from test_io_json import same_bits

BACKENDS = ["source", "vm"]
RNG = np.random.default_rng(7)
_NAMES = itertools.count()


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    """Places for buffers of any size (the default leaves those under 4 KiB out), so that
    small programs exercise arenas."""
    monkeypatch.setattr(arena, "SMALLEST", 0)


def places(f) -> list:
    """Every array of every arena the function keeps (idle ones: what the next call uses)."""
    return [a for kept in f._arenas() for held in kept.pool for a in held]


ARMED = threading.local()  # hooks act only in calls of the test (not when nodes are built)


def hook_op(kernel_hook):
    """A user op ``y = x * 1`` whose kernel first calls ``kernel_hook(x)`` (a barrier, a
    reentrant call, a failure), between the writes and the reads of arena buffers."""
    def kernel(x):
        if getattr(ARMED, "on", False):
            kernel_hook(x)
        return x * 1.0
    return gc.define_op(f"arena_hook_{next(_NAMES)}", infer=lambda x: (x.shape, x.dtype),
                        kernel=kernel)


def armed(fn):
    """``fn`` run with the hooks acting (in the calling thread)."""
    def run(*args):
        ARMED.on = True
        try:
            return fn(*args)
        finally:
            ARMED.on = False
    return run


def hooked_program(hook, n=64):
    """``t = exp(x)`` lives in an arena place across the hook; the output reads it after."""
    g = gc.Graph()
    x = g.placeholder("x", (n, n))
    t = gc.exp(x) * 0.5  # a temporary in the arena (exp's buffer, the mul in place)
    s = t @ t  # another one, written before the hook and read after it
    out = gc.sum(t * hook_op(hook)(x), axis=1) + gc.sum(s, axis=0)
    return g, x, out


def expected(x):
    t = np.exp(x) * 0.5
    return np.add.reduce(t * (x * 1.0), axis=1) + np.add.reduce(t @ t, axis=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_mlp_step_keeps_its_temporaries_and_returns_g_runs_bits(backend):
    g = gc.Graph()
    x = g.placeholder("x", (32, 20))
    y = g.placeholder("y", (32,), "int64")
    W1 = g.variable("W1", RNG.standard_normal((20, 16)))
    W2 = g.variable("W2", RNG.standard_normal((16, 4)))
    h = gc.relu(x @ W1)
    loss = gc.mean(gc.softmax_cross_entropy(h @ W2, y)) + 1e-4 * gc.sum(W1 * W1)
    outs = [loss] + gc.gradients(loss, [W1, W2])
    f = gc.function([x, y], outs, backend=backend)
    assert f.stats["arena_bytes"] > 0 and f.stats["kept_bytes"] == 0  # made at the first call
    for _ in range(3):
        X, Y = RNG.standard_normal((32, 20)), RNG.integers(0, 4, 32)
        got = f(X, Y)
        assert all(same_bits(a, b) for a, b in zip(got, g.run(outs, {x: X, y: Y})))
        assert f.stats["kept_bytes"] == f.stats["arena_bytes"]  # one arena, back in the pool
    assert ("out=_a[" in f.source) if backend == "source" else ("out=arena[" in f.source)


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_never_change_at_the_next_call(backend):
    """Outputs, outputs that view a temporary (reshape, transpose, a slice), updates: none
    lives in an arena, so call 1's results are unchanged by call 2 with other inputs."""
    g = gc.Graph()
    x = g.placeholder("x", (6, 8))
    W = g.variable("W", np.ones((8, 8)))
    t = gc.tanh(x @ W) * 2.0  # temporaries: matmul, tanh, mul in place
    u = gc.exp(t) + 1.0
    outs = [gc.sum(u), gc.reshape(u, (48,)), gc.transpose(t * 3.0), (u * u)[1:4],
            gc.expand_dims(t - 1.0, 0), t @ W]
    f = gc.function([x], outs, updates={W: W - 0.01 * (gc.transpose(x) @ t)}, backend=backend)
    X1, X2 = RNG.standard_normal((6, 8)), RNG.standard_normal((6, 8))
    want1 = g.run(outs, {x: X1})
    first = f(X1)
    stored = W.value
    kept = [np.array(a) for a in first]
    stored_copy = stored.copy()
    want2 = g.run(outs, {x: X2})
    second = f(X2)
    assert all(same_bits(a, b) for a, b in zip(first, kept))  # unchanged by call 2
    assert all(same_bits(a, b) for a, b in zip(first, want1))
    assert all(same_bits(a, b) for a, b in zip(second, want2))
    assert same_bits(stored, stored_copy)  # call 1's update value: not overwritten either
    assert f.stats["arena_bytes"] > 0
    for out in list(first) + list(second) + [stored, W.value]:
        assert not any(np.shares_memory(out, place) for place in places(f))


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_threads_at_once_never_share_an_arena(backend, fresh_ops):
    barrier = threading.Barrier(2, timeout=20)
    g, x, out = hooked_program(lambda _: barrier.wait())
    f = gc.function([x], out, backend=backend)
    f(np.zeros((64, 64)))  # (one arena made, idle)
    inputs = [RNG.standard_normal((64, 64)) for _ in range(2)]
    results: dict = {}

    def call(k):
        results[k] = armed(f)(inputs[k])  # both write t, meet at the barrier, read t

    threads = [threading.Thread(target=call, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert same_bits(results[k], g.run(out, {x: inputs[k]}))
        np.testing.assert_allclose(results[k], expected(inputs[k]), rtol=1e-12)
    assert f.stats["kept_bytes"] == 2 * f.stats["arena_bytes"]  # both back, KEEP = 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_kernel_calling_its_own_function_gets_another_arena(backend, fresh_ops):
    inner: list = []
    holder: dict = {}

    def reenter(x):
        if not holder.get("entered"):  # once: the function itself, inside its own call
            holder["entered"] = True
            inner.append(holder["f"](-x))
    g, x, out = hooked_program(reenter)
    f = holder["f"] = gc.function([x], out, backend=backend)
    X = RNG.standard_normal((64, 64))
    got = armed(f)(X)
    assert same_bits(got, g.run(out, {x: X}))
    assert same_bits(inner[0], g.run(out, {x: -X}))
    assert f.stats["kept_bytes"] == 2 * f.stats["arena_bytes"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_error_in_the_middle_gives_the_arena_back(backend, fresh_ops):
    def fail_on_negative(x):
        if x[0, 0] < 0:
            raise ValueError("negative corner")
    g, x, out = hooked_program(fail_on_negative, n=16)
    f = gc.function([x], out, backend=backend)
    X = np.abs(RNG.standard_normal((16, 16)))
    f(X)
    for _ in range(3):
        with pytest.raises(gc.GraphcError, match="negative corner") as info:
            armed(f)(-X)
        assert "arena_hook" in str(info.value)  # names the op that failed
        assert f.stats["kept_bytes"] == f.stats["arena_bytes"]  # back, not leaked or doubled
    assert same_bits(f(X), g.run(out, {x: X}))


@pytest.mark.parametrize("backend", BACKENDS)
def test_arenas_are_bounded_and_can_be_released(backend, monkeypatch):
    monkeypatch.setattr(arena, "MAX_BYTES", 100_000)
    g = gc.Graph()
    x = g.placeholder("x", (200, 200))  # 320 kB temporaries: beyond the bound
    v = g.placeholder("v", (100,))  # 800-byte ones: kept
    out = [gc.sum(gc.exp(x) + gc.sin(x)), gc.sum(gc.exp(v) + gc.sin(v))]  # (no dot: g.run's bits)
    f = gc.function([x, v], out, backend=backend)
    X, V = RNG.standard_normal((200, 200)), RNG.standard_normal(100)
    got = f(X, V)
    assert all(same_bits(a, b) for a, b in zip(got, g.run(out, {x: X, v: V})))
    assert 0 < f.stats["arena_bytes"] <= 100_000
    assert {p.shape for p in places(f)} == {(100,)}  # only the small buffers have places
    assert f.release_buffers() == f.stats["arena_bytes"]
    assert f.stats["kept_bytes"] == 0
    assert all(same_bits(a, b) for a, b in zip(f(X, V), got))  # a new arena, same values


def test_arenas_can_be_turned_off_and_the_planned_peak_does_not_change(monkeypatch):
    g = gc.Graph()
    x = g.placeholder("x", (50, 50))
    out = gc.sum(gc.tanh(x @ x) * gc.exp(x), axis=0)
    on = gc.function([x], out)
    monkeypatch.setattr(arena, "MAX_BYTES", 0)
    off = gc.function([x], out)
    X = RNG.standard_normal((50, 50))
    assert same_bits(on(X), off(X))
    assert on.stats["arena_bytes"] > 0 and off.stats["arena_bytes"] == 0
    assert off.stats["kept_bytes"] == 0 and "_a[" not in off.source
    assert on.stats["planned_peak_bytes"] == off.stats["planned_peak_bytes"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_shape_specialisation_has_its_own_arena(backend):
    g = gc.Graph()
    x = g.placeholder("x", (None, 10))
    W = g.variable("W", RNG.standard_normal((10, 10)))
    loss = gc.sum(gc.relu(x @ W) ** 2)
    outs = [loss, gc.grad(loss, W)]
    f = gc.function([x], outs, backend=backend)
    sizes = {}
    for n in (4, 9, 4):
        X = RNG.standard_normal((n, 10))
        got = f(X)
        assert all(same_bits(a, b) for a, b in zip(got, g.run(outs, {x: X})))
        sizes[n] = f.stats["arena_bytes"]
    assert 0 < sizes[4] < sizes[9]
    assert f.stats["kept_bytes"] == sizes[4] + sizes[9]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sums_and_matmuls_written_into_places_are_g_runs_bits(backend, dtype, keepdims):
    g = gc.Graph()
    a = g.placeholder("a", (33, 17), dtype)
    b = g.placeholder("b", (17, 33), dtype)
    p = gc.sin(a @ b)  # matmul into a place, sin in place
    s = gc.sum(p, axis=0, keepdims=keepdims)  # into a place: read again below
    out = gc.sum(s * gc.sum(p, axis=1, keepdims=keepdims).reshape(-1)[0], axis=-1)
    f = gc.function([a, b], out, backend=backend)
    A, B = RNG.standard_normal((33, 17)).astype(dtype), RNG.standard_normal((17, 33)).astype(dtype)
    f(A, B)
    assert same_bits(f(A, B), g.run(out, {a: A, b: B}))
    kept = {(place.shape, place.dtype) for place in places(f)}
    assert ((33, 33), np.dtype(dtype)) in kept  # the matmul's
    assert (((1, 33) if keepdims else (33,)), np.dtype(dtype)) in kept  # the sum's


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_groups_keep_their_values_next_to_arena_buffers(backend, monkeypatch):
    monkeypatch.setattr(fusion, "MIN_BYTES", 1)
    g = gc.Graph()
    x = g.placeholder("x", (300, 40))
    t = gc.exp(gc.sin(x) * 2.0 + 1.0)  # a fused group, read twice below
    out = [gc.sum(t @ gc.transpose(t)), gc.sum(t * t, axis=0)]
    f = gc.function([x], out, backend=backend)
    assert f.stats["rules"].get("fuse:groups", 0) >= 1 and f.stats["arena_bytes"] > 0
    for _ in range(2):
        X = RNG.standard_normal((300, 40))
        assert all(same_bits(a, b) for a, b in zip(f(X), g.run(out, {x: X})))


def test_layout_never_overlaps_buffers_alive_at_once():
    """Places of buffers whose lives meet are disjoint and aligned; the arena is no larger
    than the plan's peak (a chain that frees as it goes shares bytes)."""
    g = gc.Graph()
    x = g.placeholder("x", (64, 64))
    h, keep = x, []
    for k in range(12):
        h = gc.tanh(h @ x) + float(k)
        if k % 4 == 0:
            keep.append(gc.exp(h))  # lives long
    out = gc.sum(h) + sum(gc.sum(u) for u in keep)
    f = gc.function([x], [out, gc.grad(out, x)])
    plan = f._plans[0]
    found, nbytes = layout(plan)
    walk = plan.walk
    position = {i: pos for pos, i in enumerate(walk.order)}
    lives = [(position[i], walk.released[i], offset, offset + plan.numbered.size[i])
             for i, offset in found]
    assert len(lives) > 5
    for (s1, e1, lo1, hi1), (s2, e2, lo2, hi2) in itertools.combinations(lives, 2):
        if s1 <= e2 and s2 <= e1:  # alive at one step
            assert hi1 <= lo2 or hi2 <= lo1
    assert all(lo % arena.ALIGN == 0 for _, _, lo, _ in lives)
    assert nbytes <= plan.peak_bytes
    X = RNG.standard_normal((64, 64)) * 0.1
    f(X)
    assert all(same_bits(a, b) for a, b in zip(f(X), g.run([out, gc.grad(out, x)], {x: X})))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(programs())
def test_random_programs_twice_on_both_back_ends(program):
    """Random programs (test_agreement's) called with two feeds on both back ends: each
    call is g.run's bit for bit, and the first call's results survive the second."""
    inputs, outputs, feed = program
    g = inputs[0].graph
    other = {x: (v[::-1] * 0.5 if v.ndim else v * 0.5).astype(v.dtype) for x, v in feed.items()}
    fortran = {x: np.asfortranarray(v * 0.25) for x, v in feed.items()}  # (see LAYOUT_CASES)
    try:
        want = [g.run(outputs, feed), g.run(outputs, other), g.run(outputs, fortran)]
    except gc.GraphcError:
        return  # (errors agree: test_agreement)
    for backend in BACKENDS:
        f = gc.function(inputs, outputs, backend=backend)
        first = f(*[feed[x] for x in inputs])
        kept = [np.array(a) for a in first]
        second = f(*[other[x] for x in inputs])
        for a, b, c, d in zip(first, kept, want[0], want[1]):
            assert same_bits(a, b) and same_bits(a, c), (a, b, c, f.source)
        assert all(same_bits(a, b) for a, b in zip(second, want[1])), f.source
        third = f(*[fortran[x] for x in inputs])
        assert all(same_bits(a, b) for a, b in zip(third, want[2])), f.source


@pytest.mark.parametrize("backend", BACKENDS)
def test_what_a_users_kernel_is_given_stays_its_own(backend, fresh_ops):
    """A user's kernel may keep the arrays it is given (a probe recording activations): no
    buffer it reads, directly or through a view, lives in an arena."""
    seen: list = []
    probe = gc.define_op(f"arena_probe_{next(_NAMES)}", infer=lambda x: (x.shape, x.dtype),
                         kernel=lambda x: (seen.append(x), x * 1.0)[1])
    g = gc.Graph()
    x = g.placeholder("x", (8, 8))
    t = gc.exp(x) * 2.0
    u = gc.tanh(x) + 1.0
    out = gc.sum(probe(t) + probe(gc.transpose(u)) + t @ u)
    f = gc.function([x], out, backend=backend)
    X1, X2 = RNG.standard_normal((8, 8)), RNG.standard_normal((8, 8))
    seen.clear()
    f(X1)
    first = [np.array(a) for a in seen[:2]]
    f(X2)
    assert all(same_bits(a, b) for a, b in zip(seen[:2], first))  # unchanged by call 2
    assert same_bits(first[0], np.exp(X1) * 2.0) and same_bits(first[1], (np.tanh(X1) + 1.0).T)


def test_small_buffers_get_no_place_by_default(monkeypatch):
    monkeypatch.setattr(arena, "SMALLEST", 4096)
    g = gc.Graph()
    v = g.placeholder("v", (100,))  # 800-byte temporaries
    x = g.placeholder("x", (40, 40))  # 12.8 kB ones
    small, large = [gc.sum(gc.exp(u) * gc.sin(u)) for u in (v, x)]
    assert gc.function([v], small).stats["arena_bytes"] == 0
    f = gc.function([x], large)
    assert f.stats["arena_bytes"] >= 40 * 40 * 8


# -- layouts: out= only where NumPy's own result is C-ordered (arena.layout_checks) -----------
# NumPy allocates a result in its operands' order ('K'): an F-ordered or transposed value
# gives an F-ordered result, and a later reduction adds in another order. Every case below
# gave other bits than g.run when a C-ordered place or a dying F-ordered buffer was written.

def _transposed_times_column():
    g = gc.Graph()
    B, d = g.placeholder("B", (100, 64)), g.placeholder("d", (100,))
    outs = [gc.sum(gc.transpose(gc.tanh(B) * 1.5) * d, axis=1)]
    return g, [B, d], outs, [RNG.standard_normal((100, 64)), RNG.standard_normal(100)]


def _f_ordered_then_reduced():
    g = gc.Graph()
    x = g.placeholder("x", (100, 64))
    y = x * 2.0
    outs = [gc.sum(y, axis=1) + 0.0, gc.softmax(y) * 1.0, gc.logsumexp(y, axis=-1) + 0.0,
            gc.transpose(y) @ y + 0.0, gc.mean(gc.exp(y), axis=0)]
    return g, [x], outs, [np.asfortranarray(RNG.standard_normal((100, 64)))]


def _sums_of_an_f_ordered_cube():
    g = gc.Graph()
    x = g.placeholder("x", (32, 64, 32))
    s, s2 = gc.sum(x, axis=1), gc.sum(x, axis=(0, 2), keepdims=True)
    outs = [gc.sum(s, axis=0), gc.sum(s2 * s2, axis=1), gc.sum(gc.sin(x) * 2.0, axis=2)]
    return g, [x], outs, [np.asfortranarray(RNG.standard_normal((32, 64, 32)))]


def _transposed_matmul_result():
    g = gc.Graph()
    x = g.placeholder("x", (100, 64))
    W = g.variable("W", RNG.standard_normal((64, 64)))
    z = gc.transpose(gc.tanh(x @ W)) * 2.0
    outs = [gc.sum(z, axis=1), gc.sum(gc.exp(z), axis=0)]
    return g, [x], outs, [RNG.standard_normal((100, 64))]


def _f_ordered_donor_and_c_ordered_operand():
    """``tanh(x) * 2`` is F-ordered like x and dies at ``+ x @ W`` (C-ordered): NumPy's sum
    is C-ordered, the dying buffer F-ordered."""
    g = gc.Graph()
    x, W = g.placeholder("x", (100, 64)), g.placeholder("W", (64, 64))
    outs = [gc.sum(gc.tanh(x) * 2.0 + x @ W, axis=1),
            gc.sum(gc.where(x > 0.0, gc.exp(x), 0.0) * gc.cos(x @ W), axis=1)]
    return g, [x, W], outs, [np.asfortranarray(RNG.standard_normal((100, 64))),
                             RNG.standard_normal((64, 64))]


def _identity_times_f_ordered():
    """``I @ x`` skips the product (x is finite): its copy is C-ordered like np.matmul's."""
    g = gc.Graph()
    x = g.placeholder("x", (64, 64))
    outs = [gc.sum(gc.matmul(g.constant(np.eye(64)), x * 3.0), axis=1)]
    return g, [x], outs, [np.asfortranarray(RNG.standard_normal((64, 64)))]


LAYOUT_CASES = [_transposed_times_column, _f_ordered_then_reduced, _sums_of_an_f_ordered_cube,
                _transposed_matmul_result, _f_ordered_donor_and_c_ordered_operand,
                _identity_times_f_ordered]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("max_bytes", [arena.MAX_BYTES, 0], ids=["arenas", "no-arenas"])
@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda case: case.__name__.strip("_"))
def test_f_ordered_and_transposed_values_before_reductions_are_g_runs_bits(
        case, max_bytes, backend, monkeypatch):
    monkeypatch.setattr(arena, "MAX_BYTES", max_bytes)
    g, inputs, outs, feeds = case()
    f = gc.function(inputs, outs, backend=backend)
    if max_bytes:
        assert f.stats["arena_bytes"] > 0
    for layout_of in (np.asarray, np.ascontiguousarray, np.asfortranarray):  # and C, and F
        values = [layout_of(v) for v in feeds]
        want = g.run(outs, dict(zip(inputs, values)))
        for _ in range(2):  # (an arena made, then one kept)
            got = f(*values)
            assert all(same_bits(a, b) for a, b in zip(got, want)), layout_of
            # the same layouts too: what a caller reduces next adds in g.run's order
            assert [a.flags.c_contiguous for a in got] == [b.flags.c_contiguous for b in want]


@pytest.mark.parametrize("backend", BACKENDS)
def test_c_ordered_feeds_keep_their_places_and_proven_terms_are_not_checked(backend):
    """With C-ordered arguments, every place is written (a check passes); matmul results and
    what is computed from them alone need no check (they are C-ordered at every call)."""
    g = gc.Graph()
    x = g.placeholder("x", (64, 64))
    W = g.constant(RNG.standard_normal((64, 64)))
    h = gc.tanh(x @ W) * 2.0  # proven: from a matmul and a C-ordered constant
    out = gc.sum(h * gc.exp(x), axis=0)  # reads x: checked at run time
    f = gc.function([x], out, backend=backend)
    checks = f._plans[0].layout_checks
    terms = {t.op: t for t in f._plans[0].order}
    assert checks[id(terms["matmul"])] == () and checks[id(terms["tanh"])] == ()
    assert any(checks.values())  # exp(x) or the product reading it
    X = RNG.standard_normal((64, 64))
    f(X)
    before = [p.copy() for p in places(f)]
    assert same_bits(f(X * 0.5), g.run(out, {x: X * 0.5}))
    assert any(not np.array_equal(a, b) for a, b in zip(before, places(f)))  # written again


@pytest.mark.parametrize("backend", BACKENDS)
def test_trusted_lists_take_the_plain_call_where_the_layout_is_checked(backend, monkeypatch):
    """trust_input lets a list reach a term whose out= call checks its input's C order: the
    list is no ndarray, so the term is computed as g.run does (also in a fused group)."""
    g = gc.Graph()
    x, y = g.placeholder("x", (2, 3)), g.placeholder("y", (2, 3))
    outs = [gc.sum(gc.exp(x) * 2.0, axis=1), gc.tanh(y) * 3.0 + gc.exp(y)]
    X, Y = [[1.0, -2.0, 0.5], [-0.0, 3.0, 4.0]], [[0.25, -1.0, 2.0], [5.0, -0.0, 1.5]]
    want = g.run(outs, {x: np.array(X), y: np.array(Y)})
    for fused in (False, True):
        if fused:
            monkeypatch.setattr(fusion, "MIN_BYTES", 1)
            monkeypatch.setattr(fusion, "BLOCK_BYTES", 56)
        f = gc.function([x, y], outs, backend=backend, trust_input=True)
        assert f.stats["rules"].get("fuse:groups", 0) == (2 if fused else 0)
        for _ in range(2):
            for a, b in zip(f(X, Y), want):
                assert same_bits(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_functions_specialisations_share_one_bound(backend, monkeypatch):
    """Each shape specialisation lays out its arena within what those before it left: a
    function keeps at most KEEP * MAX_BYTES, however many shapes it meets."""
    monkeypatch.setattr(arena, "MAX_BYTES", 60_000)
    g = gc.Graph()
    x = g.placeholder("x", (None, 50))
    out = gc.sum(gc.exp(x) * gc.sin(x) + gc.cos(x), axis=0)
    f = gc.function([x], out, backend=backend)
    sizes = []
    for n in (40, 60, 50, 30, 70, 45):  # 16-28 kB buffers: 2-3 places each program
        X = RNG.standard_normal((n, 50))
        assert same_bits(f(X), g.run(out, {x: X}))
        assert same_bits(f(X), g.run(out, {x: X}))  # (a kept arena)
        sizes.append(f.stats["arena_bytes"])
        assert f.stats["kept_bytes"] <= arena.KEEP * arena.MAX_BYTES
    assert sizes[0] > 0 and 0 in sizes  # the first programs took the budget, later ones none
    assert f.stats["specializations"] == 6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("passes", [(), None], ids=["no-passes", "default-passes"])
def test_a_dense_hessian_is_g_runs_bits(backend, passes):
    """The Jacobian's seed I @ x skips the product; its copy of a transposed x was F-ordered
    (np.array keeps the order) where np.matmul's is C, and the reduction after it gave other
    bits (3.6e-15 at n = 10)."""
    rng = np.random.default_rng(0)
    g = gc.Graph()
    x = g.placeholder("x", (10,))
    A = g.variable("A", rng.standard_normal((10, 10)))
    H = gc.hessian(gc.sum(gc.tanh(A @ x)) ** 2 + gc.sum(x * x) / 2, x)
    options = {} if passes is None else {"passes": passes}
    f = gc.function([x], [H], backend=backend, **options)
    X = rng.standard_normal(10)
    assert same_bits(f(X)[0], g.run([H], {x: X})[0])
