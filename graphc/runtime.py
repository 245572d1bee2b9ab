"""The interpreter behind ``Graph.run``: evaluate the ancestors of the fetches with NumPy kernels.

Iterative, each node once, every value released right after its last consumer has run.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Container
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Optional

import numpy as np

from . import shapes
from .errors import (DTypeError, FeedError, GraphcError, IndexOutOfRangeError, MissingFeedError,
                     OutOfMemoryError, ShapeError, describe)
from .ops.registry import REGISTRY


@dataclass(frozen=True)
class Branch:
    """One container of a nested fetch: ``kind`` is ``"list"``, ``"tuple"``, ``"dict"`` (exact
    built-in types, rebuilt as displays) or ``"other"`` (a namedtuple or a subclass, rebuilt by
    ``make(values)``); ``keys`` are a dict's keys, ``children`` the specs of its items."""

    kind: str
    children: tuple
    keys: tuple = ()
    make: Optional[Callable] = None


def structure(fetches, what: str = "fetches") -> tuple[list, Any]:
    """Fetches as a flat list of nodes (in order, repeats kept) and a spec of their nesting:
    the position of a node in that list, or a :class:`Branch` of specs. ``what`` names the
    argument in errors."""
    nodes: list = []
    return nodes, _spec(fetches, nodes, (what,))


def _spec(fetch, nodes: list, path: tuple):
    from .graph import Node

    if isinstance(fetch, Node):
        nodes.append(fetch)
        return len(nodes) - 1
    if hasattr(fetch, "_fetch"):  # a value made of nodes, e.g. a sparse derivative
        inner, make = fetch._fetch()
        start = len(nodes)
        nodes.extend(inner)
        return Branch("other", tuple(range(start, len(nodes))), (), make)
    cls = type(fetch)
    if isinstance(fetch, dict):
        keys = tuple(fetch)
        children = tuple(_spec(fetch[k], nodes, path + (k,)) for k in keys)
        if cls is dict:
            return Branch("dict", children, keys)
        if isinstance(fetch, defaultdict):
            factory = fetch.default_factory
            return Branch("other", children, keys,
                          lambda values: cls(factory, zip(keys, values)))
        return Branch("other", children, keys, lambda values: cls(zip(keys, values)))
    if isinstance(fetch, (list, tuple)):
        children = tuple(_spec(f, nodes, path + (i,)) for i, f in enumerate(fetch))
        if cls is list or cls is tuple:
            return Branch(cls.__name__, children)
        if isinstance(fetch, tuple) and hasattr(cls, "_fields"):  # a namedtuple
            return Branch("other", children, (), lambda values: cls(*values))
        return Branch("other", children, (), cls)
    where = path[0] + "".join(f"[{_key_text(k)}]" for k in path[1:])
    raise GraphcError(f"{path[0]} must be a node or (nested) lists, tuples, namedtuples or "
                      f"dicts of nodes; {where} is a {cls.__name__}")


def _key_text(key) -> str:
    """A key for a message; the repr of a user's own type is never called."""
    if type(key) in (str, int, float, bool, type(None)):
        return repr(key)
    return f"<{type(key).__name__}>"


def rebuild(spec, values: list):
    """The user's structure of fetches (see :func:`structure`) around the flat ``values``."""
    if type(spec) is int:
        return values[spec]
    items = [rebuild(child, values) for child in spec.children]
    if spec.kind == "list":
        return items
    if spec.kind == "tuple":
        return tuple(items)
    if spec.kind == "dict":
        return dict(zip(spec.keys, items))
    return spec.make(items)


def flatten(fetches) -> tuple[list, Any]:
    """Fetches as a flat list of nodes, plus a function that rebuilds the user's structure
    (nested lists, tuples, namedtuples and dicts; flat ones take a shortcut)."""
    from .graph import Node

    if isinstance(fetches, Node):
        return [fetches], _first
    kind = type(fetches)
    if kind is list or kind is tuple:
        if all(isinstance(f, Node) for f in fetches):
            return list(fetches), kind
    elif kind is dict and all(isinstance(f, Node) for f in fetches.values()):
        keys = list(fetches)
        return [fetches[k] for k in keys], lambda values: dict(zip(keys, values))
    nodes, spec = structure(fetches)
    return nodes, lambda values: rebuild(spec, values)


