"""Linear algebra: ``matmul`` and the solvers (``solve``, ``solve_triangular``, ``cho_solve``,
``inv``, ``det``, ``slogdet``), with ``numpy.linalg``'s and ``scipy.linalg``'s semantics.

Every op works on the last two axes and is batched over the leading ones, which broadcast.
``matmul`` promotes a 1-D operand to a matrix (``a`` to a row ``(1, k)``, ``b`` to a column
``(k, 1)``), applies the matrix rule, and removes the promoted axis again. The solvers take a
right-hand side ``b`` of shape ``(..., M)`` only when ``b`` is 1-D (NumPy 2's rule), else
``(..., M, K)``. Every axis a rule names is negative, so a cotangent may carry leading batch
dimensions; derivative rules are built from these same ops (``d solve`` is another ``solve``),
so derivatives of any order work.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

import scipy.linalg
import scipy.linalg.lapack

from ..errors import DTypeError, ShapeError
from ..graph import Node, Operand, apply
from ..shapes import broadcast_shapes, fmt, same_dims
from .attrs import choice, flag
from .broadcast import sum_to
from .elementwise import mul, neg
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


def matmul(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """Matrix product ``a @ b`` with ``numpy.matmul`` semantics.

    A 1-D ``a`` is a row vector and a 1-D ``b`` a column vector (the promoted axis is removed
    from the result); dimensions before the last two are batch dimensions and broadcast.
    Impossible shapes, such as ``(None, 3) @ (4, 2)``, raise :class:`ShapeError` when the node
    is built.
    """
    return apply("matmul", [a, b], name=name)


# -- shared rules of the matrix functions -------------------------------------------------------
def linalg_dtype(*nodes) -> np.dtype:
    """NumPy's linalg dtype: float32 stays, other numbers become float64 (float16 and complex
    are not supported: NumPy has no float16 kernels, and graphc's derivative rules are real)."""
    for x in nodes:
        if x.dtype.kind not in "biuf" or x.dtype == np.float16:
            raise DTypeError(f"linear algebra takes real float32/float64 (or integer) "
                             f"matrices, not {x.dtype}")
    dtype = np.result_type(*(x.dtype for x in nodes))
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def check_square(a, what: str = "a") -> None:
    """ShapeError unless ``a`` is a (stack of) square matrices."""
    if a.ndim < 2 or not same_dims(a.shape[-1], a.shape[-2]):
        raise ShapeError(f"{what} must be a square matrix or a stack of them (..., M, M), not "
                         f"{fmt(a.shape)}")


def swap_last(x):
    """``x`` with its last two axes swapped (public helper of the linalg families)."""
    return _swap_last(x)


def _solve_infer(a, b, what="solve"):
    check_square(a)
    if b.ndim == 0:
        raise ShapeError("b must be a vector (M,) or a (stack of) matrices (..., M, K)")
    dtype = linalg_dtype(a, b)
    m = a.shape[-1] if a.shape[-1] is not None else a.shape[-2]
    if b.ndim == 1:  # one right-hand side, the same for every matrix of the stack
        if not same_dims(m, b.shape[0]):
            raise ShapeError(f"{what}: a is {fmt(a.shape)} but b has {b.shape[0]} rows")
        return a.shape[:-1], dtype
    if not same_dims(m, b.shape[-2]):
        raise ShapeError(f"{what}: a is {fmt(a.shape)} but b {fmt(b.shape)} has "
                         f"{b.shape[-2]} rows")
    try:
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ShapeError:
        raise ShapeError(f"{what}: the batch dimensions {fmt(a.shape[:-2])} and "
                         f"{fmt(b.shape[:-2])} do not broadcast") from None
    return batch + (m if m is not None else b.shape[-2], b.shape[-1]), dtype


def _as_columns(v, node):
    """A vector right-hand side (and its cotangents, with any batch) as one-column matrices."""
    return expand_dims(v, -1) if node.inputs[1].ndim == 1 else v


