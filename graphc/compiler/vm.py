"""The instruction-list back end: a planned program as a flat list of instructions that one
loop runs over a list of slots (CasADi's work-vector virtual machine), for programs too large
to be worth generating and compiling as Python source.

Each instruction is ``(kernel, read, slot, frees, mode, out)``: ``read(slots)`` fetches the
input values (an ``operator.itemgetter``), ``mode`` says how the kernel is called (one, two
or any number of inputs; from 3 on also ``out=slots[out]``, the planned dying buffer), the
result goes into ``slots[slot]``, and the slots in ``frees`` are cleared right after, so
memory follows the plan as with the generated code's ``del``. Lowering a term makes most of
the decisions of :func:`codegen._call`: Python operators where the generated code writes
operators, ``out=`` into the planned dying buffer, the direct calls for ``sum`` and a
fixed-shape ``expand_dims``, and the same 0-d sigmoid steps. The generated code's other
direct calls (broadcasts, ``sum_to``, basic indexing) are the registry kernels here: the same
values, bit for bit, a few microseconds slower each. Arguments are checked, variables read, updates
stored and results copied as the generated function does. A failing instruction knows its
term: the error names the node as the generated code's does.
"""
from __future__ import annotations

import functools
import operator
import time
from typing import Optional

import numpy as np

from ..errors import GraphcError, OutOfMemoryError
from ..ops.nn import _sigmoid
from .ir import OPS as REGISTRY  # the graph ops and the compiler's own (fused terms)
from ..runtime import (check_feed_value, errors_ignored, errors_restored, is_allocation_failure,
                       kernel_error, narrow_float_max, rebuild)
from . import codegen
from .codegen import (OPERATORS, QUIET_OPS, _KERNELS, _identity_operand,
                      _literal, _numerics_checker, _output_checker, _params, _quoted,
                      fill_where_not)
from .ir import Program, Term, as_described
from .schedule import Plan, is_fresh, masked_fill

#: The Python operator behind each template of :data:`codegen.OPERATORS` (``a + b`` is
#: ``operator.add(a, b)``: the same dispatch, also for NumPy scalars and Python numbers).
OPERATOR_FUNCTIONS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
                      "div": operator.truediv, "neg": operator.neg,
                      "square": lambda a: a * a}


def lower(program: Program, plan: Plan, graph, *, check_numerics: bool = False,
          structure=None, trust_input: bool = False) -> "Machine":
    """The instruction list of ``program`` in ``plan``'s order (arguments as in
    :func:`codegen.generate`)."""
    return Machine(program, plan, graph, check_numerics, structure, trust_input)


