"""``einsum`` and the products written with it: ``tensordot``, ``dot``, ``inner``, ``outer``.

The einsum node stores its subscripts in a canonical form: explicit output, every ``...``
replaced by letters of its own (right-aligned, as NumPy broadcasts them), no spaces. A
canonical string is its own canonical form, so a graph read from JSON rebuilds the same node.
The derivative with respect to operand ``k`` is another einsum: the cotangent (its batch
dimensions under fresh letters) with the other operands, producing operand ``k``'s letters.
Letters only operand ``k`` has (summed away in the forward) are broadcast back; a letter
repeated in operand ``k`` (``"ii->i"``, a diagonal) is produced once and put back on the
diagonal by ``diagonal_grad``. Size-1 dimensions broadcast against their letter, as in NumPy.
"""
from __future__ import annotations

from typing import Any, Optional

import math
import string
from functools import lru_cache

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Node, Operand, apply, as_node, graph_of
from .attrs import anything_of
from .broadcast import broadcast_like, sum_to
from .elementwise import mul
from .linalg import matmul
from .linalg_diag import diagonal, diagonal_grad
from .registry import Case, define
from .shape import expand_dims, reshape

LETTERS = string.ascii_letters


def parse(subscripts: str, ndims: list) -> tuple:
    """``(terms, output)`` of ``subscripts`` for operands of these ``ndims``: lists of letters,
    ``...`` expanded into fresh letters, the output made explicit (NumPy's implicit rule:
    ``...`` first, then the letters that occur once, in sorted order)."""
    if not isinstance(subscripts, str):
        raise ShapeError(f"einsum subscripts must be a string, not {subscripts!r}")
    text = subscripts.replace(" ", "")
    if text.count("->") > 1:
        raise ShapeError(f"subscripts {subscripts!r} have more than one '->'")
    lhs, arrow, out = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"subscripts {subscripts!r} name {len(terms)} operands, but "
                         f"{len(ndims)} are given")
    for term in terms + [out]:
        rest = term.replace("...", "", 1)
        bad = set(rest) - set(LETTERS)
        if bad:
            raise ShapeError(f"subscripts {subscripts!r}: invalid character(s) "
                             f"{''.join(sorted(bad))!r} (letters and one '...' per operand)")
    used = set(text) & set(LETTERS)
    if not arrow:
        counts = {c: lhs.count(c) for c in used}
        out = ("..." if "..." in lhs else "") + "".join(sorted(c for c in used if counts[c] == 1))
    else:
        missing = set(out) & set(LETTERS) - set(lhs)
        if missing:
            raise ShapeError(f"output letters {''.join(sorted(missing))!r} appear in no "
                             "operand")
        if len(set(out.replace("...", ""))) != len(out.replace("...", "")):
            raise ShapeError(f"output {out!r} repeats a letter")
    spans = []
    for k, (term, ndim) in enumerate(zip(terms, ndims)):
        named = len(term.replace("...", ""))
        span = ndim - named
        if span < 0 or (span > 0 and "..." not in term):
            raise ShapeError(f"operand {k} has {ndim} dimensions but its subscripts "
                             f"{term!r} name {named}")
        spans.append(span if "..." in term else 0)
    fresh = [c for c in LETTERS if c not in used]
    width = max(spans, default=0)
    if width > len(fresh):
        raise ShapeError("too many dimensions for the 52 letters")
    ell = fresh[:width]
    terms = [list(t.replace("...", "".join(ell[width - s:]))) for t, s in zip(terms, spans)]
    return terms, list(out.replace("...", "".join(ell)))


def _join(terms, out) -> str:
    return ",".join("".join(t) for t in terms) + "->" + "".join(out)


