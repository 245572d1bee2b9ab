"""All ops, by family. Importing this package fills :data:`registry.REGISTRY`.

Besides the public op functions, the families define internal ops that derivative rules
emit (``broadcast_like``, ``sum_to``, ``reshape_like``, ``getitem_grad``, ``concat_take``,
``concat_put``, ``one_hot_like``, ``reduced_size``, ``eye_like``): each is registered, tested and
differentiable like any other op.
"""
from .registry import REGISTRY, Case, Op, define  # noqa: F401
from . import sources  # noqa: F401
from .elementwise import (add, sub, mul, div, pow, neg, exp, log, log1p, sqrt,  # noqa: F401
                          square, sin, cos, tanh, abs, sign, maximum, minimum, clip)
from .compare import (less, less_equal, greater, greater_equal, equal,  # noqa: F401
                      not_equal, logical_not, logical_and, logical_or, where)
from .nn import (relu, sigmoid, softplus, softmax, log_softmax, logsumexp,  # noqa: F401
                 softmax_cross_entropy, sigmoid_cross_entropy, one_hot, one_hot_like)
from .reduce import sum, mean, max, min, argmax, argmin  # noqa: F401
from .broadcast import broadcast_to, broadcast_like, sum_to  # noqa: F401
from .shape import (reshape, reshape_like, transpose, expand_dims, squeeze,  # noqa: F401
                    concatenate, stack, concat_take, concat_put)
from .indexing import getitem, getitem_grad, index_trailing  # noqa: F401
# Linear algebra; internal ops of its rules: triangle (tril/triu masks, Murray's
# Phi) and diagonal_grad (diagonal's adjoint). eigh and slogdet nodes pack their two outputs.
from .linalg import (matmul, solve, solve_triangular, cho_solve, inv, det,  # noqa: F401
                     slogdet, triangle)
from .linalg_decomp import cholesky, eigh, eigvalsh  # noqa: F401
from .linalg_diag import diagonal, diagonal_grad, diag, trace  # noqa: F401
from .einsum import einsum, tensordot, dot, inner, outer  # noqa: F401
from .linalg_norm import norm  # noqa: F401
from .special import cast, stop_gradient, zeros_like, ones_like, eye_like  # noqa: F401
# -- more NumPy/SciPy math, reductions, scans, sorting and shape ops --------------------
# Internal ops their rules emit: prod_others, cumprod_tangent, cumprod_adjoint, pick_along,
# pick_along_adjoint, top_k_indices, quantile_index, quantile_weights, axis_map,
# axis_map_adjoint.
from .transcendental import (tan, arcsin, arccos, arctan, arctan2, sinh, cosh,  # noqa: F401
                             arcsinh, arccosh, arctanh, expm1, log2, log10, exp2, logaddexp,
                             hypot, reciprocal, cbrt)
from .rounding import (floor, ceil, trunc, round, mod, remainder, floor_divide,  # noqa: F401
                       isnan, isinf, isfinite)
from .special_functions import erf, erfc, erfinv, gammaln, digamma, polygamma  # noqa: F401
from .activations import (gelu, leaky_relu, elu, selu, silu, log_sigmoid,  # noqa: F401
                          softsign)
from .statistics import prod, prod_others, var, std, any, all  # noqa: F401
from .scan import cumsum, cumprod, logcumsumexp, cumprod_tangent, cumprod_adjoint  # noqa: F401
from .sorting import (sort, argsort, top_k, quantile, median, pick_along,  # noqa: F401
                      pick_along_adjoint, quantile_index, quantile_weights)
from .layout import (flip, roll, split, pad, tile, repeat, moveaxis, swapaxes,  # noqa: F401
                     broadcast_arrays, meshgrid, tril, triu, axis_map, axis_map_adjoint)
# -- convolution and pooling, gather/scatter, creation, random numbers --
# Internal ops their rules emit: conv2d_weight_grad, max_pool2d_grad, max_pool2d_gather,
# avg_pool2d_grad, take_grad, take_along_axis_grad, boolean_mask_grad, dynamic_slice_grad,
# index_hit, index_winners, random_next (and the samplers random_uniform, random_normal,
# random_permutation behind gc.random).
from .conv import (conv1d, conv2d, conv_transpose2d, conv2d_weight_grad,  # noqa: F401
                   conv_transpose2d_like)
from .pool import max_pool2d, avg_pool2d  # noqa: F401
from .gather import (take, take_grad, take_along_axis, boolean_mask,  # noqa: F401
                     dynamic_slice)
from .scatter import index_add, index_update, index_hit, index_winners  # noqa: F401
from . import random  # noqa: F401
from .creation import zeros, ones, full, eye, arange, linspace, full_like  # noqa: F401