def _first(values: list):
    return values[0]


# -- the floating-point error state of compiled functions -----------------------------------------
# ``with np.errstate(all="ignore")`` costs 1-3 us per call (it builds NumPy's error-state object
# each time); compiled functions set the same state through NumPy's context variable instead
# (0.3 us), with the ignoring state cached per current state (so np.setbufsize and the other
# settings stay the caller's). Where NumPy has no such variable, errstate itself is used.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _ERROR_STATE
except ImportError:  # pragma: no cover - other NumPy layouts
    _ERROR_STATE = None
_IGNORING: dict = {}


def errors_ignored():
    """Enter the state of ``np.errstate(all="ignore")``; returns the token for
    :func:`errors_restored` (a ``try/finally`` pair: cheaper than the context manager)."""
    if _ERROR_STATE is None:  # pragma: no cover
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    current = _ERROR_STATE.get()
    ignoring = _IGNORING.get(current)
    if ignoring is None:
        ignoring = _remember(_IGNORING, current, all="ignore")
    return _ERROR_STATE.set(ignoring)


def _remember(cache: dict, current, **settings):
    """The state of ``np.errstate(**settings)`` entered from ``current``, kept in ``cache``."""
    with np.errstate(**settings):
        state = _ERROR_STATE.get()
    if len(cache) > 64:  # states made by callers' errstate blocks: keep a few
        cache.clear()
    cache[current] = state
    return state


def _errstate_exit(token) -> None:  # pragma: no cover - other NumPy layouts
    token.__exit__(None, None, None)


#: Leave the state entered by :func:`errors_ignored` (given its token).
errors_restored = _ERROR_STATE.reset if _ERROR_STATE is not None else _errstate_exit


def check_feed_value(node, value) -> np.ndarray:
    """A fed value as an array of the node's dtype, or :class:`FeedError` saying why not
    (naming the node and the caller's line): g.run and compiled functions convert their
    arguments here, so both refuse the same values with the same words."""
    try:
        array = np.asarray(value)
    except MemoryError as exc:
        raise out_of_memory(node, exc, "while converting the value fed to it") from exc
    except Exception as exc:
        raise _feed_error(f"cannot feed a {type(value).__name__} to {describe(node)}") from exc
    if array.dtype.kind == "O" and node.dtype.kind in "iufc":
        array = _python_ints(node, array)  # ints beyond 64 bits: NumPy keeps them objects
    if array.dtype.kind not in "biufc":
        raise _feed_error(f"cannot feed {value!r:.60} to {describe(node)}: a value must be "
                          f"numbers or bools, not {array.dtype}")
    if array.shape != node.shape and not shapes.fits(array.shape, node.shape):
        raise _feed_error(f"cannot feed a value of shape {array.shape} to {describe(node)}, "
                          f"which has shape {shapes.fmt(node.shape)}")
    if array.dtype != node.dtype:
        array = _cast_fed(node, array)
    return array


def _python_ints(node, array: np.ndarray) -> np.ndarray:
    """An object array (a Python int, or a list of them, one beyond 64 bits; mixed with Python
    floats or complexes for a float or complex node) as an array of the node's numeric dtype if
    that holds every value; other object arrays are returned as they are (to be refused as not
    numbers)."""
    values = array.ravel().tolist()
    numbers = _PYTHON_NUMBERS[node.dtype.kind]
    if not all(isinstance(v, numbers) for v in values):
        return array
    worst = max(values, key=_magnitude, default=0)  # the first to leave a float's range
    try:
        if node.dtype.kind in "iu":  # exact bounds: NumPy's own check differs per version
            least, most = _int_range(node.dtype)
            low, high = min(values, default=0), max(values, default=0)
            if low < least or high > most:
                worst = low if least - low > high - most else high  # the farthest out
                raise OverflowError
        return _raising_overflow(np.asarray, array, node.dtype)
    except (OverflowError, FloatingPointError) as exc:
        bits = abs(worst).bit_length() if type(worst) is int else 0
        what = f"an integer of {bits} bits" if bits > 64 else worst
        raise _feed_error(f"cannot feed {what} to {describe(node)} of dtype {node.dtype}: "
                          f"it is out of {node.dtype}'s range") from exc


