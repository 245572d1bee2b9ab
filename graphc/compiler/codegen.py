"""Code generation: a planned program as the text of one straight-line Python function.

Each instruction is one line ``_vN = kernel(args, attrs)`` calling a NumPy kernel bound as a
global of the generated module: no per-node dispatch at run time. Attributes are written as
literals when they are of the exact built-in types that print exactly (int, tuple, str, ...),
else bound as globals; weak Python-scalar constants are literals, so NumPy's weak promotion
is preserved. No user object ever reaches the source as code: output keys, container types
and any other value are bound as globals (data), and names in comments are escaped with the
built-in ``str.__repr__``. Names are numbered by position, so the same program always gives
the same text. Every call binds (positional-only parameters with a default, the rest
gathered) and the function explains its own errors (:func:`bind_hooks`), so a ``Function``
hands calls straight to it.
"""
from __future__ import annotations

import collections
import functools
import itertools
import keyword
import math
import unicodedata
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import FeedError, GraphcError, describe
from ..graph import _checked_value
from ..ops.nn import _relu, _sigmoid, _softplus  # kernels the float path writes out
from .ir import OPS as REGISTRY  # the graph ops and the compiler's own (fused terms)
from ..runtime import check_feed_value, errors_ignored, errors_restored, narrow_float_max
from .ir import Program, Term
from .rules import _is_identity
from .schedule import Plan, is_fresh, masked_fill

_COUNTER = itertools.count()

#: Ops written as Python operators (op -> the ufunc the operator calls, the template): for
#: arrays the operator calls the same ufunc, and for NumPy scalars (0-d results) it takes
#: NumPy's much faster scalar path, bit for bit equal.
OPERATORS = {"add": (np.add, "{} + {}"), "sub": (np.subtract, "{} - {}"),
             "mul": (np.multiply, "{} * {}"), "div": (np.true_divide, "{} / {}"),
             "neg": (np.negative, "-{}"), "square": (np.square, "{0} * {0}")}


def operator_fits(op: str, dtype: np.dtype) -> bool:
    """Whether :data:`OPERATORS`' template for ``op`` gives the ufunc's dtype over inputs of
    ``dtype``: ``x * x`` of bools is bool, but ``np.square`` of bools is int8 (checked over
    every dtype by tests/test_result_types.py)."""
    return not (op == "square" and dtype == np.bool_)


#: Ops whose kernels never raise a floating-point warning, for any dtype (they move or select
#: values): a program of these alone needs no error state set around it.
QUIET_OPS = frozenset({"transpose", "reshape", "reshape_like", "expand_dims", "squeeze",
                       "broadcast_to", "broadcast_like", "stop_gradient", "getitem",
                       "stack", "concatenate", "where", "zeros_like", "ones_like"})


@dataclass
class Generated:
    """The source text, its globals, and which term each line of the source computes."""

    source: str
    globals: dict
    filename: str
    lines: dict  # line number -> term
    params: list  # parameter names, one per input
    names: dict  # id(term) -> the local, global or literal that holds its value
    arguments: dict  # line number -> the input term whose argument that line converts


