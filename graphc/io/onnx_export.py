"""ONNX export: ``to_onnx(inputs, outputs)`` writes the part of a graph that computes ``outputs``
from ``inputs`` as an ONNX model (opset 18), forward graphs and gradient graphs alike.

Placeholders (and any other node given as an input) become the model's inputs, with symbolic
dimensions where a size is ``None``; variables and constants become initializers holding their
current values. Each graphc op is translated by one rule in :data:`RULES` into standard ONNX
operators; an op without a rule raises :class:`~graphc.GraphcError` naming the op and the node.

The rules follow graphc's kernels, not just the ops' names: NumPy's type promotion (inputs are
cast to the result's dtype, weak Python scalars take their partner's), the stable forms of the
softmax family (shift by the maximum, non-finite maxima replaced by 0), ``log1p`` accurate near
0, ``one_hot`` giving zero rows out of range, and the gradient's own ops (``sum_to``,
``broadcast_like``, ``getitem_grad`` as a scatter-add, ...) reading run-time shapes as graphc
does, so a model with ``None`` sizes works for every size.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import GraphcError, describe
from ..graph import Node
from ..runtime import needed_nodes, require_fed
from ..shapes import float_dtype, size

OPSET = 18  # every Reduce* takes its axes as an input; Pad takes axes; ScatterElements adds
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min

Outputs = Union[Node, Sequence[Node], Mapping[str, Node]]


def to_onnx(inputs: Union[Node, Sequence[Node]], outputs: Outputs,
            path: Optional[Union[str, "os.PathLike[str]"]] = None, *,
            name: str = "graphc") -> Any:
    """The ONNX model (an ``onnx.ModelProto``) computing ``outputs`` from ``inputs``.

    ``inputs`` are nodes fed at run time (placeholders, or any node, whose ancestors are then
    left out), named after the nodes; ``outputs`` is a node, a list of nodes (outputs named
    after them) or a dict ``{output name: node}``. Variables are stored with their current
    values. When ``path`` is given the model is also written there. Needs the ``onnx`` package
    (``pip install graphc[onnx]``); run the model with ``onnxruntime``.
    """
    try:
        import onnx
    except ImportError:
        raise GraphcError("to_onnx needs the onnx package: pip install 'graphc[onnx]'") from None
    inputs = [inputs] if isinstance(inputs, Node) else list(inputs)
    named: list[tuple[Optional[str], Node]]
    if isinstance(outputs, Mapping):
        named = [(str(k), v) for k, v in outputs.items()]
    else:
        named = [(None, v) for v in ([outputs] if isinstance(outputs, Node) else outputs)]
    nodes = inputs + [v for _, v in named]
    for n in nodes:
        if not isinstance(n, Node):
            raise GraphcError(f"to_onnx: expected graphc nodes, got {type(n).__name__}")
        if n.graph is not nodes[0].graph:
            raise GraphcError(f"to_onnx: {describe(n)} belongs to another graph")
    if not named:
        raise GraphcError("to_onnx needs at least one output")
    if len({n.id for n in inputs}) != len(inputs):
        raise GraphcError("to_onnx: the same node is given twice among the inputs")

    graph = nodes[0].graph
    fed = {n.id: n for n in inputs}
    order = needed_nodes(graph, [v for _, v in named], fed)
    require_fed(order, fed, "(as inputs of the ONNX model) to compute its outputs")
    builder = _Builder(onnx)
    graph_inputs = [builder.graph_input(n) for n in inputs]
    for node in order:
        if node.id in fed or node.op == "constant":
            continue  # constants become initializers where used, in the dtype they are used in
        if node.op == "variable":
            builder.bind(node, builder.initializer(graph._values[node.id], node.name))
            continue
        rule = RULES.get(node.op)
        if rule is None:
            raise GraphcError(f"to_onnx: ONNX has no translation for the op {node.op!r} of "
                              f"{describe(node)}")
        builder.current = node
        builder.bind(node, rule(builder, node))
    graph_outputs = [builder.graph_output(v, key) for key, v in named]

    helper = onnx.helper
    model = helper.make_model(
        helper.make_graph(builder.nodes, name, graph_inputs, graph_outputs,
                          initializer=builder.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="graphc",
        producer_version=_version(),
        ir_version=8)  # the IR version of opset 18: runtimes back to onnxruntime 1.14 load it
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


def _version() -> str:
    from .. import __version__
    return __version__


class _Builder:
    """The ONNX nodes, initializers and value names built so far, and the dtype of each value."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self.dtypes: dict[str, np.dtype] = {}
        self.values: dict[int, str] = {}  # graphc node id -> ONNX value name
        self.casts: dict[tuple, str] = {}
        self.consts: dict[tuple, str] = {}
        self.taken: set[str] = set()
        self.current: Optional[Node] = None

    # -- names and values -------------------------------------------------------------------
    def fresh(self, stem: str) -> str:
        name, k = stem, 0
        while name in self.taken:
            k += 1
            name = f"{stem}_{k}"
        self.taken.add(name)
        return name

    def bind(self, node: Node, value: str) -> None:
        if self.dtypes[value] != node.dtype:  # a rule's last step in another dtype
            value = self.cast(value, node.dtype)
        self.values[node.id] = value

    def tensor_type(self, dtype: np.dtype) -> int:
        try:
            return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        except (KeyError, ValueError, TypeError):
            what = f" of {describe(self.current)}" if self.current is not None else ""
            raise GraphcError(f"to_onnx: ONNX has no tensor type for dtype {dtype}{what}") \
                from None

    def graph_input(self, node: Node) -> Any:
        name = self.fresh(node.name)
        self.dtypes[name] = node.dtype
        self.values[node.id] = name
        dims = [f"{node.name}_{k}" if d is None else d for k, d in enumerate(node.shape)]
        return self.onnx.helper.make_tensor_value_info(name, self.tensor_type(node.dtype), dims)

    def graph_output(self, node: Node, key: Optional[str]) -> Any:
        name = self.fresh(key or node.name)
        self.nodes.append(self.onnx.helper.make_node("Identity", [self.value(node)], [name]))
        return self.onnx.helper.make_tensor_value_info(name, self.tensor_type(node.dtype),
                                                       list(node.shape))

    def initializer(self, array: Any, stem: str) -> str:
        array = np.asarray(array)
        self.tensor_type(array.dtype)
        name = self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        self.dtypes[name] = array.dtype
        return name

    def const(self, value: Any, dtype: Any = None) -> str:
        """An initializer for a small array, shared by every use of the same bytes."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.consts:
            self.consts[key] = self.initializer(array, "const")
        return self.consts[key]

    def ints(self, values: Iterable[Any]) -> str:
        return self.const(np.array(list(values), dtype=np.int64).reshape(-1))

    def value(self, node: Node, dtype: Any = None) -> str:
        """The ONNX value of ``node``, in ``dtype`` (default: its own)."""
        dtype = node.dtype if dtype is None else np.dtype(dtype)
        if node.op == "constant" and node.id not in self.values:
            return self.const(node.attrs["value"], dtype)  # cast in Python, not in the model
        return self.cast(self.values[node.id], dtype)

    def arg(self, node: Node, i: int, dtype: Any = None) -> str:
        return self.value(node.inputs[i], dtype)

    def cast(self, value: str, dtype: Any) -> str:
        dtype = np.dtype(dtype)
        if self.dtypes[value] == dtype:
            return value
        key = (value, dtype.str)
        if key not in self.casts:
            self.casts[key] = self.op("Cast", value, to=self.tensor_type(dtype), dtype=dtype)
        return self.casts[key]

    def op(self, op_type: str, *inputs: str, dtype: Any = None, **attrs: Any) -> str:
        """Append one ONNX node; its output's dtype is ``dtype`` (default: the first input's)."""
        stem = self.current.name if self.current is not None else "value"
        out = self.fresh(f"{stem}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=out,
                                                     **attrs))
        self.dtypes[out] = np.dtype(dtype) if dtype is not None else self.dtypes[inputs[0]]
        return out

    def reduce_sum(self, x: str, axes: str, **attrs: Any) -> str:
        """ReduceSum, in int64 for the small integer types ONNX does not sum (the result
        wraps around the same way when cast back)."""
        dtype = self.dtypes[x]
        if dtype.kind in "biu" and dtype.itemsize < 4:
            return self.cast(self.op("ReduceSum", self.cast(x, np.int64), axes, **attrs), dtype)
        return self.op("ReduceSum", x, axes, **attrs)

    # -- shapes read at run time --------------------------------------------------------------
    def shape(self, value: str, start: int = 0, end: Optional[int] = None) -> str:
        attrs = {"start": start} if start else {}
        if end is not None:
            attrs["end"] = end
        return self.op("Shape", value, dtype=np.int64, **attrs)

    def size_along(self, node: Node, axis: int) -> str:
        """The size of ``node`` along (negative) ``axis`` as a 1-D int64 of one entry."""
        n = node.shape[axis]
        if n is not None:
            return self.ints([n])
        k = node.ndim + axis
        return self.shape(self.value(node), k, k + 1)

    def shape_of(self, node: Node) -> str:
        if None not in node.shape:
            return self.ints(node.shape)
        return self.shape(self.value(node))

    def scalar(self, value: Any, dtype: Any) -> str:
        return self.const(np.array(value, dtype=dtype))


Rule = Callable[[_Builder, Node], str]
#: op name -> its translation: ``rule(builder, node) -> ONNX value name`` (in node's dtype).
RULES: dict[str, Rule] = {}


def _rule(*names: str) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        for n in names:
            RULES[n] = rule
        return rule
    return register


def _same(onnx_op: str) -> Rule:
    """An elementwise op computed in the result's dtype: every input cast to it."""
    def rule(b: _Builder, node: Node) -> str:
        return b.op(onnx_op, *(b.arg(node, i, node.dtype) for i in range(len(node.inputs))))
    return rule