class Machine:
    """A compiled program as instructions over slots; call it with the inputs' values.

    ``params`` are the parameter names (as the generated function's), ``source`` a readable
    listing of the instructions (not executable code)."""

    # what a Function reads of codegen.Generated: no file, so its traceback search finds no
    # frame (the VM turns kernel failures into graphc errors itself)
    filename = None
    lines: dict = {}
    names: dict = {}
    arguments: dict = {}

    def __init__(self, program: Program, plan: Plan, graph, check_numerics: bool, structure,
                 trust_input: bool) -> None:
        self.params = _params(program)
        self._values = graph._values
        # slot = the plan's number of the term (inputs nobody reads get slots after them)
        numbered, walk = plan.numbered, plan.walk
        slot = numbered.index
        unread = [t for t in program.inputs if t not in slot]
        self._terms = terms = numbered.terms + unread  # slot -> term
        if unread:
            slot = {**slot, **{t: k for k, t in enumerate(terms) if k >= len(numbered.terms)}}
        self._arguments = [(slot[t], _argument(t, trust_input)) for t in program.inputs]
        self._template = template = [None] * len(terms)
        self._variables = []  # (slot, node id), read at each call
        for term in plan.leaves:
            if term.op == "variable":
                self._variables.append((slot[term], term.origin.id))
            elif term.op == "constant":
                value = term.attrs["value"]
                # a weak constant reaches NumPy as a Python scalar (weak promotion), as the
                # generated code's literal does
                template[slot[term]] = value.item() if term.attrs.get("weak") else value
        # the arena's places are slots after the terms', filled at each call (see _run)
        self._arena = arena = plan.arena
        self._arena_base = len(template)
        places = arena.slot if arena is not None else {}
        template.extend([None] * len(places))
        code = []
        reuse, number, itemgetter = walk.reuse, slot.__getitem__, operator.itemgetter
        shaped = [bool(t.shape) for t in terms].__getitem__  # (only arrays are freed)
        numbered_inputs = numbered.inputs
        specs: dict = {}  # op -> its registry entry (looked up once per op)
        layout_checks = plan.layout_checks
        for k, dying in zip(walk.order, walk.dying):
            term = terms[k]
            arity = len(term.inputs)
            donor = reuse.get(k)
            op = term.op
            spec = specs.get(op)
            if spec is None:
                spec = specs[op] = REGISTRY[op]
            out = -1
            if donor is not None:  # out= the dying buffer, or where(c, x, 0) into x
                if op == "where" and masked_fill(term):
                    fn = fill_where_not
                else:
                    fn = functools.partial(spec.kernel, **term.attrs) if term.attrs else \
                        spec.kernel
                    out = donor
            elif id(term) in places:  # the first writer of a kept buffer: out= its place
                fn = _into(term, spec)
                out = self._arena_base + places[id(term)]
            elif op in _LOWERED:  # maybe an operator, a direct call, ...
                fn = _kernel(term, operators=not all(_is_weak(x) for x in term.inputs))
            else:
                fn = functools.partial(spec.kernel, **term.attrs) if term.attrs else spec.kernel
            checks = layout_checks.get(id(term)) if donor is not None or out >= 0 else None
            if checks:  # out= only where NumPy's result is C-ordered too (codegen's test)
                plain = _kernel(term, operators=not all(_is_weak(x) for x in term.inputs)) \
                    if op in _LOWERED else functools.partial(spec.kernel, **term.attrs) \
                    if term.attrs else spec.kernel
                fn = _layout_checked(fn, plain, checks, out >= 0)
            if spec.checked:
                fn = _checked(fn, term)
            if check_numerics and term.dtype.kind in "fc":
                fn = _numerics(fn, _numerics_checker(term))
            dead = tuple(filter(shaped, dying)) if dying else ()
            mode = (0 if arity == 1 else 1 if arity == 2 else 2) + 3 * (out >= 0)
            read = numbered_inputs[k]  # (the slots of its distinct inputs: all, unless repeated)
            if len(read) != arity:
                read = tuple(map(number, term.inputs))
            code.append((fn, itemgetter(*read) if arity else _nothing, k, dead, mode, out))
        self._code = code
        self._quiet = all(term.op in QUIET_OPS for term in plan.order)
        self._updates, self._outputs = _stores(program, slot), _results(program, slot)
        self._structure = structure if structure is not None else 0
        self._updated = [var.name for var, _ in program.updates]  # (for the listing)

    # -- running ------------------------------------------------------------------------------
    # -- promotion: generated source once the VM has run as long as compiling it takes -------
    def promote_after(self, seconds: float, compile_source) -> None:
        """Run as generated source (``compile_source() -> (generated, fn)``) from the call
        after the VM has spent ``seconds`` running, about what compiling costs: so the time
        lost either way is at most what the better choice would have cost (the ski-rental
        rule). ``stats`` (the Function's, when set) then says ``backend: "source"``."""
        self._budget, self._compile = seconds, compile_source

    _budget = float("inf")
    _compiled = None  # the generated function, once promoted
    _hooks: Optional[dict] = None  # the Function's hooks, for the generated function

    @property
    def promoted(self) -> bool:
        """Whether calls now run the generated source."""
        return self._compiled is not None

    def bind_hooks(self, **hooks) -> None:
        """Keep the Function's hooks (:func:`codegen.bind_hooks`) for the generated source."""
        self._hooks = hooks
        if self._compiled is not None:
            codegen.bind_hooks(self._compiled, **hooks)
    stats: Optional[dict] = None

    def __call__(self, /, *args, **kwargs):  # self positional-only: an input may be "self"
        compiled = self._compiled
        if compiled is not None:
            return compiled(*args, **kwargs)
        if self._budget == float("inf"):
            return self._run(args, kwargs)
        start = time.perf_counter()
        try:
            return self._run(args, kwargs)
        finally:
            self._budget -= time.perf_counter() - start
            if self._budget <= 0:
                self._promote()

    def _promote(self) -> None:
        compile_source, self._compile = self._compile, None  # (once, when calls overlap)
        self._budget = float("inf")
        if compile_source is None:
            return
        started = time.perf_counter()
        try:
            generated, fn = compile_source()
        except Exception:  # (say, a program too large for compile()): the VM stays
            return
        # what a Function reads to explain a failure in generated code
        self.filename, self.lines, self.names = generated.filename, generated.lines, \
            generated.names
        self.arguments = generated.arguments
        self._source = generated.source
        if self._hooks is not None:
            codegen.bind_hooks(fn, **self._hooks)
        self._compiled = fn
        if self.stats is not None:
            self.stats["backend"] = "source"
            self.stats["seconds"]["promotion"] = time.perf_counter() - started

    def _run(self, args, kwargs):
        arena = self._arena
        if arena is None:
            return self._execute(args, kwargs, ())
        try:  # one arena per running call (see graphc.compiler.arena)
            held = arena.pool.pop()
        except IndexError:  # none idle: another call (thread, kernel) holds them
            held = arena.make()
        try:
            return self._execute(args, kwargs, held)
        finally:
            arena.give(held)

    def _execute(self, args, kwargs, held: tuple):
        if kwargs or len(args) != len(self.params):
            args = self._bind(args, kwargs)
        slots = self._template.copy()
        if held:
            slots[self._arena_base:] = held
        try:
            for (k, check), value in zip(self._arguments, args):
                slots[k] = value if check is None else check(value)
        except GraphcError:
            raise
        except Exception as exc:  # (trust_input: a value that broke the promise)
            raise codegen.argument_error(self._terms[k], value, exc) from exc
        values = self._values
        for k, node_id in self._variables:
            slots[k] = values[node_id]
        code = self._code
        instruction = None
        try:
            token = None if self._quiet else errors_ignored()
            try:
                for instruction in code:
                    fn, read, k, frees, mode, out = instruction
                    # (calls spelled out per arity: f(*args, out=o) would build a dict)
                    if mode == 0:
                        slots[k] = fn(read(slots))
                    elif mode == 1:
                        a, b = read(slots)
                        slots[k] = fn(a, b)
                    elif mode == 3:
                        slots[k] = fn(read(slots), out=slots[out])
                    elif mode == 4:
                        a, b = read(slots)
                        slots[k] = fn(a, b, out=slots[out])
                    elif mode == 2:
                        slots[k] = fn(*read(slots))
                    else:
                        slots[k] = fn(*read(slots), out=slots[out])
                    for i in frees:
                        slots[i] = None
            finally:
                if token is not None:
                    errors_restored(token)
        except GraphcError:
            raise
        except Exception as exc:
            if instruction is None:  # entering the error state
                raise GraphcError(f"compiled function failed: {exc!r}") from exc
            raise self._failed(self._terms[instruction[2]], slots, exc) from exc
        new, results = {}, []
        term = None
        try:
            for node_id, k, store, term in self._updates:
                new[node_id] = slots[k] if store is None else store(slots[k])
            term = None
            if new:  # written together, after every update is computed
                values.update(new)
            for k, finish, term in self._outputs:
                results.append(slots[k] if finish is None else finish(slots[k]))
            term = None
            return rebuild(self._structure, results)
        except GraphcError:
            raise
        except Exception as exc:
            if term is not None:  # a store or a copy of the term's value
                raise self._failed(term, slots, exc) from exc
            kind = OutOfMemoryError if is_allocation_failure(exc) else GraphcError
            raise kind(f"compiled function failed while storing results: {exc}") from exc

    def _failed(self, term: Term, slots: list, exc: Exception) -> GraphcError:
        """The graphc error for ``term``'s failure, with the input values still held."""
        index = {t: k for k, t in enumerate(self._terms)}
        values = [slots[index[x]] if x in index else None for x in term.inputs]
        return kernel_error(as_described(term), exc, values)

    def _bind(self, args: tuple, kwargs: dict) -> list:
        """Arguments by position and name, in parameter order; a TypeError (which the Function
        turns into the same message as for the generated code) when they do not fit."""
        params = self.params
        if len(args) > len(params):
            raise TypeError(f"takes {len(params)} arguments but {len(args)} were given")
        bound = dict(zip(params, args))
        for key, value in kwargs.items():
            if key not in params or key in bound:
                raise TypeError(f"unexpected or repeated argument {key!r}")
            bound[key] = value
        if len(bound) != len(params):
            raise TypeError("missing arguments")
        return [bound[p] for p in params]

    # -- the listing --------------------------------------------------------------------------
    _source = None

    @property
    def source(self) -> str:
        """The listing of the instructions, or the generated source once promoted."""
        if self._source is None:
            self._source = self._listing()
        return self._source

    def _listing(self) -> str:
        """The instructions, one line each: ``slot = op(slots)``, the freed slots, the node."""
        terms = self._terms
        index = {t: k for k, t in enumerate(terms)}
        lines = [f"# graphc instruction list: {len(self._code)} instructions over "
                 f"{len(terms)} slots (not Python source)"]
        for (k, _), param in zip(self._arguments, self.params):
            lines.append(f"s{k} = argument {param}")
        for k, term in enumerate(terms):
            if term.op == "variable":
                lines.append(f"s{k} = variable {_quoted(term.origin.name)} (read at each call)")
            elif term.op == "constant":
                value = self._template[k]
                text = _literal(value) if np.ndim(value) == 0 and not isinstance(
                    value, np.ndarray) else None
                lines.append(f"s{k} = constant {text or shape_text(term)}")
        for pos, (fn, read, k, frees, mode, out) in enumerate(self._code):
            term = terms[k]
            args = [f"s{index[x]}" for x in term.inputs]
            args += [f"{key}={_literal(v) or '<' + type(v).__name__ + '>'}"
                     for key, v in term.attrs.items()]
            if out >= self._arena_base:
                args.append(f"out=arena[{out - self._arena_base}]")
            elif out >= 0:
                args.append(f"out=s{out}")
            op = term.op if term.op.isascii() and term.op.isidentifier() else _quoted(term.op)
            freed = f"  free {', '.join(f's{i}' for i in frees)}" if frees else ""
            lines.append(f"{pos:6d}  s{k} = {op}({', '.join(args)}){freed}"
                         f"  # {_quoted(term.origin.name)}")
        for name, (_, k, _, _) in zip(self._updated, self._updates):
            lines.append(f"update {_quoted(name)} <- s{k}")
        lines.append("return " + ", ".join(f"s{k}" for k, _, _ in self._outputs))
        return "\n".join(lines) + "\n"