def _literal(value):
    """``repr(value)`` when it evaluates back to an equal value of the same type, else None.

    Only the exact built-in types qualify: the repr of a subclass (``np.str_``, ``np.float64``,
    an ``IntEnum``, a user's ``str`` with its own ``__repr__``) is user code, never source."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return repr(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else None
    if kind is tuple:
        if len(value) > 16:  # a long index list: a global, not a line Python must compile
            return None
        parts = [_literal(v) for v in value]
        if any(p is None for p in parts):
            return None
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    return None


def _is_plain_identifier(name) -> bool:
    """Whether ``name`` can be a parameter of the generated function as it is: an identifier
    that NFKC normalisation (which Python applies to identifiers) leaves unchanged, no keyword,
    and not starting with ``_`` (the generated names all do)."""
    return (type(name) is str and name.isidentifier() and not keyword.iskeyword(name)
            and not name.startswith("_") and unicodedata.normalize("NFKC", name) == name)


def _params(program: Program) -> list:
    """The generated function's parameters: the input names when they all are plain
    identifiers, else ``_p0, _p1, ...`` (keywords are then mapped by the Function)."""
    names = [t.origin.name for t in program.inputs]
    if all(map(_is_plain_identifier, names)) and len(set(names)) == len(names):
        return names
    return [f"_p{i}" for i in range(len(names))]


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
        kernel = REGISTRY[op].kernel
        if not (op.isascii() and op.isidentifier()):  # an op named by a user: no source
            return self.bind("_k", kernel)
        name = f"_k_{op}"
        self.globals.setdefault(name, kernel)
        return name

    def attr(self, value) -> str:
        text = _literal(value)
        return text if text is not None else self.bind("_attr", value)


def generate(program: Program, plan: Plan, graph, *, check_numerics: bool = False,
             structure=None, trust_input: bool = False, fastmath: bool = False) -> Generated:
    """The generated function for ``program`` in ``plan``'s order.

    ``structure`` is the spec of :func:`graphc.runtime.structure`: how the flat outputs go
    back into the user's (possibly nested) structure; ``None`` returns the first output.
    ``trust_input`` leaves the arguments unchecked (see :func:`graphc.function`);
    ``fastmath`` lets the Python-float path use ``math.exp`` (see :func:`_float_path`).
    """
    emit = _Emitter()
    emit.globals["_values"] = graph._values
    params = _params(program)
    names: dict[int, str] = {}
    lines: list[str] = []
    where: dict[int, Term] = {}
    taking: dict[int, Term] = {}  # line -> input (a trusted conversion: see argument_error)

    # Arguments: validated like g.run feeds, with a fast path for arrays that already fit.
    # The parameters are positional-only with a default, and the rest is gathered, so a call
    # always binds: keywords and wrong counts go to ``_rebind`` (the Function's), and every
    # error is explained by ``_explain``; the Function calls this function with no frame
    # of its own between (see :func:`bind_hooks`).
    emit.globals.update(_NO=MISSING, _GraphcError=GraphcError, _float=float)
    header = "def _graphc_function(" + "".join(f"{p}=_NO, " for p in params) + \
        ("/, " if params else "") + "*_more, **_named):"
    prologue = ["    if _more or _named" + "".join(f" or {p} is _NO" for p in params) + ":",
                f"        return _rebind(_more, _named, {_tuple_display(params)})"]
    arena = plan.arena  # the buffers kept across calls: one arena per running call
    if arena is not None:
        prologue.extend(_arena_taken(arena, emit))
    prologue.append("    try:")
    if not check_numerics:  # (the float path has no per-term checks)
        floats, converting = _float_path(program, plan, emit,
                                         dict(zip(map(id, program.inputs), params)), structure,
                                         fastmath=fastmath, trust_input=trust_input)
        taking.update((len(lines) + k + 2, term) for k, term in converting.items())
        lines.extend(floats)
    for term, param in zip(program.inputs, params):
        names[id(term)] = param
        check = emit.bind("_feed", functools.partial(check_feed_value, term.origin))
        dtype = emit.bind("_dt", term.dtype)
        test = f"{param}.__class__ is not _ndarray or {param}.dtype is not {dtype}"
        if None not in term.shape:
            test += f" or {param}.shape != {_literal(tuple(map(int, term.shape)))}"
        else:
            test += f" or {param}.ndim != {term.ndim}"
            for k, d in enumerate(term.shape):
                if d is not None:
                    test += f" or {param}.shape[{k}] != {int(d)}"
        scalar = term.shape == () and term.dtype.kind == "f"
        if trust_input:  # the caller promised values of the right dtype and shape
            if scalar:  # a Python float, a NumPy scalar or a 0-d array: a NumPy scalar
                taking[len(lines) + 2] = term
                lines.append(f"    {param} = {emit.bind('_sc', term.dtype.type)}({param})")
            elif term.shape == ():  # a Python int or bool too: a 0-d array, as checked
                taking[len(lines) + 2] = term
                lines.append(f"    if {param}.__class__ is not _ndarray: "
                             f"{param} = _np.asarray({param}, {dtype})")
            continue
        if scalar:
            # A NumPy scalar, whatever came: ops on NumPy scalars take NumPy's fast scalar path
            # (0.05-0.1 us an op, against 0.3 us on 0-d arrays), with the same values; a scalar
            # of the dtype is used as it is, a Python float converted in 0.1 us, not the 1 us
            # of the check.
            kind = emit.bind("_sc", term.dtype.type)
            lines.append(f"    if {param}.__class__ is not {kind}:")
            lines.append(f"        if {param}.__class__ is _ndarray and {param}.dtype is {dtype} "
                         f"and {param}.shape == ():")
            lines.append(f"            {param} = {param}[()]")
            lines.append("        else:")
            test = f"{param}.__class__ is _float"  # (an input may be named float)
            big = narrow_float_max(term.dtype)  # (float32: a Python float may overflow it)
            if big is not None:
                test += f" and -{big!r} <= {param} <= {big!r}"
            lines.append(f"            {param} = {kind}({param}) if {test} "
                         f"else {check}({param})[()]")
        else:
            lines.append(f"    if {test}:")
            lines.append(f"        {param} = {check}({param})")

    trusted = set(map(id, program.inputs)) if trust_input else set()
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

    # inf and NaN are values here (as in g.run): NumPy's warnings are off for the body.
    quiet = all(term.op in QUIET_OPS for term in plan.order)
    if not quiet:
        emit.globals["_fp_enter"], emit.globals["_fp_exit"] = errors_ignored, errors_restored
        lines.append("    _fp = _fp_enter()")
        lines.append("    try:")
    else:
        lines.append("    if True:  # no floating-point warning possible: no error state to set")
    body_start = len(lines)
    for pos, term in enumerate(plan.order):
        name = f"_v{pos}"
        names[id(term)] = name
        args = [names[id(x)] for x in term.inputs]
        literal = [x.op == "constant" and bool(x.attrs.get("weak")) for x in term.inputs]
        donor = plan.reuse.get(id(term))
        place = arena.slot.get(id(term)) if arena is not None else None
        if donor is not None:  # in place: the kernel call, with out= the dying buffer
            call = _call(term, args, emit, operators=False, out=names[id(donor)])
        elif place is not None:  # the first writer of a kept buffer: out= its arena place
            call = _arena_call(term, args, emit, f"_a[{place}]")
        else:
            call = None
        plain = _call(term, args, emit, operators=not all(literal))
        if call is None:
            call = plain
        elif plan.layout_checks[id(term)]:  # out= only where NumPy's result is C-ordered too
            # (a trusted argument may be no ndarray, e.g. a list: then the plain call)
            test = " and ".join(
                (f"{args[k]}.__class__ is _ndarray and " if id(term.inputs[k]) in trusted
                 else "") + f"{args[k]}.flags.c_contiguous"
                for k in plan.layout_checks[id(term)])
            call = f"{call} if {test} else {plain}"
        where[len(lines) + 2] = term  # +1: the def line, +1: 1-based numbering
        op = term.op if term.op.isascii() and term.op.isidentifier() else _quoted(term.op)
        label = f"{op} {_quoted(term.origin.name)}"
        lines.append(f"        {name} = {call}  # {label}")
        if REGISTRY[term.op].checked:  # a user's kernel: its output must fit its rule
            check = emit.bind("_check", functools.partial(_output_checker, term))
            lines.append(f"        {name} = {check}({name}, {', '.join(args)})")
            where[len(lines) + 1] = term
        if check_numerics and np.issubdtype(term.dtype, np.inexact):
            bad = emit.bind("_numerics", _numerics_checker(term))
            lines.append(f"        if not _np.isfinite({name}).all(): {bad}({name})")
            where[len(lines) + 1] = term
        drop = [names[id(x)] for x in plan.frees[pos] if x.ndim > 0]
        if drop:
            lines.append(f"        del {', '.join(drop)}")
    if len(lines) == body_start:
        lines.append("        pass")
    if not quiet:
        lines.append("    finally:")
        lines.append("        _fp_exit(_fp)")

    # Updates: computed above from the old values, checked, then written together, in one
    # dict update (a call that reads the variables meanwhile sees the old or the new values).
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
            where[len(lines) + 2] = term
            lines.append(f"    _u{k} = {store}({value})")
        stores.append((var, f"_u{k}"))
    if len(stores) == 1:
        var, value = stores[0]
        lines.append(f"    _values[{var.id}] = {value}  # update {_quoted(var.name)}")
    elif stores:
        lines.append("    _values.update({")
        lines.extend(f"        {var.id}: {value},  # update {_quoted(var.name)}"
                     for var, value in stores)
        lines.append("    })")

    # Results: copied where g.run would copy (each copy on its own line, so that a failure
    # names the node), then put back into the user's structure.
    returned: set = set()
    results = []
    for k, term in enumerate(program.outputs):
        result = _result(term, names[id(term)], emit, repeated=id(term) in returned,
                         scalar=k in program.scalar_outputs)
        returned.add(id(term))
        if result != names[id(term)]:
            where[len(lines) + 2] = term
            lines.append(f"    _r{len(results)} = {result}")
            result = f"_r{len(results)}"
        results.append(result)
    lines.append(f"    return {_assemble(structure if structure is not None else 0, results, emit)}")

    epilogue = ["    except _GraphcError:",
                "        raise",
                "    except Exception as _exc:  # a graphc error naming the node that failed",
                "        raise _explain(_exc) from _exc"]
    if arena is not None:  # (after the error is explained: its values are still the call's)
        epilogue += ["    finally:", "        _arena_give(_a)"]
    source = "\n".join([header, *prologue, *("    " + line for line in lines), *epilogue]) + "\n"
    where = {k + len(prologue): term for k, term in where.items()}
    taking = {k + len(prologue): term for k, term in taking.items()}
    filename = f"<graphc-function-{next(_COUNTER)}>"
    return Generated(source, emit.globals, filename, where, params, names, taking)


def argument_error(term: Term, value, exc: Exception) -> GraphcError:
    """The error for an argument that a function with ``trust_input`` failed to convert (the
    promise of a fitting value was broken): the argument check's own words, as a function
    without ``trust_input`` gives them, naming the input, with the stage in front."""
    try:
        check_feed_value(term.origin, value)
    except GraphcError as error:
        reason = str(error)
    else:  # (the check takes it: the conversion's own reason)
        reason = f"cannot take {value!r:.60} for {describe(term.origin)}: {exc}"
    return FeedError(f"compiled function failed while converting its arguments (trust_input "
                     f"promised values that fit, skipping the checks): {reason}")


#: The largest finite float64, and a test that a float is 0 or not tiny (NumPy's kernels
#: may raise the underflow flag for subnormal arguments and results).
_BIG = "1.7976931348623157e+308"
_NOT_TINY = "({0} == 0.0 or 1e-150 <= _abs({0}))"
_ORDERED = "{0} > {1} or {0} < {1} or {0} == {1} != 0.0"  # no NaN, no two zeros

#: Ops the Python-float path computes: op -> (the registry kernel it stands for, the
#: expression over floats, the guard). Each gives the NumPy kernel's float64 value bit for
#: bit: ``+ - * /``, ``abs`` and ``math.sqrt`` are the same IEEE operations (all correctly
#: rounded), ``sign`` is NumPy's loop written out; the others (expression None) call NumPy's
#: own ufunc on the float. The guard is a range in which the op raises no floating-point
#: flag, so the caller's error state (which the float path never sets) cannot matter; out of
#: it (NaN, overflow, a subnormal, a pole) the call takes the NumPy path, which computes
#: under the ignoring state as g.run does.
FLOAT_OPS = {
    "add": (np.add, "{} + {}", None), "sub": (np.subtract, "{} - {}", None),
    "mul": (np.multiply, "{} * {}", None), "div": (np.true_divide, "{} / {}", None),
    "neg": (np.negative, "-{}", None), "square": (np.square, "{0} * {0}", None),
    "abs": (np.absolute, "_abs({})", None),
    "sign": (np.sign, "(1.0 if {0} > 0.0 else -1.0 if {0} < 0.0 else 0.0 if {0} == 0.0 "
                      "else {0})", None),
    "sqrt": (np.sqrt, "_sqrt({})", "{0} >= 0.0"),
    "exp": (np.exp, None, "-708.0 <= {0} <= 709.0"),
    "expm1": (np.expm1, None, f"-{_BIG} <= {{0}} <= 709.0 and {_NOT_TINY}"),
    "log": (np.log, None, f"2.2250738585072014e-308 <= {{0}} <= {_BIG}"),
    "log1p": (np.log1p, None, f"-1.0 < {{0}} <= {_BIG} and {_NOT_TINY}"),
    "tanh": (np.tanh, None, f"-{_BIG} <= {{0}} <= {_BIG} and {_NOT_TINY}"),
    # NaN and equal zeros (whose sign NumPy's loops may pick either way) go to the NumPy path
    "maximum": (np.maximum, "({0} if {0} > {1} else {1})", _ORDERED),
    "minimum": (np.minimum, "({0} if {0} < {1} else {1})", _ORDERED),
    "relu": (_relu, "({0} if {0} > 0.0 else 0.0)", "{0} > 0.0 or {0} < 0.0"),
    # bool results (Python bools; NaN compares as in NumPy) and the selection they drive
    "greater": (np.greater, "{} > {}", None), "less": (np.less, "{} < {}", None),
    "greater_equal": (np.greater_equal, "{} >= {}", None),
    "less_equal": (np.less_equal, "{} <= {}", None),
    "equal": (np.equal, "{} == {}", None), "not_equal": (np.not_equal, "{} != {}", None),
    "logical_not": (np.logical_not, "(not {})", None),
    "where": (np.where, "({1} if {0} else {2})", None),
}
#: Kernels of several NumPy steps, written out over floats (the same steps, so the same
#: values): op -> (the kernel, then for x >= 0 and for x < 0: the range in which the branch
#: runs, the last step from x and e = exp(-|x|), which is exp(-x) there and exp(x) here).
#: One comparison chain picks the branch and checks the range (out of both: the NumPy path).
FLOAT_STEPS = {
    "sigmoid": (_sigmoid, "0.0 <= {0} <= 708.0", "1.0 / (1.0 + {1})",  # 1 / (1 + e)
                "-708.0 <= {0} < 0.0", "{1} * (1.0 / (1.0 + {1}))"),  # e * (1 / (1 + e))
    "softplus": (_softplus, "0.0 < {0} <= 345.0", "{0} + _float(_log1p({1}))",  # max(x, 0) + ...
                 "-345.0 <= {0} < 0.0", "_float(_log1p({1}))"),  # 0 + log1p(e), exactly
}

#: The float ops whose expression reads each operand once (and has no guard).
_INLINE_INTO = frozenset({"add", "sub", "mul", "div", "neg", "abs", "greater", "less",
                          "greater_equal", "less_equal", "equal", "not_equal", "logical_not"})
#: The float ops whose kernels return a 0-d array (not a NumPy scalar) for 0-d inputs.
_ARRAY_RESULTS = frozenset({"where"})
#: The float ops whose value may be an argument's signalling NaN (they move or select it);
#: every other float result is an arithmetic result or passed a guard that excludes NaN.
_MAY_SIGNAL = frozenset({"neg", "abs", "sign", "where"})
_BOOL_RESULTS = frozenset({"greater", "less", "greater_equal", "less_equal", "equal",
                           "not_equal", "logical_not"})


class FloatPathExit(Exception):
    """Raised by a guard of the float path: the NumPy path computes this call."""


def _float_path(program: Program, plan: Plan, emit: _Emitter, params: dict, structure,
                fastmath: bool, trust_input: bool) -> tuple:
    """Lines computing the whole program over Python floats, taken when every argument is a
    Python float, a float64 scalar or a 0-d float64 array: for programs whose values are all
    0-d float64 (a scalar function and its gradients), made of the :data:`FLOAT_OPS` and
    :data:`FLOAT_STEPS`, with no variables, updates or checks. NumPy's 0-d
    machinery costs 0.1-0.4 us per op; a float operation 0.02 us. The values are the NumPy
    path's bit for bit: ``exp`` is NumPy's (``math.exp`` differs from it in the last bit for
    a few percent of arguments, so it is used only with ``fastmath``). A division by zero
    (which raises for floats) and a value outside a guard fall through to the NumPy path
    (which gives inf or NaN as g.run does).

    An argument that is not a float becomes one (``float()``: exact) if it is a float64
    scalar or 0-d array; any other kind leaves for the NumPy path (an exception: 0.4 us on
    a path of several), which takes the converted floats as they are. With ``trust_input``
    (the caller promised 0-d float64 values) every argument is converted, with no test.
    Returns the lines (none if the program does not qualify) and, by line index, the input
    each trusted conversion line converts (for :func:`argument_error`).

    Outputs are of the kernels' types, as on the NumPy path: NumPy scalars, or a 0-d array
    for ``where``. A float64 scalar is made by adding ``np.float64(-0.0)`` (NumPy's scalar
    arithmetic: 0.05 us, against 0.06 for the ``np.float64`` constructor): ``v + -0.0`` is
    ``v`` for every float, zeros of both signs and NaN payloads included, and raises no
    flag, except for a signalling NaN, so values that may be an argument's
    (:data:`_MAY_SIGNAL`) use the constructor. (With denormals-are-zero set in the CPU, which
    NumPy never sets, the add would flush a subnormal result to zero.)"""
    f64 = np.dtype(np.float64)
    if (program.updates or not program.inputs or not plan.order
            or any(t.shape != () or t.dtype != f64 for t in program.inputs)
            or any(t.op == "constant" for t in program.outputs)):
        return [], {}
    local = {id(t): params[id(t)] for t in program.inputs}  # id(term) -> a float
    # An int or bool constant that meets float64 (an operand of an op computing in float64,
    # or compared with a float) is cast to float64 by NumPy, weak Python int or not: its
    # correctly rounded float(), which Python's own int-float comparisons never use (2**60 + 1
    # equals 2.0**60 in NumPy, not in Python). Elsewhere (compared with a bool) it stays exact.
    as_float: dict = {}  # id(constant) -> the constant as NumPy casts it to float64
    for term in plan.leaves:
        if term.op == "placeholder":
            continue
        if term.op != "constant" or term.shape != () or term.dtype.kind not in "fiub":
            return [], {}
        value = term.attrs["value"].item()
        local[id(term)] = _literal(value) or emit.bind("_c", value)
        if type(value) in (int, bool):
            cast = float(value)
            as_float[id(term)] = _literal(cast)  # (finite: |value| < 2**64)
            if cast == value:  # the same value; float-float operations are the fast ones
                local[id(term)] = as_float[id(term)]
    # A value used once, by an operator that reads each operand once, is written inside that
    # operator's expression: the same operations without a local to store and load.
    uses = collections.Counter(id(x) for t in plan.order for x in t.inputs)
    uses.update(id(t) for t in program.outputs)
    inside = {id(x) for t in plan.order if t.op in _INLINE_INTO for x in t.inputs
              if uses[id(x)] == 1}
    exp = "_math_exp({})" if fastmath else "_float(_exp({}))"
    body = []
    for pos, term in enumerate(plan.order):
        kernel = REGISTRY[term.op].kernel
        steps = term.op in FLOAT_STEPS and kernel is FLOAT_STEPS[term.op][0]
        dtype = np.dtype(bool) if term.op in _BOOL_RESULTS else f64
        if (term.shape != () or term.dtype != dtype or REGISTRY[term.op].checked
                or not (steps or (term.op in FLOAT_OPS and kernel is FLOAT_OPS[term.op][0]))):
            return [], {}
        in_float64 = term.dtype == f64 or any(x.dtype.kind == "f" for x in term.inputs)
        args = [as_float[id(x)] if in_float64 and id(x) in as_float else local[id(x)]
                for x in term.inputs]
        if in_float64:  # a comparison's bool meeting float64 is 1.0 or 0.0, as NumPy casts
            # it (selected as it is, True would stay a bool: np.exp(True) is float16)
            args = [f"_float({a})" if x.dtype.kind == "b" and id(x) not in as_float
                    and not (term.op == "where" and k == 0) else a
                    for k, (x, a) in enumerate(zip(term.inputs, args))]
        name = local[id(term)] = f"_f{pos}"
        if steps:  # the branch of x's sign, e = exp(-|x|) in (0, 1], the kernel's last step
            x, e = args[0], f"_e{pos}"
            _, plus_range, plus_last, minus_range, minus_last = FLOAT_STEPS[term.op]
            for keyword, test, last, arg in (("if", plus_range, plus_last, f"-{x}"),
                                             ("elif", minus_range, minus_last, x)):
                if last.count("{1}") == 1:  # e read once: no local for it
                    step = f"{name} = {last.format(x, exp.format(arg))}"
                else:
                    step = f"{e} = {exp.format(arg)}; {name} = {last.format(x, e)}"
                body.append(f"{keyword} {test.format(x)}: {step}")
            body.append("else: raise _FloatPathExit")
            continue
        _, template, guard = FLOAT_OPS[term.op]
        if guard is not None:
            body.append(f"if not ({guard.format(*args)}): raise _FloatPathExit")
        if fastmath and term.op == "exp":
            template = "_math_exp({})"
        elif template is None:  # NumPy's ufunc on the float, as a float
            template = f"_float({emit.kernel(term.op)}({{}}))"
        if id(term) in inside:
            local[id(term)] = f"({template.format(*args)})"
        else:
            body.append(f"{name} = {template.format(*args)}")
    emit.globals.update(_float64=np.float64, _true=np.True_, _false=np.False_, _dt_float64=f64,
                        _minus_zero=np.float64(-0.0), _FloatPathExit=FloatPathExit,
                        _exp=np.exp, _log1p=np.log1p, _sqrt=math.sqrt, _math_exp=math.exp,
                        _float=float, _abs=abs)  # (an input may be named float or abs)
    returned: set = set()
    results = []
    for k, term in enumerate(program.outputs):
        name = local[id(term)]
        result = _result(term, name, emit, repeated=id(term) in returned, arrays=False)
        returned.add(id(term))
        scalar = k in program.scalar_outputs  # g.run gives a NumPy scalar, copy or not
        if result != name and not scalar:  # a copy (an argument, a value returned twice)
            results.append(result)
        elif not scalar:  # as the kernels give: np.where's 0-d array, sum_to's, ...
            results.append(f"_np.array({name})")
        elif term.dtype == bool:  # NumPy scalars from ufuncs: np.True_ or np.False_
            results.append(f"(_true if {name} else _false)")
        elif term.op in _MAY_SIGNAL or result != name or term.op in _ARRAY_RESULTS:
            results.append(f"_float64({name})")
        else:
            results.append(f"{name} + _minus_zero")
    convert = []  # each argument as a float, or (not one of the three kinds) the NumPy path
    converting = {}  # index of a line in the returned list -> the input it converts
    for term in program.inputs:
        p = params[id(term)]
        convert.append(f"if {p}.__class__ is not _float:")
        if trust_input:
            converting[len(convert) + 2] = term  # (after the comment and the try line)
            convert.append(f"    {p} = _float({p})")
        else:
            convert += [f"    if {p}.__class__ is _float64 or {p}.__class__ is _ndarray and "
                        f"{p}.dtype is _dt_float64 and not {p}.ndim: {p} = _float({p})",
                        "    else: raise _FloatPathExit"]
    return [
        "    # floats, float64 scalars or 0-d arrays: the same values over Python floats",
        "    try:"] + ["        " + line for line in convert + body] + [
        "    except (ZeroDivisionError, _FloatPathExit):  # inf, NaN, other kinds: NumPy",
        "        pass",
        "    else:",
        f"        return {_assemble(structure if structure is not None else 0, results, emit)}"
    ], converting


def _call(term: Term, args: list, emit: _Emitter, operators: bool,
          out: Optional[str] = None) -> str:
    """The expression computing one term (``operators``: some argument is a NumPy value, so
    a Python operator dispatches to NumPy; ``out``: the buffer an in-place kernel writes)."""
    attrs = term.attrs
    if out is None:
        ufunc, template = OPERATORS.get(term.op, (None, None))
        if (operators and ufunc is not None and REGISTRY[term.op].kernel is ufunc
                and operator_fits(term.op, term.inputs[0].dtype)):
            return template.format(*args)
        if term.op == "transpose" and term.ndim == 2 and tuple(attrs["axes"]) == (1, 0):
            return f"{args[0]}.T"
        if (term.op == "sigmoid" and term.shape == () and term.inputs[0].dtype.kind == "f"
                and operators and REGISTRY["sigmoid"].kernel is _sigmoid):
            # The kernel's own steps on one float, inline, on a NumPy scalar (x[()]: NumPy's
            # fast scalar path): the same values bit for bit (e = exp(-|x|) never
            # overflows), 0.3 us, not 4.
            emit.globals.update(_exp=np.exp, _abs=abs)  # (an input may be named abs)
            return (f"1 / (1 + _exp(-_s)) if (_s := {args[0]}[()]) >= 0 else "
                    f"(_t := _exp(-_abs(_s))) * (1 / (1 + _t))")
        direct = _direct_call(term, args, operators, emit)
        if direct is not None:
            return direct
        other = _identity_operand(term)
        if other is not None:
            # I @ x is x + 0 for finite x (exactly: one product x, the rest +-0 summed from
            # +0, so -0.0 becomes +0.0), C-ordered like np.matmul's, so the product is
            # skipped then; inf or NaN spread through the zeros, so those go to the kernel.
            x = args[term.inputs.index(other)]
            kernel = f"{emit.kernel(term.op)}({', '.join(args)})"
            return f"_np.add({x}, 0.0, order='C') if _np.isfinite({x}).all() else {kernel}"
    elif masked_fill(term):  # where(c, x, 0) in x's dying buffer
        emit.globals["_fill_where_not"] = fill_where_not
        return f"_fill_where_not({', '.join(args)})"
    parts = list(args) + [f"{k}={emit.attr(v)}" for k, v in attrs.items()]
    if out is not None:
        parts.append(f"out={out}")
    return f"{emit.kernel(term.op)}({', '.join(parts)})"


def _arena_taken(arena, emit: _Emitter) -> list:
    """The lines taking an arena for the call (``_a``: a tuple of arrays, one per place): an
    idle one from the pool, else a new one (see :mod:`graphc.compiler.arena`)."""
    emit.globals.update(_arena_pop=arena.pool.pop, _arena_make=arena.make,
                        _arena_give=arena.give)
    return ["    try:",
            "        _a = _arena_pop()",
            "    except IndexError:  # none idle: another call (thread, kernel) holds them",
            "        _a = _arena_make()"]


def _arena_call(term: Term, args: list, emit: _Emitter, out: str) -> str:
    """The call computing ``term`` into its arena place ``out`` (see
    :func:`graphc.compiler.arena.writes_into`): the kernel with ``out=``, or for ``sum`` the
    direct call's ``np.add.reduce`` with ``out``."""
    if term.op == "sum":
        emit.globals["_add_reduce"] = np.add.reduce
        axis = emit.attr(term.attrs["axis"])
        keep = ", True" if term.attrs["keepdims"] else ""
        return f"_add_reduce({args[0]}, {axis}, None, {out}{keep})"
    return _call(term, args, emit, operators=False, out=out)


