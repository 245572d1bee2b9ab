"""The compiler's private IR: a :class:`Program` of immutable :class:`Term` objects.

A term mirrors a graph node (op, inputs, attrs, shape, dtype) and keeps a link to the source
node it came from (``origin``), so that every message can still name the user's node and line.
Passes never touch the source graph: :func:`from_graph` copies what the outputs need, and
each pass returns a new program (terms are shared between programs, never mutated).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Optional

import numpy as np

from ..errors import DTypeError, GraphcError, ShapeError, describe
from ..ops.registry import REGISTRY
from .. import shapes
from ..runtime import needed_nodes, require_fed

#: Ops that read no inputs; their value comes from the caller, the graph or the attrs.
LEAVES = frozenset({"placeholder", "variable", "constant"})

#: Ops that exist only in compiled programs, never in a graph or a file (``fused
#: elementwise``, added by :mod:`.fusion`); their names are not identifiers, so no user op
#: can take them.
COMPILER_OPS: dict = {}

#: Compiler ops that fail exactly as the node they were compiled from (their ``origin``)
#: would, with the same checks on the same inputs: errors name that node's own op.
AS_ORIGIN: set = set()


class _Ops:
    """Every op a term may have: the registry's graph ops, then the compiler's own. Back ends
    look a term's kernel and flags up here (``OPS[op]``, ``OPS.get(op)``)."""

    __slots__ = ()

    def __getitem__(self, op: str):
        spec = REGISTRY.get(op)
        return spec if spec is not None else COMPILER_OPS[op]

    def get(self, op: str, default=None):
        spec = REGISTRY.get(op)
        return spec if spec is not None else COMPILER_OPS.get(op, default)

    def __contains__(self, op) -> bool:
        return op in REGISTRY or op in COMPILER_OPS


OPS = _Ops()


class Term:
    """One value of a compiled program: ``op(*inputs, **attrs)``, with static shape and dtype.

    ``origin`` is the source graph node this term computes (or replaces, for a rewritten term).
    """

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "origin")

    def __init__(self, op: str, inputs: tuple, attrs: dict, shape: tuple, dtype: np.dtype,
                 origin) -> None:
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        self.origin = origin

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.origin.name

    @property
    def site(self) -> Optional[str]:
        return self.origin.site

    @property
    def size(self) -> Optional[int]:
        """Number of elements, or ``None`` when a size is unknown."""
        shape = self.shape
        if None in shape:
            return None
        return math.prod(shape)

    def is_weak(self) -> bool:
        """Whether this is a weak constant (a Python scalar for NumPy's type promotion)."""
        return self.op == "constant" and bool(self.attrs.get("weak"))

    def __repr__(self) -> str:
        return f"<Term {self.op} from '{self.origin.name}' {shapes.fmt(self.shape)} {self.dtype}>"


def remapped(term: Term, mapping: dict) -> Term:
    """``term`` over its inputs' replacements in ``mapping`` (every input is a key); ``term``
    itself when none was replaced (for passes that replace some terms of a program)."""
    if term.inputs and any(mapping[x] is not x for x in term.inputs):
        return Term(term.op, tuple(mapping[x] for x in term.inputs), term.attrs, term.shape,
                    term.dtype, term.origin)
    return term


def as_described(term: Term):
    """An object :func:`graphc.errors.describe` can print: the source node, or a stand-in
    saying which op the compiler put in its place."""
    origin = term.origin
    if term.op == origin.op or term.op in AS_ORIGIN:
        return origin
    return SimpleNamespace(op=f"{term.op} (compiled from {origin.op})", name=origin.name,
                           site=origin.site)


def describe_term(term: Term) -> str:
    """How error messages name a term: its op, source node and where the user built it."""
    return describe(as_described(term))


