"""Every wrong call gets a graphc error; one that concerns a node names its op, its name and
the line of this file where the node was built (or where the wrong call was made).

The table is the measure of issue 9's "errors that point at the user": ``test_the_figure``
prints how many of the wrong calls name op, node and site. ``RUN_TABLE`` holds bad values at
run time (indices and labels out of range, run-time sizes that do not fit, failing linear
algebra, bad feeds): each must raise the same error, word for word, on ``g.run``, the
generated source and the VM, in the caller's default, raising and warnings-as-errors states.
"""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest
import sympy as sp

import graphc as gc

HERE = os.path.basename(__file__)
SITE = re.compile(re.escape(HERE) + r":\d+")

g = gc.Graph()
x = g.placeholder("x", (3,))
m = g.placeholder("m", (2, 3))
v = g.placeholder("v", (None, 3))
u = g.placeholder("u", (None,))
i = g.placeholder("i", (3,), dtype="int64")
s = g.placeholder("s")
w = g.variable("w", np.arange(3.0))
y = gc.sum(x * w, name="y")
gt = gc.greater(x, 0.0, name="gt")
loose = g.placeholder("loose", (3,))  # y does not depend on it
q = g.placeholder("q", (1,))
other = gc.Graph()
alien = other.placeholder("alien", (3,))
X, Y = sp.Symbol("s"), sp.Symbol("t")
im = g.placeholder("im", (1, 2, 5, 5))  # an image batch (NCHW) and conv weights (OIHW)
kw = g.placeholder("kw", (3, 2, 3, 3))


@dataclass
class Wrong:
    call: Callable
    error: type = gc.GraphcError
    op: Optional[str] = None  # the node the error concerns: its op and name (None: no node)
    name: Optional[str] = None

    @property
    def line(self) -> int:
        return self.call.__code__.co_firstlineno


def _files(tmp):
    os.makedirs(os.path.join(tmp, "a_folder"), exist_ok=True)
    return tmp