for _name, _onnx in [("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"),
                     ("pow", "Pow"), ("neg", "Neg"), ("exp", "Exp"), ("log", "Log"),
                     ("sqrt", "Sqrt"), ("sin", "Sin"), ("cos", "Cos"), ("tanh", "Tanh"),
                     ("abs", "Abs"), ("sign", "Sign"), ("maximum", "Max"), ("minimum", "Min"),
                     ("matmul", "MatMul"), ("stop_gradient", "Identity")]:
    RULES[_name] = _same(_onnx)


@_rule("square")
def _square(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0, node.dtype)
    return b.op("Mul", x, x)


def _log1p(b: _Builder, x: str) -> str:
    """log(1 + x) accurate near 0: x log(u) / (u - 1) with u = 1 + x (Goldberg's trick)."""
    one = b.scalar(1, b.dtypes[x])
    u = b.op("Add", x, one)
    exact = b.op("Mul", x, b.op("Div", b.op("Log", u), b.op("Sub", u, one)))
    return b.op("Where", b.op("Equal", u, one, dtype=bool), x, exact)


@_rule("log1p")
def _log1p_rule(b: _Builder, node: Node) -> str:
    return _log1p(b, b.arg(node, 0, node.dtype))


def _softplus(b: _Builder, x: str) -> str:
    """max(x, 0) + log1p(exp(-|x|)): finite for any x, like graphc's kernel."""
    return b.op("Add", b.op("Relu", x), _log1p(b, b.op("Exp", b.op("Neg", b.op("Abs", x)))))