def _solver_bprop(node, g, i, solve_transposed, masked=lambda x: x):
    """The rule of ``x = op(a)^-1 b``: ``b_bar = op(a)^-T g`` and ``a_bar = -b_bar x^T`` (or
    its transpose when ``op`` transposes), masked to the entries of ``a`` that are read."""
    a, b = node.inputs
    b_bar = solve_transposed(_as_columns(g, node))
    if i == 1:
        part = squeeze(b_bar, -1) if b.ndim == 1 else b_bar
    else:
        outer_ = neg(matmul(b_bar, _swap_last(_as_columns(node, node))))
        part = masked(outer_)
    if _hidden_broadcast(node.inputs[i], node.inputs[1 - i]):
        part = sum_to(part, node.inputs[i], g.ndim - node.ndim)
    return part


def _float_kernel(fn):
    """``fn``'s result in NumPy's linalg dtype (integer matrices give float64)."""
    def kernel(*arrays, **attrs):
        out = fn(*arrays, **attrs)
        dtype = np.result_type(*arrays)
        dtype = dtype if dtype in (np.float32, np.float64) else np.float64
        return np.asarray(out).astype(dtype, copy=False)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


def _well_conditioned(*shape, seed=0):
    """A fixed, well-conditioned matrix (stack) for test cases: random plus a strong diagonal."""
    rng = np.random.default_rng(seed)
    n = shape[-1]
    return rng.uniform(-1, 1, shape) + 3 * np.eye(n)


def _spd(*shape, seed=0):
    """A fixed symmetric positive definite matrix (stack) for test cases."""
    x = np.random.default_rng(seed).uniform(-1, 1, shape)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


# -- solve -------------------------------------------------------------------------------------
def _solve_bprop(node, g, i):
    a = node.inputs[0]
    return _solver_bprop(node, g, i, lambda rhs: solve(_swap_last(a), rhs))


def _solve_reference(a, b):
    """Cramer-free check: the LU solve of SciPy, one matrix at a time."""
    vector = b.ndim == 1
    bb = b[:, None] if vector else b
    batch = np.broadcast_shapes(a.shape[:-2], bb.shape[:-2])
    a_, b_ = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(bb, batch + bb.shape[-2:])
    out = np.stack([scipy.linalg.solve(a_[k], b_[k]) for k in np.ndindex(batch)]).reshape(
        batch + bb.shape[-2:]) if batch else scipy.linalg.solve(a_, b_)
    return out[..., 0] if vector else out


define("solve", infer=_solve_infer, kernel=_float_kernel(np.linalg.solve), bprop=_solve_bprop,
       reference=_solve_reference,
       cases=[Case((_well_conditioned(3, 3), (3, 2)), order=3),
              Case((_well_conditioned(3, 3, seed=1), (3,))),
              Case((_well_conditioned(2, 3, 3, seed=2), (3,))),  # one b for a stack
              Case((_well_conditioned(2, 3, 3, seed=3), (3, 1))),  # b broadcast over the stack
              Case((_well_conditioned(3, 3, seed=4), (2, 3, 2)))],  # a broadcast over b's stack
       doc="numpy.linalg.solve: x with a @ x = b (LU with partial pivoting).")


def solve(a, b, name=None):
    """The solution ``x`` of ``a @ x = b``, like ``numpy.linalg.solve``.

    ``a`` is ``(..., M, M)``; ``b`` is ``(M,)`` (one right-hand side) or ``(..., M, K)``;
    batch dimensions broadcast. The gradient is another solve with ``a``'s transpose.
    """
    return apply("solve", [a, b], name=name)


# -- solve_triangular ----------------------------------------------------------------------------
_TRANS = {0: 0, 1: 1, 2: 1, "N": 0, "T": 1, "C": 1}  # real matrices: "C" is "T"


def _solve_triangular_infer(a, b, *, lower, trans, unit_diagonal):
    shape, dtype = _solve_infer(a, b, "solve_triangular")
    return shape, dtype, {"lower": lower, "trans": trans, "unit_diagonal": unit_diagonal}


_TRTRS = {np.dtype(np.float32): scipy.linalg.lapack.strtrs,
          np.dtype(np.float64): scipy.linalg.lapack.dtrtrs}


