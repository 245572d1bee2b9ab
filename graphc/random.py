"""``gc.random``: reproducible random numbers (Philox, counter-based), with
``numpy.random.Generator``'s names.

>>> key = gc.random.key(g, seed=0)        # a uint64 variable [seed, counter]
>>> z = gc.random.normal(key, (3,))       # the same key value gives the same samples
>>> y = gc.random.dropout(h, 0.5, key)    # fresh masks per call of a compiled function

See :mod:`graphc.ops.random` for the design (keys, salts, how ``gc.function`` advances keys).
"""
from .ops.random import (make_key as key, uniform, normal, bernoulli,  # noqa: F401
                         categorical, permutation, dropout, next_key)

__all__ = ["key", "uniform", "normal", "bernoulli", "categorical", "permutation", "dropout",
           "next_key"]