TABLE = [
    # -- building --------------------------------------------------------------------------------
    Wrong(lambda t: gc.add(x, m[:, :2], name="a1"), gc.ShapeError, "add", "a1"),
    Wrong(lambda t: gc.matmul(x, m, name="mm"), gc.ShapeError, "matmul", "mm"),
    Wrong(lambda t: gc.reshape(x, (2, 2), name="r1"), gc.ShapeError, "reshape", "r1"),
    Wrong(lambda t: gc.sum(x, axis=3, name="s1"), gc.ShapeError, "sum", "s1"),
    Wrong(lambda t: gc.mean(m, axis=(0, 0), name="mn"), gc.ShapeError, "mean", "mn"),
    Wrong(lambda t: gc.transpose(m, (0, 0), name="t1"), gc.GraphcError, "transpose", "t1"),
    Wrong(lambda t: gc.concatenate([x, m], name="c1"), gc.ShapeError, "concatenate", "c1"),
    Wrong(lambda t: gc.stack([x, m], name="st"), gc.ShapeError, "stack", "st"),
    Wrong(lambda t: gc.squeeze(x, axis=0, name="sq"), gc.ShapeError, "squeeze", "sq"),
    Wrong(lambda t: gc.expand_dims(x, 5, name="ed"), gc.ShapeError, "expand_dims", "ed"),
    Wrong(lambda t: gc.broadcast_to(x, (2, 4), name="b1"), gc.ShapeError, "broadcast_to", "b1"),
    Wrong(lambda t: gc.broadcast_to(x, "big", name="b2"), gc.ShapeError, "broadcast_to", "b2"),
    Wrong(lambda t: gc.cast(x, "str", name="cs"), gc.DTypeError, "cast", "cs"),
    Wrong(lambda t: gc.cast(x, "nonsense", name="cs2"), gc.DTypeError, "cast", "cs2"),
    Wrong(lambda t: gc.softmax(x, axis=2, name="sm"), gc.ShapeError, "softmax", "sm"),
    Wrong(lambda t: gc.logsumexp(x, axis=4, name="lse"), gc.ShapeError, "logsumexp", "lse"),
    Wrong(lambda t: gc.maximum(x, np.ones(4), name="mx"), gc.ShapeError, "maximum", "mx"),
    Wrong(lambda t: gc.argmax(x, axis=1, name="am"), gc.ShapeError, "argmax", "am"),
    Wrong(lambda t: gc.softmax_cross_entropy(m, x, name="sce"), gc.GraphcError,
          "softmax_cross_entropy", "sce"),
    Wrong(lambda t: gc.one_hot(x, 3, name="oh"), gc.GraphcError, "one_hot", "oh"),
    Wrong(lambda t: gc.getitem(x, 5, name="gi"), gc.GraphcError, "getitem", "gi"),
    Wrong(lambda t: gc.getitem(x, "a", name="gi2"), gc.GraphcError, "getitem", "gi2"),
    Wrong(lambda t: gc.getitem(m, (0, 0, 0), name="gi3"), gc.GraphcError, "getitem", "gi3"),
    Wrong(lambda t: gc.where(gt, x, np.ones(4), name="wh"), gc.ShapeError, "where", "wh"),
    Wrong(lambda t: gc.clip(x, np.ones(2), 1.0, name="cl"), gc.ShapeError, "clip", "cl"),
    Wrong(lambda t: gc.add(x, "abc", name="a2"), gc.DTypeError, "add", "a2"),
    Wrong(lambda t: gc.mul(x, alien, name="a3"), gc.GraphcError, "mul", "a3"),
    Wrong(lambda t: gc.sub(x, None, name="a4"), gc.GraphcError, "sub", "a4"),
    Wrong(lambda t: gc.add(x, 1.0, name="x"), gc.GraphcError, "add", "x"),  # name taken
    Wrong(lambda t: gc.add(x, 1.0, name=""), gc.GraphcError, "add", "''"),
    Wrong(lambda t: gc.add(1.0, 2.0), gc.GraphcError),  # no node at all
    Wrong(lambda t: gc.where(x == 0, 1.0, x), gc.GraphcError),  # a Python bool
    Wrong(lambda t: gc.logical_and(gt, x != 1), gc.GraphcError),
    Wrong(lambda t: gc.logical_not(x == x), gc.GraphcError),
    Wrong(lambda t: gc.conv2d(im, kw, stride=0, name="cv"), gc.ShapeError, "conv2d", "cv"),
    Wrong(lambda t: gc.conv2d(im, kw, groups=0, name="cv2"), gc.ShapeError, "conv2d", "cv2"),
    Wrong(lambda t: gc.max_pool2d(im, 0, name="mp"), gc.ShapeError, "max_pool2d", "mp"),
    Wrong(lambda t: gc.avg_pool2d(im, 2, stride=0, name="ap"), gc.ShapeError, "avg_pool2d", "ap"),
    Wrong(lambda t: gc.quantile(x, s), gc.DTypeError, "placeholder", "s"),
    Wrong(lambda t: gc.dynamic_slice(x, i[:1], 2), gc.ShapeError, "dynamic_slice"),
    # -- sources and values ----------------------------------------------------------------------
    Wrong(lambda t: g.placeholder("p1", dtype="floatx"), gc.DTypeError, "placeholder", "p1"),
    Wrong(lambda t: g.placeholder("p2", shape=(-1,)), gc.ShapeError, "placeholder", "p2"),
    Wrong(lambda t: g.placeholder("p3", shape=(2.5,)), gc.ShapeError, "placeholder", "p3"),
    Wrong(lambda t: g.placeholder("x"), gc.GraphcError, "placeholder", "x"),
    Wrong(lambda t: g.placeholder(3), gc.GraphcError, "placeholder", "3"),
    Wrong(lambda t: g.variable("v1", "abc"), gc.DTypeError, "variable", "v1"),
    Wrong(lambda t: g.variable("v2", [[1], [1, 2]]), gc.DTypeError, "variable", "v2"),
    Wrong(lambda t: g.variable("v3", 1.0, dtype="floatx"), gc.DTypeError, "variable", "v3"),
    Wrong(lambda t: g.constant(object(), name="k1"), gc.DTypeError, "constant", "k1"),
    Wrong(lambda t: g.constant(None, name="k2"), gc.DTypeError, "constant", "k2"),
    Wrong(lambda t: x.value, gc.GraphcError, "placeholder", "x"),
    Wrong(lambda t: setattr(x, "value", 1.0), gc.GraphcError, "placeholder", "x"),
    Wrong(lambda t: setattr(w, "value", np.ones(4)), gc.ShapeError, "variable", "w"),
    Wrong(lambda t: setattr(w, "value", ["a", "b", "c"]), gc.DTypeError, "variable", "w"),
    Wrong(lambda t: bool(gt), gc.SymbolicValueError, "greater", "gt"),
    Wrong(lambda t: list(x), gc.SymbolicValueError, "placeholder", "x"),
    Wrong(lambda t: [a for a in y], gc.SymbolicValueError, "sum", "y"),
    # -- running ---------------------------------------------------------------------------------
    Wrong(lambda t: g.run(y), gc.MissingFeedError, "placeholder", "x"),
    Wrong(lambda t: y.eval(), gc.MissingFeedError, "placeholder", "x"),
    Wrong(lambda t: g.run(y, {x: np.ones(4)}), gc.FeedError, "placeholder", "x"),
    Wrong(lambda t: g.run(y, {x: "abc"}), gc.FeedError, "placeholder", "x"),
    Wrong(lambda t: g.run(y, {x: np.ones((3, 1))}), gc.FeedError, "placeholder", "x"),
    Wrong(lambda t: g.run(i, {i: np.ones(3) / 2}), gc.FeedError, "placeholder", "i"),
    Wrong(lambda t: g.run(y, {x: np.ones(3), alien: np.ones(3)}), gc.FeedError,
          "placeholder", "alien"),
    Wrong(lambda t: g.run(y, {"nope": 1.0}), gc.FeedError),
    Wrong(lambda t: g.run(y, {3: 1.0}), gc.FeedError),
    Wrong(lambda t: g.run("y"), gc.GraphcError),
    Wrong(lambda t: g.run(alien), gc.GraphcError, "placeholder", "alien"),
    Wrong(lambda t: g.run(gc.reshape(v, (4,), name="rr"), {v: np.ones((2, 3))}),
          gc.ShapeError, "reshape", "rr"),
    Wrong(lambda t: g.run(gc.add(v, gc.expand_dims(u, 1), name="vu"),
                          {v: np.ones((2, 3)), u: np.ones(4)}), gc.ShapeError, "add", "vu"),
    Wrong(lambda t: g.run(gc.matmul(v, gc.transpose(v), name="vv") @ m,
                          {v: np.ones((4, 3)), m: np.ones((2, 3))}),
          gc.ShapeError, "matmul", None),
    # -- compiling -------------------------------------------------------------------------------
    Wrong(lambda t: gc.function([x], y)(np.ones(4)), gc.FeedError, "placeholder", "x"),
    Wrong(lambda t: gc.function([], y), gc.MissingFeedError, "placeholder", "x"),
    Wrong(lambda t: gc.function([x], y)(), gc.GraphcError),
    Wrong(lambda t: gc.function([x], y)(1.0, 2.0, 3.0), gc.GraphcError),
    Wrong(lambda t: gc.function([x], "y"), gc.GraphcError),
    Wrong(lambda t: gc.function(["x"], y), gc.GraphcError),
    Wrong(lambda t: gc.function([x], y, updates={x: y}), gc.GraphcError, "placeholder", "x"),
    Wrong(lambda t: gc.function([x], y, updates={w: y}), gc.ShapeError, "variable", "w"),
    Wrong(lambda t: gc.function([x], y, updates={w: alien}), gc.GraphcError),
    Wrong(lambda t: gc.function([x], alien), gc.GraphcError),
    # -- differentiating -------------------------------------------------------------------------
    Wrong(lambda t: gc.gradients(y, [i]), gc.DTypeError, "placeholder", "i"),
    Wrong(lambda t: gc.gradients(x, [x]), gc.ShapeError, "placeholder", "x"),
    Wrong(lambda t: gc.gradients(gc.sum(i), [x]), gc.DTypeError, "sum", None),
    Wrong(lambda t: gc.gradients(y, [x], unconnected="bogus"), gc.GraphcError),
    Wrong(lambda t: gc.gradients(y, [loose], unconnected="raise"),
          gc.DisconnectedGradientError, "placeholder", "loose"),
    Wrong(lambda t: gc.gradients(y, [alien]), gc.GraphcError, "placeholder", "alien"),
    Wrong(lambda t: gc.gradients(y, ["x"]), gc.GraphcError),
    Wrong(lambda t: gc.gradients("y", [x]), gc.GraphcError),
    Wrong(lambda t: gc.gradients(y, [x], grad_y=np.ones(3)), gc.ShapeError, "sum", "y"),
    Wrong(lambda t: gc.hessian(x, x), gc.ShapeError, "placeholder", "x"),
    Wrong(lambda t: gc.hvp(y, x, np.ones(4)), gc.ShapeError, "placeholder", "x"),
    Wrong(lambda t: gc.hvp(x, x, np.ones(3)), gc.ShapeError, "placeholder", "x"),
    Wrong(lambda t: gc.jacobian(i, x), gc.DTypeError, "placeholder", "i"),
    Wrong(lambda t: gc.jacobian(x, i), gc.DTypeError, "placeholder", "i"),
    Wrong(lambda t: gc.jacobian(x, "x"), gc.GraphcError),
    # -- checking gradients ----------------------------------------------------------------------
    Wrong(lambda t: gc.check_gradients(y, [x]), gc.MissingFeedError, "placeholder", "x"),
    Wrong(lambda t: gc.check_gradients(y, [x], {x: np.ones(4)}), gc.FeedError,
          "placeholder", "x"),
    Wrong(lambda t: gc.check_gradients(y, [x], {x: np.ones(3)}, rtol=-1.0, atol=-1.0),
          gc.GradientCheckError, "sum", "y"),
    Wrong(lambda t: gc.check_gradients("y", [x]), gc.GraphcError),
    Wrong(lambda t: gc.check_gradients(y, ["x"], {x: np.ones(3)}), gc.GraphcError),
    # -- files -----------------------------------------------------------------------------------
    Wrong(lambda t: gc.save(g, os.path.join(t, "nowhere", "m.json")), gc.FileError),
    Wrong(lambda t: gc.save(g, os.path.join(_files(t), "a_folder")), gc.FileError),
    Wrong(lambda t: gc.save("not a graph", os.path.join(t, "m.json")), gc.GraphcError),
    Wrong(lambda t: gc.load(os.path.join(t, "missing.json")), gc.GraphFormatError),
    Wrong(lambda t: gc.from_json("{"), gc.GraphFormatError),
    Wrong(lambda t: gc.from_json('{"format": "graphc", "version": 99, "nodes": []}'),
          gc.GraphFormatError),
    Wrong(lambda t: gc.from_json(3), gc.GraphFormatError),
    Wrong(lambda t: gc.to_json("not a graph"), gc.GraphcError),
    Wrong(lambda t: gc.to_dot("not a graph"), gc.GraphcError),
    Wrong(lambda t: gc.render(g, os.path.join(t, "g.bogus")), gc.GraphcError),
    # -- SymPy -----------------------------------------------------------------------------------
    Wrong(lambda t: gc.to_sympy(y), gc.GraphcError, "placeholder", "x"),
    Wrong(lambda t: gc.to_sympy("s"), gc.GraphcError),
    Wrong(lambda t: gc.to_sympy(s, assumptions={"real": "yes"}), gc.GraphcError),
    Wrong(lambda t: gc.to_sympy(gc.argmax(q, name="aq")), gc.GraphcError, "argmax", "aq"),
    Wrong(lambda t: gc.from_sympy(sp.gamma(X), {X: s}), gc.GraphcError),
    Wrong(lambda t: gc.from_sympy(X + Y, {X: s}), gc.GraphcError),
    Wrong(lambda t: gc.from_sympy("s + 1", {X: s}), gc.GraphcError),
    Wrong(lambda t: gc.from_sympy(X, {X: "s"}), gc.GraphcError),
]


