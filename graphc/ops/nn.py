"""Neural-network ops: activations, the softmax family, cross-entropies and one_hot.

Numerics. Every kernel stays finite for logits of magnitude 1e4 (float32 too), and so do the
first and second derivatives, because the rules reuse the stable forms:

* ``sigmoid`` splits on the sign: ``1/(1+e)`` or ``e/(1+e)`` with ``e = exp(-|x|)``;
  ``sigmoid' = s(1-s)`` from the output.
* ``softplus = max(x, 0) + log1p(exp(-|x|))``; ``softplus' = sigmoid``.
* ``softmax``, ``log_softmax``, ``logsumexp`` and ``softmax_cross_entropy`` shift by the
  maximum along the axis; their rules emit ``softmax`` (values in [0, 1]), never ``exp(x)``.
* ``sigmoid_cross_entropy = softplus(x) - t x``, with derivative ``sigmoid(x) - t``.

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


def _safe_max(x, axis):
    """The max along ``axis`` (kept), with non-finite maxima (all -inf, empty) replaced by 0."""
    m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)  # np.max, 2 us less
    return m if np.isfinite(m).all() else np.where(np.isfinite(m), m, 0)


def _one_hot_array(indices, depth: int, dtype) -> np.ndarray:
    return (np.asarray(indices)[..., None] == np.arange(depth)).astype(dtype)


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
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def _softplus(x):
    x = _as_float(x)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


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
    x = _as_float(x)
    e = np.exp(x - _safe_max(x, axis))
    with np.errstate(invalid="ignore"):  # a row of -inf has no softmax: NaN, as intended
        e /= np.add.reduce(e, axis=axis, keepdims=True)  # in e's buffer: no second array
    return e


def _log_softmax(x, *, axis):
    x = _as_float(x)
    z = x - _safe_max(x, axis)
    # -inf entries give -inf; a row of only -inf has no log_softmax (NaN), as intended
    with np.errstate(divide="ignore", invalid="ignore"):
        return z - np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True))


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
    x = _as_float(x)
    m = _safe_max(x, axis)  # +inf entries give +inf, all -inf (or empty) gives -inf
    with np.errstate(divide="ignore"):
        out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
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


def _softmax_cross_entropy(logits, labels):
    logits, labels = _as_float(logits), np.asarray(labels)
    if labels.shape != _labels_shape(logits, labels):  # (sizes the rule could not know)
        raise ValueError(_labels_mismatch(logits, labels))
    z = logits - _safe_max(logits, -1)
    lse = np.log(np.add.reduce(np.exp(z), axis=-1))  # >= 0: the max entry contributes 1
    if labels.dtype.kind in "iu":
        classes = logits.shape[-1]
        if labels.size and (labels.max() >= classes or
                            (labels.dtype.kind == "i" and labels.min() < 0)):
            bad = labels[(labels < 0) | (labels >= classes)].flat[0]
            raise IndexError(f"label {bad} is out of range for {classes} classes "
                             f"(labels must lie in [0, {classes}))")
        rows = z.reshape(labels.size, classes)  # a view (z is new): one row per example
        picked = rows[np.arange(labels.size), labels.reshape(-1)].reshape(labels.shape)
        return lse - picked
    dtype = np.result_type(logits, labels)
    return np.sum(labels * (lse[..., None] - z), axis=-1).astype(dtype, copy=False)


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
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


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


define("one_hot_like", infer=_one_hot_like_infer,
       kernel=lambda indices, like: _one_hot_array(
           indices, np.shape(like)[-1], float_dtype(np.result_type(like))),
       bprop=None,
       reference=lambda indices, like: _one_hot_reference(
           indices, depth=like.shape[-1], dtype=float_dtype(like.dtype)),
       cases=[Case((_INDICES, (3, 2, 4))), Case((np.array([1, 0]), np.zeros((2, 3), "float32")))],
       doc="one_hot with the depth (last size) and float dtype of like, read at run time.")


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
    """``one_hot`` whose depth is ``like``'s last size at run time, in ``like``'s float dtype."""
    return apply("one_hot_like", [indices, like], name=name)