@_rule("softplus")
def _softplus_rule(b: _Builder, node: Node) -> str:
    return _softplus(b, b.arg(node, 0, node.dtype))


@_rule("sigmoid")
def _sigmoid(b: _Builder, node: Node) -> str:
    """graphc's kernel: with e = exp(-|x|) in (0, 1], 1/(1+e) for x >= 0, else e/(1+e). (The
    same steps as NumPy, so s(1-s) in a derivative does not amplify a last-bit difference.)"""
    x = b.arg(node, 0, node.dtype)
    e = b.op("Exp", b.op("Neg", b.op("Abs", x)))
    r = b.op("Div", b.scalar(1, node.dtype), b.op("Add", b.scalar(1, node.dtype), e))
    positive = b.op("GreaterOrEqual", x, b.scalar(0, node.dtype), dtype=bool)
    return b.op("Where", positive, r, b.op("Mul", e, r))


@_rule("relu")
def _relu(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0)
    if node.dtype.kind == "f":
        return b.op("Relu", x)
    return b.op("Max", x, b.scalar(0, node.dtype))


@_rule("clip")
def _clip(b: _Builder, node: Node) -> str:
    x, lo, hi = (b.arg(node, i, node.dtype) for i in range(3))
    return b.op("Min", b.op("Max", x, lo), hi)


@_rule("cast")
def _cast(b: _Builder, node: Node) -> str:
    return b.arg(node, 0, node.dtype)


# -- comparisons, logic, where --------------------------------------------------------------------
def _common_dtype(node: Node) -> np.dtype:
    """The dtype NumPy compares in: the inputs' promotion, weak Python scalars adopting."""
    strong = [x.dtype for x in node.inputs if not (x.op == "constant" and x.attrs["weak"])]
    if not strong:
        return np.result_type(*(x.dtype for x in node.inputs))
    dtype = np.result_type(*strong)
    weak = [x.dtype.kind for x in node.inputs if x.op == "constant" and x.attrs["weak"]]
    if dtype.kind in "biu" and "f" in weak:
        return np.dtype(np.float64)
    return dtype


def _compare(onnx_op: str, negate: bool = False) -> Rule:
    def rule(b: _Builder, node: Node) -> str:
        dtype = _common_dtype(node)
        out = b.op(onnx_op, b.arg(node, 0, dtype), b.arg(node, 1, dtype), dtype=bool)
        return b.op("Not", out) if negate else out
    return rule


for _name, _onnx in [("less", "Less"), ("less_equal", "LessOrEqual"), ("greater", "Greater"),
                     ("greater_equal", "GreaterOrEqual"), ("equal", "Equal")]:
    RULES[_name] = _compare(_onnx)
RULES["not_equal"] = _compare("Equal", negate=True)


def _logical(onnx_op: str) -> Rule:
    def rule(b: _Builder, node: Node) -> str:  # nonzero is true, as in NumPy
        return b.op(onnx_op, *(b.arg(node, i, bool) for i in range(len(node.inputs))))
    return rule


for _name, _onnx in [("logical_not", "Not"), ("logical_and", "And"), ("logical_or", "Or")]:
    RULES[_name] = _logical(_onnx)


@_rule("where")
def _where(b: _Builder, node: Node) -> str:
    return b.op("Where", b.arg(node, 0, bool), b.arg(node, 1, node.dtype),
                b.arg(node, 2, node.dtype))


