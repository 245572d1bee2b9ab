"""Gradient checking against central finite differences, for users and for our own tests."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .errors import GradientCheckError, GraphcError, describe
from .graph import Node


def default_eps(dtype: np.dtype) -> float:
    """A central-difference step that balances truncation and rounding error for ``dtype``."""
    return float(np.finfo(dtype).eps ** (1 / 3))


#: Default (rtol, atol) by precision: central differences in float32 are good to about
#: eps ** (2/3) ~ 2e-5 of the function's scale, so float64's 1e-5 would flag correct gradients.
TOLERANCES = {8: (1e-5, 1e-8), 4: (1e-3, 1e-5), 2: (1e-1, 1e-3)}


def default_tolerances(*dtypes) -> tuple:
    """``(rtol, atol)`` for the least precise of ``dtypes``."""
    itemsize = min(np.dtype(d).itemsize for d in dtypes)
    return TOLERANCES.get(itemsize, TOLERANCES[8] if itemsize > 8 else TOLERANCES[2])


def numeric_gradient(y: Node, x: Node, feed: dict, eps: float) -> np.ndarray:
    """``d sum(y) / dx`` by central differences, feeding x (any node may be fed)."""
    base = np.array(y.graph.run(x, feed), dtype=x.dtype)
    out = np.zeros(base.shape, dtype=np.float64)
    for index in np.ndindex(base.shape):
        values, points = [], []
        for sign in (1, -1):
            moved = base.copy()
            moved[index] += sign * eps
            points.append(float(moved[index]))
            values.append(np.sum(y.graph.run(y, {**feed, x: moved}), dtype=np.float64))
        # divide by the step actually taken: x +- eps is rounded to x's dtype
        out[index] = (values[0] - values[1]) / (points[0] - points[1])
    return out


def check_gradients(y: Node, xs: Any, feed: Optional[dict] = None, *, eps: Optional[float] = None,
                    rtol: Optional[float] = None, atol: Optional[float] = None) -> float:
    """Compare ``gradients(y, xs)`` with central finite differences at ``feed``.

    Returns the largest absolute difference. Raises :class:`GradientCheckError`, with a table of
    the worst entries, where ``|symbolic - numeric| > atol + rtol * |numeric|``. A non-scalar
    ``y`` is checked through ``sum(y)``. The step defaults to ``eps(dtype) ** (1/3)``; the
    tolerances default to ``rtol=1e-5, atol=1e-8`` for float64, ``1e-3, 1e-5`` for float32 and
    ``1e-1, 1e-3`` for float16 (the least precise of y and the x).
    """
    from .autodiff import gradients
    from .ops import sum as reduce_sum

    xs = [xs] if isinstance(xs, Node) else list(xs)
    feed = dict(feed or {})
    if not isinstance(y, Node):
        raise GraphcError("check_gradients: y must be a graphc Node")
    for x in xs:
        if not isinstance(x, Node) or x.graph is not y.graph:
            raise GraphcError(f"check_gradients: xs must be nodes of y's graph, not {x!r:.60}")
    from .runtime import needed_nodes, require_fed, resolve_feed

    fed = resolve_feed(y.graph, feed)  # what the user forgot, said before any derivative is built
    require_fed(needed_nodes(y.graph, [y] + xs, fed), fed, f"to check the gradients of '{y.name}'")
    target = y if y.shape == () else reduce_sum(y)
    symbolic = y.graph.run(gradients(target, xs), feed)
    fallback = default_tolerances(y.dtype, *(x.dtype for x in xs))
    rtol = fallback[0] if rtol is None else rtol
    atol = fallback[1] if atol is None else atol
    worst, rows, failed = 0.0, [], False
    for x, sym in zip(xs, symbolic):
        step = eps if eps is not None else default_eps(x.dtype)
        num = numeric_gradient(target, x, feed, step)
        sym = np.asarray(sym, dtype=np.float64)
        diff = np.abs(sym - num)
        bad = diff > atol + rtol * np.abs(num)
        if diff.size:
            worst = max(worst, float(np.nanmax(diff)) if not np.isnan(diff).all() else np.inf)
        if np.isnan(diff).any():
            bad |= np.isnan(diff)
            worst = np.inf
        failed |= bool(bad.any())
        for index in np.ndindex(diff.shape):
            rows.append((float(diff[index]) if not np.isnan(diff[index]) else np.inf,
                         x.name, index, float(sym[index]), float(num[index]), bool(bad[index])))
    if failed:
        rows = sorted((r for r in rows if r[5]), key=lambda r: -r[0])[:10]
        table = "\n".join(f"  {name:<14} {str(index):<12} {s:>14.7g} {n:>14.7g} {d:>11.3g}"
                          for d, name, index, s, n, _ in rows)
        raise GradientCheckError(
            f"symbolic and numeric gradients of {describe(y)} disagree (rtol={rtol}, "
            f"atol={atol}); "
            f"worst entries:\n  {'node':<14} {'index':<12} {'symbolic':>14} {'numeric':>14} "
            f"{'abs error':>11}\n{table}")
    return worst


# -- the registry test, for graphc's own ops and for yours --------------------------------------
#
# tests/test_ops_registry.py and tests/test_forward.py run these on every built-in op's cases;
# :func:`check_op` runs them all on one op (a user's, made with gc.define_op, or a built-in).

class OpCheckError(GraphcError, AssertionError):
    """An op's kernel, rule or derivative disagrees with its oracle (from :func:`check_op`)."""


