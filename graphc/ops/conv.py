"""Convolution over the last two (spatial) dimensions, in PyTorch's layout.

``conv2d(x, w)`` takes input ``(..., C, H, W)`` (NCHW) and weights ``(O, C/groups, KH, KW)``
(OIHW). Three registered ops make a closed family, each the adjoint of another in one argument
(the bilinear form ``<g, conv2d(x, w)> = <conv_transpose2d(g, w), x> = <conv2d_weight_grad(x,
g), w>``), so derivatives of any order are again these ops:

====================  ===========================  =======================================
op                    input x gradient             weight / other gradient
====================  ===========================  =======================================
conv2d(x, w)          conv_transpose2d(g, w)        conv2d_weight_grad(x, g)
conv_transpose2d(g,w) conv2d(c, w)                  conv2d_weight_grad(c, g)
conv2d_weight_grad    conv_transpose2d(g, c)        conv2d(x, c)
====================  ===========================  =======================================

The leading dimensions of the input and of the weights *broadcast* (like ``matmul``'s): a
cotangent with Jacobian batch dimensions, or weights that carry them (the cotangent of a
weight gradient), work in every rule; the gradient pass sums what broadcasting added.
``conv2d_weight_grad`` sums the leading dimensions after its first ``keep`` in the kernel (the
batch of examples), so training never materialises per-example weight gradients.

Kernels: im2col as a strided view (``sliding_window_view``) contracted with ``tensordot``
(BLAS) in the common case, ``einsum`` when groups or batched weights are involved; the
transpose scatters one ``tensordot`` per kernel tap into the output.

Pooling is in :mod:`graphc.ops.pool`.
"""
from __future__ import annotations

from typing import Any, Optional

import string

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import DTypeError, ShapeError
from ..graph import Node, Operand, apply
from ..shapes import broadcast_shapes, float_dtype, fmt
from .attrs import integer, ints
from .registry import Case, define
from .shape import expand_dims, squeeze, transpose


# -- attrs ---------------------------------------------------------------------------------------
def _pair(value, what, low: int = 1) -> tuple:
    """An int or a pair of ints, each at least ``low``, as a pair (stride, dilation, kernel
    size: at least 1; output padding: at least 0)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in value):
        raise ShapeError(f"{what} must be an int or a pair of ints, not {value!r}")
    if any(v < low for v in value):
        raise ShapeError(f"{what} must be at least {low}, not {tuple(map(int, value))}")
    return tuple(int(v) for v in value)


def _padding_pairs(value):
    """The declared check: ``((top, bottom), (left, right))``, non-negative ints."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"expected ((top, bottom), (left, right)), not {value!r:.60}")
    pairs = tuple(ints(0)(pair) for pair in value)
    if any(len(pair) != 2 for pair in pairs):
        raise TypeError(f"expected ((top, bottom), (left, right)), not {value!r:.60}")
    return pairs


