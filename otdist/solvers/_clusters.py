r"""Grid clusters of a point cloud and the block-sparse c-transforms on the pairs of clusters kept.

The points of each cloud are put into the cubic cells of one grid (side ``side``) and sorted by cell, so
that every cluster is a contiguous range of the sorted points.  Each cluster records its weight, its
centroid and the bounding box of its points; the boxes give, for a pair of clusters (I, J),

.. math:: \underline{C}_{IJ} \le C(x_i, y_j) \le \overline{C}_{IJ}, \qquad i \in I,\ j \in J,

with ``C = |x - y|^p`` (the distance between the boxes, and the largest distance between their corners).

:class:`TruncatedSoftmin` evaluates the c-transforms of :mod:`otdist.solvers.log_sinkhorn` on the pairs
of points whose clusters are kept (a boolean Kx x Ky mask): for each cluster of rows, the columns of
its kept clusters are gathered once (their indices stored) and the block |I| x (kept columns) is
rebuilt from the points at every pass, centred on the cluster's centroid so that a float32 squared
distance keeps its relative precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Consecutive clusters of rows share one block (the union of their kept columns) while it holds at most
#: this many entries; a larger cluster is a block of its own, whose kept columns are exactly its own.
GROUP_ENTRIES = 1 << 16
#: The same on a GPU, where a block costs a few kernel launches whatever its size: fewer, larger blocks
#: (the masked pairs of a block cost less there than the launches they save).
CUDA_GROUP_ENTRIES = 1 << 22
#: Pairs of clusters whose box bounds are computed at once (each a d-vector of float64).
BOUND_ENTRIES = 1 << 20


@dataclass(frozen=True)
class Clusters:
    """One cloud sorted by grid cell: ``points``/``weights`` sorted, ``perm`` (sorted k = original perm[k]),
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
    def labels(self) -> torch.Tensor:
        """The cluster of each sorted point."""
        return torch.repeat_interleave(torch.arange(self.count, device=self.ends.device), self.ends - self.starts)

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


def grid_clusters(points, weights, origin, side: float) -> Clusters:
    """Cluster (n, d) ``points`` with (n,) ``weights`` into the cells of side ``side`` of the grid at ``origin``."""
    cells = torch.floor((points.double() - origin) / side).long()
    extent = cells.max(dim=0).values + 1
    label = torch.zeros(points.shape[0], dtype=torch.long, device=points.device)
    for k in range(points.shape[1]):
        label = label * int(extent[k]) + cells[:, k]
    label, perm = torch.sort(label, stable=True)
    _, counts = torch.unique_consecutive(label, return_counts=True)
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


