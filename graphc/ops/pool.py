"""Pooling over the last two dimensions: ``max_pool2d`` and ``avg_pool2d`` with their adjoints.

Pooling: ``max_pool2d``'s gradient is ``max_pool2d_grad`` (routes the cotangent to the
maximum of each window: the first one in row-major order on ties), whose gradient is the
gather ``max_pool2d_gather`` and back; ``avg_pool2d`` (padding counts as zeros, PyTorch's
``count_include_pad=True``) and ``avg_pool2d_grad`` are each other's adjoints.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import DTypeError, ShapeError
from ..graph import Node, Operand, apply
from ..shapes import float_dtype, fmt
from .attrs import ints
from .conv import _check_spatial, _out_size, _pair, _padding_pairs, _windows, padding_argument
from .registry import Case, define


# -- pooling ---------------------------------------------------------------------------------------
_POOL_ATTRS = {"kernel": ints(1), "stride": ints(1), "padding": _padding_pairs}


def _pool_infer(x, *, kernel, stride, padding):
    if x.dtype.kind not in "iuf":
        raise DTypeError(f"pooling takes real numbers, not {x.dtype}")
    _check_spatial(x, "the input (..., H, W)", 2)
    kernel = _pair(kernel, "kernel")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = padding_argument(padding)
    for k, p in zip(kernel, padding):
        if max(p) > k // 2:
            raise ShapeError(f"padding {padding} must be at most half the kernel {kernel}")
    spatial = tuple(_out_size(n, k, s, 1, p) for n, k, s, p in
                    zip(x.shape[-2:], kernel, stride, padding))
    return x.shape[:-2] + spatial, x.dtype, {"kernel": kernel, "stride": stride,
                                             "padding": padding}


def _max_pool_windows(x, kernel, stride, padding):
    x = np.asarray(x)
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    return _windows(x, kernel, stride, (1, 1), padding, fill=low)


def _max_pool2d(x, *, kernel, stride, padding):
    return _max_pool_windows(x, kernel, stride, padding).max(axis=(-2, -1))


def _argmax_positions(x, kernel, stride, padding):
    """Flat positions in the padded (H, W) plane of each window's (first) maximum."""
    win = _max_pool_windows(x, kernel, stride, padding)
    k = win.reshape(win.shape[:-2] + (-1,)).argmax(axis=-1)
    i, j = np.divmod(k, kernel[1])
    OH, OW = win.shape[-4:-2]
    Wp = np.shape(x)[-1] + padding[1][0] + padding[1][1]
    rows = np.arange(OH)[:, None] * stride[0] + i
    cols = np.arange(OW)[None, :] * stride[1] + j
    return rows * Wp + cols  # shape (..., OH, OW)


def _padded_plane(shape, padding):
    return shape[-2] + sum(padding[0]), shape[-1] + sum(padding[1])


def _max_pool2d_grad(g, x, *, kernel, stride, padding):
    g = np.asarray(g)
    pos = _argmax_positions(x, kernel, stride, padding)
    Hp, Wp = _padded_plane(np.shape(x), padding)
    lead = g.shape[:-2]
    pos = np.broadcast_to(pos, lead + pos.shape[-2:]).reshape(-1, pos.shape[-2] * pos.shape[-1])
    rows = pos.shape[0]
    flat = pos + (np.arange(rows) * (Hp * Wp))[:, None]
    out = np.bincount(flat.ravel(), weights=g.reshape(-1), minlength=rows * Hp * Wp)
    out = out.astype(g.dtype, copy=False).reshape(lead + (Hp, Wp))
    (pt, _), (pl, _) = padding
    H, W = np.shape(x)[-2:]
    return out[..., pt:pt + H, pl:pl + W]


def _max_pool2d_gather(c, x, *, kernel, stride, padding):
    c = np.asarray(c)
    pos = _argmax_positions(x, kernel, stride, padding)
    cp = np.pad(c, [(0, 0)] * (c.ndim - 2) + [tuple(p) for p in padding])
    flat = cp.reshape(cp.shape[:-2] + (-1,))
    lead = np.broadcast_shapes(flat.shape[:-1], pos.shape[:-2])
    idx = np.broadcast_to(pos.reshape(pos.shape[:-2] + (-1,)),
                          lead + (pos.shape[-2] * pos.shape[-1],))
    flat = np.broadcast_to(flat, lead + flat.shape[-1:])
    return np.take_along_axis(flat, idx, axis=-1).reshape(lead + pos.shape[-2:])


def _pool_grad_infer(g, x, *, kernel, stride, padding):
    pooled = _pool_infer(x, kernel=kernel, stride=stride, padding=padding)[0]
    if g.ndim < len(pooled) or any(a is not None and b is not None and a != b
                                   for a, b in zip(g.shape[g.ndim - len(pooled):], pooled)):
        raise ShapeError(f"a cotangent of shape {fmt(g.shape)} does not fit the pooled shape "
                         f"{fmt(pooled)}")
    return g.shape[:-2] + x.shape[-2:], g.dtype, {"kernel": kernel, "stride": stride,
                                                  "padding": padding}


