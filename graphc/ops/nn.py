"""Neural-network ops: activations, the softmax family, cross-entropies and one_hot.

Numerics. Every kernel stays finite for logits of magnitude 1e4 (float32 too), and so do the
first and second derivatives, because the rules reuse the stable forms:

* ``sigmoid`` splits on the sign: ``1/(1+e)`` or ``e/(1+e)`` with ``e = exp(-|x|)``;
  ``sigmoid' = s(1-s)`` from the output.
* ``softplus = max(x, 0) + log1p(exp(-|x|))``; ``softplus' = sigmoid``.
* ``softmax``, ``log_softmax``, ``logsumexp`` and ``softmax_cross_entropy`` shift by the
  maximum along the axis; their rules emit ``softmax`` (values in [0, 1]), never ``exp(x)``.
* ``sigmoid_cross_entropy = softplus(x) - t x``, with derivative ``sigmoid(x) - t``.

Layout. Over at least 256 rows along a short last axis (2 to 16 classes for ``softmax`` and
``log_softmax``, 2 to 32 for ``logsumexp`` and ``softmax_cross_entropy``) the kernels run on
a C-contiguous transposed copy, and add each row in the order NumPy's pairwise sum adds a
contiguous row (_column_sum). Their values therefore do not depend on the logits' layout. For
F-ordered or transposed logits with 8 or more classes, whose row sums NumPy adds one element
after another (it reduces such a layout row after row), this is a visible change from the
earlier row-wise kernels: the sums of exps differ by a few ulps (at most 6 seen; softmax at
most 6, logsumexp at most 4) and are a little more accurate, rms 0.5-0.7 ulp from float128
sums against 0.6-1.1 (2000 rows, 8 to 32 classes, float32 and float64). Below 8 classes the two
orders are the same; below 256 rows or past those class counts the sums are NumPy's along the
array as it is laid out (layout-dependent, as before).

Axes are stored in canonical *negative* form (``axis=(-1,)``), so a rule addresses the same
dimensions when its cotangent carries leading batch dimensions.

The pattern for a compiler to fuse. The cotangent of ``softmax_cross_entropy(L, y)`` with
integer labels is always emitted as::

    mul(expand_dims(g, (-1,)), sub(softmax(L, axis=(-1,)), one_hot_like(y, L)))

(``mul`` is skipped when ``g`` is the scalar seed one). With probability targets ``t`` it is
``mul(expand_dims(g, (-1,)), sub(mul(softmax(L), sum(t, -1, keepdims)), t))`` (exact for
targets that do not sum to one). In both, the ``softmax`` node has the same input ``L`` as the
loss, so the loss and its gradient can share one pass over the logits.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import Optional

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Axis, DTypeLike, Node, Operand, apply
from ..shapes import float_dtype, fmt, normalize_axis, reduced_shape, same_dims
from .common import dtype_argument, elementwise_infer
from .compare import greater, where
from .elementwise import exp, mul, neg, sub
from .reduce import sum as reduce_sum
from .attrs import axes, dtype_name, flag, integer
from .registry import Case, define
from .shape import expand_dims


# -- helpers --------------------------------------------------------------------------------------
def _require_real(node, what="x", allow_bool=False):
    kind = node.dtype.kind
    if kind in "iuf" or (allow_bool and kind == "b"):
        return
    raise DTypeError(f"{what} must have a real number dtype (int or float), not {node.dtype}")


def _as_float(x) -> np.ndarray:
    """The kernel's input as a float array (ints and bools become float64)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _negative_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple) as a sorted tuple of negative axes: (-1,), (-3, -1), ..."""
    return tuple(a - ndim for a in normalize_axis(axis, ndim))


# -- large elementwise kernels over pieces ---------------------------------------------------------
# glibc hands freed memory at the top of its heap back to the OS once it exceeds twice the
# largest block it has mmapped and freed, and the next call faults every page in again (about
# 2 ms per MB). A kernel freeing a temporary of its result's size while the caller frees that
# result does just that on every call. So past _SMALL_BYTES, kernels that need a second array
# compute in their result's buffer and keep their temporaries in a scratch of a quarter of the
# result (at most _PIECE elements), over consecutive pieces of the flat arrays (measured:
# benchmarks/bench_faults.py); operands that allow no pieces (neither C- nor F-contiguous,
# broadcast) still take one scratch of the result's size. Each element goes through the same
# ufuncs on the same operands in any piece: the values are the same bit for bit (but for
# which of two NaNs a binary ufunc passes on, which NumPy's own loops choose by an element's
# position in the array).
_SMALL_BYTES = 1 << 18  # results up to 256 KB: the expression as written (out= costs more
#                         on tiny arrays, 0-d ones most; temporaries that small do not fault)
_PIECE = 1 << 16  # elements: smaller pieces cost more calls (8192: +25 % on float32 softplus)


