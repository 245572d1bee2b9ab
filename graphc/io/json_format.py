"""The graphc JSON format, version 1: lossless, deterministic export and safe import.

A file is one JSON object ``{"format": "graphc", "version": 1, "nodes": [...]}``; the nodes are
in creation (topological) order. docs/format.md describes every field, and
``graphc/io/graphc.schema.json`` is its JSON Schema.

Arrays (the values of constants and variables, and any array attr) are stored bit for bit as
``{"dtype": "float64", "shape": [2, 3], "data": "<base64 of the little-endian bytes>"}``, so
NaN payloads, infinities, -0.0 and subnormals survive. Attr values are JSON scalars, JSON
arrays for tuples, and one-key tagged objects for everything else (``{"$float": "nan"}``,
``{"$array": ...}``, ...).

Loading trusts nothing: every entry is checked, every op's shape rule is run again on the
rebuilt inputs, and every failure is a :class:`GraphFormatError` naming the node and the
reason. Nothing from the file is ever executed (no pickle, no eval).
"""
from __future__ import annotations

import base64
import contextvars
import json
import math
import os
import re
from typing import Any, Union

import numpy as np

from ..errors import GraphcError, GraphFormatError
from ..graph import Graph, Node, build
from ..ops.registry import REGISTRY
from .atomic import write_atomic

FORMAT = "graphc"
VERSION = 1

#: The dtypes a file may use (no object, string, void or platform-dependent dtypes).
DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                    "uint64", "float16", "float32", "float64", "complex64", "complex128"})
#: Bounds on what a file may declare: dimensions, sizes, nesting of attrs.
MAX_NDIM = 32
MAX_ELEMENTS = 2 ** 40
MAX_ATTR_DEPTH = 32
#: Default limits on the work a loaded graph may ask for: the elements of one node and of all
#: nodes together, counting the sizes the file declares (sizes left to run time are the
#: feeder's). A 349-byte file must not be able to ask for terabytes; raise them for big models.
NODE_ELEMENTS = 2 ** 28
TOTAL_ELEMENTS = 2 ** 31

_DTYPE_OF = {name: np.dtype(name) for name in DTYPES}

LEAVES = ("placeholder", "variable", "constant")
_NODE_KEYS = ("id", "op", "name", "inputs", "shape", "dtype", "attrs", "derivative", "site",
              "value")
_TOP_KEYS = ("format", "version", "ops", "nodes")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone surrogates (see _escape_surrogates)


# -- arrays ----------------------------------------------------------------------------------------
def encode_array(array: np.ndarray) -> dict:
    """``{"dtype", "shape", "data"}`` with the little-endian bytes in base64 (C order)."""
    array = np.asarray(array)
    if array.dtype.name not in DTYPES:
        raise GraphcError(f"cannot export an array of dtype {array.dtype}")
    little = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": array.dtype.name, "shape": list(array.shape),
            "data": base64.b64encode(little.tobytes()).decode("ascii")}


def decode_array(obj: Any) -> np.ndarray:
    """The array an :func:`encode_array` object describes (a fresh, writable, native array)."""
    _require(isinstance(obj, dict) and sorted(obj) == ["data", "dtype", "shape"],
             'an array must be an object with exactly "dtype", "shape" and "data"')
    dtype = _dtype(obj["dtype"])
    shape = _shape(obj["shape"], allow_none=False)
    data = obj["data"]
    _require(isinstance(data, str), '"data" must be a base64 string')
    nbytes = _count(shape) * dtype.itemsize
    if len(data) != 4 * ((nbytes + 2) // 3):
        raise GraphFormatError(f"{len(data)} base64 characters cannot hold {nbytes} bytes of "
                               f"{dtype} {list(shape)}")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeError):
        raise GraphFormatError('"data" is not valid base64') from None
    if len(raw) != nbytes:
        raise GraphFormatError(f"data holds {len(raw)} bytes, shape and dtype need {nbytes}")
    if dtype == np.bool_:
        _require(np.frombuffer(raw, np.uint8).max(initial=0) <= 1,
                 "bool data must be bytes 0 and 1")
    little = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return little.astype(dtype).reshape(shape)


