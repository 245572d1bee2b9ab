"""Decompositions of symmetric matrices: ``cholesky`` and ``eigh`` (``numpy.linalg`` semantics).

Both read one triangle of their input only, as NumPy does (``cholesky`` the lower one, ``eigh``
the one ``UPLO`` names), so each is a function of the entries of that triangle and its gradient
is taken with respect to them: zero on the other triangle, and an off-diagonal entry, which
stands for two entries of the symmetric matrix, gets both of their gradients
(:func:`~graphc.ops.linalg.symmetric_part`). For a matrix built symmetric (a kernel matrix,
``x @ x.T``) the chain rule through it gives the usual derivatives, and finite differences of
any perturbation, symmetric or not, agree with the rules.

Derivative rules are graphs of registered ops:

* Cholesky (Murray 2016, "Differentiation of the Cholesky decomposition"): with ``L`` the
  factor and ``L_bar`` its cotangent, ``S_bar = L^-T Phi(L^T L_bar) L^-1`` (two triangular
  solves), where ``Phi`` keeps the lower triangle and halves the diagonal.
* eigh: with ``a = V diag(w) V^T``, ``S_bar = V (diag(w_bar) + F * (V^T V_bar)) V^T``, where
  ``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal. Repeated eigenvalues make ``F`` infinite:
  the eigenvectors are not differentiable there (only functions of the eigenvalues, or of the
  whole eigenspace, are), so the gradient through ``V`` is not finite for degenerate spectra.
"""
from __future__ import annotations

import numpy as np

from ..graph import apply
from .attrs import choice
from .elementwise import div, mul, sub
from .linalg import (_float_kernel, _spd, check_square, linalg_dtype, matmul,
                     solve_triangular, swap_last, symmetric_part, triangle)
from .registry import Case, define
from .shape import expand_dims
from .special import ones_like


# -- cholesky -----------------------------------------------------------------------------------
def _cholesky_infer(a):
    check_square(a)
    return a.shape, linalg_dtype(a)


def _cholesky_bprop(node, g, i):
    phi = triangle(matmul(swap_last(node), g), lower=True, diagonal=0.5)
    left = solve_triangular(node, phi, lower=True, trans=1)  # L^-T Phi
    s_bar = swap_last(solve_triangular(node, swap_last(left), lower=True, trans=1))  # ... L^-1
    return symmetric_part(s_bar, lower=True)


def _cholesky_reference(a):
    """The Cholesky-Banachiewicz recurrence on the lower triangle, one matrix at a time."""
    out = np.zeros(a.shape)
    for k in np.ndindex(a.shape[:-2]):
        m, n = a[k], a.shape[-1]
        L = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1):
                s = m[i, j] - L[i, :j] @ L[j, :j]
                L[i, j] = np.sqrt(s) if i == j else s / L[j, j]
        out[k] = L
    return out


def _lower_only(a):
    """An SPD matrix with junk above the diagonal (which cholesky must not read)."""
    return np.tril(a) + np.triu(np.full(a.shape, 7.0), 1)


define("cholesky", infer=_cholesky_infer, kernel=_float_kernel(np.linalg.cholesky),
       bprop=_cholesky_bprop, reference=_cholesky_reference,
       cases=[Case((_spd(3, 3),), order=3),
              Case((_lower_only(_spd(4, 4, seed=1)),)),
              Case((_spd(2, 3, 3, seed=2),))],
       doc="numpy.linalg.cholesky: the lower factor L of a = L L^T (reads the lower triangle).")


def cholesky(a, upper: bool = False, name=None):
    """The Cholesky factor of the symmetric positive definite ``a`` (``(..., M, M)``), like
    ``numpy.linalg.cholesky``: lower ``L`` with ``a = L @ L.T``, reading the lower triangle of
    ``a`` only; ``upper=True`` gives ``U = L.T`` from the upper triangle (NumPy 2's ``upper``).
    A matrix that is not positive definite fails when the graph runs."""
    if upper:
        return swap_last(apply("cholesky", [swap_last(a)], name=name))
    return apply("cholesky", [a], name=name)