def _magnitude(value) -> float:
    """``abs(value)``, 0 for a NaN (which would otherwise win every comparison in max)."""
    return abs(value) if value == value else 0


# The Python types an object array may hold to be fed to a node, per kind of its dtype (NumPy
# converts [2**70, 1.5] with dtype=float, but keeps it an object array by itself; np.float64
# is a float).
_PYTHON_NUMBERS = {"i": (int, bool), "u": (int, bool), "f": (int, bool, float),
                   "c": (int, bool, float, complex)}


def _probe_same_value() -> bool:
    """Whether ``astype(..., casting="same_value")`` exists (NumPy >= 2.4): an integer cast that
    refuses a value the target cannot hold, in the same pass as the cast."""
    try:
        np.zeros(1, np.int64).astype(np.int32, casting="same_value")
    except (TypeError, ValueError):
        return False
    return True


_SAME_VALUE = _probe_same_value()


def _cast_fed(node, array: np.ndarray) -> np.ndarray:
    """``array`` cast to the node's dtype, refusing a cast that is not 'same_kind' and values
    the dtype cannot hold: a finite value that would become inf, an integer that would wrap.
    The same in every error state and warnings filter of the caller (the cast itself neither
    warns nor raises)."""
    dtype = node.dtype
    rule = _CAST_RULES.get((array.dtype, dtype)) or _cast_rule(array.dtype, dtype)
    try:
        if rule is _WIDENING:  # no value can leave the target's range
            if array.dtype.kind in "biu":  # (no flag to raise: cast as it is)
                return array.astype(dtype)
            # (a signalling NaN raises NumPy's 'invalid' flag: it is a value, not an error)
            return _raising_overflow(array.astype, dtype)
        if rule is _INT_NARROWING:
            return _narrowed_ints(node, array)
        if rule is _FLOAT_NARROWING:
            if array.size == 1 and array.dtype.kind in "iuf":  # one real value: look at it
                tiny, top = _normal_range(dtype)  # (normal numbers neither over- nor underflow)
                value = array.item()
                if tiny <= abs(value) <= top or value == 0:
                    return array.astype(dtype)
            return _raising_overflow(array.astype, dtype)
    except FloatingPointError as exc:  # (NumPy flags a cast overflow only: finite -> inf)
        raise _feed_error(f"cannot feed a value of dtype {array.dtype} to {describe(node)} "
                          f"of dtype {dtype}: it overflows {dtype} (whose largest finite "
                          f"value is {_largest_text(dtype)})") from exc
    except MemoryError as exc:
        raise out_of_memory(node, exc, f"while casting the value fed to it "
                            f"(shape {array.shape}) to {dtype}") from exc
    raise _feed_error(f"cannot feed a value of dtype {array.dtype} to {describe(node)} of "
                      f"dtype {dtype} (not a safe 'same_kind' cast)")


def _largest_text(dtype: np.dtype) -> str:
    """The largest finite value of a float or complex dtype, written exactly: as a Python
    float where one holds it, else in NumPy's own words (longdouble's is beyond float's)."""
    largest = np.finfo(dtype).max
    as_float = float(largest)
    return repr(as_float) if as_float == largest else str(largest)


