"""Sparse Jacobians and Hessians from the graph itself: exact patterns, colouring, compressed
sweeps.

1. **Patterns.** Each node's dependency on x is a boolean sparse matrix ``D`` (node elements x
   x elements, C order), propagated op by op in creation order from what each op declares in
   the registry (``structure``): an elementwise op takes the rows of the input elements it
   broadcasts from; a ``select`` op (reshape, transpose, indexing, concatenation...) copies rows,
   found by running its own kernel on element numbers; reductions and ``group`` ops (softmax)
   combine the rows along their axes; ``matmul`` the rows of a row and a column; anything else
   depends on everything (always safe). Non-differentiable ops carry nothing.
   The Hessian pattern adds, for every op that is not linear (``curvature``), the interactions
   of the elements that meet in one output element: ``U^T U`` for a nonlinear op, the cross
   terms only for a bilinear one (``mul``, ``matmul``). Linear and piecewise-linear ops add
   none, so a sum of squares of neighbours gives a band, not a dense matrix. The pattern is a
   superset of every structural nonzero, never missing one.
2. **Colouring.** Columns of a Jacobian that share no row may share a colour (distance-2
   colouring, greedy, largest-first); rows likewise for reverse mode, and the mode with fewer
   colours wins. A Hessian takes a *star colouring* (Gebremedhin, Manne and Pothen, "What color
   is your Jacobian?", SIAM Review 2005), whose compressed products determine every entry
   directly.
3. **Compressed evaluation as graph.** One batched jvp (or vjp, or Hessian-vector product)
   seeded with the colour matrix computes all colours in one pass; a gather picks each nonzero
   out of the compressed result. The pattern and colouring are computed once, when the node is
   built; ``g.run`` and compiled functions return a ``scipy.sparse.csr_matrix``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import GraphcError, ShapeError, describe
from .graph import Node
from .ops import registry
from .ops.shape import reshape
from .shapes import fmt, size


# -- 1. patterns --------------------------------------------------------------------------------
def _static_size(node: Node, where: str) -> int:
    n = size(node.shape)
    if n is None:
        raise ShapeError(f"{where}: {describe(node)} has shape {fmt(node.shape)}; sparsity "
                         "needs sizes known when the graph is built")
    return n


def _rows(n_out: int, sources: np.ndarray, n_in: int) -> sp.csr_matrix:
    """The selection matrix whose row k has a one at ``sources[k]`` (none where -1)."""
    keep = sources >= 0
    return sp.csr_matrix((np.ones(int(keep.sum()), bool), (np.flatnonzero(keep),
                                                              sources[keep])),
                         shape=(n_out, n_in))


def _broadcast_sources(x: Node, out_shape: tuple) -> np.ndarray:
    numbers = np.arange(size(x.shape)).reshape(x.shape)
    return np.broadcast_to(numbers, out_shape).ravel()


def _select_sources(node: Node) -> list:
    """For each input, the input element each output element copies (-1: none), from the
    op's own kernel applied to element numbers (exact: selection moves values unchanged)."""
    op = registry.REGISTRY[node.op]
    offsets, arrays, start = [], [], 1
    for x in node.inputs:
        n = size(x.shape)
        arrays.append((np.arange(n, dtype=np.float64) + start).reshape(x.shape))
        offsets.append(start)
        start += n
    picked = np.asarray(op.kernel(*arrays, **node.attrs), dtype=np.float64).ravel()
    out = []
    for x, first in zip(node.inputs, offsets):
        n = size(x.shape)
        local = picked - first
        out.append(np.where((local >= 0) & (local < n), local, -1).astype(np.int64))
    return out


def _reduce_targets(x: Node, axes: tuple, keep_shape: tuple) -> np.ndarray:
    """For each element of x, the element of the (keepdims) reduction it goes into."""
    numbers = np.arange(int(np.prod(keep_shape, dtype=np.int64))).reshape(keep_shape)
    return np.broadcast_to(numbers, x.shape).ravel()


