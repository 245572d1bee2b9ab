"""Graphviz DOT export and rendering.

``to_dot`` writes deterministic text: nodes in creation order, placeholders, variables and
constants each in their own style, derivative nodes (``node.derivative > 0``) shaded by their
order and grouped in a dashed cluster per order, edges labelled with the input index when an op
has several inputs. ``render`` turns it into SVG/PNG/PDF with the Graphviz ``dot`` program.
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess
from typing import Optional, Sequence, Union

import numpy as np

from .. import shapes
from ..autodiff import gradients
from ..errors import GraphcError, ShapeError, describe
from ..graph import Graph, Node
from ..runtime import needed_nodes, resolve_feed
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


def to_dot(target: Target, feed: Optional[dict] = None, grad_of: Optional[Node] = None, *,
           digits: int = 4, expand: bool = False) -> str:
    """Graphviz DOT text for a graph, a node or a list of nodes (then with their ancestors).

    With a ``feed`` (or a ``grad_of``), each node is annotated in the style of the CS231n
    circuit diagrams: its forward value above the label, in green, and, when ``grad_of`` (a
    scalar node) is given, the gradient of ``grad_of`` with respect to the node below, in red.
    Arrays are summarised by their shape and first entries; numbers get ``digits`` significant
    digits. Nodes that the feed does not determine stay unannotated. Drawing never changes the
    graph (the gradients are built in a copy).

    A composite (``gc.composite``) is one box; ``expand=True`` also draws its body, in a
    cluster beside it, wired to the composite's inputs and output by dotted edges.
    """
    nodes, targets = select(target)
    values, grads = ({}, {}) if feed is None and grad_of is None else \
        annotations(nodes, feed or {}, grad_of)
    lines = ["digraph graphc {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=10];',
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    if values:
        legend = f"<font color=\"{VALUE_COLOUR}\">green: forward values</font>"
        if grad_of is not None:
            legend += (f" &#183; <font color=\"{GRADIENT_COLOUR}\">red: gradients of "
                       f"{_html(grad_of.name)}</font>")
        lines.append(f"  graph [label=<{legend}>, labelloc=b];")

    def line(n: Node) -> str:
        return _node_line(n, n.id in targets, values.get(n.id), grads.get(n.id), digits)

    lines += [f"  {line(n)}" for n in nodes if n.derivative == 0]
    for order in sorted({n.derivative for n in nodes} - {0}):
        lines.append(f"  subgraph cluster_derivative_{order} {{")
        lines.append(f'    label="derivative order {order}"; style="dashed,rounded"; '
                     f'color="{_DERIVATIVE_LINE}"; fontcolor="{_DERIVATIVE_LINE}";')
        lines += [f"    {line(n)}" for n in nodes if n.derivative == order]
        lines.append("  }")
    for n in nodes:
        several = len(n.inputs) > 1
        for i, x in enumerate(n.inputs):
            label = f' [label="{i}"]' if several else ""
            lines.append(f"  n{x.id} -> n{n.id}{label};")
    if expand:
        for n in nodes:
            if n.op == "composite":
                lines += _body_lines(n, f"n{n.id}", [f"n{x.id}" for x in n.inputs])
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(target: Target, path: Union[str, os.PathLike], format: Optional[str] = None, *,
           feed: Optional[dict] = None, grad_of: Optional[Node] = None, digits: int = 4) -> str:
    """Draw ``target`` to ``path`` (SVG, PNG or PDF by the suffix, or ``format``); returns path.

    A ``.dot``/``.gv`` path gets the DOT text itself. ``feed``, ``grad_of`` and ``digits``
    annotate values and gradients as in :func:`to_dot`. Needs the Graphviz ``dot`` program for
    pictures and raises :class:`GraphcError` saying how to install it when it is missing.
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    text = to_dot(target, feed, grad_of, digits=digits)
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
    """An SVG picture for Jupyter, or None when ``dot`` is missing or the graph is large."""
    try:
        nodes, _ = select(target)
        if len(nodes) > MAX_PICTURE_NODES or shutil.which("dot") is None:
            return None
        svg = run_dot(to_dot(target), "svg").decode("utf-8")
    except GraphcError:
        return None
    start = svg.find("<svg")  # drop the XML prologue: the picture is embedded in HTML too
    return svg[start:] if start >= 0 else svg