def _label_sizes(terms, shapes) -> dict:
    """Each letter's size after broadcasting (None when unknown); ShapeError if they clash."""
    sizes: dict = {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        seen: dict = {}
        for c, d in zip(term, shape):
            if c in seen and not (seen[c] is None or d is None or seen[c] == d):
                raise ShapeError(f"operand {k} repeats {c!r} over sizes {seen[c]} and "
                                 f"{d}")
            seen[c] = d if d is not None else seen.get(c)
        for c, d in seen.items():
            have = sizes.get(c, 1)
            if d is None:
                sizes[c] = None if have in (1, None) else have
            elif d != 1:
                if have not in (1, None, d):
                    raise ShapeError(f"{c!r} has sizes {have} and {d}, which do not "
                                     "broadcast")
                sizes[c] = d
            else:
                sizes.setdefault(c, 1)
    return sizes


def _einsum_infer(*xs, subscripts):
    for x in xs:
        if x.dtype.kind not in "biuf":
            raise DTypeError(f"takes real numbers or bools, not {x.dtype}")
    terms, out = parse(subscripts, [x.ndim for x in xs])
    sizes = _label_sizes(terms, [x.shape for x in xs])
    dtype = np.result_type(*(x.dtype for x in xs))
    return tuple(sizes[c] for c in out), dtype, {"subscripts": _join(terms, out)}


@lru_cache(maxsize=512)
def _path(subscripts, shapes):
    """NumPy's contraction order for these shapes (found once: finding it costs more than a
    small contraction)."""
    operands = [np.empty(s) for s in shapes]
    return np.einsum_path(subscripts, *operands, optimize="greedy")[0]


def _einsum_kernel(*xs, subscripts):
    if len(xs) == 2:
        a, b = xs
        if a.__class__ is np.ndarray and b.__class__ is np.ndarray and a.dtype == b.dtype:
            return _pair(subscripts, a, b)  # (the common case, sum_of_products' dot too)
    arrays = [x if x.__class__ is np.ndarray else np.asarray(x) for x in xs]
    dtype = np.result_type(*(a.dtype for a in arrays))
    if any(a.dtype != dtype for a in arrays):
        # in the common dtype first, as NumPy's own einsum loop computes: a plan that sums
        # one operand's own letters first would otherwise sum in that operand's dtype
        arrays = [a.astype(dtype, copy=False) for a in arrays]
    if len(arrays) == 2:
        return _pair(subscripts, *arrays)
    out = (np.einsum(subscripts, *arrays) if len(arrays) == 1 else np.einsum(
        subscripts, *arrays, optimize=_path(subscripts, tuple(a.shape for a in arrays))))
    return np.asarray(out).astype(dtype, copy=False)


def _pair(subscripts, a, b):
    """A two-operand einsum of arrays of one dtype, by its plan (see _pair_plan)."""
    plan = _pair_plan(subscripts, a.shape, b.shape)
    if plan is FULL_DOT:
        out = _full_dot(a, b) if a.dtype in DOT_DTYPES else np.einsum(subscripts, a, b)
    elif plan is not None:
        out = plan(a, b)
    else:
        out = np.einsum(subscripts, a, b, optimize=True)
    return np.asarray(out).astype(a.dtype, copy=False)


#: The plan of a full contraction of two operands of one shape: a BLAS dot for these dtypes.
FULL_DOT = "full dot"
DOT_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})  # (BLAS's real types)

#: Elements per BLAS dot: a longer one is cut into dots of this many, summed pairwise. One
#: long dot drifts with its length (float32 N(0.01, 0.05) squares: 14 ulp from the exact sum
#: at 2^20 values, 800 at 2^24); in blocks of 2^17 such data stayed within 2 ulp at every
#: length measured, float32 and float64, at 1.0-1.3x the time of one dot (pairwise sums: 2
#: to 6x). Repeated values drift within a block too (docs/compiler.md, sum_of_products).
DOT_BLOCK = 1 << 17


