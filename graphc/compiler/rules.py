"""THE rewrite-rule table: small pattern -> replacement rules, grouped by stage.

A rule is a function ``fn(term, b) -> Term | None``: ``term`` is a freshly built term whose
inputs are already rewritten; the rule looks *down* at them and returns a replacement built
with ``b.make(op, inputs, attrs)`` / ``b.constant(value)`` (or an existing term), or ``None``.
The rule pass checks that a replacement keeps the term's static shape and dtype.

Stages:

* ``simplify`` (on by default) — rewrites that keep every value: multiplying by one, adding
  zero, signs, transposes, reshapes, broadcasts that a reduction or ``sum_to`` undoes, casts
  to the same dtype, ... The only differences they allow are the sign of a zero result (for
  complex values: of a zero real or imaginary part) and the rounding of the three documented
  reorderings (``sum_of_broadcast``, ``batched_matvec``, ``sum_of_products``: BLAS adds in
  its own order, on random data within a few ulp of the exact sum like NumPy's pairwise sum,
  on repeated values up to a few hundred (docs/compiler.md), and where
  partial sums pass the largest float one order may overflow where the other does not), so
  ``g.run`` and a compiled function agree (tests/test_agreement.py). NumPy's complex ``*``
  and ``/`` are not part by part (``(inf + 0j) * 1`` is ``inf + nanj``), so the rules that
  drop or move a factor or a divisor's sign leave complex values alone. (``fill_like`` does
  not compute the ``x`` of ``zeros_like(x)``, so an error its kernel would raise is not
  raised.)
* ``fastmath`` (opt-in: ``passes=DEFAULT_PASSES + ("fastmath",)``) — rewrites that may
  change values where inputs are inf, NaN or near overflow, or change rounding more:
  ``0 * x -> 0``, ``x - x -> 0``, ``exp(log x) -> x``, reassociated constant factors, ...

Numerically *better* forms (``log(sigmoid x) -> -softplus(-x)``, ``log(1 + x) -> log1p(x)``,
``log(softmax) -> log_softmax``, ``log1p(exp x) -> softplus(x)``) are not rewrites here: the op
builders (``gc.log``, ``gc.log1p``) build them, so ``g.run``, compiled functions and gradients
all see the stable form.

A rule that needs an op which is not registered (yet) is inactive (:attr:`Rule.active`).
Shapes: a rule that returns one of the term's inputs must prove that the run-time shape is
the same; sizes that are ``None`` are only known equal when they are the same input's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

import numpy as np

from ..ops.einsum import DOT_DTYPES, LETTERS
from ..ops.registry import REGISTRY
from .ir import Term


@dataclass(frozen=True)
class Rule:
    """One entry of the rule table: ``fn`` rewrites terms whose op is in ``ops``."""

    name: str
    stage: str
    ops: tuple  # the ops at the root of the pattern
    fn: Callable
    requires: tuple = ()  # ops the replacement builds, beyond the core ones
    doc: str = ""

    @property
    def active(self) -> bool:
        return all(op in REGISTRY for op in self.ops + self.requires)


#: The table. Order matters only within one op: the first rule that fires wins.
RULES: list[Rule] = []


def rule(stage: str, *ops: str, requires: tuple = ()):
    """Add the decorated function to :data:`RULES` (its docstring is the rule's doc)."""
    def add(fn):
        RULES.append(Rule(fn.__name__, stage, ops, fn, requires, (fn.__doc__ or "").strip()))
        return fn
    return add


@lru_cache(maxsize=None)
def _by_op(stage: str, registered: frozenset) -> dict:
    table: dict[str, list] = {}
    for r in RULES:
        if r.stage == stage and r.active:
            for op in r.ops:
                table.setdefault(op, []).append(r)
    return table


def rules_by_op(stage: str) -> dict:
    """``{op: [active rules of this stage]}``, recomputed when the registry grows."""
    return _by_op(stage, frozenset(REGISTRY))


# -- pattern helpers ------------------------------------------------------------------------------
def constant_value(t: Term) -> Optional[np.ndarray]:
    """The value of a constant, seen through broadcasts of a constant; else ``None``."""
    if t.op == "constant":
        return t.attrs["value"]
    if t.op in ("broadcast_to", "broadcast_like") and t.inputs[0].op == "constant":
        return t.inputs[0].attrs["value"]
    return None


def is_all(t: Term, value) -> bool:
    """Whether every element of ``t`` is known to equal ``value``."""
    v = constant_value(t)
    if v is None or v.size == 0:
        return False
    if v.ndim == 0 and value in _EXACT and v.dtype.kind in "biufc":
        return v.item() == value  # the same answer as NumPy's, 0.1 us instead of 1-3
    return bool(np.all(v == value))


#: Values every numeric dtype holds exactly: comparing a 0-d constant's Python value with
#: them gives NumPy's answer (which compares in the constant's dtype).
_EXACT = frozenset({0, 1, -1, 2, 0.5})


def _bitwise_uniform(value: np.ndarray) -> bool:
    """Whether all elements of a non-empty array have the same bits."""
    rows = np.frombuffer(np.ascontiguousarray(value).tobytes(), np.uint8)
    rows = rows.reshape(value.size, value.dtype.itemsize)
    return bool((rows == rows[0]).all())


def known(shape: tuple) -> bool:
    """Whether every size of ``shape`` is known statically."""
    return None not in shape


def fits_into(small: Term, big: Term) -> bool:
    """Whether broadcasting ``small`` against ``big`` surely leaves ``big``'s shape unchanged."""
    if small.ndim > big.ndim:
        return False
    for s, b in zip(reversed(small.shape), reversed(big.shape)):
        if s != 1 and (s is None or s != b):
            return False
    return True


def same_shape(a: Term, b: Term) -> bool:
    """Whether two terms surely have the same run-time shape."""
    return a is b or (a.shape == b.shape and known(a.shape))


def keeps(term: Term, x: Term, other: Term) -> Optional[Term]:
    """``x`` when ``term = op(x, other)`` may be replaced by ``x`` as far as shape and dtype go."""
    if x.dtype == term.dtype and x.shape == term.shape and fits_into(other, x):
        return x
    return None


def zeros(term: Term, b) -> Term:
    """Zeros of ``term``'s shape and dtype, without reading any input (a broadcast view)."""
    zero = b.constant(np.zeros((), term.dtype))
    if term.shape == ():
        return zero
    if known(term.shape):
        return b.make("broadcast_to", [zero], {"shape": term.shape})
    return None


def unary(term: Term, op: str) -> Optional[Term]:
    """The input of ``term``'s input when that input is an ``op`` term."""
    x = term.inputs[0]
    return x.inputs[0] if x.op == op else None


# -- simplify: arithmetic with neutral and absorbing elements --------------------------------------
#: op -> (its neutral element, whether that element is neutral on the left too)
_NEUTRAL = {"add": (0, True), "mul": (1, True), "sub": (0, False), "div": (1, False)}
#: Ops that NumPy computes with complex arithmetic for complex values, not part by part:
#: (inf + 0j) * 1 is (inf*1 - 0*0) + (inf*0 + 0*1)j = inf + nanj, and complex division has a
#: branch of its own for a zero divisor ((1+1j) / -0j is inf + infj, -((1+1j) / 0j) is not).
_COMPLEX_ARITHMETIC = frozenset({"mul", "div"})


@rule("simplify", *_NEUTRAL)
def neutral_operand(t, b):
    """x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1 -> x (* and / not for complex values)."""
    x, y = t.inputs
    neutral, on_the_left = _NEUTRAL[t.op]
    if t.op in _COMPLEX_ARITHMETIC and t.dtype.kind == "c":
        return None
    if is_all(y, neutral):
        return keeps(t, x, y)
    if on_the_left and is_all(x, neutral):
        return keeps(t, y, x)


@rule("simplify", "sub")
def zero_sub(t, b):
    """0 - x -> -x."""
    x, y = t.inputs
    if is_all(x, 0) and keeps(t, y, x) is not None:
        return b.make("neg", [y])


@rule("fastmath", "mul")
def mul_by_zero(t, b):
    """x * 0 -> 0 and 0 * x -> 0 (known shapes; like other compilers, ignores 0 * inf)."""
    x, y = t.inputs
    if is_all(x, 0) or is_all(y, 0):
        return zeros(t, b)


@rule("simplify", "mul")
def mul_by_minus_one(t, b):
    """x * -1 -> -x and -1 * x -> -x (not for complex values)."""
    x, y = t.inputs
    if t.dtype.kind == "c":
        return None
    for a, c in ((x, y), (y, x)):
        if is_all(c, -1) and keeps(t, a, c) is not None:
            return b.make("neg", [a])


# -- simplify: inverses and signs ----------------------------------------------------------------
@rule("simplify", "neg")
def neg_neg(t, b):
    """-(-x) -> x."""
    return unary(t, "neg")


#: op -> the op it undoes: op(inverse(x)) is x
_INVERSE = {"exp": "log", "log": "exp"}


@rule("fastmath", *_INVERSE)
def inverse_pair(t, b):
    """exp(log x), log(exp x) -> x (exp(log x) ignores x < 0, where it is NaN; log(exp x)
    no longer overflows for large x)."""
    return unary(t, _INVERSE[t.op])


@rule("simplify", "neg")
def neg_sub(t, b):
    """-(x - y) -> y - x."""
    x = t.inputs[0]
    if x.op == "sub":
        return b.make("sub", [x.inputs[1], x.inputs[0]])


@rule("simplify", "add")
def add_neg(t, b):
    """x + (-y) -> x - y and (-x) + y -> y - x."""
    x, y = t.inputs
    if y.op == "neg":
        return b.make("sub", [x, y.inputs[0]])
    if x.op == "neg":
        return b.make("sub", [y, x.inputs[0]])


@rule("simplify", "sub")
def sub_neg(t, b):
    """x - (-y) -> x + y."""
    x, y = t.inputs
    if y.op == "neg":
        return b.make("add", [x, y.inputs[0]])


@rule("simplify", "mul", "div")
def lift_neg(t, b):
    """(-x) * y -> -(x * y), x * (-y) -> -(x * y), and the same for / (signs can then
    cancel or turn an add into a sub). A complex divisor's sign stays (its zero branch)."""
    x, y = t.inputs
    if t.op == "div" and t.dtype.kind == "c" and y.op == "neg":
        return b.make("neg", [b.make("div", [x.inputs[0], y])]) if x.op == "neg" else None
    if x.op == "neg" and y.op == "neg":
        return b.make(t.op, [x.inputs[0], y.inputs[0]])
    if x.op == "neg":
        return b.make("neg", [b.make(t.op, [x.inputs[0], y])])
    if y.op == "neg":
        return b.make("neg", [b.make(t.op, [x, y.inputs[0]])])


@rule("fastmath", "sub")
def sub_self(t, b):
    """x - x -> 0 (known shapes; ignores inf - inf)."""
    x, y = t.inputs
    if x is y:
        return zeros(t, b)


@rule("simplify", "mul")
def mul_self(t, b):
    """x * x -> square(x)."""
    x, y = t.inputs
    if x is y:
        return b.make("square", [x])


# -- simplify: constants that gradients spread out -------------------------------------------------
_ELEMENTWISE_BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum")


@rule("simplify", *_ELEMENTWISE_BINARY)
def scalar_constant(t, b):
    """op(x, C) -> op(x, c) when C is a constant array whose elements all have the bits of c
    and x alone has the result's shape (``mean``'s and weight decay's gradients broadcast a
    scalar)."""
    x, y = t.inputs
    for i, (c, other) in enumerate(((y, x), (x, y))):
        value = constant_value(c)
        if value is None or c.shape == () or c.is_weak() or not same_shape(other, t) \
                or not fits_into(c, other):  # else C's broadcast could fail at run time
            continue
        if value.size == 0 or not _bitwise_uniform(value):
            continue  # [0.0, -0.0] is not one scalar: x / it has infinities of both signs
        scalar = b.constant(np.asarray(value.flat[0], dtype=c.dtype))
        return b.make(t.op, [other, scalar] if i == 0 else [scalar, other])


@rule("fastmath", "add")
def add_twice(t, b):
    """(x + y) + y -> x + 2 y, y + (x + y) -> x + 2 y, y + y -> 2 y (one product, one sum)."""
    x, y = t.inputs
    if x is y:
        return b.make("mul", [x, b.constant(2, weak=True)])
    for s, other in ((x, y), (y, x)):
        if s.op == "add" and other in s.inputs:
            rest = s.inputs[0] if s.inputs[1] is other else s.inputs[1]
            return b.make("add", [rest, b.make("mul", [other, b.constant(2, weak=True)])])


@rule("fastmath", "mul")
def scalar_factors(t, b):
    """c1 * (c2 * x) -> (c1 c2) * x for scalar constants c1, c2 and a floating-point result
    (c1 c2 is rounded in the result's dtype, and kept only when it is a normal number there:
    no overflow, no underflow to zero)."""
    if t.dtype.kind not in "fc":  # integers: c1 c2 could wrap, or not fit a weak int
        return None
    x, y = t.inputs
    for c1, m in ((x, y), (y, x)):
        if c1.op != "constant" or c1.shape != () or m.op != "mul":
            continue
        for c2, rest in ((m.inputs[0], m.inputs[1]), (m.inputs[1], m.inputs[0])):
            if c2.op == "constant" and c2.shape == ():
                # In t's dtype, a strong c keeps rest * c in t's dtype; weak stays weak.
                value = np.multiply(c1.attrs["value"], c2.attrs["value"], dtype=t.dtype)
                if not np.isfinite(value) or abs(value) < np.finfo(t.dtype).tiny:
                    return None
                return b.make("mul", [rest, b.constant(value, weak=c1.is_weak() and
                                                       c2.is_weak())])


@rule("fastmath", "where")
def mask_to_mul(t, b):
    """where(c, x, 0) -> x * c for a bool mask c of x's shape (relu's gradient; the product
    can overwrite x's buffer; differs only where x is inf or NaN and c is false)."""
    c, x, z = t.inputs
    if c.dtype == np.bool_ and is_all(z, 0) and z.shape == () and same_shape(x, t) \
            and fits_into(c, x) and np.issubdtype(x.dtype, np.floating) and x.dtype == t.dtype:
        return b.make("mul", [x, c])


# -- simplify: powers ------------------------------------------------------------------------------
@rule("simplify", "pow")
def pow_one(t, b):
    """x ** 1 -> x (exact: pow(x, 1) is x)."""
    x, y = t.inputs
    if y.shape == () and y.op == "constant" and is_all(y, 1):
        return keeps(t, x, y)


@rule("fastmath", "pow")
def pow_const(t, b):
    """x ** 2 -> square(x), x ** 0.5 -> sqrt(x) (pow may round differently; sqrt(-inf) is NaN
    where pow gives inf). ``gc.pow`` builds these forms itself for a Python-number exponent."""
    x, y = t.inputs
    if y.shape != () or y.op != "constant":
        return None
    if is_all(y, 2):
        return b.make("square", [x])
    if is_all(y, 0.5):
        return b.make("sqrt", [x])


# -- simplify: shapes, broadcasts and reductions ---------------------------------------------------
@rule("simplify", "transpose")
def transpose_transpose(t, b):
    """transpose(transpose(x, p), q) -> transpose(x, p[q]) or x; identity transposes -> x."""
    x = t.inputs[0]
    axes = t.attrs["axes"]
    if x.op == "transpose":
        inner = x.attrs["axes"]
        axes = tuple(inner[a] for a in axes)
        x = x.inputs[0]
        if axes != tuple(range(len(axes))):
            return b.make("transpose", [x], {"axes": axes})
    if axes == tuple(range(len(axes))):
        return x


@rule("simplify", "reshape")
def reshape_reshape(t, b):
    """reshape(reshape(x, s1), s2) -> reshape(x, s2); a reshape to x's own shape -> x."""
    x = t.inputs[0]
    if x.op in ("reshape", "reshape_like") and (x.op == "reshape" or x.attrs["lead"] == 0):
        if same_shape(x.inputs[0], t):
            return x.inputs[0]
        return b.make("reshape", [x.inputs[0]], {"shape": t.attrs["shape"]})
    if same_shape(x, t):
        return x


@rule("simplify", "reshape_like")
def reshape_like_noop(t, b):
    """reshape_like(x, like) -> x when the shapes are statically equal."""
    x = t.inputs[0]
    if same_shape(x, t):
        return x
    if x.op == "reshape" and t.attrs["lead"] == 0:
        return b.make("reshape_like", [x.inputs[0], t.inputs[1]], {"lead": 0})


@rule("simplify", "broadcast_to", "broadcast_like")
def broadcast_noop(t, b):
    """broadcast_to(x, s) / broadcast_like(x, like) -> x when nothing is broadcast."""
    x = t.inputs[0]
    if same_shape(x, t) and (t.op == "broadcast_to" or fits_into(t.inputs[1], x)):
        return x


@rule("simplify", "broadcast_to", "broadcast_like")
def broadcast_broadcast(t, b):
    """broadcast(broadcast(x)) -> one broadcast of x."""
    x = t.inputs[0]
    if x.op in ("broadcast_to", "broadcast_like") and known(t.shape):
        return b.make("broadcast_to", [x.inputs[0]], {"shape": t.shape})


@rule("simplify", "sum_to")
def sum_to_noop(t, b):
    """sum_to(x, like) -> x when x already has like's shape (statically)."""
    x, like = t.inputs
    if same_shape(x, t):
        return x


@rule("simplify", "sum")
def sum_nothing(t, b):
    """sum(x, axis=()) -> x."""
    if not t.attrs["axis"]:
        return t.inputs[0]


@rule("simplify", "sum")
def sum_of_broadcast(t, b):
    """sum(broadcast(x), axes) -> reshape(x) * count when the axes summed are exactly axes
    the broadcast created (the count is exact; the sum is rounded like n additions)."""
    x = t.inputs[0]
    if x.op not in ("broadcast_to", "broadcast_like") or not known(x.shape) or not known(t.shape):
        return None
    source = x.inputs[0]
    if source.dtype != t.dtype:
        return None
    padded = (1,) * (x.ndim - source.ndim) + source.shape
    axes = t.attrs["axis"]
    for a, (have, full) in enumerate(zip(padded, x.shape)):
        broadcast = have == 1 and full != 1
        if broadcast != (a in axes) and full != 1:
            return None
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if count == 0:
        return None
    inner = source if source.shape == t.shape else b.make("reshape", [source],
                                                           {"shape": t.shape})
    if count == 1:
        return inner
    return b.make("mul", [inner, b.constant(np.array(count, dtype=t.dtype))])


#: The fewest elements (as far as sizes are known) for which ``sum_of_products`` rewrites:
#: below it the dot saves no measurable time (a compiled sum(x * y) takes the same 2.0-2.3 us
#: either way up to 256 elements, 2.5 against 2.3 at 1024, 3.5 against 2.9 at 4096 float32), so
#: small sums keep g.run's bits.
MIN_DOT_SIZE = 256


@rule("simplify", "sum", "mean", requires=("einsum",))
def sum_of_products(t, b):
    """sum(x * y), sum(square(x)) over all axes -> einsum("ij,ij->", x, y) for float32 or
    float64 operands of the result's dtype and one shape (known sizes, or the same operand
    twice), of at least 256 elements: BLAS dots, and no product array (they add in their own
    order: see docs/compiler.md for how close to the exact sum); mean(...) of known sizes
    -> that dot / count."""
    x = t.inputs[0]
    if x.op == "square":
        left = right = x.inputs[0]
    elif x.op == "mul":
        left, right = x.inputs
    else:
        return None
    if t.dtype not in DOT_DTYPES or not 0 < x.ndim <= len(LETTERS) \
            or len(t.attrs["axis"]) != x.ndim:
        return None
    if left.dtype != t.dtype or right.dtype != t.dtype or left.shape != x.shape \
            or not same_shape(left, right):
        return None  # another dtype (an upcast), or a broadcasting product
    if math.prod(d for d in x.shape if d is not None) < MIN_DOT_SIZE:
        return None
    if t.op == "mean" and not known(x.shape):
        return None  # (the count is only known at run time)
    letters = LETTERS[:x.ndim]
    dot = b.make("einsum", [left, right], {"subscripts": f"{letters},{letters}->"})
    if t.op == "mean":  # the mean kernel's own division: by the count as a Python int
        dot = b.make("div", [dot, b.constant(math.prod(x.shape), weak=True)])
    return b.make("reshape", [dot], {"shape": t.shape}) if t.attrs["keepdims"] else dot


@rule("simplify", "squeeze")
def squeeze_expand(t, b):
    """squeeze(expand_dims(x, a), a) -> x."""
    x = t.inputs[0]
    if x.op == "expand_dims" and x.attrs["axis"] == t.attrs["axis"]:
        return x.inputs[0]


@rule("simplify", "expand_dims")
def expand_squeeze(t, b):
    """expand_dims(squeeze(x, a), a) -> x."""
    x = t.inputs[0]
    if x.op == "squeeze" and x.attrs["axis"] == t.attrs["axis"] and \
            x.inputs[0].shape == t.shape:
        return x.inputs[0]


@rule("simplify", "cast")
def cast_same(t, b):
    """cast(x, x.dtype) -> x."""
    x = t.inputs[0]
    if x.dtype == t.dtype:
        return x


@rule("simplify", "stop_gradient")
def stop_gradient_identity(t, b):
    """stop_gradient(x) -> x (it only matters to gradients())."""
    return t.inputs[0]


@rule("simplify", "zeros_like", "ones_like")
def fill_like(t, b):
    """zeros_like(x) / ones_like(x) of a known shape -> a broadcast constant: x is not read."""
    if not known(t.shape):
        return None
    fill = b.constant(np.full((), 0 if t.op == "zeros_like" else 1, t.dtype))
    return fill if t.shape == () else b.make("broadcast_to", [fill], {"shape": t.shape})


# -- simplify: linear algebra ----------------------------------------------------------------------
def _is_identity(t: Term) -> bool:
    value = t.attrs["value"] if t.op == "constant" else None
    return (value is not None and value.ndim == 2 and value.shape[0] == value.shape[1]
            and bool(np.array_equal(value, np.eye(value.shape[0], dtype=value.dtype))))


@rule("fastmath", "matmul")
def matmul_identity(t, b):
    """I @ x -> x and x @ I -> x for an identity constant (the seeds of Jacobians; ignores the
    NaN that 0 * inf spreads through I @ x, and keeps x's -0.0 where the product gives +0.0)."""
    x, y = t.inputs
    if _is_identity(x):
        return y
    if _is_identity(y):
        return x


@rule("simplify", "squeeze")
def batched_matvec(t, b):
    """squeeze(A @ expand_dims(B, -1), -1) -> B @ A.T for a matrix A: the many
    matrix-vector products a batched cotangent makes become one matrix product."""
    m = t.inputs[0]
    if m.op != "matmul" or t.attrs["axis"] != (t.ndim,):
        return None
    a, e = m.inputs
    if a.ndim != 2 or e.op != "expand_dims" or e.attrs["axis"] != (e.ndim - 1,):
        return None
    return b.make("matmul", [e.inputs[0], b.make("transpose", [a], {"axes": (1, 0)})])


# -- fastmath: sharing one pass over the logits ------------------------------------------------------
@rule("fastmath", "softmax", requires=("log_softmax",))
def fuse_softmax(t, b):
    """softmax(L) -> exp(log_softmax(L)) when log_softmax(L) is computed anyway (rounds
    differently from softmax's own kernel)."""
    ls = b.find("log_softmax", t.inputs, t.attrs)
    if ls is not None:
        return b.make("exp", [ls])
