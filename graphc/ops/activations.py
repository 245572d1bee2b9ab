"""More activations of neural networks: ``gelu``, ``leaky_relu``, ``elu``, ``selu``, ``silu``,
``log_sigmoid`` and ``softsign`` (the names and defaults of ``jax.nn``).

Kernels are stable for any input: ``log_sigmoid = -softplus(-x)``, ``elu`` takes ``expm1`` of
``min(x, 0)`` only; ``gelu`` is the exact ``x * Phi(x)`` (with ``approximate=True`` the tanh
form). Rules are graphs of registered ops (``sigmoid``, ``erf``, ``where`` ...), so every order
of derivative works; at the kink of ``leaky_relu`` the derivative is taken from the left.
"""
from __future__ import annotations

from typing import Optional

import math

import numpy as np
from scipy import special

from ..graph import Node, Operand, apply
from .attrs import flag, real
from .compare import greater, where
from .elementwise import abs, add, div, exp, mul, neg, square, sub, tanh
from .nn import (_SMALL_BYTES, _as_float, _float_unary_infer, _in_pieces, _log1p_exp_neg_abs,
                 _putmask, _sigmoid, _sigmoid_into, _softplus, sigmoid)
from .registry import Case, define
from .special_functions import erf

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)  # gelu's tanh form: tanh(c (x + 0.044715 x^3))
_TANH_CUBIC = 0.044715
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_CASES = [Case(((3, 4),), low=-3.0, high=3.0, order=3), Case(((),)),
          Case((np.array([-2, 1, 3]),))]


# -- gelu -------------------------------------------------------------------------------------------
def _gelu_infer(x, *, approximate):
    return _float_unary_infer(x)


def _gelu(x, *, approximate):
    x = _as_float(x)
    small = x.nbytes <= _SMALL_BYTES
    if approximate:
        if small:
            inner = _TANH_SCALE * (x + _TANH_CUBIC * x ** 3)
            return 0.5 * x * (1 + np.tanh(inner))
        return _in_pieces(_gelu_tanh_into, np.empty_like(x), x.dtype, x)
    if small:
        return (0.5 * x * (1 + special.erf(x * _SQRT_HALF))).astype(x.dtype, copy=False)
    # erf computes float16 in float64: so does the product, rounded once into out
    wide = special.erf.resolve_dtypes((x.dtype, None))[1]
    return _in_pieces(_gelu_erf_into, np.empty_like(x), wide, x)


def _gelu_tanh_into(out, t, x):
    np.multiply(_TANH_CUBIC, np.power(x, 3, out=t), out=t)
    np.multiply(_TANH_SCALE, np.add(x, t, out=t), out=t)
    np.add(1, np.tanh(t, out=t), out=t)
    np.multiply(np.multiply(0.5, x, out=out), t, out=out)


def _gelu_erf_into(out, t, x):
    special.erf(np.multiply(x, _SQRT_HALF, out=t), out=t)
    np.multiply(np.multiply(0.5, x, out=out), np.add(1, t, out=t), out=out)


def _gelu_bprop(node, g, i):
    x = node.inputs[0]
    if node.attrs["approximate"]:
        t = tanh(mul(add(x, mul(mul(x, square(x)), _TANH_CUBIC)), _TANH_SCALE))
        dinner = mul(add(mul(square(x), 3 * _TANH_CUBIC), 1), _TANH_SCALE)
        slope = add(mul(add(t, 1), 0.5), mul(mul(x, sub(1, square(t))), mul(dinner, 0.5)))
    else:  # Phi(x) + x phi(x)
        cdf = mul(add(erf(mul(x, _SQRT_HALF)), 1), 0.5)
        slope = add(cdf, mul(x, mul(exp(mul(square(x), -0.5)), _INV_SQRT_2PI)))
    return mul(g, slope)