# -- attrs ---------------------------------------------------------------------------------------
def encode_attr(value: Any) -> Any:
    """An attr value as JSON: tuples become arrays, other non-JSON values tagged objects."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):  # before int/float: np.float64 subclasses float
        return {"$scalar": encode_array(np.asarray(value))}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(float(value))}
    if isinstance(value, tuple):
        return [encode_attr(v) for v in value]
    if isinstance(value, list):
        return {"$list": [encode_attr(v) for v in value]}
    if isinstance(value, np.ndarray):
        return {"$array": encode_array(value)}
    if isinstance(value, np.dtype):
        if value.name not in DTYPES:
            raise GraphcError(f"cannot export the dtype {value}")
        return {"$dtype": value.name}
    if isinstance(value, slice):
        return {"$slice": [encode_attr(value.start), encode_attr(value.stop),
                           encode_attr(value.step)]}
    if value is Ellipsis:
        return {"$ellipsis": None}
    body = _encode_body(value)
    if body is not None:
        return {"$graph": body}
    raise GraphcError(f"cannot export an attr of type {type(value).__name__}: {value!r}")


def decode_attr(obj: Any, depth: int = 0) -> Any:
    """The inverse of :func:`encode_attr`; anything else is a :class:`GraphFormatError`."""
    if depth > MAX_ATTR_DEPTH:
        raise GraphFormatError(f"attrs nested deeper than {MAX_ATTR_DEPTH} levels")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        _require(math.isfinite(obj), "non-finite floats must be written {\"$float\": ...}")
        return obj
    if isinstance(obj, list):
        return tuple(decode_attr(v, depth + 1) for v in obj)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise GraphFormatError(f"unknown attr value {_short(obj)}")
    (tag, body), = obj.items()
    if tag == "$float":
        _require(body in _NONFINITE, '"$float" must be "nan", "inf" or "-inf"')
        return _NONFINITE[body]
    if tag == "$list":
        _require(isinstance(body, list), '"$list" must hold an array')
        return [decode_attr(v, depth + 1) for v in body]
    if tag == "$array":
        array = decode_array(body)
        array.flags.writeable = False
        return array
    if tag == "$scalar":
        array = decode_array(body)
        _require(array.shape == (), '"$scalar" must have shape []')
        return array[()]
    if tag == "$dtype":
        return _dtype(body)
    if tag == "$slice":
        _require(isinstance(body, list) and len(body) == 3, '"$slice" must hold 3 entries')
        parts = [decode_attr(v, depth + 1) for v in body]
        _require(all(p is None or _is_int(p) for p in parts), "slice bounds must be ints or null")
        return slice(*parts)
    if tag == "$ellipsis":
        _require(body is None, '"$ellipsis" must be null')
        return Ellipsis
    if tag == "$graph":
        return _decode_body(body, depth + 1)
    raise GraphFormatError(f"unknown attr tag {tag!r}")


# -- export ----------------------------------------------------------------------------------------
def node_entry(node: Node) -> dict:
    """The JSON object of one node (fields in a fixed order)."""
    attrs = dict(node.attrs)
    value = None
    if node.op == "constant":
        value = attrs.pop("value")
    elif node.op == "variable":
        value = node.graph._values[node.id]
    try:
        if node.dtype.name not in DTYPES:
            raise GraphcError(f"the dtype {node.dtype} cannot be exported")
        # sorted, so the bytes do not depend on the order the attrs were given in
        encoded = {key: encode_attr(attrs[key]) for key in sorted(attrs)}
        entry = {"id": node.id, "op": node.op, "name": node.name,
                 "inputs": [x.id for x in node.inputs],
                 "shape": [None if d is None else int(d) for d in node.shape],
                 "dtype": node.dtype.name, "attrs": encoded,
                 "derivative": node.derivative, "site": portable_site(node.site)}
        if value is not None:
            entry["value"] = encode_array(value)
    except GraphcError as exc:
        raise GraphcError(f"cannot export node {node.id} ({node.op} '{node.name}'): {exc}") \
            from None
    return entry


def portable_site(site: Any) -> Any:
    """A site as files store it: ``file:line`` with the file relative to the working directory
    when it lies under it, else the file's name only. No absolute path of the user's machine
    is saved, and the same graph saved from two checkouts is the same file."""
    if not site:
        return None
    file, sep, line = site.rpartition(":")
    if not sep or not line.isdigit():
        file, line = site, ""
    if not os.path.isabs(file):
        return site
    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive (Windows)
        relative = os.pardir
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        relative = os.path.basename(file)
    relative = relative.replace(os.sep, "/")
    return f"{relative}:{line}" if line else relative


def to_json(graph: Graph) -> str:
    """The graph as graphc JSON v1 text: deterministic (the same graph gives the same text).

    One node per line, in creation order; ``from_json(to_json(g))`` is an identical graph.
    """
    if not isinstance(graph, Graph):
        raise GraphcError(f"to_json takes a Graph, not {type(graph).__name__}")
    lines = [_escape_surrogates(json.dumps(node_entry(n), ensure_ascii=False, allow_nan=False,
                                           separators=(", ", ": "))) for n in graph.nodes]
    body = ",\n    ".join(lines)
    nodes = f"[\n    {body}\n  ]" if lines else "[]"
    used = user_ops(graph)
    ops = f'  "ops": {json.dumps(used, sort_keys=True)},\n' if used else ""
    return (f'{{\n  "format": "{FORMAT}",\n  "version": {VERSION},\n{ops}'
            f'  "nodes": {nodes}\n}}')


def save(graph: Graph, path: Union[str, os.PathLike]) -> None:
    """Write ``to_json(graph)`` to ``path`` atomically (a temporary file, then a rename)."""
    write_atomic(path, (to_json(graph) + "\n").encode("utf-8"))


# -- import ----------------------------------------------------------------------------------------
def load(path: Union[str, os.PathLike], *, ops: Any = None, max_elements: int = NODE_ELEMENTS,
         max_total_elements: int = TOTAL_ELEMENTS) -> Graph:
    """Read a graph that :func:`save` wrote (or any valid graphc JSON file).

    ``ops`` and the limits are :func:`from_json`'s.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise GraphFormatError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") \
            from None
    return from_json(data, ops=ops, max_elements=max_elements,
                     max_total_elements=max_total_elements)


