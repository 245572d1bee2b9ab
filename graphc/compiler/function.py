"""``gc.function``: compile once (prune, rewrite, schedule, plan memory, generate code), call
many times."""
from __future__ import annotations

import ast
import gc
import inspect
import operator
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Optional, Sequence, Union

from ..errors import FeedError, GraphcError, MissingFeedError, OutOfMemoryError, describe
from ..graph import Node
from ..ops.random import key_updates
from ..runtime import is_allocation_failure, kernel_error, structure as fetch_structure
from . import arena, codegen, specialize, vm
from .ir import as_described, check_update, from_graph, upcasts
from .fusion import FUSED, fuse, unfused
from .passes import DEFAULT_PASSES, optimize as run_passes
from .schedule import schedule
from .specialize import Lowered, Specializer


class Function:
    """A compiled graph: call it with the inputs (positionally or by name).

    ``source`` is the generated Python program; ``stats`` reports the term count before and
    after each pass, the time of each pass, how often each rewrite rule fired, and the
    planned peak memory of the intermediate values in bytes. ``arena_bytes`` is the size of
    the buffers the program keeps across calls (one arena, :mod:`graphc.compiler.arena`),
    ``kept_bytes`` what the function keeps now: its programs' idle arenas (at most ``KEEP *
    MAX_BYTES`` of that module, 128 MiB, over all its programs) and its fused groups' block
    buffers (at most two sets of a few :data:`graphc.compiler.fusion.BLOCK_BYTES` buffers per
    group); :meth:`release_buffers` drops them.

    Inputs with ``None`` sizes: the memory plan is made at the first call with each new
    combination of input shapes (a shape specialisation, see
    :mod:`graphc.compiler.specialize`); ``source`` and the plan entries of ``stats``
    (``planned_peak_bytes``, ``reused_buffers``, ``schedule``, ``memory_plan``,
    ``specialized_shapes``) then describe the program the last call ran, and
    ``stats["specializations"]`` counts them. Before the first call they describe the generic
    program (``planned_peak_bytes`` None).

    Threads: a function with ``updates`` holds its graph's update lock for the whole call
    (reading the variables, computing, writing), so concurrent calls of the functions that
    update one graph never lose an update; a function without updates takes no lock.
    """

    def __init__(self, fn, generated: codegen.Generated, inputs: list, stats: dict,
                 lock=None, specializer: Optional[Specializer] = None) -> None:
        self._fn = fn  # the generated function, or the dispatch of a Specializer
        self._specializer: Optional[Specializer] = None  # with None sizes: the dispatch
        self._generated = generated
        self._inputs = inputs
        self._lock = lock
        codegen.bind_hooks(fn, explain=self._explain, rebind=self._rebind)
        if specializer is not None:  # each specialisation gets the hooks as it is made
            self._fn, self._specializer = specializer.dispatch, specializer
        # a call goes straight to the generated function, which checks its arguments and
        # explains its own errors; with updates (the lock) or specialisations (a dispatch
        # that takes its arguments positionally) or on the VM it goes through _call_through
        # (the VM binds its arguments by position only)
        direct = lock is None and specializer is None and not isinstance(fn, vm.Machine)
        self._entry = fn if direct else self._call_through
        self._stats: dict = stats
        self._plans: list = []  # the programs' plans (each with its arena), as they are made
        self._found_groups: list = []  # the fused groups of each plan (see _groups)
        self.outputs: tuple = ()  # the output nodes, in order (set by ``function``)
        self.updated: tuple = ()  # the variables each call updates
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD)
             for p in generated.params])

    @property
    def stats(self) -> dict:
        """See the class docstring."""
        if self._specializer is not None:  # the program shown may since run as source
            fn = self._specializer.last.fn
            if isinstance(fn, vm.Machine) and fn.promoted:
                self._stats["backend"] = "source"
        self._stats["kept_bytes"] = sum(held.kept_bytes for held in self._holders())
        return self._stats

    def release_buffers(self) -> int:
        """Drop the buffers the function keeps between calls (its programs' idle arenas, see
        :mod:`graphc.compiler.arena`, and its fused groups' block buffers, see
        :mod:`graphc.compiler.fusion`); the next call makes them again. Returns the bytes
        dropped (``stats["kept_bytes"]`` before)."""
        kept = 0
        for held in self._holders():
            kept += held.kept_bytes
            held.clear()
        return kept

    def _holders(self) -> list:
        """What keeps buffers between calls: arenas and fused groups."""
        return self._arenas() + self._groups()

    def _arenas(self) -> list:
        """The arenas of the programs the function has: the generic one, specialisations."""
        return [plan.arena for plan in self._plans if plan.arena is not None]

    def _groups(self) -> list:
        """The fused groups of the programs the function has (found once per program)."""
        found = self._found_groups
        for plan in self._plans[len(found):]:
            found.append([t.attrs["group"] for t in plan.order if t.op == FUSED])
        return list({id(group): group for groups in found for group in groups}.values())

    @property
    def source(self) -> str:
        """The generated Python program, or the VM back end's instruction listing (with
        ``None`` sizes: of the last call's program)."""
        return self._generated.source

    #: ``f(...)`` calls ``f._entry`` directly: special-method lookup goes through this
    #: descriptor, so no wrapper frame costs 0.1-0.2 us a call.
    __call__ = property(operator.attrgetter("_entry"))

    def _call_through(self, /, *args, **kwargs):  # self positional-only: an input may be "self"
        """A call of a function with updates (under the graph's lock) or with shape
        specialisations (the dispatch takes exactly its arguments, positionally)."""
        if kwargs or len(args) != len(self._inputs):
            return self._rebind((), kwargs, args)
        try:
            if self._lock is None:
                return self._fn(*args)
            with self._lock:
                return self._fn(*args)
        except GraphcError:
            raise
        except Exception as exc:  # (the generated programs explain their own errors)
            raise self._explain(exc) from exc

    def _hooked(self, lowered: Lowered) -> Lowered:
        """A shape specialisation, its generated function given the hooks."""
        codegen.bind_hooks(lowered.fn, explain=self._explain, rebind=self._rebind)
        self._plans.append(lowered.plan)
        return lowered

    def _rebind(self, more: tuple, named: dict, given: tuple):
        """A call with keywords or a wrong number of arguments: the arguments in the order of
        the parameters, then the call; or the FeedError saying what is wrong."""
        args = tuple(v for v in given if v is not codegen.MISSING) + more
        params = self._generated.params
        position = {p: k for k, p in enumerate(params)}
        position.update((n.name, k) for k, n in enumerate(self._inputs))  # names, or _p<k>
        full = list(args[:len(params)]) + [codegen.MISSING] * (len(params) - len(args))
        for key, value in named.items():
            k = position.get(key)
            if len(args) > len(params) or k is None or k < len(args):
                raise self._bad_arguments(args, named)
            full[k] = value
        if len(args) > len(params) or any(v is codegen.MISSING for v in full):
            raise self._bad_arguments(args, named)
        return self._entry(*full)

    def __repr__(self) -> str:
        """A one-line summary: inputs, outputs, updated variables, terms by op, peak memory."""
        from ..io.text import op_counts

        names = ", ".join(n.name for n in self._inputs)
        outputs = ", ".join(n.name for n in self.outputs)
        updates = f"; updates {', '.join(v.name for v in self.updated)}" if self.updated else ""
        computed = {op: k for op, k in self.stats["ops"].items()  # the inputs are listed
                    if op not in ("placeholder", "variable", "constant")}
        peak = self.stats["planned_peak_bytes"]
        memory = "peak memory known at run time" if peak is None else f"planned peak {peak} bytes"
        return (f"<graphc.Function({names}) -> ({outputs}){updates}: "
                f"{self.stats['nodes']['final']} terms ({op_counts(computed)}), "
                f"{memory}>")

    # -- errors -----------------------------------------------------------------------------
    def _explain(self, exc: Exception) -> GraphcError:
        """A graphc error for a failure in the generated code, naming the node that failed."""
        tb = exc.__traceback__
        frame, line, generated = None, None, None
        while tb is not None:
            found = self._generated_named(tb.tb_frame.f_code.co_filename)
            if found is not None:
                frame, line, generated = tb.tb_frame, tb.tb_lineno, found
            tb = tb.tb_next
        if frame is None:
            return GraphcError(f"compiled function failed: {exc!r}")
        argument = generated.arguments.get(line)
        if argument is not None:  # a trusted argument that did not fit
            return codegen.argument_error(
                argument, _local_value(frame, generated.names.get(id(argument))), exc)
        term = generated.lines.get(line)
        if term is None:
            kind = OutOfMemoryError if is_allocation_failure(exc) else GraphcError
            return kind(f"compiled function failed while storing results: {exc}")
        values = [_local_value(frame, generated.names.get(id(x))) for x in term.inputs]
        return kernel_error(as_described(term), exc, values)

    def _generated_named(self, filename: str) -> Optional[codegen.Generated]:
        """The generated code compiled under ``filename``: the program's, or one of its
        shape specialisations'."""
        if self._specializer is not None:
            return self._specializer.generated_named(filename)
        return self._generated if filename == self._generated.filename else None

    def _show(self, shown: Lowered) -> None:
        """Report the program the last call ran (a specialisation or the generic one)."""
        self._generated = shown.generated
        self.stats.update(shown.stats)
        self.stats["specializations"] = self._specializer.count

    def _bad_arguments(self, args: tuple, kwargs: dict) -> GraphcError:
        params = self._generated.params
        names = [n.name for n in self._inputs]
        by_name = dict(zip(names, params))
        by_param = dict(zip(params, names))
        kwargs = {by_param.get(k, k): v for k, v in kwargs.items()}  # back to the user's names
        if len(args) > len(params):
            return FeedError(f"the function takes {len(params)} input(s) "
                             f"({', '.join(names)}) but {len(args)} were given")
        for key in kwargs:
            if key not in by_name and key not in params:
                return FeedError(f"the function has no input named {key!r}; its inputs are "
                                 f"{', '.join(repr(n) for n in names)}")
        for key in kwargs:
            if by_name.get(key, key) in params[:len(args)]:
                return FeedError(f"input {key!r} given twice: by position and by name")
        given = set(params[:len(args)]) | {by_name.get(k, k) for k in kwargs}
        missing = [n for n, p in zip(self._inputs, params) if p not in given]
        if missing:
            return MissingFeedError(
                f"input{'s' if len(missing) > 1 else ''} "
                f"{', '.join(describe(n) for n in missing)} not given to the compiled function")
        return GraphcError("bad arguments for the compiled function")