def _direct_call(term: Term, args: list, operators: bool, emit: _Emitter) -> Optional[str]:
    """The kernel's NumPy call itself, without the registry's wrapper, where that is the same
    computation: ``np.sum`` is ``np.add.reduce`` behind two Python layers (2-5 us per call),
    ``np.expand_dims`` is a reshape or an index with ``None`` (the same view, 20x cheaper),
    basic indexing is written as such, ``sum_to`` is its one ``np.add.reduce`` and the
    broadcasts skip ``np.broadcast_shapes`` (8 us). Only for arguments that are NumPy values
    (``operators``) of the registry's own kernels."""
    op = term.op
    if not operators or not term.inputs or REGISTRY[op].kernel is not _KERNELS.get(op):
        return None
    x = term.inputs[0]
    if op in ("broadcast_to", "broadcast_like"):
        if op == "broadcast_to":
            shape = _literal(tuple(map(int, term.attrs["shape"])))
        elif _broadcasts_to(x.shape, term.inputs[1].shape):  # the result has like's shape
            shape = f"{args[1]}.shape"
        else:
            return None
        if all(d == 1 for d in x.shape):
            emit.globals["_broadcast_single"] = broadcast_single
            return f"_broadcast_single({args[0]}, {shape})"
        emit.globals["_broadcast_to"] = np.broadcast_to
        return f"_broadcast_to({args[0]}, {shape})"
    if x.ndim == 0:
        return None
    if op == "sum":
        axis, keepdims = term.attrs["axis"], term.attrs["keepdims"]
        axis_text = _literal(axis)
        if axis_text is None:
            return None
        emit.globals["_add_reduce"] = np.add.reduce
        return (f"_add_reduce({args[0]}, {axis_text}, None, None, True)" if keepdims
                else f"_add_reduce({args[0]}, {axis_text})")
    if op == "sum_to":
        return _sum_to_call(term, args, emit)
    if op == "expand_dims":
        if None not in term.shape:
            return f"{args[0]}.reshape({_literal(tuple(map(int, term.shape)))})"
        axes = set(term.attrs["axis"])
        return f"{args[0]}[{', '.join('None' if k in axes else ':' for k in range(term.ndim))}]"
    if op in ("getitem", "getitem_grad"):
        index = _basic_index(term.attrs["index"])
        if index is None or term.attrs["front"]:
            return None
        if op == "getitem":
            return f"{args[0]}[{index}]"
        # g scattered into zeros through full slices and new axes only: every element of
        # the result is one of g, so it is g without the new axes (no batch dimensions)
        like = term.inputs[1]
        if term.ndim == like.ndim and all(e == ("newaxis",) or e == ("slice", None, None, 1)
                                          for e in term.attrs["index"]):
            return f"{args[0]}.reshape({args[1]}.shape)"
    return None