def _gelu_reference(x, *, approximate):
    if approximate:
        c = math.sqrt(2 / math.pi)
        return np.vectorize(lambda v: 0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v ** 3))),
                            otypes=[np.float64])(x)
    return np.vectorize(lambda v: v * 0.5 * math.erfc(-v / math.sqrt(2)), otypes=[np.float64])(x)


define("gelu", infer=_gelu_infer, attrs={"approximate": flag}, kernel=_gelu, bprop=_gelu_bprop,
       reference=_gelu_reference,
       cases=[Case(((3, 4),), attrs={"approximate": False}, low=-3.0, high=3.0, order=3),
              Case(((3, 4),), attrs={"approximate": True}, low=-3.0, high=3.0, order=3),
              Case((np.array([-2, 1]),), attrs={"approximate": False})],
       elementwise=True, doc="x * Phi(x) (Phi the normal CDF), or its tanh approximation.")


# -- leaky_relu / elu / selu ------------------------------------------------------------------------
def _leaky_relu_infer(x, *, negative_slope):
    return _float_unary_infer(x)


def _leaky_relu(x, *, negative_slope):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        return np.where(x > 0, x, x * negative_slope)
    out = np.multiply(x, negative_slope)  # in one array: as large temporaries fault
    _putmask(out, x > 0, x)
    return out


define("leaky_relu", infer=_leaky_relu_infer, attrs={"negative_slope": real()},
       kernel=_leaky_relu, curvature="linear",
       bprop=lambda node, g, i: where(greater(node.inputs[0], 0), g,
                                      mul(g, node.attrs["negative_slope"])),
       reference=lambda x, *, negative_slope: np.maximum(x, 0) + negative_slope * np.minimum(x, 0),
       cases=[Case(((3, 4),), attrs={"negative_slope": 0.01}, order=3),
              Case(((),), attrs={"negative_slope": 0.2}),
              Case((np.array([-2, 0, 3]),), attrs={"negative_slope": 0.5})],
       elementwise=True, doc="x where x > 0, else negative_slope * x.")


def _elu(x, alpha):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    out = np.minimum(x, 0)  # in one array: as large temporaries fault
    np.multiply(alpha, np.expm1(out, out=out), out=out)
    _putmask(out, x > 0, x)
    return out


def _selu(x):
    out = _elu(x, _SELU_ALPHA)
    if out.nbytes <= _SMALL_BYTES:
        return _SELU_SCALE * out
    return np.multiply(_SELU_SCALE, out, out=out)


def _elu_infer(x, *, alpha):
    return _float_unary_infer(x)


define("elu", infer=_elu_infer, attrs={"alpha": real()},
       kernel=lambda x, *, alpha: _elu(x, alpha),
       # below 0 the slope alpha * exp(x) is the output plus alpha
       bprop=lambda node, g, i: where(greater(node.inputs[0], 0), g,
                                      mul(g, add(node, node.attrs["alpha"]))),
       reference=lambda x, *, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
       cases=[Case(((3, 4),), attrs={"alpha": 1.0}, order=3),
              Case(((),), attrs={"alpha": 0.5}), Case((np.array([-800.0, 2.0]),),
                                                      attrs={"alpha": 1.0})],
       elementwise=True, doc="x where x > 0, else alpha * (exp(x) - 1).")

define("selu", infer=_float_unary_infer,
       kernel=_selu,
       bprop=lambda node, g, i: where(greater(node.inputs[0], 0), mul(g, _SELU_SCALE),
                                      mul(g, add(node, _SELU_SCALE * _SELU_ALPHA))),
       reference=lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * (np.exp(x) - 1)),
       cases=_CASES, elementwise=True,
       doc="scale * elu(x, alpha) with the self-normalising constants of Klambauer et al.")


# -- silu / log_sigmoid / softsign ----------------------------------------------------------------
def _silu_bprop(node, g, i):
    x = node.inputs[0]
    s = sigmoid(x)
    return mul(g, mul(s, add(mul(x, sub(1, s)), 1)))  # s (1 + x (1 - s))


