"""A bridge to ``scipy.optimize.minimize``: a scalar loss over several variables, seen as a
function of one flat vector, with its gradient, Hessian and Hessian-vector products.

SciPy's optimizers work on one 1-D float64 vector ``x``. :func:`scipy_objective` packs the
variables ``params`` into it (each flattened in C order, one after the other) and compiles, once
each, the functions SciPy asks for:

* ``fun`` and ``jac`` come from one compiled function giving the loss and its gradient
  together; the last result is kept, so ``fun(x)`` then ``jac(x)`` (SciPy's pattern) runs once;
* ``hess`` (the dense ``n x n`` Hessian, built by differentiating the gradient again) and
  ``hessp`` (Hessian-vector products, without forming the Hessian) are built and compiled the
  first time they are called, so a first-order method adds no second-order nodes to the graph.

The variables keep their values while SciPy works (the vector is fed in their place);
``assign(x)`` writes a solution back.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .autodiff import gradients
from .jacobians import hvp, jacobian
from .compiler import Function, function
from .errors import DTypeError, GraphcError, ShapeError, describe
from .graph import Graph, Node
from .ops import concatenate, getitem, reshape
from .runtime import resolve_feed
from .shapes import fmt

# Methods of scipy.optimize.minimize by what they take besides ``jac``.
_TAKE_HESS = frozenset({"dogleg", "trust-exact"})
_TAKE_HESSP = frozenset({"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"})


class ScipyObjective:
    """``fun``, ``jac``, ``hess`` and ``hessp`` of a scalar loss over one flat vector ``x``.

    ``x`` holds ``params`` flattened in C order, one after the other (``slices[i]`` is where
    ``params[i]`` lies); ``x0`` holds their current values. Pass the methods to
    ``scipy.optimize.minimize``, or call :meth:`minimize`, which picks what the method needs.
    """

    def __init__(self, loss: Node, params: Union[Node, Sequence[Node]],
                 feed: Optional[Mapping[Any, Any]] = None) -> None:
        if not isinstance(loss, Node):
            raise GraphcError(f"scipy_objective: the loss must be a graphc node, not "
                              f"{type(loss).__name__}")
        if loss.shape != ():
            raise ShapeError(f"scipy_objective: {describe(loss)} has shape {fmt(loss.shape)}; "
                             "the loss must be a scalar")
        if loss.dtype.kind != "f":
            raise DTypeError(f"scipy_objective: {describe(loss)} has dtype {loss.dtype}; the "
                             "loss must be a float")
        params = [params] if isinstance(params, Node) else list(params)  # one variable, or several
        if not params:
            raise GraphcError("scipy_objective: give at least one variable in params")
        for p in params:
            if not isinstance(p, Node) or p.op != "variable" or p.graph is not loss.graph:
                what = describe(p) if isinstance(p, Node) else type(p).__name__
                raise GraphcError(f"scipy_objective: params must be variables of the loss's "
                                  f"graph; {what} is not")
            if p.dtype.kind != "f":
                raise DTypeError(f"scipy_objective: {describe(p)} has dtype {p.dtype}; only "
                                 "float variables can be optimised")
        if len({p.id for p in params}) != len(params):
            raise GraphcError("scipy_objective: the same variable is given twice in params")
        self.loss = loss
        self.params = params
        self.graph: Graph = loss.graph
        sizes = [p.value.size for p in params]  # variables' shapes are known
        ends = np.cumsum(sizes).tolist()
        self.slices = [slice(end - n, end) for n, end in zip(sizes, ends)]
        self.size = int(ends[-1])
        self._feed_nodes, self._feed_values = self._resolve(feed or {})
        self.grads = gradients(loss, params)
        self._fun_jac = self._compile([loss, *self.grads])
        self._hess: Optional[Function] = None
        self._hessp: Optional[Function] = None
        self._last: Optional[tuple] = None  # (x, loss, gradient) of the last evaluation

    def _resolve(self, feed: Mapping[Any, Any]) -> tuple:
        checked = resolve_feed(self.graph, dict(feed))  # as g.run checks a feed, once
        every = self.graph.nodes
        nodes = [every[i] for i in checked]
        for node in nodes:
            if node in self.params:
                raise GraphcError(f"scipy_objective: {describe(node)} is both optimised and fed")
        return nodes, list(checked.values())

    def _compile(self, outputs: list, extra: Sequence[Node] = ()) -> Function:
        return function([*self.params, *self._feed_nodes, *extra], outputs)

    # -- the flat vector ------------------------------------------------------------------------
    @property
    def x0(self) -> np.ndarray:
        """The variables' current values as one flat float64 vector."""
        return self.pack([p.value for p in self.params])

    def pack(self, values: Sequence[Any]) -> np.ndarray:
        """One flat float64 vector from one array per variable (C order)."""
        if len(values) != len(self.params):
            raise GraphcError(f"pack: {len(self.params)} arrays expected, got {len(values)}")
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])

    def unpack(self, x: Any) -> list:
        """One array per variable (its shape and dtype) from the flat vector ``x``."""
        x = np.asarray(x)
        if x.shape != (self.size,):
            raise ShapeError(f"the flat vector of {', '.join(p.name for p in self.params)} has "
                             f"{self.size} entries; got an array of shape {x.shape}")
        return [x[s].reshape(p.shape).astype(p.dtype) for s, p in zip(self.slices, self.params)]

    def assign(self, x: Any) -> None:
        """Write the flat vector ``x`` (a solution) into the variables."""
        for p, value in zip(self.params, self.unpack(x)):
            p.value = value

    # -- what scipy.optimize.minimize calls -------------------------------------------------------
    def _evaluate(self, x: Any) -> tuple:
        x = np.asarray(x, dtype=np.float64)
        last = self._last
        if last is None or not np.array_equal(last[0], x):
            loss, *grads = self._fun_jac(*self.unpack(x), *self._feed_values)
            self._last = last = (x.copy(), float(loss), self.pack(grads))
        return last

    def fun(self, x: Any) -> float:
        """The loss at ``x``."""
        return self._evaluate(x)[1]

    def jac(self, x: Any) -> np.ndarray:
        """The gradient at ``x``, flat (shape ``(size,)``, float64)."""
        return self._evaluate(x)[2].copy()

    def fun_and_jac(self, x: Any) -> tuple:
        """``(loss, gradient)`` at ``x``: for ``minimize(obj.fun_and_jac, x0, jac=True)``."""
        _, loss, grad = self._evaluate(x)
        return loss, grad.copy()

    def hess(self, x: Any) -> np.ndarray:
        """The Hessian at ``x``: a dense ``(size, size)`` float64 array."""
        if self._hess is None:
            flat = self._flat(self.grads)
            # Column block j: the Jacobian of the flat gradient with respect to params[j].
            blocks = [reshape(jacobian(flat, p), (self.size, -1)) for p in self.params]
            H = blocks[0] if len(blocks) == 1 else concatenate(blocks, axis=1)
            self._hess = self._compile([H])
        (H,) = self._hess(*self.unpack(x), *self._feed_values)
        return np.asarray(H, dtype=np.float64)

    def hessp(self, x: Any, p: Any) -> np.ndarray:
        """The Hessian at ``x`` times the vector ``p`` (flat, float64), without the Hessian."""
        if self._hessp is None:
            v = self.graph.placeholder(self._fresh("hessp_vector"), (self.size,),
                                       np.result_type(*(q.dtype for q in self.params)))
            parts = [reshape(getitem(v, s), q.value.shape)
                     for s, q in zip(self.slices, self.params)]
            products = hvp(self.loss, self.params, parts)  # sum_j H_ij v_j, for each i
            self._hessp = self._compile([self._flat(products)], extra=[v])
        p = np.asarray(p, dtype=np.float64)
        if p.shape != (self.size,):
            raise ShapeError(f"hessp: the vector has shape {p.shape}; expected ({self.size},)")
        (Hp,) = self._hessp(*self.unpack(x), *self._feed_values, p)
        return np.asarray(Hp, dtype=np.float64)

    def _flat(self, nodes: list) -> Node:
        flat = [reshape(n, (-1,)) for n in nodes]
        return flat[0] if len(flat) == 1 else concatenate(flat)

    def _fresh(self, stem: str) -> str:
        name, k = stem, 0
        while name in self.graph:
            k += 1
            name = f"{stem}_{k}"
        return name

    def minimize(self, method: str = "trust-ncg", *, assign: bool = True,
                 **kwargs: Any) -> Any:
        """``scipy.optimize.minimize`` from ``x0`` with what ``method`` uses (``jac``, and
        ``hess`` or ``hessp``); writes the solution into the variables unless ``assign`` is
        False. Returns SciPy's ``OptimizeResult``."""
        from scipy.optimize import minimize

        key = method.lower()
        if key in _TAKE_HESS:
            kwargs.setdefault("hess", self.hess)
        elif key in _TAKE_HESSP:
            kwargs.setdefault("hessp", self.hessp)
        result = minimize(self.fun, self.x0, method=method, jac=self.jac, **kwargs)
        if assign:
            self.assign(result.x)
        return result

    def __repr__(self) -> str:
        names = ", ".join(f"{p.name}{fmt(p.shape)}" for p in self.params)
        return f"<ScipyObjective of {describe(self.loss)} over {self.size} entries: {names}>"


def scipy_objective(loss: Node, params: Union[Node, Sequence[Node]],
                    feed: Optional[Mapping[Any, Any]] = None) -> ScipyObjective:
    """A :class:`ScipyObjective`: ``loss`` (a scalar node) as a function of one flat vector of
    the variables ``params`` (one variable or a list of them), with ``feed`` (placeholders or names to values) held fixed.

    >>> obj = gc.scipy_objective(loss, [W, b], feed={X: X_train, y: y_train})
    >>> res = scipy.optimize.minimize(obj.fun, obj.x0, jac=obj.jac, hessp=obj.hessp,
    ...                               method="trust-ncg")
    >>> obj.assign(res.x)
    """
    return ScipyObjective(loss, params, feed)