def mimebundle(target: Target, include=None, exclude=None) -> dict:
    """What Jupyter shows for a graph or node: the SVG picture when Graphviz is installed and
    the graph is small, else the text listing (:func:`graphc.to_text`), as HTML; ``repr`` as
    plain text."""
    from .text import to_text

    svg = svg_or_none(target)
    if svg is not None:
        bundle = {"image/svg+xml": svg, "text/html": svg}
    else:
        listing = to_text(target, max_nodes=MAX_PICTURE_NODES)
        bundle = {"text/html": f"<pre>{html.escape(listing)}</pre>"}
    bundle["text/plain"] = repr(target)
    return {key: value for key, value in bundle.items()
            if (include is None or key in include) and (exclude is None or key not in exclude)}


# -- annotations -----------------------------------------------------------------------------------
VALUE_COLOUR = "#1a7f37"     # green, above the label
GRADIENT_COLOUR = "#c62828"  # red, below the label


def annotations(nodes: list, feed: dict, grad_of: Optional[Node]) -> tuple[dict, dict]:
    """``{node id: value}`` of the nodes the feed determines, and ``{node id: gradient of
    grad_of}`` of those grad_of depends on. Constants are left out (their label shows them)."""
    graph = nodes[0].graph
    if grad_of is not None and (not isinstance(grad_of, Node) or grad_of.graph is not graph):
        raise GraphcError("to_dot: grad_of must be a node of the graph drawn")
    fed = resolve_feed(graph, feed)
    drawn = {n.id for n in nodes}
    # grad_of need not be drawn (a picture of part of a circuit), but its ancestors count
    span = nodes if grad_of is None or grad_of.id in drawn else \
        needed_nodes(graph, nodes + [grad_of], {})
    known, computable = set(fed), []
    for n in span:  # creation order: a node's inputs come first
        if n.id in fed or (n.op != "placeholder" and all(x.id in known for x in n.inputs)):
            known.add(n.id)
            if n.op != "constant":
                computable.append(n)
    values = dict(zip((n.id for n in computable), graph.run(computable, feed)))
    if grad_of is None:
        return values, {}
    if grad_of.shape != ():
        raise ShapeError(f"to_dot: grad_of must be a scalar, but {describe(grad_of)} has shape "
                         f"{shapes.fmt(grad_of.shape)}")
    if grad_of.id not in known:
        raise GraphcError(f"to_dot: the feed does not determine {describe(grad_of)}, so its "
                          "gradients cannot be computed")
    # The gradients are built in a copy of the graph: drawing must not change the user's.
    copy = _copy(graph, upto=grad_of.id)
    wrt = [n for n in computable if n.id < grad_of.id and np.issubdtype(n.dtype, np.floating)]
    found = gradients(copy.nodes[grad_of.id], [copy.nodes[n.id] for n in wrt],
                      unconnected="none")
    pairs = [(n.id, d) for n, d in zip(wrt, found) if d is not None]
    copy_feed = {copy.nodes[k.id] if isinstance(k, Node) else k: v for k, v in feed.items()
                 if (k.id <= grad_of.id if isinstance(k, Node) else k in copy)}
    grads = dict(zip((i for i, _ in pairs), copy.run([d for _, d in pairs], copy_feed)))
    grads[grad_of.id] = np.ones((), grad_of.dtype)  # d(grad_of)/d(grad_of)
    return values, grads


def _copy(graph: Graph, upto: int) -> Graph:
    """A copy of the nodes of ``graph`` up to id ``upto`` (all the ancestors of that node),
    with the same ids, names and variable values."""
    copy = Graph()
    for n in graph.nodes[:upto + 1]:
        node = copy._add(n.op, tuple(copy._nodes[x.id] for x in n.inputs), n.attrs, n.shape,
                         n.dtype, n.name, site=n.site or "", derivative=n.derivative)
        if n.op == "variable":
            copy._values[node.id] = graph._values[n.id]
    return copy