def from_json(text: Union[str, bytes], *, ops: Any = None,
              max_elements: int = NODE_ELEMENTS,
              max_total_elements: int = TOTAL_ELEMENTS) -> Graph:
    """Rebuild a graph from graphc JSON, checking everything.

    Every node is rebuilt through the same builder and shape rules as the Python API, so
    nothing loads that Python could not build. ``max_elements`` bounds the elements of one
    node and ``max_total_elements`` those of all nodes together (known sizes only; the nodes
    of composite bodies count too).

    ``ops`` lists the ops made with ``gc.define_op`` that the file may use (their builders or
    names): each must be registered, in the version the file names. A file's ops are found
    by name only, so an op the file uses must be defined in Python before loading (listing it
    in ``ops`` is a check, not a requirement); its code never comes from the file.

    Raises :class:`GraphFormatError` (naming the node and the reason) for anything malformed,
    inconsistent, unsafe or over the limits; never another exception, and never runs code
    from the text.
    """
    try:
        doc = _parse(text)
        _check_ops(doc.get("ops", {}), ops)
        graph = Graph()
        ids: dict[int, Node] = {}
        budget = [max_elements, max_total_elements]
        token = _BUDGET.set(budget)  # composite bodies, nested in attrs, share the limits
        try:
            for k, entry in enumerate(doc["nodes"]):
                _load_node(graph, entry, k, ids, budget)
        finally:
            _BUDGET.reset(token)
        return graph
    except GraphFormatError:
        raise
    except Exception as exc:  # a check we did not foresee: still a format error
        raise GraphFormatError(f"invalid graphc JSON: {type(exc).__name__}: {exc}") from None