def _fail(condition: bool, message: str) -> None:
    if not condition:
        raise OpCheckError(message)


def _close(actual, expected, rtol: float, atol: float, message: str) -> None:
    try:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
    except AssertionError as exc:
        raise OpCheckError(f"{message}:{exc}") from None


def _op(op):
    from .custom import op_name_of
    from .ops.registry import Op, get
    if isinstance(op, Op):
        return op
    try:
        return get(op_name_of(op))
    except KeyError as exc:
        raise GraphcError(str(exc.args[0])) from None


def case_rng(*key) -> np.random.Generator:
    """A generator seeded by ``key`` (an op name, a case index, a purpose): the same numbers on
    every run and every machine."""
    import zlib
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def case_arrays(op, k: int) -> list:
    """The input arrays of case ``k`` of ``op``: random floats in ``[low, high]`` for shapes,
    the case's own arrays otherwise."""
    op = _op(op)
    case = op.cases[k]
    rng = case_rng(op.name, k)
    return [rng.uniform(case.low, case.high, size=item) if isinstance(item, tuple)
            else np.asarray(item) for item in case.inputs]


def case_graph(op, k: int, arrays: list, unknown_sizes: bool = False) -> tuple:
    """``(graph, placeholders, node)``: the op applied to placeholders fitting ``arrays``
    (with every size ``None`` when ``unknown_sizes``)."""
    from .graph import Graph, apply
    op = _op(op)
    g = Graph()
    inputs = [g.placeholder(f"in{i}", (None,) * a.ndim if unknown_sizes else a.shape, a.dtype)
              for i, a in enumerate(arrays)]
    return g, inputs, apply(op.name, inputs, op.cases[k].attrs)


def case_wrt(op, k: int, arrays: list) -> list:
    """The inputs case ``k`` differentiates: the case's ``wrt``, else every float input."""
    case = _op(op).cases[k]
    if case.wrt is not None:
        return list(case.wrt)
    return [i for i, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]


def directional(g, inputs, arrays, f, i, v, eps: float = 1e-6) -> np.ndarray:
    """``<d f / d x_i, v>`` by central differences, f evaluated with ``g.run``."""
    def at(t):
        feed = dict(zip(inputs, arrays))
        feed[inputs[i]] = arrays[i] + t * v
        return np.asarray(g.run(f, feed), dtype=np.float64)
    return (at(eps) - at(-eps)) / (2 * eps)


def numeric_jacobian(g, inputs, arrays, f, i) -> np.ndarray:
    """``d f / d x_i`` by central differences, one basis direction at a time."""
    out = np.zeros(np.shape(g.run(f, dict(zip(inputs, arrays)))) + arrays[i].shape)
    for index in np.ndindex(arrays[i].shape):
        e = np.zeros(arrays[i].shape)
        e[index] = 1.0
        out[(Ellipsis,) + index] = directional(g, inputs, arrays, f, i, e)
    return out


#: Ops whose result size depends on the values (``x[mask]``): a size stays None even when
#: every input size is known.
DATA_DEPENDENT_SIZES = frozenset({"boolean_mask"})


