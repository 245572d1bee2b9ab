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
from .linalg import (matmul, solve, solve_triangular, cho_solve, inv, det,  # noqa: F401
                     slogdet, triangle)
from .linalg_decomp import cholesky, eigh, eigvalsh  # noqa: F401
from .linalg_diag import diagonal, diagonal_grad, diag, trace  # noqa: F401
from .einsum import einsum, tensordot, dot, inner, outer  # noqa: F401
from .linalg_norm import norm  # noqa: F401
from .special import cast, stop_gradient, zeros_like, ones_like, eye_like  # noqa: F401
