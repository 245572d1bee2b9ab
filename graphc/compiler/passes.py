"""Graph-to-graph passes over a :class:`~graphc.compiler.ir.Program`.

Every pass is a pure function ``Program -> Program``. The rewriting passes (``cse``, ``fold``,
``simplify``, ``fastmath``) share one engine, :func:`rebuild`: it walks the terms in
topological order, re-creates each one over its (already rewritten) inputs through a
:class:`Builder`, and the builder applies the pass's hook — hash-consing, folding or the rules
of :mod:`graphc.compiler.rules` — to every term it makes, including the terms a rule builds.
Because rules only look *down* at a term's inputs, one bottom-up walk reaches a fixed point.
"""
from __future__ import annotations

import time
from collections import Counter
from operator import attrgetter
from typing import Callable, Optional

import numpy as np

from ..errors import GraphcError
from ..keys import attrs_key
from ..ops.registry import REGISTRY
from .ir import LEAVES, Program, Term, infer
from .rules import rules_by_op

#: Largest constant (in elements) that constant folding may create.
FOLD_MAX_SIZE = 4096

#: Ops whose inputs may be swapped without changing the result bit for bit.
COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum"})


class Builder:
    """Makes the terms of a new program, applying one pass's hook to each.

    ``hook(term, builder)`` returns a replacement term or ``None``. Rules build their
    replacements with :meth:`make`, so those are rewritten too, before they are appended.
    """

    def __init__(self, hook: Optional[Callable] = None, hashcons: bool = False) -> None:
        self.terms: list[Term] = []
        self.hook = hook
        self.hashcons = hashcons
        self.memo: dict = {}
        self.index: dict[Term, int] = {}  # term -> position: each term is appended once
        self.fired: Counter = Counter()
        self.origin = None  # the source node that terms made now are charged to
        self.made: dict = {}  # (op, inputs) -> terms made, for find(): filled when asked
        self._made_upto = 0  # terms[:_made_upto] are in ``made``

    # -- making terms ---------------------------------------------------------------------
    def make(self, op: str, inputs, attrs: Optional[dict] = None) -> Term:
        """A new term (shape and dtype by the op's rule), rewritten by the pass's hook."""
        inputs = tuple(inputs)
        shape, dtype, attrs = infer(op, inputs, dict(attrs or {}))
        return self.emit(Term(op, inputs, attrs, tuple(shape), dtype, self.origin))

    def constant(self, value, dtype=None, weak: bool = False) -> Term:
        """A constant term (``weak`` for a Python scalar that keeps NumPy promotion weak)."""
        array = np.array(value, dtype=dtype)
        array.flags.writeable = False
        return self.emit(Term("constant", (), {"value": array, "weak": weak}, array.shape,
                              array.dtype, self.origin))

    def emit(self, term: Term) -> Term:
        """Rewrite ``term`` with the hook, share it if an equal term exists, else append it."""
        if self.hook is not None and term.op not in LEAVES:
            replacement = self.hook(term, self)
            if replacement is not None and replacement is not term:
                return replacement
        if self.hashcons:
            key = self.key(term)
            found = self.memo.get(key)
            if found is not None:
                return found
            self.memo[key] = term
        index = self.index
        if term not in index:
            index[term] = len(self.terms)
            self.terms.append(term)
        return term

    def find(self, op: str, inputs, attrs: dict) -> Optional[Term]:
        """An already-made term ``op(*inputs, **attrs)``, or ``None``."""
        made = self.made
        for term in self.terms[self._made_upto:]:
            made.setdefault((term.op, term.inputs), []).append(term)
        self._made_upto = len(self.terms)
        key = attrs_key(attrs)
        for term in made.get((op, tuple(inputs)), ()):
            if attrs_key(term.attrs) == key:
                return term
        return None

    def key(self, term: Term) -> tuple:
        """The CSE key: op, inputs (terms made by this builder, which hash by identity; in a
        fixed order for commutative ops) and attrs."""
        if term.op in ("placeholder", "variable"):
            return (term.op, term.origin.id)
        inputs, attrs = term.inputs, term.attrs
        if term.op in COMMUTATIVE:
            inputs = tuple(sorted(inputs, key=id))
        return (term.op, inputs, attrs_key(attrs) if attrs else ())


