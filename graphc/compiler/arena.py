"""Buffers kept across calls: each planned program's *arena*.

The memory plan (:mod:`.schedule`) says which buffer every term writes: a new one, or (out=)
the buffer of an input that dies at that step. Without an arena, each new buffer is a new
NumPy array at every call: a ``malloc``, and, when glibc has handed the pages back to the OS
between calls, one page fault per 4 KiB written (752 per call, 2 ms of a 3.3 ms step, for the
float64 MLP of benchmarks/bench_mlp.py). An arena is one block of memory made once, with a
place for every such buffer whose first writer can write into a given array: the kernel is
called with ``out=`` that place. Buffers alive at the same time never overlap; buffers whose
lives do not meet share bytes (first fit in plan order, 64-byte aligned places). A call then
allocates only its outputs and the values of kernels that take no ``out=``.

What never lives in an arena (:func:`writes_into` and :func:`layout`):

* an output or an update value, or any buffer one of them may view (the plan's holders: a
  reshape of a temporary holds the temporary), so what a call returns, or stores in a
  variable, never changes at the next call;
* any buffer a user's kernel (``gc.define_op``) reads, directly or through views: the kernel
  may keep the arrays it is given;
* leaves (arguments, variables, constants), 0-d values, buffers of unknown size or smaller
  than :data:`SMALLEST` (4 KiB), and values
  of kernels that take no ``out=`` (``softmax``, ``one_hot``, ...), of users' ops, of fused
  terms (a lent buffer would stop their member-by-member fallback) and of a matmul with an
  identity operand (the generated code skips that product).

Threads and reentrancy: an :class:`Arena` keeps a pool of at most :data:`KEEP` idle arenas. A
call takes one (a new one when the pool is empty: another thread, or a kernel calling the
same function, holds the others) and gives it back when it ends, error or not; no two running
calls ever share one. Memory: an arena holds at most :data:`MAX_BYTES`; a buffer that would
take it past that is allocated at each call, as without an arena. A function keeps at most
``KEEP * MAX_BYTES`` (128 MiB) in idle arenas, whatever its programs: each shape
specialisation (``None`` sizes) lays out its arena within what the ones before it left
(:class:`Budget`). ``f.stats["arena_bytes"]``
is the size of one arena of the program shown, ``f.stats["kept_bytes"]`` what the function's
programs keep now (idle arenas, and fused groups' block buffers: :mod:`.fusion`);
:meth:`graphc.compiler.function.Function.release_buffers` drops them. Setting :data:`MAX_BYTES` to 0 before compiling turns arenas off.

Layouts: a term is given a place (or, by the plan, a dying input's buffer) only where NumPy's
own result would be C-ordered too, since a later reduction of an F-ordered value adds in
another order: :func:`c_ordered` proves that at compile time where it can, and both back ends
check the other inputs at each call (:func:`layout_checks`).

The planned peak (``planned_peak_bytes``) is unchanged: it counts what is live during a call,
in an arena or not.
"""
from __future__ import annotations

import bisect
import collections
import heapq
from typing import Optional

import numpy as np

from ..errors import OutOfMemoryError
from ..runtime import is_allocation_failure
from .ir import OPS as REGISTRY  # the graph ops and the compiler's own (fused terms)
from .fusion import FUSED
from .ir import Term
from .rules import _is_identity

#: The largest arena a program gets, in bytes (buffers beyond it are allocated at each call).
MAX_BYTES = 64 * 2**20

#: Buffers smaller than this get no place (malloc serves them from its caches at little cost;
#: leaving them out keeps the layout cheap on programs of many tiny terms).
SMALLEST = 4096

#: How many idle arenas a program keeps (more are made while more calls run at once, and
#: dropped when they end).
KEEP = 2

#: Every place in an arena starts at a multiple of this many bytes (a cache line: NumPy's SIMD
#: loops and BLAS read aligned rows).
ALIGN = 64

#: The registry's own ``sum`` kernel, whose ``np.add.reduce`` the back ends call with ``out=``
#: (a replaced kernel is called as it is, without an arena place).
_SUM_KERNEL = REGISTRY["sum"].kernel

