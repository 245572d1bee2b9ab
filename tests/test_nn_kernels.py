"""The softmax family's and one_hot's kernels (graphc/ops/nn.py) against the row-wise NumPy
formulas they replace, bit for bit: along a short last axis they take the max over the columns
of a transposed copy (from 32 rows) or run wholly in columns (from 256 rows, ``_shifted``), and
the column sum adds in the order of NumPy's own pairwise sum along a row, so nothing may
change but the speed. Many shapes (short and long last axes,
1-d, 3-d, empty), both float dtypes, and the extremes (rows of -inf, +inf, NaN, huge logits,
float32's overflow range, -0.0), then g.run against gc.function on both back ends."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops import nn
from graphc.ops.registry import REGISTRY
from test_io_json import same_bits

SHAPES = [(128, 10), (40, 2), (16, 7), (16, 8), (16, 9), (24, 16), (24, 17), (9, 32), (9, 33),
          (128, 1000), (2000, 10), (10,), (1,), (4, 16, 10), (3, 5, 33), (0, 10),
          (5, 1), (2, 10), (7, 10), (300, 9), (256, 17), (260, 24), (512, 32),
          (256, 3), (64, 20), (100, 32), (256, 16), (33, 12)]
DTYPES = [np.float32, np.float64]


def _logits(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 2, shape)).astype(dtype)
    if x.ndim == 2 and x.shape[0] >= 8 and x.shape[1] >= 2:  # extreme rows
        big = np.finfo(dtype).max
        x[0] = -np.inf
        x[1, 0] = np.inf
        x[2, 1] = np.nan
        x[3] = 1e4 * np.sign(x[3])
        x[4, :2] = [big, -big]
        x[5] = -0.0
        x[6, 0], x[6, 1:] = 0.0, -np.inf
        x[7, ::2] = -np.inf
    return x


# -- the row-wise formulas (the kernels before the column layout) -------------------------------
def _row_max(x, axis):
    m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(m), m, 0)


def _row_softmax(x, axis):
    e = np.exp(x - _row_max(x, axis))
    return e / np.add.reduce(e, axis=axis, keepdims=True)


def _row_log_softmax(x, axis):
    z = x - _row_max(x, axis)
    return z - np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True))


def _row_logsumexp(x, axis, keepdims):
    m = _row_max(x, axis)
    out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _row_lse_z(x):
    z = x - _row_max(x, -1)
    return np.log(np.add.reduce(np.exp(z), axis=-1)), z


def _row_cross_entropy(x, labels):
    lse, z = _row_lse_z(x)
    if labels.dtype.kind in "iu":
        return lse - np.take_along_axis(z, labels[..., None], -1)[..., 0]
    return np.add.reduce(labels * (lse[..., None] - z), axis=-1)


def _run(name, *args, **attrs):
    with np.errstate(all="ignore"):
        return REGISTRY[name].kernel(*args, **attrs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sum_adds_in_numpys_row_order(dtype):
    rng = np.random.default_rng(1)
    for k in range(2, 129):
        x = (rng.standard_normal((13, k)) * 10.0 ** rng.uniform(-6, 6, (13, k))).astype(dtype)
        x[0], x[1, ::2], x[2, 0], x[3, :2] = -0.0, -0.0, np.nan, [np.inf, -np.inf]
        with np.errstate(invalid="ignore"):
            assert same_bits(nn._column_sum(np.ascontiguousarray(x.T)),
                             np.add.reduce(x, axis=-1)), k


_FORMULAS = [("softmax", {"axis": (-1,)}, lambda x: _row_softmax(x, -1)),
             ("log_softmax", {"axis": (-1,)}, lambda x: _row_log_softmax(x, -1)),
             ("logsumexp", {"axis": (-1,), "keepdims": False},
              lambda x: _row_logsumexp(x, -1, False)),
             ("logsumexp", {"axis": (-1,), "keepdims": True},
              lambda x: _row_logsumexp(x, -1, True))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax_family_bits_equal_the_row_formulas(shape, dtype):
    x = _logits(shape, dtype)
    before = x.copy()
    with np.errstate(all="ignore"):
        for name, attrs, formula in _FORMULAS:
            assert same_bits(_run(name, x, **attrs), formula(x)), name
    assert same_bits(x, before)  # the input is left alone


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if len(s) > 1 or s[0]], ids=str)
def test_cross_entropy_bits_equal_the_row_formulas(shape, dtype):
    x = _logits(shape, dtype)
    rng = np.random.default_rng(2)
    for labels in (rng.integers(0, shape[-1], shape[:-1]),
                   rng.integers(0, shape[-1], shape[:-1]).astype(np.uint8),
                   rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype),
                   rng.dirichlet(np.ones(shape[-1]), shape[:-1])):  # float64 targets
        before = x.copy(), labels.copy()
        with np.errstate(all="ignore"):
            got = _run("softmax_cross_entropy", x, labels)
            want = _row_cross_entropy(x, labels)
        assert same_bits(got, np.asarray(want).astype(got.dtype)), labels.dtype
        assert same_bits(x, before[0]) and same_bits(labels, before[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_d_results_are_numpy_scalars_as_before(dtype):
    x = np.array(1.5, dtype)
    for got, want in [(_run("softmax", x, axis=()), _row_softmax(x, ())),
                      (_run("log_softmax", x, axis=()), _row_log_softmax(x, ())),
                      (_run("logsumexp", x, axis=(), keepdims=False),
                       _row_logsumexp(x, (), False))]:
        assert type(got) is type(want) and same_bits(got, want)


@np.errstate(all="ignore")
def test_non_contiguous_logits():
    """In columns, the values are the row formulas' on a contiguous copy, whatever the layout
    (an F-ordered array's row sums would otherwise run sequentially: less accurate); below 256
    rows, the row formulas' on the array itself."""
    for shape, copy in (((2000, 10), np.ascontiguousarray), ((128, 10), lambda a: a)):
        x = _logits(shape, np.float32)
        for view in (np.asfortranarray(x), np.repeat(x, 2, axis=1)[:, ::2]):
            for name, attrs, formula in _FORMULAS:
                assert same_bits(_run(name, view, **attrs), formula(copy(view))), name
            labels = np.arange(shape[0]) % shape[1]
            assert same_bits(_run("softmax_cross_entropy", view, labels),
                             _row_cross_entropy(copy(view), labels))
            assert same_bits(view, x)  # the input is left alone


@np.errstate(all="ignore")
def test_other_axes_and_int_logits_keep_the_row_path():
    x = _logits((6, 5, 4), np.float64)
    for axis in [(0,), (-3, -1), (-2,), (0, 1, 2)]:
        assert same_bits(_run("softmax", x, axis=axis), _row_softmax(x, axis))
    ints = np.arange(120).reshape(12, 10) % 7
    assert same_bits(_run("softmax", ints, axis=(-1,)), _row_softmax(ints.astype(float), -1))
    half = _logits((16, 10), np.float16)
    assert same_bits(_run("log_softmax", half, axis=(-1,)), _row_log_softmax(half, -1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 10), (64, 10), (10,), (64, 100)], ids=str)