@dataclass
class Program:
    """Terms in a topological order, the call's inputs, its outputs and the variable updates."""

    terms: list
    inputs: list  # one input term per function argument, in the user's order
    outputs: list
    updates: list  # [(variable node, term)]
    #: every term is an ancestor of a root (pruning would keep them all): set by
    #: :func:`from_graph` and the ``prune`` pass, kept by a rewrite that changed nothing
    live: bool = False
    #: the positions of the outputs whose g.run value is a NumPy scalar (see
    #: :func:`scalar_results`): returned as one even where rewriting made the term an input,
    #: a variable, a constant or a view, which the compiled code would copy to a 0-d array
    scalar_outputs: frozenset = frozenset()

    @property
    def roots(self) -> list:
        return self.outputs + [t for _, t in self.updates]

    def replace(self, terms: list, mapping: dict) -> "Program":
        """A program over ``terms`` where every old root is replaced through ``mapping``."""
        return Program(terms, [mapping.get(t, t) for t in self.inputs],
                       [mapping[t] for t in self.outputs],
                       [(v, mapping[t]) for v, t in self.updates],
                       scalar_outputs=self.scalar_outputs)


def from_graph(graph, inputs: list, outputs: list, updates: list) -> Program:
    """Copy the ancestors of ``outputs`` and update values into a program.

    Input nodes (any node may be an input) become ``placeholder`` terms: their ancestors are
    not needed. A placeholder that is needed but not an input raises MissingFeedError.
    """
    fed = {n.id for n in inputs}
    roots = list(outputs) + [value for _, value in updates]
    needed = needed_nodes(graph, roots, fed)
    require_fed(needed, fed, "(as inputs of the function) to compute its outputs")
    terms: list[Term] = []
    append = terms.append
    by_node: dict = {}  # node -> term (nodes hash by identity)
    term_of = by_node.__getitem__
    for node in needed:
        if node.id in fed:
            term = Term("placeholder", (), {}, node.shape, node.dtype, node)
        else:
            ins = node.inputs  # (one and two inputs spelled out: most nodes)
            k = len(ins)
            term = Term(node.op, (term_of(ins[0]),) if k == 1 else
                        (term_of(ins[0]), term_of(ins[1])) if k == 2 else
                        tuple(map(term_of, ins)), node.attrs, node.shape, node.dtype, node)
        by_node[node] = term
        append(term)
    for n in inputs:  # inputs nobody needs still take an argument
        if n not in by_node:
            by_node[n] = Term("placeholder", (), {}, n.shape, n.dtype, n)
    scalars = scalar_results(outputs, fed)
    return Program(terms, [by_node[n] for n in inputs], [by_node[n] for n in outputs],
                   [(var, by_node[value]) for var, value in updates], live=True,
                   scalar_outputs=scalars)


def scalar_results(outputs: list, fed: set) -> frozenset:
    """The positions of the outputs for which g.run returns a NumPy scalar, not a 0-d array.

    g.run returns a kernel's value as it comes (``runtime.as_result``): a NumPy scalar stays
    one, everything else is an array. Whether a kernel gives a scalar depends on the op, its
    attrs and whether its inputs are scalars (``stop_gradient`` passes its input through,
    ``np.sum`` of a 0-d array is a scalar, ``np.where`` never is). So each 0-d ancestor's kind
    is found by calling its kernel once on small probe values of the same kinds, dtypes and
    shapes (memoized per op, attrs and input kinds); feeds and variables are arrays."""
    kinds: dict = {}  # node -> whether g.run's value of it is a NumPy scalar
    probes: dict = {}
    result = set()
    for k, node in enumerate(outputs):
        if node.shape != () or node.id in fed:
            continue
        stack = [node]
        while stack:
            n = stack[-1]
            if n in kinds:
                stack.pop()
                continue
            if n.shape != () or n.id in fed or n.op in ("variable", "placeholder"):
                kinds[n] = False
                stack.pop()
                continue
            waiting = [x for x in n.inputs if x not in kinds and x.shape == () and x.id not in fed]
            if waiting:
                stack.extend(waiting)
                continue
            kinds[n] = _kernel_gives_scalar(n, kinds, probes)
            stack.pop()
        if kinds[node]:
            result.add(k)
    return frozenset(result)