_KINDS = frozenset("biufc")  # dtypes a raw block of bytes can hold (no objects)


def writes_into(term: Term) -> bool:
    """Whether both back ends compute ``term`` with ``out=`` a given array of its shape and
    dtype, with the values the kernel returns without one: an ``inplace`` op's kernel (ufuncs,
    relu), ``np.matmul``, and ``sum``'s ``np.add.reduce`` (floating dtypes)."""
    spec = REGISTRY.get(term.op)
    if spec is None or spec.checked or term.dtype.kind not in _KINDS or not term.shape:
        return False
    if spec.inplace:
        return term.op != FUSED
    if term.op == "matmul":
        return spec.kernel is np.matmul and not any(map(_is_identity, term.inputs))
    if term.op == "sum":
        x = term.inputs[0]
        return (spec.kernel is _SUM_KERNEL and x.ndim > 0 and x.dtype == term.dtype
                and term.dtype.kind in "fc" and type(term.attrs["axis"]) is tuple)
    return False


def c_ordered(leaves, order) -> dict:
    """id(term) -> whether ``g.run``'s value of the term is C-ordered at every call, for the
    ``leaves`` and then the computed terms in an ``order`` that has inputs first, whatever
    the feeds' layouts (False: not proven). NumPy allocates a result in the order its operands
    suggest (order 'K'): an F-ordered or transposed input gives an F-ordered result, and a
    later reduction adds in another order. Proven C-ordered: constants that are, 0- and 1-d
    values, ``np.matmul``'s results (always allocated C-ordered), and the values of
    elementwise ufunc terms, ``sum``, ``reshape`` and ``expand_dims`` whose inputs of two or
    more dimensions all are (operands of at most one dimension never sway NumPy's order).
    Arguments and variables are not: the caller may give any layout."""
    known: dict = {}
    for term in leaves:
        value = term.attrs.get("value") if term.op == "constant" else None
        known[id(term)] = term.ndim <= 1 or (value is not None and np.ndim(value) == term.ndim
                                             and np.asarray(value).flags.c_contiguous)
    kinds: dict = {}  # op -> True (always C-ordered), None (as its inputs), False (unknown)
    for term in order:
        kind = kinds.get(term.op, kinds)  # (kinds itself: not seen yet)
        if kind is kinds:
            kind = kinds[term.op] = order_kind(term.op)
        if term.ndim <= 1 or kind:
            known[id(term)] = True
        elif kind is None:
            known[id(term)] = all(known[id(x)] for x in term.inputs if x.ndim > 1)
        else:
            known[id(term)] = False
    return known


def order_kind(op: str) -> Optional[bool]:
    """How ``op``'s values are ordered (see :func:`c_ordered`): True always C (np.matmul),
    None C when its inputs of two or more dimensions are, False not proven."""
    spec = REGISTRY.get(op)
    if spec is None or op == FUSED:
        return False
    if op == "matmul" and spec.kernel is np.matmul:
        return True
    if not spec.checked and (spec.inplace or op in _ORDER_KEEPING and spec.kernel is _KERNELS[op]):
        return None
    return False


def layout_checks(plan) -> dict:
    """id(term) -> the positions in ``term.inputs`` whose C order both back ends check at
    run time before computing ``term`` with ``out=`` (a dying input's buffer, an arena
    place, or a masked fill in place): NumPy's own result is C-ordered, like every such
    buffer that is not an input's, exactly when the inputs of two or more dimensions are (see
    :func:`c_ordered`). An empty tuple: proven, no check; a check that fails computes the
    term as ``g.run`` does, into a new array. For every term with a place or a donor."""
    arena = plan.arena
    written = set(plan.reuse) | (set(arena.slot) if arena is not None else set())
    if not written:
        return {}
    known = c_ordered(plan.leaves, plan.order)
    checks = {}
    for term in plan.order:
        if id(term) not in written:
            continue
        inputs = term.inputs
        if term.op == "matmul":  # (np.matmul's results are C-ordered, like its places)
            checks[id(term)] = ()
        elif len(inputs) == 1:
            x = inputs[0]
            checks[id(term)] = () if x.ndim <= 1 or known[id(x)] else (0,)
        elif len(inputs) == 2:  # (most terms: spelled out, no generator)
            a, b = inputs
            check_a = a.ndim > 1 and not known[id(a)]
            check_b = b is not a and b.ndim > 1 and not known[id(b)]
            checks[id(term)] = _PAIRS[check_a, check_b]
        else:
            seen: set = set()
            checks[id(term)] = tuple(
                k for k, x in enumerate(inputs)
                if x.ndim > 1 and not known[id(x)] and not (id(x) in seen or seen.add(id(x))))
    return checks