def _trtrs(a, b, lower, trans, unit_diagonal):
    """LAPACK's triangular solve of one matrix (SciPy's wrapper costs ~20x more at n = 4)."""
    if a.flags.c_contiguous and not a.flags.f_contiguous:
        # a.T is in Fortran order: the same system, with the other triangle and flag
        a, lower, trans = a.T, not lower, 1 - trans
    x, info = _TRTRS[a.dtype](a, b, lower=int(lower), trans=trans, unitdiag=int(unit_diagonal))
    if info > 0:
        raise np.linalg.LinAlgError(f"singular triangular matrix: diagonal entry {info} is zero")
    if info < 0:  # pragma: no cover - the arguments are checked by the rule
        raise ValueError(f"LAPACK trtrs: illegal value in argument {-info}")
    return x


def _solve_triangular_kernel(a, b, *, lower, trans, unit_diagonal):
    """LAPACK's triangular solve (trtrs), batched: one call for all right-hand sides when
    ``a`` is a single matrix, else one per matrix of the broadcast stack."""
    dtype = np.result_type(a, b)
    dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    vector = b.ndim == 1
    if a.shape[-1] != a.shape[-2] or b.shape[-2 if b.ndim > 1 else 0] != a.shape[-1]:
        # (sizes the rule could not check; LAPACK would solve the first rows and keep the rest)
        raise ValueError(f"solve_triangular needs a square a (..., M, M) and b with M rows, "
                         f"not a of shape {a.shape} and b of shape {b.shape}")
    if vector:
        b = b[:, None]
    if a.ndim == 2 and b.ndim == 2:
        x = _trtrs(a, b, lower, trans, unit_diagonal)
    elif a.ndim == 2:  # every right-hand side as a column of one matrix
        m, k = b.shape[-2:]
        cols = np.moveaxis(b, -2, 0).reshape(m, -1)
        x = _trtrs(a, cols, lower, trans, unit_diagonal)
        x = np.moveaxis(x.reshape((m,) + b.shape[:-2] + (k,)), 0, -2)
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:])
        x = np.empty(b.shape, dtype)
        for k in np.ndindex(batch):
            x[k] = _trtrs(a[k], b[k], lower, trans, unit_diagonal)
    x = np.asarray(x, dtype)
    return x[..., 0] if vector else x


def _solve_triangular_bprop(node, g, i):
    a = node.inputs[0]
    lower, trans, unit = (node.attrs[k] for k in ("lower", "trans", "unit_diagonal"))
    return _solver_bprop(
        node, g, i,
        lambda rhs: solve_triangular(a, rhs, lower=lower, trans=1 - trans, unit_diagonal=unit),
        lambda a_bar: triangle(_swap_last(a_bar) if trans else a_bar, lower=lower,
                               diagonal=0.0 if unit else 1.0))


def _solve_triangular_reference(a, b, *, lower, trans, unit_diagonal):
    """The general solve of the triangle that is read (NumPy's LU on the masked matrix)."""
    t = np.tril(a) if lower else np.triu(a)
    if unit_diagonal:
        t = t - np.eye(a.shape[-1]) * np.diagonal(a, 0, -2, -1)[..., None, :] + np.eye(a.shape[-1])
    if trans:
        t = np.swapaxes(t, -1, -2)
    return _solve_reference(t, b)


def _triangular_cases():
    tri = [dict(lower=lower, trans=trans, unit_diagonal=False)
           for lower in (True, False) for trans in (0, 1)]
    return ([Case((_well_conditioned(3, 3, seed=k), (3, 2)), attrs=attrs, order=3 if k == 0 else 2)
             for k, attrs in enumerate(tri)]
            + [Case((_well_conditioned(3, 3, seed=5), (3,)),
                    attrs=dict(lower=True, trans=0, unit_diagonal=True)),
               Case((_well_conditioned(2, 3, 3, seed=6), (3, 1)),
                    attrs=dict(lower=False, trans=1, unit_diagonal=False)),
               Case((_well_conditioned(3, 3, seed=7), (2, 3, 2)),
                    attrs=dict(lower=True, trans=1, unit_diagonal=False))])