def _broadcasts_to(shape: tuple, like: tuple) -> bool:
    """Whether ``shape`` broadcast against ``like`` gives ``like`` for all run-time sizes."""
    return len(shape) <= len(like) and all(
        d == 1 or (d is not None and d == e) for d, e in zip(shape[::-1], like[::-1]))


def _sum_to_call(term: Term, args: list, emit: _Emitter) -> Optional[str]:
    """``reduce_to``'s one ``np.add.reduce`` (the same axes, dtype and reshape), where the
    axes it sums are known before run time."""
    x, like = term.inputs
    batch = term.attrs["batch"]
    lead = x.ndim - batch - like.ndim
    pairs = list(zip(like.shape, x.shape[batch + lead:]))
    # (summing a size that is 1 at run time would turn -0.0 into 0.0: reduce_to skips it)
    if batch or not all(e == 1 or (d is not None and (d != 1 or e is not None))
                        for d, e in pairs):
        return None  # a batch, or a dimension summed only if its run-time size is not 1
    axes = tuple(range(lead)) + tuple(lead + k for k, (d, e) in enumerate(pairs)
                                      if d == 1 and e != 1)
    if not axes:
        return args[0]  # nothing to sum: reduce_to returns x itself
    call = f"_add_reduce({args[0]}, {_literal(axes)}, {emit.bind('_dt', term.dtype)}, None, True)"
    emit.globals["_add_reduce"] = np.add.reduce
    return f"{call}.reshape({args[1]}.shape)" if lead else call


