"""Composites: a Python function over nodes as one op whose body is a subgraph.

``f = gc.composite(fn)`` traces ``fn`` on placeholders shaped like the first call's inputs and
stores the result as a :class:`Body` (placeholders -> output, in a private graph). Each call
builds ONE node of the op ``"composite"`` whose attrs hold the body (``body``), the
composite's name (``label``) and, optionally, a gradient body (``grad``). So:

- ``g.run`` evaluates the body; the compiler inlines it (the ``inline`` pass runs before the
  others), so a compiled function pays nothing for it;
- the shape rule re-infers the body over the node's inputs, as inlining would;
- reverse mode differentiates through the body: the bprop inlines the body's gradient graph
  (built once per cotangent shape, in a private graph), or the user's gradient
  (``grad=``/``gc.custom_gradient``), traced once into a second body;
- forward mode pushes tangents through the body the same way (or transposes the custom
  gradient, so that both modes give the user's derivative);
- JSON stores both bodies as nested graphs, loaded with the same checks as any graph: a file
  that uses composites loads and runs with no user code.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import DTypeError, GraphcError, ShapeError, describe
from .graph import Graph, Node, as_node, build, graph_of
from .keys import attrs_key
from .ops import registry
from .ops.attrs import anything_of
from .ops.registry import Case

OP = "composite"


class Body:
    """A subgraph: ``inputs`` (placeholders) -> ``outputs``, in a graph of its own that holds
    nothing else. Immutable; equal bodies (same ops, attrs, shapes and dtypes, whatever the
    names) compare and hash equal, so composite nodes share and CSE like any others."""

    __slots__ = ("graph", "inputs", "outputs", "_key", "_hash")

    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Node]) -> None:
        inputs, outputs = tuple(inputs), tuple(outputs)
        source = (inputs + outputs)[0].graph
        wanted = {n.id for n in outputs}
        for node in reversed(source._nodes[:max(n.id for n in inputs + outputs) + 1]):
            if node.id in wanted:
                wanted.update(x.id for x in node.inputs)
        positions = {p.id: k for k, p in enumerate(inputs)}
        for node in source._nodes:
            if node.id not in wanted or node.id in positions:
                continue
            if node.op == "placeholder":
                raise GraphcError(f"a composite's body may read only its arguments, not "
                                  f"{describe(node)}")
            if node.op == "variable":
                raise GraphcError(f"a composite's body holds no state, so it cannot use "
                                  f"{describe(node)}; pass the variable as an argument")
        # a private, minimal copy: the arguments first, then what the outputs need
        graph = Graph()
        copied = {}
        for p in inputs:
            copied[p.id] = graph.placeholder(p.name, p.shape, p.dtype)
        for node in source._nodes:
            if node.id in wanted and node.id not in copied:
                copied[node.id] = _copy(graph, node, [copied[x.id] for x in node.inputs])
        self.graph = graph
        self.inputs = tuple(copied[p.id] for p in inputs)
        self.outputs = tuple(copied[n.id] for n in outputs)
        index = {n.id: k for k, n in enumerate(graph._nodes)}
        self._key = (tuple((n.op, tuple(index[x.id] for x in n.inputs), attrs_key(n.attrs),
                            n.shape, n.dtype.str) for n in graph._nodes),
                     tuple(index[n.id] for n in self.inputs),
                     tuple(index[n.id] for n in self.outputs))
        self._hash = hash(self._key)  # once: bodies are looked up whenever nodes are shared

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, Body) and other._hash == self._hash
                                 and other._key == self._key)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        ops = len(self.graph) - len(self.inputs)
        return f"<Body {len(self.inputs)} inputs -> {len(self.outputs)} outputs, {ops} nodes>"

    def inline(self, graph: Graph, args: Sequence[Node]) -> list:
        """The body's outputs rebuilt in ``graph`` over ``args`` (through the node builder, so
        every shape rule runs again on the real inputs)."""
        mapped = {}
        for p, x in zip(self.inputs, args):
            mapped[p.id] = x
        for node in self.graph._nodes:
            if node.id not in mapped:
                mapped[node.id] = _copy(graph, node, [mapped[x.id] for x in node.inputs])
        return [mapped[n.id] for n in self.outputs]


def _copy(graph: Graph, node: Node, inputs: list) -> Node:
    """``node`` rebuilt in ``graph`` over ``inputs`` (constants keep their weak typing)."""
    if node.op == "constant":
        value = node.attrs["value"]
        return graph._weak_constant(value.item()) if node.attrs["weak"] else \
            graph.constant(value)
    return build(graph, node.op, tuple(inputs), dict(node.attrs))


# -- the op -------------------------------------------------------------------------------------
def _infer(*inputs, body, label, grad=None):
    """The body's output shape and dtype, inferred again over the node's inputs."""
    from .compiler.ir import Term, infer

    if len(inputs) != len(body.inputs):
        raise TypeError(f"composite {label!r} takes {len(body.inputs)} inputs, got "
                        f"{len(inputs)}")
    if grad is not None and len(grad.inputs) != len(body.inputs) + 1:
        raise TypeError(f"composite {label!r}: its gradient body must take the inputs and "
                        "the cotangent")
    terms = {}
    for k, (p, x) in enumerate(zip(body.inputs, inputs)):
        if x.dtype != p.dtype:
            raise DTypeError(f"composite {label!r}: input {k} is {_fmt(x)}, its body takes "
                             f"{_fmt(p)}")
        if x.ndim != p.ndim or any(
                a is not None and b is not None and a != b for a, b in zip(x.shape, p.shape)):
            raise ShapeError(f"composite {label!r}: input {k} is {_fmt(x)}, its body takes "
                            f"{_fmt(p)}")
        terms[p.id] = Term("placeholder", (), {}, x.shape, x.dtype, p)
    for node in body.graph._nodes:
        if node.id in terms:
            continue
        args = tuple(terms[x.id] for x in node.inputs)
        if node.op == "constant":
            terms[node.id] = Term("constant", (), node.attrs, node.shape, node.dtype, node)
            continue
        shape, dtype, attrs = infer(node.op, args, dict(node.attrs))
        terms[node.id] = Term(node.op, args, attrs, tuple(shape), dtype, node)
    out = terms[body.outputs[0].id]
    return out.shape, out.dtype


def _fmt(node) -> str:
    from .shapes import fmt
    return f"{fmt(node.shape)} {node.dtype}"


def _kernel(*values, body, label, grad=None):
    return body.graph.run(body.outputs[0], dict(zip(body.inputs, values)))


_GRADIENT_BODIES: dict = {}  # (body, cotangent shape, dtype) -> (Body, input positions)
_TANGENT_BODIES: dict = {}  # (body, ((position, shape, dtype), ...)) -> Body
_CACHE_SIZE = 256  # derived bodies kept; the oldest is dropped first (rebuilt when needed)


def _remember(cache: dict, key, value):
    if len(cache) >= _CACHE_SIZE:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


def _gradient_body(body: Body, shape: tuple, dtype) -> tuple:
    """The body's vector-Jacobian product as a body: (inputs..., cotangent) -> the gradient
    of each float input (built once per cotangent shape, batch dimensions included)."""
    from .autodiff import build_grad

    key = (body, shape, np.dtype(dtype).str)
    if key not in _GRADIENT_BODIES:
        h = Graph()
        args = [h.placeholder(f"arg{k}", p.shape, p.dtype) for k, p in enumerate(body.inputs)]
        (out,) = body.inline(h, args)
        gy = h.placeholder("cotangent", shape, dtype)
        floats = [k for k, a in enumerate(args) if np.issubdtype(a.dtype, np.floating)]
        grads = build_grad(out, [args[k] for k in floats], gy, unconnected="zero") \
            if np.issubdtype(out.dtype, np.floating) else []
        return _remember(_GRADIENT_BODIES, key,
                         (Body(args + [gy], grads) if grads else None, floats))
    return _GRADIENT_BODIES[key]


def _bprop(node: Node, g: Node, i: int):
    body, grad, label = node.attrs["body"], node.attrs["grad"], node.attrs["label"]
    if grad is not None:  # the user's gradient, traced once (no batch dimensions)
        part = grad.inline(node.graph, list(node.inputs) + [g])[i]
        x, batch = node.inputs[i], g.ndim - node.ndim
        if batch and part.ndim < batch + x.ndim:
            raise GraphcError(f"the gradient of composite {label!r} ({describe(node)}) does "
                              f"not accept a batch of cotangents (gave {part.shape} for a "
                              f"cotangent {g.shape}); Jacobians and Hessians need one: write "
                              "it with elementwise ops and negative axes")
        return part
    vjp, floats = _gradient_body(body, g.shape, g.dtype)
    if vjp is None or i not in floats:
        return None
    return vjp.inline(node.graph, list(node.inputs) + [g])[floats.index(i)]


def _jvp(node: Node, tangents: list):
    from .forward import push_forward, transposed_bprop

    positions = [k for k, t in enumerate(tangents) if t is not None]
    if node.attrs["grad"] is not None:  # forward mode follows the user's derivative too
        parts = [transposed_bprop(node, k, tangents[k]) for k in positions]
        parts = [p for p in parts if p is not None]
        total = parts[0] if parts else None
        for p in parts[1:]:
            total = total + p
        return total
    body = node.attrs["body"]
    key = (body, tuple((k, tangents[k].shape, tangents[k].dtype.str) for k in positions))
    if key not in _TANGENT_BODIES:
        h = Graph()
        args = [h.placeholder(f"arg{k}", p.shape, p.dtype) for k, p in enumerate(body.inputs)]
        seeds = [h.placeholder(f"tangent{k}", tangents[k].shape, tangents[k].dtype)
                 for k in positions]
        (out,) = body.inline(h, args)
        with h._deriving(1):
            (t,) = push_forward([out], [args[k] for k in positions], seeds)
        _remember(_TANGENT_BODIES, key, Body(args + seeds, [t]))
    (t,) = _TANGENT_BODIES[key].inline(node.graph,
                                        list(node.inputs) + [tangents[k] for k in positions])
    return t


def _label(value) -> str:
    if not isinstance(value, str) or not value or not value.isprintable():
        raise TypeError(f"expected a non-empty printable name, not {value!r}")
    return value


# -- the Python side ------------------------------------------------------------------------------
class Composite:
    """A reusable op made from a function over nodes (what :func:`composite` returns).

    Calling it on nodes (arrays and scalars become constants) builds one ``composite`` node.
    The body is traced once per signature of input shapes and dtypes.
    """

    def __init__(self, fn: Callable, name: Optional[str] = None,
                 grad: Optional[Callable] = None, returns_grad: bool = False) -> None:
        if not callable(fn):
            raise GraphcError(f"composite takes a function, not {type(fn).__name__}")
        if grad is not None and not callable(grad):
            raise GraphcError(f"composite: grad must be a function, not {type(grad).__name__}")
        self.fn, self.grad, self._returns_grad = fn, grad, returns_grad
        self.name = _label(name or getattr(fn, "__name__", "composite"))
        self.__name__ = self.name
        self.__doc__ = getattr(fn, "__doc__", None) or f"The composite {self.name!r}."
        self._traced: dict = {}

    def __repr__(self) -> str:
        return f"<graphc composite {self.name!r}>"

    def __call__(self, *args, name: Optional[str] = None) -> Node:
        graph = graph_of(args)
        if graph is None:
            raise GraphcError(f"composite {self.name!r}: needs at least one graphc node among "
                              "its inputs")
        nodes = []
        for a in args:
            node = as_node(graph, a)
            if node.op == "constant" and node.attrs["weak"]:  # the body sees a strong value
                node = graph.constant(node.attrs["value"])
            nodes.append(node)
        signature = tuple((n.shape, n.dtype.str) for n in nodes)
        if signature not in self._traced:
            self._traced[signature] = self._trace(nodes)
        body, grad = self._traced[signature]
        return build(graph, OP, tuple(nodes), {"body": body, "label": self.name, "grad": grad},
                     name)

    def _trace(self, nodes: list) -> tuple:
        h = Graph()
        names = _parameter_names(self.fn, len(nodes))
        args = [h.placeholder(n, x.shape, x.dtype) for n, x in zip(names, nodes)]
        try:
            result = self.fn(*args)
        except GraphcError as exc:
            if "two graphs" in str(exc):
                raise GraphcError(f"composite {self.name!r}: its function may use only its "
                                  f"arguments (pass other nodes, variables included, as "
                                  f"arguments): {exc}") from None
            raise
        grad_fn = self.grad
        if self._returns_grad:
            if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
                raise GraphcError(f"custom_gradient {self.name!r}: the function must return "
                                  "(output, grad) where grad(cotangent) gives the input "
                                  "gradients")
            result, closure = result
            grad_fn = lambda inputs, output, cotangent: closure(cotangent)  # noqa: E731
        out = self._output(result, h, "the function")
        body = Body(args, [out])
        if grad_fn is None:
            return body, None
        gy = h.placeholder("cotangent", out.shape, out.dtype)
        grads = grad_fn(list(args), out, gy)
        grads = [grads] if isinstance(grads, Node) else list(grads)
        if len(grads) != len(args):
            raise GraphcError(f"composite {self.name!r}: its grad gave {len(grads)} "
                              f"gradients for {len(args)} inputs")
        outs = []
        for a, d in zip(args, grads):
            if d is None:
                d = h.constant(np.zeros(a.shape, a.dtype)) if None not in a.shape else \
                    _zeros_like(a)
            d = self._output(d, h, "its grad")
            if d.ndim != a.ndim or any(p is not None and q is not None and p != q
                                       for p, q in zip(d.shape, a.shape)):
                raise GraphcError(f"composite {self.name!r}: its grad gave shape {d.shape} "
                                  f"for an input of shape {a.shape}")
            outs.append(d)
        return body, Body(args + [gy], outs)

    def _output(self, result, h: Graph, what: str) -> Node:
        if isinstance(result, Node):
            if result.graph is not h:
                raise GraphcError(f"composite {self.name!r}: {what} returned a node of another "
                                  "graph; it may use only its arguments")
            return result
        if isinstance(result, (list, tuple)):
            raise GraphcError(f"composite {self.name!r}: {what} must return one node, not a "
                              f"{type(result).__name__}")
        try:
            return h.constant(np.asarray(result))
        except GraphcError:
            raise GraphcError(f"composite {self.name!r}: {what} returned "
                              f"{type(result).__name__}, not a node") from None


def _zeros_like(node: Node) -> Node:
    from .ops.special import zeros_like
    return zeros_like(node)


def _parameter_names(fn, count: int) -> list:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[k] if k < len(params) else f"arg{k}" for k in range(count)]


def composite(fn: Optional[Callable] = None, *, name: Optional[str] = None,
              grad: Optional[Callable] = None) -> Callable:
    """Turn ``fn`` (nodes -> one node) into a reusable op whose body is a subgraph
    (PyTensor's ``OpFromGraph``). Usable as ``composite(fn)`` or as a decorator
    (``@gc.composite`` or ``@gc.composite(name=..., grad=...)``).

    ``grad(inputs, output, cotangent) -> [gradient per input]`` (None for none) replaces the
    derivative through the body, for stable or straight-through gradients; it is traced
    once into a body of its own, so a saved graph needs no Python code. The function may use
    only its arguments (pass variables in); it must return one node.
    """
    if fn is None:
        return lambda f: Composite(f, name, grad)
    return Composite(fn, name, grad)


def custom_gradient(fn: Callable) -> Composite:
    """Decorator: ``fn(*inputs)`` returns ``(output, grad)`` where ``grad(cotangent)`` gives
    the list of input gradients (TensorFlow's ``tf.custom_gradient``). The same as
    :func:`composite` with ``grad=``: ``grad`` may use every node ``fn`` built."""
    return Composite(fn, returns_grad=True)


# -- registration, with the registry test's cases ---------------------------------------------
def _case_body(fn, *shapes):
    h = Graph()
    args = [h.placeholder(f"arg{k}", s) for k, s in enumerate(shapes)]
    return Body(args, [fn(*args)])


def _case_bodies():
    from .ops.elementwise import exp, log1p, mul, sin, tanh
    from .ops.nn import sigmoid
    from .ops.linalg import matmul

    smooth = _case_body(lambda x, y: x * sin(y) + 0.5 * tanh(x), (3,), (3,))
    mixed = _case_body(lambda a, w: tanh(matmul(a, w)) * 2.0, (2, 3), (3, 4))
    softplus = _case_body(lambda x: log1p(exp(x)), (4,))
    h = Graph()
    x, gy = h.placeholder("x", (4,)), h.placeholder("cotangent", (4,))
    stable = Body([x, gy], [mul(gy, sigmoid(x))])  # d softplus = sigmoid, stable for any x
    return [Case(((3,), (3,)), {"body": smooth, "label": "smooth", "grad": None}, order=3,
                 ref=lambda x, y, **_: x * np.sin(y) + 0.5 * np.tanh(x)),
            Case(((2, 3), (3, 4)), {"body": mixed, "label": "mixed", "grad": None},
                 ref=lambda a, w, **_: np.tanh(a @ w) * 2.0),
            Case(((4,),), {"body": softplus, "label": "softplus", "grad": stable},
                 ref=lambda x, **_: np.logaddexp(0.0, x))]


registry.define(OP, infer=_infer, kernel=_kernel, bprop=_bprop, jvp=_jvp, arity=(0, None),
                attrs={"body": anything_of(Body), "label": _label,
                       "grad": anything_of(Body, type(None))},
                reference=lambda *values, body, label, grad=None: None,  # cases give refs
                cases=_case_bodies(),
                doc="A subgraph as one op (gc.composite): attrs body, label, grad.")