def _narrowed_ints(node, array: np.ndarray) -> np.ndarray:
    """An integer array cast to the node's narrower integer dtype, or FeedError naming a value
    out of its range. Up to 2**15 values, NumPy >= 2.4's checked cast is one pass (0.25 us on
    a few values, against 2 us for the min and max reductions); on more, it is slower than
    min, max and a plain cast."""
    dtype = node.dtype
    # (NumPy 2.4 casts from or to a byte-swapped dtype unchecked: ">i8" [2**40] becomes
    # int32 0, int64 [2**40] becomes ">i4" 0)
    if _SAME_VALUE and array.size <= 1 << 15 and array.dtype.isnative and dtype.isnative:
        try:
            return array.astype(dtype, casting="same_value")
        except ValueError:
            pass  # out of range: find the value to name
    if array.size:
        low = np.minimum.reduce(array, axis=None)
        high = np.maximum.reduce(array, axis=None)
        least, most = _int_range(dtype)
        if low < least or high > most:
            raise _feed_error(f"cannot feed a value of dtype {array.dtype} to "
                              f"{describe(node)} of dtype {dtype}: "
                              f"{low if low < least else high} is out of {dtype}'s "
                              f"range [{least}, {most}]")
    return array.astype(dtype)


# How a fed value's dtype casts to a node's, per pair of dtypes: refused (not 'same_kind'),
# widening (every value fits), or narrowing, with the values checked as ints or as floats.
_REFUSED, _WIDENING, _INT_NARROWING, _FLOAT_NARROWING = "refused", "widening", "int", "float"
_CAST_RULES: dict = {}


def _cast_rule(source: np.dtype, target: np.dtype) -> str:
    """The :data:`_CAST_RULES` entry of a pair of dtypes (worked out once per pair)."""
    if not np.can_cast(source, target, "same_kind"):
        rule = _REFUSED
    elif source.kind in "iu" and target.kind in "iu":
        (least, most), (lowest, highest) = _int_range(target), _int_range(source)
        rule = _INT_NARROWING if lowest < least or highest > most else _WIDENING
    elif source.kind != "b" and target.kind in "fc" and _largest(source) > _largest(target):
        rule = _FLOAT_NARROWING  # (float64 -> float32, uint16 -> float16, ...)
    else:
        rule = _WIDENING
    _CAST_RULES[(source, target)] = rule
    return rule


def _largest(dtype: np.dtype) -> float:
    """The largest finite value of an integer, float or complex dtype."""
    return _int_range(dtype)[1] if dtype.kind in "iu" else float(np.finfo(dtype).max)


@lru_cache(maxsize=None)
def _normal_range(dtype: np.dtype) -> tuple:
    """The smallest and the largest positive normal numbers of a float dtype, as floats."""
    info = np.finfo(dtype)
    return float(info.tiny), float(info.max)