def rebuild(program: Program, fired: Counter, hook: Optional[Callable] = None,
            hashcons: bool = False, hooked: Optional[frozenset] = None) -> Program:
    """Re-create every term over rewritten inputs (rule counts are added to ``fired``).
    ``hooked``: the ops whose terms the hook may rewrite, when the pass knows them; the
    program's terms of other ops are not shown to it (the terms its rules make always are)."""
    builder = Builder(hook, hashcons)
    emit, terms = builder.emit, program.terms
    unchanged, first = 0, None  # terms[:unchanged] stayed themselves (so did their inputs)
    # Until the first rewrite, terms are emitted as they are: ``emit`` spelled out (no call
    # per term; most programs change little). An old term is new to the builder (hooks make
    # new terms), so the index of appended terms is made only if the walk goes on.
    made, memo = builder.terms, builder.memo
    key = builder.key if hashcons else None
    if hook is not None and hooked is None:
        hooked = frozenset(map(attrgetter("op"), terms)) - LEAVES
    for old in terms:
        builder.origin = old.origin
        if hook is not None and old.op in hooked:
            first = hook(old, builder)
            if first is not None and first is not old:
                break
        if key is not None:
            k = key(old)
            first = memo.get(k)
            if first is not None:
                break  # (an equal term made already: an old term is never in memo)
            memo[k] = old
        made.append(old)
        unchanged += 1
    else:
        first = None
    if unchanged == len(terms):  # often: nothing rewritten, no mapping to build
        fired.update(builder.fired)
        return Program(builder.terms, list(program.inputs), list(program.outputs),
                       list(program.updates),  # (live still unless a hook made unused terms)
                       live=program.live and len(builder.terms) == len(terms),
                       scalar_outputs=program.scalar_outputs)
    builder.index = {t: i for i, t in enumerate(made)}
    mapping: dict[Term, Term] = dict(zip(terms[:unchanged], terms[:unchanged]))
    mapping[terms[unchanged]] = first
    lookup = mapping.__getitem__
    for old in terms[unchanged + 1:]:
        term = old
        if old.inputs:
            inputs = tuple(map(lookup, old.inputs))
            if inputs != old.inputs:  # Terms compare by identity
                term = Term(old.op, inputs, old.attrs, old.shape, old.dtype, old.origin)
        builder.origin = old.origin
        mapping[old] = emit(term)
    for term in program.inputs:  # inputs nobody reads are not in the term list
        mapping.setdefault(term, term)
    fired.update(builder.fired)
    return program.replace(builder.terms, mapping)


# -- the passes: each is ``pass(program, fired) -> program`` ----------------------------------
def prune(program: Program, fired: Counter) -> Program:
    """Dead-code elimination: keep only the ancestors of outputs and update values."""
    if program.live:  # (a program from the graph, or a pass that changed nothing)
        return program
    live = set(program.roots)  # terms hash by identity
    for term in reversed(program.terms):
        if term in live:
            live.update(term.inputs)
    terms = [t for t in program.terms if t in live]
    return Program(terms, program.inputs, program.outputs, program.updates, live=True,
                   scalar_outputs=program.scalar_outputs)


def cse(program: Program, fired: Counter) -> Program:
    """Common-subexpression elimination: one term per (op, inputs, attrs); constants with
    equal values are one term too."""
    return rebuild(program, fired, hashcons=True)


def _fold_hook(term: Term, builder: Builder) -> Optional[Term]:
    if not term.inputs:
        return None
    for x in term.inputs:
        if x.op != "constant":
            return None
    size = term.size
    # large results fold too when no larger than an input constant (I + I, I @ A.T of a
    # Hessian's seed): the program then holds at most one more array of an input's size
    if size is None or size > max(FOLD_MAX_SIZE, *(x.size or 0 for x in term.inputs)):
        return None
    kernel = REGISTRY[term.op].kernel
    constant_kernel = REGISTRY["constant"].kernel
    args = [constant_kernel(**x.attrs) for x in term.inputs]
    try:
        with np.errstate(all="ignore"):
            value = np.array(kernel(*args, **term.attrs))
    except Exception:  # leave it to run time, where the error names the node
        return None
    if value.shape != term.shape or value.dtype != term.dtype:
        return None
    builder.fired["fold:" + term.op] += 1
    return builder.constant(value)