def test_no_floating_point_flag_the_row_formulas_do_not_raise(shape, dtype):
    """Rows of the largest finite value (their maxima would overflow a sum) and finite logits
    raise nothing under np.errstate(all="raise"), like the row formulas."""
    big = np.full(shape, np.finfo(dtype).max, dtype)
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(_run("softmax", big, axis=(-1,)), dtype(1) / shape[-1])
        np.testing.assert_allclose(_run("log_softmax", big, axis=(-1,)), -np.log(shape[-1]),
                                   rtol=1e-6)
        np.testing.assert_array_equal(_run("logsumexp", big[..., :1], axis=(-1,),
                                           keepdims=False), big[..., 0])
        labels = np.zeros(shape[:-1], np.int64)
        np.testing.assert_allclose(_run("softmax_cross_entropy", big, labels), np.log(shape[-1]),
                                   rtol=1e-6)


def test_cross_entropy_labels_out_of_range():
    x = _logits((20, 10), np.float32)
    for bad, shown in ((10, "10"), (-1, "-1")):
        labels = np.zeros(20, np.int64)
        labels[7] = bad
        with pytest.raises(IndexError, match=f"label {shown} is out of range for 10 classes"):
            _run("softmax_cross_entropy", x, labels)
    with pytest.raises(IndexError, match="label 12 is out of range"):
        _run("softmax_cross_entropy", x, np.full(20, 12, np.uint16))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "bool"])
