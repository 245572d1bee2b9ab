"""Attribute declarations: what each op's attrs may be (names, types, ranges).

Every op declares its attrs in its registry entry, ``define(..., attrs={"axis": axes, ...})``.
:func:`graphc.graph.build` checks a node's attrs against that declaration before the op's shape
rule sees them, for nodes built in Python and nodes read from a file alike: an unknown name, a
missing one or a value of the wrong type or range is an error, and no kernel ever receives an
attribute its op did not declare.

A declaration is a callable ``check(value) -> value``: it returns the value in plain Python
form (``np.int64(2)`` becomes ``2``, a list of ints a tuple) or raises ``TypeError`` /
``ValueError`` with a message that names what it expected. The shape rule then checks what
depends on the inputs (an axis within ``ndim``, ...).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Check = Callable[[Any], Any]

#: The dtypes an attr may name (the numbers and bools graphc computes with).
DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                    "uint64", "float16", "float32", "float64", "complex64", "complex128"})


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def flag(value) -> bool:
    """``True`` or ``False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected True or False, not {_short(value)}")
    return bool(value)


def integer(low: int | None = None, high: int | None = None) -> Check:
    """An int in ``[low, high]`` (either bound may be None)."""
    def check(value) -> int:
        if not _is_int(value):
            raise TypeError(f"expected an integer, not {_short(value)}")
        value = int(value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{value} is out of range [{low}, {high}]")
        return value
    check.__doc__ = f"an integer in [{low}, {high}]"
    return check


def number(low: float | None = None, high: float | None = None) -> Check:
    """A finite real number (int or float, not bool) in ``[low, high]``, kept as a float."""
    def check(value) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                         np.floating)):
            raise TypeError(f"expected a number, not {_short(value)}")
        value = float(value)
        if not np.isfinite(value) or (low is not None and value < low) or \
                (high is not None and value > high):
            raise ValueError(f"{value} is out of range [{low}, {high}]")
        return value
    check.__doc__ = f"a finite number in [{low}, {high}]"
    return check


def ints(low: int | None = None) -> Check:
    """A tuple of ints, each at least ``low`` (a list is accepted)."""
    one = integer(low)

    def check(value) -> tuple:
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"expected a tuple of integers, not {_short(value)}")
        return tuple(one(v) for v in value)
    return check


def axes(value):
    """``None`` (every axis), an int or a tuple of ints (the rule checks them against ndim)."""
    if value is None:
        return None
    if _is_int(value):
        return int(value)
    return ints()(value)


def dtype_name(value) -> str:
    """The name of a numeric or bool dtype (``"float32"``, ``np.float32``, ``np.dtype(...)``)."""
    if value is None:  # np.dtype(None) would be float64
        raise TypeError("expected a dtype, not None")
    try:
        name = np.dtype(value).name
    except TypeError:
        raise TypeError(f"expected a dtype, not {_short(value)}") from None
    if isinstance(value, (bool, int, float)) or name not in DTYPES:
        raise TypeError(f"expected a numeric or bool dtype, not {_short(value)}")
    return name


def choice(*options) -> Check:
    """One of ``options`` (compared with ``==``, types included)."""
    def check(value):
        for option in options:
            if type(value) is type(option) and value == option:
                return option
        raise ValueError(f"expected one of {', '.join(map(repr, options))}, not {_short(value)}")
    return check


def anything_of(*types: type) -> Check:
    """A value of one of ``types`` (an escape hatch for values the shape rule parses fully)."""
    def check(value):
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise TypeError(f"expected {names}, not {_short(value)}")
        return value
    return check


# -- real numbers (slopes, quantiles, ddof, fill values) -----------------------------
def real(low: float | None = None, high: float | None = None) -> Check:
    """A finite real number in ``[low, high]`` (ints are accepted and stored as floats)."""
    def check(value) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                         np.floating)):
            raise TypeError(f"expected a real number, not {_short(value)}")
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"expected a finite number, not {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{value} is out of range [{low}, {high}]")
        return value
    check.__doc__ = f"a real number in [{low}, {high}]"
    return check


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
