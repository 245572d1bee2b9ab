"""The ``inline`` pass: every composite term is replaced by its body, built over the term's
inputs, so composites cost nothing at run time and the other passes see through them (CSE
merges a body's work with the same work outside it, the rules rewrite across its border).

It runs once, before the others. Nested composites are inlined too: the body's terms go
through the same builder, whose hook inlines them in turn. The inlined terms are charged to
the composite's source node, so a failure inside names the user's composite node and line.
"""
from __future__ import annotations

from collections import Counter
from typing import Optional

from .ir import Program, Term

COMPOSITE = "composite"


def _hook(term: Term, builder) -> Optional[Term]:
    if term.op != COMPOSITE:
        return None
    body = term.attrs["body"]
    mapped = {p.id: x for p, x in zip(body.inputs, term.inputs)}
    for node in body.graph._nodes:
        if node.id in mapped:
            continue
        if node.op == "constant":
            mapped[node.id] = builder.constant(node.attrs["value"], node.dtype,
                                               weak=bool(node.attrs["weak"]))
        else:
            mapped[node.id] = builder.make(node.op, [mapped[x.id] for x in node.inputs],
                                           dict(node.attrs))
    builder.fired["inline:" + term.attrs["label"]] += 1
    return mapped[body.outputs[0].id]


def inline(program: Program, fired: Counter) -> Program:
    """Replace every composite term by its body (nested ones included)."""
    if not any(t.op == COMPOSITE for t in program.terms):
        return program
    from .passes import rebuild
    return rebuild(program, fired, _hook)