def _axes(node: Node) -> tuple:
    x = node.inputs[0]
    axis = node.attrs["axis"]
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return tuple(a % x.ndim if x.ndim else a for a in axes)


def _assignments(node: Node) -> list:
    """One sparse matrix per input: which input elements each output element depends on
    (rows: node elements; columns: that input's elements), or None for no dependence."""
    op = registry.REGISTRY[node.op]
    n_out = size(node.shape)
    sizes = [size(x.shape) for x in node.inputs]
    if op.bprop is None:
        return [None] * len(node.inputs)
    kind = op.structure
    if kind == "elementwise":
        return [_rows(n_out, _broadcast_sources(x, node.shape), n) if x.ndim <= node.ndim
                else sp.csr_matrix(np.ones((n_out, n), bool))
                for x, n in zip(node.inputs, sizes)]
    if kind == "select":
        return [_rows(n_out, s, n) for s, n in zip(_select_sources(node), sizes)]
    if kind in ("reduce", "group"):
        x = node.inputs[0]
        axes = _axes(node)
        keep = tuple(1 if k in axes else d for k, d in enumerate(x.shape))
        into = _reduce_targets(x, axes, keep)
        n_groups = int(np.prod(keep, dtype=np.int64))
        gather = sp.csr_matrix((np.ones(sizes[0], bool), (into, np.arange(sizes[0]))),
                               shape=(n_groups, sizes[0]))
        if kind == "group":  # each element depends on its whole group
            gather = _rows(sizes[0], into, n_groups) @ gather
        return [gather.astype(bool)] + [None] * (len(sizes) - 1)
    if kind == "reduce_to":
        x, like = node.inputs
        batch = node.attrs["batch"]
        want = x.shape[:batch] + like.shape
        lead = x.ndim - len(want)
        inner = x.shape[:batch] + x.shape[batch + lead:]
        numbers = np.arange(n_out).reshape(want)
        into = np.broadcast_to(numbers, inner)
        into = np.broadcast_to(np.expand_dims(into, tuple(range(batch, batch + lead))),
                               x.shape).ravel()
        return [sp.csr_matrix((np.ones(sizes[0], bool), (into, np.arange(sizes[0]))),
                              shape=(n_out, sizes[0])), None]
    if kind == "scatter":  # the adjoint of a selection: each input element lands somewhere
        into = _scatter_targets(node)
        return [sp.csr_matrix((np.ones(sizes[0], bool), (into, np.arange(sizes[0]))),
                              shape=(n_out, sizes[0]))] + [None] * (len(sizes) - 1)
    if kind == "matmul":
        return [sum(terms).astype(bool).tocsr() for terms in _matmul_terms(node)]
    return [sp.csr_matrix(np.ones((n_out, n), bool)) for n in sizes]  # dense: always safe


# The selection whose adjoint each scatter op is: applied to the output's element numbers, it
# tells where each input element is added.
_SCATTERS_OF = {"getitem_grad": "getitem", "concat_put": "concat_take"}


def _scatter_targets(node: Node) -> np.ndarray:
    partner = registry.REGISTRY[_SCATTERS_OF[node.op]]
    g = node.inputs[0]
    if node.op == "getitem_grad":
        like = node.inputs[1]
        numbers = np.arange(size(like.shape)).reshape(like.shape)
        source = np.asarray(partner.kernel(numbers, **node.attrs)).ravel()
        batch = size(g.shape) // max(source.size, 1)
        return (np.arange(batch)[:, None] * numbers.size + source[None, :]).ravel()
    numbers = np.arange(size(node.shape)).reshape(node.shape)
    others = [np.zeros(x.shape) for x in node.inputs[1:]]
    return np.asarray(partner.kernel(numbers, *others, **node.attrs)).ravel()