def _basic_index(index: tuple) -> Optional[str]:
    """A canonical getitem index (see graphc.ops.indexing) of slices, integers and new axes
    as the source of that index after ``...``, or None (an array index)."""
    parts = ["..."]
    for entry in index:
        if entry[0] == "newaxis":
            parts.append("None")
        elif entry[0] == "int":
            parts.append(str(int(entry[1])))
        elif entry[0] == "slice":
            bounds = entry[1:] if entry[3] != 1 else entry[1:3]  # x[a:b:1] is x[a:b]
            parts.append(":".join("" if v is None else str(int(v)) for v in bounds))
        else:
            return None
    return ", ".join(parts)


def broadcast_single(x, shape: tuple) -> np.ndarray:
    """``np.broadcast_to(x, shape)`` of an ``x`` with one element (0-d, or all sizes 1): the
    same read-only view (every stride 0), made directly in a quarter of the time."""
    x = np.asarray(x)
    view = np.ndarray(shape, x.dtype, x, 0, (0,) * len(shape))
    view.setflags(write=False)
    return view


_KERNELS = {op: REGISTRY[op].kernel for op in (
    "sum", "sum_to", "expand_dims", "broadcast_to", "broadcast_like", "getitem",
    "getitem_grad")}


def fill_where_not(c, x, zero):
    """``where(c, x, zero)`` written into ``x``'s buffer (which dies here): the same values.

    A zero whose bits are all 0 (0, +0.0, False) is written branch-free, 10x faster than a
    masked copy on a random mask: x's bits, viewed as unsigned integers, times c (1 keeps
    them, 0 clears them), bit for bit the same values (inf, NaN and -0.0 included)."""
    bits = _UNSIGNED.get(x.dtype.itemsize) if x.dtype.kind in "biuf" else None
    # (the int 0 the relu gradient passes is all 0 bits in any dtype: 0.5 us less than asking)
    if bits is not None and ((type(zero) is int and zero == 0)
                             or not np.asarray(zero, x.dtype).view(bits)):
        as_bits = x.view(bits)
        np.multiply(as_bits, c, out=as_bits)
    else:
        np.copyto(x, zero, where=np.logical_not(c))
    return x