def summary(value, digits: int = 4) -> str:
    """A value in a few characters: ``-12``, ``0.7311``, ``(64, 10) [0.1, -0.2, 0.3, ...]``."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _number(array.item(), digits)
    head = [_number(v, digits) for v in array.ravel()[:SUMMARY_ENTRIES].tolist()]
    more = ", ..." if array.size > SUMMARY_ENTRIES else ""
    return f"{shapes.fmt(array.shape)} [{', '.join(head)}{more}]"


#: Entries of an array shown in an annotation.
SUMMARY_ENTRIES = 4


def _number(v, digits: int) -> str:
    if isinstance(v, (bool, int)):
        return str(v)
    if isinstance(v, complex):
        return f"{v:.{digits}g}"
    text = f"{v:.{digits}g}"
    return "0" if text == "-0" else text


# -- helpers ---------------------------------------------------------------------------------------
def select(target: Target, who: str = "to_dot") -> tuple[list, set]:
    """The nodes to show (creation order) and the ids of the ones asked for (none for a
    graph); ``who`` names the caller in the error for a bad target."""
    if isinstance(target, Graph):
        return list(target.nodes), set()
    if isinstance(target, Node):
        wanted = [target]
    elif isinstance(target, (list, tuple)):
        wanted = list(target)
    else:
        wanted = []
    if not wanted or not all(isinstance(n, Node) for n in wanted):
        raise GraphcError(f"{who} takes a Graph, a Node or a non-empty list of nodes")
    graph = wanted[0].graph
    if any(n.graph is not graph for n in wanted):
        raise GraphcError(f"{who}: the nodes belong to different graphs")
    return needed_nodes(graph, wanted, {}), {n.id for n in wanted}


def _node_line(node: Node, highlight: bool, value=None, grad=None, digits: int = 4) -> str:
    style = dict(_LEAF_STYLE.get(node.op, _OP_STYLE))
    if node.op == "composite":
        style.update(shape="box3d", color="#6f42c1")
    if node.derivative:
        style["style"] += ",dashed"
        style["fillcolor"] = _DERIVATIVE_FILL[min(node.derivative, len(_DERIVATIVE_FILL)) - 1]
        style["color"] = _DERIVATIVE_LINE
    if highlight:
        style["penwidth"] = "2.5"
    body = ", ".join(f'{key}="{value}"' for key, value in style.items())
    if value is None and grad is None:
        return f'n{node.id} [label="{_label(node)}", {body}];'
    # CS231n's circuits: the value above, in green; the gradient below, in red.
    rows = [_html(line) for line in _label_lines(node)]
    if value is not None:
        rows.insert(0, f'<font color="{VALUE_COLOUR}">{_html(summary(value, digits))}</font>')
    if grad is not None:
        rows.append(f'<font color="{GRADIENT_COLOUR}">{_html(summary(grad, digits))}</font>')
    return f"n{node.id} [label=<{'<br/>'.join(rows)}>, {body}];"


def _body_lines(node: Node, outer: str, args: list) -> list:
    """A composite's body as a cluster (nested composites expanded too): ids prefixed by the
    composite's, dotted edges from its inputs to the body's arguments and from the body's
    output to the composite."""
    body = node.attrs["body"]
    prefix = f"{outer}_"
    lines = [f"  subgraph cluster_{outer} {{",
             f'    label="{_escape("body of " + node.attrs["label"])}"; style="dotted,rounded"; '
             'color="#6f42c1"; fontcolor="#6f42c1";']
    for b in body.graph.nodes:
        lines.append("    " + _node_line(b, False).replace(f"n{b.id} [", f"{prefix}{b.id} [", 1))
    lines.append("  }")
    for b in body.graph.nodes:
        for i, x in enumerate(b.inputs):
            label = f' [label="{i}"]' if len(b.inputs) > 1 else ""
            lines.append(f"  {prefix}{x.id} -> {prefix}{b.id}{label};")
        if b.op == "composite":
            lines += _body_lines(b, f"{prefix}{b.id}", [f"{prefix}{x.id}" for x in b.inputs])
    for arg, p in zip(args, body.inputs):
        lines.append(f'  {arg} -> {prefix}{p.id} [style=dotted, color="#6f42c1"];')
    lines.append(f'  {prefix}{body.outputs[0].id} -> {outer} [style=dotted, color="#6f42c1"];')
    return lines


def _label(node: Node) -> str:
    return "\\n".join(_escape(line) for line in _label_lines(node))


def _label_lines(node: Node) -> list:
    head = node.op
    if node.op == "composite":  # one box for the whole body
        head = f"composite {node.attrs['label']}"
    if node.op == "constant" and node.attrs["value"].size <= 4:
        head = f"constant {_short_value(node.attrs['value'])}"
    lines = [head, node.name, f"{shapes.fmt(node.shape)} {node.dtype}"]
    if node.derivative:
        lines.append(f"derivative {node.derivative}")
    return lines


def _short_value(value: np.ndarray) -> str:
    if value.ndim == 0:
        return repr(value.item())
    return np.array2string(value, separator=", ").replace("\n", "")


def _html(text: str) -> str:
    """Text for a Graphviz HTML-like label."""
    return html.escape(text, quote=True)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
