"""Static shape and dtype rules shared by the op definitions.

A static shape is a tuple whose entries are ints or ``None`` (a size known only at run time).
Rules raise :class:`ShapeError` / :class:`DTypeError` with a plain message; the node builder adds
the op, the node and the user's file and line.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .errors import ShapeError

Shape = tuple  # tuple[Optional[int], ...]


def fmt(shape: Shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting where ``None`` is an unknown size."""
    if len(shapes) == 2:  # the common cases: equal shapes, or a scalar and a shape
        a, b = shapes
        if a == b or not b:
            return tuple(a)
        if not a:
            return tuple(b)
    elif len(shapes) == 1:
        return tuple(shapes[0])
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        dims = [s[i] for s in shapes if len(s) >= -i]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeError(f"shapes {', '.join(fmt(s) for s in shapes)} do not broadcast")
        if known:
            out.append(known.pop())
        elif None in dims:
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def can_broadcast_to(shape: Shape, target: Shape) -> bool:
    """Whether ``shape`` may broadcast to ``target`` at run time: only a known size other than
    1 and the target's is impossible (an unknown size may turn out to be 1 or the target's)."""
    if len(shape) > len(target):
        return False
    return all(d is None or d == 1 or d == t
               for d, t in zip(shape[::-1], target[::-1]))


def shape_argument(shape, what: str = "a shape") -> tuple:
    """A user's shape (an int or a sequence of ints) as a tuple of ints, else ShapeError."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        return (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(f"{what} must be an int or a tuple of ints, not {shape!r}") from None
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise ShapeError(f"{what} must be an int or a tuple of ints, not {shape!r}")
    return tuple(int(d) for d in dims)


def normalize_axis(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = shape_argument(axis, "an axis")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ShapeError(f"axis {a!r} is out of bounds for an array of {ndim} dimensions")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


def reduced_shape(shape: Shape, axes: tuple, keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def size(shape: Shape) -> Optional[int]:
    """Number of elements, or ``None`` when a size is unknown."""
    if None in shape:
        return None
    return int(np.prod(shape, dtype=np.int64))


def fits(shape: Sequence[int], static: Shape) -> bool:
    """Whether a concrete shape is one the static shape allows."""
    return len(shape) == len(static) and all(s is None or s == d for s, d in zip(static, shape))


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a float-valued function of ``dtype`` gives (ints and bools go to float64)."""
    return dtype if np.issubdtype(dtype, np.inexact) else np.dtype(np.float64)


def same_dims(a: Optional[int], b: Optional[int]) -> bool:
    """Whether two static sizes can be equal at run time."""
    return a is None or b is None or a == b