def _local_value(frame, name: Optional[str]):
    """The value a generated local, global or literal name stands for in ``frame``."""
    if name is None:
        return None
    if name in frame.f_locals:
        return frame.f_locals[name]
    if name in frame.f_globals:
        return frame.f_globals[name]
    try:
        return ast.literal_eval(name)
    except (ValueError, SyntaxError):
        return None


def function(inputs: Union[Node, Sequence[Node]], outputs: Any, updates: Optional[dict] = None, *,
             optimize: bool = True, check_numerics: bool = False,
             passes: Optional[Sequence[str]] = None, trust_input: bool = False,
             backend: str = "auto") -> Function:
    """Compile ``outputs`` (a node, or nested lists, tuples, namedtuples and dicts of nodes)
    as a function of ``inputs``.

    The callable takes one argument per input (positionally, or by node name), validates it
    like ``g.run`` does a feed, computes the outputs, then writes ``updates``
    (``{variable: node}``, all computed from the old values) together, and returns the
    outputs in the structure given. The source graph is never changed; variables are read at
    call time. ``optimize=False`` skips the rewriting passes; ``passes`` picks them by name
    (see :data:`graphc.compiler.passes.DEFAULT_PASSES`). ``check_numerics=True`` raises
    :class:`graphc.NumericsError` at the first node that produces NaN or Inf.
    ``trust_input=True`` skips the per-argument checks (PyTensor's name): the caller promises
    NumPy arrays of exactly each input's dtype and shape (for 0-d floating inputs also Python
    floats or NumPy scalars, for other 0-d inputs Python ints and bools); anything else
    gives undefined results, or a
    :class:`graphc.FeedError` naming the argument stage and the input (the check's words).
    Trusted arguments are not checked at all, so a value out of the input dtype's range
    (``1e300`` for a float32 input) is the caller's to avoid: it may become ``inf``, warn or
    fail, where the checked call raises :class:`graphc.FeedError`.

    ``backend`` picks how the program runs: ``"source"`` generates and compiles one Python
    function (fastest per call), ``"vm"`` runs an instruction list (no source to compile:
    fastest to build), ``"auto"`` the VM for programs of :data:`VM_THRESHOLD` instructions or
    more, turned into generated source once its calls have run about as long as compiling
    takes. Both give the same values bit for bit and the same errors.

    Random keys (:func:`graphc.random.key`) that the outputs or updates sample from advance
    after each call (fresh samples per call), unless a key is an input or has an update.
    """
    started = time.perf_counter()
    if isinstance(inputs, Node):
        inputs = [inputs]
    inputs = list(inputs)
    flat, structure = fetch_structure(outputs, "outputs")
    if updates is not None and not isinstance(updates, dict):
        raise GraphcError(f"function: updates must be a dict {{variable: node}}, not "
                          f"{type(updates).__name__}")
    update_pairs = list((updates or {}).items())
    graph = _graph_of(inputs + flat + [v for pair in update_pairs for v in pair])
    for var, value in update_pairs:
        check_update(var, value)
    # random keys the function samples from advance after each call (fresh samples per call)
    update_pairs += key_updates(flat + [v for _, v in update_pairs], dict(update_pairs), inputs)
    if backend not in BACKENDS:
        raise GraphcError(f"function: backend must be one of {', '.join(map(repr, BACKENDS))}, "
                          f"not {backend!r}")
    if len({n.id for n in inputs}) != len(inputs):
        raise GraphcError("the same node is given twice among the function's inputs")

    with _collector_paused():
        program = from_graph(graph, inputs, flat, update_pairs)
        source_terms = len(program.terms)
        if passes is None:
            passes = DEFAULT_PASSES if optimize else ()
        if check_numerics:  # NaN and Inf are checked per term: those the passes hide stay
            passes = tuple(p for p in passes if p not in ("fuse", "share"))
        program, pass_stats, fired = _optimize(program, tuple(passes))
        options = dict(check_numerics=check_numerics, structure=structure,
                       trust_input=trust_input, fastmath="fastmath" in passes, backend=backend)
        generic = _plan_and_lower(program, graph, options)
    sized_at_call = any(None in term.shape for term in program.inputs)
    stats = {
        "nodes": {"source": source_terms, "final": len(program.terms)},
        "ops": dict(sorted(Counter(map(operator.attrgetter("op"), program.terms)).items())),
        "passes": pass_stats,
        "rules": dict(sorted(fired.items())),
        **generic.stats,
        "memory_plan": "generic: before the first call" if sized_at_call else "static",
        "specializations": 0,
        "specialized_shapes": None,
        # where a float value is widened (float32 -> float64): empty for a pure float32 graph
        "upcasts": upcasts(unfused(program.terms) if fired.get("fuse:groups") else
                           program.terms),  # fused terms: their members
    }
    stats["seconds"] = {"passes": sum(p["seconds"] for p in pass_stats), **generic.stats["seconds"],
                        "total": time.perf_counter() - started}
    fn, specializer = generic.fn, None
    if isinstance(fn, vm.Machine):  # (a promotion to generated source updates "backend")
        fn.stats = stats
    if sized_at_call:  # plan memory again at each call with new input shapes
        # what stats show while the generic program runs (after a call it could not plan)
        generic.stats = {key: stats[key] for key in generic.stats}
        generic.stats["specialized_shapes"] = None
        if isinstance(generic.fn, vm.Machine):
            generic.fn.stats = generic.stats
        budget = arena.Budget()  # shared by the programs: the generic one (sizes unknown,
        budget.spend(generic.plan.arena)  # it keeps none) and the specialisations
        specializer = Specializer(
            program, generic,
            lambda p: compiled._hooked(_plan_and_lower_paused(  # sizes known: fusion may apply
                fuse(p, Counter()) if "fuse" in passes else p, graph, options, budget)),
            lambda shown: compiled._show(shown), limit=specialize.MAX_SPECIALIZATIONS)
    compiled = Function(fn, generic.generated, inputs, stats,
                        update_lock(graph) if update_pairs else None, specializer)
    compiled.outputs, compiled.updated = tuple(flat), tuple(var for var, _ in update_pairs)
    compiled._plans.append(generic.plan)
    return compiled