#: Ops whose lowering may be other than ``kernel(*args, **attrs)`` (see :func:`_kernel`).
_LOWERED = frozenset(OPERATORS) | {"transpose", "sigmoid", "sum", "expand_dims", "matmul"}


def _is_weak(term: Term) -> bool:
    return term.op == "constant" and bool(term.attrs.get("weak"))


def shape_text(term: Term) -> str:
    return f"{term.dtype} array of shape {tuple(term.shape)}"


def _nothing(slots):
    return ()


# -- lowering one term: the decisions of codegen._call, as callables --------------------------
def _kernel(term: Term, operators: bool):
    """The callable computing ``term`` from its input values, the same computation as the
    generated line (``operators``: some argument is a NumPy value)."""
    op, attrs = term.op, term.attrs
    kernel = REGISTRY[op].kernel
    ufunc = OPERATORS.get(op, (None, None))[0]
    if (operators and ufunc is not None and kernel is ufunc
            and codegen.operator_fits(op, term.inputs[0].dtype)):
        return OPERATOR_FUNCTIONS[op]
    if op == "transpose" and term.ndim == 2 and tuple(attrs["axes"]) == (1, 0):
        return _transposed
    if (op == "sigmoid" and term.shape == () and term.inputs[0].dtype.kind == "f"
            and operators and kernel is _sigmoid):
        return _scalar_sigmoid
    direct = _direct(term, operators)
    if direct is not None:
        return direct
    other = _identity_operand(term)
    if other is not None:
        return functools.partial(_skip_identity, kernel, term.inputs.index(other))
    return functools.partial(kernel, **attrs) if attrs else kernel