def _matmul_terms(node: Node) -> tuple:
    """For each contracted index k, the selections of a's and b's elements that meet in each
    output element: ``(A_k for k), (B_k for k)`` (the product's structure, batch included)."""
    a, b = node.inputs
    A = np.arange(size(a.shape)).reshape(a.shape)
    B = np.arange(size(b.shape)).reshape(b.shape)
    A2 = A[None, :] if a.ndim == 1 else A
    B2 = B[:, None] if b.ndim == 1 else B
    k = A2.shape[-1]
    n_out = size(node.shape)
    terms_a, terms_b = [], []
    for j in range(k):
        rows_a = A2[..., :, j][..., :, None]  # (..., m, 1)
        cols_b = B2[..., j, :][..., None, :]  # (..., 1, n)
        sa, sb = np.broadcast_arrays(rows_a, cols_b)
        terms_a.append(_rows(n_out, sa.ravel(), A.size))
        terms_b.append(_rows(n_out, sb.ravel(), B.size))
    return terms_a, terms_b


def _propagate(y: Node, x: Node, hessian: bool):
    """The dependency matrix of y on x, and (when asked) the Hessian interaction pattern."""
    where = "hessian_sparsity" if hessian else "jacobian_sparsity"
    n = _static_size(x, where)
    deps: dict[int, sp.csr_matrix] = {x.id: sp.identity(n, bool, format="csr")}
    H = sp.csr_matrix((n, n), dtype=bool)
    needed = {y.id}
    span = y.graph._nodes[x.id:y.id + 1]
    for node in reversed(span):
        if node.id in needed:
            needed.update(i.id for i in node.inputs)
    for node in span:
        if node.id == x.id or node.id not in needed:
            continue
        carried = [deps.get(i.id) for i in node.inputs]
        if all(d is None for d in carried) or not np.issubdtype(node.dtype, np.floating):
            continue
        _static_size(node, where)
        maps = _assignments(node)
        parts = [m @ d for m, d in zip(maps, carried) if m is not None and d is not None]
        if not parts:
            continue
        D = parts[0]
        for p in parts[1:]:
            D = D + p
        deps[node.id] = D.astype(bool).tocsr()
        if hessian:
            H = H + _interactions(node, maps, carried, D)
    D = deps.get(y.id, sp.csr_matrix((_static_size(y, where), n), dtype=bool))
    return D.astype(bool).tocsr(), (H + H.T).astype(bool).tocsr() if hessian else None


def _interactions(node, maps, carried, D) -> sp.csr_matrix:
    """Pairs of x's elements that a non-linear op makes interact (a superset)."""
    op = registry.REGISTRY[node.op]
    if op.curvature == "linear":
        return sp.csr_matrix((D.shape[1], D.shape[1]), dtype=bool)
    if op.curvature == "bilinear" and len(carried) == 2:
        if carried[0] is None or carried[1] is None:
            return sp.csr_matrix((D.shape[1], D.shape[1]), dtype=bool)
        if op.structure == "matmul":
            terms_a, terms_b = _matmul_terms(node)
            out = sp.csr_matrix((D.shape[1], D.shape[1]), dtype=bool)
            for ta, tb in zip(terms_a, terms_b):
                out = out + ((ta @ carried[0]).T @ (tb @ carried[1])).astype(bool)
            return out
        return ((maps[0] @ carried[0]).T @ (maps[1] @ carried[1])).astype(bool)
    return (D.T @ D).astype(bool)


def jacobian_sparsity(y: Node, x: Node) -> sp.csr_matrix:
    """The structural pattern of ``dy/dx`` as a boolean ``scipy.sparse`` matrix of shape
    ``(y.size, x.size)`` (both flattened in C order): it never misses a structural nonzero."""
    _check_pair(y, x, "jacobian_sparsity")
    return _propagate(y, x, hessian=False)[0]


def hessian_sparsity(z: Node, x: Node) -> sp.csr_matrix:
    """The structural pattern of the Hessian of scalar ``z`` with respect to ``x``: a
    symmetric boolean ``scipy.sparse`` matrix of shape ``(x.size, x.size)``."""
    _check_pair(z, x, "hessian_sparsity")
    if z.shape != ():
        raise ShapeError(f"hessian_sparsity: {describe(z)} must be a scalar, not "
                         f"{fmt(z.shape)}")
    return _propagate(z, x, hessian=True)[1]


