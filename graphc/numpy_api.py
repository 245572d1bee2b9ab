"""NumPy's habits on nodes: ndarray's methods and NumPy's dispatch protocols.

``np.exp(x)``, ``np.add(x, 1)``, ``array * x`` and ``np.maximum(x, y)`` reach
:meth:`Node.__array_ufunc__`; ``np.sum(x, axis=0)``, ``np.where(c, a, b)`` and
``np.linalg.solve(A, b)`` reach :meth:`Node.__array_function__` (NEP 13 and NEP 18, as dask
and CuPy arrays use them). Both look the NumPy function up in a table of graphc functions and
build nodes; a function, ufunc method or argument graphc does not have (``out=``, ``where=``,
``method="nearest"``, ...) raises :class:`GraphcError` naming it.

The tables are built on first use from NumPy names to graphc's public functions, so ops
defined after import (``gc.linalg.*``, ``gc.einsum``, ...) are found when they exist. The
ndarray-style adapters below (``sum(a, axis=None, dtype=None, out=None, keepdims=False)``,
...) serve both the dispatch and the Node methods.
"""
from __future__ import annotations

import builtins  # sum, max, ... below are NumPy's names, shadowing the builtins
import functools
from typing import Any, Callable

import numpy as np

from .errors import GraphcError, describe

_NO_VALUE = object()


def _graphc():
    import graphc
    return graphc


def _reject(what: str, **options) -> None:
    """GraphcError for the first option that was given (not None / False / the NumPy default)."""
    for key, value in options.items():
        if value is not None and value is not False and value is not _NO_VALUE:
            raise GraphcError(f"{what}: the argument {key}= is not supported on graphc nodes "
                              "(graph values are immutable: use the result instead)"
                              if key == "out" else
                              f"{what}: the argument {key}={value!r} is not supported on graphc "
                              "nodes")


def _cast_first(x, dtype):
    return x if dtype is None else _graphc().cast(x, dtype)


# -- ndarray-style adapters (NumPy's parameter names and order) ---------------------------------------
def _reduction(name: str, with_dtype: bool) -> Callable:
    def with_dtype_arg(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
        _reject(f"numpy.{name}", out=out, **rest)
        return getattr(_graphc(), name)(_cast_first(a, dtype), axis=axis, keepdims=keepdims)

    def without_dtype_arg(a, axis=None, out=None, keepdims=False, **rest):
        _reject(f"numpy.{name}", out=out, **rest)
        return getattr(_graphc(), name)(a, axis=axis, keepdims=keepdims)

    reduce = with_dtype_arg if with_dtype else without_dtype_arg
    reduce.__name__ = name
    reduce.__doc__ = f"``numpy.{name}`` on a node: ``gc.{name}``."
    return reduce


sum = _reduction("sum", True)
mean = _reduction("mean", True)
prod = _reduction("prod", True)
max = _reduction("max", False)
min = _reduction("min", False)
any = _reduction("any", False)
all = _reduction("all", False)
argmax = _reduction("argmax", False)
argmin = _reduction("argmin", False)


def _moment(name: str) -> Callable:
    def moment(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **rest):
        _reject(f"numpy.{name}", out=out, **rest)
        return getattr(_graphc(), name)(_cast_first(a, dtype), axis=axis, ddof=ddof,
                                        keepdims=keepdims)
    moment.__name__ = name
    return moment


var, std = _moment("var"), _moment("std")


def _scan(name: str) -> Callable:
    def scan(a, axis=None, dtype=None, out=None):
        _reject(f"numpy.{name}", out=out)
        return getattr(_graphc(), name)(_cast_first(a, dtype), axis=axis)
    scan.__name__ = name
    return scan


cumsum, cumprod = _scan("cumsum"), _scan("cumprod")


def reshape(a, *shape, order="C", newshape=None, copy=None, **named):
    """``a.reshape(2, 3)``, ``a.reshape((2, 3))`` and ``np.reshape(a, (2, 3))``."""
    _reject("reshape", order=None if order == "C" else order, copy=copy)
    if "shape" in named:
        shape = (named.pop("shape"),)
    _reject("numpy.reshape", **named)
    if newshape is not None:
        shape = (newshape,)
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    return _graphc().reshape(a, shape)


def transpose(a, *axes, **named):
    """``a.transpose()``, ``a.transpose(1, 0)``, ``a.transpose((1, 0))``, ``np.transpose(a, axes)``."""
    if "axes" in named:
        axes = (named.pop("axes"),)
    _reject("numpy.transpose", **named)
    if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], (int, np.integer))):
        axes = axes[0]
    return _graphc().transpose(a, axes if axes else None)


def ravel(a, order="C"):
    """``a`` flattened to one dimension (C order)."""
    _reject("ravel", order=None if order == "C" else order)
    return _graphc().reshape(a, (-1,))