# -- reductions -----------------------------------------------------------------------------------
def _reduce(onnx_op: str, in_result_dtype: bool) -> Rule:
    def rule(b: _Builder, node: Node) -> str:
        # sum and mean compute in the result's dtype (NumPy: int sums in int64, means in float)
        x = b.arg(node, 0, node.dtype if in_result_dtype else None)
        axes = node.attrs["axis"]
        if not axes:  # ONNX would reduce every axis
            return x
        return b.op(onnx_op, x, b.ints(axes), keepdims=int(node.attrs["keepdims"]))
    return rule


RULES["sum"] = _reduce("ReduceSum", True)
RULES["mean"] = _reduce("ReduceMean", True)
RULES["max"] = _reduce("ReduceMax", False)
RULES["min"] = _reduce("ReduceMin", False)


def _arg_extremum(onnx_op: str) -> Rule:
    def rule(b: _Builder, node: Node) -> str:
        x, axis, keepdims = b.arg(node, 0), node.attrs["axis"], node.attrs["keepdims"]
        if axis is not None:
            return b.op(onnx_op, x, axis=int(axis), keepdims=int(keepdims), dtype=np.int64)
        flat = b.op(onnx_op, b.op("Reshape", x, b.ints([-1])), axis=0, keepdims=0,
                    dtype=np.int64)
        return b.op("Reshape", flat, b.ints(node.shape)) if keepdims else flat
    return rule


RULES["argmax"] = _arg_extremum("ArgMax")
RULES["argmin"] = _arg_extremum("ArgMin")


@_rule("reduced_size")
def _reduced_size(b: _Builder, node: Node) -> str:
    axes = node.attrs["axis"]
    if not axes:
        return b.scalar(1, node.dtype)
    sizes = b.op("Gather", b.shape(b.arg(node, 0)), b.ints(axes), axis=0)
    return b.op("ReduceProd", sizes, keepdims=0)


# -- the softmax family and cross-entropies -------------------------------------------------------
def _safe_max(b: _Builder, x: str, axes: str) -> str:
    """The max along ``axes`` (kept), non-finite maxima replaced by 0 (graphc's shift)."""
    m = b.op("ReduceMax", x, axes, keepdims=1)
    zero = b.scalar(0, b.dtypes[x])
    finite = b.op("Equal", b.op("Sub", m, m), zero, dtype=bool)  # inf - inf and NaN are NaN
    return b.op("Where", finite, m, zero)


def _log_sum_exp_kept(b: _Builder, z: str, axes: str) -> str:
    return b.op("Log", b.op("ReduceSum", b.op("Exp", z), axes, keepdims=1))


@_rule("softmax")
def _softmax(b: _Builder, node: Node) -> str:
    x, axes = b.arg(node, 0, node.dtype), b.ints(node.attrs["axis"])
    e = b.op("Exp", b.op("Sub", x, _safe_max(b, x, axes)))
    return b.op("Div", e, b.op("ReduceSum", e, axes, keepdims=1))


@_rule("log_softmax")
def _log_softmax(b: _Builder, node: Node) -> str:
    x, axes = b.arg(node, 0, node.dtype), b.ints(node.attrs["axis"])
    z = b.op("Sub", x, _safe_max(b, x, axes))
    return b.op("Sub", z, _log_sum_exp_kept(b, z, axes))


@_rule("logsumexp")
def _logsumexp(b: _Builder, node: Node) -> str:
    x, axes = b.arg(node, 0, node.dtype), b.ints(node.attrs["axis"])
    m = _safe_max(b, x, axes)
    out = b.op("Add", _log_sum_exp_kept(b, b.op("Sub", x, m), axes), m)
    return out if node.attrs["keepdims"] else b.op("Squeeze", out, axes)


@_rule("softmax_cross_entropy")
def _softmax_cross_entropy(b: _Builder, node: Node) -> str:
    logits, labels = node.inputs
    last = b.ints([-1])
    x = b.arg(node, 0, float_dtype(logits.dtype))
    z = b.op("Sub", x, _safe_max(b, x, last))
    lse = _log_sum_exp_kept(b, z, last)
    if labels.dtype.kind in "iu":  # lse - z[label]
        picked = b.op("GatherElements", z, b.op("Unsqueeze", b.arg(node, 1, np.int64), last),
                      axis=-1)
        return b.op("Squeeze", b.op("Sub", lse, picked), last)
    t = b.arg(node, 1, node.dtype)
    return b.op("ReduceSum", b.op("Mul", t, b.cast(b.op("Sub", lse, z), node.dtype)), last,
                keepdims=0)


@_rule("sigmoid_cross_entropy")
def _sigmoid_cross_entropy(b: _Builder, node: Node) -> str:
    x, t = b.arg(node, 0, node.dtype), b.arg(node, 1, node.dtype)
    return b.op("Sub", _softplus(b, x), b.op("Mul", x, t))


