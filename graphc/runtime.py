"""The interpreter behind ``Graph.run``: evaluate the ancestors of the fetches with NumPy kernels.

Iterative, each node once, every value released right after its last consumer has run.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import shapes
from .errors import FeedError, GraphcError, MissingFeedError, ShapeError, describe
from .ops.registry import REGISTRY


def flatten(fetches) -> tuple[list, Any]:
    """Fetches as a flat list of nodes, plus a function that rebuilds the user's structure."""
    from .graph import Node

    if isinstance(fetches, Node):
        return [fetches], lambda values: values[0]
    if isinstance(fetches, dict):
        keys = list(fetches)
        return [fetches[k] for k in keys], lambda values: dict(zip(keys, values))
    if isinstance(fetches, (list, tuple)):
        kind = type(fetches)
        return list(fetches), lambda values: kind(values)
    raise GraphcError(f"fetches must be a node or a list, tuple or dict of nodes, "
                      f"not {type(fetches).__name__}")


def check_feed_value(node, value) -> np.ndarray:
    """A fed value as an array of the node's dtype, or :class:`FeedError` saying why not."""
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise FeedError(f"cannot feed a {type(value).__name__} to {describe(node)}") from exc
    if array.dtype.kind not in "biufc":
        raise FeedError(f"cannot feed {value!r:.60} to {describe(node)}: a value must be "
                        f"numbers or bools, not {array.dtype}")
    if not shapes.fits(array.shape, node.shape):
        raise FeedError(f"cannot feed a value of shape {array.shape} to {describe(node)}, "
                        f"which has shape {shapes.fmt(node.shape)}")
    if array.dtype != node.dtype:
        if not np.can_cast(array.dtype, node.dtype, "same_kind"):
            raise FeedError(f"cannot feed a value of dtype {array.dtype} to {describe(node)} of "
                            f"dtype {node.dtype} (not a safe 'same_kind' cast)")
        array = array.astype(node.dtype)
    return array


def resolve_feed(graph, feed: Optional[dict]) -> dict:
    """``{node id: checked array}`` from a feed keyed by nodes or names."""
    from .graph import Node

    out = {}
    for key, value in (feed or {}).items():
        if isinstance(key, Node):
            if key.graph is not graph:
                raise FeedError(f"{describe(key)} fed to a graph it does not belong to")
            node = key
        elif isinstance(key, str):
            if key not in graph:
                raise FeedError(f"feed names {key!r}, but the graph has no node of that name")
            node = graph[key]
        else:
            raise FeedError(f"feed keys must be nodes or names, not {type(key).__name__}")
        out[node.id] = check_feed_value(node, value)
    return out


def needed_nodes(graph, fetches: list, fed: dict) -> list:
    """Ancestors of the fetches (stopping at fed nodes), in topological order."""
    seen = set()
    stack = [n for n in fetches]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if node.id not in fed:
            stack.extend(node.inputs)
    nodes = graph._nodes
    return [nodes[i] for i in sorted(seen)]


def require_fed(order: list, fed, purpose: str) -> None:
    """:class:`MissingFeedError` naming every placeholder in ``order`` that is not fed."""
    from .graph import user_site

    missing = [n for n in order if n.op == "placeholder" and n.id not in fed]
    if missing:
        names = ", ".join(f"'{n.name}' {shapes.fmt(n.shape)} {n.dtype}" for n in missing)
        built = "; ".join(f"'{n.name}' built at {n.site}" for n in missing if n.site)
        raise MissingFeedError(f"placeholder{'s' if len(missing) > 1 else ''} {names} must be "
                               f"fed {purpose} ({built + '; ' if built else ''}called at "
                               f"{user_site()})")


def kernel_error(node, exc: Exception, values) -> GraphcError:
    """A kernel's NumPy error as a graphc error naming the node and where it was built."""
    given = ", ".join(f"{np.shape(v)} {getattr(v, 'dtype', type(v).__name__)}" for v in values)
    shapey = any(word in str(exc) for word in ("shape", "broadcast", "dimension", "size"))
    kind = ShapeError if isinstance(exc, IndexError) or (isinstance(exc, ValueError) and shapey) \
        else GraphcError
    return kind(f"{describe(node)} failed at run time: {exc}; inputs: {given}")


def run(graph, fetches, feed: Optional[dict] = None):
    """``Graph.run``: check the feed, then evaluate the needed nodes in creation order."""
    nodes, rebuild = flatten(fetches)
    for n in nodes:
        if getattr(n, "graph", None) is not graph:
            what = describe(n) if hasattr(n, "graph") else repr(n)
            raise GraphcError(f"cannot fetch {what}: not a node of this graph")
    fed = resolve_feed(graph, feed)
    order = needed_nodes(graph, nodes, fed)
    require_fed(order, fed, f"to compute {', '.join(repr(n.name) for n in nodes)}")

    # Reference counts: a value is dropped once its last consumer (or fetch) has used it.
    uses: dict[int, int] = {}
    for n in order:
        if n.id not in fed:
            for x in n.inputs:
                uses[x.id] = uses.get(x.id, 0) + 1
    for n in nodes:
        uses[n.id] = uses.get(n.id, 0) + 1

    env: dict[int, Any] = {}
    with np.errstate(all="ignore"):  # once per run, not per node: inf and nan are values here
        for node in order:
            if node.id in fed:
                env[node.id] = fed[node.id]
                continue
            args = [env[x.id] for x in node.inputs]
            env[node.id] = evaluate(node, args)
            for x in node.inputs:
                uses[x.id] -= 1
                if uses[x.id] == 0:
                    del env[x.id]
    protected = {id(v) for v in graph._values.values()} | {id(v) for v in fed.values()}
    return rebuild([as_result(env[n.id], n, protected) for n in nodes])


def evaluate(node, args: list):
    """Run one node's kernel, turning NumPy failures into graphc errors."""
    if node.op == "variable":
        return node.graph._values[node.id]
    kernel = REGISTRY[node.op].kernel
    try:
        value = kernel(*args, **node.attrs)
    except GraphcError:
        raise
    except Exception as exc:
        raise kernel_error(node, exc, args) from exc
    if not shapes.fits(np.shape(value), node.shape):
        raise ShapeError(f"{describe(node)} produced shape {np.shape(value)} at run time, but "
                         f"its static shape is {shapes.fmt(node.shape)}; inputs: "
                         f"{', '.join(str(np.shape(a)) for a in args)}")
    return value


def as_result(value, node, protected: set):
    """A fetched value the user may keep and modify: never a read-only broadcast view, never
    (a view of) a variable's storage or a fed array, which writing into it would change."""
    if isinstance(value, np.generic):
        return value
    if not isinstance(value, np.ndarray):
        return np.asarray(value, dtype=node.dtype)
    if not value.flags.writeable or _aliases(value, protected):
        return value.copy()
    return value


def _aliases(value: np.ndarray, protected: set) -> bool:
    """Whether ``value`` is, or views, one of the arrays whose ids are in ``protected``."""
    while value is not None:
        if id(value) in protected:
            return True
        value = value.base if isinstance(value.base, np.ndarray) else None
    return False
