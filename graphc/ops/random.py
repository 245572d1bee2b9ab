"""Random numbers: counter-based (Philox), reproducible, saved and loaded with the graph.

A *key* is a variable of two ``uint64`` numbers, ``[seed, counter]``, made by
:func:`key`. Each sampling op reads the key and draws from
``Philox(key=(seed, salt), counter=(0, 0, counter, 0))``, where ``salt`` (an attr) tells the
sampling ops of one key apart. So a sample is a pure function of the key's value and the
node: ``g.run`` gives the same samples for the same key value (gradient checks and finite
differences see one fixed sample), the compiler may treat the ops like any other, and a graph
loaded from JSON (the key is a variable, the salt an attr) samples exactly what the original
does. Philox and NumPy's samplers are deterministic, so the stream is the same on every
machine (for a given NumPy version).

``gc.function`` advances every key its outputs or updates sample from by one after each call
(an update ``key <- random_next(key)``, unless you give one for the key or pass the key as an
input): a compiled training step draws fresh dropout masks each call, the same sequence for the
same seed. ``g.run`` never changes a key.

Sampling ops have no derivative (``bprop=None``); distributions are built from the two
standard ones with differentiable arithmetic, so the reparameterisation trick
``loc + scale * normal(key, ...)`` differentiates with respect to ``loc`` and ``scale``.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, GraphcError, ShapeError
from ..graph import Graph, Node, apply, build, user_site
from ..shapes import fmt, shape_argument
from .attrs import dtype_name, integer, ints
from .registry import Case, define

_KEY_DTYPE = np.dtype(np.uint64)
SAMPLERS = ("random_uniform", "random_normal", "random_permutation")


def _generator(key, salt: int) -> np.random.Generator:
    key = np.asarray(key)
    if key.shape != (2,):
        raise ValueError(f"a random key is two uint64 numbers [seed, counter], not shape "
                         f"{key.shape}")
    seed, counter = (int(v) for v in key.astype(np.uint64))
    bits = np.random.Philox(key=np.array([seed, salt], np.uint64),
                            counter=np.array([0, 0, counter, 0], np.uint64))
    return np.random.Generator(bits)


def _check_key(key):
    if key.dtype != _KEY_DTYPE or key.ndim != 1 or key.shape[0] not in (2, None):
        raise DTypeError(f"a random key is a uint64 node of shape (2,) made by "
                         f"gc.random.key, not {fmt(key.shape)} {key.dtype}")


def _sample_infer(key, *like, shape, salt, dtype):
    _check_key(key)
    dtype = np.dtype(dtype_name(dtype))
    if dtype.kind != "f":
        raise DTypeError(f"samples are floats, not {dtype}")
    if like:
        if shape is not None:
            raise ShapeError("give either a shape or a node to take the shape from, not both")
        out = like[0].shape
    else:
        if shape is None:
            raise ShapeError("a sample needs a shape")
        out = shape = shape_argument(shape, "a sample's shape")
    return out, dtype, {"shape": shape, "salt": salt, "dtype": dtype.name}


def _sample_kernel(draw):
    def kernel(key, *like, shape, salt, dtype):
        size = np.shape(like[0]) if like else shape
        return draw(_generator(key, salt), size, np.dtype(dtype))
    return kernel


def _uniform_bits(key, *like, shape, salt, dtype):
    """The reference: NumPy's documented float64 conversion of Philox's raw 64-bit words."""
    size = np.shape(like[0]) if like else shape
    seed, counter = (int(v) for v in key)
    bits = np.random.Philox(key=np.array([seed, salt], np.uint64),
                            counter=np.array([0, 0, counter, 0], np.uint64))
    raw = bits.random_raw(int(np.prod(size, dtype=np.int64)))
    return ((raw >> np.uint64(11)) * 2.0 ** -53).reshape(size)


def _normal_reference(key, *like, shape, salt, dtype):
    size = np.shape(like[0]) if like else shape
    seed, counter = (int(v) for v in key)
    bits = np.random.Philox(key=[seed, salt], counter=[0, 0, counter, 0])
    return np.random.Generator(bits).normal(0.0, 1.0, size)


_SAMPLE_ATTRS = {"shape": lambda v: None if v is None else ints(0)(v), "salt": integer(0),
                 "dtype": dtype_name}
_KEY = np.array([2026, 7], np.uint64)

define("random_uniform", infer=_sample_infer, arity=(1, 2), attrs=_SAMPLE_ATTRS,
       kernel=_sample_kernel(lambda rng, size, dtype: rng.random(size, dtype=dtype)),
       bprop=None, reference=_uniform_bits,
       cases=[Case((_KEY,), attrs={"shape": (3, 4), "salt": 0, "dtype": "float64"}),
              Case((_KEY, (2, 5)), attrs={"shape": None, "salt": 3, "dtype": "float64"}),
              Case((np.array([0, 2 ** 64 - 1], np.uint64),),
                   attrs={"shape": (), "salt": 1, "dtype": "float64"})],
       doc="Uniform samples in [0, 1) from the key (shape from the attr or the second input).")
define("random_normal", infer=_sample_infer, arity=(1, 2), attrs=_SAMPLE_ATTRS,
       kernel=_sample_kernel(lambda rng, size, dtype: rng.standard_normal(size, dtype=dtype)),
       bprop=None, reference=_normal_reference,
       cases=[Case((_KEY,), attrs={"shape": (3, 4), "salt": 0, "dtype": "float64"}),
              Case((_KEY, (2, 5)), attrs={"shape": None, "salt": 3, "dtype": "float64"})],
       doc="Standard normal samples from the key (shape from the attr or the second input).")


def _permutation_infer(key, *like, n, salt):
    _check_key(key)
    if like:
        if like[0].ndim == 0:
            raise ShapeError("cannot permute a 0-d value")
        if n is not None:
            raise ShapeError("give either n or a node to permute, not both")
        size = like[0].shape[0]
    elif n is None:
        raise ShapeError("a permutation needs n")
    else:
        size = n
    return (size,), np.dtype(np.int64), {"n": n, "salt": salt}


def _permutation(key, *like, n, salt):
    size = np.shape(like[0])[0] if like else n
    return _generator(key, salt).permutation(size).astype(np.int64)


def _permutation_reference(key, *like, n, salt):
    size = like[0].shape[0] if like else n
    seed, counter = (int(v) for v in key)
    rng = np.random.Generator(np.random.Philox(key=[seed, salt], counter=[0, 0, counter, 0]))
    out = np.arange(size)
    rng.shuffle(out)  # permutation(n) is documented as shuffling arange(n)
    return out


define("random_permutation", infer=_permutation_infer, arity=(1, 2),
       attrs={"n": lambda v: None if v is None else integer(0)(v), "salt": integer(0)},
       kernel=_permutation, bprop=None, reference=_permutation_reference,
       cases=[Case((_KEY,), attrs={"n": 7, "salt": 0}),
              Case((_KEY, (5, 2)), attrs={"n": None, "salt": 2})],
       doc="A random permutation of range(n) (n from the attr or the first size of the second "
           "input), int64.")


def _next_infer(key):
    _check_key(key)
    return key.shape, key.dtype


def _next_key(key):
    key = np.array(key, np.uint64)
    key[1] += np.uint64(1)  # wraps after 2**64 calls
    return key


define("random_next", infer=_next_infer, kernel=_next_key, bprop=None,
       reference=lambda key: np.array([key[0], (int(key[1]) + 1) % 2 ** 64], np.uint64),
       cases=[Case((_KEY,)), Case((np.array([1, 2 ** 64 - 1], np.uint64),))],
       doc="The key's next value: the counter plus one (the update gc.function applies).")


def _misuse(message: str) -> GraphcError:
    """A wrong call of a builder here, ending with the line of the user's call."""
    site = user_site()
    return GraphcError(f"{message} (called at {site})" if site else message)