def _direct(term: Term, operators: bool):
    """:func:`codegen._direct_call` as a callable."""
    if not operators or not term.inputs or term.inputs[0].ndim == 0:
        return None
    kernel = REGISTRY[term.op].kernel
    if term.op == "sum" and kernel is _KERNELS["sum"]:
        axis, keepdims = term.attrs["axis"], term.attrs["keepdims"]
        if _literal(axis) is None:
            return None
        if keepdims:
            return lambda x: np.add.reduce(x, axis, None, None, True)
        return lambda x: np.add.reduce(x, axis)
    if term.op == "expand_dims" and kernel is _KERNELS["expand_dims"] and None not in term.shape:
        shape = tuple(map(int, term.shape))
        return lambda x: x.reshape(shape)
    return None


def _into(term: Term, spec):
    """The callable computing ``term`` with ``out=`` its arena place (codegen's
    ``_arena_call``): the kernel, or for ``sum`` the direct call's ``np.add.reduce``."""
    if term.op == "sum":
        axis, keepdims = term.attrs["axis"], term.attrs["keepdims"]
        reduce = np.add.reduce
        return lambda x, out: reduce(x, axis, None, out, keepdims)
    return functools.partial(spec.kernel, **term.attrs) if term.attrs else spec.kernel


def _layout_checked(fn, plain, checks: tuple, takes_out: bool):
    """``fn`` (writing into a given buffer) where the inputs at ``checks`` are C-ordered,
    else ``plain`` (NumPy's own allocation: see :func:`graphc.compiler.arena.layout_checks`);
    also ``plain`` for a value that is no ndarray (a trusted argument may be a list)."""
    ndarray = np.ndarray
    if takes_out:
        def run(*args, out):
            for k in checks:
                x = args[k]
                if x.__class__ is not ndarray or not x.flags.c_contiguous:
                    return plain(*args)
            return fn(*args, out=out)
    else:  # (a masked fill writes into its x itself)
        def run(*args):
            for k in checks:
                x = args[k]
                if x.__class__ is not ndarray or not x.flags.c_contiguous:
                    return plain(*args)
            return fn(*args)
    return run