def squeeze(a, axis=None):
    """``a`` without its size-1 dimensions (or the given ones)."""
    return _graphc().squeeze(a, axis)


def clip(a, a_min=_NO_VALUE, a_max=_NO_VALUE, out=None, *, min=_NO_VALUE, max=_NO_VALUE, **rest):
    """``numpy.clip``: ``a`` limited to ``[a_min, a_max]`` (``None`` leaves a side open)."""
    _reject("numpy.clip", out=out, **rest)
    lo = min if a_min is _NO_VALUE else a_min
    hi = max if a_max is _NO_VALUE else a_max
    return _graphc().clip(a, None if lo is _NO_VALUE else lo, None if hi is _NO_VALUE else hi)


def dot(a, b, out=None):
    """``numpy.dot``: products of scalars, vectors and matrices (``gc.linalg.dot`` beyond 2-D)."""
    _reject("numpy.dot", out=out)
    gc = _graphc()
    na, nb = np.ndim(a) if not isinstance(a, gc.Node) else a.ndim, \
        np.ndim(b) if not isinstance(b, gc.Node) else b.ndim
    if na == 0 or nb == 0:
        return gc.mul(a, b)
    if na <= 2 and nb <= 2:
        return gc.matmul(a, b)
    linalg = getattr(gc, "linalg", None)
    if linalg is not None and hasattr(linalg, "dot"):
        return linalg.dot(a, b)
    raise GraphcError("numpy.dot of arrays with more than 2 dimensions is not supported on "
                      "graphc nodes (use gc.matmul)")


def astype(a, dtype, order="K", casting="unsafe", subok=True, copy=True):
    """``a.astype(dtype)``: ``gc.cast``."""
    return _graphc().cast(a, dtype)


def round(a, decimals=0, out=None):
    """``numpy.round`` (halves to even)."""
    _reject("numpy.round", out=out)
    return _graphc().round(a, decimals)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """``numpy.median``."""
    _reject("numpy.median", out=out)
    return _graphc().median(a, axis=axis, keepdims=keepdims)


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, **rest):
    """``numpy.quantile`` with the default (linear) method."""
    _reject("numpy.quantile", out=out, method=None if method == "linear" else method, **rest)
    return _graphc().quantile(a, q, axis=axis, keepdims=keepdims)


def where(condition, x=_NO_VALUE, y=_NO_VALUE):
    """``numpy.where(condition, x, y)`` (the one-argument form has no static shape)."""
    if x is _NO_VALUE or y is _NO_VALUE:
        raise GraphcError("numpy.where with one argument (nonzero positions) is not supported "
                          "on graphc nodes: its size is not known until run time")
    return _graphc().where(condition, x, y)


def sort(a, axis=-1, kind=None, order=None, **rest):
    _reject("numpy.sort", order=order, **rest)
    return _graphc().sort(a, axis)


def argsort(a, axis=-1, kind=None, order=None, **rest):
    _reject("numpy.argsort", order=order, **rest)
    return _graphc().argsort(a, axis)


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _reject("numpy.concatenate", out=out)
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    return _cast_first(_graphc().concatenate(list(arrays), axis), dtype)


def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _reject("numpy.stack", out=out)
    return _cast_first(_graphc().stack(list(arrays), axis), dtype)


def _like(name):
    def like(a, dtype=None, order="K", subok=True, shape=None, **rest):
        _reject(f"numpy.{name}", shape=shape, **rest)
        return _cast_first(getattr(_graphc(), name)(a), dtype)
    return like


def pad(array, pad_width, mode="constant", **kwargs):
    constant = kwargs.pop("constant_values", 0)
    _reject("numpy.pad", **kwargs)
    return _graphc().pad(array, pad_width, mode, constant_values=constant)


# -- the tables --------------------------------------------------------------------------------------
# NumPy function name -> adapter above or graphc function name with the same signature.
_FUNCTIONS: dict[str, Any] = {
    "sum": sum, "mean": mean, "prod": prod, "max": max, "amax": max, "min": min, "amin": min,
    "any": any, "all": all, "argmax": argmax, "argmin": argmin, "var": var, "std": std,
    "cumsum": cumsum, "cumprod": cumprod, "reshape": reshape, "transpose": transpose,
    "ravel": ravel, "squeeze": squeeze, "clip": clip, "dot": dot, "round": round,
    "around": round, "median": median, "quantile": quantile, "where": where, "sort": sort,
    "argsort": argsort, "concatenate": concatenate, "stack": stack, "pad": pad,
    "zeros_like": _like("zeros_like"), "ones_like": _like("ones_like"),
    "shape": lambda a: a.shape, "ndim": lambda a: a.ndim,
    # same signature as NumPy's (positional use and the keywords graphc has)
    **{name: name for name in (
        "expand_dims", "broadcast_to", "flip", "roll", "split", "tile", "repeat", "moveaxis",
        "swapaxes", "broadcast_arrays", "meshgrid", "tril", "triu", "matmul", "logsumexp",
        # other engineers' ops, used when they exist
        "einsum", "trace", "diagonal", "diag", "outer", "tensordot", "take",
        "take_along_axis", "zeros", "ones", "full", "eye", "arange", "linspace", "full_like")},
}