def _one_hot(b: _Builder, indices: str, classes: str, dtype: np.dtype) -> str:
    """Rows with a 1 where the index equals the class: zero rows out of range, like graphc's
    one_hot (ONNX's OneHot would wrap negative indices around). graphc's one_hot_like raises
    there instead (the labels of a cross-entropy); ONNX has no such check (docs/interop.md)."""
    hit = b.op("Equal", b.op("Unsqueeze", indices, b.ints([-1])), classes, dtype=bool)
    return b.cast(hit, dtype)


@_rule("one_hot")
def _one_hot_rule(b: _Builder, node: Node) -> str:
    return _one_hot(b, b.arg(node, 0, np.int64), b.ints(range(node.attrs["depth"])), node.dtype)


@_rule("one_hot_like")
def _one_hot_like(b: _Builder, node: Node) -> str:
    like = node.inputs[1]
    if like.shape[-1] is not None:
        classes = b.ints(range(like.shape[-1]))
    else:
        depth = b.op("Squeeze", b.size_along(like, -1), b.ints([0]))
        classes = b.op("Range", b.scalar(0, np.int64), depth, b.scalar(1, np.int64))
    return _one_hot(b, b.arg(node, 0, np.int64), classes, node.dtype)


# -- shapes ---------------------------------------------------------------------------------------
@_rule("reshape")
def _reshape(b: _Builder, node: Node) -> str:
    shape = node.attrs["shape"]
    return b.op("Reshape", b.arg(node, 0), b.ints(shape), allowzero=int(0 in shape))


@_rule("reshape_like")
def _reshape_like(b: _Builder, node: Node) -> str:
    x, like = node.inputs
    lead = node.attrs["lead"]
    if None not in node.shape:
        target = b.ints(node.shape)
    elif lead == 0:
        target = b.shape_of(like)
    else:
        target = b.op("Concat", b.shape(b.value(x), 0, lead), b.shape_of(like), axis=0)
    return b.op("Reshape", b.arg(node, 0), target, allowzero=1)


@_rule("transpose")
def _transpose(b: _Builder, node: Node) -> str:
    return b.op("Transpose", b.arg(node, 0), perm=list(node.attrs["axes"]))


def _axes_op(onnx_op: str) -> Rule:
    def rule(b: _Builder, node: Node) -> str:
        axes = node.attrs["axis"]
        if not axes:  # ONNX would squeeze every size-1 axis
            return b.arg(node, 0)
        return b.op(onnx_op, b.arg(node, 0), b.ints(axes))
    return rule


RULES["expand_dims"] = _axes_op("Unsqueeze")
RULES["squeeze"] = _axes_op("Squeeze")


@_rule("concatenate")
def _concatenate(b: _Builder, node: Node) -> str:
    parts = [b.arg(node, i, node.dtype) for i in range(len(node.inputs))]
    return b.op("Concat", *parts, axis=node.attrs["axis"])


@_rule("stack")
def _stack(b: _Builder, node: Node) -> str:
    axis = b.ints([node.attrs["axis"]])
    parts = [b.op("Unsqueeze", b.arg(node, i, node.dtype), axis) for i in range(len(node.inputs))]
    return b.op("Concat", *parts, axis=node.attrs["axis"])


@_rule("broadcast_to")
def _broadcast_to(b: _Builder, node: Node) -> str:
    return b.op("Expand", b.arg(node, 0), b.ints(node.attrs["shape"]))


@_rule("broadcast_like")
def _broadcast_like(b: _Builder, node: Node) -> str:
    # Expand broadcasts both ways: the result has broadcast_shapes(x, like), as in graphc.
    return b.op("Expand", b.arg(node, 0), b.shape_of(node.inputs[1]))


@_rule("sum_to")
def _sum_to(b: _Builder, node: Node) -> str:
    x, like = node.inputs
    batch = node.attrs["batch"]
    lead = x.ndim - batch - like.ndim
    out = b.arg(node, 0)
    if lead:
        out = b.reduce_sum(out, b.ints(range(batch, batch + lead)), keepdims=0)
    if None not in like.shape:
        axes = [batch + k for k, n in enumerate(like.shape) if n == 1
                and x.shape[batch + lead + k] != 1]
        return b.reduce_sum(out, b.ints(axes), keepdims=1) if axes else out
    # Sum where like has size 1 at run time (summing a size-1 axis changes nothing).
    ones = b.op("Equal", b.shape(b.value(like)), b.ints([1] * like.ndim), dtype=bool)
    where = b.op("Squeeze", b.op("NonZero", ones, dtype=np.int64), b.ints([0]))
    return b.reduce_sum(out, b.op("Add", where, b.ints([batch])), keepdims=1,
                        noop_with_empty_axes=1)


@_rule("zeros_like", "ones_like")
def _filled_like(b: _Builder, node: Node) -> str:
    fill = b.scalar(0 if node.op == "zeros_like" else 1, node.dtype)
    return b.op("Expand", fill, b.shape_of(node.inputs[0]))


