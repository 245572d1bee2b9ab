"""Run graphc graphs on Dask, data-parallel over the batch axis.

``graphc.dask.function(inputs, outputs)`` is ``gc.function`` for data that does not fit in one
machine's memory: its batch inputs (placeholders whose leading size is ``None``) take
``dask.array`` arrays chunked along the rows. The graph is split where the batch axis is
reduced (see :mod:`graphc.dask.analysis`): each chunk of rows runs one graphc-compiled kernel
(a Dask task), the per-chunk partial sums, counts, maxima or log-sum-exps are combined by a
tree of Dask tasks, and a small graph on the client finishes the batch-free rest (the outputs
and the updates). Row-wise outputs come back as dask arrays, one block per chunk.
See docs/dask.md.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Optional, Sequence, Union

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.delayed import Delayed
except ImportError as exc:  # an optional extra
    raise ImportError("graphc.dask needs Dask: pip install 'graphc[dask]' (dask[array] and "
                      "distributed)") from exc

from ..compiler import function as compile_function
from ..compiler.ir import check_update
from ..errors import FeedError, GraphcError, MissingFeedError, describe
from ..graph import Graph, Node
from ..io import from_json, to_json
from ..ops.elementwise import exp, sub
from ..ops.nn import logsumexp
from ..ops.reduce import reduced_size, sum as reduce_sum
from ..ops.special import cast
from ..runtime import check_feed_value, flatten, needed_nodes, require_fed
from .analysis import FREE, REDUCE, ROWS, BatchError, Kind, classify, static_count

__all__ = ["function", "DaskFunction", "BatchError", "Kind"]

#: How the per-chunk partials of each kind of reduction combine (mean: a sum and a count).
_COMBINE = {"sum": np.add, "count": np.add, "mean": np.add, "max": np.maximum,
            "min": np.minimum, "logsumexp": np.logaddexp, "same": None}


def function(inputs: Union[Node, Sequence[Node]], outputs, updates: Optional[dict] = None, *,
             client=None, compute: bool = True, split_every: int = 8) -> "DaskFunction":
    """Compile ``outputs`` for Dask: like :func:`graphc.function`, over chunks of rows.

    ``inputs`` are the nodes the callable takes (positionally or by name). Batch inputs (leading
    size ``None``) take ``dask.array`` arrays (NumPy arrays are wrapped), chunked along axis 0;
    all of them must have the same number of rows and are aligned to the first one's chunks.
    Other inputs take NumPy values. Outputs reduced over the batch (and batch-free outputs) are
    returned as NumPy arrays, row-wise outputs as dask arrays. ``updates`` (``{variable:
    node}``) are computed from the old values and written on the client after the outputs, as
    ``gc.function`` does.

    ``client`` is a ``dask.distributed.Client`` to run on (default: Dask's current scheduler,
    the threaded one unless a client is active). ``compute=False`` returns dask arrays for the
    reduced outputs too, without computing anything (no updates then). ``split_every`` is the
    fan-in of the tree that combines the chunks' partial results.

    Raises :class:`BatchError` naming the node when the graph mixes rows in a way that does not
    split over chunks (a reshape merging the batch axis, a slice of the rows, ...). A softmax
    over the batch axis takes two passes (its input's log-sum-exp over the batch first).
    """
    return DaskFunction(inputs, outputs, updates, client=client, compute=compute,
                        split_every=split_every)


# -- split graphs: copies of parts of the user's graph, cut at given nodes --------------------
def _extract(targets: list, cut, batch_lse: Optional[dict] = None
             ) -> tuple[Graph, list, dict]:
    """A new graph computing copies of ``targets``: ``(graph, cuts, made)``.

    Ancestors for which ``cut(node)`` holds become placeholders (``cuts``, in creation order);
    the other ancestors are copied with their name, site and attrs (``made``: id -> copy).
    Targets other than leaves are never cut. A softmax over the batch axis (a key of
    ``batch_lse``) becomes ``exp(x - lse)``, its :class:`_BatchLogSumExp` a placeholder.
    """
    wanted = {t.id for t in targets if t.inputs}  # a leaf target is a placeholder too

    def is_cut(node):
        return node.id not in wanted and cut(node)

    seen, stack = set(), list(targets)
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if not is_cut(node):
            stack.extend(node.inputs)
    graph, made, cuts = Graph(), {}, []
    for node in (targets[0].graph._nodes[i] for i in sorted(seen)):
        if is_cut(node):
            made[node.id] = graph._add("placeholder", (), {}, node.shape, node.dtype, node.name,
                                       site=node.site, derivative=node.derivative)
            cuts.append(node)
        elif node.op in ("placeholder", "variable"):
            raise GraphcError(f"graphc.dask: {describe(node)} reached without a value")
        elif batch_lse and node.id in batch_lse:
            lse = batch_lse[node.id]
            cuts.append(lse)
            x = made[node.inputs[0].id]
            given = made[lse.id] = graph._add("placeholder", (), {}, lse.shape, lse.dtype,
                                              lse.name, site=node.site,
                                              derivative=node.derivative)
            made[node.id] = exp(sub(x, given), name=node.name) if node.op == "softmax" else \
                sub(x, given, name=node.name)
        else:
            made[node.id] = graph._add(node.op, tuple(made[x.id] for x in node.inputs),
                                       dict(node.attrs), node.shape, node.dtype, node.name,
                                       site=node.site, derivative=node.derivative)
    return graph, cuts, made


class _Kernel:
    """A graphc-compiled function that travels to Dask workers as its graph's JSON text (the
    batch-free values are bound separately) and is compiled there once per process: the
    digest of the text keys a small per-process cache."""

    def __init__(self, graph: Graph, inputs: list, outputs: list) -> None:
        self.inputs = tuple(n.name for n in inputs)
        self.outputs = tuple(n.name for n in outputs)
        self.fn = compile_function(inputs, list(outputs))
        self.graph: Optional[Graph] = graph  # on the client only
        self.json = to_json(graph)
        self.digest = hashlib.sha256(repr((self.json, self.inputs, self.outputs)).encode()
                                     ).hexdigest()[:24]

    def __getstate__(self):
        return self.digest, self.json, self.inputs, self.outputs

    def __setstate__(self, state) -> None:
        self.digest, self.json, self.inputs, self.outputs = state
        self.graph = None
        self.fn = _compiled(self)

    def __dask_tokenize__(self):
        return ("graphc-kernel", self.digest)


class _BatchLogSumExp:
    """Stands for ``logsumexp(x, axis, keepdims=True)``, the batch reduction that a softmax over
    the batch axis needs one pass before it (keyed ``("logsumexp", softmax id)``)."""

    op = "logsumexp"

    def __init__(self, softmax: Node) -> None:
        x = softmax.inputs[0]
        axes = tuple(a % x.ndim for a in softmax.attrs["axis"])
        self.id = ("logsumexp", softmax.id)
        self.inputs = (x,)
        self.attrs = {"axis": softmax.attrs["axis"], "keepdims": True}
        self.shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
        self.dtype = softmax.dtype
        self.name = f"{softmax.name}.logsumexp"


_KERNELS: dict[str, Any] = {}  # digest -> compiled function, in each worker process
_KERNELS_LOCK = threading.Lock()


def _compiled(kernel: _Kernel):
    with _KERNELS_LOCK:
        fn = _KERNELS.get(kernel.digest)
    if fn is None:  # two threads may both compile it: harmless
        graph = from_json(kernel.json)
        fn = compile_function([graph[n] for n in kernel.inputs],
                              [graph[n] for n in kernel.outputs])
        with _KERNELS_LOCK:
            while len(_KERNELS) >= 64:
                del _KERNELS[next(iter(_KERNELS))]
            _KERNELS[kernel.digest] = fn
    return fn


def _aligned(block):
    """Arrays received by a worker can sit at unaligned addresses in a message buffer, where
    NumPy takes a slow path (5-20x): a copy costs less."""
    if isinstance(block, np.ndarray) and not block.flags.aligned:
        return np.array(block)
    return block


def _run_chunk(kernel: _Kernel, bound: tuple, *blocks) -> tuple:
    """One task: the kernel on one chunk of rows (with the batch-free values bound)."""
    return tuple(kernel.fn(*map(_aligned, blocks), *map(_aligned, bound)))


def _run_rows(kernel: _Kernel, bound: tuple, *blocks) -> np.ndarray:
    return kernel.fn(*map(_aligned, blocks), *map(_aligned, bound))[0]


def _run_batch_free(kernel: _Kernel, *values) -> tuple:
    """A task of compute=False: a batch-free graph."""
    return tuple(kernel.fn(*values))


def _combine(combines: tuple, *partials) -> tuple:
    """Several chunks' partial results as one (elementwise, per kind of reduction)."""
    out = []
    for k, how in enumerate(combines):
        parts = [p[k] for p in partials]
        out.append(parts[0] if how is None else reduce(how, parts))
    return tuple(out)