# ufuncs graphc has under another name (the rest: graphc's function of the ufunc's name)
_UFUNC_NAMES = {"subtract": "sub", "multiply": "mul", "true_divide": "div", "divide": "div",
                "power": "pow", "float_power": "pow", "negative": "neg", "absolute": "abs",
                "remainder": "mod", "rint": "round", "fabs": "abs", "sqrt": "sqrt"}
# ufunc methods: (ufunc name, method) -> graphc function of (x, axis)
_UFUNC_METHODS = {("add", "reduce"): "sum", ("multiply", "reduce"): "prod",
                  ("maximum", "reduce"): "max", ("minimum", "reduce"): "min",
                  ("logical_or", "reduce"): "any", ("logical_and", "reduce"): "all",
                  ("add", "accumulate"): "cumsum", ("multiply", "accumulate"): "cumprod",
                  ("logaddexp", "accumulate"): "logcumsumexp"}


def _lookup(name: str):
    """The graphc function for a NumPy name (``"sum"``, ``"linalg.solve"``), or None."""
    gc = _graphc()
    if name.startswith("linalg."):
        linalg = getattr(gc, "linalg", None)
        return getattr(linalg, name[len("linalg."):], None) if linalg is not None else None
    entry = _FUNCTIONS.get(name)
    if isinstance(entry, str):
        return getattr(gc, entry, None)
    return entry


def _numpy_name(func) -> str:
    """``"sum"``, ``"linalg.solve"``, ``"fft.fft"``: the name after ``numpy.``."""
    module = getattr(func, "__module__", "") or ""
    name = getattr(func, "__name__", repr(func))
    sub = module[len("numpy."):] if module.startswith("numpy.") else ""
    return f"{sub}.{name}" if sub and not sub.startswith("_") else name


@functools.lru_cache(maxsize=None)
def _ufunc_function(ufunc) -> Callable | None:
    name = ufunc.__name__
    gc = _graphc()
    if name == "divmod":
        return lambda a, b: (gc.floor_divide(a, b), gc.mod(a, b))
    if name == "positive":
        return lambda a: a
    return getattr(gc, _UFUNC_NAMES.get(name, name), None)


def array_ufunc(node, ufunc, method: str, *inputs, **kwargs):
    """What ``node.__array_ufunc__`` does: the graphc op for ``ufunc`` (or a reduction for
    ``ufunc.reduce``/``accumulate``), else a GraphcError naming the ufunc."""
    label = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if kwargs.get("out") is not None:
        raise GraphcError(f"{label}: the argument out= is not supported on graphc nodes "
                          "(graph values are immutable: use the result instead)")
    kwargs.pop("out", None)
    if method == "__call__":
        function = _ufunc_function(ufunc)
        if function is None:
            raise GraphcError(f"{label} is not supported on graphc nodes (graphc has no such "
                              f"op); used with {describe(node)}")
        dtype = kwargs.pop("dtype", None)
        _reject(label, **kwargs)
        return _cast_first(function(*inputs), dtype)
    target = _UFUNC_METHODS.get((ufunc.__name__, method))
    if target is None:
        raise GraphcError(f"{label} is not supported on graphc nodes; used with {describe(node)}")
    axis = kwargs.pop("axis", 0)
    dtype = kwargs.pop("dtype", None)
    keepdims = kwargs.pop("keepdims", False)
    _reject(label, **kwargs)
    (x,) = inputs
    extra = {"keepdims": keepdims} if method == "reduce" else {}
    return getattr(_graphc(), target)(_cast_first(x, dtype), axis=axis, **extra)


def array_function(node, func, types, args, kwargs):
    """What ``node.__array_function__`` does: the graphc function for ``func``, else a
    GraphcError naming it (NotImplemented when other array types take part)."""
    from .graph import Node
    if not builtins.all(issubclass(t, (Node, np.ndarray)) for t in types):
        return NotImplemented
    name = _numpy_name(func)
    function = _lookup(name)
    if function is None:
        raise GraphcError(f"numpy.{name} is not supported on graphc nodes (graphc has no such "
                          f"op); used with {describe(node)}")
    try:
        return function(*args, **kwargs)
    except TypeError as exc:
        if isinstance(exc, GraphcError):
            raise
        raise GraphcError(f"numpy.{name}: these arguments are not supported on graphc nodes "
                          f"({exc})") from None
