"""Text views of a graph: a listing with one line per node, a compact jaxpr-like form, and the
one-line summaries behind ``repr(graph)`` and ``repr(function)``.

The listing is in creation (topological) order, so every node is printed once, after its
inputs, and refers to them by id (``%3``), the way PyTensor's ``debugprint`` prints a shared
node once and then ``[id A]``.
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Mapping, Optional, TextIO

import numpy as np

from .. import shapes
from ..graph import Graph, Node
from .dot import Target, _short_value, select

#: Constants with at most this many entries are written out in the listing.
SHORT_CONSTANT = 4
_LEAVES = ("placeholder", "variable", "constant")


def to_text(target: Target, *, compact: bool = False, max_nodes: Optional[int] = None) -> str:
    """A readable listing of a graph, a node or a list of nodes (then with their ancestors).

    One line per node, in creation order: id, op, name, shape, dtype, the inputs by id,
    the derivative order and the op's attributes; then the outputs (the nodes asked for, or a
    graph's nodes that nothing consumes). ``compact=True`` gives a jaxpr-like form instead:
    ``{ lambda variables ; placeholders . let name:f64[?,3] = op inputs ... in (outputs) }``.
    ``max_nodes`` cuts a long listing short (saying how many nodes were left out).
    """
    nodes, wanted = select(target, "to_text")
    outputs = [n for n in nodes if n.id in wanted] if wanted else _sinks(nodes)
    shown = nodes if max_nodes is None else nodes[:max_nodes]
    lines = _compact(shown, outputs) if compact else _table(shown, outputs)
    if len(shown) < len(nodes):
        lines.insert(-1, f"... {len(nodes) - len(shown)} more nodes")
    return "\n".join(lines) + "\n"


def show(target: Target, *, compact: bool = False, file: Optional[TextIO] = None) -> None:
    """Print :func:`to_text` of ``target`` (to ``file``, standard output by default)."""
    print(to_text(target, compact=compact), end="", file=file or sys.stdout)


# -- the listing -----------------------------------------------------------------------------------
_HEADER = ("id", "op", "name", "shape", "dtype", "inputs", "order", "attrs")


def _table(nodes: list, outputs: list) -> list:
    rows = [_HEADER] + [(f"%{n.id}", n.op, n.name, shapes.fmt(n.shape), str(n.dtype),
                         " ".join(f"%{x.id}" for x in n.inputs), str(n.derivative),
                         _attrs(n)) for n in nodes]
    widths = [max(len(row[k]) for row in rows) for k in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append("outputs: " + ", ".join(f"%{n.id} {n.name}" for n in outputs))
    return lines


def _attrs(node: Node) -> str:
    if node.op == "constant":
        value = node.attrs["value"]
        return f"value={_short_value(value)}" if value.size <= SHORT_CONSTANT else ""
    return " ".join(f"{key}={_short(value)}" for key, value in node.attrs.items())


# -- the compact form ------------------------------------------------------------------------------
def _compact(nodes: list, outputs: list) -> list:
    def ref(node: Node) -> str:
        if node.op == "constant" and node.attrs["value"].size <= SHORT_CONSTANT:
            return _short_value(node.attrs["value"]).replace(" ", "")
        return node.name

    def typed(node: Node) -> str:
        return f"{node.name}:{_type(node)}"

    states = [n for n in nodes if n.op == "variable" or
              (n.op == "constant" and n.attrs["value"].size > SHORT_CONSTANT)]
    inputs = [n for n in nodes if n.op == "placeholder"]
    lines = [f"{{ lambda {' '.join(typed(n) for n in states)} ; "
             f"{' '.join(typed(n) for n in inputs)} . let"]
    for n in nodes:
        if n.op in _LEAVES:
            continue
        params = " ".join(f"{k}={_short(v)}" for k, v in n.attrs.items())
        head = f"{n.op}[{params}]" if params else n.op
        order = f"  # derivative {n.derivative}" if n.derivative else ""
        lines.append(f"    {typed(n)} = {head} {' '.join(ref(x) for x in n.inputs)}{order}")
    lines.append(f"  in ({', '.join(ref(n) for n in outputs)}) }}")
    return lines


def _type(node: Node) -> str:
    """jaxpr's short type: ``f64[?,3]``, ``i64[]``, ``bool[2]``."""
    kind = node.dtype.kind
    base = "bool" if kind == "b" else f"{kind}{node.dtype.itemsize * 8}"
    return base + "[" + ",".join("?" if d is None else str(d) for d in node.shape) + "]"


# -- summaries -------------------------------------------------------------------------------------
def summarize_graph(graph: Graph) -> str:
    """``repr(graph)``: node count, counts by op, the inputs, variables and outputs."""
    nodes = graph.nodes
    parts = [f"{len(nodes)} nodes"]
    if nodes:
        parts[0] += f" ({op_counts(Counter(n.op for n in nodes))})"
    for label, group in (("inputs", graph.placeholders), ("variables", graph.variables),
                         ("outputs", _sinks(nodes))):
        if group:
            parts.append(f"{label} {_names(group)}")
    derived = sum(1 for n in nodes if n.derivative)
    if derived:
        parts.append(f"{derived} derivative node{'s' if derived > 1 else ''}")
    return f"<graphc.Graph: {'; '.join(parts)}>"


def op_counts(counts: Mapping[str, int], most: int = 8) -> str:
    """``"mul 3, add 2, tanh 1"``: the most frequent ops first, then ``"+k more ops"``."""
    counted = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{op} {count}" for op, count in counted[:most])
    return text + (f", +{len(counted) - most} more ops" if len(counted) > most else "")


def _names(nodes, most: int = 6) -> str:
    names = [n.name for n in nodes]
    return ", ".join(names[:most]) + (f", +{len(names) - most} more" if len(names) > most else "")


def _sinks(nodes: list) -> list:
    """The nodes nothing consumes among ``nodes`` (a graph's results)."""
    consumed = {x.id for n in nodes for x in n.inputs}
    return [n for n in nodes if n.id not in consumed]


# -- values ----------------------------------------------------------------------------------------
def _short(value, width: int = 40) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= width else text[:width - 3] + "..."