def _tree(parts: list, combines: tuple, split_every: int):
    """Combine Delayed partials with a tree of tasks of fan-in ``split_every``."""
    combine = dask.delayed(_combine, pure=True)
    while len(parts) > 1:
        parts = [combine(combines, *parts[i:i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


# -- the plan: passes over the data, and batch-free graphs on the client -----------------------
@dataclass
class _Reduction:
    node: Node
    combine: str
    first: int  # index of its first partial among the kernel's outputs
    count: int  # how many partials (2 for a mean: a sum and a count)


@dataclass
class _Client:
    """A batch-free graph run on the client (or, with compute=False, as one Dask task):
    values of ``targets`` from those of ``cuts``."""

    targets: list
    cuts: list
    kernel: _Kernel


@dataclass
class _Pass:
    client: Optional[_Client] = None  # the batch-free values this pass's kernels need
    kernel: Optional[_Kernel] = None  # per chunk: the partials of ``reductions``
    kernel_batch: list = field(default_factory=list)  # batch inputs the kernel takes
    kernel_bound: list = field(default_factory=list)  # then the batch-free values
    reductions: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # (output node, kernel, batch inputs, bound)


class DaskFunction:
    """A graph compiled for Dask (see :func:`graphc.dask.function`).

    ``kinds`` maps each needed node to its :class:`~graphc.dask.analysis.Kind` (batch-free,
    row-wise with the batch axis's position, or a batch reduction), ``levels`` to the pass over
    the data that computes it; ``passes`` is how many passes a call makes (one for gradients
    and Hessians of sums and means).
    """

    def __init__(self, inputs, outputs, updates, *, client, compute, split_every) -> None:
        if isinstance(inputs, Node):
            inputs = [inputs]
        self.inputs = list(inputs)
        self.client = client
        self.compute = compute
        self.split_every = int(split_every)
        if self.split_every < 2:
            raise GraphcError(f"split_every must be at least 2, not {split_every}")
        self._flat, self._rebuild = flatten(outputs)
        if updates is not None and not isinstance(updates, dict):
            raise GraphcError(f"graphc.dask.function: updates must be a dict {{variable: node}},"
                              f" not {type(updates).__name__}")
        self._updates = list((updates or {}).items())
        if self._updates and not compute:
            raise GraphcError("graphc.dask.function: updates need the computed values; drop "
                              "compute=False or the updates")
        nodes = self.inputs + self._flat + [v for pair in self._updates for v in pair]
        for n in nodes:
            if not isinstance(n, Node):
                raise GraphcError(f"graphc.dask.function: expected graphc nodes, got "
                                  f"{type(n).__name__}")
            if n.graph is not nodes[0].graph:
                raise GraphcError(f"graphc.dask.function: {describe(n)} belongs to another "
                                  "graph than the other nodes")
        for var, value in self._updates:
            check_update(var, value)
        if len({n.id for n in self.inputs}) != len(self.inputs):
            raise GraphcError("the same node is given twice among the function's inputs")
        self.graph = nodes[0].graph
        self._plan()

    # -- compile time ------------------------------------------------------------------------
    def _plan(self) -> None:
        fed = {n.id for n in self.inputs}
        targets = self._flat + [v for _, v in self._updates]
        order = needed_nodes(self.graph, targets, fed)
        require_fed(order, fed, "as inputs of the function")
        self._batch = [n for n in self.inputs if n.ndim and n.shape[0] is None]
        batch_ids = {n.id for n in self._batch}
        self.kinds, self.levels = classify(order, batch_ids)
        kinds, levels = self.kinds, self.levels
        for var, value in self._updates:
            if kinds[value.id].kind == ROWS:
                raise BatchError(f"the update of {describe(var)} is row-wise: {describe(value)}")
        constant: dict[int, bool] = {}  # nodes computed from constants alone: copied into every graph
        for n in order:
            constant[n.id] = n.id not in fed and n.op not in ("placeholder", "variable") and \
                all(constant[x.id] for x in n.inputs)
        self._static = [n for n in order if kinds[n.id].kind == REDUCE and kinds[n.id].static]
        self._variables = [n for n in order if n.op == "variable" and n.id not in fed]
        self._batch_lse = {n.id: _BatchLogSumExp(n) for n in order
                           if kinds[n.id].kind == ROWS and kinds[n.id].combine}
        for lse in self._batch_lse.values():  # a reduction available where its softmax is
            kinds[lse.id] = Kind(REDUCE, combine="logsumexp")
            levels[lse.id] = levels[lse.id[1]]

        def rows_cut(n):  # what a chunk's kernel takes as inputs
            return not constant[n.id] and (n.id in fed or kinds[n.id].kind != ROWS)

        def client_cut(n):  # what a batch-free graph on the client takes as inputs
            return not constant[n.id] and (n.id in fed or n.op == "variable" or
                                           kinds[n.id].kind == REDUCE)

        def leaf(n):  # a value known without computing: fed, stored, or a reduction result
            return n.id in fed or n.op == "variable" or kinds[n.id].kind == REDUCE

        reductions = [n for n in order if kinds[n.id].kind == REDUCE and not kinds[n.id].static]
        reductions += self._batch_lse.values()
        row_outputs = [n for n in dict.fromkeys(self._flat) if kinds[n.id].kind == ROWS]
        count = max([levels[n.id] for n in reductions] + [levels[n.id] + 1 for n in row_outputs],
                    default=0)
        self._passes = []
        for p in range(count):
            stage = _Pass()
            mine = [n for n in reductions if levels[n.id] == p + 1]
            needs = []
            if mine:
                stage.kernel, stage.kernel_batch, stage.kernel_bound, stage.reductions = \
                    self._reduction_kernel(mine, rows_cut)
                needs += stage.kernel_bound
            for out in (n for n in row_outputs if levels[n.id] == p):
                graph, cuts, made = _extract([out], rows_cut, self._batch_lse)
                batch, bound = self._split_cuts(cuts)
                kernel = _Kernel(graph, [made[n.id] for n in batch + bound], [made[out.id]])
                stage.rows.append((out, kernel, batch, bound))
                needs += bound
            computed = [n for n in dict.fromkeys(needs) if not leaf(n)]
            if computed:
                stage.client = self._client(computed, client_cut)
            self._passes.append(stage)
        self.passes = len(self._passes)
        finish = [n for n in dict.fromkeys(targets)
                  if kinds[n.id].kind == FREE and not leaf(n)]
        self._finish = self._client(finish, client_cut) if finish else None

    def _split_cuts(self, cuts: list) -> tuple[list, list]:
        batch_ids = {n.id for n in self._batch}
        return [n for n in cuts if n.id in batch_ids], [n for n in cuts if n.id not in batch_ids]

    def _reduction_kernel(self, mine: list, rows_cut):
        """One kernel for all reductions of a pass: each chunk's partial results."""
        means = {n.id for n in mine if self.kinds[n.id].combine == "mean"}
        lses = {n.id for n in mine if isinstance(n, _BatchLogSumExp)}
        graph, cuts, made = _extract([n.inputs[0] if n.id in means or n.id in lses else n
                                      for n in mine], rows_cut, self._batch_lse)
        outputs: list = []
        plan: list = []
        for node in mine:
            kind = self.kinds[node.id]
            if node.id in means:  # a sum and a count, in the mean's dtype
                x = made[node.inputs[0].id]
                if x.dtype != node.dtype:
                    x = cast(x, node.dtype)
                axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
                parts = [reduce_sum(x, axis, keepdims, name=f"{node.name}.sum"),
                         reduced_size(x, axis, node.dtype)]
            elif node.id in lses:  # a softmax over the batch axis needs it next pass
                x = made[node.inputs[0].id]
                parts = [logsumexp(cast(x, node.dtype) if x.dtype != node.dtype else x,
                                   node.attrs["axis"], keepdims=True, name=node.name)]
            else:
                parts = [made[node.id]]
            plan.append(_Reduction(node, kind.combine, len(outputs), len(parts)))
            outputs += parts
        batch, bound = self._split_cuts(cuts)
        kernel = _Kernel(graph, [made[n.id] for n in batch + bound], outputs)
        return kernel, batch, bound, plan

    def _client(self, targets: list, client_cut) -> _Client:
        graph, cuts, made = _extract(targets, client_cut)
        kernel = _Kernel(graph, [made[n.id] for n in cuts], [made[n.id] for n in targets])
        return _Client(targets, cuts, kernel)

    # -- call time ---------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        feed = self._bind(args, kwargs)
        values: dict[int, Any] = {}
        chunks, rows = self._batch_chunks(feed, values)
        for var in self._variables:  # read at call time, as gc.function does
            values[var.id] = self.graph._values[var.id]
        for node in self._static:
            values[node.id] = static_count(node, rows, self.kinds[node.inputs[0].id].axis)
        row_results = {}
        for stage in self._passes:
            if stage.client is not None:
                self._run_client(stage.client, values)
            if stage.kernel is not None:
                self._run_reductions(stage, feed, values)
            for out, kernel, batch, bound in stage.rows:
                row_results[out.id] = self._row_output(out, kernel, batch, bound, feed, values,
                                                       chunks)
        if self._finish is not None:
            self._run_client(self._finish, values)
        results = []
        for node in self._flat:
            if node.id in row_results:
                results.append(row_results[node.id])
            else:
                results.append(self._result(node, values[node.id]))
        for var, value in self._updates:  # all computed from the old values, then written
            var.value = values[value.id]
        return self._rebuild(results)

    def _bind(self, args: tuple, kwargs: dict) -> dict:
        names = [n.name for n in self.inputs]
        if len(args) > len(names):
            raise FeedError(f"the function takes {len(names)} input(s) ({', '.join(names)}) "
                            f"but {len(args)} were given")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise FeedError(f"the function has no input named {key!r}; its inputs are "
                                f"{', '.join(repr(n) for n in names)}")
            if key in given:
                raise FeedError(f"input {key!r} given twice: by position and by name")
            given[key] = value
        missing = [n for n in self.inputs if n.name not in given]
        if missing:
            raise MissingFeedError(f"input{'s' if len(missing) > 1 else ''} "
                                   f"{', '.join(describe(n) for n in missing)} not given to the "
                                   "compiled function")
        return {n.id: given[n.name] for n in self.inputs}

    def _batch_chunks(self, feed: dict, values: dict) -> tuple[tuple, int]:
        """Check the batch inputs (before any task runs) and align their chunks; check and
        store the other inputs. Returns the chunks of the rows and the number of rows."""
        for node in self.inputs:
            if node not in self._batch:
                values[node.id] = check_feed_value(node, feed[node.id])
        chunks, rows, first = None, None, None
        for node in self._batch:
            array = feed[node.id]
            if not isinstance(array, da.Array):
                array = da.asarray(check_feed_value(node, array))
            self._check_chunks(node, array)
            if any(np.isnan(c) for c in array.chunks[0]):
                array = array.compute_chunk_sizes()
            if chunks is None:
                chunks, rows, first = array.chunks[0], int(sum(array.chunks[0])), node
            elif int(sum(array.chunks[0])) != rows:
                raise FeedError(f"the batch inputs {describe(first)} and {describe(node)} have "
                                f"{rows} and {int(sum(array.chunks[0]))} rows; all batch inputs "
                                "need the same rows")
            feed[node.id] = array.rechunk((chunks,) + (-1,) * (array.ndim - 1))
        return chunks or (), rows or 0

    @staticmethod
    def _check_chunks(node, array) -> None:
        """The usual FeedError for a chunk that does not fit the placeholder."""
        if array.ndim != node.ndim or any(np.isnan(d) for d in array.shape[1:]):
            check_feed_value(node, np.empty((0,) * array.ndim, array.dtype))
        for rows in dict.fromkeys(array.chunks[0]):
            shape = (0 if np.isnan(rows) else int(rows),) + tuple(int(d) for d in array.shape[1:])
            check_feed_value(node, np.broadcast_to(np.zeros((), node.dtype), shape))
        check_feed_value(node, np.empty((0,) + tuple(int(d) for d in array.shape[1:]),
                                        array.dtype))

    def _run_client(self, client: _Client, values: dict) -> None:
        args = [values[n.id] for n in client.cuts]
        if self.compute:
            outs = client.kernel.fn(*args)
        else:
            outs = dask.delayed(_run_batch_free, pure=True, nout=len(client.targets))(
                dask.delayed(client.kernel, pure=True), *args)
        for node, value in zip(client.targets, outs):
            values[node.id] = value

    def _tasks_inputs(self, batch: list, bound: list, feed: dict, values: dict):
        blocks = [feed[n.id].to_delayed().ravel() for n in batch]
        bound_d = dask.delayed(tuple(values[n.id] for n in bound), pure=True)
        return list(zip(*blocks)) if blocks else [()], bound_d

    def _run_reductions(self, stage: _Pass, feed: dict, values: dict) -> None:
        per_chunk, bound_d = self._tasks_inputs(stage.kernel_batch, stage.kernel_bound, feed,
                                                values)
        kernel_d = dask.delayed(stage.kernel, pure=True)
        run = dask.delayed(_run_chunk, pure=True)
        parts = [run(kernel_d, bound_d, *blocks) for blocks in per_chunk]
        combines = tuple(_COMBINE[r.combine] for r in stage.reductions
                         for _ in range(r.count))
        root = _tree(parts, combines, self.split_every)
        if self.compute:
            (total,) = self._dask_compute(root)
            for r in stage.reductions:
                values[r.node.id] = _finish(r.combine, r.first, r.count, r.node.dtype, total)
        else:
            for r in stage.reductions:
                values[r.node.id] = dask.delayed(_finish, pure=True)(
                    r.combine, r.first, r.count, r.node.dtype, root)

    def _dask_compute(self, *objs):
        if self.client is not None:
            return tuple(self.client.compute(list(objs), sync=True))
        return dask.compute(*objs)

    def _row_output(self, out, kernel, batch, bound, feed, values, chunks):
        per_chunk, bound_d = self._tasks_inputs(batch, bound, feed, values)
        kernel_d = dask.delayed(kernel, pure=True)
        run = dask.delayed(_run_rows, pure=True)
        axis = self.kinds[out.id].axis
        blocks = []
        for rows, arrays in zip(chunks, per_chunk):
            shape = tuple(rows if d == axis else (np.nan if n is None else n)
                          for d, n in enumerate(out.shape))
            blocks.append(da.from_delayed(run(kernel_d, bound_d, *arrays), shape, out.dtype))
        return blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=axis)

    def _result(self, node, value):
        if self.compute:
            array = np.asarray(value)
            if node.op == "variable" or node.id in {n.id for n in self.inputs}:
                array = array.copy()  # never the variable's storage
            return array[()] if array.ndim == 0 else array  # scalars as gc.function gives
        if not isinstance(value, Delayed):
            value = dask.delayed(value)
        shape = tuple(np.nan if d is None else d for d in node.shape)
        return da.from_delayed(value, shape, node.dtype)

    @property
    def graphs(self) -> dict:
        """The split graphs by role, in the order a call runs them: ``"client k"`` (batch-free
        values pass ``k`` needs), ``"map k"`` (one chunk's partial results in pass ``k``),
        ``"rows k: NAME"`` (a row-wise output's kernel), ``"finish"`` (outputs and updates)."""
        out = {}
        for k, stage in enumerate(self._passes):
            if stage.client is not None:
                out[f"client {k}"] = stage.client.kernel.graph
            if stage.kernel is not None:
                out[f"map {k}"] = stage.kernel.graph
            for node, kernel, _, _ in stage.rows:
                out[f"rows {k}: {node.name}"] = kernel.graph
        if self._finish is not None:
            out["finish"] = self._finish.kernel.graph
        return out

    def __repr__(self) -> str:
        names = ", ".join(n.name for n in self.inputs)
        return (f"<graphc.dask.DaskFunction({names}): {len(self._passes)} pass(es) over the "
                f"rows, batch inputs {', '.join(n.name for n in self._batch) or 'none'}>")


def _finish(combine: str, first: int, count: int, dtype, total: tuple) -> np.ndarray:
    """A reduction's value from the combined partials (its own at ``first``, ``count`` of
    them)."""
    parts = total[first:first + count]
    if combine == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(parts[0] / parts[1], dtype=dtype)
    return np.asarray(parts[0], dtype=dtype)
