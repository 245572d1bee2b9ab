"""Graphviz DOT export and rendering.

``to_dot`` writes deterministic text: nodes in creation order, placeholders, variables and
constants each in their own style, derivative nodes (``node.derivative > 0``) shaded by their
order and grouped in a dashed cluster per order, edges labelled with the input index when an op
has several inputs. ``render`` turns it into SVG/PNG/PDF with the Graphviz ``dot`` program.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional, Sequence, Union

import numpy as np

from .. import shapes
from ..errors import GraphcError
from ..graph import Graph, Node
from ..runtime import needed_nodes
from .atomic import write_atomic

INSTALL_HINT = ("the Graphviz 'dot' program is not installed (or not on PATH); install it "
                "with 'apt-get install graphviz', 'brew install graphviz' or 'conda install "
                "graphviz', or write DOT text instead (gc.to_dot, or a .dot path)")
#: Larger graphs are not drawn inline in Jupyter (their text repr is shown instead).
MAX_PICTURE_NODES = 400
RENDER_FORMATS = ("svg", "png", "pdf")

_LEAF_STYLE = {
    "placeholder": {"shape": "box", "style": "rounded,filled", "fillcolor": "#cfe2ff",
                    "color": "#084298"},
    "variable": {"shape": "box", "style": "filled", "fillcolor": "#d1e7dd", "color": "#0f5132",
                 "peripheries": "2"},
    "constant": {"shape": "box", "style": "filled", "fillcolor": "#eeeeee", "color": "#888888",
                 "fontcolor": "#444444", "fontsize": "9"},
}
_OP_STYLE = {"shape": "ellipse", "style": "filled", "fillcolor": "#ffffff", "color": "#333333"}
# Derivative order 1, 2, 3, 4+: ever darker orange fill, dashed orange outline.
_DERIVATIVE_FILL = ("#ffe8cc", "#ffd199", "#ffb866", "#ff9f33")
_DERIVATIVE_LINE = "#b35900"

Target = Union[Graph, Node, Sequence[Node]]  # a list or tuple of nodes


def to_dot(target: Target) -> str:
    """Graphviz DOT text for a graph, a node or a list of nodes (then with their ancestors)."""
    nodes, targets = _select(target)
    lines = ["digraph graphc {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=10];',
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    lines += [f"  {_node_line(n, n.id in targets)}" for n in nodes if n.derivative == 0]
    for order in sorted({n.derivative for n in nodes} - {0}):
        lines.append(f"  subgraph cluster_derivative_{order} {{")
        lines.append(f'    label="derivative order {order}"; style="dashed,rounded"; '
                     f'color="{_DERIVATIVE_LINE}"; fontcolor="{_DERIVATIVE_LINE}";')
        lines += [f"    {_node_line(n, n.id in targets)}" for n in nodes
                  if n.derivative == order]
        lines.append("  }")
    for n in nodes:
        several = len(n.inputs) > 1
        for i, x in enumerate(n.inputs):
            label = f' [label="{i}"]' if several else ""
            lines.append(f"  n{x.id} -> n{n.id}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(target: Target, path: Union[str, os.PathLike], format: Optional[str] = None) -> str:
    """Draw ``target`` to ``path`` (SVG, PNG or PDF by the suffix, or ``format``); returns path.

    A ``.dot``/``.gv`` path gets the DOT text itself. Needs the Graphviz ``dot`` program for
    pictures and raises :class:`GraphcError` saying how to install it when it is missing.
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    text = to_dot(target)
    if fmt in ("dot", "gv"):
        data = text.encode("utf-8")
    elif fmt in RENDER_FORMATS:
        data = run_dot(text, fmt)
    else:
        raise GraphcError(f"cannot render to {path!r}: use a .svg, .png, .pdf or .dot path "
                          "(or format=...)")
    write_atomic(path, data)
    return path


def run_dot(text: str, fmt: str) -> bytes:
    """Run Graphviz ``dot -T<fmt>`` on DOT text and return its output."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphcError(f"cannot render a picture: {INSTALL_HINT}")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=text.encode("utf-8"),
                              capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphcError(f"running Graphviz dot failed: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphcError(f"Graphviz dot failed: {message[0] if message else done.returncode}")
    return done.stdout


def svg_or_none(target: Target) -> Optional[str]:
    """An SVG picture for Jupyter, or None (so the text repr shows) without ``dot``."""
    try:
        nodes, _ = _select(target)
        if len(nodes) > MAX_PICTURE_NODES or shutil.which("dot") is None:
            return None
        return run_dot(to_dot(target), "svg").decode("utf-8")
    except GraphcError:
        return None


# -- helpers ---------------------------------------------------------------------------------------
def _select(target: Target) -> tuple[list, set]:
    """The nodes to draw (creation order) and the ids of the ones asked for."""
    if isinstance(target, Graph):
        return list(target.nodes), set()
    if isinstance(target, Node):
        wanted = [target]
    elif isinstance(target, (list, tuple)):
        wanted = list(target)
    else:
        wanted = []
    if not wanted or not all(isinstance(n, Node) for n in wanted):
        raise GraphcError("to_dot takes a Graph, a Node or a non-empty list of nodes")
    graph = wanted[0].graph
    if any(n.graph is not graph for n in wanted):
        raise GraphcError("to_dot: the nodes belong to different graphs")
    return needed_nodes(graph, wanted, {}), {n.id for n in wanted}


def _node_line(node: Node, highlight: bool) -> str:
    style = dict(_LEAF_STYLE.get(node.op, _OP_STYLE))
    if node.derivative:
        style["style"] += ",dashed"
        style["fillcolor"] = _DERIVATIVE_FILL[min(node.derivative, len(_DERIVATIVE_FILL)) - 1]
        style["color"] = _DERIVATIVE_LINE
    if highlight:
        style["penwidth"] = "2.5"
    body = ", ".join(f'{key}="{value}"' for key, value in style.items())
    return f'n{node.id} [label="{_label(node)}", {body}];'


def _label(node: Node) -> str:
    head = node.op
    if node.op == "constant" and node.attrs["value"].size <= 4:
        head = f"constant {_short_value(node.attrs['value'])}"
    lines = [head, node.name, f"{shapes.fmt(node.shape)} {node.dtype}"]
    if node.derivative:
        lines.append(f"derivative {node.derivative}")
    return "\\n".join(_escape(line) for line in lines)


def _short_value(value: np.ndarray) -> str:
    if value.ndim == 0:
        return repr(value.item())
    return np.array2string(value, separator=", ").replace("\n", "")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
