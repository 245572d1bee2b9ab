"""The IR: an append-only :class:`Graph` of immutable :class:`Node` objects.

Creation order is a topological order (a node's inputs always exist before it), so every pass
is a plain loop over ``graph.nodes`` — no recursion, whatever the depth.
"""
from __future__ import annotations

import gc as _gc
import os
import sys
import threading
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import shapes
from .shapes import size
from .errors import DTypeError, GraphcError, ShapeError, SymbolicValueError, describe
from .keys import attrs_key

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


_INTERNAL: dict = {}  # file name -> whether it is one of graphc's (asked once per file)


def user_site() -> Optional[str]:
    """``file:line`` of the innermost frame outside graphc (and outside the code it generated):
    where the user built a node, or called g.run or a compiled function."""
    return _site_above(sys._getframe(1))


def _site_above(frame, known=None, known_site: Optional[str] = None) -> Optional[str]:
    """:func:`user_site` from ``frame`` outwards. ``known`` is a graphc frame still running
    whose answer is ``known_site`` (its callers wait at fixed lines): the walk stops there."""
    internal = _INTERNAL
    while frame is not None:
        if frame is known:
            return known_site
        filename = frame.f_code.co_filename
        inside = internal.get(filename)
        if inside is None:  # (code graphc generated counts as graphc's; it is not kept here)
            inside = filename.startswith("<graphc-")
            if not inside:
                inside = internal[filename] = os.path.abspath(filename).startswith(_PACKAGE_DIR)
        if not inside:
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class _Fields:
    """A node's fields with plain writes: a node is filled in as one of these, then becomes a
    :class:`Node`, which refuses writes (4x cheaper than ``object.__setattr__`` per field,
    and graphs are built node by node)."""

    __slots__ = ("graph", "id", "op", "inputs", "attrs", "shape", "dtype", "name", "site",
                 "derivative", "__weakref__")


