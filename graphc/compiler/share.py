"""The ``share`` pass: a softmax cross-entropy and its gradient from one pass over the logits.

The gradient of ``softmax_cross_entropy(z, y)`` for integer labels is ``softmax(z) -
one_hot_like(y, z)`` (times the cotangent). Computed as written, the softmax takes the max,
the exps and their sums of the logits again, which the loss has just taken, and the one-hot
is a new array subtracted from it: at 128x10 float32 the loss, the softmax, the one-hot and
the subtraction take 16.7 + 13.1 + 4.1 + 1 us on their own, and more in a training step,
where they follow a large matmul. A shared term computes the loss and the gradient together
(:func:`graphc.ops.nn.softmax_cross_entropy_and_gradient`), with the three kernels' values bit
for bit, and two item terms hand them on.

It replaces ``sub(softmax(z, axis=-1), one_hot_like(y, z))``, when the softmax and the
one-hot are read by nothing else and the logits are floats, together with the loss
``softmax_cross_entropy(z, y)`` of the same terms: the shared term goes where the first of
them was, and its items take the loss's and the gradient's places. A gradient without its
loss stays as it is. Errors (labels out of range or of the wrong shape) are the loss
kernel's own, named after the loss's node, as ``g.run`` names them. The pass is left out
under ``check_numerics`` (the softmax is then a value of its own, checked).

Both ops exist only inside compiled programs (:data:`graphc.compiler.ir.COMPILER_OPS`).
"""
from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from ..ops.nn import softmax_cross_entropy_and_gradient
from ..ops.registry import Op
from .ir import AS_ORIGIN, COMPILER_OPS, Program, Term, remapped

#: The op of a shared term: its value is the pair (loss, gradient).
SHARED = "cross-entropy and gradient"
#: The op of a term taking one value of a shared term's pair.
ITEM = "item of"

_PAIR_DTYPE = np.dtype(object)  # (a pair is no array: no buffer, no arena place)


def _gradient(t: Term, readers: Counter) -> Optional[tuple]:
    """``(z, y, softmax, one_hot)`` when ``t`` is a cross-entropy's gradient (see module)."""
    s, o = t.inputs
    if s.op != "softmax" or o.op != "one_hot_like" or readers[id(s)] != 1 \
            or readers[id(o)] != 1 or s is o:
        return None
    z, y = s.inputs[0], o.inputs[0]
    if o.inputs[1] is not z or z.dtype.kind != "f" or y.dtype.kind not in "iu" or z.ndim == 0 \
            or tuple(s.attrs["axis"]) not in ((-1,), (z.ndim - 1,)) or t.dtype != s.dtype:
        return None
    return z, y, s, o


def share(program: Program, fired: Counter) -> Program:
    """Replace each cross-entropy gradient, and its loss, by items of one shared term."""
    readers: Counter = Counter()
    for term in program.terms:
        for x in set(map(id, term.inputs)):
            readers[x] += 1
    for root in program.roots:
        readers[id(root)] += 2  # a value the caller sees is never folded away
    losses = {(id(t.inputs[0]), id(t.inputs[1])): t for t in program.terms
              if t.op == "softmax_cross_entropy"}
    pairs = []  # (gradient, z, y, softmax, one-hot, loss)
    for term in program.terms:
        found = _gradient(term, readers) if term.op == "sub" else None
        if found is not None:
            loss = losses.pop((id(found[0]), id(found[1])), None)  # (one gradient takes it)
            if loss is not None:
                pairs.append((term,) + found + (loss,))
    if not pairs:
        return program
    position = {id(t): i for i, t in enumerate(program.terms)}
    item_of = {}  # id(term) -> (k, 0 for the loss or 1 for the gradient): the k-th shared term
    start = {}  # position of the k-th shared term's first member -> k
    dropped = set()  # the softmaxes and one-hots
    for k, (gradient, z, y, s, o, loss) in enumerate(pairs):
        item_of[id(gradient)], item_of[id(loss)] = (k, 1), (k, 0)
        start[min(position[id(s)], position[id(o)], position[id(loss)])] = k
        dropped.update((id(s), id(o)))
    mapping: dict = {}
    shared: list = [None] * len(pairs)
    terms = []
    for i, old in enumerate(program.terms):
        k = start.get(i)
        if k is not None:  # the shared term goes where its first member was
            _, z, y, _, _, loss = pairs[k]
            shared[k] = Term(SHARED, (mapping[z], mapping[y]), {}, (), _PAIR_DTYPE, loss.origin)
            terms.append(shared[k])
            fired["share"] += 1
        if id(old) in dropped:
            continue
        item = item_of.get(id(old))
        if item is not None:
            k, index = item
            new = Term(ITEM, (shared[k], mapping[pairs[k][1]]), {"index": index}, old.shape,
                       old.dtype, old.origin)
        else:
            new = remapped(old, mapping)
        mapping[old] = new
        terms.append(new)
    return program.replace(terms, mapping)


def _shared_infer(logits, labels):
    return (), _PAIR_DTYPE


def _item(pair: tuple, logits, *, index: int):
    """Value ``index`` of the pair (``logits``, the shared term's, gives only the shape)."""
    return pair[index]


def _item_infer(pair, logits, *, index):
    return logits.shape[:-1] if index == 0 else logits.shape, logits.dtype


COMPILER_OPS[SHARED] = Op(
    SHARED, infer=_shared_infer, kernel=softmax_cross_entropy_and_gradient, bprop=None,
    doc="(softmax_cross_entropy(z, y), softmax(z) - one_hot(y)), one pass over the logits "
        "(compiled programs only).", arity=(2, 2))
AS_ORIGIN.add(SHARED)  # it fails as the loss's own kernel would
COMPILER_OPS[ITEM] = Op(
    ITEM, infer=_item_infer, kernel=_item, bprop=None,
    doc="One value of a shared term's pair (compiled programs only).", arity=(2, 2))