def test_one_hot_against_the_comparison(dtype):
    rng = np.random.default_rng(3)
    for shape, depth in [((128,), 10), ((4, 5), 3), ((0,), 4), ((), 3), ((6,), 0), ((3,), 1),
                         ((65,), 0), ((300,), 0),  # depth 0 past the comparison's few rows
                         ((70000,), 3)]:  # past the cached row offsets
        indices = rng.integers(-2, depth + 2, shape)
        want = (indices[..., None] == np.arange(depth)).astype(dtype)
        assert same_bits(REGISTRY["one_hot"].kernel(
            indices, depth=depth, dtype=dtype), want)
        assert same_bits(nn._one_hot_array(indices.astype(np.uint64) % (depth + 3), depth, dtype),
                         (indices[..., None].astype(np.uint64) % (depth + 3)
                          == np.arange(depth)).astype(dtype))
        flags = indices % 2 == 0  # bool indices (a kernel called directly) are 0 and 1
        assert same_bits(nn._one_hot_array(flags, depth, dtype),
                         (flags[..., None] == np.arange(depth)).astype(dtype))


def test_one_hot_of_depth_zero_through_a_graph():
    g = gc.Graph()
    i = g.placeholder("i", (None,), "int64")
    out = gc.one_hot(i, 0)
    for rows in (6, 65, 300):
        feed = np.zeros(rows, np.int64)
        for got in (g.run(out, {i: feed}), gc.function([i], out)(feed),
                    gc.function([i], out, backend="vm")(feed)):
            assert got.shape == (rows, 0) and got.dtype == np.float64


def _family_graph(shape, dtype):
    g = gc.Graph()
    x = g.placeholder("x", shape, dtype)
    y = g.placeholder("y", shape[:-1], "int64")
    t = g.placeholder("t", shape, dtype)
    loss = (gc.mean(gc.softmax_cross_entropy(x, y)) + gc.mean(gc.softmax_cross_entropy(x, t))
            + gc.sum(gc.logsumexp(x)) + gc.sum(gc.sum(gc.log_softmax(x) * t, -1)))
    # (summed in two steps: one sum over all axes would be sum_of_products' dot, other bits)
    outs = [loss, gc.softmax(x), nn.one_hot_like(y, x)] + gc.gradients(loss, [x, t])
    return g, [x, y, t], outs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(128, 10), (32, 40), (3, 7, 5)], ids=str)
def test_run_and_function_agree_bit_for_bit(shape, dtype):
    g, (x, y, t), outs = _family_graph(shape, dtype)
    rng = np.random.default_rng(4)
    # finite logits: NaN signs may differ between the paths (graphc/compiler/rules.py)
    feed = {x: (rng.standard_normal(shape) * 5).astype(dtype), y: rng.integers(0, shape[-1], shape[:-1]),
            t: rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype)}
    with np.errstate(all="ignore"):
        want = g.run(outs, feed)
        for backend in ("source", "vm"):
            got = gc.function([x, y, t], outs, backend=backend)(feed[x], feed[y], feed[t])
            assert all(same_bits(a, b) for a, b in zip(got, want)), backend


def test_gradient_matches_the_closed_form():
    x = _logits((64, 10), np.float64)[10:]  # finite rows
    labels = np.random.default_rng(6).integers(0, 10, len(x))
    g = gc.Graph()
    xn = g.placeholder("x", x.shape)
    yn = g.placeholder("y", labels.shape, "int64")
    (dx,) = gc.gradients(gc.sum(gc.softmax_cross_entropy(xn, yn)), [xn])
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(len(x)), labels] -= 1
    np.testing.assert_allclose(gc.function([xn, yn], dx)(x, labels), p, rtol=1e-12, atol=1e-15)