@_rule("eye_like")
def _eye_like(b: _Builder, node: Node) -> str:
    y = node.inputs[0]
    n = size(y.shape)
    if n is not None:
        return b.const(np.eye(n, dtype=node.dtype).reshape(node.shape))
    shape = b.shape(b.value(y))
    count = b.op("ReduceProd", shape, keepdims=1)
    zeros = b.op("ConstantOfShape", b.op("Concat", count, count, axis=0), dtype=node.dtype,
                 value=b.onnx.numpy_helper.from_array(np.zeros(1, node.dtype)))
    return b.op("Reshape", b.op("EyeLike", zeros), b.op("Concat", shape, shape, axis=0))


# -- indexing -------------------------------------------------------------------------------------
def _slice_bounds(start: Optional[int], stop: Optional[int], step: int) -> tuple:
    if step > 0:
        return (0 if start is None else start), (_INT64_MAX if stop is None else stop)
    return (_INT64_MAX if start is None else start), (_INT64_MIN if stop is None else stop)


def _index(b: _Builder, out: str, ndim: int, index: tuple, front: bool) -> str:
    """A canonical index applied entry by entry to the trailing dimensions of ``out`` (of
    ``ndim`` dimensions), as graphc's reference does: Slice, Gather of an integer (drops the
    axis), Unsqueeze, Gather of the array, then NumPy's move of the array's axis to the front."""
    lead = ndim - sum(e[0] in ("slice", "int", "array") for e in index)
    axis, place = lead, None
    for entry in index:
        tag = entry[0]
        if tag == "newaxis":
            out = b.op("Unsqueeze", out, b.ints([axis]))
        elif tag == "slice":
            start, stop = _slice_bounds(*entry[1:])
            out = b.op("Slice", out, b.ints([start]), b.ints([stop]), b.ints([axis]),
                       b.ints([entry[3]]))
        elif tag == "int":
            out = b.op("Gather", out, b.scalar(entry[1], np.int64), axis=axis)
            continue
        else:
            place = axis
            out = b.op("Gather", out, b.ints(entry[1]), axis=axis)
        axis += 1
    if front and place is not None and place != lead:
        perm = list(range(axis))
        perm.insert(lead, perm.pop(place))
        out = b.op("Transpose", out, perm=perm)
    return out


@_rule("getitem")
def _getitem(b: _Builder, node: Node) -> str:
    return _index(b, b.arg(node, 0), node.inputs[0].ndim, node.attrs["index"],
                  node.attrs["front"])


@_rule("getitem_grad")
def _getitem_grad(b: _Builder, node: Node) -> str:
    """A scatter-add of g into zeros of like's run-time shape, at the flat positions that
    like[index] takes (the same index applied to arange(like.size); repeats add up)."""
    g, like = node.inputs
    index, front = node.attrs["index"], node.attrs["front"]
    consumed = sum(e[0] in ("slice", "int", "array") for e in index)
    batch = g.ndim - (like.ndim - consumed + sum(e[0] != "int" for e in index))
    like_shape = b.shape_of(like)
    size = b.op("ReduceProd", like_shape, keepdims=1)
    flat = b.op("Range", b.scalar(0, np.int64), b.op("Squeeze", size, b.ints([0])),
                b.scalar(1, np.int64))
    source = _index(b, b.op("Reshape", flat, like_shape), like.ndim, index, front)
    count = b.op("ReduceProd", b.shape(source), keepdims=1)  # may be 0: no -1 in Reshape
    members = b.op("ReduceProd", b.shape(b.value(g), 0, batch), keepdims=1) if batch else \
        b.ints([1])
    rows = b.op("Reshape", b.arg(node, 0, node.dtype),
                b.op("Concat", members, count, axis=0), allowzero=1)
    zeros = b.op("Expand", b.scalar(0, node.dtype),
                 b.op("Concat", b.shape(rows, 0, 1), size, axis=0))
    positions = b.op("Expand", b.op("Reshape", source, b.ints([1, -1])), b.shape(rows))
    added = b.op("ScatterElements", zeros, positions, rows, axis=1, reduction="add")
    target = like_shape if batch == 0 else \
        b.op("Concat", b.shape(b.value(g), 0, batch), like_shape, axis=0)
    return b.op("Reshape", added, target)


def _concat_offsets(b: _Builder, node: Node) -> tuple:
    """Start, stop (1-D int64) of part ``part`` along ``axis``, and the total size."""
    axis, part = node.attrs["axis"], node.attrs["part"]
    xs = node.inputs[1:]
    sizes = [x.shape[axis] for x in xs]
    if None not in sizes:
        offset = int(np.sum(sizes[:part], dtype=np.int64))
        return b.ints([offset]), b.ints([offset + sizes[part]]), b.ints([int(np.sum(sizes))])
    runtime = [b.size_along(x, axis) for x in xs]
    start = b.ints([0])
    for length in runtime[:part]:  # ONNX's Sum takes no integers
        start = b.op("Add", start, length)
    stop = b.op("Add", start, runtime[part])
    total = stop
    for length in runtime[part + 1:]:
        total = b.op("Add", total, length)
    return start, stop, total