def _raise(entry: Wrong, tmp) -> BaseException:
    with pytest.raises(BaseException) as info:
        entry.call(str(tmp))
    return info.value


@pytest.mark.parametrize("k", range(len(TABLE)), ids=lambda k: f"line{TABLE[k].line}")
def test_a_wrong_call_gets_a_graphc_error_that_points_at_the_user(k, tmp_path):
    entry = TABLE[k]
    exc = _raise(entry, tmp_path)
    message = str(exc)
    assert isinstance(exc, gc.GraphcError), f"{type(exc).__name__}: {message}"
    assert isinstance(exc, entry.error), f"{type(exc).__name__}: {message}"
    if entry.op is not None:
        assert re.search(rf"\b{entry.op}\b", message), message
        if entry.name is not None:
            assert f"'{entry.name.strip(chr(39))}'" in message or entry.name in message, message
        assert SITE.search(message), message


def _points_at_the_user(entry: Wrong, exc: BaseException) -> bool:
    message = str(exc)
    return (isinstance(exc, gc.GraphcError) and entry.op is not None
            and re.search(rf"\b{entry.op}\b", message) is not None
            and (entry.name is None or entry.name.strip("'") in message)
            and SITE.search(message) is not None)


def test_the_figure(tmp_path, capsys):
    """How many wrong calls raise a graphc error, and how many of those that concern a node
    name its op, its name and a line of this file."""
    errors = [_raise(entry, tmp_path) for entry in TABLE]
    graphc = sum(isinstance(e, gc.GraphcError) for e in errors)
    about_nodes = [(entry, e) for entry, e in zip(TABLE, errors) if entry.op is not None]
    pointing = sum(_points_at_the_user(entry, e) for entry, e in about_nodes)
    with capsys.disabled():
        print(f"\nerror quality: {len(TABLE)} wrong calls, {graphc} raise a GraphcError; "
              f"{pointing} of the {len(about_nodes)} that concern a node name op, node and "
              "site")
    assert len(TABLE) >= 70
    assert graphc == len(TABLE)
    assert pointing == len(about_nodes)