def _transposed(x):
    return x.T


def _scalar_sigmoid(x):
    """The generated 0-d sigmoid: the kernel's own steps on a NumPy scalar."""
    s = x[()]
    if s >= 0:
        return 1 / (1 + np.exp(-s))
    t = np.exp(-abs(s))  # (for NaN: the sign the kernel gives)
    return t * (1 / (1 + t))


def _skip_identity(kernel, which: int, *args):
    x = args[which]
    # x + 0: np.matmul's +0.0 for -0.0, C-ordered like its result (see codegen's _call)
    return np.add(x, 0.0, order="C") if np.isfinite(x).all() else kernel(*args)


def _checked(fn, term: Term):
    """A user's kernel whose output is checked against its rule."""
    check = functools.partial(_output_checker, term)

    def checked(*args, **out):
        return check(fn(*args, **out), *args)
    return checked


def _numerics(fn, fail):
    def numerics(*args, **out):
        value = fn(*args, **out)
        if not np.isfinite(value).all():
            fail(value)
        return value
    return numerics


# -- arguments, updates, results: as the generated function's ---------------------------------
def _argument(term: Term, trust_input: bool):
    """The check of one argument (``None``: taken as it is)."""
    dtype, shape = term.dtype, term.shape
    ndarray = np.ndarray
    feed = functools.partial(check_feed_value, term.origin)
    if shape == () and dtype.kind == "f":  # a NumPy scalar, whatever came
        kind = dtype.type
        if trust_input:
            return kind

        big = narrow_float_max(dtype)
        if big is not None:  # (float32: a Python float may overflow it)
            def narrow(x):
                if x.__class__ is ndarray and x.dtype is dtype and x.shape == ():
                    return x[()]
                if x.__class__ is kind or (x.__class__ is float and -big <= x <= big):
                    return kind(x)
                return feed(x)[()]
            return narrow

        def scalar(x):
            if x.__class__ is ndarray and x.dtype is dtype and x.shape == ():
                return x[()]
            return kind(x) if x.__class__ is float or x.__class__ is kind else feed(x)[()]
        return scalar
    if trust_input:
        if shape == ():  # a Python int or bool too: a 0-d array, as checked
            return lambda x: x if x.__class__ is ndarray else np.asarray(x, dtype)
        return None
    if None not in shape:
        def fixed(x):
            if x.__class__ is not ndarray or x.dtype is not dtype or x.shape != shape:
                return feed(x)
            return x
        return fixed
    known = [(k, int(d)) for k, d in enumerate(shape) if d is not None]
    ndim = len(shape)

    def sized(x):
        if (x.__class__ is not ndarray or x.dtype is not dtype or x.ndim != ndim
                or any(x.shape[k] != d for k, d in known)):
            return feed(x)
        return x
    return sized


