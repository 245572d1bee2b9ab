"""A bridge to SymPy for scalar graphs: ``to_sympy(node)`` and ``from_sympy(expr, mapping)``.

``to_sympy`` reads every ancestor of a node through a table of rules (op name -> SymPy form);
placeholders and variables become symbols named after them (plain, unless the caller
gives SymPy assumptions). Gradient graphs of scalars
hold shape ops (broadcast_to, sum_to, reshape, sum, ...) that are identities on one element, so
``to_sympy(gc.grad(y, x))`` can be compared with ``sympy.diff(to_sympy(y), x)``.

SymPy is imported only when a function here is called.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Optional

import numpy as np

from ..errors import GraphcError, describe
from ..graph import Graph, Node, apply, as_node
from ..ops.registry import REGISTRY
from ..runtime import needed_nodes
from ..shapes import fmt


# -- to SymPy --------------------------------------------------------------------------------------
def to_sympy(node: Node, assumptions: Optional[dict] = None) -> Any:
    """The SymPy expression of a scalar node, in symbols named after placeholders/variables.

    The symbols are plain ``sympy.Symbol(name)``, so ``expr.subs({sympy.Symbol("x"): 1})``
    works; ``assumptions`` gives them SymPy assumptions, e.g. ``{"real": True}`` (which
    ``sympy.diff`` of ``abs`` and friends needs to give real forms). Every ancestor must hold
    one element (shape ``()``, ``(1,)``, ...). Raises :class:`GraphcError` for a larger node or
    an op without a SymPy form.

    The expression is simplified as SymPy does for real symbols (graph values are real), then
    given the requested symbols. Any depth works: the graph is read in a loop, and a
    subexpression too deep for SymPy's recursive automatic simplification is left unevaluated.
    """
    import sympy as sp

    if not isinstance(node, Node):
        raise GraphcError(f"to_sympy takes a graphc Node, not {type(node).__name__}")
    wanted = _checked_assumptions(assumptions)
    # Built with real symbols: SymPy's simplification of complex ones can take exponential
    # time (tanh(1.5*tanh(1.5*tanh(x))) ...), and the graph computes real values anyway.
    try:
        building = {"real": True, **wanted}
        sp.Symbol("probe", **building)
    except (ValueError, TypeError):  # assumptions that contradict real: use them as they are
        building = wanted
    rules = _to_sympy_rules()
    # SymPy evaluates new expressions recursively through their arguments; past this depth
    # it would exceed the recursion limit (and take quadratic time), so deeper ones are built
    # unevaluated. Depth is that of the SymPy expression: x + 1 + 1 + ... stays shallow.
    deep = max(16, min(100, sys.getrecursionlimit() // 10))
    exprs: dict[int, Any] = {}
    rename: dict = {}  # building symbol -> the symbol the caller asked for
    depths: dict[int, int] = {}  # id(expr) -> its depth, for the expressions met so far
    keep: list = []  # holds the measured expressions, so that their ids stay theirs
    settings = sp.core.parameters.global_parameters  # thread-local; SymPy clears its cache
    evaluating = settings.evaluate  # at every change of mode, so change it only when needed

    def mode(on: bool) -> None:
        if settings.evaluate != on:
            settings.evaluate = on

    try:
        for n in needed_nodes(node.graph, [node], {}):  # the ancestors, in creation order
            if n.shape != (1,) * n.ndim:
                raise GraphcError(f"to_sympy works on scalar graphs, but {describe(n)} has "
                                  f"shape {fmt(n.shape)}")
            if n.op in ("placeholder", "variable"):
                exprs[n.id] = sp.Symbol(n.name, **building)
                rename[exprs[n.id]] = sp.Symbol(n.name, **wanted)
                continue
            rule = rules.get(n.op)
            if rule is None:
                raise GraphcError(f"to_sympy: the op {n.op!r} has no SymPy form "
                                  f"({describe(n)})")
            args = [exprs[x.id] for x in n.inputs]
            if args:  # (a constant needs no simplification: keep the mode as it is)
                mode(evaluating and max(_depth(a, depths, keep) for a in args) < deep)
            try:
                exprs[n.id] = rule(n, *args)
            except RecursionError:
                mode(False)  # SymPy's simplification recursed too deep: build it as it is
                try:
                    exprs[n.id] = rule(n, *args)
                except RecursionError:
                    raise GraphcError(f"to_sympy: SymPy cannot build an expression this "
                                      f"deep (at {describe(n)})") from None
        mode(False)  # the same tree, other symbols: nothing to simplify again
        return exprs[node.id] if building == wanted else _replace(exprs[node.id], rename)
    finally:
        mode(evaluating)


def _replace(expr, mapping: dict):
    """``expr.xreplace(mapping)`` in a loop (xreplace recurses), sharing unchanged subtrees.
    Keyed by identity: comparing deep SymPy trees for equality recurses too."""
    done: dict = {}
    stack = [expr]
    while stack:
        e = stack[-1]
        if id(e) in done:
            stack.pop()
            continue
        if not e.args:  # the symbols are atoms, which compare shallowly
            done[id(e)] = mapping.get(e, e)
            stack.pop()
            continue
        pending = [a for a in e.args if id(a) not in done]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        args = tuple(done[id(a)] for a in e.args)
        same = all(a is b for a, b in zip(args, e.args))
        done[id(e)] = e if same else e.func(*args)
    return done[id(expr)]


def _checked_assumptions(assumptions) -> dict:
    """The user's SymPy assumptions for the symbols, checked so that SymPy never sees junk."""
    if assumptions is None:
        return {}
    if not isinstance(assumptions, dict) or not all(
            isinstance(k, str) and isinstance(v, bool) for k, v in assumptions.items()):
        raise GraphcError(f"to_sympy: assumptions must be a dict of names to bools, such as "
                          f"{{'real': True}}, not {assumptions!r:.60}")
    import sympy as sp

    try:
        sp.Symbol("probe", **assumptions)
    except (ValueError, TypeError, AttributeError) as exc:
        raise GraphcError(f"to_sympy: SymPy does not accept the assumptions {assumptions!r:.60} "
                          f"({exc})") from None
    return dict(assumptions)


