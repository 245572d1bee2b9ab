"""Linear algebra: ``matmul`` with full ``numpy.matmul`` semantics.

Vectors on either side, matrices, and stacks of matrices whose batch dimensions broadcast.
The rule promotes a 1-D operand to a matrix (``a`` to a row ``(1, k)``, ``b`` to a column
``(k, 1)``), applies the matrix rule, and removes the promoted axis again; every axis it names
is negative, so a cotangent may carry leading batch dimensions.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import apply
from ..shapes import broadcast_shapes, fmt
from .broadcast import sum_to
from .registry import Case, define
from .shape import expand_dims, squeeze, transpose


def _matmul_infer(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"cannot multiply {fmt(a.shape)} by {fmt(b.shape)}: matmul needs "
                         "operands of at least one dimension (use mul for scalars)")
    for x in (a, b):
        if x.dtype.kind not in "biufc":
            raise DTypeError(f"matmul does not take dtype {x.dtype}")
    a2 = (1,) + a.shape if a.ndim == 1 else a.shape
    b2 = b.shape + (1,) if b.ndim == 1 else b.shape
    k1, k2 = a2[-1], b2[-2]
    if k1 is not None and k2 is not None and k1 != k2:
        raise ShapeError(f"cannot multiply {fmt(a.shape)} by {fmt(b.shape)}: the contracted "
                         f"sizes {k1} and {k2} differ")
    try:
        batch = broadcast_shapes(a2[:-2], b2[:-2])
    except ShapeError:
        raise ShapeError(f"cannot multiply {fmt(a.shape)} by {fmt(b.shape)}: the batch "
                         f"dimensions {fmt(a2[:-2])} and {fmt(b2[:-2])} do not broadcast") from None
    shape = batch + a2[-2:-1] * (a.ndim > 1) + b2[-1:] * (b.ndim > 1)
    dtype = np.matmul(np.zeros((1, 1), a.dtype), np.zeros((1, 1), b.dtype)).dtype
    return shape, dtype


def _swap_last(x):
    """``x`` with its last two axes swapped (a view; batch axes stay in place)."""
    return transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _hidden_broadcast(x, other) -> bool:
    """Whether an unknown batch size of ``x`` may be broadcast against ``other`` at run time,
    which the gradient pass cannot see from the static shapes."""
    xb, ob = x.shape[:max(x.ndim - 2, 0)], other.shape[:max(other.ndim - 2, 0)]
    return any(xb[-k] is None and ob[-k] != 1 for k in range(1, min(len(xb), len(ob)) + 1))


def _matmul_bprop(node, g, i):
    a, b = node.inputs
    batch = g.ndim - node.ndim
    # Matrix times vector: one matrix product for any batch of cotangents (..., m) or (..., n).
    if i == 1 and a.ndim == 2 and b.ndim == 1:
        return matmul(g, a)
    if i == 0 and a.ndim == 1 and b.ndim == 2:
        return matmul(g, _swap_last(b))
    # The cotangent of the promoted product (..., m or 1, n or 1).
    promoted = (-2,) * (a.ndim == 1) + (-1,) * (b.ndim == 1)
    if promoted:
        g = expand_dims(g, promoted)
    if i == 0:  # d/da = g @ b^T, with b^T of shape (..., n, k)
        part = matmul(g, _swap_last(b) if b.ndim > 1 else expand_dims(b, -2))
        if a.ndim == 1:
            part = squeeze(part, -2)
    else:  # d/db = a^T @ g, with a^T of shape (..., k, m)
        part = matmul(_swap_last(a) if a.ndim > 1 else expand_dims(a, -1), g)
        if b.ndim == 1:
            part = squeeze(part, -1)
    if _hidden_broadcast(node.inputs[i], node.inputs[1 - i]):
        part = sum_to(part, node.inputs[i], batch)
    return part


def _matmul_reference(a, b):
    """Sum of products over the contracted axis, written out with broadcasting (no matmul)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = np.sum(a2[..., :, :, None] * b2[..., None, :, :], axis=-2)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _matmul_jvp(node, tangents):
    a, b = node.inputs
    parts = []
    for i, t in enumerate(tangents):
        if t is None:
            continue
        batch = t.ndim - node.inputs[i].ndim
        if batch and (a.ndim < 2 or b.ndim < 2):  # a promoted vector would take the batch
            from ..forward import transposed_bprop
            parts.append(transposed_bprop(node, i, t))
        else:  # the product rule; ones after the batch keep it in front of stack dimensions
            missing = node.inputs[1 - i].ndim - node.inputs[i].ndim
            if batch and missing > 0:
                t = expand_dims(t, tuple(range(batch, batch + missing)))
            parts.append(matmul(t, b) if i == 0 else matmul(a, t))
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


define("matmul", infer=_matmul_infer, kernel=np.matmul, bprop=_matmul_bprop, jvp=_matmul_jvp,
       structure="matmul", curvature="bilinear",
       reference=_matmul_reference,
       cases=[Case(((3, 4), (4, 2)), order=3),
              Case(((4,), (4, 3))),  # vector @ matrix
              Case(((3, 4), (4,))),  # matrix @ vector
              Case(((4,), (4,))),  # inner product
              Case(((2, 3, 4), (4, 2))),  # stack @ matrix
              Case(((3,), (2, 3, 2))),  # vector @ stack
              Case(((2, 2, 3), (3,))),  # stack @ vector
              Case(((2, 1, 2, 3), (3, 3, 2))),  # batch dimensions broadcast
              Case(((1, 3), (3, 1)))],
       doc="numpy.matmul: matrix product of the last two axes, batch axes broadcast.")


def matmul(a, b, name=None):
    """Matrix product ``a @ b`` with ``numpy.matmul`` semantics.

    A 1-D ``a`` is a row vector and a 1-D ``b`` a column vector (the promoted axis is removed
    from the result); dimensions before the last two are batch dimensions and broadcast.
    Impossible shapes, such as ``(None, 3) @ (4, 2)``, raise :class:`ShapeError` when the node
    is built.
    """
    return apply("matmul", [a, b], name=name)