def _stores(program: Program, slot: dict) -> list:
    """Per update: (variable id, slot, the store or None to write the value as it is, term)."""
    outputs = {id(t) for t in program.outputs}
    stored: set = set()
    stores = []
    for var, term in program.updates:
        direct = (is_fresh(term) and term.ndim > 0 and term.dtype == var.dtype
                  and term.shape == var.shape and id(term) not in outputs
                  and id(term) not in stored)
        stored.add(id(term))
        store = None if direct else functools.partial(codegen._checked_value, var)
        stores.append((var.id, slot[term], store, term))
    return stores


def _weak_scalar(value, dtype):
    return np.asarray(value, dtype=dtype)[()]


def _results(program: Program, slot: dict) -> list:
    """Per output: (slot, the copy or conversion g.run would make or None, term)."""
    returned: set = set()
    results = []
    for k, term in enumerate(program.outputs):
        finish: Optional[object] = None
        if term.op == "constant" and term.attrs.get("weak"):
            finish = functools.partial(np.asarray, dtype=term.dtype)
        elif id(term) in returned or not is_fresh(term):
            finish = np.array
        if k in program.scalar_outputs and (  # g.run gives a NumPy scalar (codegen._result)
                finish is not None or not isinstance(REGISTRY[term.op].kernel, np.ufunc)):
            weak = term.op == "constant" and term.attrs.get("weak")
            finish = functools.partial(_weak_scalar, dtype=term.dtype) if weak else \
                operator.itemgetter(())  # v[()]: a 0-d array's NumPy scalar
        elif finish is None and term.shape == () and k not in program.scalar_outputs:
            finish = np.asarray
        returned.add(id(term))
        results.append((slot[term], finish, term))
    return results
