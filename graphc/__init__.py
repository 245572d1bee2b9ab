"""graphc: a symbol-to-symbol graph compiler for Python.

Build a graph of ops, differentiate it symbolically (the derivatives are more graph, in
reverse or forward mode, dense or sparse), compile it to a fast NumPy callable, and export it
to DOT, JSON or ONNX.
"""
from .errors import (GraphcError, ShapeError, DTypeError, MissingFeedError, FeedError,
                     DisconnectedGradientError, GradientCheckError, GraphFormatError,
                     NumericsError, OutOfMemoryError, IndexOutOfRangeError, SymbolicValueError,
                     FileError)
from .graph import Graph, Node
# -- ops: arithmetic, math, comparisons, networks, reductions, shapes -------------------------
from .ops import (add, sub, mul, div, pow, neg, exp, log, log1p, sqrt, square, sin, cos, tanh,
                  abs, sign, maximum, minimum, clip,
                  tan, arcsin, arccos, arctan, arctan2, sinh, cosh, arcsinh, arccosh, arctanh,
                  expm1, log2, log10, exp2, logaddexp, hypot, reciprocal, cbrt,
                  floor, ceil, trunc, round, mod, remainder, floor_divide, isnan, isinf, isfinite,
                  erf, erfc, erfinv, gammaln, digamma, polygamma,
                  less, less_equal, greater, greater_equal, equal, not_equal,
                  logical_not, logical_and, logical_or, where,
                  relu, sigmoid, softplus, softmax, log_softmax, logsumexp,
                  softmax_cross_entropy, sigmoid_cross_entropy, one_hot,
                  gelu, leaky_relu, elu, selu, silu, log_sigmoid, softsign,
                  sum, mean, max, min, argmax, argmin, prod, var, std, any, all,
                  cumsum, cumprod, logcumsumexp, sort, argsort, top_k, quantile, median,
                  reshape, transpose, expand_dims, squeeze, broadcast_to, concatenate, stack,
                  flip, roll, split, pad, tile, repeat, moveaxis, swapaxes, broadcast_arrays,
                  meshgrid, tril, triu,
                  getitem, take, take_along_axis, boolean_mask, index_add, index_update,
                  dynamic_slice,
                  matmul, einsum, tensordot, trace, diagonal, diag, outer, inner, dot,
                  conv1d, conv2d, conv_transpose2d, max_pool2d, avg_pool2d,
                  zeros, ones, full, eye, arange, linspace, full_like,
                  cast, stop_gradient, zeros_like, ones_like)
from . import linalg, random
# -- differentiation -----------------------------------------------------------------------------
from .autodiff import gradients, grad
from .forward import jvp
from .jacobians import jacobian, jacfwd, hessian, hvp
from .sparse import jacobian_sparsity, hessian_sparsity, sparse_jacobian, sparse_hessian
from .testing import check_gradients
from . import testing
# -- your own ops --------------------------------------------------------------------------------
from .custom import define_op
from .composite import composite, custom_gradient
# -- running, seeing, training, interchange ------------------------------------------------------
from .compiler import function
from .io import to_dot, render, to_text, show, to_json, from_json, save, load, to_sympy, \
    from_sympy
from .io.onnx_export import to_onnx
from .scipy_bridge import ScipyObjective, scipy_objective
from . import optimizers

__version__ = "0.1.0"

__all__ = [
    "Graph", "Node",
    # ops
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "sqrt", "square", "sin",
    "cos", "tanh", "abs", "sign", "maximum", "minimum", "clip",
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
    "arctanh", "expm1", "log2", "log10", "exp2", "logaddexp", "hypot", "reciprocal", "cbrt",
    "floor", "ceil", "trunc", "round", "mod", "remainder", "floor_divide", "isnan", "isinf",
    "isfinite", "erf", "erfc", "erfinv", "gammaln", "digamma", "polygamma",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
    "logical_not", "logical_and", "logical_or", "where",
    "relu", "sigmoid", "softplus", "softmax", "log_softmax", "logsumexp",
    "softmax_cross_entropy", "sigmoid_cross_entropy", "one_hot",
    "gelu", "leaky_relu", "elu", "selu", "silu", "log_sigmoid", "softsign",
    "sum", "mean", "max", "min", "argmax", "argmin", "prod", "var", "std", "any", "all",
    "cumsum", "cumprod", "logcumsumexp", "sort", "argsort", "top_k", "quantile", "median",
    "reshape", "transpose", "expand_dims", "squeeze", "broadcast_to", "concatenate", "stack",
    "flip", "roll", "split", "pad", "tile", "repeat", "moveaxis", "swapaxes", "broadcast_arrays",
    "meshgrid", "tril", "triu",
    "getitem", "take", "take_along_axis", "boolean_mask", "index_add", "index_update",
    "dynamic_slice",
    "matmul", "einsum", "tensordot", "trace", "diagonal", "diag", "outer", "inner", "dot",
    "conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "zeros", "ones", "full", "eye", "arange", "linspace", "full_like",
    "cast", "stop_gradient", "zeros_like", "ones_like",
    "linalg", "random",
    # differentiation
    "gradients", "grad", "jvp", "jacobian", "jacfwd", "hessian", "hvp", "check_gradients",
    "jacobian_sparsity", "hessian_sparsity", "sparse_jacobian", "sparse_hessian",
    # your own ops (gc.testing.check_op verifies them)
    "define_op", "composite", "custom_gradient",
    # running, seeing, training, interchange (gc.optimizers is a module)
    "function", "to_dot", "render", "to_text", "show", "to_json", "from_json", "save", "load",
    "to_sympy", "from_sympy", "to_onnx", "scipy_objective", "ScipyObjective",
    # errors
    "GraphcError", "ShapeError", "DTypeError", "MissingFeedError", "FeedError",
    "DisconnectedGradientError", "GradientCheckError", "GraphFormatError", "NumericsError",
    "OutOfMemoryError", "IndexOutOfRangeError", "SymbolicValueError", "FileError",
]