def _kernel_gives_scalar(node, kinds: dict, probes: dict) -> bool:
    """Whether ``node``'s kernel returns a NumPy scalar for inputs of its inputs' kinds."""
    spec = REGISTRY.get(node.op)
    if spec is None:
        return False
    if spec.checked:  # a user's kernel is never run on made-up values (it may keep them)
        return isinstance(spec.kernel, np.ufunc)
    ins = tuple((x.shape, x.dtype, kinds.get(x, False)) for x in node.inputs)
    try:
        key = (node.op, tuple(sorted(node.attrs.items())), ins)
        hash(key)
    except TypeError:  # (an array attr, say a constant's value: probed each time)
        key = None
    if key is not None and key in probes:
        return probes[key]
    fallback = isinstance(spec.kernel, np.ufunc)  # (a probe the kernel refuses)
    args = []
    for shape, dtype, scalar in ins:
        shape = tuple(1 if d is None else d for d in shape)
        if math.prod(shape) > 4096:  # (a big input: its ndim, size 1, say for a sum)
            shape = (1,) * len(shape)
        try:
            value = np.ones(shape, dtype)
        except (TypeError, ValueError):
            args = None
            break
        args.append(value[()] if scalar else value)
    gives = fallback
    if args is not None:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (var of one value warns: not the user's)
                gives = isinstance(spec.kernel(*args, **node.attrs), np.generic)
        except Exception:  # the probe is not a value the op accepts (an index past 1, ...)
            gives = fallback
    if key is not None:
        probes[key] = gives
    return gives


def infer(op: str, inputs: tuple, attrs: dict) -> tuple:
    """Static ``(shape, dtype, attrs)`` of a new term, by the op's own rule."""
    rule = OPS[op].infer
    inferred = rule(*inputs, **attrs)
    if len(inferred) == 3:
        return inferred[0], np.dtype(inferred[1]), inferred[2]
    return inferred[0], np.dtype(inferred[1]), attrs


def check_update(var, value) -> None:
    """An update must fit the variable's shape and cast safely to its dtype (compile time)."""
    if getattr(var, "op", None) != "variable":
        raise GraphcError(f"updates must map variables to nodes; {describe(var)} is not a "
                          "variable" if hasattr(var, "op") else
                          f"updates keys must be variable nodes, not {type(var).__name__}")
    if len(value.shape) != len(var.shape) or any(
            d is not None and d != v for d, v in zip(value.shape, var.shape)):
        raise ShapeError(f"update of {describe(var)} (shape {shapes.fmt(var.shape)}) with "
                         f"{describe(value)} of shape {shapes.fmt(value.shape)}")
    if not np.can_cast(value.dtype, var.dtype, "same_kind"):
        raise DTypeError(f"update of {describe(var)} (dtype {var.dtype}) with {describe(value)} "
                         f"of dtype {value.dtype}: not a safe 'same_kind' cast")


# -- the upcast report (f.stats["upcasts"]) ------------------------------------------------------
def float_bits(dtype: np.dtype) -> Optional[int]:
    """The precision of a float or complex dtype in bits (complex64: 32), else None."""
    bits = _FLOAT_BITS.get(dtype)
    if bits is None and dtype.kind in "fc":
        bits = _FLOAT_BITS.setdefault(dtype, np.finfo(dtype).bits)  # (np.finfo: 1 us a call)
    return bits


_FLOAT_BITS: dict = {}


def upcasts(terms: list) -> list:
    """The terms that compute in a wider float than one of their floating inputs: where a
    value of lower precision is widened (``x32 + np.float64 array``, ``x32.astype("float64")``,
    a strong float64 constant meeting float32). Weak constants (Python scalars) never widen.

    One dict per term: ``op``, ``node`` (the source node's name), ``site`` (the user's line),
    ``dtype`` (the term's) and ``from`` (its narrowest floating input's dtype).
    """
    found = []
    for term in terms:
        dtype = term.dtype
        for x in term.inputs:  # (a plain loop: most terms share their inputs' dtype)
            if x.dtype is not dtype and x.dtype != dtype and not x.is_weak():
                break
        else:
            continue  # no inputs, or none of another dtype but weak constants: none widened
        bits = float_bits(dtype)
        if bits is None:
            continue
        narrow = [x.dtype for x in term.inputs
                  if not x.is_weak() and (float_bits(x.dtype) or bits) < bits]
        if narrow:
            found.append({"op": term.op, "node": term.name, "site": term.site,
                          "dtype": str(term.dtype),
                          "from": str(min(narrow, key=float_bits))})
    return found