_PAIRS = {(False, False): (), (True, False): (0,), (False, True): (1,), (True, True): (0, 1)}

#: Ops whose registry kernel keeps a C-ordered input's order (see :func:`c_ordered`).
_ORDER_KEEPING = frozenset({"sum", "reshape", "expand_dims"})
_KERNELS = {op: REGISTRY[op].kernel for op in _ORDER_KEEPING}


def layout(plan, limit: Optional[int] = None) -> tuple:
    """``(places, nbytes)``: the places of the plan's arena buffers, ``[(term number,
    offset)]`` in plan order, and the arena's size. A buffer qualifies when its term allocates
    it (no ``out=`` reuse of an input), :func:`writes_into` holds, it has at least
    :data:`SMALLEST` bytes, and no output, update or user's kernel holds or reads it; its life
    runs from its term's step to the step where its last holder dies. The arena holds at most
    ``limit`` bytes (:data:`MAX_BYTES` by default)."""
    limit = MAX_BYTES if limit is None else min(limit, MAX_BYTES)
    facts, walk = plan.numbered, plan.walk
    terms, sizes, released, reuse = facts.terms, facts.size, walk.released, walk.reuse
    infinity = float("inf")
    free: list = []  # idle regions (offset, size) below ``end``, by offset, coalesced
    end = 0
    pending: list = []  # heap of (release position, offset, size)
    places = []
    smallest = max(SMALLEST, 1)
    candidates = [(pos, i) for pos, i in enumerate(walk.order)  # (the cheap tests first)
                  if (sizes[i] or 0) >= smallest and released[i] != infinity and i not in reuse]
    if not candidates:
        return places, end
    seen = _seen_by_users(facts, walk.order, reuse)
    for pos, i in candidates:
        if i in seen or not writes_into(terms[i]):
            continue
        size = sizes[i]
        while pending and pending[0][0] < pos:  # regions whose buffers died before this step
            _, offset, room = heapq.heappop(pending)
            _give(free, offset, room)
        size = -(-size // ALIGN) * ALIGN
        k, offset = _fit(free, size, end)
        if offset + size > limit:
            continue  # allocated at each call
        _take(free, k, size)
        end = max(end, offset + size)
        places.append((i, offset))
        heapq.heappush(pending, (released[i], offset, size))
    return places, end


def _seen_by_users(facts, order: list, reuse: dict) -> set:
    """The buffers (allocating terms' numbers) that a user's kernel (``gc.define_op``) reads,
    directly or through views: a kernel may keep the arrays it is given (a probe that records
    values), and those must stay the call's own, as without an arena."""
    terms, fresh, computed = facts.terms, facts.fresh, facts.computed_inputs
    users = {op for op in {t.op for t in terms} if REGISTRY[op].checked}
    if not users:
        return set()
    stack = [j for i in order if terms[i].op in users for j in computed[i]]
    seen: set = set()
    while stack:
        j = stack.pop()
        if j in seen:
            continue
        seen.add(j)
        if j in reuse:  # written into a dying input's buffer: that buffer's first writer
            stack.append(reuse[j])
        elif not fresh[j]:  # may be a view of its inputs' buffers
            stack.extend(computed[j])
    return seen


def _fit(free: list, size: int, end: int) -> tuple:
    """Where ``size`` bytes go: ``(k, offset)`` for the first idle region ``free[k]`` that
    holds them, else the end of the block (``k`` -1; from the start of an idle region that
    reaches the end, ``k`` -2)."""
    for k, (offset, room) in enumerate(free):
        if room >= size:
            return k, offset
    if free and sum(free[-1]) == end:
        return -2, free[-1][0]
    return -1, end


def _take(free: list, k: int, size: int) -> None:
    """Take ``size`` bytes from the start of ``free[k]`` (see :func:`_fit`)."""
    if k == -2:
        free.pop()
    elif k >= 0:
        offset, room = free[k]
        if room == size:
            del free[k]
        else:
            free[k] = (offset + size, room - size)


def _give(free: list, offset: int, size: int) -> None:
    """Put a region back into ``free``, merged with its idle neighbours."""
    k = bisect.bisect(free, (offset, size))
    if k < len(free) and offset + size == free[k][0]:
        size += free.pop(k)[1]
    if k and sum(free[k - 1]) == offset:
        offset, size = free[k - 1][0], free[k - 1][1] + size
        free[k - 1] = (offset, size)
    else:
        free.insert(k, (offset, size))


class Arena:
    """A program's arena layout and its pool of idle arenas.

    ``slot``: id(term) -> its place's index in an arena (a tuple of arrays, one per place);
    ``nbytes``: one arena's size; ``pool``: the idle arenas, a ``deque`` whose ``pop`` (or,
    when it is empty, :meth:`make`) takes one for a call and :meth:`give` gives it back
    (appends and pops are atomic, the bound exact)."""

    def __init__(self, terms: list, offsets: list, nbytes: int) -> None:
        self.slot = {id(t): k for k, t in enumerate(terms)}
        self.places = [(tuple(map(int, t.shape)), t.dtype, offset)
                       for t, offset in zip(terms, offsets)]
        self.nbytes = nbytes
        self.pool: collections.deque = collections.deque(maxlen=KEEP)
        self.give = self.pool.append  # (the oldest idle arena is dropped when KEEP are kept)

    @classmethod
    def of(cls, plan, limit: Optional[int] = None) -> Optional["Arena"]:
        """The arena of ``plan`` (at most ``limit`` bytes), or None when no buffer qualifies
        (or arenas are off)."""
        if MAX_BYTES <= 0 or plan.peak_bytes is None:
            return None
        places, nbytes = layout(plan, limit)
        if not places:
            return None
        terms = plan.numbered.terms
        return cls([terms[i] for i, _ in places], [offset for _, offset in places], nbytes)

    @property
    def kept_bytes(self) -> int:
        """The bytes the idle arenas hold."""
        return len(self.pool) * self.nbytes

    def make(self) -> tuple:
        """A new arena: one block of bytes, viewed as one array per place."""
        try:
            block = np.empty(self.nbytes + ALIGN, np.uint8)
        except Exception as exc:  # noqa: BLE001 - MemoryError, or NumPy's own
            if is_allocation_failure(exc):
                raise OutOfMemoryError(f"a compiled function's buffers ({self.nbytes} bytes) "
                                       f"could not be allocated: {exc}") from exc
            raise
        start = -block.ctypes.data % ALIGN
        return tuple(np.ndarray(shape, dtype, block, start + offset)
                     for shape, dtype, offset in self.places)

    def clear(self) -> None:
        """Drop the idle arenas (the next calls make new ones)."""
        self.pool.clear()


class Budget:
    """What the programs of one function may still keep in idle arenas: ``KEEP *
    MAX_BYTES`` in all. Each program made after the first is laid out within what is left
    (:attr:`limit`: one arena's bytes, since it keeps up to :data:`KEEP`), and :meth:`spend`
    takes its share. Used under the specialiser's lock (one program made at a time)."""

    def __init__(self) -> None:
        self.left = KEEP * MAX_BYTES

    @property
    def limit(self) -> int:
        return self.left // max(KEEP, 1)

    def spend(self, arena: Optional[Arena]) -> None:
        if arena is not None:
            self.left -= KEEP * arena.nbytes
