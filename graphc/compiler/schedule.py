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

The loops work on the terms' numbers (:class:`Numbered`: the static facts of every term, made
once per program and shared by both plans and the greedy order), so they hash no terms.
"""
from __future__ import annotations

import functools
import heapq
import math
from itertools import compress
from typing import NamedTuple, Optional

from .ir import OPS as REGISTRY  # the graph ops and the compiler's own (fused terms)
from .ir import LEAVES, Program, Term
from .share import PART, SHARED

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
    "random_normal", "random_permutation", "random_next", "full_like"}) | frozenset({
    # compiled programs only: a softmax cross-entropy and its gradient in one new array, and
    # its parts: the loss's a copy, the gradient's a view of the array's first part that
    # only it reads (it also holds the loss's few bytes: see graphc.compiler.share)
    SHARED, PART})

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
    return term.op not in LEAVES and (term.op in FRESH_OPS or _inplace(term.op)
                                      or _fresh_product(term))


def _fresh_product(term: Term) -> bool:
    """An einsum of two or more operands makes a new product (of one, it may be a view of its
    operand: ``"ij->ji"``)."""
    return term.op == "einsum" and len(term.inputs) > 1


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


class Plan:
    """A schedule with its liveness and buffer decisions.

    ``order``: the non-leaf terms in execution order; ``leaves``: the leaf terms (read before
    the first instruction); ``peak_bytes``: the planned peak of the live buffers (None when
    sizes are unknown); ``strategy``: "creation" or "greedy"; ``profile``: per position, the
    planned live bytes. ``last_use`` (id(term) -> position of its last use; INFINITY for
    roots, -1: unread), ``reuse`` (id(term) -> the input term whose buffer it writes into,
    out=) and ``frees`` (per position: the terms whose values die there) are made from the
    walk's term numbers when first read; ``numbered`` and ``walk`` are those numbers (the VM
    and the arena layout read them: ``walk.released`` is, per buffer, the step where its last
    holder dies); ``arena`` the buffers kept across calls."""

    def __init__(self, numbered: "Numbered", walk: "_Walk", strategy: str) -> None:
        terms = numbered.terms
        self.order: list = list(map(terms.__getitem__, walk.order))
        self.leaves: list = [t for t, is_leaf in zip(terms, numbered.leaf) if is_leaf]
        self.peak_bytes: Optional[int] = walk.peak_bytes
        self.strategy = strategy
        self.profile: list = walk.profile
        self.numbered, self.walk = numbered, walk

    @functools.cached_property
    def arena(self):
        """The buffers this plan keeps across calls (:class:`graphc.compiler.arena.Arena`),
        or None when no buffer qualifies; made once, shared by both back ends."""
        from .arena import Arena  # (the arena reads the plan: imported when first needed)
        return Arena.of(self, self.arena_limit)

    #: The most bytes :attr:`arena` may hold (None: ``arena.MAX_BYTES``), set before it is
    #: made (a function's shape specialisations share a budget: ``arena.Budget``).
    arena_limit: Optional[int] = None

    @functools.cached_property
    def layout_checks(self) -> dict:
        """id(term) -> the inputs (positions) whose C order is checked at run time before the
        term is written with ``out=`` (:func:`graphc.compiler.arena.layout_checks`)."""
        from .arena import layout_checks
        return layout_checks(self)

    @property
    def reused_buffers(self) -> int:
        """How many terms write into a dying input's buffer."""
        return len(self.walk.reuse)

    @functools.cached_property
    def last_use(self) -> dict:
        return dict(zip(map(id, self.numbered.terms), self.walk.last_use))

    @functools.cached_property
    def reuse(self) -> dict:
        terms = self.numbered.terms
        return {id(terms[i]): terms[j] for i, j in self.walk.reuse.items()}

    @functools.cached_property
    def frees(self) -> list:
        term = self.numbered.terms.__getitem__
        return [list(map(term, dying)) for dying in self.walk.dying]