def box_costs(rows: Clusters, cols: Clusters, p: float):
    """(lower, upper) bounds (Kx, Ky) on |x_i - y_j|^p over each pair of clusters, from their boxes (float64)."""
    lower = torch.empty(rows.count, cols.count, dtype=torch.float64, device=rows.low.device)
    upper = torch.empty_like(lower)
    step = max(1, BOUND_ENTRIES // max(cols.count, 1))
    for i0 in range(0, rows.count, step):
        low, high = rows.low[i0:i0 + step, None], rows.high[i0:i0 + step, None]
        gap = torch.maximum(cols.low[None] - high, low - cols.high[None]).clamp_min(0.0)
        span = torch.maximum(cols.high[None] - low, high - cols.low[None])
        lower[i0:i0 + step] = gap.square().sum(dim=2).sqrt() ** p
        upper[i0:i0 + step] = span.square().sum(dim=2).sqrt() ** p
    return lower, upper


def pair_cost(x, y, p: float, centre):
    """|x_i - y_j|^p (len(x), len(y)), both shifted by ``centre`` first (relative precision of the squares)."""
    x, y = x - centre, y - centre
    if p == 2:
        sq = (x.square().sum(dim=1)[:, None] + y.square().sum(dim=1)[None, :]).addmm_(x, y.T, alpha=-2.0)
        return sq.clamp_min_(0.0)
    return torch.cdist(x[None], y[None], compute_mode="donot_use_mm_for_euclid_dist")[0] ** p


class _Side:
    """The c-transform over one side: for each block of clusters of ``outer``, the kept points of ``inner``."""

    def __init__(self, outer: Clusters, inner: Clusters, mask, p: float, dtype, blocks=None):
        self.p, self.dtype = p, dtype
        self.outer_points, self.inner_points = outer.points.to(dtype), inner.points.to(dtype)
        self.centroid = outer.centroid.to(dtype)
        if blocks is not None:
            self.blocks = blocks
            return
        sizes = (inner.ends - inner.starts)
        self.blocks = []
        width = (mask.double() @ sizes.double()).long().tolist()
        counts = (outer.ends - outer.starts).tolist()
        group = CUDA_GROUP_ENTRIES if mask.device.type == "cuda" else GROUP_ENTRIES
        k = 0
        while k < outer.count:
            first, rows, widest = k, 0, 0
            while k < outer.count and (k == first or (rows + counts[k]) * max(widest, width[k]) <= group):
                rows, widest, k = rows + counts[k], max(widest, width[k]), k + 1
            self.blocks.append(self._block(outer, inner, mask, first, k))

    @staticmethod
    def _block(outer, inner, mask, first, last):
        """(row start, row end, column indices (L,), kept (rows, L) bool or None, centre index)."""
        kept = mask[first:last].any(dim=0).nonzero()[:, 0]
        device = mask.device
        sizes = inner.ends[kept] - inner.starts[kept]
        offsets = torch.repeat_interleave(inner.starts[kept] - (torch.cumsum(sizes, 0) - sizes), sizes)
        index = torch.arange(offsets.shape[0], device=device) + offsets  # the points of the kept clusters, in order
        inner_label = torch.repeat_interleave(kept, sizes)
        outer_label = torch.repeat_interleave(torch.arange(first, last, device=device),
                                              outer.ends[first:last] - outer.starts[first:last])
        allowed = mask[outer_label][:, inner_label]
        return int(outer.starts[first]), int(outer.ends[last - 1]), index.int(), None if bool(allowed.all()) else allowed, \
            (first + last - 1) // 2

    def softmin(self, shift, eps: float):
        """-eps log sum_kept exp(shift_j - C_ij / eps), shape (n_outer,) for (n_inner,) ``shift``."""
        out = torch.empty(self.outer_points.shape[0], dtype=self.dtype, device=self.outer_points.device)
        for i0, i1, index, allowed, centre in self.blocks:
            block = self.exponents(i0, i1, index, allowed, centre, shift, eps)
            out[i0:i1] = torch.logsumexp(block, dim=1)
        return -eps * out

    def exponents(self, i0, i1, index, allowed, centre, shift, eps: float, with_cost: bool = False):
        cost = pair_cost(self.outer_points[i0:i1], self.inner_points[index], self.p, self.centroid[centre])
        block = torch.sub(shift[index][None, :], cost, alpha=1.0 / eps)
        if allowed is not None:
            block.masked_fill_(~allowed, -math.inf)
        return (block, cost) if with_cost else block

    @property
    def kept_pairs(self) -> int:
        return sum((i1 - i0) * index.numel() if allowed is None else int(allowed.sum())
                   for i0, i1, index, allowed, _ in self.blocks)


class TruncatedSoftmin:
    """The softmin protocol of :mod:`otdist.solvers.log_sinkhorn` on the kept pairs of clusters (B = 1).

    ``rows(g, log_b, eps)`` and ``columns(f, log_a, eps)`` take and return potentials in the sorted
    orders of ``x`` and ``y``; ``mask`` (Kx, Ky) marks the pairs of clusters kept.
    """

    def __init__(self, x: Clusters, y: Clusters, mask, p: float, dtype, _blocks=(None, None)):
        self.x, self.y, self.mask, self.p, self.dtype = x, y, mask, p, dtype
        self.shape = (x.points.shape[0], y.points.shape[0])
        self._rows = _Side(x, y, mask, p, dtype, _blocks[0])
        self._columns = _Side(y, x, mask.T, p, dtype, _blocks[1])

    @property
    def kept_pairs(self) -> int:
        return self._rows.kept_pairs

    def rows(self, g, log_b, eps: float):
        return self._rows.softmin((g[0] / eps + log_b[0]).to(self.dtype), eps)[None]

    def columns(self, f, log_a, eps: float):
        return self._columns.softmin((f[0] / eps + log_a[0]).to(self.dtype), eps)[None]

    def lowered(self):
        """A float32 copy for the first iterations of a float64 problem."""
        if self.dtype != torch.float64:
            return None
        return TruncatedSoftmin(self.x, self.y, self.mask, self.p, torch.float32, (self._rows.blocks, self._columns.blocks))

    def plan_statistics(self, f, g, log_a, log_b, eps: float):
        """(<P, C>, column sums of P (m,)) on the kept pairs, in float64, for P_ij = a_i b_j exp((f_i + g_j - C_ij)/eps)."""
        side = self._columns
        shift = (f[0] / eps + log_a[0]).to(self.dtype)
        column_log = (g[0] / eps + log_b[0]).double()
        device = self.x.points.device
        total = torch.zeros((), dtype=torch.float64, device=device)
        sums = torch.zeros(self.shape[1], dtype=torch.float64, device=device)
        for j0, j1, index, allowed, centre in side.blocks:
            block, cost = side.exponents(j0, j1, index, allowed, centre, shift, eps, with_cost=True)
            top = block.max(dim=1, keepdim=True).values.clamp_min(torch.finfo(self.dtype).min)
            kernel = (block - top).exp().double()
            scale = (column_log[j0:j1] + top[:, 0].double()).exp()
            scale = torch.where(torch.isfinite(column_log[j0:j1]), scale, 0.0)
            sums[j0:j1] = scale * kernel.sum(dim=1)
            total += (scale * (kernel * cost.double()).sum(dim=1)).sum()
        return total, sums
