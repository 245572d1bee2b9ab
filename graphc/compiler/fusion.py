"""The ``fuse`` pass: chains of elementwise ufunc terms on large arrays become one term.

Unfused, each elementwise op streams its whole operands through memory (the planner's
``out=`` reuse already saves the allocations, not the traffic). A fused term evaluates its
members block by block instead: :data:`BLOCK_BYTES` per buffer at a time, through buffers
that stay in cache, calling the *same* NumPy ufuncs on the same operands (weak Python
scalars, 0-d constants and broadcast inputs as they are), so every value is bit for bit the
unfused program's and ``g.run``'s. The one exception is NumPy's own: where two NaNs of
opposite sign meet (``nan + -nan``), which one an add returns depends on whether the element
falls in the SIMD body or the tail of the loop, so a NaN's sign may differ.

A group is a maximal set of terms that all

* are elementwise registry ops whose kernel is a plain ufunc with ``out=`` (``inplace``),
  never user ops (``gc.define_op``),
* have the same known shape (inputs may broadcast into it), of at least :data:`MIN_BYTES`
  in their largest dtype, and a float, complex or bool dtype (no ufunc raises there under the
  ignored floating-point errors the body runs in),
* and whose values nobody outside the group reads, except its *root*, the one value the
  fused term computes.

Blocks run only when every array input is C-contiguous (then blocks are contiguous too, so
NumPy picks the same inner loops); otherwise, and when a block step fails, the kernel
evaluates the members one after the other on whole arrays, exactly the unfused program
(a member writes into a dying member's buffer only where all its inputs of two or more
dimensions are C-contiguous, so every value has NumPy's own layout), and a failure names the
member's node and line as the unfused program would.

The fused op exists only inside compiled programs (:data:`graphc.compiler.ir.COMPILER_OPS`):
``g.run`` evaluates node by node and never sees it. Its name is not an identifier, so no user
op and no file can take it.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Optional

import numpy as np

from ..ops.registry import REGISTRY, Op
from ..runtime import kernel_error
from .ir import COMPILER_OPS, Program, Term, as_described, remapped

#: The op of a fused term.
FUSED = "fused elementwise"

#: Bytes per block buffer (256 KiB: 32768 float64 elements, 65536 float32): a group's few
#: block buffers stay in a 1 MiB L2 cache, and a block is long enough that the Python loop
#: costs little (benchmarks/bench_fusion.py).
BLOCK_BYTES = 1 << 18

#: Smallest group that is fused, in bytes of its largest value (8 MB: 10**6 float64
#: elements). Measured on a 32 MiB L3 cache: below it, the unfused arrays stream from cache
#: about as fast as blocks do, and the block loop only adds Python overhead.
MIN_BYTES = 8 * 10**6

_DTYPE_KINDS = frozenset("fcb")


def fusable(term: Term) -> bool:
    """Whether ``term`` may be a member of a fused group (shape aside)."""
    spec = REGISTRY.get(term.op)
    return (spec is not None and spec.inplace and spec.elementwise and not spec.checked
            and isinstance(spec.kernel, np.ufunc) and spec.kernel.nout == 1
            and term.dtype.kind in _DTYPE_KINDS and term.ndim > 0 and None not in term.shape
            and all(None not in x.shape for x in term.inputs))  # blocks index the inputs


def groups(program: Program) -> list:
    """The groups to fuse: lists of member terms in program order, the root last."""
    readers: dict = {}  # id(term) -> {id(reader): reader}, its distinct readers
    for term in program.terms:
        for x in term.inputs:
            readers.setdefault(id(x), {})[id(term)] = term
    roots = {id(t) for t in program.roots}
    group_of: dict = {}  # id(member) -> its group (a list: the root first while collecting)
    found = []
    for term in reversed(program.terms):  # every reader before the terms it reads
        if not fusable(term):
            continue
        group = None
        if id(term) not in roots and id(term) in readers:
            theirs = [group_of.get(r) for r in readers[id(term)]]
            first = theirs[0]
            if (first is not None and all(g is first for g in theirs)
                    and first[0].shape == term.shape):
                group = first  # only its own group reads it: a member
        if group is None:
            group = []
            found.append(group)
        group.append(term)
        group_of[id(term)] = group
    return [g[::-1] for g in reversed(found) if len(g) > 1 and _bytes(g) >= MIN_BYTES]


def _bytes(group: list) -> int:
    return math.prod(group[0].shape) * max(m.dtype.itemsize for m in group)


def fuse(program: Program, fired: Counter) -> Program:
    """Replace every group (see :func:`groups`) by one fused term at its root's place."""
    prod, limit = math.prod, MIN_BYTES
    if not any(t.shape and None not in t.shape and prod(t.shape) * t.dtype.itemsize >= limit
               for t in program.terms):  # a cheap test first: most programs have no group
        return program
    found = groups(program)
    if not found:
        return program
    root_of = {id(g[-1]): g for g in found}
    inside = {id(m) for g in found for m in g[:-1]}
    mapping: dict = {}
    terms = []
    for old in program.terms:
        if id(old) in inside:
            continue  # computed inside its group's term
        members = root_of.get(id(old))
        if members is not None:
            new = _fused_term(members, mapping)
            fired["fuse:groups"] += 1
            fired["fuse:terms"] += len(members)
        else:
            new = remapped(old, mapping)
        mapping[old] = new
        terms.append(new)
    return program.replace(terms, mapping)


