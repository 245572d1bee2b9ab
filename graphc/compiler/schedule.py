"""Scheduling and memory planning: an order for the terms, liveness, and buffer reuse.

* :func:`schedule` picks a topological order that keeps live memory low: a greedy list
  scheduler that prefers the ready term freeing the most bytes (ties: creation order). The
  plan of that order and of plain creation order are both computed; the lower peak wins.
* :func:`plan` walks an order once. A term's *buffers* are the allocations its value may
  share memory with: a term of an op in :data:`FRESH_OPS` (or an ``inplace`` op) owns a new
  buffer; any other op's value may be a view of its inputs (``np.transpose``, ``reshape``,
  ``broadcast_to`` results are views), so it keeps their buffers alive. A buffer is freed
  right after the last use of every term that holds it; outputs and update values live to the
  end. Leaves (inputs, variables, constants) own no buffer, so they are never written.
* Buffer reuse: an ``inplace`` op (a ufunc accepting ``out=``) writes into the buffer of an
  input that dies at this very step when shape and dtype match (``np.add(a, b, out=a)``).
  Reusing only buffers that die at the current step never holds dead memory in between.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Optional

from .ir import OPS as REGISTRY  # the graph ops and the compiler's own (fused terms)
from .ir import LEAVES, Program, Term

#: Ops (besides ``inplace`` ones) whose kernel always returns a new array that shares no
#: memory with its inputs: their buffers may be overwritten once dead.
FRESH_OPS = frozenset({"matmul", "sum", "mean", "max", "min", "cast", "zeros_like",
                       "ones_like", "softmax", "log_softmax", "logsumexp", "where",
                       "concatenate", "stack", "one_hot", "softmax_cross_entropy",
                       "sigmoid_cross_entropy"}) | frozenset({
    # convolution, pooling, gathers and scatters, random numbers
    "conv2d", "conv_transpose2d", "conv2d_weight_grad", "max_pool2d", "max_pool2d_grad",
    "max_pool2d_gather", "avg_pool2d", "avg_pool2d_grad", "take", "take_grad", "index_add",
    "index_update", "index_hit", "index_winners", "take_along_axis", "take_along_axis_grad",
    "boolean_mask", "boolean_mask_grad", "dynamic_slice_grad", "random_uniform",
    "random_normal", "random_permutation", "random_next", "full_like"})

#: Ops whose value is a view of (or is) their first input: they allocate nothing.
VIEW_OPS = frozenset({"reshape", "reshape_like", "transpose", "expand_dims", "squeeze",
                      "broadcast_to", "broadcast_like", "stop_gradient"})

INFINITY = float("inf")


def _inplace(op: str) -> bool:
    spec = REGISTRY.get(op)
    return spec is not None and spec.inplace


def is_fresh(term: Term) -> bool:
    """Whether ``term``'s value is always a new array or scalar of its own, sharing no memory
    with its inputs (so it may be overwritten once dead, and keeps no input alive)."""
    return term.op not in LEAVES and (term.op in FRESH_OPS or _inplace(term.op))


def can_write_out(term: Term) -> bool:
    """Whether ``term`` may be computed in a dying input's buffer: ``out=`` for a ufunc of an
    inplace op, or a :func:`masked_fill` ``where``."""
    return bool(term.shape) and None not in term.shape and (_inplace(term.op) or
                                                            masked_fill(term))


def masked_fill(term: Term) -> bool:
    """Whether ``term`` is ``where(c, x, 0)`` with a bool ``c`` and an ``x`` of the result's
    shape and dtype (relu's gradient): it can be computed in x's buffer by writing the zero
    where ``c`` is false, bit for bit ``where``'s values (inf and NaN included)."""
    if term.op != "where":
        return False
    c, x, z = term.inputs
    return (c.dtype == bool and x.shape == term.shape and x.dtype == term.dtype
            and z.op == "constant" and z.shape == () and z.attrs["value"] == 0)


def nbytes(term: Term) -> Optional[int]:
    """Bytes ``term``'s value allocates (0 for leaves and views; None if the size is unknown)."""
    if term.op in LEAVES or term.op in VIEW_OPS:
        return 0
    size = term.size
    return None if size is None else size * term.dtype.itemsize


@dataclass
class Plan:
    """A schedule with its liveness and buffer decisions."""

    order: list  # non-leaf terms, in execution order
    leaves: list  # leaf terms (read before the first instruction)
    last_use: dict  # id(term) -> position of its last use (INFINITY for roots)
    reuse: dict  # id(term) -> the input term whose buffer it writes into (out=)
    peak_bytes: Optional[int]  # planned peak of the live buffers; None when sizes are unknown
    strategy: str = "creation"
    frees: list = field(default_factory=list)  # per position: terms whose name can be dropped
    profile: list = field(default_factory=list)  # per position: planned live bytes


def plan(program: Program, order: list, strategy: str = "creation") -> Plan:
    """Liveness, buffer reuse and planned peak memory of one execution order."""
    leaves = [t for t in program.terms if t.op in LEAVES]
    last_use: dict = {}
    for pos, term in enumerate(order):
        last_use[term] = pos  # a value nobody reads dies at once
        for x in term.inputs:
            last_use[x] = pos
    for term in program.roots:
        last_use[term] = INFINITY
    holders: dict = {}  # buffer (the term that allocated it) -> live terms holding it
    size_of: dict = {}
    bases: dict = {}  # term -> buffers its value may share memory with
    reuse: dict = {}
    frees: list = []
    profile: list = []
    live = peak = 0
    unknown = False
    for pos, term in enumerate(order):
        dying = [x for x in dict.fromkeys(term.inputs) if last_use[x] == pos]
        fresh = is_fresh(term)
        donor = _donor(term, dying, bases, holders) if fresh and can_write_out(term) else None
        if donor is not None:
            reuse[id(term)] = donor
            mine = bases[donor]
        else:
            size = nbytes(term)
            if size is None:
                unknown, size = True, 0
            mine = (term,) if size or fresh else ()
            if mine:
                size_of[term] = size
                live += size
        if live > peak:
            peak = live
        profile.append(live)
        if not fresh and term.op not in LEAVES:  # may be a view: keeps its inputs' buffers
            shared = tuple(b for x in term.inputs for b in bases.get(x, ()))
            if shared:
                mine = tuple(dict.fromkeys(mine + shared))
        bases[term] = mine
        for b in mine:
            holders[b] = holders.get(b, 0) + 1
        if last_use[term] == pos:
            dying.append(term)
        for x in dying:
            for b in bases.get(x, ()):
                holders[b] -= 1
                if holders[b] == 0:
                    live -= size_of.pop(b, 0)
        frees.append([x for x in dying if x.op not in LEAVES])
    return Plan(order, leaves, {id(t): p for t, p in last_use.items()}, reuse,
                None if unknown else peak, strategy, frees, profile)


def _donor(term: Term, dying: list, bases: dict, holders: dict) -> Optional[Term]:
    """An input dying now whose fresh buffer ``term`` may overwrite in place."""
    for x in dying:
        if x.shape != term.shape or x.dtype != term.dtype:
            continue
        own = bases.get(x, ())
        if len(own) != 1 or not is_fresh(x) or not x.shape:  # x must be its buffer
            continue
        # Every live holder of the buffer must be an input that dies here.
        holding = sum(1 for y in dying if own[0] in bases.get(y, ()))
        if holders.get(own[0], 0) == holding:
            return x
    return None


def greedy_order(program: Program) -> list:
    """A topological order that prefers, among ready terms, the one that frees the most bytes
    minus the bytes it allocates (ties: creation order). Priorities only grow (inputs get
    fewer readers left): a term whose input is left with one reader is pushed again at once,
    stale entries are skipped, so it stays O(n log n). Terms are numbered once, so the loop
    works on lists of ints (no hashing of terms)."""
    terms = [t for t in program.terms if t.op not in LEAVES]
    index = {id(t): i for i, t in enumerate(terms)}
    inputs: list[list[int]] = []  # per term: its distinct computed inputs
    consumers: list[list[int]] = [[] for _ in terms]
    waiting = [0] * len(terms)
    remaining = [0] * len(terms)  # distinct readers left, per term
    for i, t in enumerate(terms):
        mine = [j for j in dict.fromkeys(index.get(id(x)) for x in t.inputs) if j is not None]
        inputs.append(mine)
        waiting[i] = len(mine)
        for j in mine:
            remaining[j] += 1
            consumers[j].append(i)
    size = [nbytes(t) or 0 for t in terms]
    freeable = list(size)  # what a term's death frees: nothing for the outputs
    for t in program.roots:
        j = index.get(id(t))
        if j is not None:
            freeable[j] = 0

    def score(i: int) -> int:
        return sum(freeable[j] for j in inputs[i] if remaining[j] == 1) - size[i]

    heap = [(-score(i), i) for i in range(len(terms)) if waiting[i] == 0]
    heapq.heapify(heap)
    done = [False] * len(terms)
    order = []
    while heap:
        neg, i = heapq.heappop(heap)
        if done[i]:
            continue
        now = score(i)
        if -neg != now:
            heapq.heappush(heap, (-now, i))
            continue
        done[i] = True
        order.append(terms[i])
        for j in inputs[i]:
            remaining[j] -= 1
            if remaining[j] == 1:  # its last reader now frees it
                for k in consumers[j]:
                    if not done[k] and waiting[k] == 0:
                        heapq.heappush(heap, (-score(k), k))
        for k in consumers[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(heap, (-score(k), k))
    return order


def schedule(program: Program) -> Plan:
    """The plan of the creation order or of the greedy order, whichever peaks lower."""
    creation = plan(program, [t for t in program.terms if t.op not in LEAVES], "creation")
    if creation.peak_bytes is None or len(creation.order) < 2:
        return creation
    order = greedy_order(program)
    if order == creation.order:  # the same order (compared by identity): the same plan
        return creation
    greedy = plan(program, order, "greedy")
    if greedy.peak_bytes < creation.peak_bytes:
        return greedy
    return creation