def _in_pieces(body, out, scratch_dtype, *inputs):
    """``out`` after ``body(out, scratch, *inputs)`` (ufuncs writing into ``out`` and a
    ``scratch`` array of ``scratch_dtype``), run on pieces of the flat arrays when the
    inputs not 0-d have ``out``'s shape and are contiguous in its order; else once, with a
    scratch array of ``out``'s size."""
    order = "C" if out.flags.c_contiguous else "F"
    if not (out.flags.c_contiguous or out.flags.f_contiguous) or any(
            np.ndim(a) and (a.shape != out.shape or not a.flags[order + "_CONTIGUOUS"])
            for a in inputs):
        body(out, np.empty_like(out, dtype=scratch_dtype), *inputs)
        return out
    flat = [a.reshape(-1, order=order) if np.ndim(a) else a for a in (out,) + inputs]
    size = min(_PIECE, -(-out.size // 4)) or 1
    scratch = np.empty(size, scratch_dtype)
    for start in range(0, out.size, size):
        piece = slice(start, start + size)
        part = flat[0][piece]
        body(part, scratch[:part.size], *(a[piece] if np.ndim(a) else a for a in flat[1:]))
    return out


def _putmask(out, mask, values) -> None:
    """``np.putmask(out, mask, values)`` (mask and values of out's shape). NumPy's works in
    C order, copying an F-ordered out, mask and values first; their transposes are C-ordered."""
    if out.flags.f_contiguous and not out.flags.c_contiguous:
        out, mask, values = out.T, mask.T, values.T
    np.putmask(out, mask, values)


def _log1p_exp_neg_abs(x, out):
    """``log1p(exp(-|x|))`` (in (0, log 2]: never overflows) written into ``out``."""
    np.abs(x, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    return np.log1p(out, out=out)


# -- reductions along a short last axis -----------------------------------------------------------
# NumPy reduces along the last axis one row at a time: one inner loop of length k per row, so a
# 128x10 float32 max costs 7 us against 1 us for a whole exp. Along a short last axis the
# softmax family therefore reduces *columns*: those of a C-contiguous (k, rows) copy, whose
# reductions over axis 0 are k vector operations. The max is exact in any order. The sum keeps
# the bits of NumPy's own sum along a contiguous row (see _column_sum) but costs 3-7 vector
# operations, and a softmax computed in columns is transposed back: so only from
# _COLUMN_ROWS rows, and up to _SHORT_RESULT classes for a softmax, does the whole kernel run
# in columns; below that only the max is taken over columns (measured on float32 and float64,
# 8 to 8192 rows, 4 to 64 classes: benchmarks/bench_nn_kernels.py).
_SHORT_AXIS = 32  # classes: the longest last axis whose max (or reduction) goes by columns
_SHORT_RESULT = 16  # classes: the longest for a softmax or log_softmax in columns
_MAX_ROWS = 32  # rows: the fewest for the max by columns
_COLUMN_ROWS = 256  # rows: the fewest for the whole kernel in columns
_COLUMNS = "columns"  # the axis of a columns array: its axis 0, summed in a row's order
_LAST = "last"  # the last axis of x itself, short: its max is taken over columns (_shifted)
_QUIET = contextlib.nullcontext()  # no floating-point state to change (0.2 us, errstate 1 us)


def _shifted(x, axis, classes=_SHORT_AXIS, out=None):
    """``(z, m, finite, along)``: x as floats, in the layout where reducing along ``axis`` is
    fastest, minus ``m``, its max along ``axis`` (kept dims) with non-finite maxima (all -inf,
    +inf, NaN, empty) replaced by 0; ``finite``: whether all were finite. Then every row's
    exp(z) sums to at least 1 (its max gives exp(0)): no 0/0, inf/inf or log(0) follows, and
    the kernels need no errstate. ``z`` is a new array the kernels may write into (``out``,
    when given, for the layouts other than ``_COLUMNS``: an array of x's shape and of the
    layout NumPy would give x - m).

    ``along``, the layout. For ``axis`` x's last axis alone, of 2 to 32 (_SHORT_AXIS)
    float32/float64 values over at least 32 (_MAX_ROWS) rows: ``_COLUMNS`` from 256
    (_COLUMN_ROWS) rows and up to ``classes`` values, z being the columns of a C-contiguous
    transposed copy (x.T of an F-ordered x is C-contiguous), shifted in that copy's buffer;
    else ``_LAST``, the max taken over such columns, z shaped like x. Otherwise ``axis``
    itself. (One function: each Python call costs 0.3-1 us here, twice that right after a
    big matmul.)"""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    along, k = axis, x.shape[-1] if x.ndim >= 2 else 0
    if (2 <= k <= _SHORT_AXIS and x.size >= _MAX_ROWS * k and x.dtype.itemsize in (4, 8)
            and tuple(axis) in ((-1,), (x.ndim - 1,))):
        along = _COLUMNS if k <= classes and x.size >= _COLUMN_ROWS * k else _LAST
    if along is _COLUMNS:
        x = x.reshape(-1, k).T.copy()  # ours: shifted in place below
        m = np.maximum.reduce(x, axis=0, keepdims=True)
    elif along is _LAST:
        m = np.maximum.reduce(x.reshape(-1, k).T.copy(), axis=0).reshape(x.shape[:-1] + (1,))
    else:
        m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)  # np.max: 2 us more
    finite = np.isfinite(m)
    if np.count_nonzero(finite) == finite.size:  # 0.4 us; logical_and.reduce 0.8, .all() 0.9
        finite = True
    else:
        m, finite = np.where(finite, m, 0), False
    if along is _COLUMNS:
        return np.subtract(x, m, out=x), m, finite, along
    if out is not None:
        return np.subtract(x, m, out=out), m, finite, along
    return np.asarray(x - m), m, finite, along  # an array even for a 0-d x: kernels write into it


def _sum_along(v, axis, signed=True):
    """The sum along ``axis`` of a ``_shifted`` layout (it broadcasts against v). ``signed``
    False: no term is -0.0 (exps), so the sum need not turn -0.0 to +0.0 as NumPy's does."""
    if axis is _COLUMNS:
        return _column_sum(v, signed)
    return np.add.reduce(v, axis=-1 if axis is _LAST else axis, keepdims=True)


def _column_sum(c, signed=True) -> np.ndarray:
    """``np.add.reduce(c, axis=0)`` for a ``(k, n)`` float32/float64 ``c`` with 2 <= k <= 128,
    added in the order NumPy's pairwise sum adds a contiguous row of k (so the same bits as
    ``np.add.reduce`` along the rows of a contiguous ``c.T``): from 0, rows below 8 in turn;
    from 8 rows on, 8 accumulators take every 8th row and are added as
    ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the remaining rows in turn, then 0."""
    k = c.shape[0]
    if k < 8:
        return np.add.reduce(c, axis=0, initial=0)
    blocks = k // 8
    r = np.add.reduce(c[:8 * blocks].reshape(blocks, 8, -1), axis=0) if blocks > 1 else c
    r = np.add(r[0:8:2], r[1:8:2])  # r0+r1, r2+r3, r4+r5, r6+r7
    r = np.add(r[0::2], r[1::2])
    total = np.add(r[0], r[1])
    for i in range(8 * blocks, k):
        np.add(total, c[i], out=total)
    return np.add(total, 0, out=total) if signed else total  # 0 + (-0.0) is +0.0


def _restore(r, axis, shape) -> np.ndarray:
    """A result in a ``_shifted`` layout as a C-contiguous array of ``shape`` (a 0-d one as a
    NumPy scalar, as NumPy's own operators give)."""
    if axis is _COLUMNS:
        return r.T.copy().reshape(shape)
    return r if r.ndim else r[()]


def _one_hot_array(indices, depth: int, dtype, checked: bool = False) -> np.ndarray:
    """Rows of zeros with a 1 at each index in [0, depth): for a few rows (see _COMPARE_ROWS)
    the comparison with arange(depth) written straight into the result (no range test, 2
    NumPy calls); past that through a flat index, as the comparison loops once per row (5x
    slower at 128x1000). ``checked``: the caller has found every index in [0, depth)."""
    indices = np.asarray(indices)
    flat = indices.reshape(-1)
    if flat.size < 8 or not depth or (flat.size <= _COMPARE_ROWS
                                      and flat.size * depth <= _COMPARE_MAX):
        out = np.empty(indices.shape + (depth,), dtype)
        return np.equal(indices[..., None], _row_offsets(depth, 1), out=out)
    out = np.zeros(indices.shape + (depth,), dtype)
    offsets = _row_offsets(flat.size, depth)
    if not checked and not _in_range(flat, depth):  # (checked: known to be in range)
        keep = (flat >= 0) & (flat < depth)
        flat, offsets = flat[keep], offsets[keep]
    # in range: no wrap; dtype: uint64 + intp would promote to float64
    out.reshape(-1)[np.add(offsets, flat, dtype=np.intp)] = 1
    return out


# The most rows, and values, a one-hot array takes by comparison: 15-25 % faster than the
# flat index up to there (32x10, 64x8, 8x64), 3-20 % right after a big matmul; level just
# past it (64x9, 8x65) and slower from 64x32 and 256x8 on (float32 and float64).
_COMPARE_ROWS = 64
_COMPARE_MAX = 512


def _row_offsets(rows: int, depth: int) -> np.ndarray:
    """0, depth, 2 depth, ...: where each row starts in a flat (rows, depth) array (read-only;
    cached for up to 2^16 rows: at most 64 such arrays, 32 MB)."""
    if rows > 1 << 16:
        return np.arange(0, rows * depth, depth, dtype=np.intp)
    return _cached_row_offsets(rows, depth)


@lru_cache(maxsize=64)
def _cached_row_offsets(rows: int, depth: int) -> np.ndarray:
    offsets = np.arange(0, rows * depth, depth, dtype=np.intp)
    offsets.flags.writeable = False  # shared between calls
    return offsets


def _in_range(indices, depth: int) -> bool:
    """Whether every integer index lies in [0, depth): one max, of signed indices read as
    unsigned. A negative one then reads as at least 2^(bits-1) (-1 in int8 as 255), so that
    max tells negatives apart only for depth <= 2^(bits-1) (iinfo.max + 1); past that every
    non-negative index is in range and the test is min() >= 0."""
    if not indices.size:
        return True
    unsigned, signed_limit = _range_view(indices.dtype)
    if depth > signed_limit:
        return int(np.minimum.reduce(indices, axis=None)) >= 0
    if unsigned is not None:
        indices = indices.view(unsigned)
    return int(np.maximum.reduce(indices, axis=None)) < depth  # (a uint64 scalar's < is slow)


@lru_cache(maxsize=None)
def _range_view(dtype: np.dtype) -> tuple:
    """``(unsigned, limit)`` for _in_range: the unsigned dtype a signed ``dtype``'s indices
    are read as (None for an unsigned one) and the largest depth that max tells negatives
    apart for (iinfo.max + 1; unbounded for an unsigned dtype). Cached: iinfo and the view's
    dtype cost 1.4 us per call, more than the max of 128 labels."""
    if dtype.kind in "ub":  # (bools: 0 and 1, never negative)
        return None, float("inf")
    return np.dtype(dtype.str.replace("i", "u")), int(np.iinfo(dtype).max) + 1


# -- activations ----------------------------------------------------------------------------------
def _float_unary_infer(x):
    _require_real(x)
    return x.shape, float_dtype(x.dtype)


def _relu_infer(x):
    _require_real(x)
    return x.shape, x.dtype


def _relu(x, out=None):
    if isinstance(x, np.ndarray) and 0 < x.ndim and x.dtype.kind == "f" and \
            x.shape[-1] <= _ZEROS_ROW_MAX:
        # against a row of zeros, not the scalar 0: NumPy's SIMD loop for maximum skips a
        # broadcast scalar (2x slower on large arrays); the same values bit for bit
        return np.maximum(x, _zeros_row(x.dtype, x.shape[-1]), out=out)
    return np.maximum(x, 0, out=out)


_ZEROS_ROW_MAX = 4096  # the cached rows stay small (64 of them at most: 2 MB)


@lru_cache(maxsize=64)
def _zeros_row(dtype: np.dtype, n: int) -> np.ndarray:
    row = np.zeros(n, dtype)
    row.flags.writeable = False  # shared between calls
    return row


def _sigmoid(x):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        r = 1 / (1 + e)
        return np.where(x >= 0, r, e * r)
    return _in_pieces(_sigmoid_into, np.empty_like(x), x.dtype, x)


def _sigmoid_into(out, e, x):
    """_sigmoid's ufuncs in place: out = r, then e r where not x >= 0 (NaN too)."""
    np.exp(np.negative(np.abs(x, out=e), out=e), out=e)
    np.divide(1, np.add(1, e, out=out), out=out)
    _putmask(out, ~(x >= 0), np.multiply(e, out, out=e))


def _softplus(x):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return _in_pieces(_softplus_into, np.empty_like(x), x.dtype, x)


def _softplus_into(out, scratch, x):
    np.add(np.maximum(x, 0, out=out), _log1p_exp_neg_abs(x, scratch), out=out)


_ACTIVATION_CASES = [Case(((3, 4),), low=-3.0, high=3.0, order=3), Case(((),)),
                     Case(((6,),), low=-12.0, high=12.0)]

define("relu", infer=_relu_infer, kernel=_relu, curvature="linear",
       bprop=lambda node, g, i: where(greater(node, 0), g, 0),  # relu'(0) = 0
       reference=lambda x: np.where(x > 0, x, np.zeros_like(x)),
       cases=[Case(((3, 4),)), Case(((),)), Case((np.array([-2, 0, 3]),))],
       elementwise=True, inplace=True, doc="max(x, 0); the derivative at 0 is 0.")
define("sigmoid", infer=_float_unary_infer, kernel=_sigmoid,
       bprop=lambda node, g, i: mul(g, mul(node, sub(1, node))),
       reference=lambda x: 1 / (1 + np.exp(-x)), cases=_ACTIVATION_CASES, elementwise=True,
       doc="The logistic function 1 / (1 + exp(-x)), stable for any x.")
define("softplus", infer=_float_unary_infer, kernel=_softplus,
       bprop=lambda node, g, i: mul(g, sigmoid(node.inputs[0])),
       reference=lambda x: np.log(1 + np.exp(x)), cases=_ACTIVATION_CASES, elementwise=True,
       doc="log(1 + exp(x)), stable for any x; its derivative is sigmoid.")


# -- softmax, log_softmax, logsumexp --------------------------------------------------------------
def _softmax_infer(x, *, axis):
    _require_real(x)
    return x.shape, float_dtype(x.dtype), {"axis": _negative_axes(axis, x.ndim)}


def _softmax(x, *, axis):
    """Shifted by the max; sums in a contiguous row's pairwise order (Layout, above)."""
    e, _, finite, along = _shifted(x, axis, _SHORT_RESULT)
    np.exp(e, out=e)
    # a row of -inf has no softmax (0/0: NaN, as intended), nor one with +inf (inf/inf)
    with _QUIET if finite else np.errstate(invalid="ignore"):
        e /= _sum_along(e, along, signed=False)  # in e's buffer: no second array
    return _restore(e, along, np.shape(x))


def _log_softmax(x, *, axis):
    """Shifted by the max; sums in a contiguous row's pairwise order (Layout, above)."""
    z, _, finite, along = _shifted(x, axis, _SHORT_RESULT)
    # -inf entries give -inf; a row of only -inf has no log_softmax (NaN), as intended
    with _QUIET if finite else np.errstate(divide="ignore", invalid="ignore"):
        z -= np.log(_exp_sums(z, along))
    return _restore(z, along, np.shape(x))


def _exp_sums(z, along):
    """``_sum_along(np.exp(z), along, signed=False)``. Past _SMALL_BYTES, for rows along a
    C-contiguous z's last axis, the exps of a few rows at a time go to a scratch (as a second
    array of z's size would fault: see _in_pieces); a row's sum does not depend on the other
    rows, so the sums are the same bits."""
    k = z.shape[-1] if z.ndim else 0
    if z.nbytes <= _SMALL_BYTES or not z.flags.c_contiguous or not k or along is _COLUMNS \
            or (along is not _LAST and tuple(along) not in ((-1,), (z.ndim - 1,))):
        return _sum_along(np.exp(z), along, signed=False)
    rows = z.reshape(-1, k)
    step = max(1, min(_PIECE // k, -(-len(rows) // 4)))
    sums, scratch = np.empty((len(rows), 1), z.dtype), np.empty((step, k), z.dtype)
    for start in range(0, len(rows), step):
        part = rows[start:start + step]
        np.add.reduce(np.exp(part, out=scratch[:len(part)]), axis=-1, keepdims=True,
                      out=sums[start:start + step])
    return sums.reshape(z.shape[:-1] + (1,))


def _softmax_bprop(node, g, i):
    # J^T g = s * (g - sum(g * s)), with s the output
    gs = mul(g, node)
    return sub(gs, mul(node, reduce_sum(gs, axis=node.attrs["axis"], keepdims=True)))


def _log_softmax_bprop(node, g, i):
    axis = node.attrs["axis"]
    s = exp(node)  # softmax from the output: no second pass over the logits
    return sub(g, mul(s, reduce_sum(g, axis=axis, keepdims=True)))


def _softmax_reference(x, *, axis):
    e = np.exp(x)
    return e / np.add.reduce(e, axis=axis, keepdims=True)


_SOFTMAX_CASES = [
    Case(((3, 4),), attrs={"axis": -1}, low=-3.0, high=3.0, order=3),
    Case(((2, 3, 4),), attrs={"axis": (0, 2)}),
    Case(((3, 4),), attrs={"axis": 0}),
    Case(((2, 3),), attrs={"axis": None}),
    Case(((5,),), attrs={"axis": -1}, low=-20.0, high=20.0),
]

def _softmax_jvp(node, tangents):
    st = mul(node, tangents[0])  # J t = s * (t - sum(s * t)), the same form as the bprop
    return sub(st, mul(node, reduce_sum(st, axis=node.attrs["axis"], keepdims=True)))


def _log_softmax_jvp(node, tangents):
    (t,) = tangents
    s = softmax(node.inputs[0], axis=node.attrs["axis"])
    return sub(t, reduce_sum(mul(s, t), axis=node.attrs["axis"], keepdims=True))


def _logsumexp_jvp(node, tangents):
    axis = node.attrs["axis"]
    s = softmax(node.inputs[0], axis=axis)
    return reduce_sum(mul(s, tangents[0]), axis=axis, keepdims=node.attrs["keepdims"])


define("softmax", infer=_softmax_infer, attrs={"axis": axes}, kernel=_softmax,
       bprop=_softmax_bprop, jvp=_softmax_jvp, structure="group",
       reference=_softmax_reference, cases=_SOFTMAX_CASES,
       doc="exp(x) / sum(exp(x)) along axis, shifted by the max (stable).")
define("log_softmax", infer=_softmax_infer, kernel=_log_softmax, bprop=_log_softmax_bprop,
       jvp=_log_softmax_jvp, structure="group",
       attrs={"axis": axes},
       reference=lambda x, *, axis: np.log(_softmax_reference(x, axis=axis)),
       cases=_SOFTMAX_CASES,
       doc="x - logsumexp(x) along axis (stable); its rule uses softmax.")


def _logsumexp_infer(x, *, axis, keepdims):
    _require_real(x)
    axes = _negative_axes(axis, x.ndim)
    shape = reduced_shape(x.shape, tuple(a + x.ndim for a in axes), keepdims)
    return shape, float_dtype(x.dtype), {"axis": axes, "keepdims": bool(keepdims)}


def _logsumexp(x, *, axis, keepdims):
    """Shifted by the max; sums in a contiguous row's pairwise order (Layout, above)."""
    # +inf entries give +inf, all -inf (or empty) gives -inf
    e, m, finite, along = _shifted(x, axis)
    with _QUIET if finite else np.errstate(divide="ignore"):
        out = np.log(_sum_along(np.exp(e, out=e), along, signed=False)) + m
    if along is _COLUMNS:
        return out.reshape(np.shape(x)[:-1] + (1,) * keepdims)
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_bprop(node, g, i):
    axis = node.attrs["axis"]
    if not node.attrs["keepdims"] and axis:
        g = expand_dims(g, axis)  # negative axes: right for any leading batch of g
    return mul(g, softmax(node.inputs[0], axis=axis))


define("logsumexp", infer=_logsumexp_infer, kernel=_logsumexp, bprop=_logsumexp_bprop,
       jvp=_logsumexp_jvp, structure="reduce",
       attrs={"axis": axes, "keepdims": flag},
       reference=lambda x, *, axis, keepdims: np.log(
           np.add.reduce(np.exp(x), axis=axis, keepdims=keepdims)),
       cases=[Case(((3, 4),), attrs={"axis": -1, "keepdims": False}, order=3),
              Case(((2, 3, 4),), attrs={"axis": (0, 2), "keepdims": True}),
              Case(((3, 4),), attrs={"axis": None, "keepdims": False}),
              Case(((),), attrs={"axis": None, "keepdims": False}),
              Case(((4,),), attrs={"axis": 0, "keepdims": True}, low=-20.0, high=20.0)],
       doc="log(sum(exp(x))) over axis, shifted by the max (stable); its rule uses softmax.")


# -- cross-entropies ------------------------------------------------------------------------------
def _softmax_cross_entropy_infer(logits, labels):
    _require_real(logits, "logits")
    if logits.ndim == 0:
        raise ShapeError("logits must have a class axis (at least 1 dimension), got shape ()")
    kind = labels.dtype.kind
    if kind not in "iuf":
        raise DTypeError(f"labels must be integer class indices or float probabilities of the "
                         f"logits' shape, not {labels.dtype}")
    if not _fits_dims(labels.shape, _labels_shape(logits, labels)):
        raise ShapeError(_labels_mismatch(logits, labels))
    shape = tuple(b if a is None else a for a, b in zip(logits.shape[:-1], labels.shape))
    dtype = float_dtype(logits.dtype)
    return shape, dtype if kind in "iu" else np.result_type(dtype, labels.dtype)


def _labels_shape(logits, labels) -> tuple:
    """The shape labels must have (nodes or arrays): integer ones one per example, probability
    targets the logits' own."""
    return logits.shape[:-1] if labels.dtype.kind in "iu" else logits.shape


def _labels_mismatch(logits, labels) -> str:
    """The message for labels of the wrong shape (nodes at build time, arrays at run time)."""
    want = _labels_shape(logits, labels)
    what = "integer labels" if labels.dtype.kind in "iu" else "probability targets"
    return (f"{what} must have shape {fmt(want)} for logits of shape {fmt(logits.shape)}, got "
            f"{fmt(labels.shape)}: {_labels_hint(logits, labels, want)}")


def _fits_dims(shape: tuple, want: tuple) -> bool:
    return len(shape) == len(want) and all(map(same_dims, shape, want))


def _labels_hint(logits, labels, want: tuple) -> str:
    """What to do about labels of the wrong shape (``want``: the shape they need)."""
    integer, shape = labels.dtype.kind in "iu", labels.shape
    if integer and _fits_dims(shape, logits.shape):
        return ("one-hot or probability targets have the logits' shape and must be floats "
                "(gc.cast(labels, logits.dtype))")
    if not integer and _fits_dims(shape, logits.shape[:-1]):
        return ("class indices have shape logits.shape[:-1] and must be integers "
                "(gc.cast(labels, 'int64'))")
    if integer and len(shape) == len(want) + 1 and shape[-1] == 1 \
            and _fits_dims(shape[:-1], want):
        return "drop the labels' last axis of size 1 (gc.squeeze(labels, -1))"
    if len(shape) <= len(want) and all(d in (1, None) or same_dims(d, w)
                                       for d, w in zip(shape[::-1], want[::-1])):
        per = "label" if integer else "row of probabilities"
        same = "" if None in want or isinstance(labels, np.ndarray) else \
            f" (gc.broadcast_to(labels, {fmt(want)}) if every example has the same one)"
        return f"labels are not broadcast: give one {per} per example{same}"
    return ("integer class indices have shape logits.shape[:-1], probability targets the "
            "logits' shape")


def _require_labels_in_range(labels, classes: int) -> None:
    """Raise for an integer label outside [0, classes): the loss and its gradient both check,
    so a graph that computes only the gradient (the loss pruned) raises too."""
    if not _in_range(labels, classes):
        bad = labels[(labels < 0) | (labels >= classes)].flat[0]
        raise IndexError(f"label {bad} is out of range for {classes} classes "
                         f"(labels must lie in [0, {classes}))")


def _softmax_cross_entropy(logits, labels):
    """logsumexp minus the picked (or target-weighted) shifted logit; the sums in a
    contiguous row's pairwise order (Layout, above); labels outside [0, classes) raise."""
    logits, labels = _as_float(logits), np.asarray(labels)
    if labels.dtype.kind in "iu":
        return _sparse_cross_entropy(logits, labels)[0]
    shape, classes = logits.shape, logits.shape[-1]
    if labels.shape != _labels_shape(logits, labels):  # (sizes the rule could not know)
        raise ValueError(_labels_mismatch(logits, labels))
    z, _, _, along = _shifted(logits, (-1,))  # a new array (or our columns copy)
    columns = along is _COLUMNS
    lse = np.log(_sum_along(np.exp(z), along, signed=False))
    dtype = np.result_type(logits, labels)
    if columns:  # one lse per column
        loss = _column_sum(labels.reshape(-1, classes).T * (lse - z)).reshape(shape[:-1])
    else:
        loss = np.sum(labels * (lse - z), axis=-1)
    return loss.astype(dtype, copy=False)


def _sparse_cross_entropy(logits, labels, z_out=None, loss_out=None) -> tuple:
    """The loss for integer labels, and what its pass leaves: ``(loss, e, sums, finite,
    along)``, e the exps of the shifted logits in _shifted's layout ``along`` (in ``z_out``
    when given and that layout is not _COLUMNS), ``sums`` their sums along the classes,
    ``finite`` whether every max was finite; the loss in ``loss_out`` when given."""
    if labels.shape != _labels_shape(logits, labels):  # (sizes the rule could not know)
        raise ValueError(_labels_mismatch(logits, labels))
    classes = logits.shape[-1]
    _require_labels_in_range(labels, classes)
    z, _, finite, along = _shifted(logits, (-1,), out=z_out)  # new (or our columns copy)
    flat = labels.reshape(-1)
    examples = _row_offsets(flat.size, 1)  # 0, 1, 2, ...
    if along is _COLUMNS:  # one column per example
        picked = z[flat, examples]
    else:  # a view (z is new): one row per example
        picked = z.reshape(flat.size, classes)[examples, flat]
    # z is needed no more: its exps in its own buffer (one temporary, not two)
    sums = _sum_along(np.exp(z, out=z), along, signed=False)
    lse = np.log(sums).reshape(logits.shape[:-1])  # >= 0: the max gives exp(0) = 1
    picked = picked.reshape(labels.shape)
    loss = lse - picked if loss_out is None else np.subtract(lse, picked, out=loss_out)
    return loss, z, sums, finite, along


def softmax_cross_entropy_and_gradient(logits, labels) -> np.ndarray:
    """``softmax(logits) - one_hot_like(labels, logits)`` and ``softmax_cross_entropy(logits,
    labels)`` for integer labels from one pass over the logits, in one flat array: the
    gradient's elements in C order, then the loss's. The four kernels' values bit for bit.
    For C-ordered logits the softmax divides the loss's own exps by their sums, as the
    softmax kernel does (its sums along rows, where the loss may take columns, add in the
    same order then: see _column_sum), and the gradient has the unshared one's layout (NumPy's
    x - m, softmax and subtraction are C-ordered then), which is why the ``share`` pass
    calls it for those only; other logits take the softmax kernel itself. p - 1 at each label
    is the one-hot subtraction (p - 0 is p)."""
    logits, labels = _as_float(logits), np.asarray(labels)
    shape, size, classes = logits.shape, logits.size, logits.shape[-1]
    flat = np.empty(size + labels.size, logits.dtype)
    grad = flat[:size].reshape(shape)
    ordered = logits.flags.c_contiguous
    _, e, sums, finite, along = _sparse_cross_entropy(logits, labels, grad if ordered else None,
                                                      flat[size:].reshape(labels.shape))
    if not ordered:  # the softmax kernel's own sums (in its layout), not the loss's
        np.copyto(grad, _softmax(logits, axis=(-1,)))
    else:
        with _QUIET if finite else np.errstate(invalid="ignore"):  # as in _softmax
            e /= sums
        if along is _COLUMNS:
            np.copyto(grad.reshape(-1, classes), e.T)  # (_restore's copy)
    if size:
        at = np.add(_row_offsets(labels.size, classes), labels.reshape(-1), dtype=np.intp)
        flat[at] -= 1
    return flat


def _softmax_cross_entropy_bprop(node, g, i):
    logits, labels = node.inputs
    sparse = labels.dtype.kind in "iu"
    if sparse and i == 1:
        return None  # integer labels: not differentiable
    g = g if g.ndim == 0 else expand_dims(g, -1)  # one cotangent per example, over classes
    if i == 1:
        return neg(mul(g, log_softmax(logits, axis=-1)))
    s = softmax(logits, axis=-1)
    if sparse:
        return mul(g, sub(s, one_hot_like(labels, logits)))
    return mul(g, sub(mul(s, reduce_sum(labels, axis=-1, keepdims=True)), labels))


def _softmax_cross_entropy_reference(logits, labels):
    log_p = logits - np.log(np.add.reduce(np.exp(logits), axis=-1, keepdims=True))
    if labels.dtype.kind in "iu":
        out = np.empty(labels.shape)
        for index in np.ndindex(labels.shape):
            out[index] = -log_p[index + (labels[index],)]
        return out
    return -np.add.reduce(labels * log_p, axis=-1)


_PROBS = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])

define("softmax_cross_entropy", infer=_softmax_cross_entropy_infer,
       kernel=_softmax_cross_entropy, bprop=_softmax_cross_entropy_bprop,
       reference=_softmax_cross_entropy_reference,
       cases=[Case(((4, 5), np.array([0, 4, 2, 2])), low=-3.0, high=3.0, order=3),
              Case(((2, 3, 4), np.array([[0, 1, 3], [3, 3, 0]]))),
              Case(((5,), np.array(3))),
              Case(((3, 4), _PROBS), order=3),
              Case(((2, 3), (2, 3)), low=0.0, high=1.0)],
       doc="Per-example -log softmax(logits)[label] over the last axis; labels are integer "
           "classes (shape logits.shape[:-1]) or probabilities (the logits' shape).")


def _sigmoid_cross_entropy_infer(logits, targets):
    _require_real(logits, "logits")
    _require_real(targets, "targets", allow_bool=True)
    return elementwise_infer(_sigmoid_cross_entropy)(logits, targets)


def _sigmoid_cross_entropy(x, t):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:  # (a large t broadcasting a small x: rare)
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    # in the result (x and t promoted, as NumPy does) with a scratch of x's dtype
    try:
        shape = np.broadcast_shapes(x.shape, np.shape(t))
    except ValueError:  # NumPy's own words for the shapes: the expression raises them
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    dtype = np.result_type(x, t)
    if shape != x.shape:  # x broadcast: the scratch has x's shape
        out = np.empty(shape, dtype)
        _sigmoid_cross_entropy_into(out, np.empty_like(x), x, t)
        return out
    return _in_pieces(_sigmoid_cross_entropy_into, np.empty_like(x, dtype=dtype), x.dtype, x, t)


def _sigmoid_cross_entropy_into(out, scratch, x, t):
    np.maximum(x, 0, out=scratch)
    np.subtract(scratch, np.multiply(x, t, out=out), out=out)
    np.add(out, _log1p_exp_neg_abs(x, scratch), out=out)


def _sigmoid_cross_entropy_bprop(node, g, i):
    x, t = node.inputs
    if i == 0:
        return mul(g, sub(sigmoid(x), t))
    return neg(mul(g, x))


def _sigmoid_cross_entropy_reference(x, t):
    p = 1 / (1 + np.exp(-x))
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


define("sigmoid_cross_entropy", infer=_sigmoid_cross_entropy_infer,
       kernel=_sigmoid_cross_entropy, bprop=_sigmoid_cross_entropy_bprop,
       reference=_sigmoid_cross_entropy_reference,
       cases=[Case(((3, 4), (3, 4)), low=-3.0, high=3.0, order=3),
              Case(((3, 4), np.array([0.0, 1.0, 0.5, 1.0]))),
              Case(((2, 3), np.array([[1, 0, 1], [0, 0, 1]])))],
       elementwise=True,
       doc="Elementwise -t log(sigmoid(x)) - (1-t) log(1-sigmoid(x)), stable: "
           "softplus(x) - t x.")


# -- one_hot ---------------------------------------------------------------------------------------
def _one_hot_infer(indices, *, depth, dtype):
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"indices must be integers, not {indices.dtype}")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ShapeError(f"depth must be a non-negative int, not {depth!r}")
    dtype = dtype_argument(dtype)
    return indices.shape + (int(depth),), dtype, {"depth": int(depth), "dtype": dtype.name}


def _one_hot_reference(indices, *, depth, dtype):
    out = np.zeros(indices.shape + (depth,), dtype)
    for index in np.ndindex(indices.shape):
        if 0 <= indices[index] < depth:
            out[index + (indices[index],)] = 1
    return out


_INDICES = np.array([[0, 2], [1, 5], [-1, 2]])  # 5 and -1 are out of range: zero rows

define("one_hot", infer=_one_hot_infer, attrs={"depth": integer(0), "dtype": dtype_name},
       kernel=lambda indices, *, depth, dtype: _one_hot_array(indices, depth, dtype),
       bprop=None, reference=_one_hot_reference,
       cases=[Case((_INDICES,), attrs={"depth": 3, "dtype": "float64"}),
              Case((np.array([3, 0, 1]),), attrs={"depth": 4, "dtype": "float32"}),
              Case((np.array(2),), attrs={"depth": 3, "dtype": "int64"})],
       doc="Rows with a 1 at each index (zeros for indices outside [0, depth)).")


def _one_hot_like_infer(indices, like):
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"indices must be integers, not {indices.dtype}")
    if like.ndim == 0:
        raise ShapeError("like must have at least 1 dimension (its last size is the depth)")
    return indices.shape + like.shape[-1:], float_dtype(like.dtype)