@_rule("concat_take")
def _concat_take(b: _Builder, node: Node) -> str:
    start, stop, _ = _concat_offsets(b, node)
    return b.op("Slice", b.arg(node, 0), start, stop, b.ints([node.attrs["axis"]]))


@_rule("concat_put")
def _concat_put(b: _Builder, node: Node) -> str:
    start, stop, total = _concat_offsets(b, node)
    pads = b.op("Concat", start, b.op("Sub", total, stop), axis=0)
    return b.op("Pad", b.arg(node, 0), pads, b.scalar(0, node.dtype),
                b.ints([node.attrs["axis"]]))


# -- more NumPy and SciPy ops ------------------------------------------------
# onnxruntime has no float64 kernels for Tan, Sinh, Asinh, ... (nor Atan, so arcsin, arccos and
# arctan are not exported): they are written with Exp, Log, Sqrt, Sin and Cos, in forms that
# stay accurate near 0.
RULES["reciprocal"] = _same("Reciprocal")


def _rounding(onnx_op: str) -> Rule:
    def rule(b: _Builder, node: Node) -> str:
        x = b.arg(node, 0, node.dtype)
        return x if node.dtype.kind in "biu" else b.op(onnx_op, x)  # integers are whole
    return rule


RULES["floor"] = _rounding("Floor")
RULES["ceil"] = _rounding("Ceil")


def _expm1(b: _Builder, x: str) -> str:
    """exp(x) - 1, accurate near 0: (u - 1) x / log(u) with u = exp(x) (Kahan's trick) for
    |x| < 1/2, where u - 1 would cancel; u - 1 elsewhere (the trick fails at +-inf)."""
    dtype = b.dtypes[x]
    u, one = b.op("Exp", x), b.scalar(1, dtype)
    small = b.op("Less", b.op("Abs", x), b.scalar(0.5, dtype), dtype=bool)
    safe_u = b.op("Where", small, u, b.scalar(2, dtype))  # keeps the unused branch finite
    kahan = b.op("Div", b.op("Mul", b.op("Sub", safe_u, one), x), b.op("Log", safe_u))
    near = b.op("Where", b.op("Equal", safe_u, one, dtype=bool), x, kahan)
    return b.op("Where", small, near, b.op("Sub", u, one))


@_rule("expm1")
def _expm1_rule(b: _Builder, node: Node) -> str:
    return _expm1(b, b.arg(node, 0, node.dtype))


@_rule("tan")
def _tan(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0, node.dtype)
    return b.op("Div", b.op("Sin", x), b.op("Cos", x))


@_rule("sinh")
def _sinh(b: _Builder, node: Node) -> str:
    """sinh x = m (m + 2) / (2 (m + 1)) with m = expm1(x): no cancellation near 0."""
    x = b.arg(node, 0, node.dtype)
    m = _expm1(b, x)
    one, two = b.scalar(1, node.dtype), b.scalar(2, node.dtype)
    return b.op("Div", b.op("Mul", m, b.op("Add", m, two)),
                b.op("Mul", two, b.op("Add", m, one)))


@_rule("cosh")
def _cosh(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0, node.dtype)
    half = b.scalar(0.5, node.dtype)
    return b.op("Mul", half, b.op("Add", b.op("Exp", x), b.op("Exp", b.op("Neg", x))))


@_rule("arcsinh")
def _arcsinh(b: _Builder, node: Node) -> str:
    """sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2)))."""
    x = b.arg(node, 0, node.dtype)
    a, one = b.op("Abs", x), b.scalar(1, node.dtype)
    square = b.op("Mul", x, x)
    inner = b.op("Add", a, b.op("Div", square,
                                b.op("Add", one, b.op("Sqrt", b.op("Add", one, square)))))
    return b.op("Mul", b.op("Sign", x), _log1p(b, inner))


@_rule("arccosh")
def _arccosh(b: _Builder, node: Node) -> str:
    """log1p(t + sqrt(t (t + 2))) with t = x - 1, accurate near 1."""
    x = b.arg(node, 0, node.dtype)
    t = b.op("Sub", x, b.scalar(1, node.dtype))
    root = b.op("Sqrt", b.op("Mul", t, b.op("Add", t, b.scalar(2, node.dtype))))
    return _log1p(b, b.op("Add", t, root))


@_rule("arctanh")
def _arctanh(b: _Builder, node: Node) -> str:
    """log1p(2x / (1 - x)) / 2."""
    x = b.arg(node, 0, node.dtype)
    ratio = b.op("Div", b.op("Add", x, x), b.op("Sub", b.scalar(1, node.dtype), x))
    return b.op("Mul", b.scalar(0.5, node.dtype), _log1p(b, ratio))


@_rule("trunc")
def _trunc(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0, node.dtype)
    if node.dtype.kind in "biu":
        return x
    negative = b.op("Less", x, b.scalar(0, node.dtype), dtype=bool)
    return b.op("Where", negative, b.op("Ceil", x), b.op("Floor", x))