def _full_dot(a, b):
    """The sum of a * b over all elements of two float32/float64 arrays of one shape and
    dtype: BLAS dots over C-ordered copies, so the bits do not depend on the layouts (np.vdot
    reads C order, and would copy a transposed view anyway)."""
    if a.size <= DOT_BLOCK and a.flags.c_contiguous and b.flags.c_contiguous:
        return np.vdot(a, b)  # (it reads a C-ordered array in place)
    same = a is b  # sum(square(x)): one copy of x, not two
    a = np.ascontiguousarray(a).reshape(-1)
    b = a if same else np.ascontiguousarray(b).reshape(-1)
    if a.size <= DOT_BLOCK:
        return np.vdot(a, b)
    parts = [np.vdot(a[i:i + DOT_BLOCK], b[i:i + DOT_BLOCK])
             for i in range(0, a.size, DOT_BLOCK)]
    return np.add.reduce(np.array(parts, a.dtype))


@lru_cache(maxsize=512)
def _pair_plan(subscripts, shape_a, shape_b):
    """How to compute a two-operand einsum of these shapes, found once: :data:`FULL_DOT`; or
    a function making one BLAS product (one multiply when nothing is summed) of transposed
    and reshaped views, which is what ``np.einsum(..., optimize=True)`` does, without its
    10-15 us of parsing per call; or ``None`` (NumPy's einsum) for repeated letters and
    size-1 dimensions broadcast against others."""
    (ta, tb), out = parse(subscripts, [len(shape_a), len(shape_b)])
    if len(set(ta)) < len(ta) or len(set(tb)) < len(tb):
        return None  # diagonals
    sizes = dict(zip(ta, shape_a))
    for c, d in zip(tb, shape_b):
        if sizes.setdefault(c, d) != d:
            return None  # a size-1 dimension broadcast against another size
    if ta == tb and not out:
        return FULL_DOT
    batch = [c for c in out if c in ta and c in tb]
    con = [c for c in ta if c in tb and c not in out]
    keep_a = [c for c in ta if c in out and c not in tb]
    keep_b = [c for c in tb if c in out and c not in ta]
    # letters of one operand only that are summed away: summed first, on that operand alone
    own_a = tuple(k for k, c in enumerate(ta) if c not in out and c not in tb)
    own_b = tuple(k for k, c in enumerate(tb) if c not in out and c not in ta)
    ta = [c for c in ta if c in out or c in tb]
    tb = [c for c in tb if c in out or c in ta]

    def size(letters):
        return math.prod(sizes[c] for c in letters)

    if not con:  # an outer or elementwise product: views against each other, one multiply
        order = batch + keep_a + keep_b
        view_a = (tuple(ta.index(c) for c in batch + keep_a),
                  tuple(sizes[c] if c in ta else 1 for c in order))
        view_b = (tuple(tb.index(c) for c in batch + keep_b),
                  tuple(sizes[c] if c in tb else 1 for c in order))
        shape_ab, letters = None, order
    else:  # (batch, rows, k) @ (batch, k, columns)
        lead = (size(batch),) if batch else ()
        view_a = (tuple(ta.index(c) for c in batch + keep_a + con),
                  lead + (size(keep_a), size(con)))
        view_b = (tuple(tb.index(c) for c in batch + con + keep_b),
                  lead + (size(con), size(keep_b)))
        letters = batch + keep_a + keep_b
        shape_ab = tuple(sizes[c] for c in letters)
    perm = tuple(letters.index(c) for c in out)
    combine = np.multiply if not con else np.matmul

    def contract(a, b):
        if own_a:
            a = np.add.reduce(a, own_a, a.dtype)
        if own_b:
            b = np.add.reduce(b, own_b, b.dtype)
        ab = combine(a.transpose(view_a[0]).reshape(view_a[1]),
                     b.transpose(view_b[0]).reshape(view_b[1]))
        if shape_ab is not None:
            ab = ab.reshape(shape_ab)
        return ab.transpose(perm)
    return contract


