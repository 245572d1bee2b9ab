"""Code generation: a planned program as the text of one straight-line Python function.

Each instruction is one line ``_vN = kernel(args, attrs)`` calling a NumPy kernel bound as a
global of the generated module: no per-node dispatch at run time. Attributes are written as
literals when they print exactly (ints, tuples, strings, ...), else bound as globals; weak
Python-scalar constants are literals, so NumPy's weak promotion is preserved. Names are
numbered by position, so the same program always gives the same text.
"""
from __future__ import annotations

import functools
import itertools
import keyword
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..graph import _checked_value
from ..ops.registry import REGISTRY
from ..runtime import check_feed_value
from .ir import Program, Term
from .schedule import Plan, is_fresh

_COUNTER = itertools.count()

#: Ops written as Python operators (op -> the ufunc the operator calls, the template): for
#: arrays the operator calls the same ufunc, and for NumPy scalars (0-d results) it takes
#: NumPy's much faster scalar path, bit for bit equal.
OPERATORS = {"add": (np.add, "{} + {}"), "sub": (np.subtract, "{} - {}"),
             "mul": (np.multiply, "{} * {}"), "div": (np.true_divide, "{} / {}"),
             "neg": (np.negative, "-{}"), "square": (np.square, "{0} * {0}")}


@dataclass
class Generated:
    """The source text, its globals, and which term each line of the source computes."""

    source: str
    globals: dict
    filename: str
    lines: dict  # line number -> term
    params: list  # parameter names, one per input
    names: dict  # id(term) -> the local, global or literal that holds its value


def _literal(value):
    """``repr(value)`` when it evaluates back to an equal value of the same type, else None."""
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, tuple):
        if len(value) > 16:  # a long index list: a global, not a line Python must compile
            return None
        parts = [_literal(v) for v in value]
        if any(p is None for p in parts):
            return None
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    return None


def _params(program: Program) -> list:
    names = [t.origin.name for t in program.inputs]
    usable = all(n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("_")
                 for n in names) and len(set(names)) == len(names)
    return names if usable else [f"_a{i}" for i in range(len(names))]


class _Emitter:
    """Collects globals (kernels, constants, attrs) under deterministic names."""

    def __init__(self) -> None:
        self.globals: dict = {"_np": np, "_ndarray": np.ndarray}
        self.counts: dict = {}
        self.bound: dict = {}  # (prefix, id(value)) -> name

    def bind(self, prefix: str, value) -> str:
        key = (prefix, id(value))
        name = self.bound.get(key)
        if name is None:
            n = self.counts.get(prefix, 0)
            self.counts[prefix] = n + 1
            name = self.bound[key] = f"{prefix}{n}"
            self.globals[name] = value
        return name

    def kernel(self, op: str) -> str:
        name = f"_k_{op}"
        self.globals.setdefault(name, REGISTRY[op].kernel)
        return name

    def attr(self, value) -> str:
        text = _literal(value)
        return text if text is not None else self.bind("_a", value)