def padding_argument(padding, kernel=None, dilation=(1, 1), stride=(1, 1)) -> tuple:
    """A user's padding as ``((top, bottom), (left, right))``: ``"valid"``, ``"same"`` (stride 1;
    the extra row/column of an even kernel goes to the bottom/right, as in PyTorch and TF), an
    int, a pair ``(ph, pw)`` or explicit pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ShapeError(f"padding must be 'valid', 'same', an int or pairs, not {padding!r}")
        if stride != (1, 1):
            raise ShapeError(f"padding='same' needs stride 1, not {stride}")
        if kernel is None or None in kernel:
            raise ShapeError("padding='same' needs the kernel's spatial sizes known when the "
                             "graph is built")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = (int(padding), int(padding))
    padding = tuple(padding)
    if len(padding) != 2:
        raise ShapeError(f"padding must have two entries (height, width), not {padding!r}")
    out = []
    for p in padding:
        p = (p, p) if isinstance(p, (int, np.integer)) else tuple(p)
        if len(p) != 2 or any(not isinstance(v, (int, np.integer)) or v < 0 for v in p):
            raise ShapeError(f"padding sizes must be non-negative ints, not {padding!r}")
        out.append((int(p[0]), int(p[1])))
    return tuple(out)


_CONV_ATTRS = {"stride": ints(1), "padding": _padding_pairs, "dilation": ints(1),
               "groups": integer(1)}


# -- shared helpers ------------------------------------------------------------------------------
def _out_size(n, k, s, d, pads):
    """Output length of a window of ``k`` taps (dilation d) sliding with stride s."""
    if n is None or k is None:
        return None
    span = n + pads[0] + pads[1] - d * (k - 1) - 1
    if span < 0:
        raise ShapeError(f"the kernel (size {k}, dilation {d}) is larger than the padded input "
                         f"(size {n} + padding {pads[0]} + {pads[1]})")
    return span // s + 1


def _windows(x, kernel, stride, dilation, padding, fill=0):
    """im2col as a view: ``(..., C, H, W)`` -> ``(..., C, OH, OW, KH, KW)`` (padding copies)."""
    if any(p for pair in padding for p in pair):
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [tuple(p) for p in padding],
                   constant_values=fill)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if span[0] > x.shape[-2] or span[1] > x.shape[-1]:
        raise ValueError(f"the kernel {tuple(kernel)} (dilation {tuple(dilation)}) is larger "
                         f"than the padded input {x.shape[-2:]}")
    view = sliding_window_view(x, span, axis=(-2, -1))
    return view[..., ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]


def _columns(win):
    """The im2col matrix ``(..., OH, OW, C, KH, KW)`` (contiguous) of a window view, copied
    one kernel tap at a time: long contiguous runs, faster than one 6-D transposing copy."""
    lead, (C, OH, OW, KH, KW) = win.shape[:-5], win.shape[-5:]
    cols = np.empty(lead + (OH, OW, C, KH, KW), win.dtype)
    n = len(lead)
    for i in range(KH):
        for j in range(KW):
            cols[..., i, j] = np.moveaxis(win[..., i, j], n, n + 2)
    return cols


def _float_pair(a, b):
    dtype = float_dtype(np.result_type(a, b))
    return np.asarray(a, dtype), np.asarray(b, dtype)


def _lead(shape, core):
    return shape[:len(shape) - core]


def _check_spatial(x, what, ndim=3):
    if x.ndim < ndim:
        raise ShapeError(f"{what} must have at least {ndim} dimensions, not shape {fmt(x.shape)}")


def _check_float(*nodes):
    for n in nodes:
        if n.dtype.kind not in "iuf":
            raise DTypeError(f"convolution takes real numbers, not {n.dtype}")


def _channels(what, have, want):
    if have is not None and want is not None and have != want:
        raise ShapeError(f"{what}: {have} != {want}")


def _group_split(size, groups, what):
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ShapeError(f"groups must be a positive int, not {groups!r:.40}")
    if size is not None and size % groups:
        raise ShapeError(f"{what} ({size}) must be divisible by groups ({groups})")


# -- conv2d ----------------------------------------------------------------------------------------
def _conv2d_infer(x, w, *, stride, padding, dilation, groups):
    _check_float(x, w)
    _check_spatial(x, "the input (..., C, H, W)")
    _check_spatial(w, "the weights (O, C/groups, KH, KW)", 4)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    padding = padding_argument(padding, w.shape[-2:], dilation, stride)
    C, Cg, O = x.shape[-3], w.shape[-3], w.shape[-4]
    _group_split(O, groups, "output channels")
    _channels(f"input channels must equal groups x weight input channels "
              f"({groups} x {Cg})", C, None if Cg is None else groups * Cg)
    spatial = tuple(_out_size(n, k, s, d, p) for n, k, s, d, p in
                    zip(x.shape[-2:], w.shape[-2:], stride, dilation, padding))
    lead = broadcast_shapes(_lead(x.shape, 3), _lead(w.shape, 4))
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return lead + (O,) + spatial, float_dtype(np.result_type(x.dtype, w.dtype)), attrs


def _conv2d(x, w, *, stride, padding, dilation, groups):
    x, w = _float_pair(x, w)
    win = _windows(x, w.shape[-2:], stride, dilation, padding)  # (..., C, OH, OW, KH, KW)
    if groups == 1 and w.ndim == 4:  # the common case: the columns, then one BLAS call
        cols = _columns(win)
        ckk = cols.shape[-3] * cols.shape[-2] * cols.shape[-1]
        out = cols.reshape(-1, ckk) @ w.reshape(w.shape[0], -1).T
        out = out.reshape(cols.shape[:-3] + (w.shape[0],))  # one 2-D matmul, not a stack
        return np.moveaxis(out, -1, -3)  # (..., OH, OW, O) -> (..., O, OH, OW)
    G = groups
    win = win.reshape(win.shape[:-5] + (G, -1) + win.shape[-4:])
    wg = w.reshape(w.shape[:-4] + (G, -1) + w.shape[-3:])
    out = np.einsum("...gchwij,...gocij->...gohw", win, wg, optimize=True)
    return np.ascontiguousarray(out.reshape(out.shape[:-4] + (-1,) + out.shape[-2:]))


def _conv2d_bprop(node, g, i):
    x, w = node.inputs
    attrs = _conv_attrs(node)
    if i == 0:
        return conv_transpose2d_like(g, w, x, **attrs)
    return conv2d_weight_grad(x, g, w, keep=_keep(g, node, w), **attrs)


def _keep(g, node, w):
    """How many leading dims of a weight gradient to keep: the cotangent's batch (the examples
    are summed in the kernel), or all of them when the weights themselves carry a batch."""
    return g.ndim - node.ndim if w.ndim == 4 else None


def _conv_attrs(node):
    return {k: node.attrs[k] for k in ("stride", "padding", "dilation", "groups")}


# -- the direct loops the kernels are tested against (independent of im2col) -------------------
def _conv2d_loop(x, w, *, stride, padding, dilation, groups):
    lead = x.shape[:-3]
    x = x.reshape((-1,) + x.shape[-3:])
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    (pt, pb), (pl, pr) = padding
    OH = (H + pt + pb - dilation[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + pl + pr - dilation[1] * (KW - 1) - 1) // stride[1] + 1
    out = np.zeros((N, O, OH, OW), np.result_type(x, w))
    Og = O // groups
    for n, o, oh, ow in np.ndindex(N, O, OH, OW):
        total = 0.0
        for c, i, j in np.ndindex(Cg, KH, KW):
            h = oh * stride[0] + i * dilation[0] - pt
            v = ow * stride[1] + j * dilation[1] - pl
            if 0 <= h < H and 0 <= v < W:
                total += x[n, (o // Og) * Cg + c, h, v] * w[o, c, i, j]
        out[n, o, oh, ow] = total
    return out.reshape(lead + out.shape[1:])


def _conv_transpose2d_loop(g, w, *like, stride, padding, dilation, groups, output_padding):
    lead = g.shape[:-3]
    g = g.reshape((-1,) + g.shape[-3:])
    N, Cin, OH, OW = g.shape
    _, Cog, KH, KW = w.shape
    (pt, pb), (pl, pr) = padding
    if like:
        H, W = like[0].shape[-2:]
    else:
        H = (OH - 1) * stride[0] + dilation[0] * (KH - 1) + 1 - pt - pb + output_padding[0]
        W = (OW - 1) * stride[1] + dilation[1] * (KW - 1) + 1 - pl - pr + output_padding[1]
    out = np.zeros((N, groups * Cog, H, W), np.result_type(g, w))
    Cig = Cin // groups
    for n, ci, oh, ow in np.ndindex(N, Cin, OH, OW):
        for co, i, j in np.ndindex(Cog, KH, KW):
            h = oh * stride[0] + i * dilation[0] - pt
            v = ow * stride[1] + j * dilation[1] - pl
            if 0 <= h < H and 0 <= v < W:
                out[n, (ci // Cig) * Cog + co, h, v] += g[n, ci, oh, ow] * w[ci, co, i, j]
    return out.reshape(lead + out.shape[1:])


def _conv2d_weight_grad_loop(x, g, like, *, stride, padding, dilation, groups, keep):
    O, Cg, KH, KW = like.shape[-4:]
    lead = np.broadcast_shapes(x.shape[:-3], g.shape[:-3])
    x = np.broadcast_to(x, lead + x.shape[-3:]).reshape((-1,) + x.shape[-3:])
    g = np.broadcast_to(g, lead + g.shape[-3:]).reshape((-1,) + g.shape[-3:])
    N, C, H, W = x.shape
    _, _, OH, OW = g.shape
    (pt, pb), (pl, pr) = padding
    out = np.zeros((N, O, Cg, KH, KW), np.result_type(x, g))
    Og = O // groups
    for n, o, c, i, j in np.ndindex(N, O, Cg, KH, KW):
        for oh, ow in np.ndindex(OH, OW):
            h = oh * stride[0] + i * dilation[0] - pt
            v = ow * stride[1] + j * dilation[1] - pl
            if 0 <= h < H and 0 <= v < W:
                out[n, o, c, i, j] += g[n, o, oh, ow] * x[n, (o // Og) * Cg + c, h, v]
    out = out.reshape(lead + out.shape[1:])
    if keep is not None:
        out = out.sum(axis=tuple(range(keep, len(lead))))
    return out


_CONV_CASES = [
    Case(((2, 2, 4, 4), (3, 2, 2, 2)), attrs={"stride": 1, "padding": 0, "dilation": 1,
                                              "groups": 1}),
    Case(((1, 2, 5, 5), (2, 1, 3, 3)), attrs={"stride": 2, "padding": 1, "dilation": 1,
                                              "groups": 2}),
    Case(((1, 1, 5, 4), (2, 1, 2, 2)), attrs={"stride": (1, 2), "padding": ((1, 0), (0, 1)),
                                              "dilation": (2, 1), "groups": 1}),
    Case(((2, 3, 3), (2, 2, 3, 3)), attrs={"stride": 1, "padding": 1, "dilation": 1,
                                           "groups": 1}, order=1),  # unbatched (C, H, W)
]

define("conv2d", infer=_conv2d_infer, kernel=_conv2d, bprop=_conv2d_bprop,
       attrs=_CONV_ATTRS, reference=_conv2d_loop, cases=_CONV_CASES,
       doc="2-D cross-correlation, NCHW input and OIHW weights (PyTorch's conv2d).")


# -- conv_transpose2d ------------------------------------------------------------------------------
def _conv_transpose2d_infer(g, w, *like, stride, padding, dilation, groups, output_padding):
    _check_float(g, w)
    _check_spatial(g, "the input (..., C, H, W)")
    _check_spatial(w, "the weights (C, O/groups, KH, KW)", 4)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    output_padding = _pair(output_padding, "output_padding", low=0)
    padding = padding_argument(padding)
    _channels("input channels must equal the weights' first dimension", g.shape[-3],
              w.shape[-4])
    _group_split(w.shape[-4], groups, "input channels")
    if any(p >= max(s, d) for p, s, d in zip(output_padding, stride, dilation)):
        raise ShapeError(f"output_padding {output_padding} must be smaller than the stride "
                         f"{stride} or the dilation {dilation}")
    if like:
        spatial = like[0].shape[-2:]
    else:
        spatial = tuple(None if n is None or k is None else
                        (n - 1) * s + d * (k - 1) + 1 - p[0] - p[1] + q
                        for n, k, s, d, p, q in zip(g.shape[-2:], w.shape[-2:], stride,
                                                    dilation, padding, output_padding))
        if any(n is not None and n < 1 for n in spatial):
            raise ShapeError(f"the padding {padding} leaves an empty output {spatial}")
    Cog = w.shape[-3]
    lead = broadcast_shapes(_lead(g.shape, 3), _lead(w.shape, 4))
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
             "output_padding": output_padding}
    out = lead + (None if Cog is None else groups * Cog,) + tuple(spatial)
    return out, float_dtype(np.result_type(g.dtype, w.dtype)), attrs


def _conv_transpose2d(g, w, *like, stride, padding, dilation, groups, output_padding):
    g, w = _float_pair(g, w)
    KH, KW = w.shape[-2:]
    OH, OW = g.shape[-2:]
    (pt, pb), (pl, pr) = padding
    if like:
        H, W = np.shape(like[0])[-2:]
    else:
        H = (OH - 1) * stride[0] + dilation[0] * (KH - 1) + 1 - pt - pb + output_padding[0]
        W = (OW - 1) * stride[1] + dilation[1] * (KW - 1) + 1 - pl - pr + output_padding[1]
    Hp, Wp = H + pt + pb, W + pl + pr
    if (OH - 1) * stride[0] + dilation[0] * (KH - 1) + 1 > Hp or \
            (OW - 1) * stride[1] + dilation[1] * (KW - 1) + 1 > Wp:
        raise ValueError(f"an input of spatial size {(OH, OW)} does not fit an output of size "
                         f"{(H, W)} with this kernel, stride and padding")
    if groups == 1 and w.ndim == 4:
        cols = np.tensordot(g, w, axes=([-3], [0]))  # (..., OH, OW, Co, KH, KW)
        cols = np.moveaxis(cols, (-5, -4), (-2, -1))  # (..., Co, KH, KW, OH, OW)
    else:
        G = groups
        gg = g.reshape(g.shape[:-3] + (G, -1) + g.shape[-2:])
        wg = w.reshape(w.shape[:-4] + (G, -1) + w.shape[-3:])
        cols = np.einsum("...gchw,...gcoij->...goijhw", gg, wg, optimize=True)
        cols = cols.reshape(cols.shape[:-6] + (-1,) + cols.shape[-4:])
    canvas = np.zeros(cols.shape[:-5] + (cols.shape[-5], Hp, Wp), cols.dtype)
    sh, sw = stride
    for i in range(KH):
        for j in range(KW):
            h0, v0 = i * dilation[0], j * dilation[1]
            canvas[..., h0:h0 + (OH - 1) * sh + 1:sh, v0:v0 + (OW - 1) * sw + 1:sw] += \
                cols[..., i, j, :, :]
    return np.ascontiguousarray(canvas[..., pt:pt + H, pl:pl + W])


def _conv_transpose2d_bprop(node, c, i):
    g, w = node.inputs[:2]
    attrs = _conv_attrs(node)
    if i == 0:
        return conv2d(c, w, **attrs)
    if i == 1:
        return conv2d_weight_grad(c, g, w, keep=_keep(c, node, w), **attrs)
    return None  # like: only its shape is read


_T_ATTRS = {**_CONV_ATTRS, "output_padding": ints(0)}

define("conv_transpose2d", infer=_conv_transpose2d_infer, kernel=_conv_transpose2d,
       bprop=_conv_transpose2d_bprop, attrs=_T_ATTRS, arity=(2, 3),
       reference=_conv_transpose2d_loop,
       cases=[Case(((1, 2, 3, 3), (2, 3, 2, 2)),
                   attrs={"stride": 2, "padding": 0, "dilation": 1, "groups": 1,
                          "output_padding": 1}),
              Case(((2, 2, 3, 2), (2, 1, 2, 3)),
                   attrs={"stride": 1, "padding": ((1, 0), (0, 1)), "dilation": (1, 2),
                          "groups": 2, "output_padding": 0}),
              Case(((1, 3, 2, 2), (3, 2, 3, 3), (1, 2, 4, 4)),  # output size read from like
                   attrs={"stride": 2, "padding": 1, "dilation": 1, "groups": 1,
                          "output_padding": 0}, wrt=(0, 1))],
       doc="The transpose (adjoint in x) of conv2d; weights (C, O/groups, KH, KW) as in "
           "PyTorch. A third input, when given, fixes the output's spatial size.")


# -- conv2d_weight_grad ----------------------------------------------------------------------------
def _weight_grad_infer(x, g, like, *, stride, padding, dilation, groups, keep):
    _check_float(x, g)
    _check_spatial(x, "the input")
    _check_spatial(g, "the output cotangent")
    _check_spatial(like, "the weights", 4)
    lead = broadcast_shapes(_lead(x.shape, 3), _lead(g.shape, 3))
    if keep is not None and keep > len(lead):
        raise ShapeError(f"keep={keep} exceeds the {len(lead)} leading dimensions")
    core = like.shape[-4:]
    _channels("cotangent channels must equal the weights' output channels", g.shape[-3],
              core[0])
    kept = lead if keep is None else lead[:keep]
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
             "keep": keep}
    return kept + core, float_dtype(np.result_type(x.dtype, g.dtype)), attrs


def _weight_grad(x, g, like, *, stride, padding, dilation, groups, keep):
    x, g = _float_pair(x, g)
    win = _windows(x, np.shape(like)[-2:], stride, dilation, padding)  # (..., C, OH, OW, KH, KW)
    if win.shape[-4:-2] != g.shape[-2:]:
        raise ValueError(f"the cotangent's spatial size {g.shape[-2:]} is not the output size "
                         f"{win.shape[-4:-2]}")
    xl, gl = win.shape[:-5], g.shape[:-3]
    if groups == 1 and keep == 0 and xl == gl:  # sum over the examples: one BLAS call
        n = len(xl)
        return np.tensordot(g, win, axes=(list(range(n)) + [n + 1, n + 2],
                                          list(range(n)) + [n + 1, n + 2]))
    lead = np.broadcast_shapes(xl, gl)
    win = np.broadcast_to(win, lead + win.shape[-5:])
    g = np.broadcast_to(g, lead + g.shape[-3:])
    G = groups
    win = win.reshape(lead + (G, -1) + win.shape[-4:])
    g = g.reshape(lead + (G, -1) + g.shape[-2:])
    letters = string.ascii_uppercase[:len(lead)]
    kept = letters if keep is None else letters[:keep]
    out = np.einsum(f"{letters}gchwij,{letters}gohw->{kept}gocij", win, g, optimize=True)
    return out.reshape(out.shape[:len(kept)] + (-1,) + out.shape[-3:])


def _weight_grad_bprop(node, c, i):
    x, g, like = node.inputs
    if i == 2:
        return None
    lead = max(x.ndim, g.ndim) - 3
    keep = node.attrs["keep"]
    if keep is not None and lead > keep:  # the summed dims come back as broadcast ones
        c = expand_dims(c, tuple(range(-4 - (lead - keep), -4)))
    attrs = _conv_attrs(node)
    if i == 0:
        return conv_transpose2d_like(g, c, x, **attrs)
    return conv2d(x, c, **attrs)


define("conv2d_weight_grad", infer=_weight_grad_infer, kernel=_weight_grad,
       bprop=_weight_grad_bprop, attrs={**_CONV_ATTRS, "keep": lambda v: None if v is None
                                        else integer(0)(v)},
       reference=_conv2d_weight_grad_loop,
       cases=[Case(((2, 2, 4, 4), (2, 3, 3, 3), (3, 2, 2, 2)),
                   attrs={"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1),
                          "groups": 1, "keep": 0}, wrt=(0, 1)),
              Case(((1, 2, 5, 5), (1, 2, 3, 3), (2, 1, 3, 3)),
                   attrs={"stride": (2, 2), "padding": ((1, 1), (1, 1)), "dilation": (1, 1),
                          "groups": 2, "keep": 0}, wrt=(0, 1)),
              Case(((2, 1, 4, 4), (2, 2, 3, 2), (2, 1, 2, 2)),
                   attrs={"stride": (1, 2), "padding": ((0, 0), (0, 1)), "dilation": (1, 1),
                          "groups": 1, "keep": None}, wrt=(0, 1))],
       doc="The gradient of conv2d with respect to its weights (like: the weights, for their "
           "size); sums the leading dimensions after the first keep (None: keeps all).")


# -- builders --------------------------------------------------------------------------------------
def _to_nchw(x, data_format):
    if data_format == "NCHW":
        return x
    if data_format != "NHWC":
        raise ShapeError(f"data_format must be 'NCHW' or 'NHWC', not {data_format!r}")
    n = x.ndim
    return transpose(x, tuple(range(n - 3)) + (n - 1, n - 3, n - 2))


def _from_nchw(y, data_format):
    if data_format == "NCHW":
        return y
    n = y.ndim
    return transpose(y, tuple(range(n - 3)) + (n - 2, n - 1, n - 3))


def conv2d(x: Operand, w: Operand, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, data_format: str = "NCHW", name: Optional[str] = None) -> Node:
    """2-D convolution (cross-correlation, as in PyTorch and TF) of ``x`` with weights ``w``.

    ``x`` is ``(N, C, H, W)`` (or ``(C, H, W)``, or any leading dimensions), ``w`` is
    ``(O, C/groups, KH, KW)``; the result is ``(N, O, OH, OW)``. ``stride`` and ``dilation``
    are ints or ``(h, w)`` pairs; ``padding`` is ``"valid"``, ``"same"`` (stride 1), an int, a
    pair ``(ph, pw)`` or explicit ``((top, bottom), (left, right))``. ``data_format="NHWC"``
    takes and returns channels-last tensors (the weights stay OIHW).
    """
    if data_format != "NCHW":
        x = _to_nchw(x, data_format)
        return _from_nchw(conv2d(x, w, stride, padding, dilation, groups), data_format)
    return apply("conv2d", [x, w], {"stride": stride, "padding": padding,
                                    "dilation": dilation, "groups": groups}, name=name)


def conv1d(x: Operand, w: Operand, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, name: Optional[str] = None) -> Node:
    """1-D convolution: ``x`` ``(N, C, L)``, ``w`` ``(O, C/groups, K)`` -> ``(N, O, OL)``.

    ``padding`` is ``"valid"``, ``"same"`` (stride 1), an int or a pair ``(left, right)``.
    Built as a conv2d over a height of one.
    """
    if isinstance(padding, str):
        if padding == "same":
            k = w.shape[-1] if hasattr(w, "shape") else None
            padding = padding_argument("same", (1, k), (1, _pair(dilation, "dilation")[0]),
                                       (1, _pair(stride, "stride")[0]))[1]
        else:
            padding = padding_argument(padding)[1]
    pad = (int(padding), int(padding)) if isinstance(padding, (int, np.integer)) \
        else tuple(padding)
    stride = stride if isinstance(stride, (int, np.integer)) else tuple(stride)[0]
    dilation = dilation if isinstance(dilation, (int, np.integer)) else tuple(dilation)[0]
    def height_one(a):
        return expand_dims(a, -2) if isinstance(a, Node) else np.expand_dims(a, -2)
    y = conv2d(height_one(x), height_one(w), (1, stride), ((0, 0), pad),
               (1, dilation), groups)
    return squeeze(y, -2, name=name)


def conv_transpose2d(x: Operand, w: Operand, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1,
                     name: Optional[str] = None) -> Node:
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input).

    ``x`` ``(N, C, H, W)``, ``w`` ``(C, O/groups, KH, KW)`` (PyTorch's layout) -> ``(N, O,
    OH, OW)`` with ``OH = (H - 1) * stride - pad_top - pad_bottom + dilation * (KH - 1) + 1 +
    output_padding``.
    """
    return apply("conv_transpose2d", [x, w], {
        "stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
        "output_padding": output_padding}, name=name)


def conv_transpose2d_like(g, w, like, *, stride, padding, dilation, groups, name=None):
    """conv_transpose2d whose output has ``like``'s spatial size (how conv2d's rule uses it)."""
    return apply("conv_transpose2d", [g, w, like], {
        "stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
        "output_padding": (0, 0)}, name=name)


def conv2d_weight_grad(x, g, like, *, stride, padding, dilation, groups, keep=0, name=None):
    """The gradient of ``sum(g * conv2d(x, w))`` with respect to ``w`` (``like``: the weights)."""
    return apply("conv2d_weight_grad", [x, g, like], {
        "stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
        "keep": keep}, name=name)
