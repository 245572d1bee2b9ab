"""Shape specialisation: a program with ``None`` sizes planned again for one call's shapes.

The memory plan (buffer sizes, ``out=`` reuse, the planned peak) needs every size. When an
input has a ``None`` size (a batch dimension), :class:`Specializer` takes the place of the
compiled function: at a call with input shapes it has not seen, :func:`specialize` re-infers
every term's shape from those shapes with the op's own rule, and the result is scheduled and
lowered like any program, then cached under the shapes. The rewriting passes are not run
again: a specialisation has the generic program's terms (ops, attrs, dtypes), only with
concrete shapes, so it computes the same values, bit for bit.

Shapes that a rule rejects (inputs that do not fit together) are never specialised: the
generic program runs, so the call fails exactly as ``g.run`` does, naming the same node.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

import numpy as np

from .. import shapes as shape_rules
from .ir import LEAVES, Program, Term, infer

#: How many shape signatures a function keeps specialisations for; a call with a new
#: signature beyond them runs the generic program (no buffer reuse, peak unknown).
MAX_SPECIALIZATIONS = 8


def specialize(program: Program, input_shapes: dict) -> Optional[Program]:
    """``program`` with concrete shapes: ``input_shapes`` maps input terms to their shapes,
    and every other term's shape is inferred again by its op's rule (terms that keep their
    inputs and shape are shared). None when a rule rejects the shapes, or infers another dtype
    or a shape that contradicts the term's static one."""
    mapping: dict = {}
    for term, shape in input_shapes.items():
        mapping[term] = Term("placeholder", (), {}, shape, term.dtype, term.origin)
    terms = []
    for term in program.terms:
        new = mapping.get(term)
        if new is None:
            inputs = tuple(mapping.get(x, x) for x in term.inputs)
            if term.op in LEAVES or (None not in term.shape and all(
                    a is b for a, b in zip(inputs, term.inputs))):
                new = term
            else:
                try:
                    shape, dtype, _ = infer(term.op, inputs, term.attrs)
                except Exception:  # noqa: BLE001 - any rule's refusal: run the generic program
                    return None
                shape = tuple(shape)
                if dtype != term.dtype or not shape_rules.fits(shape, term.shape):
                    return None
                new = Term(term.op, inputs, term.attrs, shape, term.dtype, term.origin)
            mapping[term] = new
        terms.append(new)
    return program.replace(terms, mapping)


class Lowered:
    """One scheduled and generated program (the generic one or a specialisation): its
    callable, generated code and plan, and the entries of ``Function.stats`` it reports."""

    __slots__ = ("fn", "generated", "plan", "stats")

    def __init__(self, fn, generated, plan, stats: dict) -> None:
        self.fn = fn
        self.generated = generated
        self.plan = plan
        self.stats = stats