# -- keys ------------------------------------------------------------------------------------------
def make_key(graph, seed: int = 0, name=None) -> Node:
    """A random key: a variable ``[seed, 0]`` (``uint64``) in ``graph`` (a Graph, or a node
    whose graph to use). Sampling ops read it; ``gc.function`` advances it after each call."""
    graph = graph.graph if isinstance(graph, Node) else graph
    if not isinstance(graph, Graph):
        raise _misuse(f"gc.random.key needs a graph, not {type(graph).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= seed < 2 ** 64:
        raise _misuse(f"a seed is an integer in [0, 2**64), not {seed!r}")
    node = graph.variable(name or _fresh(graph, f"key_{seed}"), np.array([seed, 0], np.uint64))
    build(graph, "random_next", (node,), {}, name=f"{node.name}.next")
    return node


def _fresh(graph, base):
    name, k = base, 1
    while name in graph:
        k += 1
        name = f"{base}_{k}"
    return name


def _key_of(key, seed, anchor) -> Node:
    """The key to sample with: the given one, or the graph's key for ``seed`` (one per seed, so
    that two ops given the same seed still draw different numbers, through their salts)."""
    if key is not None:
        if not isinstance(key, Node):
            raise _misuse(f"key must be a node made by gc.random.key, not "
                              f"{type(key).__name__} (pass seed=... for a seed)")
        return key
    if seed is None:
        raise _misuse("give a key (gc.random.key(graph, seed)) or a seed")
    graph = anchor.graph if isinstance(anchor, Node) else anchor
    if not isinstance(graph, Graph):
        raise _misuse("with seed= and no node among the arguments, give graph=")
    name = f"key_{seed}"
    if name in graph:
        return graph[name]
    return make_key(graph, seed, name)


def _salt(key: Node) -> int:
    """A number no other sampling op of this key has: one more than the largest so far."""
    salts = [c.attrs["salt"] for c in key.consumers if c.op in SAMPLERS]
    return max(salts, default=-1) + 1


def next_key(key: Node) -> Node:
    """The node ``gc.function`` uses to advance ``key`` (built once with the key)."""
    for c in key.consumers:
        if c.op == "random_next":
            return c
    return build(key.graph, "random_next", (key,), {})


def key_updates(nodes, updates: dict, inputs) -> list:
    """``(key, next_key(key))`` for every key that ``nodes`` sample from, that ``updates`` does
    not already update and that is not among ``inputs`` (how gc.function advances keys)."""
    graph = next((n.graph for n in nodes), None)
    if graph is None or not any(v.dtype == np.uint64 and v.shape == (2,)
                                for v in graph._values.values()):
        return []  # no variable can be a key: no walk over the graph
    fed = {n.id for n in inputs}
    updated = {v.id for v in updates}
    seen, stack, keys = set(), list(nodes), {}
    while stack:
        node = stack.pop()
        if node.id in seen or node.id in fed:  # a fed node's ancestors do not run
            continue
        seen.add(node.id)
        if node.op in SAMPLERS:
            k = node.inputs[0]
            if k.op == "variable" and k.id not in updated and k.id not in fed:
                keys[k.id] = k
        stack.extend(node.inputs)
    return [(k, next_key(k)) for _, k in sorted(keys.items())]


# -- samplers --------------------------------------------------------------------------------------
def _sample(op, key, shape, dtype, seed, anchors, name=None):
    nodes = [a for a in anchors if isinstance(a, Node)]
    key = _key_of(key, seed, shape if isinstance(shape, Node) else
                  nodes[0] if nodes else None)
    salt = _salt(key)
    if isinstance(shape, Node):
        return apply(op, [key, shape], {"shape": None, "salt": salt, "dtype": dtype}, name)
    if shape is None:  # NumPy's size=None: the broadcast shape of the parameters
        if nodes:
            like = nodes[0] if len(nodes) == 1 else _broadcast_like_all(nodes)
            return apply(op, [key, like], {"shape": None, "salt": salt, "dtype": dtype}, name)
        shape = ()
    return apply(op, [key], {"shape": shape, "salt": salt, "dtype": dtype}, name)


def _broadcast_like_all(nodes):
    from .elementwise import add
    out = nodes[0]
    for n in nodes[1:]:
        out = add(out, n)
    return out


def uniform(key=None, shape=None, low=0.0, high=1.0, dtype="float64", *, size=None,
            seed=None, name=None):
    """Uniform samples in ``[low, high)``; ``shape`` a tuple or a node whose run-time shape to
    use (default: the broadcast shape of ``low`` and ``high``; ``size=`` is NumPy's name for
    it). Differentiable in ``low`` and ``high``."""
    shape = _size(shape, size)
    if _is_number(low, 0.0) and _is_number(high, 1.0):
        return _sample("random_uniform", key, shape, dtype, seed, (), name)
    u = _sample("random_uniform", key, shape, dtype, seed, (low, high))
    from .elementwise import add, mul, sub
    span = sub(high, low) if isinstance(high, Node) or isinstance(low, Node) else high - low
    return add(low, mul(span, u), name=name)


def normal(key=None, shape=None, loc=0.0, scale=1.0, dtype="float64", *, size=None, seed=None,
           name=None):
    """Normal samples ``loc + scale * z`` with ``z`` standard normal: the reparameterisation,
    differentiable in ``loc`` and ``scale``. ``shape`` (or ``size``) as in :func:`uniform`."""
    shape = _size(shape, size)
    if _is_number(loc, 0.0) and _is_number(scale, 1.0):
        return _sample("random_normal", key, shape, dtype, seed, (), name)
    z = _sample("random_normal", key, shape, dtype, seed, (loc, scale))
    from .elementwise import add, mul
    return add(loc, mul(scale, z), name=name)


def bernoulli(key=None, p=0.5, shape=None, *, size=None, seed=None, name=None):
    """Bool samples, True with probability ``p`` (``uniform < p``); no derivative."""
    shape = _size(shape, size)
    from .compare import less
    u = _sample("random_uniform", key, shape, "float64", seed, (p,))
    return less(u, p, name=name)


def categorical(key=None, logits=None, axis=-1, *, seed=None, name=None):
    """Class indices drawn with probabilities ``softmax(logits)`` along ``axis`` (the
    Gumbel-max trick: ``argmax(logits + gumbel)``); int64, ``logits``' shape without ``axis``."""
    from .elementwise import add, log, neg, maximum
    from .reduce import argmax
    if not isinstance(logits, Node):
        if not isinstance(key, Node):
            raise _misuse("categorical with array logits needs a key (it names the graph)")
        logits = key.graph.constant(np.asarray(logits, dtype=float))
    u = _sample("random_uniform", key, logits, logits.dtype.name if logits.dtype.kind == "f"
                else "float64", seed, (logits,))
    u = maximum(u, np.finfo(np.float32).tiny)  # keep -log(u) finite
    gumbel = neg(log(neg(log(u))))
    return argmax(add(logits, gumbel), axis=axis, name=name)


def permutation(key=None, x=None, *, seed=None, graph=None, name=None):
    """A random permutation: of ``range(x)`` for an int ``x`` (int64), or of a node's first
    axis (``x[perm]``)."""
    if isinstance(x, Node):
        k = _key_of(key, seed, x)
        perm = apply("random_permutation", [k, x], {"n": None, "salt": _salt(k)})
        from .gather import take
        return take(x, perm, axis=0, name=name)
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise _misuse(f"permutation takes an int or a node, not {type(x).__name__}")
    k = _key_of(key, seed, graph if key is None else key)
    return apply("random_permutation", [k], {"n": int(x), "salt": _salt(k)}, name=name)


def dropout(x, rate: float, key=None, *, seed=None, training: bool = True, name=None):
    """Zero each element of ``x`` with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)`` (inverted dropout: the expectation is ``x``). ``training=False`` or
    ``rate=0`` returns ``x``. A fresh mask per call of a compiled function."""
    if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise _misuse(f"dropout rate must be a number in [0, 1), not {rate!r}")
    if not training or rate == 0:
        return x
    from .compare import greater_equal, where
    from .elementwise import mul
    u = _sample("random_uniform", key, x, x.dtype.name if x.dtype.kind == "f" else "float64",
                seed, (x,))
    return where(greater_equal(u, rate), mul(x, 1.0 / (1.0 - rate)), 0.0, name=name)


def _size(shape, size):
    if size is not None and shape is not None:
        raise _misuse("give shape or size (its NumPy name), not both")
    return size if shape is None else shape


def _is_number(value, number) -> bool:
    return not isinstance(value, Node) and np.ndim(value) == 0 and value == number


__all__ = ["make_key", "uniform", "normal", "bernoulli", "categorical", "permutation", "dropout"]