def _parse(text: Union[str, bytes]) -> dict:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GraphFormatError(f"not UTF-8 text: {exc}") from None
    if not isinstance(text, str):
        raise GraphFormatError(f"from_json takes str or bytes, not {type(text).__name__}")
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise GraphFormatError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise GraphFormatError("JSON nested too deeply") from None
    _require(isinstance(doc, dict), "the top level must be a JSON object")
    _require(doc.get("format") == FORMAT, '"format" must be "graphc"')
    version = doc.get("version")
    _require(_is_int(version), '"version" must be an integer')
    if version != VERSION:
        raise GraphFormatError(f"unsupported version {version}; this graphc reads version "
                               f"{VERSION} (a newer graphc may read it)")
    _require(isinstance(doc.get("nodes"), list), '"nodes" must be a list')
    extra = sorted(set(doc) - set(_TOP_KEYS))
    if extra:
        raise GraphFormatError(f"unknown top-level keys {extra}")
    return doc


def _load_node(graph: Graph, entry: Any, k: int, ids: dict, budget: list,
               depth: int = 0) -> None:
    """Check one entry and append its node, or raise GraphFormatError naming it.

    ``budget`` is ``[elements of one node, elements left in all]``; ``depth`` is how deep in
    composite bodies the entry is (their attrs count towards the nesting limit).
    """
    where = f"node entry {k}"
    try:
        _require(isinstance(entry, dict), "must be a JSON object")
        _require(_is_int(entry.get("id")), '"id" must be an integer')
        where = f"node {entry['id']}"
        _require(entry["id"] not in ids, "duplicate id")
        extra = sorted(set(entry) - set(_NODE_KEYS))
        if extra:
            raise GraphFormatError(f"unknown keys {extra}")
        op = entry.get("op")
        if not isinstance(op, str) or op not in REGISTRY:
            raise GraphFormatError(f"unknown op {_short(op)}" + (_HOW_TO_REGISTER
                                   if isinstance(op, str) else ""))
        where = f"node {entry['id']} ({op})"
        name = entry.get("name")
        _require(name is None or (isinstance(name, str) and name),
                 '"name" must be a non-empty string')
        if name is not None:
            where = f"node {entry['id']} ({op} {name!r})"
            _require(name not in graph, "duplicate name")
        inputs = _inputs(entry.get("inputs"), ids)
        attrs = entry.get("attrs", {})
        _require(isinstance(attrs, dict), '"attrs" must be an object')
        attrs = {key: decode_attr(v, depth) for key, v in attrs.items()}
        derivative = entry.get("derivative", 0)
        _require(_is_int(derivative) and 0 <= derivative <= 10 ** 6,
                 '"derivative" must be a non-negative integer')
        site = entry.get("site")
        _require(site is None or isinstance(site, str), '"site" must be a string or null')
        _require(("value" in entry) == (op in ("variable", "constant")),
                 '"value" is required for variables and constants, and only for them')

        site = "" if site is None else site
        if op in LEAVES:
            attrs, shape, dtype, value = _leaf(op, entry, inputs, attrs)
            node = graph._add(op, inputs, attrs, shape, dtype, name, site, derivative)
            if op == "variable":
                graph._values[node.id] = value
        else:  # the Python API's own builder: declared attrs, arity and shape rule
            try:
                node = build(graph, op, inputs, attrs, name, site, derivative)
            except GraphcError as exc:
                raise GraphFormatError(f"the op rejects its inputs or attrs: {exc}") from None
            _require(node.dtype.name in DTYPES, f"the op gives the unsupported dtype "
                                                f"{node.dtype}")
        if "shape" in entry:
            stored = _shape(entry["shape"], allow_none=True)
            if stored != node.shape:
                raise GraphFormatError(f"stored shape {_fmt(stored)} but the op gives "
                                       f"{_fmt(node.shape)}")
        if "dtype" in entry:
            stored_dtype = _dtype(entry["dtype"])
            if stored_dtype != node.dtype:
                raise GraphFormatError(f"stored dtype {stored_dtype} but the op gives "
                                       f"{node.dtype}")
        elements = _count(node.shape)
        if elements > budget[0]:
            raise GraphFormatError(f"shape {_fmt(node.shape)} declares {elements} elements, "
                                   f"over the limit of {budget[0]} per node (max_elements)")
        budget[1] -= elements
        if budget[1] < 0:
            raise GraphFormatError("the nodes declare more elements in all than the limit "
                                   "(max_total_elements)")
        ids[entry["id"]] = node
    except Exception as exc:
        reason = str(exc) if isinstance(exc, GraphcError) else f"{type(exc).__name__}: {exc}"
        raise GraphFormatError(f"{where}: {reason}") from None