class Node(_Fields):
    """One value in a graph: the result of ``op`` applied to ``inputs`` with ``attrs``.

    Nodes are immutable; only the graph that owns them records their ``consumers``.
    Arithmetic operators build new nodes (``x @ W + b``); ``==`` stays identity, so use
    :func:`graphc.equal` for elementwise equality.
    """

    __slots__ = ()
    graph: "Graph"
    id: int
    op: str
    inputs: "tuple[Node, ...]"
    attrs: Mapping[str, Any]
    shape: "tuple[Optional[int], ...]"
    dtype: np.dtype
    name: str
    site: Optional[str]
    derivative: int

    def __setattr__(self, key, value):
        if key == "value":  # the variable's value is the graph's, not the node's
            return object.__setattr__(self, key, value)
        raise AttributeError(f"nodes are immutable (cannot set {key!r})")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def consumers(self) -> "tuple[Node, ...]":
        """The nodes that use this one as an input, in creation order."""
        return tuple(self.graph._consumer_lists()[self.id])

    @property
    def value(self) -> np.ndarray:
        """The stored array of a variable or constant; assign to update a variable."""
        if self.op == "variable":
            return self.graph._values[self.id]
        if self.op == "constant":
            return np.asarray(self.attrs["value"], dtype=self.dtype)
        raise GraphcError(f"{describe(self)} holds no value; use .eval() or graph.run()")

    @value.setter
    def value(self, new: ArrayLike) -> None:
        if self.op != "variable":
            raise GraphcError(f"{describe(self)} is not a variable; only variables can be assigned")
        self.graph._values[self.id] = _checked_value(self, new)

    def eval(self, feed: Optional[dict] = None) -> Any:
        """Compute this node: ``graph.run(node, feed)``."""
        return self.graph.run(self, feed)

    def __repr__(self) -> str:
        return f"<Node {self.op} '{self.name}' shape={shapes.fmt(self.shape)} dtype={self.dtype}>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows the node and its ancestors as a picture when Graphviz is installed
        and they are few, else as the text listing (``gc.to_text``)."""
        from .io.dot import mimebundle
        return mimebundle(self, include, exclude)

    def _repr_html_(self) -> str:
        return self._repr_mimebundle_(include=["text/html"])["text/html"]

    def __bool__(self) -> bool:
        raise SymbolicValueError(f"the truth value of {describe(self)} is not known until it "
                                 "runs; use gc.where for a symbolic choice")

    def __iter__(self) -> Any:
        raise SymbolicValueError(f"{describe(self)} is symbolic and cannot be iterated; index "
                                 f"it (node[0]) or compute it first (node.eval())")

    # Operators: thin wrappers over the op functions (imported lazily: ops import this module).
    def __add__(self, other: Operand) -> Node: return _ops().add(self, other)
    def __radd__(self, other: Operand) -> Node: return _ops().add(other, self)
    def __sub__(self, other: Operand) -> Node: return _ops().sub(self, other)
    def __rsub__(self, other: Operand) -> Node: return _ops().sub(other, self)
    def __mul__(self, other: Operand) -> Node: return _ops().mul(self, other)
    def __rmul__(self, other: Operand) -> Node: return _ops().mul(other, self)
    def __truediv__(self, other: Operand) -> Node: return _ops().div(self, other)
    def __rtruediv__(self, other: Operand) -> Node: return _ops().div(other, self)
    def __pow__(self, other: Operand) -> Node: return _ops().pow(self, other)
    def __rpow__(self, other: Operand) -> Node: return _ops().pow(other, self)
    def __matmul__(self, other: Operand) -> Node: return _ops().matmul(self, other)
    def __rmatmul__(self, other: Operand) -> Node: return _ops().matmul(other, self)
    def __neg__(self) -> Node: return _ops().neg(self)
    def __pos__(self) -> Node: return self
    def __abs__(self) -> Node: return _ops().abs(self)
    def __lt__(self, other: Operand) -> Node: return _ops().less(self, other)
    def __le__(self, other: Operand) -> Node: return _ops().less_equal(self, other)
    def __gt__(self, other: Operand) -> Node: return _ops().greater(self, other)
    def __ge__(self, other: Operand) -> Node: return _ops().greater_equal(self, other)
    def __getitem__(self, index: Any) -> Node: return _ops().getitem(self, index)
    __hash__ = object.__hash__
    __eq__ = object.__eq__

    @property
    def T(self) -> "Node":
        return _ops().transpose(self)

    # -- NumPy habits: ndarray's methods and operators, NumPy's dispatch protocols.
    # The adapters live in graphc/numpy_api.py (shared with np.sum(node), ...).
    def __floordiv__(self, other): return _ops().floor_divide(self, other)
    def __rfloordiv__(self, other): return _ops().floor_divide(other, self)
    def __mod__(self, other): return _ops().mod(self, other)
    def __rmod__(self, other): return _ops().mod(other, self)
    def __divmod__(self, other): return (self // other, self % other)
    def __rdivmod__(self, other): return (other // self, other % self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on nodes build nodes: ``np.exp(x)``, ``array * x``, ``np.add.reduce``."""
        return _numpy_api().array_ufunc(self, ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        """NumPy functions on nodes build nodes: ``np.sum(x, axis=0)``, ``np.where(c, a, b)``."""
        return _numpy_api().array_function(self, func, types, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        raise GraphcError(f"{describe(self)} is symbolic: it has no array value until it runs "
                          "(use node.eval(feed) or graph.run)")

    def sum(self, axis: Axis = None, dtype: Optional[DTypeLike] = None, out: Any = None,
            keepdims: bool = False) -> Node:
        """``gc.sum`` with ndarray.sum's signature."""
        return _numpy_api().sum(self, axis, dtype, out, keepdims)

    def mean(self, axis: Axis = None, dtype: Optional[DTypeLike] = None, out: Any = None,
             keepdims: bool = False) -> Node:
        """``gc.mean`` with ndarray.mean's signature."""
        return _numpy_api().mean(self, axis, dtype, out, keepdims)

    def prod(self, axis: Axis = None, dtype: Optional[DTypeLike] = None, out: Any = None,
             keepdims: bool = False) -> Node:
        """``gc.prod`` with ndarray.prod's signature."""
        return _numpy_api().prod(self, axis, dtype, out, keepdims)

    def max(self, axis: Axis = None, out: Any = None, keepdims: bool = False) -> Node:
        """``gc.max`` with ndarray.max's signature."""
        return _numpy_api().max(self, axis, out, keepdims)

    def min(self, axis: Axis = None, out: Any = None, keepdims: bool = False) -> Node:
        """``gc.min`` with ndarray.min's signature."""
        return _numpy_api().min(self, axis, out, keepdims)

    def reshape(self, *shape: Any, order: str = "C") -> Node:
        """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``, like ndarray.reshape."""
        return _numpy_api().reshape(self, *shape, order=order)

    def transpose(self, *axes: Any) -> Node:
        """``x.transpose()``, ``x.transpose(1, 0)`` or ``x.transpose((1, 0))``."""
        return _numpy_api().transpose(self, *axes)

    def astype(self, dtype: DTypeLike) -> Node:
        """``gc.cast(x, dtype)``."""
        return _ops().cast(self, dtype)

    def flatten(self, order: str = "C") -> Node:
        """``x`` as one dimension (a reshape; graph values are never copied or changed)."""
        return _numpy_api().ravel(self, order)

    def ravel(self, order: str = "C") -> Node:
        """``x`` as one dimension, like ndarray.ravel."""
        return _numpy_api().ravel(self, order)

    def squeeze(self, axis: Axis = None) -> Node:
        """``gc.squeeze(x, axis)``."""
        return _ops().squeeze(self, axis)

    def dot(self, other: Operand) -> Node:
        """``numpy.dot(x, other)`` (matrix and vector products)."""
        return _numpy_api().dot(self, other)

    def clip(self, min: Optional[Operand] = None, max: Optional[Operand] = None) -> Node:
        """``gc.clip(x, min, max)`` (one side may be None)."""
        return _ops().clip(self, min, max)

    def var(self, axis: Axis = None, dtype: Optional[DTypeLike] = None, out: Any = None,
            ddof: int = 0, keepdims: bool = False) -> Node:
        """``gc.var`` with ndarray.var's signature."""
        return _numpy_api().var(self, axis, dtype, out, ddof, keepdims)

    def std(self, axis: Axis = None, dtype: Optional[DTypeLike] = None, out: Any = None,
            ddof: int = 0, keepdims: bool = False) -> Node:
        """``gc.std`` with ndarray.std's signature."""
        return _numpy_api().std(self, axis, dtype, out, ddof, keepdims)

    def any(self, axis: Axis = None, out: Any = None, keepdims: bool = False) -> Node:
        """``gc.any`` with ndarray.any's signature."""
        return _numpy_api().any(self, axis, out, keepdims)

    def all(self, axis: Axis = None, out: Any = None, keepdims: bool = False) -> Node:
        """``gc.all`` with ndarray.all's signature."""
        return _numpy_api().all(self, axis, out, keepdims)

    def argmax(self, axis: Axis = None, out: Any = None, keepdims: bool = False) -> Node:
        """``gc.argmax`` with ndarray.argmax's signature."""
        return _numpy_api().argmax(self, axis, out, keepdims)

    def argmin(self, axis: Axis = None, out: Any = None, keepdims: bool = False) -> Node:
        """``gc.argmin`` with ndarray.argmin's signature."""
        return _numpy_api().argmin(self, axis, out, keepdims)

    def cumsum(self, axis: Axis = None, dtype: Optional[DTypeLike] = None,
               out: Any = None) -> Node:
        """``gc.cumsum`` with ndarray.cumsum's signature."""
        return _numpy_api().cumsum(self, axis, dtype, out)

    def cumprod(self, axis: Axis = None, dtype: Optional[DTypeLike] = None,
                out: Any = None) -> Node:
        """``gc.cumprod`` with ndarray.cumprod's signature."""
        return _numpy_api().cumprod(self, axis, dtype, out)

    def round(self, decimals: int = 0, out: Any = None) -> Node:
        """``gc.round`` (halves to even); also ``round(x, decimals)``."""
        return _numpy_api().round(self, decimals, out)

    def __round__(self, ndigits=None):
        return _ops().round(self, 0 if ndigits is None else ndigits)

    @property
    def at(self) -> Any:
        """JAX's functional updates: ``x.at[idx].add(v)``, ``x.at[idx].set(v)``."""
        from .ops.scatter import At
        return At(self)


def _new_node(graph: "Graph", id: int, op: str, inputs: tuple, attrs: Mapping, shape: tuple,
              dtype: np.dtype, name: str, site: Optional[str], derivative: int) -> Node:
    node = _Fields()
    node.graph, node.id, node.op, node.inputs, node.attrs = graph, id, op, inputs, attrs
    node.shape, node.dtype, node.name, node.site = shape, dtype, name, site
    node.derivative = derivative
    node.__class__ = Node
    return node


_OPS: Any = None  # graphc.ops, imported at the first operator (it imports this module)


def _ops() -> Any:
    global _OPS
    if _OPS is None:
        from . import ops
        _OPS = ops
    return _OPS


#: What an op takes as an input: a node, or a value that becomes a constant node (a Python
#: number, a NumPy array, nested lists: anything ``numpy.asarray`` takes).
Operand = Union[Node, ArrayLike]
#: An ``axis`` argument: None (all axes), one axis, or several; negative axes count from the end.
Axis = Union[None, int, Sequence[int]]


def _numpy_api():
    from . import numpy_api
    return numpy_api


def _checked_value(node: Node, new) -> np.ndarray:
    array = np.asarray(new)
    if array.shape != node.shape:
        raise ShapeError(f"cannot assign a value of shape {array.shape} to {describe(node)} "
                         f"of shape {shapes.fmt(node.shape)}")
    if not np.can_cast(array.dtype, node.dtype, "same_kind"):
        raise DTypeError(f"cannot assign a value of dtype {array.dtype} to {describe(node)} "
                         f"of dtype {node.dtype}")
    return np.array(array, dtype=node.dtype, copy=True)


class Graph:
    """A DAG of nodes, append-only: ``graph.nodes`` is in creation (topological) order."""

    def __init__(self) -> None:
        self._nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        # consumers by node id, indexed on demand (nodes only ever come at the end, so the
        # index resumes where it stopped): building a node does not pay for it
        self._consumers: list[list[Node]] = []
        self._consumers_lock = threading.Lock()  # (reading consumers from threads extends it)
        self._values: dict[int, np.ndarray] = {}  # variable id -> current value
        self._derivative_level = 0  # > 0 while gradients() appends derivative nodes
        # structural key -> node: built at the first gradients() call, then kept up to date;
        # nodes are shared through it only while derivatives are being built (_sharing)
        self._memo: Optional[dict] = None
        self._sharing = False
        # Sharing never answers with a node derivatives are being taken with respect to
        # (t = x.T is not transpose(x) when differentiating by t): ids of those targets, and
        # key -> the first duplicate built instead of such a target
        self._protected: frozenset = frozenset()
        self._alternates: dict = {}
        # keys of folded constants indexed while sharing (see _drop_unused): the one kind of
        # entry whose key is not the structural key of the node it gives
        self._folded: list = []
        self._site_hint: tuple = (None, None)  # (frame, its user_site) while _sites_from

    # -- reading ------------------------------------------------------------------------------
    @property
    def nodes(self) -> "tuple[Node, ...]":
        return tuple(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Any:
        return iter(tuple(self._nodes))

    def __getitem__(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node named {name!r} in this graph") from None

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Node):
            return item.graph is self
        return item in self._by_name

    @property
    def variables(self) -> "tuple[Node, ...]":
        return tuple(n for n in self._nodes if n.op == "variable")

    @property
    def placeholders(self) -> "tuple[Node, ...]":
        return tuple(n for n in self._nodes if n.op == "placeholder")

    def __repr__(self) -> str:
        """A one-line summary: node count, counts by op, inputs, variables and outputs."""
        from .io.text import summarize_graph
        return summarize_graph(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows the graph as a picture when Graphviz is installed and the graph is
        small, else as the text listing (``gc.to_text``)."""
        from .io.dot import mimebundle
        return mimebundle(self, include, exclude)

    def _repr_html_(self) -> str:
        return self._repr_mimebundle_(include=["text/html"])["text/html"]

    # -- building -----------------------------------------------------------------------------
    def placeholder(self, name: str, shape: Union[None, int, Sequence[Optional[int]]] = (),
                    dtype: DTypeLike = "float64") -> Node:
        """An input fed at run time; ``None`` in ``shape`` is a size known only then."""
        shape = (shape,) if isinstance(shape, (int, type(None))) else tuple(shape)
        for d in shape:
            if d is not None and (not isinstance(d, (int, np.integer)) or d < 0):
                raise ShapeError(_problem("placeholder", name, f"bad size {d!r} in shape "
                                                               f"{shape}"))
        shape = tuple(None if d is None else int(d) for d in shape)
        dtype = _dtype(dtype, "placeholder", name)
        return self._add("placeholder", (), {}, shape, dtype, name)

    def variable(self, name: str, value: ArrayLike, dtype: Optional[DTypeLike] = None) -> Node:
        """A node that holds an array between runs (``node.value`` reads and writes it)."""
        array = _numeric_array(value, dtype, "variable", name)
        node = self._add("variable", (), {}, array.shape, array.dtype, name)
        self._values[node.id] = array
        return node

    def constant(self, value: ArrayLike, name: Optional[str] = None,
                 dtype: Optional[DTypeLike] = None) -> Node:
        """A fixed array (Python scalars and arrays given to ops become constants by themselves)."""
        array = _numeric_array(value, dtype, "constant", name)
        array.flags.writeable = False
        return self._add("constant", (), {"value": array, "weak": False}, array.shape,
                         array.dtype, name)

    def _weak_constant(self, value) -> Node:
        """A Python scalar: weakly typed, so ``x32 * 2.0`` stays float32 (NumPy 2 rules)."""
        tag = None  # derivatives ask for the same few: looked up before an array is made
        if self._sharing and type(value) in _WEAK_TYPES:
            tag = (type(value), value.hex() if type(value) is float else value)  # exact
            key = _WEAK_KEYS.get(tag)
            found = None if key is None else self._shared(key)
            if found is not None:
                return found
        array = np.array(value)
        array.flags.writeable = False
        node = self._add("constant", (), {"value": array, "weak": True}, (), array.dtype, None)
        if tag is not None:
            if len(_WEAK_KEYS) > 4096:
                _WEAK_KEYS.clear()
            _WEAK_KEYS[tag] = _structural_key(node.op, (), node.attrs)
        return node

    def _add(self, op: str, inputs: tuple, attrs: Mapping, shape: tuple, dtype, name,
             site: Optional[str] = None, derivative: Optional[int] = None) -> Node:
        """Append a node (rules already checked). ``site`` and ``derivative`` default to the
        caller's line and the current derivative order; the JSON loader restores them."""
        memo = self._memo
        key = None
        if memo is not None and op not in _UNSHARED and (op != "constant" or
                                                          attrs["value"].size <= 64):
            key = (op, inputs if type(inputs) is tuple else tuple(inputs),
                   attrs_key(attrs) if attrs else ())  # _structural_key, inlined: it is hot
            if self._sharing and name is None:
                found = memo.get(key)
                if found is not None and found.id in self._protected:
                    found = self._shared(key)
                if found is None:
                    found = self._reuse(key, op, inputs, attrs, shape, dtype)
                if found is not None:
                    return found
        nodes, by_name = self._nodes, self._by_name
        if name is None:
            name = f"{op}_{len(nodes)}"
            if name in by_name:
                name = self._fresh_name(op)
        elif not isinstance(name, str) or not name or not name.isprintable():
            raise GraphcError(f"{op} node built at {user_site()}: a node name must be a "
                              f"non-empty string of printable characters, not {name!r:.60}")
        elif name in by_name:
            raise GraphcError(f"duplicate name {name!r}: {describe(by_name[name])} "
                              f"already has it (names are unique in a graph); new {op} node "
                              f"built at {user_site()}")
        if derivative is None:  # the order being built, or the highest among the inputs
            derivative = self._derivative_level
            for x in inputs:
                if x.derivative > derivative:
                    derivative = x.derivative
        if site is None:  # from _add's caller's caller: a private method's callers are graphc's
            try:
                site = _site_above(sys._getframe(2), *self._site_hint)
            except ValueError:  # no such frame: nothing outside graphc called
                site = None
        node = _new_node(self, len(nodes), op, inputs,
                         MappingProxyType(dict(attrs)) if attrs else _NO_ATTRS,
                         shape if type(shape) is tuple else tuple(shape),
                         dtype if isinstance(dtype, np.dtype) else np.dtype(dtype),
                         name, site, derivative)
        nodes.append(node)
        by_name[name] = node
        if key is not None:
            first = memo.setdefault(key, node)
            if first is not node and first.id in self._protected:
                self._alternates.setdefault(key, node)
        return node

    def _consumer_lists(self) -> "list[list[Node]]":
        """Each node's consumers, by id, in creation order."""
        lists = self._consumers
        if len(lists) == len(self._nodes):
            return lists
        with self._consumers_lock:
            for node in self._nodes[len(lists):]:
                lists.append([])
                for x in node.inputs:
                    consumers = lists[x.id]
                    if not consumers or consumers[-1] is not node:  # x * x is one consumer
                        consumers.append(node)
        return lists

    @contextmanager
    def _deriving(self, level: int):
        """Nodes built inside are derivative nodes of order ``level``. Meanwhile a node
        identical to an existing one is that node, and arithmetic on small constants is done at
        once, so derivative graphs hold no duplicates and no constant-only arithmetic."""
        saved = self._derivative_level, self._sharing
        self._derivative_level, self._sharing = level, True
        if self._memo is None:  # once per graph; _add keeps it current from then on
            self._memo = {}
            for node in self._nodes:
                key = _structural_key(node.op, node.inputs, node.attrs)
                if key is not None:
                    self._memo.setdefault(key, node)
        try:
            with _collector_paused():
                yield
        finally:
            self._derivative_level, self._sharing = saved
            if not self._sharing:  # the outermost call is over: its log is no longer needed
                self._folded = []

    def _shared(self, key) -> Optional[Node]:
        """The node indexed under ``key``, unless it is a protected target (then the first
        duplicate built instead of it, if any)."""
        found = self._memo.get(key)
        if found is not None and found.id in self._protected:
            found = self._alternates.get(key)
            found = None if found is None or found.id in self._protected else found
        return found

    def _reuse(self, key, op, inputs, attrs, shape, dtype) -> Optional[Node]:
        """A node that ``op`` on ``inputs`` is known to equal though it is not indexed (a
        product with ones, constant arithmetic folded now), or None."""
        if op == "mul" and (inputs[0].op in _ONE_OPS or inputs[1].op in _ONE_OPS):
            # a product with known ones (the seed of a scalar y, spread or not)
            for one, other in (inputs, inputs[::-1]):
                if _neutral_one(one, other):
                    return other
        if inputs and inputs[0].op == "constant" and all(x.op == "constant" for x in inputs) \
                and (size(shape) or 0) <= 64:
            folded = self._fold(op, inputs, attrs, dtype)
            if folded is not None:
                self._memo[key] = folded
                self._folded.append(key)
                return folded
        return None

    @contextmanager
    def _sites_from(self, frame):
        """While ``frame`` (graphc's, still running) builds many nodes, their user_site is
        looked up from the nodes' builders out to ``frame`` only: its own answer is known."""
        saved = self._site_hint
        self._site_hint = (frame, _site_above(frame, *saved))
        try:
            yield
        finally:
            self._site_hint = saved

    @contextmanager
    def _protecting(self, targets):
        """While derivatives with respect to ``targets`` are built, sharing avoids them."""
        saved = self._protected
        self._protected = saved | {t.id for t in targets}
        try:
            yield
        finally:
            self._protected = saved

    def _drop_unused(self, start: int, results) -> None:
        """Remove the nodes appended since ``start`` that no node of ``results`` uses.

        The graph stays append-only for everyone else: only nodes built during the current
        derivative call, which nobody outside holds, go; the survivors after the first dropped
        one are renumbered in order, and the sharing index follows them.
        """
        tail = self._nodes[start:]
        alive = bytearray(len(tail))  # by position in the tail
        for r in results:
            if r is not None and r.id >= start:
                alive[r.id - start] = 1
        for k in range(len(tail) - 1, -1, -1):
            if alive[k]:
                for x in tail[k].inputs:
                    if x.id >= start:
                        alive[x.id - start] = 1
        if all(alive):
            return
        first = start + alive.index(0)
        moved = self._nodes[first:]
        flags = alive[first - start:]
        kept = [n for n, a in zip(moved, flags) if a]
        dropped = [n for n, a in zip(moved, flags) if not a]
        dead = set(dropped)  # nodes hash by identity
        memo, alternates, by_name = self._memo, self._alternates, self._by_name
        # Index entries that give or read a dropped node go (keys hold nodes, not ids, so the
        # others stay right through the renumbering). A node's own entry reads only its inputs,
        # which live while it does; a folded constant's entry reads other nodes: it is logged.
        for key in self._folded:
            found = memo.get(key)
            if found is not None and (found in dead or not dead.isdisjoint(key[1])):
                del memo[key]
        for node in dropped:
            key = _structural_key(node.op, node.inputs, node.attrs)
            if key is not None:
                if memo.get(key) is node:
                    del memo[key]
                if alternates.get(key) is node:
                    del alternates[key]
            del by_name[node.name]
        lists = self._consumers
        if len(lists) > start:  # the consumer index reached into the tail: index it again
            for node in tail[:len(lists) - start]:
                for x in node.inputs:
                    while x.id < start and lists[x.id] and lists[x.id][-1].id >= start:
                        lists[x.id].pop()  # (the tail's consumers come last)
            del lists[start:]
        setter = object.__setattr__
        for new, node in enumerate(kept, first):
            name, op = node.name, node.op
            if name == f"{op}_{node.id}":  # a generated name follows the id, when that one is free
                fresh = f"{op}_{new}"
                if fresh not in by_name:
                    del by_name[name]
                    by_name[fresh] = node
                    setter(node, "name", fresh)
            setter(node, "id", new)
        del self._nodes[first:]
        self._nodes.extend(kept)

    def _fold(self, op, inputs, attrs, dtype) -> Optional[Node]:
        """A constant for ``op`` applied to constants, or None to build the node as usual (a
        kernel that fails here fails again at run time, where the error names the node)."""
        from .ops.registry import get as get_op

        args = [x.attrs["value"].item() if x.attrs["weak"] else x.attrs["value"] for x in inputs]
        try:
            with np.errstate(all="ignore"):
                value = np.asarray(get_op(op).kernel(*args, **attrs))
        except Exception:
            return None
        if all(x.attrs["weak"] for x in inputs) and value.ndim == 0:
            scalar = value.item()  # weak in, weak out: keeps NumPy's promotion of the result
            if np.asarray(scalar).dtype == dtype:
                return self._weak_constant(scalar)
        return self.constant(np.asarray(value, dtype=dtype))

    def _rename(self, node: Node, name: str) -> str:
        """Give ``node`` the printable ``name``, made unique with a suffix; returns the name
        given. Only for nodes that still carry the name :meth:`_fresh_name` gave them."""
        unique, k = name, 1
        while unique in self._by_name:
            unique, k = f"{name}_{k}", k + 1
        del self._by_name[node.name]
        object.__setattr__(node, "name", unique)
        self._by_name[unique] = node
        return unique

    def _fresh_name(self, op: str) -> str:
        name = f"{op}_{len(self._nodes)}"
        while name in self._by_name:
            name += "_"
        return name

    # -- running ------------------------------------------------------------------------------
    def run(self, fetches: Any, feed: Optional[dict] = None) -> Any:
        """Compute ``fetches`` (a node, or a list/tuple/dict of nodes; same structure back).

        ``feed`` maps nodes or names to values. Only ancestors of the fetches are computed,
        each once; any node may be fed.
        """
        from .runtime import run
        return run(self, fetches, feed)

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph``: node ids as keys, one edge per input (``x * x`` has two)."""
        import networkx as nx

        out = nx.MultiDiGraph()
        for n in self._nodes:
            out.add_node(n.id, op=n.op, name=n.name, shape=n.shape, dtype=str(n.dtype),
                         derivative=n.derivative)
            for i, x in enumerate(n.inputs):
                out.add_edge(x.id, n.id, index=i)
        return out


_PAUSES = [0, False]  # derivative builds under way (all threads), collector on before them
_PAUSES_LOCK = threading.Lock()


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector waits while derivatives are built. Everything they
    make stays alive (nodes, the sharing index), yet each full collection walks the whole,
    growing graph again: a quarter of the build time at 150k nodes, for nothing. Collection
    resumes when the last build ends (and only if it was on before the first began)."""
    with _PAUSES_LOCK:
        if _PAUSES[0] == 0:
            _PAUSES[1] = _gc.isenabled()
            _gc.disable()
        _PAUSES[0] += 1
    try:
        yield
    finally:
        with _PAUSES_LOCK:
            _PAUSES[0] -= 1
            if _PAUSES[0] == 0 and _PAUSES[1]:
                _gc.enable()


_NO_ATTRS: Mapping = MappingProxyType({})  # the attrs of every node without any (most)
_WEAK_TYPES = (float, int, bool)
_WEAK_KEYS: dict = {}  # (type, exact value) -> structural key of that weak constant


def _neutral_one(one: Node, other: Node) -> bool:
    from .ops.common import neutral_one  # the ops package imports this module
    global _neutral_one
    _neutral_one = neutral_one
    return neutral_one(one, other)


def has_fresh_name(node: Node) -> bool:
    """Whether ``node`` carries the name graphc made up for it (``mul_28``), not a user's."""
    stem = node.name.rstrip("_")
    return stem == f"{node.op}_{node.id}"


_UNSHARED = frozenset({"placeholder", "variable"})  # each one is its own value
_ONE_OPS = frozenset({"constant", "broadcast_to"})  # what a known one is built by


def _structural_key(op: str, inputs: tuple, attrs: dict):
    """What makes two nodes the same computation, or None for nodes never shared."""
    if op in _UNSHARED or (op == "constant" and attrs["value"].size > 64):
        return None
    # inputs by identity, not id: dropping unused derivative nodes renumbers the survivors
    return (op, tuple(inputs), attrs_key(attrs))


def _problem(op: str, name, text: str) -> str:
    """A message about a source node that could not be built: op, name, the user's line (a
    nameless constant is an op's input: the op's builder adds its own name and line)."""
    if name is None:
        return text
    return f"{op} '{name}': {text} (built at {user_site()})"


def _numeric_array(value, dtype, op, name) -> np.ndarray:
    """A private copy of ``value`` as a numeric (or bool) array, else DTypeError."""
    try:
        array = np.array(value, dtype=None if dtype is None else _dtype(dtype, op, name),
                         copy=True)
    except (TypeError, ValueError) as exc:
        raise DTypeError(_problem(op, name, f"cannot make an array of {value!r:.60} ({exc})")) \
            from None
    if array.dtype.kind not in "biufc":
        raise DTypeError(_problem(op, name, f"a value must be numbers or bools, not "
                                            f"{array.dtype} ({value!r:.60})"))
    return array


def _dtype(dtype, op, name) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:
        raise DTypeError(_problem(op, name, f"{dtype!r} is not a dtype")) from None


# -- the node builder every op function uses ----------------------------------------------------
_SCALARS = (bool, int, float, complex)


def graph_of(values: Iterable[Any]) -> Graph:
    graph = None
    for v in values:
        if isinstance(v, Node):
            if graph is None:
                graph = v.graph
            elif v.graph is not graph:
                raise GraphcError(f"cannot mix nodes of two graphs: {describe(v)} belongs to "
                                  "another graph than the other inputs")
    return graph


def as_node(graph: Graph, value) -> Node:
    """A node of ``graph`` for ``value``: nodes pass through, scalars and arrays become constants."""
    if isinstance(value, Node):
        if value.graph is not graph:
            raise GraphcError(f"cannot mix nodes of two graphs: {describe(value)}")
        return value
    if type(value) in _SCALARS:  # exact types: np.float64 subclasses float but is strong
        return graph._weak_constant(value)
    return graph.constant(value)


def apply(op_name: str, inputs, attrs: Optional[dict] = None, name: Optional[str] = None) -> Node:
    """Build one node: wrap inputs, infer shape and dtype, report bad input at the user's line."""
    graph, plain = None, True  # plain: all inputs are nodes of one graph (nearly always)
    for x in inputs:
        if not isinstance(x, Node):
            plain = False
        elif graph is None:
            graph = x.graph
        elif x.graph is not graph:
            plain = False
    try:
        if graph is None:
            raise GraphcError("needs at least one graphc Node among its inputs")
        if plain:
            nodes = tuple(inputs)
        else:  # two graphs fail before any constant is made for a scalar among the inputs
            graph_of(inputs)
            nodes = tuple([as_node(graph, x) for x in inputs])
    except GraphcError as exc:
        label = name or (graph._fresh_name(op_name) if graph is not None else None)
        node = f"node '{label}' " if label else ""
        raise type(exc)(f"{op_name}: {exc}; {node}built at {user_site()}") from None
    return build(graph, op_name, nodes, attrs or {}, name)


_REGISTRY: Optional[dict] = None  # graphc.ops.registry.REGISTRY, bound at the first build


def build(graph: Graph, op_name: str, nodes: tuple, attrs: dict, name: Optional[str] = None,
          site: Optional[str] = None, derivative: Optional[int] = None) -> Node:
    """The one way an op node enters a graph, from Python and from a file alike: check the
    inputs and attrs against the op's declaration, run its shape rule, append the node.

    ``site`` and ``derivative`` are the JSON loader's (default: the caller's line and the
    current derivative order).
    """
    global _REGISTRY
    if _REGISTRY is None:  # the ops package imports this module
        from .ops.registry import REGISTRY as _REGISTRY
    op = _REGISTRY.get(op_name)
    if op is None:
        from .ops.registry import get as get_op
        op = get_op(op_name)  # raises, naming the op
    try:
        op.check_call(len(nodes), attrs)
        inferred = op.infer(*nodes, **attrs)
        # the rule may put the attrs in canonical form (axis=-1 -> (1,), ...)
        if len(inferred) == 3:
            attrs = inferred[2]
        if attrs:
            attrs = op.checked_attrs(attrs)
    except (TypeError, ValueError, ArithmeticError) as exc:
        # ShapeError/DTypeError from the rule, or a bad argument it did not foresee (a zero
        # it divides by, an overflow)
        kind = type(exc) if isinstance(exc, (ShapeError, DTypeError)) else \
            DTypeError if isinstance(exc, TypeError) else ShapeError
        args = ", ".join(f"{shapes.fmt(n.shape)} {n.dtype}" for n in nodes)
        label = name or graph._fresh_name(op_name)
        where = site if site is not None else user_site()
        at = f" built at {where}" if where else ""
        raise kind(f"{op_name}: {exc}; inputs: {args}; node '{label}'{at}") from None
    shape, dtype = inferred[0], inferred[1]
    for d in shape:  # sizes as plain ints (a rule may give NumPy integers)
        if d is not None and type(d) is not int:
            shape = tuple(None if d is None else int(d) for d in shape)
            break
    return graph._add(op_name, nodes, attrs, shape, dtype, name, site, derivative)
