"""The errors graphc raises. Every one derives from :class:`GraphcError`.

A message says what went wrong, with which node (op and name), and where the user built it.
"""
from __future__ import annotations


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class ShapeError(GraphcError, ValueError):
    """Shapes that cannot work together (at build time or at run time)."""


class DTypeError(GraphcError, TypeError):
    """A dtype an op cannot take, or a gradient asked of an integer or bool node."""


class MissingFeedError(GraphcError, KeyError):
    """A placeholder that a fetch needs was not fed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FeedError(GraphcError, ValueError):
    """A fed value whose shape does not fit, or whose dtype cannot be cast safely."""


class DisconnectedGradientError(GraphcError):
    """``gradients(..., unconnected="raise")`` for an x that y does not depend on."""


class GradientCheckError(GraphcError, AssertionError):
    """Symbolic and finite-difference gradients disagree."""


class GraphFormatError(GraphcError, ValueError):
    """A JSON graph that is malformed, unsafe or inconsistent."""


class NumericsError(GraphcError, FloatingPointError):
    """A node produced NaN or Inf while ``check_numerics`` was on."""


class IndexOutOfRangeError(ShapeError, IndexError):
    """An index outside its dimension at run time (gather, scatter, x[node]); never wrapped."""


class SymbolicValueError(GraphcError, TypeError):
    """A node used where Python needs a concrete value: ``bool(node)``, ``list(node)``, ``for``."""


class FileError(GraphcError, OSError):
    """A file graphc was asked to write could not be written (the message names the path)."""


def describe(node) -> str:
    """``op 'name' (built at file:line)`` — how every message points at a node."""
    where = f" (built at {node.site})" if getattr(node, "site", None) else ""
    return f"{node.op} node '{node.name}'{where}"


class OutOfMemoryError(GraphcError, MemoryError):
    """A node (or a fed value, or a fetched result) whose array could not be allocated at run
    time; the message names the node and the shapes it was asked for."""