def _pool_gather_infer(c, x, *, kernel, stride, padding):
    pooled, _, attrs = _pool_infer(x, kernel=kernel, stride=stride, padding=padding)
    if c.ndim < x.ndim:
        raise ShapeError(f"{fmt(c.shape)} does not fit the input shape {fmt(x.shape)}")
    return c.shape[:-2] + pooled[-2:], c.dtype, attrs


def _pool_loop(x, kernel, stride, padding, reduce, fill):
    """Pooling by explicit loops over windows (the reference)."""
    H, W = x.shape[-2:]
    (pt, pb), (pl, pr) = padding
    OH = (H + pt + pb - kernel[0]) // stride[0] + 1
    OW = (W + pl + pr - kernel[1]) // stride[1] + 1
    out = np.zeros(x.shape[:-2] + (OH, OW), x.dtype)
    for oh, ow in np.ndindex(OH, OW):
        taps = []
        for i, j in np.ndindex(*kernel):
            h, v = oh * stride[0] + i - pt, ow * stride[1] + j - pl
            taps.append(x[..., h, v] if 0 <= h < H and 0 <= v < W
                        else np.full(x.shape[:-2], fill, x.dtype))
        out[..., oh, ow] = reduce(np.stack(taps), axis=0)
    return out


def _max_pool_grad_loop(g, x, *, kernel, stride, padding):
    """Scatter g to each window's first maximum, window by window."""
    H, W = x.shape[-2:]
    (pt, _), (pl, _) = padding
    out = np.zeros(g.shape[:-2] + x.shape[-2:], g.dtype)
    lead = x.shape[:-2]
    OH, OW = g.shape[-2:]
    for index in np.ndindex(*lead):
        for oh, ow in np.ndindex(OH, OW):
            best, at = -np.inf, None
            for i, j in np.ndindex(*kernel):
                h, v = oh * stride[0] + i - pt, ow * stride[1] + j - pl
                if 0 <= h < H and 0 <= v < W and x[index + (h, v)] > best:
                    best, at = x[index + (h, v)], (h, v)
            out[(Ellipsis,) + index + at] += g[(Ellipsis,) + index + (oh, ow)]
    return out


def _max_pool_gather_loop(c, x, *, kernel, stride, padding):
    pooled = _max_pool2d(x, kernel=kernel, stride=stride, padding=padding)
    out = np.zeros(c.shape[:-2] + pooled.shape[-2:], c.dtype)
    # <gather(c), u> = <c, scatter(u)> for every basis u: read the adjoint off the loop above
    for index in np.ndindex(*pooled.shape):
        u = np.zeros(pooled.shape)
        u[index] = 1.0
        spread = _max_pool_grad_loop(u, x, kernel=kernel, stride=stride, padding=padding)
        out[(Ellipsis,) + index] = np.tensordot(c, spread, axes=x.ndim)
    return out


_POOL_CASES = [
    Case(((2, 2, 4, 4),), attrs={"kernel": 2, "stride": None, "padding": 0}),
    Case(((1, 3, 5, 5),), attrs={"kernel": 3, "stride": 2, "padding": 1}),
    Case(((2, 5, 4),), attrs={"kernel": (2, 3), "stride": 1, "padding": ((1, 0), (0, 1))}),
]

define("max_pool2d", infer=_pool_infer, kernel=_max_pool2d, attrs=_POOL_ATTRS,
       bprop=lambda node, g, i: apply("max_pool2d_grad", [g, node.inputs[0]],
                                      dict(node.attrs)),
       reference=lambda x, **a: _pool_loop(x, a["kernel"], a["stride"], a["padding"], np.max,
                                           -np.inf),
       cases=_POOL_CASES,
       doc="The maximum of each window over the last two dimensions (padding never wins).")

define("max_pool2d_grad", infer=_pool_grad_infer, kernel=_max_pool2d_grad, attrs=_POOL_ATTRS,
       bprop=lambda node, c, i: None if i == 1 else apply(
           "max_pool2d_gather", [c, node.inputs[1]], dict(node.attrs)),
       reference=_max_pool_grad_loop,
       cases=[Case(((2, 2, 2, 2), (2, 2, 4, 4)),
                   attrs={"kernel": (2, 2), "stride": (2, 2), "padding": ((0, 0), (0, 0))},
                   wrt=(0,)),
              Case(((2, 1, 2, 2), (1, 3, 3)),  # overlapping windows, a batch of cotangents
                   attrs={"kernel": (2, 2), "stride": (1, 1), "padding": ((0, 0), (0, 0))},
                   wrt=(0,))],
       doc="Adds each pooled cotangent to the maximum of its window (the first on ties).")