class Numbered:
    """A program's terms numbered once, with the static facts every plan and the greedy
    scheduler read (so the loops work on lists of ints: no hashing of terms)."""

    def __init__(self, program: Program) -> None:
        # (one comprehension per fact: tighter loops than one loop storing them all)
        self.terms = terms = program.terms
        self.index = index = {t: i for i, t in enumerate(terms)}  # terms hash by identity
        number = index.__getitem__
        ops = [t.op for t in terms]
        #: per term: whether it is a leaf; its distinct inputs; the same without the leaves
        self.leaf = leaf = [op in LEAVES for op in ops]
        # (one and two inputs spelled out: most terms; dict.fromkeys keeps the first of equals)
        self.inputs = inputs = [
            (number(ins[0]),) if (k := len(ins := t.inputs)) == 1 else
            ((i,) if (i := number(ins[0])) == (j := number(ins[1])) else (i, j)) if k == 2 else
            tuple(dict.fromkeys(map(number, ins))) if k else () for t in terms]
        computed = [not is_leaf for is_leaf in leaf]
        is_computed = computed.__getitem__
        reads_no_leaf = frozenset(compress(range(len(leaf)), leaf)).isdisjoint
        self.computed_inputs = [ins if reads_no_leaf(ins) else
                                tuple(compress(ins, map(is_computed, ins))) for ins in inputs]
        inplace_ops = {op for op in set(ops) if _inplace(op)}
        self.fresh = fresh = [op in FRESH_OPS or op in inplace_ops or _fresh_product(t)
                              for op, t in zip(ops, terms)]
        #: per term: a number equal for equal (shape, dtype), and the bytes it allocates
        #: (None when unknown; nothing for leaves and views: :func:`nbytes`, once per kind)
        kinds: dict = {}
        self.kind = kind = [kinds.setdefault((t.shape, t.dtype), len(kinds)) for t in terms]
        kind_bytes = [None if None in shape else math.prod(shape) * dtype.itemsize
                      for shape, dtype in kinds]  # (Term.size times the item size)
        self.size = [0 if is_leaf or op in VIEW_OPS else kind_bytes[k]
                     for is_leaf, op, k in zip(leaf, ops, kind)]
        #: fresh arrays with dimensions (may donate their buffer), and the terms that may be
        #: computed in a dying input's buffer (known sizes; out= for a ufunc of an inplace
        #: op, or a masked_fill where)
        has_dimensions = [bool(shape) for shape, _ in kinds]
        self.ownable = ownable = [f and has_dimensions[k] for f, k in zip(fresh, kind)]
        self.writable = [o and kind_bytes[k] is not None and (
                             op in inplace_ops or op == "where" and masked_fill(t))
                         for o, k, op, t in zip(ownable, kind, ops, terms)]
        #: per term: the one input it may write into (a masked fill writes into its x, never
        #: into its condition), or -1 for any dying input of its kind
        self.donor_only = [index[t.inputs[1]] if w and t.op == "where" else -1
                           for w, t in zip(self.writable, terms)]
        self.roots = [index[t] for t in program.roots if t in index]

    def computed(self) -> list:
        """The non-leaf terms' numbers in creation order."""
        leaf = self.leaf
        return [i for i in range(len(leaf)) if not leaf[i]]


def plan(program: Program, order: list, strategy: str = "creation",
         numbered: Optional[Numbered] = None) -> Plan:
    """Liveness, buffer reuse and planned peak memory of one execution order."""
    facts = numbered or Numbered(program)
    index = facts.index
    return Plan(facts, _plan(facts, [index[t] for t in order]), strategy)


class _Walk(NamedTuple):
    """One order's plan in term numbers (made a :class:`Plan` only for the order kept)."""

    order: list
    last_use: list  # per term: position of its last use (-1: none, INFINITY: a root)
    reuse: dict  # term -> the input whose buffer it writes into
    peak_bytes: Optional[int]
    dying: list  # per position: the computed terms whose values die there
    profile: list
    released: list  # per buffer (the term that allocated it): the position where its last
    #                 holder dies (INFINITY: never, an output or update holds it)


def _plan(facts: Numbered, order: list, beat: Optional[int] = None) -> Optional[_Walk]:
    """The walk of ``order``; with ``beat``, None as soon as the live bytes reach it (the
    order cannot peak lower than ``beat``)."""
    inputs, computed, fresh = facts.inputs, facts.computed_inputs, facts.fresh
    writable, ownable, kind, sizes = facts.writable, facts.ownable, facts.kind, facts.size
    donor_only = facts.donor_only
    n = len(inputs)
    last_use = [-1] * n
    for pos, i in enumerate(order):
        last_use[i] = pos  # a value nobody reads dies at once
        for j in inputs[i]:
            last_use[j] = pos
    for j in facts.roots:
        last_use[j] = INFINITY
    holders = [0] * n  # buffer (the term that allocated it) -> live terms holding it
    size_of = [0] * n
    bases: list = [()] * n  # term -> buffers its value may share memory with
    reuse: dict = {}
    deaths: list = []
    profile: list = []
    released = [INFINITY] * n
    live = peak = 0
    unknown = False
    for pos, i in enumerate(order):
        dying = []  # (leaves own no buffer: only computed inputs matter)
        for j in computed[i]:
            if last_use[j] == pos:
                dying.append(j)
        donor = None
        if writable[i]:
            k, only = kind[i], donor_only[i]
            for x in dying:  # an input dying now whose fresh buffer i may overwrite in place
                own = bases[x]
                if kind[x] != k or len(own) != 1 or not ownable[x] or only >= 0 and x != only:
                    continue
                # every live holder of the buffer must be an input that dies here
                b = own[0]
                holding = 1
                if len(dying) > 1:
                    holding = 0
                    for y in dying:
                        if b in bases[y]:
                            holding += 1
                if holders[b] == holding:
                    donor = x
                    break
        if donor is not None:
            reuse[i] = donor
            mine = bases[donor]
        else:
            size = sizes[i]
            if size is None:
                unknown, size = True, 0
            mine = (i,) if size or fresh[i] else ()
            if mine:
                size_of[i] = size
                live += size
        if live > peak:
            peak = live
            if beat is not None and peak >= beat:
                return None
        profile.append(live)
        if not fresh[i]:  # may be a view: keeps its inputs' buffers
            shared = tuple(b for x in computed[i] for b in bases[x])
            if shared:
                mine = tuple(dict.fromkeys(mine + shared))
        bases[i] = mine
        for b in mine:
            holders[b] += 1
        if last_use[i] == pos:
            dying.append(i)
        for x in dying:
            for b in bases[x]:
                holders[b] -= 1
                if holders[b] == 0:
                    live -= size_of[b]
                    size_of[b] = 0
                    released[b] = pos
        deaths.append(dying)
    return _Walk(order, last_use, reuse, None if unknown else peak, deaths, profile, released)


