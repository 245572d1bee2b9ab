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
    assert "image/svg+xml" not in g._repr_mimebundle_()  # Jupyter shows the text listing
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
    assert "<svg" in g._repr_mimebundle_()["image/svg+xml"]
    assert y._repr_html_().startswith("<svg")


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


# -- annotated pictures (CS231n's circuits) ------------------------------------------------------
VALUE = re.compile(r'<font color="#1a7f37">([^<]*)</font>')
GRADIENT = re.compile(r'<font color="#c62828">([^<]*)</font>')


def annotations(text: str, node) -> tuple:
    """(value, gradient) written on ``node``'s label (None where absent)."""
    line = node_line(text, node)
    value, grad = VALUE.search(line), GRADIENT.search(line)
    return (value and value.group(1)), (grad and grad.group(1))


def test_values_and_gradients_of_the_add_multiply_circuit():
    g = gc.Graph()
    x, y, z = (g.placeholder(n) for n in "xyz")
    q = gc.add(x, y, name="q")
    f = gc.mul(q, z, name="f")
    before = len(g)
    text = gc.to_dot(f, feed={x: -2.0, "y": 5.0, z: -4.0}, grad_of=f)
    assert len(g) == before  # drawing builds its gradients in a copy
    assert {n.name: annotations(text, n) for n in (x, y, z, q, f)} == {
        "x": ("-2", "-4"), "y": ("5", "-4"), "z": ("-4", "3"), "q": ("3", "-4"),
        "f": ("-12", "1")}
    assert "red: gradients of f" in text
    values_only = gc.to_dot(f, feed={x: -2.0, y: 5.0, z: -4.0})
    assert annotations(values_only, q) == ("3", None) and "red:" not in values_only
    assert gc.to_dot(f) == gc.to_dot(f, feed=None)  # no feed: the plain picture
    part = gc.to_dot(q, feed={x: -2.0, y: 5.0, z: -4.0}, grad_of=f)  # f is not drawn
    assert annotations(part, q) == ("3", "-4") and f"n{f.id} [" not in part


def test_arrays_are_summarised_by_shape_and_first_entries():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.arange(6.0).reshape(3, 2))
    loss = gc.sum(gc.square(x @ W), name="loss")
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    text = gc.to_dot(loss, feed={x: X}, grad_of=loss, digits=3)
    dW = 2 * X.T @ (X @ W.value)
    assert annotations(text, W) == ("(3, 2) [0, 1, 2, 3, ...]",
                                    "(3, 2) [" + ", ".join(f"{v:.3g}" for v in dW.ravel()[:4])
                                    + ", ...]")
    assert annotations(text, loss)[0] == f"{np.sum((X @ W.value) ** 2):.3g}"


def test_nodes_the_feed_does_not_determine_stay_plain():
    g = gc.Graph()
    x, y = g.placeholder("x"), g.placeholder("y")
    a = gc.exp(x, name="a")
    b = gc.mul(a, y, name="b")
    text = gc.to_dot(g, feed={x: 0.0})
    assert annotations(text, a) == ("1", None) and annotations(text, b) == (None, None)
    with pytest.raises(gc.GraphcError, match="does not determine mul node 'b'"):
        gc.to_dot(g, feed={x: 0.0}, grad_of=b)
    with pytest.raises(gc.ShapeError, match="grad_of must be a scalar"):
        gc.to_dot(g, feed={x: 0.0, y: 1.0}, grad_of=gc.stack([a, b]))


def test_names_are_escaped_in_annotated_labels():
    g = gc.Graph()
    x = g.placeholder("x<&>")
    f = gc.sin(x, name='f "quoted"')
    text = gc.to_dot(f, feed={x: 0.0}, grad_of=f)
    assert "x&lt;&amp;&gt;" in node_line(text, x) and "f &quot;quoted&quot;" in text


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz dot is not installed")
def test_annotated_pictures_render(tmp_path):
    g = gc.Graph()
    x = g.placeholder("x")
    f = gc.sigmoid(x, name="f")
    path = gc.render(f, tmp_path / "f.svg", feed={x: 0.0}, grad_of=f)
    assert "0.25" in open(path).read()


# -- Jupyter ---------------------------------------------------------------------------------------
def fake_graphviz(monkeypatch):
    import graphc.io.dot as dot

    monkeypatch.setattr(dot.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(dot, "run_dot", lambda text, fmt: b'<?xml version="1.0"?>\n<svg>'
                        + text.encode() + b"</svg>")


def test_jupyter_shows_the_picture_when_graphviz_is_installed(monkeypatch):
    fake_graphviz(monkeypatch)
    g, x, W, y = small_graph()
    bundle = g._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg>digraph graphc {")
    assert bundle["text/html"] == bundle["image/svg+xml"] and bundle["text/plain"] == repr(g)
    assert y._repr_html_() == "<svg>" + gc.to_dot(y) + "</svg>"
    assert set(g._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}
    assert "image/svg+xml" not in g._repr_mimebundle_(exclude=["image/svg+xml"])


def test_jupyter_shows_the_text_listing_without_graphviz_or_for_large_graphs(monkeypatch):
    import graphc.io.dot as dot

    g, x, W, y = small_graph()
    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    bundle = g._repr_mimebundle_()
    assert "image/svg+xml" not in bundle
    assert bundle["text/html"] == "<pre>" + gc.to_text(g).replace(">", "&gt;") + "</pre>"
    fake_graphviz(monkeypatch)
    monkeypatch.setattr(dot, "MAX_PICTURE_NODES", 3)
    html = g._repr_html_()
    assert html.startswith("<pre>id ") and f"... {len(g) - 3} more nodes" in html
    assert x._repr_html_().startswith("<svg>")  # x alone is small enough
