"""Gradient checking against central finite differences, for users and for our own tests."""
from __future__ import annotations

from typing import Optional

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


def check_gradients(y: Node, xs, feed: Optional[dict] = None, *, eps: Optional[float] = None,
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