def _silu(x):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        return x * _sigmoid(x)
    return _in_pieces(_silu_into, np.empty_like(x), x.dtype, x)


def _silu_into(out, e, x):
    _sigmoid_into(out, e, x)
    np.multiply(x, out, out=out)


def _log_sigmoid(x):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        return -_softplus(-x)
    return _in_pieces(_log_sigmoid_into, np.empty_like(x), x.dtype, x)


def _log_sigmoid_into(out, scratch, x):
    """-softplus(-x) = -(max(-x, 0) + log1p(exp(-|x|))), as |-x| is |x| bit for bit."""
    np.maximum(np.negative(x, out=out), 0, out=out)
    np.negative(np.add(out, _log1p_exp_neg_abs(x, scratch), out=out), out=out)


def _softsign(x):
    x = _as_float(x)
    if x.nbytes <= _SMALL_BYTES:
        return x / (1 + np.abs(x))
    out = np.abs(x)  # in one array: as large temporaries fault
    return np.divide(x, np.add(1, out, out=out), out=out)


define("silu", infer=_float_unary_infer, kernel=_silu,
       bprop=_silu_bprop, reference=lambda x: x / (1 + np.exp(-x)), cases=_CASES,
       elementwise=True, doc="x * sigmoid(x) (also called swish).")
define("log_sigmoid", infer=_float_unary_infer, kernel=_log_sigmoid,
       bprop=lambda node, g, i: mul(g, sigmoid(neg(node.inputs[0]))),
       reference=lambda x: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))),
       cases=_CASES + [Case((np.array([-1e4, 1e4, 0.0]),), wrt=())],
       elementwise=True, doc="log(sigmoid(x)) = -softplus(-x), stable for any x.")
define("softsign", infer=_float_unary_infer,
       kernel=_softsign,
       bprop=lambda node, g, i: div(g, square(add(abs(node.inputs[0]), 1))),
       reference=lambda x: x / (1 + np.sqrt(x * x)), cases=_CASES,
       elementwise=True, doc="x / (1 + |x|).")


# -- builders ---------------------------------------------------------------------------------------
def gelu(x: Operand, approximate: bool = False, name: Optional[str] = None) -> Node:
    """The Gaussian error linear unit ``x * Phi(x)``, exact (with ``erf``) by default;
    ``approximate=True`` gives the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    (jax.nn.gelu defaults to the tanh form; PyTorch's and this default is the exact one.)"""
    return apply("gelu", [x], {"approximate": approximate}, name=name)


def leaky_relu(x: Operand, negative_slope: float = 0.01, name: Optional[str] = None) -> Node:
    """``x`` where ``x > 0``, else ``negative_slope * x`` (slope ``negative_slope`` at 0)."""
    return apply("leaky_relu", [x], {"negative_slope": negative_slope}, name=name)


def elu(x: Operand, alpha: float = 1.0, name: Optional[str] = None) -> Node:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return apply("elu", [x], {"alpha": alpha}, name=name)


def selu(x: Operand, name: Optional[str] = None) -> Node:
    """The scaled ELU ``scale * elu(x, alpha)`` with ``alpha = 1.6733``, ``scale = 1.0507``."""
    return apply("selu", [x], name=name)


def silu(x: Operand, name: Optional[str] = None) -> Node:
    """``x * sigmoid(x)`` (swish)."""
    return apply("silu", [x], name=name)


def log_sigmoid(x: Operand, name: Optional[str] = None) -> Node:
    """``log(sigmoid(x))`` computed as ``-softplus(-x)``: finite for any ``x``."""
    return apply("log_sigmoid", [x], name=name)


def softsign(x: Operand, name: Optional[str] = None) -> Node:
    """``x / (1 + |x|)``."""
    return apply("softsign", [x], name=name)