_LOCK_CREATION = threading.Lock()


def update_lock(graph) -> threading.RLock:
    """The graph's update lock, made at the first compiled function with updates. Reentrant:
    a kernel (a user's op) may call another updating function of the same graph."""
    lock = graph.__dict__.get("_update_lock")
    if lock is None:
        with _LOCK_CREATION:
            lock = graph.__dict__.setdefault("_update_lock", threading.RLock())
    return lock


@contextmanager
def _collector_paused():
    """Compiling allocates many small objects that all stay alive until it ends; Python's
    cyclic garbage collector would rescan them again and again (cost growing faster than the
    graph), and there is no garbage cycle to find meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan_and_lower(program, graph, options: dict,
                    budget: Optional[arena.Budget] = None) -> Lowered:
    """Schedule (memory plan) and lower one program: the steps every program of a function
    goes through, the generic one and each shape specialisation (whose arenas share the
    function's ``budget``)."""
    t0 = time.perf_counter()
    plan = schedule(program)
    if budget is not None:
        plan.arena_limit = budget.limit
    t1 = time.perf_counter()
    fn, generated, backend = _lower(program, plan, graph, **options)
    if budget is not None:
        budget.spend(plan.arena)
    t2 = time.perf_counter()
    lowered = Lowered(fn, generated, plan, {
        "schedule": plan.strategy,
        "backend": backend,
        "planned_peak_bytes": plan.peak_bytes,
        "reused_buffers": plan.reused_buffers,
        # buffers kept across calls: one arena's bytes (graphc.compiler.arena); the bytes
        # kept now are stats["kept_bytes"]
        "arena_bytes": plan.arena.nbytes if plan.arena is not None else 0,
        "seconds": {"schedule": t1 - t0, "codegen": t2 - t1},
    })
    if backend == "vm":
        fn.stats = lowered.stats  # (a promotion to generated source updates "backend")
    return lowered


def _plan_and_lower_paused(program, graph, options: dict,
                           budget: Optional[arena.Budget] = None) -> Lowered:
    with _collector_paused():
        return _plan_and_lower(program, graph, options, budget)


#: The back ends of :func:`function`.
BACKENDS = ("auto", "source", "vm")

#: From this many instructions on, ``backend="auto"`` runs the instruction list. Measured on
#: the tanh chain's gradient (benchmarks/bench_chain.py): generating and compiling source
#: costs 23-45 us per instruction (Python's ``compile()`` alone about 20), lowering to the VM
#: 1-2.5 us; the VM's dispatch adds 0.2-0.5 us per instruction and call (1.5x on 10-element
#: ops, nothing on large arrays). At 500 instructions source takes some 15 ms to build, the
#: VM 1 ms, and source pays back after 20-100 calls of tiny ops.
VM_THRESHOLD = 500

#: About what generating and compiling source costs per instruction (measured 23-45 us): an
#: automatically chosen VM program turns into generated source once its calls have run that
#: long in all (``vm.Machine.promote_after``).
SOURCE_SECONDS_PER_INSTRUCTION = 30e-6


def _lower(program, plan, graph, *, backend: str = "auto", check_numerics: bool = False,
           structure=None, trust_input: bool = False, fastmath: bool = False):
    """The callable for a planned program: ``(fn, generated, backend)`` where ``generated``
    has the source (or listing) and parameter names, and ``backend`` is "source" or "vm"."""
    def generate():
        generated = codegen.generate(program, plan, graph, check_numerics=check_numerics,
                                     structure=structure, trust_input=trust_input,
                                     fastmath=fastmath)
        return generated, codegen.compile_source(generated)

    def generate_later():  # (at a call: the collector paused as while compiling)
        with _collector_paused():
            return generate()

    automatic = backend == "auto"
    if automatic:
        backend = "vm" if len(plan.order) >= VM_THRESHOLD else "source"
    if backend == "vm":
        machine = vm.lower(program, plan, graph, check_numerics=check_numerics,
                           structure=structure, trust_input=trust_input)
        if automatic:  # called often, it runs as generated source (see vm.Machine)
            machine.promote_after(SOURCE_SECONDS_PER_INSTRUCTION * len(plan.order),
                                  generate_later)
        return machine, machine, "vm"
    generated, fn = generate()
    return fn, generated, "source"


def _optimize(program, passes: tuple):
    if not passes:
        return program, [], {}
    return run_passes(program, passes)


def _graph_of(nodes: list):
    graph = None
    for n in nodes:
        if not isinstance(n, Node):
            raise GraphcError(f"function: expected graphc nodes, got {type(n).__name__}")
        if graph is None:
            graph = n.graph
        elif n.graph is not graph:
            raise GraphcError(f"function: {describe(n)} belongs to another graph than the "
                              "other nodes")
    if graph is None:
        raise GraphcError("function needs at least one output node")
    return graph
