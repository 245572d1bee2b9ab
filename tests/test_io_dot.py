"""DOT export, rendering through Graphviz, Jupyter pictures, and the networkx view."""
from __future__ import annotations

import re
import shutil

import networkx as nx
import numpy as np
import pytest

import graphc as gc

HAVE_DOT = shutil.which("dot") is not None


def small_graph():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.ones((3,)))
    y = gc.sum(gc.tanh(x * W) * 2.0, name="y")
    return g, x, W, y


def node_line(text: str, node) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(f"n{node.id} ["))


def test_labels_carry_op_name_shape_dtype_and_leaves_are_styled_apart():
    g, x, W, y = small_graph()
    text = gc.to_dot(g)
    assert text.startswith("digraph graphc {") and text.rstrip().endswith("}")
    assert 'label="placeholder\\nx\\n(None, 3) float64"' in node_line(text, x)
    assert 'label="sum\\ny\\n() float64"' in node_line(text, y)
    constant = next(n for n in g.nodes if n.op == "constant")
    assert 'label="constant 2.0\\n' in node_line(text, constant)
    styles = {re.sub(r'label="[^"]*", ', "", node_line(text, n).split("[", 1)[1])
              for n in (x, W, constant, y)}
    assert len(styles) == 4  # placeholder, variable, constant and op nodes all look different


def test_edges_carry_the_input_index_only_for_several_inputs():
    g = gc.Graph()
    x = g.placeholder("x")
    y = x * x
    z = gc.exp(y)
    text = gc.to_dot(g)
    assert f'n{x.id} -> n{y.id} [label="0"];' in text
    assert f'n{x.id} -> n{y.id} [label="1"];' in text
    assert f"n{y.id} -> n{z.id};" in text


def test_derivative_nodes_are_set_apart_and_shaded_by_order():
    g, x, W, y = small_graph()
    (gW,) = gc.gradients(y, [W])
    h = gc.hvp(y, W, np.ones(3))  # differentiates the gradient graph: order 2
    text = gc.to_dot(g)
    assert "subgraph cluster_derivative_1 {" in text
    assert "subgraph cluster_derivative_2 {" in text
    first, second = node_line(text, gW), node_line(text, h)
    assert "dashed" in first and "dashed" in second
    fill = re.compile(r'fillcolor="([^"]+)"')
    assert fill.search(first).group(1) != fill.search(second).group(1)
    assert "dashed" not in node_line(text, y)
    cluster = text.split("subgraph cluster_derivative_1 {")[1].split("}")[0]
    assert f"n{gW.id} [" in cluster and f"n{y.id} [" not in cluster


def test_a_node_or_a_list_gives_its_ancestors_only():
    g, x, W, y = small_graph()
    other = gc.exp(x)
    text = gc.to_dot(y)
    assert f"n{other.id} [" not in text and f"n{x.id} [" in text
    assert "penwidth" in node_line(text, y)
    both = gc.to_dot([y, other])
    assert f"n{other.id} [" in both and f"n{y.id} [" in both
    with pytest.raises(gc.GraphcError, match="Graph, a Node or a non-empty list"):
        gc.to_dot([])
    with pytest.raises(gc.GraphcError, match="different graphs"):
        gc.to_dot([y, gc.Graph().placeholder("z")])


def test_dot_text_is_deterministic_and_escaped():
    def build():
        g = gc.Graph()
        x = g.placeholder('say "hi"\\')
        gc.grad(gc.sin(x) * x, x)
        return g
    a, b = gc.to_dot(build()), gc.to_dot(build())
    assert a == b
    assert 'say \\"hi\\"\\\\' in a


def test_render_writes_dot_text_without_graphviz(tmp_path, monkeypatch):
    g, *_ = small_graph()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    path = gc.render(g, tmp_path / "g.dot")
    assert open(path).read() == gc.to_dot(g)
    with pytest.raises(gc.GraphcError, match="apt-get install graphviz"):
        gc.render(g, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()
    assert g._repr_svg_() is None  # Jupyter falls back to the text repr
    with pytest.raises(gc.GraphcError, match="use a .svg, .png"):
        gc.render(g, tmp_path / "g.txt")


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz dot is not installed")
def test_render_svg_and_png_with_graphviz(tmp_path):
    g, x, W, y = small_graph()
    gc.grad(y, W)
    svg = gc.render(g, tmp_path / "g.svg")
    assert "<svg" in open(svg).read()
    png = gc.render(y, tmp_path / "y.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in g._repr_svg_() and "<svg" in y._repr_svg_()


def test_to_networkx_is_a_multidigraph_with_node_attributes():
    g = gc.Graph()
    x = g.placeholder("x", (2,))
    y = x * x
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.MultiDiGraph)
    assert nxg.number_of_edges(x.id, y.id) == 2
    assert nxg.nodes[y.id]["op"] == "mul" and nxg.nodes[x.id]["name"] == "x"
    assert nxg.nodes[x.id]["shape"] == (2,) and nxg.nodes[x.id]["dtype"] == "float64"
    assert list(nx.topological_sort(nxg)) == [n.id for n in g.nodes]


def test_labels_of_a_node_target_carry_op_name_shape_and_dtype():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3), dtype="float32")
    y = gc.exp(x, name="ey")
    k = g.placeholder("k", (2,), dtype="int64")
    text = gc.to_dot(y)
    assert 'label="exp\\ney\\n(None, 3) float32"' in node_line(text, y)
    assert 'label="placeholder\\nx\\n(None, 3) float32"' in node_line(text, x)
    both = gc.to_dot([y, k])
    assert 'label="placeholder\\nk\\n(2,) int64"' in node_line(both, k)
