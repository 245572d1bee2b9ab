"""Where the batch axis goes: every node of a graph is batch-free, row-wise or a batch reduction.

A *batch input* is a placeholder whose leading size is ``None``; all batch inputs share one
batch axis of ``N`` rows. The analysis walks the graph once in creation order and gives each
node a :class:`Kind`:

``FREE``
    depends on no batch input (or only through reductions): the same value for every chunk of
    rows, computed once, on the client.
``ROWS``
    has the batch axis at position ``axis`` and its rows are independent: the value for a chunk
    of rows is the chunk of the value (elementwise ops, ``x @ W`` with a batch-free ``W``,
    reductions over other axes, transposes that move the batch axis, ...). A softmax (or
    log-softmax) over the batch axis is row-wise once the log-sum-exp of its input over the
    batch is known (``combine`` says so): two passes, ``exp(x - logsumexp(x))`` in the second.
``REDUCE``
    combines the rows of a row-wise input: ``sum``/``mean``/``max``/``min``/``logsumexp`` over
    the batch axis, a ``matmul`` that contracts it (``X.T @ X``), a ``sum_to`` that sums it away
    (what gradients emit), ``reduced_size`` (the count of rows). Its value is the combination
    (``combine``) of per-chunk partial values.

Every op that the rules below do not know, applied to a row-wise input, and every known op
used in a way that mixes rows (a reshape that merges the batch axis, a slice of it), is
refused with :class:`BatchError` naming the node: never a wrong result.

A node's *level* counts the batch reductions it waits for: row-wise work of level ``p`` runs in
pass ``p`` over the data, and a reduction of a level-``p`` input is known from level ``p + 1``
on. Gradients of means are one pass: the number of rows, all that their ``reduced_size`` nodes
need, is known from the chunk sizes before any pass (``static`` counts).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import GraphcError, describe
from ..ops.indexing import FULL, canonical
from ..ops.registry import REGISTRY
from ..shapes import fmt, size

FREE, ROWS, REDUCE = "free", "rows", "reduce"


class BatchError(GraphcError, ValueError):
    """A node that mixes the rows of the batch in a way graphc.dask cannot split over chunks."""


@dataclass(frozen=True)
class Kind:
    """How a node relates to the batch axis (see the module docstring)."""

    kind: str
    axis: Optional[int] = None  # ROWS: where the batch axis is
    combine: Optional[str] = None  # REDUCE: sum, mean, max, min, logsumexp, count, same;
    # ROWS: the reduction of its input it needs first (a softmax over the batch axis)
    static: bool = False  # REDUCE count: known from the number of rows alone


_FREE = Kind(FREE)


class _Refused(Exception):
    """Raised by a rule; :func:`classify` turns it into a BatchError naming the node."""


def classify(order: list, batch_ids: set) -> tuple[dict, dict]:
    """``(kinds, levels)``, both keyed by node id, for ``order`` (nodes in creation order;
    ``batch_ids`` the batch inputs, which are leaves here like every other input)."""
    kinds: dict[int, Kind] = {}
    levels: dict[int, int] = {}
    for node in order:
        if node.id in batch_ids:
            kinds[node.id], levels[node.id] = Kind(ROWS, 0), 0
            continue
        ins = [kinds[x.id] for x in node.inputs if x.id in kinds]
        if len(ins) < len(node.inputs) or all(k.kind != ROWS for k in ins):
            kind = _FREE  # a leaf, or computed from batch-free values and reduction results
        else:
            try:
                kind = _rule(node, ins)
            except _Refused as why:
                raise BatchError(
                    f"graphc.dask cannot split {describe(node)} over chunks of rows: {why}. "
                    "Compute it with gc.function on data that fits in memory, or rewrite it "
                    "with sums, means, max, min or logsumexp over the batch axis") from None
        level = max((levels[x.id] for x in node.inputs if x.id in levels), default=0)
        if kind.kind == REDUCE:
            level = 0 if kind.static else level + 1
        elif kind.combine:  # row-wise after a batch reduction of its input (two passes)
            level += 1
        kinds[node.id], levels[node.id] = kind, level
    return kinds, levels


def _rule(node, ins: list) -> Kind:
    op = REGISTRY[node.op]
    if op.elementwise:
        return _elementwise(node, ins)
    rule = _RULES.get(node.op)
    if rule is None:
        raise _Refused(f"graphc.dask has no batch rule for the op '{node.op}', and one of its "
                       "inputs is row-wise")
    return rule(node, ins)


def _rows_axis(x, k: Kind, what: str = "input") -> int:
    if k.kind != ROWS:
        raise _Refused(f"its {what} {x.op} '{x.name}' is batch-free where rows are needed")
    assert k.axis is not None  # a ROWS kind always has its axis
    return k.axis


# -- elementwise: the output's batch axis lines up with every row-wise input's ------------------
def _elementwise(node, ins) -> Kind:
    axis = None
    for x, k in zip(node.inputs, ins):
        if k.kind == ROWS:
            at = k.axis + node.ndim - x.ndim
            if axis is not None and at != axis:
                raise _Refused("its row-wise inputs have their batch axes in different places "
                               "(the result would pair every row with every row)")
            axis = at
    for x, k in zip(node.inputs, ins):
        at = axis - (node.ndim - x.ndim)
        if k.kind != ROWS and at >= 0 and x.shape[at] != 1:
            raise _Refused(f"its batch-free input {x.op} '{x.name}' of shape {fmt(x.shape)} "
                           f"lines up with the batch axis (size {x.shape[at]}, not 1)")
    return Kind(ROWS, axis)


# -- reductions ----------------------------------------------------------------------------------
def _reduction(combine: str):
    def rule(node, ins):
        x, (k,) = node.inputs[0], ins
        axes = tuple(a % x.ndim for a in node.attrs["axis"])
        if k.axis in axes:
            return Kind(REDUCE, combine=combine)
        if node.attrs["keepdims"]:
            return Kind(ROWS, k.axis)
        return Kind(ROWS, k.axis - sum(a < k.axis for a in axes))
    return rule


def _arg_reduction(node, ins):
    x, (k,) = node.inputs[0], ins
    axis = node.attrs["axis"]
    if axis is None or axis % x.ndim == k.axis:
        raise _Refused("an argmax/argmin over the batch axis needs the position of a row in "
                       "the whole batch")
    axis %= x.ndim
    return Kind(ROWS, k.axis if node.attrs["keepdims"] or axis > k.axis else k.axis - 1)


def _reduced_size(node, ins):
    x, (k,) = node.inputs[0], ins
    axes = node.attrs["axis"]
    if k.axis not in axes:  # the same count in every chunk
        return Kind(REDUCE, combine="same")
    others = tuple(x.shape[a] for a in axes if a != k.axis)
    return Kind(REDUCE, combine="count", static=size(others) is not None)


# -- ops along the last axis ---------------------------------------------------------------------
def _softmax(node, ins):
    x, (k,) = node.inputs[0], ins
    if k.axis in tuple(a % x.ndim for a in node.attrs["axis"]):
        # two passes: the logsumexp of x over the batch first, then exp(x - it) row by row
        return Kind(ROWS, k.axis, combine="logsumexp")
    return Kind(ROWS, k.axis)


def _cross_entropy(node, ins):
    logits, labels = node.inputs
    axis = _rows_axis(logits, ins[0], "logits")
    if axis == logits.ndim - 1:
        raise _Refused("its class axis is the batch axis")
    if _rows_axis(labels, ins[1], "labels") != axis:
        raise _Refused("its logits and labels have the batch axis in different places")
    return Kind(ROWS, axis)


def _one_hot(node, ins):
    return Kind(ROWS, _rows_axis(node.inputs[0], ins[0], "indices"))


def _one_hot_like(node, ins):
    indices, like = node.inputs
    if ins[1].kind == ROWS and ins[1].axis == like.ndim - 1:
        raise _Refused("its depth would be the number of rows in a chunk")
    return Kind(ROWS, _rows_axis(indices, ins[0], "indices"))


# -- matmul ------------------------------------------------------------------------------------
def _matmul(node, ins):
    a, b = node.inputs
    ka, kb = ins
    a_contracted = a.ndim - 1
    b_contracted = 0 if b.ndim == 1 else b.ndim - 2
    if ka.kind == ROWS and kb.kind == ROWS and ka.axis == a_contracted and \
            kb.axis == b_contracted:
        return Kind(REDUCE, combine="sum")  # a sum over rows: x.T @ x, g @ X
    out_batch = node.ndim - (a.ndim > 1) - (b.ndim > 1)  # stack dimensions of the result
    places = []
    for x, k, contracted in ((a, ka, a_contracted), (b, kb, b_contracted)):
        if k.kind != ROWS:
            continue
        if k.axis == contracted:
            raise _Refused(f"it contracts the batch axis of {x.op} '{x.name}' with a "
                           "batch-free operand")
        stack = x.ndim - 2
        if k.axis < stack:  # a stack dimension: lines up with the result's
            places.append(k.axis + out_batch - stack)
        elif x is a:  # the rows of a matrix a
            places.append(out_batch)
        else:  # the columns of a matrix b
            places.append(node.ndim - 1)
    if len(set(places)) > 1:
        raise _Refused("it pairs every row of one operand with every row of the other")
    axis = places[0]
    for x, k in ((a, ka), (b, kb)):  # a batch-free stack must not line up with the batch axis
        if k.kind != ROWS and axis < out_batch:
            at = axis - (out_batch - max(x.ndim - 2, 0))
            if at >= 0 and x.shape[at] != 1:
                raise _Refused(f"its batch-free operand {x.op} '{x.name}' stacks along the "
                               "batch axis")
    return Kind(ROWS, axis)


# -- ops that move elements --------------------------------------------------------------------
def _transpose(node, ins):
    return Kind(ROWS, node.attrs["axes"].index(ins[0].axis))


def _expand_dims(node, ins):
    kept = [d for d in range(node.ndim) if d not in node.attrs["axis"]]
    return Kind(ROWS, kept[ins[0].axis])


def _squeeze(node, ins):
    axes, axis = node.attrs["axis"], ins[0].axis
    if axis in axes:
        raise _Refused("it removes the batch axis")
    return Kind(ROWS, axis - sum(a < axis for a in axes))


def _row_size(shape, start: int):
    return size(tuple(shape[start:]))


def _reshape(node, ins):
    x, axis, target = node.inputs[0], ins[0].axis, node.attrs["shape"]
    per_row = _row_size(x.shape, 1)
    if axis != 0 or not target or target[0] != -1 or per_row is None or \
            per_row != size(tuple(target[1:])):
        raise _Refused(f"a reshape of {fmt(x.shape)} to {target} keeps rows only when the "
                       "batch axis stays first as -1 and each row keeps its elements")
    return Kind(ROWS, 0)


def _reshape_like(node, ins):
    x, like = node.inputs
    lead, kx, kl = node.attrs["lead"], ins[0], ins[1]
    if kx.kind == ROWS and kx.axis < lead and kl.kind != ROWS:
        return Kind(ROWS, kx.axis)
    if kx.kind == ROWS and kl.kind == ROWS and kx.axis == lead and kl.axis == 0:
        per_row = _row_size(x.shape, lead + 1)
        if per_row is not None and per_row == _row_size(like.shape, 1):
            return Kind(ROWS, lead)
    raise _Refused("it reshapes across the batch axis")


_SENTINEL = 1_000_003  # a size no other dimension has: marks the batch axis in a shape


def _indexed_axis(shape: tuple, axis: int, index, front) -> int:
    """Where dimension ``axis`` of ``shape`` ends up in ``x[index]``; refuses unless the index
    keeps that dimension whole."""
    consumed = sum(e[0] in ("slice", "int", "array") for e in index)
    lead = len(shape) - consumed
    if axis >= lead:
        dim = lead
        for e in index:
            if e[0] in ("slice", "int", "array"):
                if dim == axis and tuple(e) != FULL:
                    raise _Refused("its index selects rows of the batch (only ':' keeps them)")
                dim += 1
    marked = tuple(_SENTINEL if d == axis else (_SENTINEL - 2 if n is None else n)
                   for d, n in enumerate(shape))  # unknown sizes: large, any index fits
    out, _, _ = canonical(marked, index, front)
    return out.index(_SENTINEL)


def _getitem(node, ins):
    x = node.inputs[0]
    return Kind(ROWS, _indexed_axis(x.shape, ins[0].axis, node.attrs["index"],
                                    node.attrs["front"]))


def _getitem_grad(node, ins):
    g, like = node.inputs
    kg, kl = ins
    lead = node.ndim - like.ndim  # g's own leading (seed) dimensions
    if kl.kind == ROWS and kg.kind == ROWS:
        inside = _indexed_axis(like.shape, kl.axis, node.attrs["index"], node.attrs["front"])
        if kg.axis == lead + inside:
            return Kind(ROWS, lead + kl.axis)
    elif kg.kind == ROWS and kg.axis < lead:
        return Kind(ROWS, kg.axis)
    raise _Refused("it scatters across the batch axis")


def _joined(node, ins):
    """concatenate and stack: every input row-wise, batch axis in one place, not joined."""
    axes = {k.axis if k.kind == ROWS else None for k in ins}
    if len(axes) != 1 or None in axes:
        raise _Refused("it joins row-wise and batch-free inputs (or batch axes in different "
                       "places)")
    (axis,) = axes
    joined = node.attrs["axis"]
    if node.op == "concatenate":
        if joined == axis:
            raise _Refused("it concatenates along the batch axis")
        return Kind(ROWS, axis)
    return Kind(ROWS, axis if axis < joined else axis + 1)


def _concat_part(node, ins):
    g, parts = node.inputs[0], node.inputs[1:]
    axis = node.attrs["axis"]
    for x, k in zip(parts, ins[1:]):
        if k.kind == ROWS and k.axis == axis % x.ndim:
            raise _Refused("it splits along the batch axis")
    if ins[0].kind != ROWS or ins[0].axis == axis % g.ndim:
        raise _Refused("it splits along the batch axis")
    return Kind(ROWS, ins[0].axis)


def _sum_to(node, ins):
    x, like = node.inputs
    kx, kl = ins
    batch = node.attrs["batch"]
    if kx.kind != ROWS:
        raise _Refused("it sums a batch-free value to a row-wise shape")
    lead = x.ndim - batch - like.ndim  # dimensions of x summed away entirely
    if kl.kind == ROWS:
        if kx.axis == batch + lead + kl.axis:
            return Kind(ROWS, batch + kl.axis)
        raise _Refused("its input and its target shape have the batch axis in different places")
    if kx.axis < batch:
        return Kind(ROWS, kx.axis)
    if kx.axis < batch + lead or like.shape[kx.axis - batch - lead] == 1:
        return Kind(REDUCE, combine="sum")
    raise _Refused("it would keep the batch axis in a batch-free shape")


_RULES = {
    "sum": _reduction("sum"), "mean": _reduction("mean"), "max": _reduction("max"),
    "min": _reduction("min"), "logsumexp": _reduction("logsumexp"),
    "argmax": _arg_reduction, "argmin": _arg_reduction, "reduced_size": _reduced_size,
    "softmax": _softmax, "log_softmax": _softmax,
    "softmax_cross_entropy": _cross_entropy, "one_hot": _one_hot, "one_hot_like": _one_hot_like,
    "matmul": _matmul,
    "transpose": _transpose, "expand_dims": _expand_dims, "squeeze": _squeeze,
    "reshape": _reshape, "reshape_like": _reshape_like,
    "getitem": _getitem, "getitem_grad": _getitem_grad,
    "concatenate": _joined, "stack": _joined,
    "concat_take": _concat_part, "concat_put": _concat_part,
    "sum_to": _sum_to,
}


def static_count(node, rows: int, batch_axis: int) -> np.ndarray:
    """The value of a ``reduced_size`` node over the batch axis when the batch has ``rows``."""
    x = node.inputs[0]
    count = rows * int(np.prod([x.shape[a] for a in node.attrs["axis"] if a != batch_axis],
                               dtype=np.int64))
    return np.array(count, dtype=node.dtype)