# -- run time: the same error on every path --------------------------------------------------------
@dataclass
class BadValue:
    """A graph fed a bad value at run time. ``build(g)`` returns the placeholders, the output
    and the values to feed; the error must name the op and node ``name``, built in this file
    (the name and error class are the same on ``g.run``, source and VM, word for word)."""
    build: Callable
    error: type
    op: str
    name: str = "n"

    @property
    def line(self) -> int:
        return self.build.__code__.co_firstlineno


def _p(g, name, shape, dtype="float64"):
    return g.placeholder(name, shape, dtype=dtype)


def _int(*values):
    return np.array(values, dtype=np.int64)


def _gradient_of_mismatched_product(g):
    a, w = _p(g, "a", (None,)), g.variable("w", np.ones(3))
    return [a], gc.grad(gc.sum(a * w, name="n"), w), [np.ones(2)]  # fails in a derivative


RUN_TABLE = [
    # -- indices out of range --------------------------------------------------------------------
    BadValue(lambda g: ([a := _p(g, "a", (5,)), k := _p(g, "k", (None,), "int64")],
                        gc.take(a, k, name="n"), [np.arange(5.0), _int(1, 7)]),
             gc.IndexOutOfRangeError, "take"),
    BadValue(lambda g: ([a := _p(g, "a", (3, 5)), k := _p(g, "k", (2,), "int64")],
                        gc.take(a, k, axis=1, name="n") * 2, [np.ones((3, 5)), _int(1, -6)]),
             gc.IndexOutOfRangeError, "take"),
    BadValue(lambda g: ([a := _p(g, "a", (5,)), k := _p(g, "k", (), "int64")],
                        gc.getitem(a, k, name="n"), [np.arange(5.0), _int(5)[0]]),
             gc.IndexOutOfRangeError, "take"),
    BadValue(lambda g: ([a := _p(g, "a", (5, 2)), k := _p(g, "k", (3,), "int64")],
                        a[k] + 1, [np.ones((5, 2)), _int(0, 1, 5)]),
             gc.IndexOutOfRangeError, "take", None),
    BadValue(lambda g: ([a := _p(g, "a", (3, 4)), k := _p(g, "k", (3, 1), "int64")],
                        gc.take_along_axis(a, k, axis=1, name="n"),
                        [np.ones((3, 4)), _int(0, 4, 1)[:, None]]),
             gc.IndexOutOfRangeError, "take_along_axis"),
    BadValue(lambda g: ([a := _p(g, "a", (4,)), k := _p(g, "k", (2,), "int64"),
                         b := _p(g, "b", (2,))],
                        gc.index_add(a, k, b, name="n"), [np.zeros(4), _int(1, 4), np.ones(2)]),
             gc.IndexOutOfRangeError, "index_add"),
    BadValue(lambda g: ([a := _p(g, "a", (4,)), k := _p(g, "k", (2,), "int64"),
                         b := _p(g, "b", (2,))],
                        gc.index_update(a, k, b, name="n"), [np.zeros(4), _int(1, -5), np.ones(2)]),
             gc.IndexOutOfRangeError, "index_update"),
    BadValue(lambda g: ([a := _p(g, "a", (None,)), k := _p(g, "k", (None,), "bool")],
                        gc.boolean_mask(a, k, name="n"), [np.ones(3), np.ones(2, bool)]),
             gc.IndexOutOfRangeError, "boolean_mask"),
    # -- labels: out of range, negative, NaN cast to an integer ----------------------------------
    BadValue(lambda g: ([a := _p(g, "a", (3, 4)), k := _p(g, "k", (3,), "int64")],
                        gc.softmax_cross_entropy(a, k, name="n"), [np.ones((3, 4)), _int(0, 4, 1)]),
             gc.IndexOutOfRangeError, "softmax_cross_entropy"),
    BadValue(lambda g: ([a := _p(g, "a", (3, 4)), k := _p(g, "k", (3,), "int64")],
                        gc.softmax_cross_entropy(a, k, name="n"),
                        [np.ones((3, 4)), _int(0, -1, 1)]),
             gc.IndexOutOfRangeError, "softmax_cross_entropy"),
    BadValue(lambda g: ([a := _p(g, "a", (3, 4)), k := _p(g, "k", (3,))],
                        gc.softmax_cross_entropy(a, gc.cast(k, "int64"), name="n"),
                        [np.ones((3, 4)), np.array([0.0, np.nan, 1.0])]),
             gc.IndexOutOfRangeError, "softmax_cross_entropy"),
    BadValue(lambda g: ([a := _p(g, "a", (None, 4)), k := _p(g, "k", (None,), "int64")],
                        gc.softmax_cross_entropy(a, k, name="n"), [np.ones((3, 4)), _int(0, 1)]),
             gc.ShapeError, "softmax_cross_entropy"),
    # (targets of batch 1 against a run-time batch: g.run refused them, compiled code broadcast)
    BadValue(lambda g: ([a := _p(g, "a", (None, 4)), k := _p(g, "k", (1, 4))],
                        gc.sum(gc.softmax_cross_entropy(a, k, name="n")),
                        [np.ones((3, 4)), np.full((1, 4), 0.25)]),
             gc.ShapeError, "softmax_cross_entropy"),
    # -- run-time sizes (None) that do not fit --------------------------------------------------
    BadValue(lambda g: ([a := _p(g, "a", (None,)), b := _p(g, "b", (None,))],
                        gc.add(a, b, name="n"), [np.ones(3), np.ones(4)]),
             gc.ShapeError, "add"),
    BadValue(lambda g: ([a := _p(g, "a", (None, 3)), b := _p(g, "b", (None, 3))],
                        gc.exp(gc.mul(a, b, name="n")), [np.ones((2, 3)), np.ones((4, 3))]),
             gc.ShapeError, "mul"),
    BadValue(lambda g: ([a := _p(g, "a", (2, None)), b := _p(g, "b", (None, 3))],
                        gc.matmul(a, b, name="n"), [np.ones((2, 4)), np.ones((5, 3))]),
             gc.ShapeError, "matmul"),
    BadValue(lambda g: ([a := _p(g, "a", (None, 2)), b := _p(g, "b", (2, None))],
                        gc.concatenate([a, b], name="n"), [np.ones((1, 2)), np.ones((2, 3))]),
             gc.ShapeError, "concatenate"),
    BadValue(lambda g: ([a := _p(g, "a", (None,)), b := _p(g, "b", (None,))],
                        gc.stack([a, b], name="n"), [np.ones(2), np.ones(3)]),
             gc.ShapeError, "stack"),
    BadValue(lambda g: ([a := _p(g, "a", (None,))], gc.reshape(a, (-1, 3), name="n"),
                        [np.ones(5)]),
             gc.ShapeError, "reshape"),
    BadValue(lambda g: ([a := _p(g, "a", (None,))], gc.broadcast_to(a, (2, 3), name="n"),
                        [np.ones(2)]),
             gc.ShapeError, "broadcast_to"),
    BadValue(lambda g: ([c := _p(g, "c", (None,), "bool"), a := _p(g, "a", (None,))],
                        gc.where(c, a, 0.0, name="n"), [np.ones(2, bool), np.ones(3)]),
             gc.ShapeError, "where"),
    BadValue(lambda g: ([a := _p(g, "a", (None, 3))], gc.squeeze(a, 0, name="n"),
                        [np.ones((2, 3))]),
             gc.ShapeError, "squeeze"),
    BadValue(lambda g: ([a := _p(g, "a", (None,))], gc.max(a, name="n"), [np.ones(0)]),
             gc.ShapeError, "max"),
    BadValue(lambda g: ([a := _p(g, "a", (None,))], gc.argmax(a, name="n"), [np.ones(0)]),
             gc.ShapeError, "argmax"),
    BadValue(lambda g: ([a := _p(g, "a", (None,))], gc.quantile(a, 0.5, name="n"), [np.ones(0)]),
             gc.ShapeError, "quantile"),
    BadValue(lambda g: ([a := _p(g, "a", (None,)), b := _p(g, "b", (None,))],
                        gc.einsum("i,i->", a, b, name="n"), [np.ones(2), np.ones(3)]),
             gc.ShapeError, "einsum"),
    BadValue(lambda g: ([a := _p(g, "a", (None, 3, 5, 5)), b := _p(g, "b", (2, None, 3, 3))],
                        gc.conv2d(a, b, name="n"), [np.ones((1, 3, 5, 5)), np.ones((2, 2, 3, 3))]),
             gc.ShapeError, "conv2d"),
    BadValue(lambda g: ([a := _p(g, "a", (1, 1, None, None))], gc.max_pool2d(a, 3, name="n"),
                        [np.ones((1, 1, 2, 2))]),
             gc.ShapeError, "max_pool2d"),
    BadValue(lambda g: ([a := _p(g, "a", (None,))], gc.top_k(a, 3, name="n")[0],
                        [np.ones(2)]),
             gc.ShapeError, "top_k_indices", "n_indices"),
    BadValue(lambda g: _gradient_of_mismatched_product(g), gc.ShapeError, "mul", "d(n)/d(w)"),
    # -- linear algebra ---------------------------------------------------------------------------
    BadValue(lambda g: ([a := _p(g, "a", (2, 2)), b := _p(g, "b", (2,))],
                        gc.linalg.solve(a, b, name="n"), [np.zeros((2, 2)), np.ones(2)]),
             gc.GraphcError, "solve"),
    BadValue(lambda g: ([a := _p(g, "a", (None, None)), b := _p(g, "b", (None,))],
                        gc.linalg.solve(a, b, name="n"), [np.ones((2, 3)), np.ones(2)]),
             gc.ShapeError, "solve"),
    BadValue(lambda g: ([a := _p(g, "a", (2, 2))], gc.linalg.cholesky(a, name="n"), [-np.eye(2)]),
             gc.GraphcError, "cholesky"),
    BadValue(lambda g: ([a := _p(g, "a", (2, 2)), b := _p(g, "b", (2,))],
                        gc.linalg.solve_triangular(a, b, name="n"), [np.zeros((2, 2)), np.ones(2)]),
             gc.GraphcError, "solve_triangular"),
    BadValue(lambda g: ([a := _p(g, "a", (None, None)), b := _p(g, "b", (None,))],  # LAPACK
                        gc.linalg.solve_triangular(a, b, name="n"),  # solved 3 of the 4 rows
                        [np.eye(3), np.ones(4)]),
             gc.ShapeError, "solve_triangular"),
    BadValue(lambda g: ([a := _p(g, "a", (2,), "int64"), b := _p(g, "b", (2,), "int64")],
                        gc.pow(a, b, name="n"), [_int(1, 2), _int(-1, 1)]),
             gc.GraphcError, "pow"),
    # -- the values fed ---------------------------------------------------------------------------
    BadValue(lambda g: ([a := _p(g, "n", (None, 3))], a * 2, [np.ones((2, 4))]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (None, 3))], a * 2, [np.ones(3)]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (None,), "int64")], a * 2, [np.ones(3)]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (), "int8")], a * 2, [300]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (2,), "float32")], a * 2, [[1.0, 1e39]]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (None, 2), "float16")], gc.sum(a), [np.full((3, 2), 7e4)]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (None,), "int32")], gc.sum(a), [np.array([2**40, 1])]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", ())], a * 2, ["abc"]),
             gc.FeedError, "placeholder"),
    BadValue(lambda g: ([a := _p(g, "n", (2,))], a * 2, [[[1.0], [1.0, 2.0]]]),
             gc.FeedError, "placeholder"),
]


