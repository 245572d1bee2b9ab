"""Broadcasting and its adjoint, summing back to a shape.

``broadcast_like`` and ``sum_to`` take a second input only for its run-time shape, which lets
the gradient pass handle sizes that are ``None`` at build time.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Node, Operand, apply
from ..shapes import broadcast_shapes, can_broadcast_to, fmt, shape_argument
from .attrs import integer, ints
from .registry import Case, define
from .shape import expand_dims


def _broadcast_to_infer(x, *, shape):
    shape = shape_argument(shape)
    if any(d < 0 for d in shape):
        raise ShapeError(f"cannot broadcast to {shape}: sizes must not be negative")
    if not can_broadcast_to(x.shape, shape):  # an unknown size may be 1 at run time
        raise ShapeError(f"cannot broadcast shape {fmt(x.shape)} to {fmt(shape)}")
    return shape, x.dtype, {"shape": shape}


define("broadcast_to", infer=_broadcast_to_infer, attrs={"shape": ints()},
       curvature="linear",
       kernel=lambda x, *, shape: np.broadcast_to(x, shape),
       bprop=lambda node, g, i: g,
       reference=lambda x, *, shape: np.broadcast_to(x, shape),
       cases=[Case(((3, 1),), attrs={"shape": (2, 3, 4)}), Case(((),), attrs={"shape": (3,)})],
       elementwise=True)


def _broadcast_like_kernel(x, like):
    return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), np.shape(like)))


define("broadcast_like",
       curvature="linear",
       infer=lambda x, like: (broadcast_shapes(x.shape, like.shape), x.dtype),
       kernel=_broadcast_like_kernel,
       bprop=lambda node, g, i: g if i == 0 else None,
       reference=lambda x, like: np.broadcast_to(x, np.broadcast_shapes(x.shape, like.shape)),
       cases=[Case(((3, 1), (2, 3, 4)), wrt=(0,)), Case(((), (3,)), wrt=(0,))],
       elementwise=True,
       doc="Broadcast x against the run-time shape of like (like's values are not used).")


def reduce_to(x, shape: tuple, batch: int = 0):
    """Sum ``x`` down to ``shape``: extra dimensions sit right after the first ``batch`` ones."""
    x = np.asarray(x)
    lead = x.ndim - len(shape)
    axes = tuple(range(batch, batch + lead)) + tuple(
        lead + k for k in range(batch, len(shape)) if shape[k] == 1 and x.shape[lead + k] != 1)
    if axes:  # in x's dtype: NumPy would widen small ints, which the rule does not say
        x = np.add.reduce(x, axis=axes, keepdims=True, dtype=x.dtype)
    return x.reshape(shape) if lead else x


def _sum_to_infer(x, like, *, batch):
    if x.dtype.kind not in "iufc":
        raise DTypeError(f"sum_to adds numbers, not {x.dtype}")
    lead = x.ndim - batch - like.ndim
    # each size of like is x's (after the batch and the summed-away dimensions) or 1
    if lead < 0 or any(a is not None and b is not None and a != b and a != 1
                       for a, b in zip(like.shape, x.shape[batch + lead:])):
        raise ShapeError(f"cannot sum shape {fmt(x.shape)} to {fmt(like.shape)}"
                         + (f" after {batch} batch dimensions" if batch else ""))
    return x.shape[:batch] + like.shape, x.dtype


def _sum_to_bprop(node, g, i):
    if i == 1:
        return None
    x, like = node.inputs
    extra = g.ndim - node.ndim  # batch of this cotangent
    lead = x.ndim - node.ndim  # dimensions sum_to removed
    if lead:
        start = extra + node.attrs["batch"]
        g = expand_dims(g, tuple(range(start - g.ndim - lead, start - g.ndim)))
    return broadcast_like(g, x)


def _sum_to_reference(x, like, *, batch):
    """Each element of x added into the element of the result it was broadcast from."""
    want = x.shape[:batch] + like.shape
    lead = x.ndim - len(want)
    out = np.zeros(want, x.dtype)
    for index in np.ndindex(x.shape):
        kept = index[:batch] + index[batch + lead:]
        out[tuple(0 if n == 1 else k for k, n in zip(kept, want))] += x[index]
    return out


define("sum_to", infer=_sum_to_infer, attrs={"batch": integer(0)},
       structure="reduce_to", curvature="linear",
       kernel=lambda x, like, *, batch: reduce_to(x, np.shape(x)[:batch] + np.shape(like), batch),
       bprop=_sum_to_bprop,
       reference=_sum_to_reference,
       cases=[Case(((2, 3, 4), (3, 1)), attrs={"batch": 0}, wrt=(0,)),
              Case(((2, 3, 4), (1, 4)), attrs={"batch": 1}, wrt=(0,)),
              Case(((2, 3), ()), attrs={"batch": 0}, wrt=(0,)),
              Case(((np.arange(24) % 5).astype(np.int8).reshape(2, 3, 4), (3, 1)),
                   attrs={"batch": 0})],
       doc="Sum x to the run-time shape of like (keeping x's first `batch` dimensions).")


def broadcast_to(x: Operand, shape: Sequence[int], name: Optional[str] = None) -> Node:
    """Broadcast ``x`` to ``shape`` (NumPy rules); the gradient sums back."""
    return apply("broadcast_to", [x], {"shape": shape}, name=name)


def broadcast_like(x: Operand, like: Node, name: Optional[str] = None) -> Node:
    """Broadcast ``x`` against the run-time shape of ``like``."""
    return apply("broadcast_like", [x, like], name=name)


def sum_to(x: Operand, like: Node, batch: int = 0, name: Optional[str] = None) -> Node:
    """Sum ``x`` down to the run-time shape of ``like`` (keeping ``batch`` leading dims)."""
    return apply("sum_to", [x, like], {"batch": batch}, name=name)
