"""The graphc compiler: ``function`` turns a graph into a fast NumPy callable.

Pipeline (see docs/compiler.md): copy the needed part of the graph into a private IR
(:mod:`.ir`), run the graph-to-graph passes (:mod:`.passes`, with the rule table in
:mod:`.rules`), choose an order and plan memory (:mod:`.schedule`), and generate one
straight-line Python function (:mod:`.codegen`) or, for large programs, an instruction list
run by a loop over slots (:mod:`.vm`). Inputs with ``None`` sizes get a plan per call shapes
(:mod:`.specialize`).
"""
from .function import Function, function  # noqa: F401
from .passes import DEFAULT_PASSES, PASSES  # noqa: F401
from .rules import RULES  # noqa: F401
