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
from .ops import (abs, sign, maximum, minimum, clip, relu, sigmoid, softplus, softmax,
                  log_softmax, logsumexp, softmax_cross_entropy, sigmoid_cross_entropy, one_hot)
from .ops import matmul, getitem, concatenate, stack, max, min, argmax, argmin
from .autodiff import gradients, grad, jacobian, hessian, hvp
from .compiler import function
from .testing import check_gradients
from .io import to_dot, render, to_json, from_json, save, load, to_sympy, from_sympy

__version__ = "0.1.0"