def fold(program: Program, fired: Counter) -> Program:
    """Constant folding: a term whose inputs are all constants becomes a constant, computed
    by the op's own kernel (results larger than :data:`FOLD_MAX_SIZE` elements stay, unless no
    larger than one of the constants they are computed from)."""
    return rebuild(program, fired, _fold_hook)


def rule_pass(stage: str) -> Callable[[Program, Counter], Program]:
    """The pass that applies the rules of one stage of the rule table."""
    table: dict = {}

    def hook(term: Term, builder: Builder) -> Optional[Term]:
        for rule in table.get(term.op, ()):
            replacement = rule.fn(term, builder)
            if replacement is None or replacement is term:
                continue
            if replacement.shape != term.shape or replacement.dtype != term.dtype:
                continue  # the pattern matched, but this case would change shape or dtype
            builder.fired[rule.name] += 1
            return replacement
        return None

    def run(program: Program, fired: Counter) -> Program:
        table.clear()
        table.update(rules_by_op(stage))  # ops may have been registered since last time
        return rebuild(program, fired, hook, hooked=frozenset(table))

    run.__name__ = stage
    run.__doc__ = f"Apply the {stage!r} rules of the rule table, bottom-up, to a fixed point."
    return run


from .inline import inline  # noqa: E402  (composites: a pass of its own module)
from .fusion import fuse  # noqa: E402  (elementwise fusion: a pass of its own module)
from .share import share  # noqa: E402  (a cross-entropy and its gradient: a pass of its own)

#: Every pass by name.
PASSES: dict[str, Callable[[Program, Counter], Program]] = {
    "inline": inline, "prune": prune, "cse": cse, "fold": fold,
    "simplify": rule_pass("simplify"), "fastmath": rule_pass("fastmath"),
    "share": share, "fuse": fuse}

#: The default pipeline; the passes repeat in rounds until nothing changes (a fixed point).
#: Every default pass keeps values (see :mod:`.rules`); ``fastmath`` is opt-in. ``inline``
#: (composites replaced by their bodies) runs once, before all the others; ``share`` (a
#: cross-entropy and its gradient from one pass over the logits) once after them, then
#: ``fuse`` (elementwise fusion), both with the same values bit for bit.
DEFAULT_PASSES = ("inline", "prune", "cse", "fold", "simplify", "share", "fuse")

#: The order passes run in within a round (any selection keeps this order).
_ROUND_ORDER = ("cse", "fold", "simplify", "fastmath")
MAX_ROUNDS = 4


def optimize(program: Program, passes=DEFAULT_PASSES) -> tuple[Program, list, Counter]:
    """Run the selected passes: prune once, then rounds of the others (each round followed by
    a prune) until a round changes nothing (at most :data:`MAX_ROUNDS`). Returns the program,
    per-pass stats and how often each rule fired."""
    unknown = [p for p in passes if p not in PASSES]
    if unknown:
        raise GraphcError(f"unknown compiler pass(es) {unknown}; known: {sorted(PASSES)}")
    stats: list = []
    fired: Counter = Counter()

    def step(name: str, program: Program, round_: int) -> Program:
        before = len(program.terms)
        start = time.perf_counter()
        program = PASSES[name](program, fired)
        stats.append({"pass": name, "round": round_, "before": before,
                      "after": len(program.terms), "seconds": time.perf_counter() - start})
        return program

    if "inline" in passes:
        program = step("inline", program, 0)
    if "prune" in passes:
        program = step("prune", program, 0)
    loop = [p for p in _ROUND_ORDER if p in passes]
    for round_ in range(1, MAX_ROUNDS + 1 if loop else 1):
        rewrites = sum(fired.values())
        first = len(stats)
        for name in loop:
            program = step(name, program, round_)
        if "prune" in passes:
            program = step("prune", program, round_)
        changed = any(s["before"] != s["after"] for s in stats[first:])
        if not changed and sum(fired.values()) == rewrites:
            break  # a fixed point: nothing fired and no pass changed the program
    if "share" in passes:  # after the rules: they cannot see into a shared term
        program = step("share", program, max((s["round"] for s in stats), default=0) + 1)
    if "fuse" in passes:  # last: the rules cannot see into a fused term
        program = step("fuse", program, max((s["round"] for s in stats), default=0) + 1)
    return program, stats, fired