@contextlib.contextmanager
def _caller_state(mode: str):
    """The caller's floating-point error state and warnings filter around a call."""
    with warnings.catch_warnings():
        if mode == "warnings-as-errors":
            warnings.simplefilter("error")
        with np.errstate(all="raise" if mode == "raise" else "warn"):
            yield


def _on_every_path(entry: BadValue, mode: str) -> dict:
    """The error each path raises: g.run, the generated source, the VM."""
    raised = {}
    for path in ("run", "source", "vm"):
        g = gc.Graph()
        inputs, output, values = entry.build(g)
        f = None if path == "run" else gc.function(inputs, output, backend=path)
        with _caller_state(mode), pytest.raises(BaseException) as info:  # (one line below:
            g.run(output, dict(zip(inputs, values))) if f is None else f(*values)  # one site)
        raised[path] = info.value
    return raised


@pytest.mark.parametrize("mode", ["default", "raise", "warnings-as-errors"])
@pytest.mark.parametrize("k", range(len(RUN_TABLE)), ids=lambda k: f"line{RUN_TABLE[k].line}")
def test_a_bad_value_at_run_time_gets_the_same_graphc_error_on_every_path(k, mode):
    entry = RUN_TABLE[k]
    raised = _on_every_path(entry, mode)
    texts = {path: f"{type(exc).__name__}: {exc}" for path, exc in raised.items()}
    assert len(set(texts.values())) == 1, texts
    exc = raised["run"]
    message = str(exc)
    assert isinstance(exc, entry.error), texts["run"]
    assert re.search(rf"\b{entry.op}\b", message), message
    if entry.name is not None:
        assert f"'{entry.name}'" in message, message
    assert SITE.search(message), message


@pytest.mark.parametrize("call", [
    lambda: gc.random.dropout(x, 1.5),
    lambda: gc.random.key(3),
    lambda: gc.random.uniform(shape=(2,)),
    lambda: gc.random.permutation(x=None, seed=1, graph=g),
    lambda: gc.random.normal(gc.random.key(gc.Graph()), (2,), size=(2,)),
])
def test_a_wrong_call_of_a_random_builder_names_the_callers_line(call):
    with pytest.raises(gc.GraphcError) as info:
        call()
    assert f"(called at {__file__}:{call.__code__.co_firstlineno})" in str(info.value)