def _depth(expr, depths: dict, keep: list) -> int:
    """The depth of a SymPy expression, memoized by identity, without recursion."""
    stack = [expr]
    while stack:
        e = stack[-1]
        if id(e) in depths:
            stack.pop()
            continue
        pending = [a for a in e.args if id(a) not in depths]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        depths[id(e)] = 1 + max((depths[id(a)] for a in e.args), default=0)
        keep.append(e)
    return depths[id(expr)]


@functools.lru_cache(maxsize=None)
def _to_sympy_rules() -> dict[str, Callable]:
    import sympy as sp

    def num(x: Node, e):  # a truth value used as a number (NumPy: True is 1)
        return sp.Piecewise((1, e), (0, True)) if x.dtype == np.bool_ else e

    def truth(x: Node, e):  # a number used as a truth value (nonzero is true)
        return e if x.dtype == np.bool_ else sp.Ne(e, 0)

    def arithmetic(f):
        return lambda node, *args: f(*(num(x, e) for x, e in zip(node.inputs, args)))

    def logical(f):
        return lambda node, *args: f(*(truth(x, e) for x, e in zip(node.inputs, args)))

    def where(node, c, a, b):
        cond, x, y = node.inputs
        return sp.Piecewise((num(x, a), truth(cond, c)), (num(y, b), True))

    def cast(node, e):
        x = node.inputs[0]
        if node.dtype == np.bool_:
            return truth(x, e)
        e = num(x, e)
        if np.issubdtype(node.dtype, np.integer):  # NumPy truncates toward zero
            return sp.Piecewise((sp.floor(e), e >= 0), (sp.ceiling(e), True))
        return e

    identity = arithmetic(lambda x, *rest: x)  # shape ops on one element; `like` inputs unused
    rules = {
        "constant": lambda node: _number(node.attrs["value"]),
        "add": arithmetic(lambda a, b: a + b),
        "sub": arithmetic(lambda a, b: a - b),
        "mul": arithmetic(lambda a, b: a * b),
        "matmul": arithmetic(lambda a, b: a * b),
        "div": arithmetic(lambda a, b: a / b),
        "pow": arithmetic(lambda a, b: a ** b),
        "neg": arithmetic(lambda a: -a),
        "exp": arithmetic(sp.exp),
        "log": arithmetic(sp.log),
        "log1p": arithmetic(lambda a: sp.log(1 + a)),
        "sqrt": arithmetic(sp.sqrt),
        "square": arithmetic(lambda a: a ** 2),
        "sin": arithmetic(sp.sin),
        "cos": arithmetic(sp.cos),
        "tanh": arithmetic(sp.tanh),
        "abs": arithmetic(sp.Abs),
        "sign": arithmetic(sp.sign),
        "relu": arithmetic(lambda a: sp.Max(0, a)),
        "sigmoid": arithmetic(lambda a: 1 / (1 + sp.exp(-a))),
        "softplus": arithmetic(lambda a: sp.log(1 + sp.exp(a))),
        "sigmoid_cross_entropy": arithmetic(lambda z, t: sp.log(1 + sp.exp(z)) - z * t),
        "maximum": arithmetic(sp.Max),
        "minimum": arithmetic(sp.Min),
        "clip": arithmetic(lambda x, lo, hi: sp.Min(sp.Max(x, lo), hi)),
        "where": where,
        "less": arithmetic(sp.Lt),
        "less_equal": arithmetic(sp.Le),
        "greater": arithmetic(sp.Gt),
        "greater_equal": arithmetic(sp.Ge),
        "equal": arithmetic(sp.Eq),
        "not_equal": arithmetic(sp.Ne),
        "logical_not": logical(sp.Not),
        "logical_and": logical(sp.And),
        "logical_or": logical(sp.Or),
        "cast": cast,
        "zeros_like": lambda node, x: sp.Integer(0),
        "ones_like": lambda node, x: sp.Integer(1),
        "reduced_size": lambda node, x: sp.Integer(1),
        "softmax": lambda node, x: sp.Integer(1),
        "log_softmax": lambda node, x: sp.Integer(0),
    }
    for name in ("broadcast_to", "broadcast_like", "sum_to", "reshape", "reshape_like",
                 "expand_dims", "squeeze", "transpose", "sum", "mean", "max", "min",
                 "logsumexp", "getitem", "getitem_grad", "concatenate", "stack",
                 "concat_take", "concat_put", "stop_gradient"):
        rules[name] = identity
    # -- scalar functions SymPy has ------------------------------------------------------
    rules.update({
        "tan": arithmetic(sp.tan), "arcsin": arithmetic(sp.asin), "arccos": arithmetic(sp.acos),
        "arctan": arithmetic(sp.atan), "arctan2": arithmetic(sp.atan2),
        "sinh": arithmetic(sp.sinh), "cosh": arithmetic(sp.cosh),
        "arcsinh": arithmetic(sp.asinh), "arccosh": arithmetic(sp.acosh),
        "arctanh": arithmetic(sp.atanh), "expm1": arithmetic(lambda a: sp.exp(a) - 1),
        "log2": arithmetic(lambda a: sp.log(a, 2)), "log10": arithmetic(lambda a: sp.log(a, 10)),
        "exp2": arithmetic(lambda a: 2 ** a),
        "logaddexp": arithmetic(lambda a, b: sp.log(sp.exp(a) + sp.exp(b))),
        "hypot": arithmetic(lambda a, b: sp.sqrt(a ** 2 + b ** 2)),
        "reciprocal": arithmetic(lambda a: 1 / a), "cbrt": arithmetic(lambda a: sp.real_root(a, 3)),
        "erf": arithmetic(sp.erf), "erfc": arithmetic(sp.erfc), "erfinv": arithmetic(sp.erfinv),
        "gammaln": arithmetic(lambda a: sp.log(sp.Abs(sp.gamma(a)))),
        "digamma": arithmetic(sp.digamma),
        "polygamma": lambda node, a: sp.polygamma(node.attrs["n"], num(node.inputs[0], a)),
        "floor": arithmetic(sp.floor), "ceil": arithmetic(sp.ceiling),
        "mod": arithmetic(sp.Mod), "floor_divide": arithmetic(lambda a, b: sp.floor(a / b)),
        "silu": arithmetic(lambda a: a / (1 + sp.exp(-a))),
        "log_sigmoid": arithmetic(lambda a: -sp.log(1 + sp.exp(-a))),
        "softsign": arithmetic(lambda a: a / (1 + sp.Abs(a))),
        "prod": identity, "cumsum": identity, "cumprod": identity, "logcumsumexp": identity,
        "sort": identity, "flip": identity, "tril": identity, "triu": identity,
    })
    return rules