# -- integer labels and indices of every width, at depths around the width's limits -------------
# _in_range takes one max of signed indices read as unsigned: -1 in int8 reads as 255, out of
# range only while depth <= 128. Past that it must test min() >= 0; the old kernels' checks
# (labels.min() < 0 or labels.max() >= classes; one_hot's comparison with arange) are the oracle.
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _limit_depths(dtype) -> list:
    """2^(bits-1) and 2^bits, and their neighbours, for 8 and 16 bits (wider limits are tested on
    _in_range alone: no array has 2^31 classes here)."""
    bits = np.iinfo(dtype).bits
    if bits > 16:
        return [3, 300]
    half = 2 ** (bits - 1)
    return [3, half - 1, half, half + 1, 2 * half - 1, 2 * half, 2 * half + 1]


def _label_sets(dtype, depth, rows, rng) -> list:
    """Labels in range, then with one bad label each: -1, the dtype's min, depth, its max."""
    info = np.iinfo(dtype)
    top = min(depth - 1, info.max)
    good = rng.integers(0, top + 1, rows).astype(dtype)
    good[-1] = top
    sets = [good]
    for bad in (-1, info.min, depth, info.max):
        if info.min <= bad <= info.max:
            labels = good.copy()
            labels[rows // 2] = bad
            sets.append(labels)
    return sets


def _old_cross_entropy(x, labels):
    classes = x.shape[-1]
    if labels.max() >= classes or (labels.dtype.kind == "i" and labels.min() < 0):
        bad = labels[(labels < 0) | (labels >= classes)].flat[0]
        return f"label {bad} is out of range for {classes} classes"
    return _row_cross_entropy(x, labels.astype(np.intp))


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_labels_and_indices_of_every_width_around_its_limits(dtype):
    rng = np.random.default_rng(7)
    for depth in _limit_depths(dtype):
        g = gc.Graph()
        i = g.placeholder("i", (None,), np.dtype(dtype).name)
        x = g.placeholder("x", (None, depth))
        hot = [gc.one_hot(i, depth, "float32"), nn.one_hot_like(i, x)]
        loss = gc.softmax_cross_entropy(x, i)
        paths = [lambda outs, feed: g.run(outs, feed)] + [
            lambda outs, feed, b=b: gc.function([i, x], outs, backend=b)(feed[i], feed[x])
            for b in ("source", "vm")]
        for rows in (3, 70, 300) if depth <= 32 else (3, 9):  # comparison, flat, columns
            logits = rng.standard_normal((rows, depth))
            for labels in _label_sets(dtype, depth, rows, rng):
                feed = {i: labels, x: logits}
                rows_of = labels[:, None] == np.arange(depth)  # the old one_hot
                want = _old_cross_entropy(logits, labels)
                for run in paths:
                    got = run(hot[0], feed)  # one_hot: zero rows for indices out of range
                    assert same_bits(got, rows_of.astype(np.float32)), (depth, labels)
                    if isinstance(want, str):  # the loss and its gradient's one-hot raise
                        for out in (loss, hot[1]):
                            with pytest.raises(gc.ShapeError, match=want):
                                run(out, feed)
                    else:
                        assert same_bits(run(loss, feed), want), (depth, labels)
                        got = run(hot[1], feed)
                        assert same_bits(got, rows_of.astype(np.float64)), (depth, labels)


def test_in_range_at_the_limits_of_wide_dtypes():
    """Depths no array can have here, against min() >= 0 and max() < depth."""
    for dtype in INT_DTYPES:
        info = np.iinfo(dtype)
        half = 2 ** (info.bits - 1)
        values = [0, 5, info.max] + ([-1, info.min] if info.min else [])
        for depth in (half - 1, half, half + 1, 2 * half - 1, 2 * half, 2 * half + 1, 2 ** 70):
            for bad in values:
                indices = np.array([0, 5, bad], dtype)
                want = all(0 <= int(v) < depth for v in indices)
                assert nn._in_range(indices, depth) is want, (dtype, depth, bad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_logits_sum_in_the_contiguous_order(dtype):
    """The documented change (nn.py's Layout): F-ordered logits over 256+ rows and 8-32
    classes sum like a contiguous copy, a few ulps from NumPy's row-after-row sums of the
    F-ordered array itself; below 256 rows they keep those."""
    rng = np.random.default_rng(8)
    for k in (8, 16, 32):
        for rows in (300, 100):
            c = (rng.standard_normal((rows, k)) * 3).astype(dtype)
            f = np.asfortranarray(c)
            got = _run("logsumexp", f, axis=(-1,), keepdims=False)
            as_laid_out = _row_logsumexp(f, -1, False)
            want = _row_logsumexp(c, -1, False) if rows >= 256 else as_laid_out
            assert same_bits(got, want), (k, rows)
            np.testing.assert_array_max_ulp(got, as_laid_out, maxulp=8)
            if k <= 16:
                got = _run("softmax", f, axis=(-1,))
                want = _row_softmax(c, -1) if rows >= 256 else _row_softmax(f, -1)
                assert same_bits(got, want), (k, rows)
                np.testing.assert_array_max_ulp(got, _row_softmax(f, -1), maxulp=8)


@np.errstate(all="ignore")
def test_labels_of_either_byte_order():
    """_in_range caches each dtype's unsigned view: a byte-swapped dtype gets its own, so
    -1 in big-endian int16 still reads as out of range (one_hot still gives a zero row)."""
    x = _logits((40, 10), np.float32)
    for dtype in (">i8", ">i2", "<i4", ">u2"):
        labels = (np.arange(40) % 10).astype(dtype)
        assert same_bits(_run("softmax_cross_entropy", x, labels),
                         _row_cross_entropy(x, labels.astype(np.intp)))
        for bad in ([-1, 10] if np.dtype(dtype).kind == "i" else [10]):
            wrong = labels.copy()
            wrong[5] = bad
            assert nn._in_range(wrong, 10) is False
            with pytest.raises(IndexError, match=f"label {bad} is out of range"):
                _run("softmax_cross_entropy", x, wrong)
            with pytest.raises(IndexError, match=f"label {bad} is out of range"):
                REGISTRY["one_hot_like"].kernel(wrong, x)  # (the gradient's one-hot)
            want = (wrong[:, None].astype(np.int64) == np.arange(10)).astype(np.float32)
            assert same_bits(REGISTRY["one_hot"].kernel(wrong, depth=10, dtype=np.float32),
                             want)


def test_the_layout_each_shape_takes():
    """The documented layouts (_shifted): a short last axis over 32+ rows has its max taken
    over columns; from 256 rows the whole kernel runs in columns (softmax up to 16 classes);
    other axes, long or 1-d rows, int and float16 logits keep the row-wise path."""
    cases = [((128, 10), (-1,), 32, nn._LAST), ((256, 10), (-1,), 32, nn._COLUMNS),
             ((256, 17), (-1,), 16, nn._LAST), ((256, 17), (-1,), 32, nn._COLUMNS),
             ((31, 10), (-1,), 32, (-1,)), ((128, 33), (-1,), 32, (-1,)),
             ((128, 1), (-1,), 32, (-1,)), ((4, 16, 10), (2,), 32, nn._LAST),
             ((128, 10), (0,), 32, (0,)), ((1000,), (-1,), 32, (-1,))]
    for shape, axis, classes, want in cases:
        z, m, finite, along = nn._shifted(np.ones(shape, np.float32), axis, classes)
        assert along == want and finite is True, (shape, axis, classes)
        rows = int(np.prod(shape[:-1]))
        assert z.shape == ((shape[-1], rows) if along is nn._COLUMNS else shape)
    assert nn._shifted(np.ones((128, 10), np.float16), (-1,))[3] == (-1,)
    assert nn._shifted(np.ones((128, 10), np.int64), (-1,))[3] is nn._LAST  # as float64
