r"""Clusters of a point cloud, and the c-transforms on the kept pairs of (tile of rows, column).

A :class:`Clusters` is a cloud sorted so that every cluster is a contiguous range of the sorted points;
it records each cluster's weight, centroid and the bounding box of its points.  Two partitions build one:

* :func:`grid_clusters`: the cells of one grid (the coarse level of :mod:`otdist.solvers.multiscale`);
* :func:`tree_clusters`: the nodes of a binary space-partitioning tree on the Morton (Z-order) code of
  the points -- each cluster is the largest node holding at most ``most`` points, a box of aspect
  ratio at most 2 whatever the density, so that tiles of rows are compact and of nearly equal size.

:class:`TileSoftmin` evaluates the c-transforms of :mod:`otdist.solvers.log_sinkhorn` on a kept set
made of pairs (tile of rows, column): each tile (a cluster of x) keeps its own list of columns, and
both c-transforms run over the same blocks (tile x its columns), so that they see one truncated kernel
without any mask.  For C = |x - y|^2 a block is one matrix product: with both sides centred on the
tile's centre c, (g_j - C_ij) / eps = w_j - |x_i|^2 / eps + 2 x_i.y_j / eps with w_j = (g_j - |y_j|^2) / eps,
so [2 x_i / eps, 1] @ [y_j; w_j - c_t] gives the exponents of a row up to a constant (c_t: the largest w_j
of the block; the columns' pass puts the rows' terms in the last column instead).  Every exponent then
lies within +-span / eps of its row's (or column's) largest, span = 2 max|x_i| max|y_j| (centred), so
that a block whose span is small enough against the dtype's range (EXP_HEADROOM) is summed directly as
exp2 of base-2 exponents (no max pass, half the cost of exp); the others by a logsumexp.  The columns'
pass sums each block over its rows; the partial sums per (tile, column) are combined in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Bits per coordinate of the Morton code (at most 62 bits in all).
MORTON_BITS = 20
#: Kept (tile, column) entries whose per-pass terms are prepared at once (float64 temporaries).
CHUNK_ENTRIES = 1 << 18
#: A block is exp-summed directly (no max pass) when its exponents, within +-span / eps of their row's or
#: column's largest, stay within this share of the dtype's exponent range; otherwise by a logsumexp.
EXP_HEADROOM = 0.5


@dataclass(frozen=True)
class Clusters:
    """One cloud sorted by cluster: ``points``/``weights`` sorted, ``perm`` (sorted k = original perm[k]),
    ``starts``/``ends`` of each cluster in the sorted order, cluster ``mass``, ``centroid``, box ``low``/``high``."""

    points: torch.Tensor
    weights: torch.Tensor
    perm: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor
    mass: torch.Tensor
    centroid: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    @property
    def count(self) -> int:
        return self.starts.shape[0]

    @property
    def sizes(self) -> torch.Tensor:
        return self.ends - self.starts

    @property
    def labels(self) -> torch.Tensor:
        """The cluster of each sorted point."""
        return torch.repeat_interleave(torch.arange(self.count, device=self.ends.device), self.sizes)

    def unsort(self, values):
        """(B, n) values in the sorted order -> the original order."""
        out = torch.empty_like(values)
        out[:, self.perm] = values
        return out

    def sort(self, values):
        return values[:, self.perm]

    def cluster_max(self, values):
        """The largest of (n,) sorted values in each cluster, (K,)."""
        out = torch.full((self.count,), -math.inf, dtype=values.dtype, device=values.device)
        return out.scatter_reduce(0, self.labels, values, reduce="amax")


def _summarise(points, weights, perm, counts) -> Clusters:
    """The Clusters of ``points`` sorted by ``perm`` into consecutive clusters of ``counts`` points."""
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    points, weights = points[perm], weights[perm]
    labels = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
    wide = weights.double()
    mass = torch.zeros(counts.shape[0], dtype=torch.float64, device=counts.device).index_add_(0, labels, wide)
    centroid = torch.zeros(counts.shape[0], points.shape[1], dtype=torch.float64, device=counts.device)
    centroid.index_add_(0, labels, wide[:, None] * points.double())
    plain = torch.zeros_like(centroid).index_add_(0, labels, points.double()) / counts[:, None]
    centroid = torch.where(mass[:, None] > 0, centroid / mass.clamp_min(torch.finfo(torch.float64).tiny)[:, None], plain)
    index = labels[:, None].expand(-1, points.shape[1])
    low = torch.full_like(centroid, math.inf).scatter_reduce(0, index, points.double(), reduce="amin")
    high = torch.full_like(centroid, -math.inf).scatter_reduce(0, index, points.double(), reduce="amax")
    return Clusters(points, weights, perm, starts, ends, mass, centroid, low, high)


def grid_clusters(points, weights, origin, side: float) -> Clusters:
    """Cluster (n, d) ``points`` with (n,) ``weights`` into the cells of side ``side`` of the grid at ``origin``."""
    cells = torch.floor((points.double() - origin) / side).long()
    extent = cells.max(dim=0).values + 1
    label = torch.zeros(points.shape[0], dtype=torch.long, device=points.device)
    for k in range(points.shape[1]):
        label = label * int(extent[k]) + cells[:, k]
    label, perm = torch.sort(label, stable=True)
    _, counts = torch.unique_consecutive(label, return_counts=True)
    return _summarise(points, weights, perm, counts)


def tree_clusters(points, weights, origin, scale: float, most: int) -> Clusters:
    """Cluster (n, d) ``points`` into the largest nodes of the Morton-code tree holding at most ``most`` points.

    The codes interleave MORTON_BITS bits (fewer in d > 3) of each coordinate on the cube of side ``scale``
    at ``origin``; a node is a prefix of the code (a box halved along one axis at each bit).  Points sharing
    a full code may make a node of more than ``most`` points.
    """
    n, d = points.shape
    bits = min(MORTON_BITS, 62 // d)
    top = (1 << bits) - 1
    cells = torch.floor((points.double() - origin) / scale * (1 << bits)).long().clamp_(0, top)
    code = torch.zeros(n, dtype=torch.long, device=points.device)
    for b in range(bits - 1, -1, -1):
        for k in range(d):
            code = (code << 1) | ((cells[:, k] >> b) & 1)
    code, perm = torch.sort(code, stable=True)
    total = bits * d
    node = torch.full_like(code, -1)
    for level in range(total + 1):
        prefix = code >> (total - level)
        _, inverse, counts = torch.unique_consecutive(prefix, return_inverse=True, return_counts=True)
        fits = (counts[inverse] <= most) & (node < 0)
        node = torch.where(fits, prefix << (total - level), node)
        if bool((node >= 0).all()):
            break
    node = torch.where(node < 0, code, node)
    _, counts = torch.unique_consecutive(node, return_counts=True)
    return _summarise(points, weights, perm, counts)


def pair_cost(x, y, p: float, centre):
    """|x_i - y_j|^p (len(x), len(y)), both shifted by ``centre`` first (relative precision of the squares)."""
    x, y = x - centre, y - centre
    if p == 2:
        sq = (x.square().sum(dim=1)[:, None] + y.square().sum(dim=1)[None, :]).addmm_(x, y.T, alpha=-2.0)
        return sq.clamp_min_(0.0)
    return torch.cdist(x[None], y[None], compute_mode="donot_use_mm_for_euclid_dist")[0] ** p


def _segment_max(values, counts, size: int):
    """The largest of consecutive segments of ``counts`` values, (size,), finite (0 where none is)."""
    labels = torch.repeat_interleave(torch.arange(size, device=values.device), counts)
    out = torch.full((size,), -math.inf, dtype=values.dtype, device=values.device)
    out = out.scatter_reduce(0, labels, values, reduce="amax")
    return torch.where(torch.isfinite(out), out, 0.0)


class TileSoftmin:
    """The softmin protocol of :mod:`otdist.solvers.log_sinkhorn` on the kept pairs (tile of rows, column), B = 1.

    ``tiles`` clusters x (its sorted order is the rows' order); ``y`` (m, d) holds the columns in their sorted
    order; ``offsets`` (T + 1,) and ``index`` (L,) list the kept columns of each tile (ascending).  ``rows(g, ...)``
    and ``columns(f, ...)`` take and return potentials in these sorted orders.
    """

    def __init__(self, tiles: Clusters, y, offsets, index, p: float, dtype):
        self.tiles, self.y, self.p, self.dtype = tiles, y, p, dtype
        self.shape = (tiles.points.shape[0], y.shape[0])
        self.offsets, self.index = offsets, index
        self._counts = offsets[1:] - offsets[:-1]
        self.kept_pairs = int((tiles.sizes * self._counts).sum())
        self._blocks = list(zip(tiles.starts.tolist(), tiles.ends.tolist(), offsets[:-1].tolist(),
                                offsets[1:].tolist()))
        self._chunks, first, done = [], 0, 0
        for t, end in enumerate(offsets[1:].tolist()):
            if end - done >= CHUNK_ENTRIES or t == tiles.count - 1:
                self._chunks.append((first, t + 1, done, end))
                first, done = t + 1, end
        centre = (tiles.low + tiles.high) / 2
        xc = tiles.points.double() - torch.repeat_interleave(centre, tiles.sizes, dim=0)
        self._xsq = xc.square().sum(dim=1)
        self._xc = xc.to(dtype)
        d, device = xc.shape[1], y.device
        self._a = torch.empty(xc.shape[0], d + 1, dtype=dtype, device=device)
        self._b = torch.empty(d + 1, index.shape[0], dtype=dtype, device=device)
        self._scratch = torch.empty(index.shape[0], dtype=dtype, device=device)
        self._work = torch.empty(int((tiles.sizes * self._counts).max()), dtype=dtype, device=device)  # one block
        self._ysq_kept = torch.zeros(index.shape[0] if p == 2 else 0, dtype=dtype, device=device)
        reach = torch.zeros(tiles.count, dtype=torch.float64, device=device)
        for t0, t1, s, e in self._chunks:
            yc = y[index[s:e].long()].double() - torch.repeat_interleave(centre[t0:t1], self._counts[t0:t1], dim=0)
            self._b[:d, s:e] = yc.T.to(dtype)
            ysq = yc.square().sum(dim=1)
            if p == 2:
                self._ysq_kept[s:e] = ysq
            reach[t0:t1] = _segment_max(ysq.sqrt(), self._counts[t0:t1], t1 - t0)
        # the exponents of a tile's block lie within +-span / eps of their row's (or column's) largest
        span = 2 * _segment_max(self._xsq.sqrt(), tiles.sizes, tiles.count) * reach
        self._span = span.tolist()
        self._log_entries = (self._counts + tiles.sizes).double().log().tolist()
        # p = 2: the blocks hold exponents in base 2 (exp2 costs about half of exp): UNIT nats each
        self._unit = math.log(2.0) if p == 2 else 1.0
        self._eps = None

    def lowered(self):
        """A float32 copy for the first iterations of a float64 problem."""
        if self.dtype != torch.float64:
            return None
        return TileSoftmin(self.tiles, self.y, self.offsets, self.index, self.p, torch.float32)

    def _prepare(self, eps: float):
        """Columns :d of a <- 2 x_i / eps in base 2 (the points, for p != 2); which blocks may be exp-summed
        directly."""
        if self._eps != eps:
            scaled = (self._xc.double() * (2.0 / eps / self._unit)).to(self.dtype) if self.p == 2 else self._xc
            self._a[:, :-1] = scaled
            headroom = EXP_HEADROOM * math.log(torch.finfo(self.dtype).max)
            self._direct = [self.p == 2 and s / eps + e <= headroom for s, e in zip(self._span, self._log_entries)]
            self._eps = eps

    def _block(self, i0, i1, j0, j1, eps: float):
        """Exponents (rows, kept columns) of one tile, in units of ``_unit`` nats: u_i + w_j + 2 x_i.y_j / eps,
        or u_i + w_j - C_ij / eps."""
        a, b = self._a[i0:i1], self._b[:, j0:j1]
        if self.p == 2:
            return torch.mm(a, b, out=self._work[:(i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0))
        cost = torch.cdist(a[None, :, :-1], b[:-1].T[None], compute_mode="donot_use_mm_for_euclid_dist")[0] ** self.p
        return (a[:, -1:] + b[-1:]).sub_(cost, alpha=1.0 / eps)

    def _ysq(self, s: int, e: int):
        """|y_j|^2 (centred) of the kept entries s:e, float64 (zeros for p != 2)."""
        if self.p != 2:
            return torch.zeros(e - s, dtype=torch.float64, device=self._b.device)
        return self._ysq_kept[s:e].double()

    def _quadratic(self, eps: float):
        """The rows' |x_i|^2 / eps (centred; zeros for p != 2), and the constant the other side's column takes."""
        return self._xsq / eps if self.p == 2 else torch.zeros_like(self._xsq), 1.0 if self.p == 2 else 0.0

    def rows(self, g, log_b, eps: float):
        """f_i = -eps log sum_kept b_j exp((g_j - C_ij) / eps), (1, n)."""
        self._prepare(eps)
        shift = g[0].double() / eps + log_b[0].double()
        xsq, one = self._quadratic(eps)
        self._a[:, -1] = one
        centre = torch.empty(self.tiles.count, dtype=torch.float64, device=shift.device)
        for t0, t1, s, e in self._chunks:
            values = shift[self.index[s:e]] - self._ysq(s, e) / eps
            centre[t0:t1] = _segment_max(values, self._counts[t0:t1], t1 - t0)
            self._b[-1, s:e] = (values - torch.repeat_interleave(centre[t0:t1], self._counts[t0:t1])) / self._unit
        out = torch.empty(self.shape[0], dtype=self.dtype, device=shift.device)
        for (i0, i1, j0, j1), direct in zip(self._blocks, self._direct):
            self._sum(self._block(i0, i1, j0, j1, eps), 1, direct, out[i0:i1])
        lse = out.double() * self._unit + torch.repeat_interleave(centre, self.tiles.sizes) - xsq
        return (-eps * lse).to(g.dtype)[None]

    def _sum(self, block, dim: int, direct: bool, out):
        """out <- log sum exp of ``block`` along ``dim``, all in units of ``_unit`` nats (``block`` is overwritten)."""
        if direct:
            torch.sum(block.exp2_() if self.p == 2 else block.exp_(), dim=dim, out=out)
            return out.log2_() if self.p == 2 else out.log_()
        return torch.logsumexp(block.mul_(self._unit), dim=dim, out=out).div_(self._unit)

    def columns(self, f, log_a, eps: float):
        """g_j = -eps log sum_kept a_i exp((f_i - C_ij) / eps), (1, m)."""
        lse = self._column_sums(f[0].double() / eps + log_a[0].double(), eps)
        return (-eps * lse).to(f.dtype)[None]

    def _column_sums(self, shift, eps: float, cost=None):
        """log sum_kept exp(shift_i - C_ij / eps) for each column, (m,) float64.  With ``cost`` ((m,) float64
        zeros), also adds the kept C_ij weighted by exp(shift_i - C_ij / eps) / sum_kept of them into it."""
        self._prepare(eps)
        xsq, one = self._quadratic(eps)
        values = shift - xsq
        centre = _segment_max(values, self.tiles.sizes, self.tiles.count)
        self._a[:, -1] = (values - torch.repeat_interleave(centre, self.tiles.sizes)) / self._unit
        self._b[-1] = one
        partial = self._scratch
        weighted = None if cost is None else torch.empty_like(partial)
        for (i0, i1, j0, j1), direct in zip(self._blocks, self._direct):
            block = self._block(i0, i1, j0, j1, eps)
            if cost is None:
                self._sum(block, 0, direct, partial[j0:j1])
                continue
            torch.logsumexp(block.mul_(self._unit), dim=0, out=partial[j0:j1])
            kernel = block.sub_(partial[j0:j1]).exp_()
            torch.sum(kernel.mul_(self._cost(i0, i1, j0, j1)), dim=0, out=weighted[j0:j1])
            partial[j0:j1] /= self._unit
        m = self.shape[1]
        top = torch.full((m,), -math.inf, dtype=torch.float64, device=shift.device)
        total = torch.zeros(m, dtype=torch.float64, device=shift.device)
        for step in ("max", "sum"):
            for t0, t1, s, e in self._chunks:
                index = self.index[s:e]
                v = partial[s:e].double() * self._unit + torch.repeat_interleave(centre[t0:t1], self._counts[t0:t1])
                v = v - self._ysq(s, e) / eps
                if step == "max":
                    top.scatter_reduce_(0, index.long(), v, reduce="amax")
                    continue
                w = (v - top[index]).exp()
                total.index_add_(0, index, w)
                if cost is not None:
                    cost.index_add_(0, index, w * weighted[s:e].double())
            top = torch.where(torch.isfinite(top), top, 0.0)
        if cost is not None:
            cost /= total
        return top + total.log()

    def _cost(self, i0, i1, j0, j1):
        """C_ij on one block (rows, kept columns), from the centred points."""
        x, y = self._xc[i0:i1], self._b[:-1, j0:j1].T
        return pair_cost(x, y, self.p, torch.zeros(x.shape[1], dtype=x.dtype, device=x.device))

    def plan_statistics(self, f, g, log_a, log_b, eps: float):
        """(<P, C>, column sums of P (m,)) on the kept pairs, in float64, for
        P_ij = a_i b_j exp((f_i + g_j - C_ij)/eps)."""
        cost = torch.zeros(self.shape[1], dtype=torch.float64, device=f.device)
        lse = self._column_sums(f[0].double() / eps + log_a[0].double(), eps, cost)
        column_log = g[0].double() / eps + log_b[0].double()
        sums = torch.where(torch.isfinite(column_log), (column_log + lse).exp(), 0.0)
        return (torch.where(sums > 0, sums * cost, 0.0)).sum(), sums