def _fits(a: tuple, b: tuple) -> bool:
    """Whether two static shapes agree where both sizes are known."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _differentiable_case(op, k):
    """``(arrays, wrt, g, inputs, node)``, or None when the case has nothing to differentiate."""
    op = _op(op)
    if not op.differentiable:
        return None
    arrays = case_arrays(op, k)
    wrt = case_wrt(op, k, arrays)
    g, inputs, node = case_graph(op, k, arrays)
    if not wrt or not np.issubdtype(node.dtype, np.floating):
        return None
    return arrays, wrt, g, inputs, node


def check_kernel(op, k: int) -> bool:
    """Case ``k``: the kernel against the reference, and the inferred shape and dtype against
    the kernel's output, with known and with ``None`` sizes. False when the op has no
    reference (then only the rule is checked)."""
    op = _op(op)
    arrays = case_arrays(op, k)
    ref = op.cases[k].ref or op.reference
    label = f"op {op.name!r}, case {k}"
    for unknown in (False, True):
        g, inputs, node = case_graph(op, k, arrays, unknown)
        value = np.asarray(g.run(node, dict(zip(inputs, arrays))))
        _fail(value.dtype == node.dtype,
              f"{label}: the kernel gives {value.dtype}, the rule says {node.dtype}")
        _fail(len(node.shape) == value.ndim and
              all(s is None or s == d for s, d in zip(node.shape, value.shape)),
              f"{label}: the rule says {node.shape}, the kernel gives {value.shape}")
        _fail(unknown or None not in node.shape or op.name in DATA_DEPENDENT_SIZES,
              f"{label}: the rule leaves sizes unknown although every input size is known")
        if ref is not None:
            expected = np.asarray(ref(*arrays, **node.attrs))
            _fail(value.shape == expected.shape, f"{label}: the kernel gives shape "
                  f"{value.shape}, the reference {expected.shape}")
            _close(value, expected, 1e-12, 1e-12, f"{label}: kernel vs reference")
    return ref is not None


def _dot_test(g, inputs, arrays, f, wrt, rng, depth, label, order=1):
    """The first derivative of f by the dot-product test ``<J^T u, v> = <u, J v>``
    (symbolic vs central differences); recurses ``depth`` times through the gradient."""
    feed = dict(zip(inputs, arrays))
    for i in wrt:
        u = rng.standard_normal(f.shape if None not in f.shape else np.shape(g.run(f, feed)))
        grad = _gradients(f, [inputs[i]], grad_y=g.constant(u))[0]
        _fail(grad.shape == inputs[i].shape and grad.dtype == inputs[i].dtype,
              f"{label}: the gradient for input {i} has shape {grad.shape} {grad.dtype}, the "
              f"input {inputs[i].shape} {inputs[i].dtype}")
        v = rng.standard_normal(arrays[i].shape)
        symbolic = float(np.sum(np.asarray(g.run(grad, feed)) * v))
        numeric = float(np.sum(directional(g, inputs, arrays, f, i, v) * u))
        _fail(abs(symbolic - numeric) <= 1e-6 + 1e-5 * abs(numeric),
              f"{label}: the order-{order} derivative for input {i} is wrong: <J^T u, v> = "
              f"{symbolic!r} but central differences give {numeric!r}")
        if depth > 1:
            _dot_test(g, inputs, arrays, grad, wrt, rng, depth - 1, label, order + 1)


def _gradients(*args, **kwargs):
    from .autodiff import gradients
    return gradients(*args, **kwargs)


def check_derivatives(op, k: int) -> bool:
    """Case ``k``: derivatives of order 1 to ``case.order`` by the dot-product test. False
    when there is nothing to differentiate."""
    found = _differentiable_case(op, k)
    if found is None:
        return False
    op = _op(op)
    arrays, wrt, g, inputs, node = found
    _dot_test(g, inputs, arrays, node, wrt, case_rng(op.name, k, "dot"), op.cases[k].order,
              f"op {op.name!r}, case {k}")
    return True


def check_batched_cotangents(op, k: int) -> bool:
    """Case ``k``: the Jacobian from one batch of cotangents (every bprop must accept leading
    batch dimensions), the Jacobian of a gradient (batches through the rule's own output), and
    batch sizes known only at run time."""
    from .autodiff import jacobian
    found = _differentiable_case(op, k)
    if found is None:
        return False
    op = _op(op)
    arrays, wrt, g, inputs, node = found
    feed = dict(zip(inputs, arrays))
    label = f"op {op.name!r}, case {k}"
    out_shape = np.shape(g.run(node, feed))  # node.shape, with the sizes known at run time
    pad = g.placeholder("pad", (None,) + node.shape, node.dtype)  # node, repeated at run time
    feed_pad = {**feed, pad: np.zeros((2,) + out_shape, node.dtype)}
    for i in wrt:
        J = np.asarray(g.run(jacobian(node, inputs[i]), feed))
        _fail(J.shape == out_shape + inputs[i].shape,
              f"{label}: the Jacobian for input {i} has shape {J.shape}")
        expected = numeric_jacobian(g, inputs, arrays, node, i)
        _close(J, expected, 1e-5, 1e-6, f"{label}: Jacobian for input {i} (batched cotangents)")
        u = case_rng(op.name, k, "u").standard_normal(out_shape)
        grad = _gradients(node, [inputs[i]], grad_y=g.constant(u))[0]
        for j in wrt:
            H = np.asarray(g.run(jacobian(grad, inputs[j]), feed))
            _close(H, numeric_jacobian(g, inputs, arrays, grad, j), 1e-5, 1e-6,
                   f"{label}: Jacobian of the gradient for inputs {i}, {j}")
        J = np.asarray(g.run(jacobian(node + pad, inputs[i]), feed_pad))
        _close(J, np.stack([expected, expected]), 1e-5, 1e-6,
               f"{label}: Jacobian for input {i} with a batch of unknown size")
    return True


def check_forward(op, k: int) -> bool:
    """Case ``k``: the forward rule (the op's own, or the one forward mode derives from its
    bprop) against central differences and against the bprop by the transposition identity
    ``<u, J v> = <J^T u, v>``; at order 2 forward over forward and reverse over forward."""
    from .forward import jvp
    from .ops.reduce import sum as reduce_sum
    found = _differentiable_case(op, k)
    if found is None:
        return False
    op = _op(op)
    arrays, wrt, g, inputs, node = found
    label = f"op {op.name!r}, case {k}"
    rng = case_rng(op.name, k, "fwd")
    feed = dict(zip(inputs, arrays))
    out_shape = np.shape(g.run(node, feed))
    for i in wrt:
        v = rng.standard_normal(arrays[i].shape)
        t = jvp(node, inputs[i], g.constant(v))
        _fail(t.shape == node.shape and t.dtype == node.dtype,
              f"{label}: the tangent has {t.shape} {t.dtype}, the node {node.shape} {node.dtype}")
        Jv = np.asarray(g.run(t, feed))
        _close(Jv, directional(g, inputs, arrays, node, i, v), 1e-5, 1e-6,
               f"{label}: J v for input {i} vs central differences")
        u = rng.standard_normal(out_shape)
        JTu = g.run(_gradients(node, [inputs[i]], grad_y=g.constant(u))[0], feed)
        a, b = float(np.sum(u * Jv)), float(np.sum(JTu * v))
        _fail(abs(a - b) <= 1e-9 + 1e-9 * abs(b), f"{label}: the forward rule and the bprop "
              f"disagree for input {i}: <u, J v> = {a!r} but <J^T u, v> = {b!r}")
        if op.cases[k].order < 2:
            continue
        for j in wrt:
            w = rng.standard_normal(arrays[j].shape)
            second = np.asarray(g.run(jvp(t, inputs[j], g.constant(w)), feed))
            numeric = directional(g, inputs, arrays, t, j, w)
            _close(second, numeric, 1e-5, 1e-6, f"{label}: forward over forward, inputs {i}, {j}")
            back = _gradients(reduce_sum(t * g.constant(u)), [inputs[j]])[0]
            a, b = float(np.sum(g.run(back, feed) * w)), float(np.sum(numeric * u))
            _fail(abs(a - b) <= 1e-6 + 1e-5 * abs(b),
                  f"{label}: reverse over forward, inputs {i}, {j}: {a!r} vs {b!r}")
    return True


def check_jacfwd(op, k: int) -> bool:
    """Case ``k``: the Jacobian by one forward sweep of a batch of tangents, with known and
    with ``None`` sizes, against central differences."""
    from .jacobians import jacfwd
    found = _differentiable_case(op, k)
    if found is None:
        return False
    op = _op(op)
    arrays, wrt, g, inputs, node = found
    feed = dict(zip(inputs, arrays))
    h, unknown, loose = case_graph(op, k, arrays, unknown_sizes=True)
    for i in wrt:
        J = jacfwd(node, inputs[i])
        _fail(_fits(J.shape, node.shape + inputs[i].shape),
              f"op {op.name!r}, case {k}: jacfwd has shape {J.shape}")
        expected = numeric_jacobian(g, inputs, arrays, node, i)
        _close(g.run(J, feed), expected, 1e-5, 1e-6, f"op {op.name!r}, case {k}: jacfwd")
        _close(h.run(jacfwd(loose, unknown[i]), dict(zip(unknown, arrays))), expected, 1e-5,
               1e-6, f"op {op.name!r}, case {k}: jacfwd with unknown sizes")
    return True


#: Every check of the registry test, in the order :func:`check_op` runs them.
CHECKS = (check_kernel, check_derivatives, check_batched_cotangents, check_forward,
          check_jacfwd)


def check_op(op) -> dict:
    """Run the registry test on one op (an op name, or the builder ``gc.define_op`` returned).

    For every case of the op: the kernel against the reference and the inferred shape and
    dtype against the kernel's output (known and ``None`` sizes); derivatives of order 1 and 2
    (up to ``Case.order``) by the dot-product test; Jacobians from batched cotangents; the
    forward rule (or the one derived from the bprop) against central differences and the
    bprop. Raises :class:`OpCheckError` (or the error the op raised) at the first failure;
    returns ``{check name: number of cases it ran on}``.
    """
    found = _op(op)
    if not found.cases:
        raise GraphcError(f"check_op: op {found.name!r} has no test cases; give define_op "
                          "cases=[Case(inputs=((3,),))] (graphc.ops.registry.Case)")
    ran = {}
    for check in CHECKS:
        ran[check.__name__] = sum(bool(check(found, k)) for k in range(len(found.cases)))
    return ran