# -- eigh -------------------------------------------------------------------------------------
def _eigh_infer(a, *, UPLO):
    check_square(a)
    n = a.shape[-1] if a.shape[-1] is not None else a.shape[-2]
    return a.shape[:-2] + (None if n is None else n + 1, n), linalg_dtype(a)


def _eigh_kernel(a, *, UPLO):
    w, v = np.linalg.eigh(a, UPLO=UPLO)
    dtype = np.result_type(a)
    dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    return np.concatenate([w[..., None, :], v], axis=-2).astype(dtype, copy=False)


def _eigh_bprop(node, g, i):
    w, v = node[..., 0, :], node[..., 1:, :]
    w_bar, v_bar = g[..., 0, :], g[..., 1:, :]
    ones = ones_like(v)
    off = triangle(ones, lower=True, diagonal=0.0) + triangle(ones, lower=False, diagonal=0.0)
    eye = sub(ones, off)
    gap = sub(expand_dims(w, -2), expand_dims(w, -1)) + eye  # w[j] - w[i]; 1 on the diagonal
    f = div(off, gap)
    inner = mul(expand_dims(w_bar, -2), eye) + mul(f, matmul(swap_last(v), v_bar))
    s_bar = matmul(matmul(v, inner), swap_last(v))
    return symmetric_part(s_bar, lower=node.attrs["UPLO"] == "L")


def _eigh_reference(a, *, UPLO):
    """SciPy's eigh of the symmetric matrix the triangle stands for, eigenvector signs fixed
    to the kernel's (each column's largest entry in magnitude has the same sign)."""
    import scipy.linalg
    w_ref, v_ref = np.linalg.eigh(a, UPLO=UPLO)
    out = np.zeros(a.shape[:-2] + (a.shape[-1] + 1, a.shape[-1]))
    for k in np.ndindex(a.shape[:-2]):
        t = np.tril(a[k]) if UPLO == "L" else np.triu(a[k])
        s = t + t.T - np.diag(np.diag(t))
        w, v = scipy.linalg.eigh(s, driver="ev")
        pivot = np.argmax(np.abs(v_ref[k]), axis=0)
        cols = np.arange(v.shape[1])
        v = v * np.sign(v[pivot, cols] * v_ref[k][pivot, cols])
        out[k] = np.concatenate([w[None, :], v])
    return out


define("eigh", infer=_eigh_infer, kernel=_eigh_kernel, attrs={"UPLO": choice("L", "U")},
       bprop=_eigh_bprop, reference=_eigh_reference,
       cases=[Case(((3, 3),), attrs={"UPLO": "L"}),
              Case(((2, 3, 3),), attrs={"UPLO": "U"})],
       doc="numpy.linalg.eigh, packed: [..., 0, :] eigenvalues (ascending), [..., 1:, :] "
           "the eigenvectors (columns).")


def eigh(a, UPLO: str = "L", name=None):
    """``(w, v)``: the eigenvalues (ascending) and eigenvectors (the columns of ``v``) of the
    symmetric ``a`` (``(..., M, M)``), like ``numpy.linalg.eigh``, reading the lower
    (``UPLO="L"``) or upper triangle. Both are read from one ``eigh`` node (one
    decomposition) whose last-but-one axis packs them.

    The gradient through ``v`` divides by the eigenvalue gaps: it is not finite when
    eigenvalues repeat (eigenvectors of a repeated eigenvalue are not unique). Eigenvector
    signs are LAPACK's.
    """
    packed = apply("eigh", [a], {"UPLO": UPLO}, name=name)
    return packed[..., 0, :], packed[..., 1:, :]


def eigvalsh(a, UPLO: str = "L", name=None):
    """The eigenvalues (ascending) of the symmetric ``a``, like ``numpy.linalg.eigvalsh``."""
    return eigh(a, UPLO, name=name)[0]