def unfused(terms: list) -> list:
    """``terms`` with every fused term replaced by its members (for reports that name the
    terms the user's nodes became, such as ``f.stats["upcasts"]``)."""
    out = []
    for term in terms:
        if term.op == FUSED:
            out.extend(term.attrs["group"].members)
        else:
            out.append(term)
    return out


def _fused_term(members: list, mapping: dict) -> Term:
    inside = {id(m) for m in members}
    externals = list({id(x): x for m in members for x in m.inputs
                      if id(x) not in inside}.values())
    root = members[-1]
    group = Group(members, externals)
    return Term(FUSED, tuple(mapping[x] for x in externals), {"group": group}, root.shape,
                root.dtype, root.origin)


class Group:
    """The attr of a fused term: its members as ufunc steps over slots, and the block plan.

    Slots ``0 .. k-1`` are the term's inputs (the group's external values), slot ``k + j`` is
    member ``j``'s value; the root is the last member."""

    def __init__(self, members: list, externals: list) -> None:
        self.members = tuple(members)
        self.shape = members[-1].shape
        self.dtype = members[-1].dtype
        k = len(externals)
        slot = {id(x): i for i, x in enumerate(externals)}
        slot.update((id(m), k + j) for j, m in enumerate(members))
        self.steps = tuple((REGISTRY[m.op].kernel, tuple(slot[id(x)] for x in m.inputs),
                            k + j) for j, m in enumerate(members))
        last = {}  # slot -> the step reading it last
        for j, (_, args, _) in enumerate(self.steps):
            for a in args:
                last[a] = j
        self.last = last
        self.arity = k
        # Blocks take each weak Python float as a 0-d array of the float result's dtype: the
        # same loop and values (the float is cast to the loop's dtype either way), without
        # NumPy converting the Python object again in every call.
        self.block_steps = []
        constants: dict = {}  # (slot, dtype) -> slot of its 0-d array
        end = k + len(members)
        for (ufunc, args, dst), m in zip(self.steps, members):
            if m.dtype.kind == "f":
                args = tuple(constants.setdefault((a, m.dtype), end + len(constants))
                             if a < k and _weak_float(externals[a]) else a for a in args)
            self.block_steps.append((ufunc, args, dst))
        self.constants = tuple((a, dtype) for (a, dtype) in constants)
        self._plan_buffers(last)
        self._spare: list = []  # block buffers kept between calls (allocating them costs)
        itemsize = max(m.dtype.itemsize for m in members)
        self._plan_blocks([x.shape for x in externals], max(1, BLOCK_BYTES // itemsize))

    def _plan_buffers(self, last: dict) -> None:
        """One block buffer per value alive at a time, per dtype; a step writes into an
        input dying at that step when the dtypes match (in place, as the unfused program)."""
        k, free, dtypes = self.arity, {}, []
        self.buffer_of = {}  # member slot -> buffer index (the root has none)
        for j, (_, args, dst) in enumerate(self.steps[:-1]):
            for a in dict.fromkeys(args):
                if a >= k and last[a] == j:
                    free.setdefault(self.members[a - k].dtype, []).append(self.buffer_of[a])
            dtype = self.members[j].dtype
            pool = free.get(dtype)
            if pool:
                self.buffer_of[dst] = pool.pop()
            else:
                self.buffer_of[dst] = len(dtypes)
                dtypes.append(dtype)
        self.buffer_dtypes = tuple(dtypes)

    def _plan_blocks(self, shapes: list, size: int) -> None:
        """Blocks along one axis ``a`` of at most ``size`` elements (whole sub-arrays over the
        axes after ``a``), and how each input is indexed per block (unlisted: whole)."""
        shape = self.shape
        inner, a = 1, len(shape) - 1
        while a > 0 and inner * shape[a] <= size:
            inner *= shape[a]
            a -= 1
        rows = max(1, size // inner)
        self.block_shape = (min(rows, shape[a]),) + tuple(shape[a + 1:])
        self.blocks = []  # (index into the full shape, rows)
        for prefix in np.ndindex(*shape[:a]):
            for r0 in range(0, shape[a], rows):
                r1 = min(r0 + rows, shape[a])
                self.blocks.append((prefix + (slice(r0, r1),), r1 - r0))
        self.indexers = []  # (input slot, [its index per block])
        ndim = len(shape)
        for i, s in enumerate(shapes):
            pad = ndim - len(s)
            if pad > a or (pad == a and s[0] == 1):
                continue  # broadcast whole against every block
            keep = [j for j in range(pad, a + 1)]
            per_block = []
            for index, _ in self.blocks:
                per_block.append(tuple(
                    (index[j] if s[j - pad] != 1 else (0 if j < a else slice(None)))
                    for j in keep))
            self.indexers.append((i, per_block))

    def __repr__(self) -> str:
        ops = ", ".join(m.op for m in self.members)
        return f"<fused group of {len(self.members)} ({ops}) {self.shape} {self.dtype}>"

    @property
    def kept_bytes(self) -> int:
        """The bytes of the block buffers kept between calls (up to two sets of them)."""
        return sum(buffer.nbytes for full in list(self._spare) for buffer in full)

    def clear(self) -> None:
        """Drop the kept block buffers (the next call makes them again)."""
        self._spare.clear()

    # -- running ---------------------------------------------------------------------------
    def run(self, values: tuple, out: Optional[np.ndarray]) -> np.ndarray:
        """The root's value from the inputs' values (``out``: a dying input's buffer)."""
        for v in values:
            if v.__class__ is np.ndarray:
                if v.ndim and not v.flags.c_contiguous:
                    return self.run_stepwise(values, out)
                if out is not None and v is not out and np.may_share_memory(v, out):
                    out = None  # another input views it: later blocks still read it
        try:
            return self.run_blocked(values, out)
        except Exception as exc:
            if out is None:
                return self.run_stepwise(values, out)  # raises naming the failing member
            # an input's buffer may be half overwritten: nothing to redo; name the member
            if isinstance(exc, _StepFailed):
                raise exc.error(self, values) from exc.__cause__
            raise

    def run_blocked(self, values: tuple, out: Optional[np.ndarray]) -> np.ndarray:
        result = np.empty(self.shape, self.dtype) if out is None else out
        try:  # the block buffers of an earlier call (list.pop is atomic: a thread each)
            full = self._spare.pop()
        except IndexError:
            full = [np.empty(self.block_shape, d) for d in self.buffer_dtypes]
        try:
            self._blocks(values, result, full)
        finally:
            if len(self._spare) < 2:
                self._spare.append(full)
        return result

    def _blocks(self, values: tuple, result: np.ndarray, full: list) -> None:
        vals = list(values) + [None] * len(self.steps)
        vals += [np.array(values[a], dtype) for a, dtype in self.constants]
        root = self.arity + len(self.steps) - 1
        buffer_of = self.buffer_of.items()
        steps = self.block_steps
        current = None
        for b, (index, rows) in enumerate(self.blocks):
            if rows != current:  # the first block, and the last one if shorter
                current = rows
                views = full if rows == self.block_shape[0] else [f[:rows] for f in full]
                for s, k in buffer_of:
                    vals[s] = views[k]
            for i, per_block in self.indexers:
                vals[i] = values[i][per_block[b]]
            vals[root] = result[index]
            for j, (ufunc, args, dst) in enumerate(steps):
                try:
                    ufunc(*[vals[a] for a in args], out=vals[dst])
                except Exception as exc:
                    raise _StepFailed(j) from exc

    def run_stepwise(self, values: tuple, out: Optional[np.ndarray]) -> np.ndarray:
        """The members one after the other on whole arrays: the unfused program's calls."""
        k, last = self.arity, self.last
        vals = list(values) + [None] * len(self.steps)
        root = len(self.steps) - 1
        for j, (ufunc, args, dst) in enumerate(self.steps):
            target = out if j == root else None
            inputs = [vals[a] for a in args]
            # a dying member of the same dtype is ours to overwrite, but only where NumPy's
            # own result would be C-ordered too (arena.layout_checks' rule): else the value
            # keeps NumPy's order, and a later reduction adds as g.run does
            if target is None and all(_c_ordered(v) for v in inputs):
                dtype = self.members[j].dtype
                for a in args:
                    if a >= k and last[a] == j and vals[a].dtype == dtype:
                        target = vals[a]
                        break
            try:
                vals[dst] = ufunc(*inputs) if target is None else ufunc(*inputs, out=target)
            except Exception as exc:
                raise kernel_error(as_described(self.members[j]), exc, inputs) from exc
            for a in args:
                if a >= k and last[a] == j:
                    vals[a] = None  # dead: freed as in the unfused program
        return vals[-1]


def _c_ordered(value) -> bool:
    """Whether ``value`` cannot sway NumPy's result order away from C (see
    :func:`graphc.compiler.arena.c_ordered`): not an array of two or more dimensions that is
    not C-contiguous."""
    return value.__class__ is not np.ndarray or value.ndim < 2 or value.flags.c_contiguous


class _StepFailed(Exception):
    """Member ``j`` of a group failed on a block (the NumPy error is the ``__cause__``)."""

    def __init__(self, j: int) -> None:
        super().__init__(j)
        self.j = j

    def error(self, group: Group, values: tuple):
        """The graphc error naming the member, given its inputs as the unfused program
        would (a member's value stands in as a zero-strided array of its shape and dtype)."""
        k, members = group.arity, group.members
        inputs = [values[a] if a < k else
                  np.broadcast_to(np.zeros((), members[a - k].dtype), members[a - k].shape)
                  for a in group.steps[self.j][1]]
        return kernel_error(as_described(members[self.j]), self.__cause__, inputs)


def _weak_float(term: Term) -> bool:
    return term.is_weak() and term.attrs["value"].dtype.kind == "f"


def _kernel(*values, group: Group, out: Optional[np.ndarray] = None) -> np.ndarray:
    return group.run(values, out)


def _infer(*inputs, group: Group) -> tuple:
    return group.shape, group.dtype


COMPILER_OPS[FUSED] = Op(
    FUSED, infer=_infer, kernel=_kernel, bprop=None, elementwise=True, inplace=True,
    doc="Elementwise ufunc terms evaluated block by block (compiled programs only).",
    arity=(0, None), structure="elementwise")