def _check_pair(y, x, where: str) -> None:
    if not isinstance(y, Node) or not isinstance(x, Node):
        raise GraphcError(f"{where} takes two graphc nodes")
    if y.graph is not x.graph:
        raise GraphcError(f"{where}: {describe(x)} belongs to another graph")
    for node in (x, y):
        if not np.issubdtype(node.dtype, np.floating):
            raise GraphcError(f"{where}: {describe(node)} has dtype {node.dtype}; only float "
                              "nodes have derivatives")


# -- 2. colouring ---------------------------------------------------------------------------------
def _greedy(adjacency: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    """Distance-1 greedy colouring of a graph in ``order``: colours 0, 1, ..."""
    n = adjacency.shape[0]
    colour = np.full(n, -1, np.int64)
    indptr, indices = adjacency.indptr, adjacency.indices
    for v in order:
        used = {colour[w] for w in indices[indptr[v]:indptr[v + 1]]}
        c = 0
        while c in used:
            c += 1
        colour[v] = c
    return colour


def _largest_first(adjacency: sp.csr_matrix) -> np.ndarray:
    return np.argsort(-np.diff(adjacency.indptr), kind="stable")


def _smallest_last(adjacency: sp.csr_matrix) -> np.ndarray:
    """Repeatedly remove a vertex of least remaining degree; colour in the reverse order
    (Matula and Beck): often fewer colours than largest-first, at the same cost."""
    n = adjacency.shape[0]
    indptr, indices = adjacency.indptr, adjacency.indices
    degree = np.diff(indptr).tolist()
    buckets: dict = {}
    for v, d in enumerate(degree):
        buckets.setdefault(d, set()).add(v)
    removed = [False] * n
    order, low = [], 0
    for _ in range(n):
        while not buckets.get(low):
            low += 1
        v = buckets[low].pop()
        removed[v] = True
        order.append(v)
        for w in indices[indptr[v]:indptr[v + 1]].tolist():
            if not removed[w]:
                buckets[degree[w]].discard(w)
                degree[w] -= 1
                buckets.setdefault(degree[w], set()).add(w)
                low = min(low, degree[w])
    return np.asarray(order[::-1], np.int64)


_ORDERS = {"largest_first": _largest_first, "smallest_last": _smallest_last}


def _ordering(adjacency: sp.csr_matrix, order: str) -> np.ndarray:
    if order not in _ORDERS:
        raise GraphcError(f"colouring order must be one of {sorted(_ORDERS)}, not {order!r}")
    return _ORDERS[order](adjacency)


def column_colouring(pattern: sp.csr_matrix, order: str = "largest_first") -> np.ndarray:
    """Columns that share no row get the same colour (distance-2 colouring of the bipartite
    graph, greedy in ``order``: "largest_first" or "smallest_last"): ``J S`` then holds every
    entry of J."""
    P = pattern.astype(bool).astype(np.int8)
    adjacency = (P.T @ P).tocsr()
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    return _greedy(adjacency, _ordering(adjacency, order))


def star_colouring(pattern: sp.csr_matrix, order: str = "largest_first") -> np.ndarray:
    """A star colouring of a symmetric pattern (a distance-1 colouring in which every path on
    four vertices takes at least three colours), greedy in ``order`` (Gebremedhin,
    Manne and Pothen 2005, section 4).

    Vertex v may not take: the colour of a neighbour w; if w is uncoloured, the colour of any
    coloured neighbour of w (v-w-u would need w to differ from both, later); if w is coloured,
    the colour of any neighbour u of w that has a second neighbour coloured like w (v-w-u-t
    would alternate two colours). Both sets are kept per vertex as colours are assigned, so the
    work is about the number of edges times the colours, even with a hub joined to everything.
    """
    A = pattern.astype(bool).tocsr()
    A.setdiag(False)
    A.eliminate_zeros()
    indptr, indices = A.indptr, A.indices
    n = A.shape[0]
    nbrs = [indices[indptr[v]:indptr[v + 1]].tolist() for v in range(n)]
    colour = [-1] * n
    seen = [dict() for _ in range(n)]  # v -> {colour: coloured neighbours of v with it}
    blocked = [set() for _ in range(n)]  # coloured w -> colours forbidden through w

    def note_pair(u: int, c: int) -> None:  # u has two neighbours coloured c
        if colour[u] >= 0:
            for w in nbrs[u]:
                if colour[w] == c:
                    blocked[w].add(colour[u])

    for v in _ordering(A, order).tolist():
        forbidden = set()
        for w in nbrs[v]:
            cw = colour[w]
            if cw >= 0:
                forbidden.add(cw)
                forbidden |= blocked[w]
            else:
                forbidden.update(seen[w])
        c = 0
        while c in forbidden:
            c += 1
        colour[v] = c
        for w in nbrs[v]:  # v has its colour: w sees it; blocked sets through v
            k = seen[w].get(c, 0) + 1
            seen[w][c] = k
            if k == 2:
                note_pair(w, c)
            if colour[w] >= 0 and seen[v].get(colour[w], 0) >= 2:
                blocked[w].add(c)
    return np.asarray(colour, np.int64)


# -- 3. compressed evaluation ---------------------------------------------------------------------
class SparseDerivative:
    """A sparse Jacobian or Hessian: the fixed ``pattern`` (scipy.sparse), its ``ncolors``, and
    ``data``, the node holding the nonzeros in the pattern's CSR order. Fetch it with
    ``g.run`` or a compiled function to get a ``scipy.sparse.csr_matrix``."""

    def __init__(self, pattern: sp.csr_matrix, colours: np.ndarray, data: Node, mode: str):
        self.pattern = pattern
        self.colors = colours
        self.ncolors = int(colours.max()) + 1 if colours.size else 0
        self.data = data
        self.mode = mode
        self.shape = pattern.shape

    def _fetch(self):
        """The nodes to compute, and how to build the user's value from theirs."""
        indptr, indices, shape = self.pattern.indptr, self.pattern.indices, self.shape

        def rebuild(values):
            return sp.csr_matrix((np.asarray(values[0]).copy(), indices.copy(), indptr.copy()),
                                 shape=shape)
        return [self.data], rebuild

    def __repr__(self) -> str:
        return (f"<SparseDerivative {self.shape[0]}x{self.shape[1]}, {self.pattern.nnz} "
                f"nonzeros, {self.ncolors} colours ({self.mode})>")


def _seeds(colours: np.ndarray, n: int, ncolors: int, dtype) -> np.ndarray:
    S = np.zeros((ncolors, n), dtype)
    S[colours, np.arange(n)] = 1
    return S


def sparse_jacobian(y: Node, x: Node, mode: str = "auto",
                    order: str = "largest_first") -> SparseDerivative:
    """The Jacobian ``dy/dx`` (flattened, ``(y.size, x.size)``) from one compressed sweep:
    forward over coloured columns or reverse over coloured rows, whichever needs fewer
    colours (``mode="fwd"``/``"rev"`` to choose)."""
    from .autodiff import build_grad
    from .forward import jvp

    pattern = jacobian_sparsity(y, x)
    m, n = pattern.shape
    col = column_colouring(pattern, order)
    row = column_colouring(pattern.T.tocsr(), order)
    ncol = int(col.max()) + 1 if n else 0
    nrow = int(row.max()) + 1 if m else 0
    if mode == "auto":
        mode = "fwd" if ncol <= nrow else "rev"
    graph = y.graph
    P = pattern.tocoo()
    rows, cols = _csr_order(pattern)
    with graph._deriving(max(y.derivative, x.derivative) + 1):
        if mode == "fwd":
            S = graph.constant(_seeds(col, n, ncol, x.dtype).reshape((ncol,) + x.shape))
            compressed = reshape(jvp(y, x, S), (ncol, m))  # row c: J S[c]
            flat = col[cols] * m + rows
            colours = col
        else:
            W = graph.constant(_seeds(row, m, nrow, y.dtype).reshape((nrow,) + y.shape))
            (compressed,) = build_grad(y, [x], W)
            compressed = reshape(compressed, (nrow, n))  # row c: W[c] J
            flat = row[rows] * n + cols
            colours = row
        data = reshape(compressed, (-1,))[flat] if P.nnz else reshape(compressed, (-1,))[[]]
    return SparseDerivative(pattern, colours, data, mode)


def sparse_hessian(z: Node, x: Node, order: str = "largest_first") -> SparseDerivative:
    """The Hessian of scalar ``z`` (``(x.size, x.size)``, exactly symmetric) from one batch of
    Hessian-vector products seeded with a star colouring, recovered directly."""
    from .autodiff import gradients
    from .forward import jvp

    pattern = hessian_sparsity(z, x)
    n = pattern.shape[0]
    diagonal = sp.identity(n, bool, format="csr")
    pattern = (pattern + diagonal).astype(bool).tocsr()  # the diagonal is always stored
    pattern.sort_indices()
    colours = star_colouring(pattern, order)
    k = int(colours.max()) + 1 if n else 0
    rows, cols = _csr_order(pattern)
    # Entry (i, j) is B[i, colour j] when no other neighbour of i has j's colour, else
    # B[j, colour i]; the star colouring guarantees one of the two for every pair.
    lower = np.minimum(rows, cols), np.maximum(rows, cols)
    pick_i, pick_c = _recovery(pattern, colours, *lower)
    graph = z.graph
    with graph._deriving(max(z.derivative, x.derivative) + 1):
        S = graph.constant(_seeds(colours, n, k, x.dtype).reshape((k,) + x.shape))
        (gx,) = gradients(z, [x])  # forward over reverse, one tangent per colour
        compressed = reshape(jvp(gx, x, S), (k, n))  # row c: H S[c]
        data = reshape(compressed, (-1,))[pick_c * n + pick_i] if n else \
            reshape(compressed, (-1,))[[]]
    return SparseDerivative(pattern, colours, data, "hvp")


def _csr_order(pattern: sp.csr_matrix) -> tuple:
    pattern.sort_indices()
    rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
    return rows, pattern.indices.astype(np.int64)


def _recovery(pattern: sp.csr_matrix, colours: np.ndarray, i: np.ndarray, j: np.ndarray):
    """For each pair (i <= j): the row and colour of the compressed product holding H_ij."""
    n = pattern.shape[0]
    k = int(colours.max()) + 1 if n else 0
    off = pattern.astype(bool).tocsr()
    off.setdiag(False)
    off.eliminate_zeros()
    one_hot = sp.csr_matrix((np.ones(n), (np.arange(n), colours)), shape=(n, k))
    count = np.asarray((off.astype(np.float64) @ one_hot).todense())  # neighbours per colour
    direct = (i == j) | (count[i, colours[j]] == 1)
    swapped = ~direct & (count[j, colours[i]] == 1)
    if not (direct | swapped).all():  # cannot happen for a star colouring
        bad = np.flatnonzero(~(direct | swapped))[0]
        raise GraphcError(f"sparse_hessian: the colouring does not determine entry "
                          f"({i[bad]}, {j[bad]})")
    return np.where(direct, i, j), np.where(direct, colours[j], colours[i])


def lower_bound(pattern: sp.csr_matrix) -> int:
    """No column colouring of a Jacobian needs fewer colours than the most nonzeros in one row
    (a symmetric Hessian's star colouring can: an arrowhead takes two)."""
    return int(np.diff(pattern.tocsr().indptr).max(initial=0))


__all__ = ["jacobian_sparsity", "hessian_sparsity", "sparse_jacobian", "sparse_hessian",
           "SparseDerivative", "column_colouring", "star_colouring", "lower_bound"]