def _one_hot_like(indices, like):
    indices, like = np.asarray(indices), np.asarray(like)
    _require_labels_in_range(indices, like.shape[-1])  # the labels of a cross-entropy
    dtype = like.dtype if like.dtype.kind in "fc" else np.dtype(np.float64)  # float_dtype's
    return _one_hot_array(indices, like.shape[-1], dtype, checked=True)


define("one_hot_like", infer=_one_hot_like_infer,
       kernel=_one_hot_like,
       bprop=None,
       reference=lambda indices, like: _one_hot_reference(
           indices, depth=like.shape[-1], dtype=float_dtype(like.dtype)),
       cases=[Case((_INDICES % 4, (3, 2, 4))),
              Case((np.array([1, 0]), np.zeros((2, 3), "float32")))],
       doc="one_hot with the depth (last size) and float dtype of like, read at run time; the "
           "labels of a cross-entropy's gradient, so an index outside [0, depth) raises.")


# -- builders -------------------------------------------------------------------------------------
def relu(x: Operand, name: Optional[str] = None) -> Node:
    """``max(x, 0)`` elementwise; its derivative at 0 is 0."""
    return apply("relu", [x], name=name)


def sigmoid(x: Operand, name: Optional[str] = None) -> Node:
    """The logistic function ``1 / (1 + exp(-x))``, finite with finite derivatives for any x."""
    return apply("sigmoid", [x], name=name)