define("solve_triangular", infer=_solve_triangular_infer, kernel=_solve_triangular_kernel,
       attrs={"lower": flag, "trans": choice(0, 1), "unit_diagonal": flag},
       bprop=_solve_triangular_bprop, reference=_solve_triangular_reference,
       cases=_triangular_cases(),
       doc="scipy.linalg.solve_triangular: x with op(a) @ x = b, reading one triangle of a.")


def solve_triangular(a, b, lower: bool = False, trans=0, unit_diagonal: bool = False,
                     name=None):
    """The solution ``x`` of ``op(a) @ x = b`` for triangular ``a``, like
    ``scipy.linalg.solve_triangular``.

    Only the lower (``lower=True``) or upper triangle of ``a`` is read (and differentiated);
    ``trans`` is ``0``/``"N"`` (``a``), ``1``/``"T"`` or ``2``/``"C"`` (``a.T``, the same for
    real matrices); ``unit_diagonal`` takes the diagonal as ones without reading it. Shapes as
    in :func:`solve`: ``b`` is ``(M,)`` or ``(..., M, K)``, batch dimensions broadcast.
    """
    if trans not in _TRANS:
        raise ShapeError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', not "
                         f"{trans!r}")
    return apply("solve_triangular", [a, b], {"lower": lower, "trans": _TRANS[trans],
                                              "unit_diagonal": unit_diagonal}, name=name)


def cho_solve(c_and_lower, b, name=None):
    """The solution of ``a @ x = b`` from the Cholesky factor of ``a``, like
    ``scipy.linalg.cho_solve((c, lower), b)``: two triangular solves."""
    c, lower = c_and_lower
    y = solve_triangular(c, b, lower=lower, trans=0 if lower else 1)
    return solve_triangular(c, y, lower=lower, trans=1 if lower else 0, name=name)


# -- triangle: the masks of the triangular and symmetric rules -----------------------------------
def _triangle_infer(x, *, lower, diagonal):
    if x.ndim < 2:
        raise ShapeError(f"triangle needs a matrix (..., M, N), not {fmt(x.shape)}")
    return x.shape, x.dtype


def _triangle_kernel(x, *, lower, diagonal):
    x = np.asarray(x)
    keep = 0 if diagonal == 1.0 else (-1 if lower else 1)
    out = np.tril(x, keep) if lower else np.triu(x, keep)
    if diagonal == 0.5:
        k = np.arange(min(x.shape[-2:]))
        out[..., k, k] = x[..., k, k] * x.dtype.type(0.5)
    return out


def _triangle_reference(x, *, lower, diagonal):
    i, j = np.indices(x.shape[-2:])
    weight = np.where(i == j, diagonal, np.where(i > j, 1.0, 0.0) if lower
                      else np.where(i < j, 1.0, 0.0))
    return x * weight


define("triangle", infer=_triangle_infer, kernel=_triangle_kernel,
       attrs={"lower": flag, "diagonal": choice(0.0, 0.5, 1.0)},
       bprop=lambda node, g, i: triangle(g, **node.attrs),  # a mask: its own adjoint
       reference=_triangle_reference,
       structure="elementwise", curvature="linear",  # a fixed mask times each element
       cases=[Case(((3, 3),), attrs={"lower": True, "diagonal": 0.5}, order=3),
              Case(((2, 3, 4),), attrs={"lower": False, "diagonal": 0.0}),
              Case(((4, 3),), attrs={"lower": True, "diagonal": 1.0})],
       doc="The lower (upper) triangle of the last two axes, the diagonal scaled by `diagonal`.")


def triangle(x, lower: bool = True, diagonal: float = 1.0, name=None):
    """The lower (or upper) triangle of ``x``'s last two axes, its diagonal times ``diagonal``
    (0, 1/2 or 1): ``tril``/``triu`` and Murray's ``Phi`` of the Cholesky rule (internal)."""
    return apply("triangle", [x], {"lower": lower, "diagonal": float(diagonal)}, name=name)


def symmetric_part(s_bar, lower: bool):
    """The gradient with respect to the entries of one triangle of a matrix that a function
    reads as symmetric (NumPy's cholesky and eigh), from ``s_bar``, its gradient as a full
    matrix: off-diagonal entries stand for two, ``Phi(s_bar + s_bar^T)``."""
    return triangle(s_bar + _swap_last(s_bar), lower=lower, diagonal=0.5)


