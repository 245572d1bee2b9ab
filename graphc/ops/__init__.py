"""All ops, by family. Importing this package fills :data:`registry.REGISTRY`."""
from .registry import REGISTRY, Case, Op, define  # noqa: F401
from . import sources  # noqa: F401
from .elementwise import (add, sub, mul, div, pow, neg, exp, log, log1p, sqrt, square,  # noqa
                          sin, cos, tanh)
from .broadcast import broadcast_to, broadcast_like, sum_to  # noqa: F401
from .reduce import sum, mean  # noqa: F401
from .shape import reshape, reshape_like, transpose, expand_dims, squeeze  # noqa: F401
from .special import cast, stop_gradient, zeros_like, ones_like  # noqa: F401
from .compare import (less, less_equal, greater, greater_equal, equal, not_equal,  # noqa
                      logical_not, logical_and, logical_or, where)
from .elementwise import abs, sign, maximum, minimum, clip  # noqa: F401
from .nn import (relu, sigmoid, softplus, softmax, log_softmax, logsumexp,  # noqa: F401
                 softmax_cross_entropy, sigmoid_cross_entropy, one_hot, one_hot_like)
from .linalg import matmul  # noqa: F401
from .indexing import getitem, getitem_grad, index_trailing  # noqa: F401
from .shape import concatenate, stack, concat_take, concat_put  # noqa: F401
from .reduce import max, min, argmax, argmin  # noqa: F401