def softplus(x: Operand, name: Optional[str] = None) -> Node:
    """``log(1 + exp(x))`` computed stably as ``max(x, 0) + log1p(exp(-|x|))``."""
    return apply("softplus", [x], name=name)


def softmax(x: Operand, axis: Axis = -1, name: Optional[str] = None) -> Node:
    """``exp(x) / sum(exp(x))`` along ``axis`` (an int, a tuple, or None for all axes)."""
    return apply("softmax", [x], {"axis": axis}, name=name)


def log_softmax(x: Operand, axis: Axis = -1, name: Optional[str] = None) -> Node:
    """``x - logsumexp(x, axis, keepdims=True)``: log-probabilities, stable for large logits."""
    return apply("log_softmax", [x], {"axis": axis}, name=name)


def logsumexp(x: Operand, axis: Axis = -1, keepdims: bool = False,
              name: Optional[str] = None) -> Node:
    """``log(sum(exp(x), axis))`` without overflow; ``axis`` an int, a tuple or None (all)."""
    return apply("logsumexp", [x], {"axis": axis, "keepdims": keepdims}, name=name)


def softmax_cross_entropy(logits: Operand, labels: Operand, name: Optional[str] = None) -> Node:
    """Cross-entropy between ``softmax(logits)`` over the last axis and the labels, per example.

    ``labels`` are either integer class indices of shape ``logits.shape[:-1]`` (they get no
    gradient; an index outside ``[0, classes)`` is an error at run time) or float one-hot or
    probability targets of the logits' shape (they get the gradient ``-log_softmax(logits)``).
    The result has shape ``logits.shape[:-1]``; take ``gc.mean`` of it for a batch loss.
    """
    return apply("softmax_cross_entropy", [logits, labels], name=name)


def sigmoid_cross_entropy(logits: Operand, targets: Operand, name: Optional[str] = None) -> Node:
    """Elementwise binary cross-entropy of ``sigmoid(logits)`` against ``targets`` in [0, 1].

    Computed as ``softplus(logits) - targets * logits`` (finite for any logits); broadcasts.
    """
    return apply("sigmoid_cross_entropy", [logits, targets], name=name)


def one_hot(indices: Operand, depth: int, dtype: DTypeLike = "float64",
            name: Optional[str] = None) -> Node:
    """One-hot rows: shape ``indices.shape + (depth,)``; indices outside ``[0, depth)`` give
    a row of zeros. Not differentiable."""
    return apply("one_hot", [indices], {"depth": depth, "dtype": dtype}, name=name)


def one_hot_like(indices: Operand, like: Node, name: Optional[str] = None) -> Node:
    """``one_hot`` whose depth is ``like``'s last size at run time, in ``like``'s float dtype.
    It is the labels' one-hot of a cross-entropy's gradient: an index outside ``[0, depth)``
    is an error at run time, as it is for the loss."""
    return apply("one_hot_like", [indices, like], name=name)
