"""graphc: a symbol-to-symbol graph compiler for Python.

Build a graph of ops, differentiate it symbolically (the derivatives are more graph), compile
it to a fast NumPy callable, and export it to DOT or JSON.
"""
from .errors import (GraphcError, ShapeError, DTypeError, MissingFeedError, FeedError,
                     DisconnectedGradientError, GradientCheckError, GraphFormatError,
                     NumericsError)
from .errors import OutOfMemoryError
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
# -- issue 10: NumPy/SciPy math, reductions, scans, sorting and shape ops ----------------------
from .ops import (tan, arcsin, arccos, arctan, arctan2, sinh, cosh, arcsinh, arccosh, arctanh,
                  expm1, log2, log10, exp2, logaddexp, hypot, reciprocal, cbrt,
                  floor, ceil, trunc, round, mod, remainder, floor_divide, isnan, isinf, isfinite,
                  erf, erfc, erfinv, gammaln, digamma, polygamma,
                  gelu, leaky_relu, elu, selu, silu, log_sigmoid, softsign,
                  prod, var, std, any, all, cumsum, cumprod, logcumsumexp,
                  sort, argsort, top_k, quantile, median,
                  flip, roll, split, pad, tile, repeat, moveaxis, swapaxes, broadcast_arrays,
                  meshgrid, tril, triu)
from .autodiff import gradients, grad
from .forward import jvp
from .jacobians import jacobian, jacfwd, hessian, hvp
from .sparse import jacobian_sparsity, hessian_sparsity, sparse_jacobian, sparse_hessian
# linear algebra (issue 10): gc.linalg.*, and NumPy's top-level names
from .ops import einsum, tensordot, trace, diagonal, diag, outer, inner, dot
from . import linalg
# -- issue 10 (h10nn): convolution, pooling, gather/scatter, creation, random numbers --
from .errors import IndexOutOfRangeError
from .ops import (conv1d, conv2d, conv_transpose2d, max_pool2d, avg_pool2d,
                  take, take_along_axis, boolean_mask, index_add, index_update, dynamic_slice,
                  zeros, ones, full, eye, arange, linspace, full_like)
from . import random
from .testing import check_gradients
from .compiler import function
from .io import to_dot, render, to_json, from_json, save, load, to_sympy, from_sympy

# Seeing graphs and training with them (issue 14): text listings, optimizers as update graphs.
from .io import to_text, show
from . import optimizers

# Your own ops (issue 11): kernel ops with the built-in contract, composites of ops.
from .custom import define_op
from .composite import composite, custom_gradient
from . import testing

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
    # issue 10: NumPy/SciPy math, reductions, scans, sorting and shape ops
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
    "arctanh", "expm1", "log2", "log10", "exp2", "logaddexp", "hypot", "reciprocal", "cbrt",
    "floor", "ceil", "trunc", "round", "mod", "remainder", "floor_divide", "isnan", "isinf",
    "isfinite", "erf", "erfc", "erfinv", "gammaln", "digamma", "polygamma",
    "gelu", "leaky_relu", "elu", "selu", "silu", "log_sigmoid", "softsign",
    "prod", "var", "std", "any", "all", "cumsum", "cumprod", "logcumsumexp",
    "sort", "argsort", "top_k", "quantile", "median",
    "flip", "roll", "split", "pad", "tile", "repeat", "moveaxis", "swapaxes", "broadcast_arrays",
    "meshgrid", "tril", "triu",
    # linear algebra (issue 10)
    "linalg", "einsum", "tensordot", "trace", "diagonal", "diag", "outer", "inner", "dot",
    # differentiation
    "gradients", "grad", "jacobian", "hessian", "hvp", "check_gradients",
    "jvp", "jacfwd",
    "jacobian_sparsity", "hessian_sparsity", "sparse_jacobian", "sparse_hessian",
    # running and compiling
    "function",
    # interchange
    "to_dot", "render", "to_json", "from_json", "save", "load", "to_sympy", "from_sympy",
    # seeing graphs (issue 14); gc.optimizers is a module
    "to_text", "show",
    # your own ops (issue 11); gc.testing.check_op is in the module gc.testing
    "define_op", "composite", "custom_gradient",
    # errors
    "GraphcError", "ShapeError", "DTypeError", "MissingFeedError", "FeedError",
    "DisconnectedGradientError", "GradientCheckError", "GraphFormatError", "NumericsError",
    "OutOfMemoryError",
    # issue 10 (h10nn): convolution, pooling, gather/scatter, creation, random numbers
    "conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "take", "take_along_axis", "boolean_mask", "index_add", "index_update", "dynamic_slice",
    "zeros", "ones", "full", "eye", "arange", "linspace", "full_like", "random",
    "IndexOutOfRangeError",
]

# -- bridges: SciPy's optimizers and ONNX (issue 14)
from .scipy_bridge import ScipyObjective, scipy_objective  # noqa: E402
from .io.onnx_export import to_onnx  # noqa: E402

__all__ += ["scipy_objective", "ScipyObjective", "to_onnx"]

# errors added for issue 9 (trust first)
from .errors import SymbolicValueError, FileError  # noqa: E402
__all__ += ["SymbolicValueError", "FileError"]