define("max_pool2d_gather", infer=_pool_gather_infer, kernel=_max_pool2d_gather,
       attrs=_POOL_ATTRS,
       bprop=lambda node, g, i: None if i == 1 else apply(
           "max_pool2d_grad", [g, node.inputs[1]], dict(node.attrs)),
       reference=_max_pool_gather_loop,
       cases=[Case(((2, 1, 3, 3), (1, 3, 3)),
                   attrs={"kernel": (2, 2), "stride": (1, 1), "padding": ((0, 0), (0, 0))},
                   wrt=(0,)),
              Case(((1, 5, 5), (1, 5, 5)),
                   attrs={"kernel": (3, 3), "stride": (2, 2), "padding": ((1, 1), (1, 1))},
                   wrt=(0,))],
       doc="Reads c at the maximum of each window of x (the adjoint of max_pool2d_grad).")


def _avg_pool2d(x, *, kernel, stride, padding):
    win = _windows(np.asarray(x, float_dtype(np.result_type(x))), kernel, stride, (1, 1),
                   padding)
    return win.mean(axis=(-2, -1))


def _avg_pool2d_grad(g, like, *, kernel, stride, padding):
    g = np.asarray(g)
    Hp, Wp = _padded_plane(np.shape(like), padding)
    OH, OW = g.shape[-2:]
    canvas = np.zeros(g.shape[:-2] + (Hp, Wp), g.dtype)
    share = g / (kernel[0] * kernel[1])
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            canvas[..., i:i + (OH - 1) * stride[0] + 1:stride[0],
                   j:j + (OW - 1) * stride[1] + 1:stride[1]] += share
    (pt, _), (pl, _) = padding
    H, W = np.shape(like)[-2:]
    return canvas[..., pt:pt + H, pl:pl + W]


def _avg_pool_infer(x, *, kernel, stride, padding):
    shape, dtype, attrs = _pool_infer(x, kernel=kernel, stride=stride, padding=padding)
    return shape, float_dtype(dtype), attrs


def _avg_pool_grad_infer(g, like, *, kernel, stride, padding):
    shape, dtype, attrs = _pool_grad_infer(g, like, kernel=kernel, stride=stride,
                                           padding=padding)
    return shape, float_dtype(dtype), attrs


def _avg_pool_grad_loop(g, like, *, kernel, stride, padding):
    H, W = like.shape[-2:]
    (pt, _), (pl, _) = padding
    out = np.zeros(g.shape[:-2] + (H, W))
    for oh, ow in np.ndindex(*g.shape[-2:]):
        for i, j in np.ndindex(*kernel):
            h, v = oh * stride[0] + i - pt, ow * stride[1] + j - pl
            if 0 <= h < H and 0 <= v < W:
                out[..., h, v] += g[..., oh, ow] / (kernel[0] * kernel[1])
    return out


define("avg_pool2d", infer=_avg_pool_infer, kernel=_avg_pool2d, attrs=_POOL_ATTRS,
       bprop=lambda node, g, i: apply("avg_pool2d_grad", [g, node.inputs[0]],
                                      dict(node.attrs)),
       reference=lambda x, **a: _pool_loop(x.astype(float), a["kernel"], a["stride"],
                                           a["padding"], np.mean, 0.0),
       cases=_POOL_CASES,
       doc="The mean of each window over the last two dimensions (padding counts as zeros).")

define("avg_pool2d_grad", infer=_avg_pool_grad_infer, kernel=_avg_pool2d_grad,
       attrs=_POOL_ATTRS,
       bprop=lambda node, c, i: None if i == 1 else apply(
           "avg_pool2d", [c], dict(node.attrs)),
       reference=_avg_pool_grad_loop,
       cases=[Case(((2, 1, 2, 2), (1, 4, 4)),
                   attrs={"kernel": (2, 2), "stride": (2, 2), "padding": ((0, 0), (0, 0))},
                   wrt=(0,)),
              Case(((1, 3, 3), (1, 5, 5)),
                   attrs={"kernel": (3, 3), "stride": (2, 2), "padding": ((1, 1), (1, 1))},
                   wrt=(0,))],
       doc="Spreads each pooled cotangent evenly over its window (the adjoint of avg_pool2d).")


def max_pool2d(x: Operand, kernel: Any, stride: Any = None, padding: Any = 0,
               name: Optional[str] = None) -> Node:
    """The maximum of each ``kernel`` window over the last two dimensions of ``x``.

    ``stride`` defaults to the kernel (non-overlapping windows); ``padding`` (an int, a pair
    or explicit pairs, at most half the kernel) never wins. The gradient goes to the maximum
    of each window (to the first one, in row-major order, on ties).
    """
    return apply("max_pool2d", [x], {"kernel": kernel, "stride": stride, "padding": padding},
                 name=name)


def avg_pool2d(x: Operand, kernel: Any, stride: Any = None, padding: Any = 0,
               name: Optional[str] = None) -> Node:
    """The mean of each ``kernel`` window over the last two dimensions of ``x`` (padding
    counts as zeros, like PyTorch's default)."""
    return apply("avg_pool2d", [x], {"kernel": kernel, "stride": stride, "padding": padding},
                 name=name)