def greedy_order(program: Program, numbered: Optional[Numbered] = None) -> list:
    """A topological order that prefers, among ready terms, the one that frees the most bytes
    minus the bytes it allocates (ties: creation order). Priorities only grow (inputs get
    fewer readers left): a term whose input is left with one reader is pushed again at once,
    older entries are skipped, so it stays O(n log n)."""
    facts = numbered or Numbered(program)
    return [facts.terms[i] for i in _greedy(facts)]


def _greedy(facts: Numbered, beat=INFINITY) -> Optional[list]:
    """The greedy order; None as soon as its plan surely peaks at ``beat`` or higher.

    That test is a lower bound of the plan's live bytes (:func:`_plan`), kept as the order
    grows: the bytes of the fresh terms computed and not dead yet. Each of them holds one
    buffer of its own size, and no two hold the same one (a term writes into a buffer only
    when every other holder dies at that step), so the plan's live bytes are at least that."""
    n = len(facts.terms)
    inputs = facts.computed_inputs
    consumers: list = [[] for _ in range(n)]
    for i, mine in enumerate(inputs):  # (leaves read nothing)
        for j in mine:
            consumers[j].append(i)
    waiting = list(map(len, inputs))  # inputs not computed yet, per term
    remaining = list(map(len, consumers))  # distinct readers left, per term
    size = [s or 0 for s in facts.size]
    freeable = size.copy()  # what a term's death frees: nothing for the outputs
    held = [s if f else 0 for s, f in zip(size, facts.fresh)]  # (the bound's bytes per term)
    released = held.copy()  # what its death takes off the bound: nothing for the outputs
    for j in facts.roots:
        freeable[j] = released[j] = 0

    def key(i: int) -> int:
        """The heap key: the score first (highest first), then creation order; one int
        (-score * n + i), cheaper to push and compare than a tuple."""
        gain = -size[i]
        for j in inputs[i]:
            if remaining[j] == 1:
                gain += freeable[j]
        return i - gain * n

    heap = [key(i) for i in facts.computed() if waiting[i] == 0]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    done = [False] * n
    order = []
    bound = 0  # the lower bound of the plan's live bytes
    while heap:
        i = pop(heap) % n
        if done[i]:  # an older entry of a term scheduled already
            continue
        # This entry is current: scores only grow, each rise pushes a new entry, and the
        # newest entry of a term has the lowest key, so it pops first.
        done[i] = True
        order.append(i)
        for j in inputs[i]:
            remaining[j] -= 1
            if remaining[j] == 1:  # its last reader now frees it
                for k in consumers[j]:
                    if not done[k] and waiting[k] == 0:
                        push(heap, key(k))
            elif not remaining[j]:  # read for the last time: dead
                bound -= released[j]
        bound += held[i]
        if bound >= beat:
            return None
        if not remaining[i]:  # nobody reads it: dead at once
            bound -= released[i]
        for k in consumers[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                push(heap, key(k))
    return order


def schedule(program: Program) -> Plan:
    """The plan of the creation order or of the greedy order, whichever peaks lower."""
    facts = Numbered(program)
    computed = facts.computed()
    creation = _plan(facts, computed)
    if not creation.peak_bytes or len(computed) < 2:  # unknown sizes, or nothing to lower
        return Plan(facts, creation, "creation")
    order = _greedy(facts, beat=creation.peak_bytes)
    if order is None or order == computed:  # it cannot peak lower; the same order, same plan
        return Plan(facts, creation, "creation")
    greedy = _plan(facts, order, beat=creation.peak_bytes)  # wins only by peaking lower
    if greedy is not None:
        return Plan(facts, greedy, "greedy")
    return Plan(facts, creation, "creation")