_UNSIGNED = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32),
             8: np.dtype(np.uint64)}


def _identity_operand(term: Term) -> Optional[Term]:
    """The ``x`` of a matmul ``I @ x`` or ``x @ I`` (an identity constant, the seed of a
    Jacobian) whose value has x's shape and dtype, else None."""
    if term.op != "matmul":
        return None
    a, b = term.inputs
    for eye, x in ((a, b), (b, a)):
        if (_is_identity(eye) and x.shape == term.shape and None not in x.shape
                and x.dtype == term.dtype and x.dtype.kind == "f"):
            return x
    return None


def _quoted(name: str) -> str:
    """A node or op name for a comment of the generated source: the repr of the *built-in*
    str (a subclass's own ``__repr__`` never runs) escapes line breaks, so a name can never end
    the comment and become code."""
    return str.__repr__(name) if isinstance(name, str) else "?"


def _assemble(spec, results: list, emit: _Emitter) -> str:
    """The expression that puts the flat ``results`` back into the user's structure ``spec``
    (see :func:`graphc.runtime.structure`): displays for lists, tuples and dicts (whose keys
    are bound as data, never written as source), a bound constructor for the rest."""
    if type(spec) is int:
        return results[spec]
    items = [_assemble(child, results, emit) for child in spec.children]
    if spec.kind == "list":
        return "[" + ", ".join(items) + "]"
    if spec.kind == "tuple":
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if spec.kind == "dict":
        pairs = (f"{emit.bind('_key', key)}: {item}" for key, item in zip(spec.keys, items))
        return "{" + ", ".join(pairs) + "}"
    return f"{emit.bind('_make', spec.make)}([{', '.join(items)}])"