def _einsum_bprop(node, g, i):
    xs = node.inputs
    terms, out = parse(node.attrs["subscripts"], [x.ndim for x in xs])
    used = set("".join("".join(t) for t in terms))
    fresh = [c for c in LETTERS if c not in used]
    batch = g.ndim - node.ndim
    if batch > len(fresh):
        raise ShapeError("einsum: too many batch dimensions for the 52 letters")
    lead = fresh[:batch]
    # A letter repeated in operand i: differentiate with respect to its diagonal instead.
    target, x, chain = list(terms[i]), xs[i], []
    while len(set(target)) < len(target):
        p = next(k for k, c in enumerate(target) if c in target[k + 1:])
        q = target.index(target[p], p + 1)
        chain.append((x, p - len(target), q - len(target)))
        x = diagonal(x, 0, p, q)
        target = [c for k, c in enumerate(target) if k not in (p, q)] + [target[p]]
    others = [(t, v) for k, (t, v) in enumerate(zip(terms, xs)) if k != i]
    have = set(out).union(*(set(t) for t, _ in others))
    kept = [c for c in target if c in have]
    part = einsum(_join([lead + out] + [t for t, _ in others], lead + kept),
                  g, *(v for _, v in others))
    if len(kept) < len(target):  # letters only this operand has: broadcast back
        part = expand_dims(part, tuple(k - len(target) for k, c in enumerate(target)
                                       if c not in have))
        part = broadcast_like(part, x)
    if chain and any(d in (1, None) for d in x.shape):  # broadcast size-1 letters: sum first
        part = sum_to(part, x, batch)
    for like, p, q in reversed(chain):
        part = diagonal_grad(part, like, 0, p, q)
    if None in xs[i].shape and not chain:
        part = sum_to(part, xs[i], batch)  # a size known only at run time may be a broadcast 1
    return part


def _einsum_reference(*xs, subscripts):
    """The sum of products written out: every letter's index range looped over."""
    terms, out = parse(subscripts, [x.ndim for x in xs])
    sizes = _label_sizes(terms, [x.shape for x in xs])
    letters = sorted(sizes)
    result = np.zeros(tuple(sizes[c] for c in out), np.result_type(*xs))
    for index in np.ndindex(*(sizes[c] for c in letters)):
        at = dict(zip(letters, index))
        value = 1
        for term, x in zip(terms, xs):
            value = value * x[tuple(0 if n == 1 else at[c] for c, n in zip(term, x.shape))]
        result[tuple(at[c] for c in out)] += value
    return result


define("einsum", infer=_einsum_infer, kernel=_einsum_kernel, arity=(1, None),
       attrs={"subscripts": anything_of(str)}, bprop=_einsum_bprop, reference=_einsum_reference,
       curvature="bilinear",  # linear in each operand: second derivatives are cross terms
       cases=[Case(((2, 3), (3, 4)), attrs={"subscripts": "ij,jk->ik"}, order=3),
              Case(((3, 3),), attrs={"subscripts": "ii->i"}),
              Case(((3, 3),), attrs={"subscripts": "ii"}),
              Case(((2, 3),), attrs={"subscripts": "ij->"}),
              Case(((2, 3),), attrs={"subscripts": "ij->ji"}),
              Case(((2, 2, 3), (3, 2)), attrs={"subscripts": "...ij,jk"}),
              Case(((2, 3), (1, 3)), attrs={"subscripts": "ij,ij->ij"}),  # size 1 broadcasts
              Case(((2, 1, 2, 3), (4, 3, 2)), attrs={"subscripts": "...ij,...jk->...ik"}),
              Case(((2, 3), (3, 4), (4,)), attrs={"subscripts": "ij,jk,k->i"}),
              Case(((2, 2, 3), (3,)), attrs={"subscripts": "iij,j->ij"}),
              Case(((3,), (2,)), attrs={"subscripts": "i,j"})],
       doc="numpy.einsum: sums of products over the letters of the subscripts.")


def _sublists(operands) -> tuple:
    """NumPy's second form, ``einsum(x, [0, 1], y, [1, 2], [0, 2])``, as a subscripts string."""
    def letters(sub):
        return "".join("..." if s is Ellipsis else LETTERS[s] for s in sub)
    xs, subs = list(operands[0::2]), list(operands[1::2])
    out = subs.pop() if len(subs) > len(xs) else None
    if len(subs) != len(xs):
        raise ShapeError("einsum: give one subscript list per operand")
    text = ",".join(letters(s) for s in subs) + ("" if out is None else "->" + letters(out))
    return text, xs