def _inputs(raw: Any, ids: dict) -> tuple:
    _require(isinstance(raw, list), '"inputs" must be a list of ids')
    for i in raw:
        if not _is_int(i):
            raise GraphFormatError(f"input {_short(i)} is not an integer id")
        if i not in ids:
            raise GraphFormatError(f"input {i} is not the id of an earlier node")
    return tuple(ids[i] for i in raw)


def _leaf(op: str, entry: dict, inputs: tuple, attrs: dict) -> tuple:
    """Attrs, shape, dtype and value of a placeholder, variable or constant."""
    if inputs:
        raise GraphFormatError(f"a {op} has no inputs")
    if op == "placeholder":
        _require(not attrs, "a placeholder has no attrs")
        _require("shape" in entry, 'a placeholder needs "shape"')
        dtype = _dtype(entry.get("dtype", "float64"))
        return {}, _shape(entry["shape"], allow_none=True), dtype, None
    value = decode_array(entry["value"])
    if op == "variable":
        _require(not attrs, "a variable has no attrs")
        return {}, value.shape, value.dtype, value
    weak = attrs.pop("weak", False)
    if attrs:
        raise GraphFormatError(f"unknown constant attrs {sorted(attrs)}")
    _require(isinstance(weak, bool), '"weak" must be true or false')
    _require(not weak or value.shape == (), "a weak constant must be a scalar")
    value.flags.writeable = False
    return {"value": value, "weak": weak}, value.shape, value.dtype, None


# -- composites and your own ops ------------------------------------------------------------------
#: The element limits of the file being loaded, for the composite bodies nested in its attrs.
_BUDGET: contextvars.ContextVar = contextvars.ContextVar("graphc_json_budget")

_HOW_TO_REGISTER = ("; if it is an op of your own, run its gc.define_op(...) definition before "
                    "loading (and pass ops=[its builder] to gc.load / gc.from_json to check "
                    "its version); nothing from the file is executed")


def _encode_body(value: Any):
    """A composite body as ``{"inputs": [ids], "outputs": [ids], "nodes": [entries]}``:
    a graph of its own, whose entries carry neither names nor sites (a body is structure)."""
    from ..composite import Body
    if not isinstance(value, Body):
        return None
    entries = []
    for node in value.graph.nodes:
        entry = node_entry(node)
        for key in ("name", "site", "derivative"):
            del entry[key]
        entries.append(entry)
    return {"inputs": [n.id for n in value.inputs], "outputs": [n.id for n in value.outputs],
            "nodes": entries}


def _decode_body(obj: Any, depth: int):
    """The body a ``"$graph"`` attr describes, loaded with the same checks as a file."""
    from ..composite import Body
    _require(isinstance(obj, dict) and sorted(obj) == ["inputs", "nodes", "outputs"],
             'a "$graph" must be an object with exactly "inputs", "outputs" and "nodes"')
    _require(isinstance(obj["nodes"], list), 'a "$graph" needs a list of "nodes"')
    graph, ids = Graph(), {}
    budget = _BUDGET.get(None) or [NODE_ELEMENTS, TOTAL_ELEMENTS]
    try:
        for k, entry in enumerate(obj["nodes"]):
            _load_node(graph, entry, k, ids, budget, depth)
        inputs, outputs = _inputs(obj["inputs"], ids), _inputs(obj["outputs"], ids)
        _require(bool(outputs), "a body needs at least one output")
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        _require(list(inputs) == placeholders,
                 '"inputs" must list every placeholder of the body, once, in order')
        try:
            return Body(inputs, outputs)
        except GraphcError as exc:
            raise GraphFormatError(str(exc)) from None
    except GraphFormatError as exc:
        raise GraphFormatError(f"in a composite body: {exc}") from None