def _result(term: Term, name: str, emit: _Emitter, repeated: bool,
            scalar: bool = False, arrays: bool = True) -> str:
    """An output as g.run returns it: a weak constant becomes a 0-d array of its dtype, and a
    value that may be an argument, a variable's storage, a constant or a (read-only) view is
    copied, so the caller may keep and modify it. 0-d arrays are mutable too, so this holds
    for every shape. A term returned a second time (two outputs that rewriting made one term)
    is copied as well: distinct outputs never share memory. ``scalar``: g.run gives a NumPy
    scalar (see ``Program.scalar_outputs``), immutable, so no copy: ``v[()]`` of the value
    (``x * 1.0`` simplified to ``x`` is np.float64, as in g.run); any other 0-d output is a
    0-d array, as in g.run (``arrays``; the float path makes its own)."""
    if term.op == "constant" and term.attrs.get("weak"):
        text = f"_np.asarray({name}, dtype={emit.bind('_dt', term.dtype)})"
    elif repeated or not is_fresh(term):
        text = name if scalar else f"_np.array({name})"
    elif scalar and not isinstance(REGISTRY[term.op].kernel, np.ufunc):
        text = name  # (say np.where's 0-d array)
    elif term.shape == () and not scalar and arrays:  # g.run: a 0-d array; an operator: a scalar
        return f"_np.asarray({name})"  # (say sum_to(x * 2) rewritten to x * 2)
    else:
        return name
    return f"{text}[()]" if scalar else text


def _output_checker(term: Term, value, *args):
    from ..runtime import check_output
    return check_output(term, value, args)  # a term has op, name, site, shape and dtype


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
    """Execute the generated text; returns the Python function (call :func:`bind_hooks`
    before calling it)."""
    code = compile(generated.source, generated.filename, "exec")
    namespace = dict(generated.globals)
    exec(code, namespace)
    return namespace["_graphc_function"]


class _Missing:
    def __repr__(self) -> str:
        return "<not given>"


#: The default of every parameter of a generated function: the argument was not given.
MISSING = _Missing()


def _tuple_display(items: list) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def bind_hooks(fn, *, explain, rebind) -> None:
    """Give a compiled function its two hooks: ``explain(exc)``, the graphc error for an
    exception raised in it, and ``rebind(more, named, given)``, called for a call with
    keywords, too many or too few arguments (``given``: one value per parameter,
    :data:`MISSING` where none came), which checks them and calls ``fn`` positionally."""
    if hasattr(fn, "bind_hooks"):  # a vm.Machine: for the source it may be promoted to
        fn.bind_hooks(explain=explain, rebind=rebind)
    else:
        fn.__globals__.update(_explain=explain, _rebind=rebind)