def _number(value: np.ndarray):
    """A SymPy number for a one-element array: exact for integers and simple fractions."""
    import sympy as sp

    v = np.asarray(value).reshape(()).item()
    if isinstance(v, bool):
        return sp.true if v else sp.false
    if isinstance(v, int):
        return sp.Integer(v)
    if isinstance(v, complex):
        raise GraphcError("to_sympy does not handle complex constants")
    if np.isnan(v):
        return sp.nan
    if np.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    exact = sp.Rational(v)  # the float's exact value; keep it when it is a simple fraction
    return exact if exact.q <= 1024 else sp.Float(v)


# -- from SymPy ----------------------------------------------------------------------------------
def from_sympy(expr: Any, mapping: dict, graph: Optional[Graph] = None) -> Node:
    """Nodes computing ``expr``, in the graph of the mapping's nodes.

    ``mapping`` sends each free symbol (a ``sympy.Symbol`` or its name) to a node. Handles
    numbers, Add, Mul, Pow, exp, log, sin, cos, tanh, Abs, sign, Max, Min, Piecewise and
    relations; anything else raises :class:`GraphcError`. ``graph`` is needed only when the
    mapping is empty. Subexpressions that SymPy shares become one node.
    """
    import sympy as sp

    nodes = {}
    for key, node in mapping.items():
        name = key if isinstance(key, str) else getattr(key, "name", None)
        if not isinstance(name, str) or not isinstance(node, Node):
            raise GraphcError("from_sympy: the mapping must send symbols (or names) to nodes")
        nodes[name] = node
    graphs = {id(n.graph): n.graph for n in nodes.values()}
    if graph is not None:
        graphs[id(graph)] = graph
    if len(graphs) != 1:
        raise GraphcError("from_sympy needs the nodes of exactly one graph (give graph= when "
                          "the mapping is empty)")
    graph = next(iter(graphs.values()))
    if isinstance(expr, (bool, int, float)):
        expr = sp.sympify(expr)  # a Python number (never a string: sympify would eval it)
    if not isinstance(expr, sp.Basic):
        raise GraphcError(f"from_sympy takes a SymPy expression, not {type(expr).__name__}")
    return as_node(graph, _Builder(nodes, sp).build(expr))