def einsum(subscripts: str, *operands: Operand, name: Optional[str] = None) -> Node:
    """Einstein summation, like ``numpy.einsum``: any subscripts NumPy accepts, implicit
    (``"ij,jk"``) or explicit (``"ij,jk->ik"``) output, ``...`` broadcasting, repeated letters
    (diagonals), and the sublist form ``einsum(x, [0, 1], y, [1, 2])``. The derivative is
    another einsum. Two operands make one BLAS product of views (a dot for a full contraction
    of equal shapes), planned once per subscripts and shapes; longer ones follow a contraction
    order found once per shape."""
    if not isinstance(subscripts, str):
        subscripts, operands = _sublists((subscripts,) + operands)
    return apply("einsum", list(operands), {"subscripts": subscripts}, name=name)


def _ndim(v) -> int:
    graph = graph_of([v])
    return as_node(graph, v).ndim if graph is not None else np.ndim(v)


def tensordot(a: Operand, b: Operand, axes: Any = 2, name: Optional[str] = None) -> Node:
    """``numpy.tensordot``: the sum of products over ``axes`` (an int N: the last N of ``a``
    with the first N of ``b``; or a pair of axis sequences), as one einsum."""
    na, nb = _ndim(a), _ndim(b)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(na, nb):
            raise ShapeError(f"tensordot: cannot contract {axes} axes of {na}-D and {nb}-D "
                             "operands")
        pairs = (list(range(na - axes, na)), list(range(axes)))
    else:
        try:
            pa, pb = axes
        except (TypeError, ValueError):
            raise ShapeError(f"tensordot: axes must be an int or a pair of sequences, not "
                             f"{axes!r}") from None
        pairs = ([pa] if isinstance(pa, (int, np.integer)) else list(pa),
                 [pb] if isinstance(pb, (int, np.integer)) else list(pb))
    pa, pb = pairs
    if len(pa) != len(pb):
        raise ShapeError(f"tensordot: {len(pa)} axes of a against {len(pb)} of b")
    for p, n in ((pa, na), (pb, nb)):
        if any(not -n <= k < n for k in p) or len({k % n for k in p}) != len(p):
            raise ShapeError(f"tensordot: bad axes {list(p)} for {n} dimensions")
    if na + nb > len(LETTERS):
        raise ShapeError("tensordot: too many dimensions")
    sa = list(LETTERS[:na])
    sb = list(LETTERS[na:na + nb])
    for x, y in zip(pa, pb):
        sb[y % nb] = sa[x % na]
    contracted = {sa[x % na] for x in pa}
    out = [c for c in sa if c not in contracted] + [c for c in sb if c not in contracted]
    return einsum(_join([sa, sb], out), a, b, name=name)


def dot(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``numpy.dot``: products of scalars, inner product of vectors, matrix products, and for
    N-D operands the sum over ``a``'s last axis and ``b``'s second-to-last."""
    na, nb = _ndim(a), _ndim(b)
    if na == 0 or nb == 0:
        return mul(a, b, name=name)
    if na <= 2 and nb <= 2:
        return matmul(a, b, name=name)
    return tensordot(a, b, ([na - 1], [max(nb - 2, 0)]), name=name)


def inner(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``numpy.inner``: the sum of products over the last axes of ``a`` and ``b``."""
    na, nb = _ndim(a), _ndim(b)
    if na == 0 or nb == 0:
        return mul(a, b, name=name)
    return tensordot(a, b, ([na - 1], [nb - 1]), name=name)


def outer(a: Operand, b: Operand, name: Optional[str] = None) -> Node:
    """``numpy.outer``: every element of ``a`` (flattened) times every element of ``b``."""
    flat = [v if _ndim(v) == 1 else reshape(v, (-1,)) if graph_of([v]) is not None
            else np.ravel(v) for v in (a, b)]
    return einsum("i,j->ij", *flat, name=name)
