"""Exact, hashable keys for op attributes: what makes two nodes the same computation.

One definition, used by the graph (sharing nodes while ``gradients`` builds), the dtype probe
cache and the compiler's common-subexpression elimination.
"""
from __future__ import annotations

import numpy as np


def freeze(value):
    """A hashable key for an attribute value: tuples, arrays and floats compared exactly.

    ``1``, ``1.0`` and ``True`` stay distinct, ``-0.0`` differs from ``0.0`` and NaN equals NaN,
    so two terms share a key only when their attrs are interchangeable bit for bit.
    """
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (tuple, list)):
        if all(type(v) is int for v in value):  # plain ints (long index lists): as they are
            return (type(value).__name__, "ints", tuple(value))
        return (type(value).__name__,) + tuple(freeze(v) for v in value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, np.generic):
        return ("generic", value.dtype.str, value.tobytes())
    if isinstance(value, dict):
        return ("dict",) + tuple((k, freeze(v)) for k, v in sorted(value.items()))
    return (type(value).__name__, value)


def attrs_key(attrs: dict) -> tuple:
    """A hashable key for an op's attrs, exact bit for bit (see :func:`freeze`)."""
    if not attrs:
        return ()
    return tuple((k, freeze(v)) for k, v in sorted(attrs.items()))