class Specializer:
    """The dispatch of a function whose inputs have ``None`` sizes: finds (or makes) the
    specialisation for the arguments' shapes and calls it.

    :attr:`dispatch` is a generated function with the program's parameters: a key of the
    ``None``-sized arguments' shapes, one dictionary lookup, the call. Making a
    specialisation takes a lock (two threads meeting new shapes make it once); lookups take
    none, and the cache only grows (up to ``limit`` signatures: the first ones seen are kept,
    later ones run the generic program), so a lookup never sees a half-made entry and a
    program never changes under a running call. ``on_switch(specialization)`` runs when a
    call uses another program than the call before (the Function then shows that program's
    source and stats).
    """

    def __init__(self, program: Program, generic: Lowered,
                 lower: Callable[[Program], Lowered], on_switch: Callable,
                 limit: int = MAX_SPECIALIZATIONS) -> None:
        self._program = program
        self._generic = generic
        self._lower = lower
        self._on_switch = on_switch
        self.limit = limit
        params = generic.generated.params
        # the inputs with None sizes: (position, input term)
        self._slots = [(i, term) for i, term in enumerate(program.inputs) if None in term.shape]
        self._cache: dict = {}  # shapes of the slots' arguments -> Lowered
        self._by_file = {generic.generated.filename: generic.generated}
        self._generic_because: dict = {}  # reason -> the generic program, reported so
        self._rejected: dict = {}  # shape key -> the generic program: shapes a rule refused
        self._lock = threading.Lock()
        self.last: Lowered = generic
        self._unfit = self._generic_as("generic: an argument does not fit its input")
        # an input whose only None size is the first is keyed by len(value), which is
        # cheaper than value.shape (the other sizes are checked by the program it runs)
        self._by_len = [term.shape[0] is None and None not in term.shape[1:]
                        for _, term in self._slots]
        self.dispatch = _dispatcher(params, [i for i, _ in self._slots], self._by_len, self)

    @property
    def count(self) -> int:
        """How many specialisations exist."""
        return len(self._cache)

    def generated_named(self, filename: str):
        """The generated code (of any program this dispatch runs) compiled under ``filename``."""
        found = self._by_file.get(filename)
        if found is None and filename is not None:  # a VM program promoted to source since
            for entry in [self._generic, *self._cache.values()]:
                if entry.generated.filename == filename:
                    return entry.generated
        return found

    def switch(self, entry: Lowered) -> None:
        self.last = entry
        self._on_switch(entry)

    def find(self, args: tuple) -> Lowered:
        """The program for arguments whose shapes are not cached yet (or not arrays)."""
        key, shapes = [], []
        for i, term in self._slots:
            value = args[i]
            try:
                shape = value.shape if value.__class__ is np.ndarray else np.shape(value)
            except Exception:  # noqa: BLE001 - not array-like: the generic program's FeedError
                return self._unfit
            if not shape_rules.fits(shape, term.shape):  # the generic program's FeedError
                return self._unfit
            shapes.append(tuple(map(int, shape)))
        key = tuple(shape[0] if by_len else shape for shape, by_len in zip(shapes, self._by_len))
        if len(key) == 1:
            key = key[0]
        entry = self._cache.get(key) or self._rejected.get(key)
        if entry is not None:
            return entry
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                return entry
            if len(self._cache) >= self.limit:
                return self._generic_as(f"generic: cache full ({self.limit} shape signatures)")
            started = time.perf_counter()
            program = specialize(self._program,
                                 {term: shape for (_, term), shape in zip(self._slots, shapes)})
            if program is None:  # inputs that do not fit together: g.run's error (or values)
                entry = self._generic_as("generic: the input shapes do not fit together")
                if len(self._rejected) < self.limit:  # (not inferred again at every call)
                    self._rejected[key] = entry
                return entry
            entry = self._lower(program)
            entry.stats["memory_plan"] = "specialized"
            entry.stats["specialized_shapes"] = {
                term.origin.name: shape for (_, term), shape in zip(self._slots, shapes)}
            entry.stats["seconds"] = dict(self._generic.stats["seconds"],
                                          specialize=time.perf_counter() - started)
            self._by_file[entry.generated.filename] = entry.generated
            self._cache[key] = entry
            return entry

    def _generic_as(self, reason: str) -> Lowered:
        """The generic program, with ``memory_plan`` saying why it runs."""
        entry = self._generic_because.get(reason)
        if entry is None:
            g = self._generic
            entry = self._generic_because[reason] = Lowered(
                g.fn, g.generated, g.plan, dict(g.stats, memory_plan=reason))
        return entry


def _dispatcher(params: list, slots: list, by_len: list, specializer: Specializer):
    """The dispatch as a function of the program's parameters (the generated program's
    names: plain identifiers or ``_p<k>``): a missing or extra argument is Python's TypeError,
    which the Function explains as it does for the program itself. The key is
    ``len(x)`` or ``x.shape`` per ``None``-sized input (a tuple of them for several)."""
    args = ", ".join(params)
    parts = [f"_len({params[i]})" if first else f"{params[i]}.shape"
             for i, first in zip(slots, by_len)]
    key = parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"
    source = (f"def _graphc_dispatch({args}):\n"
              f"    try:\n"
              f"        _e = _cache[{key}]\n"
              f"    except Exception:  # new shapes, or not arrays (find says which program)\n"
              f"        _e = _find(({args}{',' if len(params) == 1 else ''}))\n"
              f"    if _e is not _spec.last:\n"
              f"        _spec.switch(_e)\n"
              f"    return _e.fn({args})\n")
    namespace = {"_cache": specializer._cache, "_find": specializer.find, "_spec": specializer,
                 "_len": len}  # (an input may be named len)
    exec(compile(source, "<graphc-dispatch>", "exec"), namespace)
    return namespace["_graphc_dispatch"]
