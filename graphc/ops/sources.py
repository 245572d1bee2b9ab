"""Leaves of the graph: placeholders (fed), variables (stored) and constants (fixed).

They are built by ``Graph.placeholder/variable/constant``; their rules here serve the passes
that walk the registry (the executor reads variables from the graph itself).
"""
from __future__ import annotations

import numpy as np

from ..errors import GraphcError
from .attrs import anything_of, flag
from .registry import Case, define


def _built_by_graph(*nodes, **attrs):
    raise GraphcError("leaves are built with Graph.placeholder/variable/constant")


def _constant_kernel(*, value, weak):
    # A weak constant is handed to NumPy as a Python scalar so that promotion stays weak.
    return value.item() if weak else value


define("placeholder", infer=_built_by_graph, kernel=None, bprop=None, arity=0,
       doc="An input fed at run time.")
define("variable", infer=_built_by_graph, kernel=None, bprop=None, arity=0,
       doc="An array stored in the graph, read at run time, updatable.")
define("constant", infer=_built_by_graph, kernel=_constant_kernel, bprop=None, arity=0,
       attrs={"value": anything_of(np.ndarray), "weak": flag},
       reference=lambda *, value, weak: value,
       cases=[Case((), attrs={"value": np.arange(6.0).reshape(2, 3), "weak": False}),
              Case((), attrs={"value": np.array(2.5), "weak": True})],
       doc="A fixed array.")