# -- inv, det, slogdet ---------------------------------------------------------------------------
def _matrix_infer(a):
    check_square(a)
    return a.shape, linalg_dtype(a)


def _inv_bprop(node, g, i):
    t = _swap_last(node)  # d inv(a) = -inv(a) da inv(a)
    return neg(matmul(matmul(t, g), t))


define("inv", infer=_matrix_infer, kernel=_float_kernel(np.linalg.inv), bprop=_inv_bprop,
       reference=lambda a: _solve_reference(a, np.broadcast_to(np.eye(a.shape[-1]), a.shape)),
       cases=[Case((_well_conditioned(3, 3),), order=3),
              Case((_well_conditioned(2, 3, 3, seed=1),))],
       doc="numpy.linalg.inv: the inverse of each matrix of the stack.")


def inv(a, name=None):
    """The inverse of ``a`` (``(..., M, M)``), like ``numpy.linalg.inv``."""
    return apply("inv", [a], name=name)


def _det_infer(a):
    check_square(a)
    return a.shape[:-2], linalg_dtype(a)


def _det_bprop(node, g, i):
    # d det(a) = det(a) tr(inv(a) da): the gradient is det(a) inv(a)^T.
    return mul(expand_dims(mul(g, node), (-2, -1)), _swap_last(inv(node.inputs[0])))


def _det_reference(a):
    """Leibniz' formula over the permutations (the matrices of the cases are small)."""
    from itertools import permutations
    n = a.shape[-1]
    total = np.zeros(a.shape[:-2])
    for p in permutations(range(n)):
        inversions = sum(p[j] > p[k] for j in range(n) for k in range(j + 1, n))
        total = total + (-1) ** inversions * np.prod([a[..., k, p[k]] for k in range(n)], axis=0)
    return total


define("det", infer=_det_infer, kernel=_float_kernel(np.linalg.det), bprop=_det_bprop,
       reference=_det_reference,
       cases=[Case((_well_conditioned(3, 3),), order=3), Case(((2, 2, 2),), low=-1, high=1)],
       doc="numpy.linalg.det: the determinant of each matrix of the stack (LU).")


def det(a, name=None):
    """The determinant of ``a`` (``(..., M, M)``), like ``numpy.linalg.det``."""
    return apply("det", [a], name=name)


def _slogdet_infer(a):
    check_square(a)
    return a.shape[:-2] + (2,), linalg_dtype(a)


def _slogdet_kernel(a):
    sign, logabsdet = np.linalg.slogdet(a)
    dtype = np.result_type(a)
    dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    return np.stack([sign, logabsdet], axis=-1).astype(dtype, copy=False)


def _slogdet_bprop(node, g, i):
    # The sign is piecewise constant; d log|det a| = tr(inv(a) da): the gradient inv(a)^T.
    return mul(expand_dims(g[..., 1], (-2, -1)), _swap_last(inv(node.inputs[0])))


def _slogdet_reference(a):
    d = _det_reference(a)
    return np.stack([np.sign(d), np.log(np.abs(d))], axis=-1)


define("slogdet", infer=_slogdet_infer, kernel=_slogdet_kernel, bprop=_slogdet_bprop,
       reference=_slogdet_reference,
       cases=[Case((_well_conditioned(3, 3),), order=3),
              Case((-_well_conditioned(2, 3, 3, seed=1),))],
       doc="numpy.linalg.slogdet, packed: [..., 0] is the sign, [..., 1] log|det|.")


def slogdet(a, name=None):
    """``(sign, logabsdet)`` of ``a``'s determinant, like ``numpy.linalg.slogdet``: two nodes
    of shape ``a.shape[:-2]``, read from one ``slogdet`` node (one LU factorisation) whose last
    axis packs them. ``logabsdet`` stays finite where the determinant under- or overflows; its
    gradient is ``inv(a).T`` (the sign has none)."""
    packed = apply("slogdet", [a], name=name)
    return packed[..., 0], packed[..., 1]