@_rule("isnan", "isinf", "isfinite")
def _classify(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0)
    if b.dtypes[x].kind != "f":  # integers are never NaN or infinite
        return b.op("Expand", b.scalar(node.op == "isfinite", bool), b.shape(x))
    if node.op == "isnan":
        return b.op("IsNaN", x, dtype=bool)
    if node.op == "isinf":
        return b.op("IsInf", x, dtype=bool)
    return b.op("Not", b.op("Or", b.op("IsNaN", x, dtype=bool), b.op("IsInf", x, dtype=bool)))


def _scaled_log(base: float) -> Rule:
    def rule(b: _Builder, node: Node) -> str:
        x = b.arg(node, 0, node.dtype)
        return b.op("Div", b.op("Log", x), b.scalar(np.log(base), node.dtype))
    return rule


RULES["log2"] = _scaled_log(2.0)
RULES["log10"] = _scaled_log(10.0)


@_rule("exp2")
def _exp2(b: _Builder, node: Node) -> str:
    return b.op("Pow", b.scalar(2, node.dtype), b.arg(node, 0, node.dtype))


@_rule("softsign")
def _softsign(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0, node.dtype)
    return b.op("Div", x, b.op("Add", b.scalar(1, node.dtype), b.op("Abs", x)))


@_rule("silu")
def _silu(b: _Builder, node: Node) -> str:
    return b.op("Mul", b.arg(node, 0, node.dtype), _sigmoid(b, node))


@_rule("log_sigmoid")
def _log_sigmoid(b: _Builder, node: Node) -> str:
    return b.op("Neg", _softplus(b, b.op("Neg", b.arg(node, 0, node.dtype))))


def _elu(b: _Builder, x: str, alpha: float, dtype: np.dtype) -> str:
    """x above 0, alpha (exp(x) - 1) below, with exp(x) - 1 accurate near 0."""
    expm1 = _expm1(b, x)
    positive = b.op("Greater", x, b.scalar(0, dtype), dtype=bool)
    return b.op("Where", positive, x, b.op("Mul", b.scalar(alpha, dtype), expm1))


@_rule("elu")
def _elu_rule(b: _Builder, node: Node) -> str:
    return _elu(b, b.arg(node, 0, node.dtype), node.attrs["alpha"], node.dtype)


@_rule("selu")
def _selu(b: _Builder, node: Node) -> str:
    from ..ops.activations import _SELU_ALPHA, _SELU_SCALE

    inner = _elu(b, b.arg(node, 0, node.dtype), _SELU_ALPHA, node.dtype)
    return b.op("Mul", b.scalar(_SELU_SCALE, node.dtype), inner)


@_rule("leaky_relu")
def _leaky_relu(b: _Builder, node: Node) -> str:
    x = b.arg(node, 0, node.dtype)
    positive = b.op("Greater", x, b.scalar(0, node.dtype), dtype=bool)
    return b.op("Where", positive, x,
                b.op("Mul", x, b.scalar(node.attrs["negative_slope"], node.dtype)))


@_rule("prod")
def _prod(b: _Builder, node: Node) -> str:
    x, axes = b.arg(node, 0, node.dtype), node.attrs["axis"]
    if not axes:
        return x
    return b.op("ReduceProd", x, b.ints(axes), keepdims=int(node.attrs["keepdims"]))


@_rule("any", "all")
def _any_all(b: _Builder, node: Node) -> str:
    x, axes = b.cast(b.arg(node, 0, bool), np.uint8), node.attrs["axis"]
    if not axes:
        return b.cast(x, bool)
    reduce = "ReduceMax" if node.op == "any" else "ReduceMin"
    return b.cast(b.op(reduce, x, b.ints(axes), keepdims=int(node.attrs["keepdims"])), bool)


@_rule("var", "std")
def _moment(b: _Builder, node: Node) -> str:
    """NumPy's two passes: the squared deviations from the mean, summed, over n - ddof."""
    x, axes = b.arg(node, 0, node.dtype), node.attrs["axis"]
    if not axes:
        axes_value, count = None, b.scalar(1, node.dtype)
    else:
        axes_value = b.ints(axes)
        sizes = b.op("Gather", b.shape(x), axes_value, axis=0)
        count = b.cast(b.op("ReduceProd", sizes, keepdims=0), node.dtype)
    deviation = x if axes_value is None else \
        b.op("Sub", x, b.op("ReduceMean", x, axes_value, keepdims=1))
    squares = b.op("Mul", deviation, deviation)
    total = squares if axes_value is None else \
        b.op("ReduceSum", squares, axes_value, keepdims=int(node.attrs["keepdims"]))
    dof = b.op("Max", b.op("Sub", count, b.scalar(node.attrs["ddof"], node.dtype)),
               b.scalar(0, node.dtype))
    variance = b.op("Div", total, dof)
    return variance if node.op == "var" else b.op("Sqrt", variance)


@_rule("tril", "triu")
def _triangle(b: _Builder, node: Node) -> str:
    return b.op("Trilu", b.arg(node, 0), b.scalar(node.attrs["k"], np.int64),
                upper=int(node.op == "triu"))