def generate(program: Program, plan: Plan, graph, *, check_numerics: bool = False,
             structure=None) -> Generated:
    """The generated function for ``program`` in ``plan``'s order.

    ``structure`` is ``(kind, keys)``: how the flat outputs go back to the user's structure
    (``"one"``, ``"list"``, ``"tuple"`` or ``"dict"``).
    """
    emit = _Emitter()
    emit.globals["_values"] = graph._values
    params = _params(program)
    names: dict[int, str] = {}
    lines: list[str] = []
    where: dict[int, Term] = {}

    # Arguments: validated like g.run feeds, with a fast path for arrays that already fit.
    header = f"def _graphc_function({', '.join(params)}):"
    for term, param in zip(program.inputs, params):
        names[id(term)] = param
        check = emit.bind("_feed", functools.partial(check_feed_value, term.origin))
        dtype = emit.bind("_dt", term.dtype)
        test = f"{param}.__class__ is not _ndarray or {param}.dtype is not {dtype}"
        if None not in term.shape:
            test += f" or {param}.shape != {_literal(term.shape)}"
        else:
            test += f" or {param}.ndim != {term.ndim}"
            for k, d in enumerate(term.shape):
                if d is not None:
                    test += f" or {param}.shape[{k}] != {d}"
        lines.append(f"    if {test}:")
        lines.append(f"        {param} = {check}({param})")

    # Leaves: variables are read at call time, constants are globals (weak ones literals);
    # placeholders are the parameters, named above.
    for term in plan.leaves:
        if term.op == "variable":
            names[id(term)] = f"_w{term.origin.id}"
            lines.append(f"    _w{term.origin.id} = _values[{term.origin.id}]"
                         f"  # variable {_quoted(term.origin.name)}")
        elif term.op == "constant":
            value = term.attrs["value"]
            if term.attrs.get("weak"):
                # A weak constant must reach NumPy as a Python scalar (inf, NaN and complex
                # have no literal): a 0-d array would promote x32 * inf to float64.
                scalar = value.item()
                names[id(term)] = _literal(scalar) or emit.bind("_c", scalar)
            else:
                names[id(term)] = emit.bind("_c", value)

    lines.append('    with _np.errstate(all="ignore"):')
    body_start = len(lines)
    for pos, term in enumerate(plan.order):
        name = f"_v{pos}"
        names[id(term)] = name
        args = [names[id(x)] for x in term.inputs]
        literal = [x.op == "constant" and bool(x.attrs.get("weak")) for x in term.inputs]
        donor = plan.reuse.get(id(term))
        if donor is not None:  # in place: the kernel call, with out= the dying buffer
            call = _call(term, args, emit, operators=False, out=names[id(donor)])
        else:
            call = _call(term, args, emit, operators=not all(literal))
        where[len(lines) + 2] = term  # +1: the def line, +1: 1-based numbering
        label = f"{term.op} {_quoted(term.origin.name)}"
        lines.append(f"        {name} = {call}  # {label}")
        if check_numerics and np.issubdtype(term.dtype, np.inexact):
            bad = emit.bind("_numerics", _numerics_checker(term))
            lines.append(f"        if not _np.isfinite({name}).all(): {bad}({name})")
            where[len(lines) + 1] = term
        drop = [names[id(x)] for x in plan.frees[pos] if x.ndim > 0]
        if drop:
            lines.append(f"        del {', '.join(drop)}")
    if len(lines) == body_start:
        lines.append("        pass")

    # Updates: computed above from the old values, checked, then written together.
    stores = []
    outputs = {id(t) for t in program.outputs}
    stored: set = set()
    for k, (var, term) in enumerate(program.updates):
        value = names[id(term)]
        direct = (is_fresh(term) and term.ndim > 0 and term.dtype == var.dtype
                  and term.shape == var.shape
                  and id(term) not in outputs and id(term) not in stored)
        stored.add(id(term))
        if direct:
            lines.append(f"    _u{k} = {value}")
        else:
            store = emit.bind("_store", functools.partial(_checked_value, var))
            lines.append(f"    _u{k} = {store}({value})")
        stores.append(f"    _values[{var.id}] = _u{k}  # update {_quoted(var.name)}")
    lines.extend(stores)

    returned: set = set()
    results = []
    for term in program.outputs:
        results.append(_result(term, names[id(term)], emit, repeated=id(term) in returned))
        returned.add(id(term))
    kind, keys = structure or ("list", None)
    if kind == "one":
        lines.append(f"    return {results[0]}")
    elif kind == "tuple":
        lines.append(f"    return ({', '.join(results)}{',' if len(results) == 1 else ''})")
    elif kind == "dict":
        pairs = ", ".join(f"{emit.attr(k)}: {r}" for k, r in zip(keys, results))
        lines.append(f"    return {{{pairs}}}")
    else:
        lines.append(f"    return [{', '.join(results)}]")

    source = header + "\n" + "\n".join(lines) + "\n"
    filename = f"<graphc-function-{next(_COUNTER)}>"
    return Generated(source, emit.globals, filename, where, params, names)


def _call(term: Term, args: list, emit: _Emitter, operators: bool,
          out: Optional[str] = None) -> str:
    """The expression computing one term (``operators``: some argument is a NumPy value, so
    a Python operator dispatches to NumPy; ``out``: the buffer an in-place kernel writes)."""
    attrs = term.attrs
    if out is None:
        ufunc, template = OPERATORS.get(term.op, (None, None))
        if operators and ufunc is not None and REGISTRY[term.op].kernel is ufunc:
            return template.format(*args)
        if term.op == "transpose" and term.ndim == 2 and tuple(attrs["axes"]) == (1, 0):
            return f"{args[0]}.T"
    parts = list(args) + [f"{k}={emit.attr(v)}" for k, v in attrs.items()]
    if out is not None:
        parts.append(f"out={out}")
    return f"{emit.kernel(term.op)}({', '.join(parts)})"


def _quoted(name: str) -> str:
    """A node name for a comment of the generated source: ``repr`` escapes line breaks, so a
    name can never end the comment and become code."""
    return repr(name)


def _result(term: Term, name: str, emit: _Emitter, repeated: bool) -> str:
    """An output as g.run returns it: a weak constant becomes a 0-d array of its dtype, and a
    value that may be an argument, a variable's storage, a constant or a (read-only) view is
    copied, so the caller may keep and modify it. 0-d arrays are mutable too, so this holds
    for every shape. A term returned a second time (two outputs that rewriting made one term)
    is copied as well: distinct outputs never share memory."""
    if term.op == "constant" and term.attrs.get("weak"):
        return f"_np.asarray({name}, dtype={emit.bind('_dt', term.dtype)})"
    if repeated or not is_fresh(term):
        return f"_np.array({name})"
    return name


def _numerics_checker(term: Term):
    from ..errors import NumericsError
    from .ir import describe_term

    def fail(value) -> None:
        array = np.asarray(value)
        kinds = [k for k, bad in (("NaN", np.isnan(array).any()), ("Inf", np.isinf(array).any()))
                 if bad]
        raise NumericsError(f"{describe_term(term)} produced {' and '.join(kinds)} "
                            f"(check_numerics is on); its inputs: "
                            + ", ".join(f"{x.op} '{x.origin.name}'" for x in term.inputs))
    return fail


def compile_source(generated: Generated):
    """Execute the generated text; returns the Python function."""
    code = compile(generated.source, generated.filename, "exec")
    namespace = dict(generated.globals)
    exec(code, namespace)
    return namespace["_graphc_function"]
