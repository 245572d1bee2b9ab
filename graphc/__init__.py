"""graphc: a symbol-to-symbol graph compiler for Python.

Build a graph of ops, differentiate it symbolically (the derivatives are more graph), compile
it to a fast NumPy callable, and export it to DOT or JSON.
"""
from .errors import (GraphcError, ShapeError, DTypeError, MissingFeedError, FeedError,
                     DisconnectedGradientError, GradientCheckError, GraphFormatError,
                     NumericsError)
from .graph import Graph, Node
from .ops import (add, sub, mul, div, pow, neg, exp, log, log1p, sqrt, square, sin, cos, tanh,
                  sum, mean, reshape, transpose, expand_dims, squeeze, broadcast_to,
                  cast, stop_gradient, zeros_like, ones_like)
from .ops import (less, less_equal, greater, greater_equal, equal, not_equal, logical_not,
                  logical_and, logical_or, where)
from .autodiff import gradients, grad, jacobian, hessian, hvp
from .testing import check_gradients

__version__ = "0.1.0"
