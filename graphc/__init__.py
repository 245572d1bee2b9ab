"""graphc: a symbol-to-symbol graph compiler for Python.

Build a graph of ops, differentiate it symbolically (the derivatives are more graph), compile
it to a fast NumPy callable, and export it to DOT or JSON.
"""
from .errors import (GraphcError, ShapeError, DTypeError, MissingFeedError, FeedError,
                     DisconnectedGradientError, GradientCheckError, GraphFormatError,
                     NumericsError)
from .graph import Graph, Node
from .ops import (add, sub, mul, div, pow, neg, exp, log, log1p, sqrt, square, sin, cos, tanh,
                  abs, sign, maximum, minimum, clip,
                  less, less_equal, greater, greater_equal, equal, not_equal,
                  logical_not, logical_and, logical_or, where,
                  relu, sigmoid, softplus, softmax, log_softmax, logsumexp,
                  softmax_cross_entropy, sigmoid_cross_entropy, one_hot,
                  sum, mean, max, min, argmax, argmin,
                  reshape, transpose, expand_dims, squeeze, broadcast_to, concatenate, stack,
                  getitem, matmul, cast, stop_gradient, zeros_like, ones_like)
from .autodiff import gradients, grad, jacobian, hessian, hvp
from .testing import check_gradients
from .compiler import function
from .io import to_dot, render, to_json, from_json, save, load, to_sympy, from_sympy

__version__ = "0.1.0"

__all__ = [
    "Graph", "Node",
    # ops
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "sqrt", "square", "sin",
    "cos", "tanh", "abs", "sign", "maximum", "minimum", "clip",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
    "logical_not", "logical_and", "logical_or", "where",
    "relu", "sigmoid", "softplus", "softmax", "log_softmax", "logsumexp",
    "softmax_cross_entropy", "sigmoid_cross_entropy", "one_hot",
    "sum", "mean", "max", "min", "argmax", "argmin",
    "reshape", "transpose", "expand_dims", "squeeze", "broadcast_to", "concatenate", "stack",
    "getitem", "matmul", "cast", "stop_gradient", "zeros_like", "ones_like",
    # differentiation
    "gradients", "grad", "jacobian", "hessian", "hvp", "check_gradients",
    # running and compiling
    "function",
    # interchange
    "to_dot", "render", "to_json", "from_json", "save", "load", "to_sympy", "from_sympy",
    # errors
    "GraphcError", "ShapeError", "DTypeError", "MissingFeedError", "FeedError",
    "DisconnectedGradientError", "GradientCheckError", "GraphFormatError", "NumericsError",
]

# errors added for issue 9 (trust first)
from .errors import SymbolicValueError, FileError  # noqa: E402
__all__ += ["SymbolicValueError", "FileError"]