class _Builder:
    """Turns SymPy expressions into nodes, one rule per SymPy class, memoized."""

    def __init__(self, nodes: dict, sp):
        self.nodes, self.sp, self.memo = nodes, sp, {}
        self.relations = {sp.StrictLessThan: "less", sp.LessThan: "less_equal",
                          sp.StrictGreaterThan: "greater", sp.GreaterThan: "greater_equal",
                          sp.Equality: "equal", sp.Unequality: "not_equal"}
        self.functions = {sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos",
                          sp.tanh: "tanh", sp.Abs: "abs", sp.sign: "sign"}

    def build(self, e):
        """A node, or a Python number for a constant (it becomes a weak constant in an op)."""
        if e not in self.memo:
            self.memo[e] = self._convert(e)
        return self.memo[e]

    def _convert(self, e):
        sp = self.sp
        if isinstance(e, sp.Symbol):
            if e.name not in self.nodes:
                raise GraphcError(f"from_sympy: the symbol {e.name!r} has no node in the mapping")
            return self.nodes[e.name]
        if e is sp.true or e is sp.false:
            return bool(e)
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            if e is sp.zoo or e.is_real is False:
                raise GraphcError(f"from_sympy: {e} is not a real number")
            return int(e) if e.is_Integer else float(e)
        if isinstance(e, sp.Add):
            return self._add(e)
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Pow):
            return self._pow(e.base, e.exp)
        if type(e) in self.relations:
            return _op(self.relations[type(e)], self.build(e.lhs), self.build(e.rhs))
        if e.func in self.functions and len(e.args) == 1:
            return _op(self.functions[e.func], self.build(e.args[0]))
        if isinstance(e, (sp.Max, sp.Min)):
            name = "maximum" if isinstance(e, sp.Max) else "minimum"
            return functools.reduce(lambda a, b: _op(name, a, b), map(self.build, e.args))
        if isinstance(e, sp.Piecewise):
            return self._piecewise(e)
        if isinstance(e, (sp.And, sp.Or)):
            name = "logical_and" if isinstance(e, sp.And) else "logical_or"
            return functools.reduce(lambda a, b: _op(name, a, b), map(self.build, e.args))
        if isinstance(e, sp.Not):
            return _op("logical_not", self.build(e.args[0]))
        raise GraphcError(f"from_sympy: no graphc op for {type(e).__name__} (in {e})")

    def _add(self, e):
        """Terms in SymPy's order; a negated term is subtracted (x - y, not x + (-1)*y)."""
        total = None
        for term in e.args:
            negative = term.could_extract_minus_sign()
            node = self.build(-term if negative else term)
            if total is None:
                total = _op("neg", node) if negative else node
            else:
                total = _op("sub" if negative else "add", total, node)
        return total

    def _mul(self, e):
        """Factors with a negative number as exponent go to one denominator; -1 becomes neg."""
        sp = self.sp
        coeff, factors = e.as_coeff_mul()
        negative = coeff < 0
        coeff = -coeff if negative else coeff
        top, bottom = [], []
        for f in factors:
            if isinstance(f, sp.Pow) and f.exp.is_Number and f.exp < 0:
                bottom.append(self._pow(f.base, -f.exp))
            else:
                top.append(self.build(f))
        if coeff != 1:
            top.insert(0, self.build(coeff))
        result = functools.reduce(lambda a, b: _op("mul", a, b), top) if top else 1
        if bottom:
            result = _op("div", result, functools.reduce(lambda a, b: _op("mul", a, b), bottom))
        return _op("neg", result) if negative else result

    def _pow(self, base, exponent):
        sp = self.sp
        b = self.build(base)
        if exponent == 2:
            return _op("square", b)
        if exponent == sp.Rational(1, 2):
            return _op("sqrt", b)
        if exponent == -1:
            return _op("div", 1, b)
        if exponent.is_Number and exponent < 0:
            return _op("div", 1, self._pow(base, -exponent))
        return _op("pow", b, self.build(exponent))

    def _piecewise(self, e):
        """Nested where, last piece innermost; without a True piece the rest is NaN."""
        pieces = list(e.args)
        if pieces[-1].cond == self.sp.true:
            result = self.build(pieces.pop().expr)
        else:
            result = float("nan")
        for piece in reversed(pieces):
            result = _op("where", self.build(piece.cond), self.build(piece.expr), result)
        return result


def _op(name: str, *inputs):
    """Apply a registered op; a number-only call (a constant SymPy did not fold) stays a number."""
    if name not in REGISTRY:
        raise GraphcError(f"from_sympy: this graphc has no {name!r} op")
    if not any(isinstance(x, Node) for x in inputs):
        with np.errstate(all="ignore"):
            return REGISTRY[name].kernel(*(np.asarray(x) for x in inputs)).item()
    return apply(name, list(inputs))
