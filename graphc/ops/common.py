"""Helpers shared by the op families: dtype probing, kernel wrappers and gradient shorthands."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError
from ..shapes import broadcast_shapes
from ..keys import attrs_key, freeze


def probe(kernel, nodes, **attrs) -> np.dtype:
    """The dtype NumPy gives ``kernel`` for these inputs (weak Python scalars included).

    Running the kernel on 0-d zeros is the one way to match NumPy's promotion exactly; the
    answer is cached per kernel, input dtypes (or weak scalars, exactly) and attrs.
    """
    key = [kernel]
    for n in nodes:  # the key first: a hit (nearly always) makes no arrays
        key.append(freeze(n.attrs["value"].item()) if n.op == "constant" and n.attrs.get("weak")
                   else n.dtype)
    key.append(attrs_key(attrs) if attrs else ())
    key = tuple(key)
    dtype = _PROBED.get(key)
    if dtype is None:
        args = [n.attrs["value"].item() if n.op == "constant" and n.attrs.get("weak")
                else np.zeros((), n.dtype) for n in nodes]
        try:
            with np.errstate(all="ignore"):
                dtype = np.asarray(kernel(*args, **attrs)).dtype
        except (TypeError, ValueError, OverflowError) as exc:
            types = ", ".join(str(n.dtype) for n in nodes)
            raise DTypeError(f"NumPy does not support dtypes {types} here ({exc})") from None
        _PROBED[key] = dtype
    return dtype


_PROBED: dict = {}  # the answers of probe, which are few: kernels x dtypes x attrs


def dtype_argument(dtype, use: str = "use dtype") -> np.dtype:
    """A user's dtype argument as a NumPy dtype of numbers or bools, else DTypeError."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{dtype!r} is not a dtype") from None
    if dtype.kind not in "biufc":
        raise DTypeError(f"cannot {use} {dtype}: graphc values are numbers or bools")
    return dtype


def elementwise_infer(kernel):
    """Shape rule of an elementwise op: broadcasting; dtype: what NumPy would give."""
    def infer(*nodes, **attrs):
        if len(nodes) == 1:
            shape = nodes[0].shape
        elif len(nodes) == 2:
            shape = broadcast_shapes(nodes[0].shape, nodes[1].shape)
        else:
            shape = broadcast_shapes(*[n.shape for n in nodes])
        return shape, probe(kernel, nodes, **attrs)
    return infer


def is_constant(node, value) -> bool:
    """Whether ``node`` is a constant whose every element equals ``value``."""
    if node.op != "constant":
        return False
    array = node.attrs["value"]
    return array.size > 0 and bool(np.all(array == value))


def neutral_one(one, other) -> bool:
    """Whether ``one * other`` is ``other``, value, shape and dtype, judged from static facts."""
    if one.op == "broadcast_to" and is_constant(one.inputs[0], 1):
        if one.shape != other.shape:  # broadcast_to shapes are always known
            return False
        one = one.inputs[0]
    elif not is_constant(one, 1):
        return False
    if one.ndim > other.ndim or any(a != 1 and a != b
                                    for a, b in zip(one.shape[::-1], other.shape[::-1])):
        return False
    return probe(np.multiply, [one, other]) == other.dtype
