"""The ``share`` pass: a softmax cross-entropy and its gradient from one pass over the logits.

The gradient of ``softmax_cross_entropy(z, y)`` for integer labels is ``softmax(z) -
one_hot_like(y, z)`` (times the cotangent). Computed as written, the softmax takes the max,
the exps and their sums of the logits again, which the loss has just taken, and the one-hot
is a new array subtracted from it: at 128x10 float32 the loss, the softmax, the one-hot and
the subtraction take 16.7 + 13.1 + 4.1 + 1 us on their own, and more in a training step,
where they follow a large matmul. A shared term computes the gradient and the loss together
into one flat array (:func:`graphc.ops.nn.softmax_cross_entropy_and_gradient`), with the
four kernels' values bit for bit, and two part terms are views of its two parts.

It replaces ``sub(softmax(z, axis=-1), one_hot_like(y, z))`` together with the loss
``softmax_cross_entropy(z, y)`` of the same terms when

* the softmax and the one-hot are read by nothing else (a Hessian reads the softmax again),
* the logits are floats proven C-ordered at every call (:func:`graphc.compiler.arena
  .c_ordered`: a matmul's result, a bias added to it, ...): then the gradient has the
  unshared one's layout too, and later reductions over it add in the same order,
* and the loss comes first in the program (as ``gradients()`` builds it): the shared term
  takes the loss's place, so its errors (labels out of range, or of the wrong shape for the
  call) are the loss kernel's own, named after the loss's node as ``g.run`` names them.

A gradient without its loss stays as it is. The pass is left out under ``check_numerics``
(the softmax is then a value of its own, checked).

Both ops exist only inside compiled programs (:data:`graphc.compiler.ir.COMPILER_OPS`). To
the memory plan (:mod:`graphc.compiler.schedule`) the shared term and its parts are new
arrays: the loss's part is a copy, the gradient's a view of the shared array's first part,
which only it reads then, so it may be overwritten in place once dead (the cotangent's
product writes into it). The view holds the loss's bytes too (one value per example), which
the plan does not count while the gradient lives.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Optional

import numpy as np

from ..ops.nn import _softmax_cross_entropy_infer, softmax_cross_entropy_and_gradient
from ..ops.registry import Op
from .arena import c_ordered
from .ir import AS_ORIGIN, COMPILER_OPS, LEAVES, Program, Term, remapped

#: The op of a shared term: one flat array, the gradient then the loss.
SHARED = "cross-entropy and gradient"
#: The op of a term viewing one part of a shared term's array.
PART = "part of"


def _gradient(t: Term, readers: Counter) -> Optional[tuple]:
    """``(z, y, softmax, one_hot)`` when ``t`` is a cross-entropy's gradient (see module;
    the logits' order is proven apart)."""
    s, o = t.inputs
    if s.op != "softmax" or o.op != "one_hot_like" or readers[id(s)] != 1 \
            or readers[id(o)] != 1 or s is o:
        return None
    z, y = s.inputs[0], o.inputs[0]
    if o.inputs[1] is not z or z.dtype.kind != "f" or y.dtype.kind not in "iu" or z.ndim == 0 \
            or tuple(s.attrs["axis"]) not in ((-1,), (z.ndim - 1,)) or t.dtype != z.dtype:
        return None
    return z, y, s, o


def share(program: Program, fired: Counter) -> Program:
    """Replace each cross-entropy gradient and its loss by views of one shared term."""
    if not any(t.op == "one_hot_like" for t in program.terms):
        return program  # a cheap test first: most programs have no such gradient
    readers: Counter = Counter()
    for term in program.terms:
        for x in set(map(id, term.inputs)):
            readers[x] += 1
    for root in program.roots:
        readers[id(root)] += 2  # a value the caller sees is never folded away
    losses = {(id(t.inputs[0]), id(t.inputs[1])): t for t in program.terms
              if t.op == "softmax_cross_entropy"}
    found = [(t,) + g for t in program.terms
             if t.op == "sub" and (g := _gradient(t, readers)) is not None]
    if not found:
        return program
    position = {id(t): i for i, t in enumerate(program.terms)}
    leaves = [t for t in program.terms if t.op in LEAVES]
    proven = c_ordered(leaves, [t for t in program.terms if t.op not in LEAVES])
    pairs = {}  # id(loss) -> (loss, gradient, z, y); the softmax and one-hot are dropped
    dropped = set()
    for term, z, y, s, o in found:
        loss = losses.pop((id(z), id(y)), None)  # (one gradient takes it)
        if loss is not None and position[id(loss)] < position[id(o)] and proven[id(z)]:
            pairs[id(loss)] = (loss, term, z, y)
            dropped.update((id(s), id(o)))
    if not pairs:
        return program
    mapping: dict = {}
    parts = {}  # id(gradient) -> (the shared term, z): its part 1
    terms = []
    for old in program.terms:
        if id(old) in dropped:
            continue
        pair = pairs.get(id(old))
        gradient = parts.get(id(old))
        if pair is not None:  # the shared term, then the loss, its first part
            loss, grad, z, y = pair
            z, y = mapping[z], mapping[y]
            size = None if None in z.shape else math.prod(z.shape) + math.prod(z.shape[:-1])
            shared = Term(SHARED, (z, y), {}, (size,), z.dtype, loss.origin)
            terms.append(shared)
            parts[id(grad)] = (shared, z)
            fired["share"] += 1
            new = Term(PART, (shared, z), {"index": 0}, old.shape, old.dtype, old.origin)
        elif gradient is not None:
            new = Term(PART, gradient, {"index": 1}, old.shape, old.dtype, old.origin)
        else:
            new = remapped(old, mapping)
        mapping[old] = new
        terms.append(new)
    return program.replace(terms, mapping)


def _shared_infer(logits, labels):
    _softmax_cross_entropy_infer(logits, labels)  # (labels of the wrong shape: refused)
    known = None not in logits.shape
    size = math.prod(logits.shape) + math.prod(logits.shape[:-1]) if known else None
    return (size,), logits.dtype


def _part(flat: np.ndarray, logits, *, index: int):
    """Part ``index`` of a shared term's flat array: 1 the gradient (the logits' shape), a
    view; 0 the loss (one value per example), a copy, so that a loss the caller keeps does not
    hold the gradient's bytes (a NumPy scalar for one example, as the loss kernel gives)."""
    size = logits.size
    if index:
        return flat[:size].reshape(logits.shape)
    return flat[size] if logits.ndim == 1 else flat[size:].reshape(logits.shape[:-1]).copy()


def _part_infer(flat, logits, *, index):
    return logits.shape if index else logits.shape[:-1], logits.dtype


COMPILER_OPS[SHARED] = Op(
    SHARED, infer=_shared_infer, kernel=softmax_cross_entropy_and_gradient, bprop=None,
    doc="softmax(z) - one_hot(y) and softmax_cross_entropy(z, y) in one flat array, from one "
        "pass over the logits (compiled programs only).", arity=(2, 2))
AS_ORIGIN.add(SHARED)  # it fails as the loss's own kernel would
COMPILER_OPS[PART] = Op(
    PART, infer=_part_infer, kernel=_part, bprop=None,
    doc="A view of one part of a shared term's array (compiled programs only).", arity=(2, 2))
