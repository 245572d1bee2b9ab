"""The text views: gc.to_text (listing and compact form), gc.show, repr of graphs and functions."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

import graphc as gc


def small_graph():
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.ones(3))
    h = gc.tanh(x * W, name="h")
    f = gc.sum(h * h + 0.5, name="f")
    return g, x, W, h, f


LISTING = """\
id  op           name        shape      dtype    inputs  order  attrs
%0  placeholder  x           (None, 3)  float64          0
%1  variable     W           (3,)       float64          0
%2  mul          mul_2       (None, 3)  float64  %0 %1   0
%3  tanh         h           (None, 3)  float64  %2      0
%4  mul          mul_4       (None, 3)  float64  %3 %3   0
%5  constant     constant_5  ()         float64          0      value=0.5
%6  add          add_6       (None, 3)  float64  %4 %5   0
%7  sum          f           ()         float64  %6      0      axis=(0, 1) keepdims=False
outputs: %7 f
"""

COMPACT = """\
{ lambda W:f64[3] ; x:f64[?,3] . let
    mul_2:f64[?,3] = mul x W
    h:f64[?,3] = tanh mul_2
    mul_4:f64[?,3] = mul h h
    add_6:f64[?,3] = add mul_4 0.5
    f:f64[] = sum[axis=(0, 1) keepdims=False] add_6
  in (f) }
"""


def test_the_listing_format_is_pinned():
    g, x, W, h, f = small_graph()
    assert gc.to_text(g) == LISTING
    assert gc.to_text(f) == LISTING  # the ancestors of f are the whole graph
    assert gc.to_text(f, compact=True) == COMPACT


def test_a_shared_node_is_printed_once_and_referred_to_by_id():
    g, x, W, h, f = small_graph()
    text = gc.to_text(f)
    assert text.count(" h ") == 1 and f"%{h.id} %{h.id}" in text  # h * h uses h twice


def test_only_the_ancestors_of_the_targets_are_listed_and_targets_are_the_outputs():
    g, x, W, h, f = small_graph()
    other = gc.exp(W, name="other")
    text = gc.to_text([h, other])
    names = [line.split()[2] for line in text.splitlines()[1:-1]]
    assert names == ["x", "W", "mul_2", "h", "other"]
    assert text.splitlines()[-1] == f"outputs: %{h.id} h, %{other.id} other"
    with pytest.raises(gc.GraphcError, match="to_text takes a Graph, a Node or a non-empty list"):
        gc.to_text([])


def test_derivative_nodes_show_their_order_and_name():
    g, x, W, h, f = small_graph()
    gW = gc.grad(f, W)
    text = gc.to_text(gW)
    line = next(line for line in text.splitlines() if line.startswith(f"%{gW.id} "))
    assert re.fullmatch(rf"%{gW.id} +sum +d\(f\)/d\(W\) +\(3,\) +float64 +%\d+ +1 +"
                        r"axis=\(0,\) keepdims=False", line), line
    header, *rows = text.splitlines()[:-1]
    at = header.index("order")  # columns are aligned under the header
    orders = {int(row[at:at + 5]) for row in rows}
    assert orders == {0, 1}
    assert "d(f)/d(W):f64[3] = sum[axis=(0,) keepdims=False]" in gc.to_text(gW, compact=True)
    assert "# derivative 1" in gc.to_text(gW, compact=True)


def test_long_listings_are_cut_short_on_request():
    g, x, W, h, f = small_graph()
    lines = gc.to_text(g, max_nodes=3).splitlines()
    assert len(lines) == 1 + 3 + 2 and lines[-2] == "... 5 more nodes"


def test_show_prints_the_listing(capsys):
    g, x, W, h, f = small_graph()
    gc.show(f)
    assert capsys.readouterr().out == LISTING
    buffer = io.StringIO()
    gc.show(g, compact=True, file=buffer)
    assert buffer.getvalue() == COMPACT


def test_repr_of_a_graph_summarises_ops_inputs_and_outputs():
    g, x, W, h, f = small_graph()
    assert repr(g) == ("<graphc.Graph: 8 nodes (mul 2, add 1, constant 1, placeholder 1, "
                       "sum 1, tanh 1, variable 1); inputs x; variables W; outputs f>")
    gc.grad(f, W)
    assert re.search(r"; \d+ derivative nodes>$", repr(g))
    assert repr(gc.Graph()) == "<graphc.Graph: 0 nodes>"


def test_repr_of_a_function_summarises_terms_inputs_outputs_and_updates():
    g, x, W, h, f = small_graph()
    step = gc.function([x], [f, h], updates={W: W - 0.1 * gc.grad(f, W)})
    text = repr(step)
    assert text.startswith("<graphc.Function(x) -> (f, h); updates W: ")
    terms = step.stats["nodes"]["final"]
    assert f": {terms} terms (mul " in text and "tanh 1" in text and "placeholder" not in text
    assert step.stats["ops"]["tanh"] == 1 and sum(step.stats["ops"].values()) == terms
    assert re.search(r"(planned peak \d+ bytes|peak memory known at run time)>$", text)