@lru_cache(maxsize=None)
def _int_range(dtype: np.dtype) -> tuple:
    """``(min, max)`` of an integer dtype, as Python ints (np.iinfo costs 0.6 us a call)."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def narrow_float_max(dtype: np.dtype) -> Optional[float]:
    """The largest finite value of a float dtype narrower than float64 (a Python float within
    +-it converts without overflow: the fast paths' guard, out of it :func:`check_feed_value`
    decides); ``None`` when every Python float fits."""
    if dtype.kind != "f" or dtype.itemsize >= 8:
        return None
    return float(np.finfo(dtype).max)


_OVERFLOW_RAISING: dict = {}


def _raising_overflow(convert, *args):
    """``convert(*args)`` in the state of ``np.errstate(all="ignore", over="raise")``,
    whatever the caller's: a conversion that overflows raises FloatingPointError, nothing
    else warns (the state cached per caller's state, as :func:`errors_ignored` caches)."""
    if _ERROR_STATE is None:  # pragma: no cover - other NumPy layouts
        with np.errstate(all="ignore", over="raise"):
            return convert(*args)
    current = _ERROR_STATE.get()
    state = _OVERFLOW_RAISING.get(current)
    if state is None:
        state = _remember(_OVERFLOW_RAISING, current, all="ignore", over="raise")
    token = _ERROR_STATE.set(state)
    try:
        return convert(*args)
    finally:
        _ERROR_STATE.reset(token)


def _feed_error(message: str) -> FeedError:
    """A FeedError ending with the line of the user's call (of g.run or a compiled function)."""
    from .graph import _site_above

    site = _site_above(sys._getframe(1))
    return FeedError(f"{message} (called at {site})" if site else message)


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


def needed_nodes(graph, fetches: list, fed: Container) -> list:
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


def _given(values) -> str:
    return ", ".join(f"{np.shape(v)} {getattr(v, 'dtype', type(v).__name__)}" for v in values)


def is_allocation_failure(exc: Exception) -> bool:
    """Whether ``exc`` says an array could not be allocated: ``MemoryError`` (NumPy's
    ``_ArrayMemoryError`` included), or NumPy's ValueError for a size beyond the address
    space."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, ValueError) and "array is too big" in str(exc))


def out_of_memory(node, exc: Exception, doing: str) -> OutOfMemoryError:
    """:class:`OutOfMemoryError` naming the node (op, name, site) and what it was doing."""
    return OutOfMemoryError(f"{describe(node)} ran out of memory at run time {doing} "
                            f"(shape {shapes.fmt(node.shape)}, dtype {node.dtype}): {exc}")


def kernel_error(node, exc: Exception, values) -> GraphcError:
    """A kernel's NumPy error as a graphc error naming the node and where it was built."""
    given = _given(values)
    if is_allocation_failure(exc):
        return out_of_memory(node, exc, f"computing from inputs {given}")
    text = str(exc).lower()
    shapey = any(word in text for word in ("shape", "broadcast", "dimension", "size", "empty",
                                           "larger than the padded input"))
    kind = IndexOutOfRangeError if isinstance(exc, IndexError) else \
        ShapeError if isinstance(exc, ValueError) and shapey else GraphcError
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
    results = []
    for n in nodes:  # a node fetched twice is returned as two arrays, as compiled functions do
        value = env[n.id]
        try:
            results.append(as_result(value, n, protected))
        except MemoryError as exc:
            raise out_of_memory(n, exc, "while copying its result") from exc
        while isinstance(value, np.ndarray):  # later fetches must not share its memory
            protected.add(id(value))
            value = value.base
    return rebuild(results)


def evaluate(node, args: list):
    """Run one node's kernel, turning NumPy failures into graphc errors."""
    if node.op == "variable":
        return node.graph._values[node.id]
    op = REGISTRY[node.op]
    try:
        value = op.kernel(*args, **node.attrs)
    except GraphcError:
        raise
    except Exception as exc:
        raise kernel_error(node, exc, args) from exc
    if op.checked:
        return check_output(node, value, args)
    if not shapes.fits(np.shape(value), node.shape):
        raise ShapeError(f"{describe(node)} produced shape {np.shape(value)} at run time, but "
                         f"its static shape is {shapes.fmt(node.shape)}; inputs: "
                         f"{', '.join(str(np.shape(a)) for a in args)}")
    return value


def check_output(node, value, args):
    """A user-defined op's kernel output against its rule's shape and dtype (g.run and
    compiled functions alike; ``node`` is a node or anything :func:`describe` prints)."""
    shape, dtype = np.shape(value), getattr(value, "dtype", None)
    if dtype is None:
        dtype = np.asarray(value).dtype
    if not shapes.fits(shape, node.shape):
        raise ShapeError(f"{describe(node)}: the kernel of op {node.op!r} returned shape "
                         f"{shape}, but its infer rule says {shapes.fmt(node.shape)}; inputs: "
                         f"{', '.join(str(np.shape(a)) for a in args)}")
    if dtype != node.dtype:
        raise DTypeError(f"{describe(node)}: the kernel of op {node.op!r} returned dtype "
                         f"{dtype}, but its infer rule says {node.dtype}")
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
