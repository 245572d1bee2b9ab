"""The ``contract`` pass: ``x + a * y`` on large float arrays becomes one BLAS ``axpy``.

A weight decay's gradient is ``X.T @ d + 2c W``: NumPy computes ``2c W`` into one array and
adds it to the product in a second pass, two trips through memory (at 784x256 float32 the
two take 37 us, the axpy 23; in float64 69 and 35). A contracted term makes one trip: BLAS's
``?axpy`` (SciPy's) adds ``a * y`` into ``x``'s buffer when ``x`` dies there (else into a
copy of ``x``).

The one change of rounding among the default passes: where the BLAS kernel uses fused
multiply-adds (OpenBLAS on every x86-64 CPU since Haswell, and on ARM64) each element is
``x + a*y`` rounded once, within half an ulp of the exact value; ``g.run`` rounds ``a*y``
first. Where ``a*y`` overflows but ``x + a*y`` does not, the contracted value is finite. The
pass is left out with ``check_numerics=True`` (``a*y`` is then a value of its own, checked),
and by giving ``passes`` without it.

A term is contracted when

* it is ``x + a*y``, ``a*y + x`` or ``x - a*y`` (``y*a`` alike), the product read by
  nothing else, and ``x`` a new array (a product, a sum, an elementwise result) that nothing
  else reads either: it dies there, so its buffer takes the sum (copying an ``x`` that lives
  on would cost the pass the contraction saves),
* ``x``, ``y`` and the result are float32 or float64 arrays of one dtype and one shape, of at
  least :data:`MIN_SIZE` elements (known sizes, or the very same terms),
* and ``a`` is 0-d: a weak constant (a Python number, converted to the arrays' dtype as NumPy
  does) or a float value of any precision that the product does not widen (a float32
  learning rate with float64 weights is exact in float64),
* and, on arrays large enough for the ``fuse`` pass (:data:`graphc.compiler.fusion
  .MIN_BYTES`), neither ``x`` nor ``y`` is an elementwise term that pass would take along
  (one blocked pass over the whole chain reads less memory than a pass plus the axpy).

The contracted op exists only inside compiled programs (:data:`graphc.compiler.ir
.COMPILER_OPS`), like fused terms.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Optional

import numpy as np
from scipy.linalg import blas

from ..ops.registry import Op
from . import fusion
from .ir import COMPILER_OPS, Program, Term
from .schedule import is_fresh

#: The op of a contracted term.
SCALED_ADD = "scaled add"

#: The fewest elements contracted. Measured, float32 and float64 alike: at 4096 elements
#: (64x64) the two ufuncs take 1.7-2.3 us and the axpy with its Python around it about as
#: long; from 8192 the axpy is ahead, 2.3x at 32768 (256x128).
MIN_SIZE = 8192

_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}


def _product(p: Term, dtype: np.dtype) -> Optional[tuple]:
    """``(a, y)`` when ``p`` is ``a * y`` or ``y * a`` with a contractible 0-d ``a``."""
    if p.op != "mul" or p.dtype != dtype:
        return None
    for a, v in (p.inputs, p.inputs[::-1]):
        if a.shape == () and v.dtype == dtype and v.shape == p.shape and (
                a.dtype.kind in "iuf" if a.is_weak() else a.dtype.kind == "f"):
            return a, v
    return None


def _contraction(t: Term, readers: Counter) -> Optional[tuple]:
    """``(x, a, y, negate, product)`` for a contractible ``t`` (see the module)."""
    if t.op not in ("add", "sub") or t.dtype not in _AXPY or None in t.shape \
            or math.prod(t.shape) < MIN_SIZE:
        return None
    fusing = math.prod(t.shape) * t.dtype.itemsize >= fusion.MIN_BYTES
    pairs = [t.inputs] if t.op == "sub" else [t.inputs, t.inputs[::-1]]
    for x, p in pairs:
        if readers[id(p)] != 1 or readers[id(x)] != 1 or not is_fresh(x):
            continue  # x must die here, in a buffer of its own: else a copy eats the gain
        found = _product(p, t.dtype)
        if found is None or x.dtype != t.dtype or x.shape != t.shape \
                or found[1].shape != t.shape:
            continue
        if fusing and (fusion.fusable(x) or fusion.fusable(found[1])):
            continue  # one fused pass over the whole chain reads less memory
        return x, found[0], found[1], t.op == "sub", p
    return None


def contract(program: Program, fired: Counter) -> Program:
    """Replace every contractible ``x + a*y`` by one scaled-add term (see the module)."""
    readers: Counter = Counter()
    for term in program.terms:
        for x in set(map(id, term.inputs)):
            readers[x] += 1
    for root in program.roots:
        readers[id(root)] += 2  # a value the caller sees is never folded away
    found = {}
    for term in program.terms:
        c = _contraction(term, readers) if term.op in ("add", "sub") else None
        if c is not None:
            found[id(term)] = c
    if not found:
        return program
    products = {id(c[4]) for c in found.values()}
    mapping: dict = {}
    terms = []
    for old in program.terms:
        if id(old) in products:
            continue  # computed inside the scaled add
        c = found.get(id(old))
        if c is not None:
            x, a, y, negate, _ = c
            new = Term(SCALED_ADD, (mapping.get(x, x), mapping.get(a, a), mapping.get(y, y)),
                       {"negate": negate}, old.shape, old.dtype, old.origin)
            fired["contract"] += 1
        elif old.inputs and any(mapping.get(x, x) is not x for x in old.inputs):
            new = Term(old.op, tuple(mapping.get(x, x) for x in old.inputs), old.attrs,
                       old.shape, old.dtype, old.origin)
        else:
            new = old
        mapping[old] = new
        terms.append(new)
    return program.replace(terms, mapping)


def scaled_add(x, a, y, *, negate: bool, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``x + a*y`` (``x - a*y`` with ``negate``) by BLAS axpy, written into ``out`` (any
    C-contiguous array of the result's shape and dtype: ``x`` itself, when it dies here)."""
    dtype = x.dtype
    alpha = -float(a) if negate else float(a)
    if out is None or not out.flags.c_contiguous:
        target = np.array(x, dtype, order="C")
    else:
        if out is not x and np.may_share_memory(out, y):
            y = np.array(y)  # (out may be y's own dying buffer: copying x would clobber it)
        target = out
        if out is not x:
            np.copyto(out, x)
    if target.size:
        # a C-ordered y reshapes to a view; a transposed one is copied once, in C order
        _AXPY[dtype](np.ravel(y), target.reshape(-1), a=alpha)
    if out is not None and target is not out:
        np.copyto(out, target)
        return out
    return target


def _infer(x, a, y, *, negate):
    return x.shape, x.dtype


COMPILER_OPS[SCALED_ADD] = Op(
    SCALED_ADD, infer=_infer, kernel=scaled_add, bprop=None, elementwise=True, inplace=True,
    doc="x + a*y (x - a*y) rounded once, by BLAS axpy (compiled programs only).",
    arity=(3, 3), structure="elementwise")