def user_ops(graph: Graph) -> dict:
    """``{name: {"version": N}}`` for every op made with gc.define_op that ``graph`` uses,
    in its nodes or in composite bodies (what a file records in ``"ops"``)."""
    from ..composite import Body
    from ..custom import USER_OPS

    used: dict = {}
    pending = [graph]
    while pending:
        for node in pending.pop().nodes:
            if node.op in USER_OPS:
                used[node.op] = {"version": USER_OPS[node.op]}
            pending.extend(v.graph for v in node.attrs.values() if isinstance(v, Body))
    return dict(sorted(used.items()))


def _check_ops(declared: Any, ops) -> None:
    """The file's ``"ops"`` (and the caller's ``ops=``) against the registered ops."""
    from ..custom import USER_OPS, op_name_of

    _require(isinstance(declared, dict), '"ops" must be an object {name: {"version": N}}')
    for name, spec in declared.items():
        _require(isinstance(spec, dict) and list(spec) == ["version"]
                 and _is_int(spec["version"]) and spec["version"] >= 1,
                 f'"ops" entry {_short(name)} must be {{"version": N}} with N >= 1')
        version = spec["version"]
        if name not in REGISTRY:
            raise GraphFormatError(f"the file uses the op {name!r} (version {version}), which "
                                   f"is not registered" + _HOW_TO_REGISTER)
        if name not in USER_OPS:
            raise GraphFormatError(f'"ops" lists {name!r}, but that is a built-in op')
        if USER_OPS[name] != version:
            raise GraphFormatError(f"the file uses version {version} of the op {name!r}, but "
                                   f"version {USER_OPS[name]} is registered")
    for op in ops or ():
        try:
            name = op_name_of(op)
        except GraphcError as exc:
            raise GraphFormatError(f"ops=: {exc}") from None
        if name not in REGISTRY:
            raise GraphFormatError(f"ops=: {name!r} is not registered; define it with "
                                   "gc.define_op before loading")
        stale = getattr(op, "version", None)
        if stale is not None and name in USER_OPS and stale != USER_OPS[name]:
            raise GraphFormatError(f"ops=: this builder of {name!r} is version {stale}, but "
                                   f"version {USER_OPS[name]} is registered now")


# -- small checks ----------------------------------------------------------------------------------
def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise GraphFormatError(reason)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dtype(name: Any) -> np.dtype:
    if not isinstance(name, str) or name not in DTYPES:
        raise GraphFormatError(f"unsupported dtype {_short(name)}")
    return _DTYPE_OF[name]


def _shape(raw: Any, *, allow_none: bool) -> tuple:
    if not isinstance(raw, list) or len(raw) > MAX_NDIM:
        raise GraphFormatError(f"a shape must be a list of at most {MAX_NDIM} sizes")
    for d in raw:
        if not ((d is None and allow_none) or (_is_int(d) and 0 <= d <= MAX_ELEMENTS)):
            raise GraphFormatError(f"bad size {_short(d)} in shape {_short(raw)}")
    shape = tuple(raw)
    _count(shape)
    return shape


def _count(shape: tuple) -> int:
    """Elements of the known sizes of ``shape``, bounded by :data:`MAX_ELEMENTS`."""
    total = 1
    for d in shape:
        if d is not None:
            total *= d
    if total > MAX_ELEMENTS:
        raise GraphFormatError(f"shape {_fmt(shape)} declares more than "
                               f"{MAX_ELEMENTS} elements")
    return total


def _escape_surrogates(text: str) -> str:
    """Write lone surrogates (a site from an undecodable file name) as JSON ``\\udcXX`` escapes:
    the text stays valid UTF-8 and reads back to the same string."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _fmt(shape: tuple) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise GraphFormatError(f"duplicate keys in a JSON object: {sorted(keys)}")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise GraphFormatError(f"{name} is not valid JSON (write non-finite floats as tagged values)")


def schema() -> dict:
    """The JSON Schema of the format (graphc/io/graphc.schema.json)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "graphc.schema.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


__all__ = ["to_json", "from_json", "save", "load", "schema", "encode_array", "decode_array",
           "FORMAT", "VERSION"]
