r"""Multiscale Sinkhorn (``backend="multiscale"``): coarse-to-fine epsilon-scaling with kernel truncation.

For point clouds in d <= 3 with the cost C = |x - y|^p (Euclidean), after Schmitzer (2019,
"Stabilized sparse scaling algorithms for entropy regularized transport problems") and GeomLoss's
multiscale backend (Feydy, 2020, thesis Sec. 3.3.3):

1. Both clouds are clustered on one grid of cubic cells (:func:`otdist.solvers._clusters.grid_clusters`)
   whose side is a third of the kernel's reach (TRUNCATION eps)^(1/p) (larger when that would give more
   than MAX_CLUSTERS cells or fewer than MIN_POINTS_PER_CLUSTER points per cell).
2. The epsilon-scaling stages whose epsilon exceeds side^p solve the problem between the cells (their
   centroids and masses), densely (:func:`otdist.solvers.log_sinkhorn.solve`): with p = 2 and tau = 10,
   side^p is about 1.1 eps, so that only the last stage or two run on the points.
3. The coarse potentials are extended to the points by one c-transform (g_j = T_A(F)(y_j), f_i = T_B(G)(x_i)).
4. The remaining stages run on the points.  x is cut into tiles of at most TILE_POINTS points (nodes of a
   Morton-code tree, :func:`~otdist.solvers._clusters.tree_clusters`), y into groups of at most
   GROUP_POINTS; a stage keeps the pairs (tile I, point j) that pass the truncation test
   max_I f + g_j - min_{i in I} C_ij > -tau eps (tau = ``truncation``), the minimum of C bounded below by
   the distance from I's bounding box to y_j.  The test is run on the pairs (tile, group) first (with
   max_J g and the distance between boxes) and on the points of the groups that pass; the c-transforms
   then run on the kept pairs (:class:`~otdist.solvers._clusters.TileSoftmin`).  Each stage re-truncates
   with its warm start.
5. At the last epsilon the test is re-run with the returned potentials; pairs it adds are kept and the
   iteration resumes, until the kept set passes (at most MAX_REFINEMENTS times).

Guarantee.  With the returned (f, g), every pair (i, j) left out has kernel exp((f_i + g_j - C_ij)/eps) <=
exp(-tau), so the full (untruncated) plan P_ij = a_i b_j exp((f_i + g_j - C_ij)/eps) puts mass delta <=
exp(-tau) * (1 - kept weight) on the dropped pairs; :class:`Truncation` computes the sharper bound
delta <= sum_dropped A_I b_j exp((max_I f + g_j - min C_Ij)/eps) (per tile and point of the groups that
pass the test, per tile and group, A_I B_J exp((max_I f + max_J g - min C_IJ)/eps), elsewhere), and the
cost it carries, the same sums weighted by max C.  The potentials converge on the kept pairs
(f = T_b(g) over the kept columns, L1 column error <= tol); on the full problem the same pair has L1
marginal error <= tol + 2 delta, its semi-dual value differs from the kept one by at most eps delta, and
<P_eps, C> by at most the dropped cost bound.

Truncation pays when the kernel is narrow against the clouds (small eps, d <= 3): uniform points in the
unit cube at eps = 0.005, p = 2 keep about 13% of the pairs at n = 1e5 (the pairs whose own kernel passes
the test are about 7%; the rest is the tiles' extent); at eps = 0.05 most pairs are kept and the online
backend is faster.  No gradients: the values are computed from detached points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..exceptions import InputError
from . import log_sinkhorn
from ._clusters import Clusters, TileSoftmin, grid_clusters, tree_clusters
from .sinkhorn import STAGE_TOL, Potentials, epsilon_schedule
from .sinkhorn_ops import safe_log

#: Default tau: the pairs left out have kernel exp((f_i + g_j - C_ij) / eps) <= exp(-tau).
TRUNCATION = 10.0
#: Cell side = kernel reach (tau eps)^(1/p) / CELLS_PER_REACH ...
CELLS_PER_REACH = 3.0
#: ... widened (by CELL_GROWTH at a time) until the grid has at most MAX_CLUSTERS cells over the
#: clouds' box and at least MIN_POINTS_PER_CLUSTER points per cell on average.
MAX_CLUSTERS = 4096
MIN_POINTS_PER_CLUSTER = 4
CELL_GROWTH = 1.25
#: Times the kept set may grow after the last epsilon before the run reports itself unconverged.
MAX_REFINEMENTS = 4
#: Largest dimension of the points.
MAX_DIMENSION = 3
#: The fine stages cut x into tiles of at most TILE_POINTS points (the rows of one block of the c-transforms;
#: smaller tiles keep fewer pairs, larger ones cost less per pair), CUDA_TILE_POINTS on a GPU (fewer launches) ...
TILE_POINTS = 128
CUDA_TILE_POINTS = 256
#: ... and y into groups of at most GROUP_POINTS points, on which the truncation test runs before its points.
GROUP_POINTS = 64
#: Pairs (tile, group) tested at once, and a bound on the (tile, point) pairs tested at once: SCAN_POINTS / m tiles.
SCAN_ENTRIES = 1 << 20
SCAN_POINTS = 1 << 19


def check_supported(x, y, p: float, metric) -> None:
    """Raise :class:`~otdist.exceptions.InputError` unless the problem is one the multiscale backend solves:
    one problem (B = 1) of points in d <= 3, Euclidean ground metric, C = |x - y|^p."""
    if not (isinstance(metric, str) and metric == "euclidean"):
        raise InputError(
            f'backend="multiscale" supports the Euclidean ground metric (C = |x - y|^p) only; got metric={metric!r}. '
            'Use metric="euclidean" (with p=2 for the squared distance), or backend="online".')
    if x is None or y is None:
        raise InputError('backend="multiscale" needs the points; got a cost matrix. '
                         'Pass the points x, y, or use backend="tensorized" with cost=...')
    if x.ndim != 3 or x.shape[0] != 1:
        raise InputError(
            f'backend="multiscale" solves one problem at a time; got a batch of {x.shape[0]} problems. '
            'Solve them one by one, or use backend="online" for batches.')
    if x.shape[-1] > MAX_DIMENSION:
        raise InputError(
            f'backend="multiscale" clusters points on a grid, for dimension d <= {MAX_DIMENSION}; got d = {x.shape[-1]}. '
            'Use backend="online" (or "keops") in higher dimension.')
    if not p > 0:
        raise InputError(f'backend="multiscale" needs an order p > 0; got p={p}. Pass p >= 1.')


def cell_side(x, y, eps: float, p: float, truncation: float) -> float:
    """The side of the grid's cells for clouds x (n, d), y (m, d) at ``eps`` (module docstring, step 1)."""
    both = torch.cat([x, y]).double()
    extent = (both.max(dim=0).values - both.min(dim=0).values).tolist()
    side = (truncation * eps) ** (1.0 / p) / CELLS_PER_REACH
    most = min(MAX_CLUSTERS, max(1, max(x.shape[0], y.shape[0]) // MIN_POINTS_PER_CLUSTER))
    while math.prod(math.floor(e / side) + 1 for e in extent) > most:
        side *= CELL_GROWTH
    return side


def _gaps(low, high, points, p: float):
    """(lower, upper) bounds on |x - y|^p for x in the boxes [low, high] and y in ``points`` (or boxes
    [points[0], points[1]]), broadcast over the leading dimensions, float64."""
    lo, hi = points if isinstance(points, tuple) else (points, points)
    gap = torch.maximum(lo - high, low - hi).clamp_min(0.0)
    span = torch.maximum(hi - low, high - lo)
    return torch.linalg.vector_norm(gap, dim=-1) ** p, torch.linalg.vector_norm(span, dim=-1) ** p


def _scan(tiles: Clusters, groups: Clusters, f, g, eps: float, p: float, tau: float):
    """The truncation test at (f, g) (sorted, float64), chunk of tiles by chunk of tiles.

    Yields (t0, t1, far, best, group, near) for tiles t0:t1: ``far`` = (mass, cost) bounds summed over the
    pairs (tile, group) that fail the test, ``best`` = (bound, tile) of the largest bound of each group over
    these tiles, ``group`` the best group of each tile, and ``near`` = (tile, point, exponent bound, cost
    bound) over the points of the groups that pass (tile-major, points ascending).
    """
    top_f, top_g = tiles.cluster_max(f), groups.cluster_max(g)
    y = groups.points.double()
    step = max(1, min(SCAN_ENTRIES // groups.count, SCAN_POINTS // groups.points.shape[0]))
    for t0 in range(0, tiles.count, step):
        t1 = min(t0 + step, tiles.count)
        low, high = tiles.low[t0:t1, None], tiles.high[t0:t1, None]
        lower, upper = _gaps(low, high, (groups.low[None], groups.high[None]), p)
        bound = (top_f[t0:t1, None] + top_g[None, :] - lower) / eps
        near = bound > -tau
        weight = torch.where(near, 0.0, tiles.mass[t0:t1, None] * groups.mass[None, :] * bound.exp())
        far = (weight.sum(), (weight * upper).sum())
        best = bound.max(dim=0)
        tt, gg = near.nonzero(as_tuple=True)
        sizes = groups.ends[gg] - groups.starts[gg]
        t = torch.repeat_interleave(tt + t0, sizes)
        j = torch.arange(t.shape[0], device=t.device) + torch.repeat_interleave(
            groups.starts[gg] - (torch.cumsum(sizes, 0) - sizes), sizes)
        lower, upper = _gaps(tiles.low[t], tiles.high[t], y[j], p)
        near = (t, j, (top_f[t] + g[j] - lower) / eps, upper)
        yield t0, t1, far, (best.values, best.indices + t0), bound.argmax(dim=1), near


def _kept(tiles: Clusters, groups: Clusters, f, g, eps: float, p: float, tau: float):
    """(offsets (T + 1,), columns (L,)) of the pairs (tile, point) passing the test at (f, g), every tile and
    point in at least one pair (its best partner added if none passes)."""
    m, device = groups.points.shape[0], f.device
    columns, counts = [], []
    best_tile = torch.full((groups.count,), -math.inf, dtype=torch.float64, device=device)
    owner = torch.zeros(groups.count, dtype=torch.long, device=device)
    best_group = []
    for t0, t1, _, (value, tile), group, (t, j, bound, _) in _scan(tiles, groups, f, g, eps, p, tau):
        keep = bound > -tau
        columns.append(j[keep].to(torch.int32 if m < 2**31 else torch.long))
        counts.append(torch.bincount(t[keep] - t0, minlength=t1 - t0))
        better = value > best_tile
        best_tile, owner = torch.where(better, value, best_tile), torch.where(better, tile, owner)
        best_group.append(group)
    index, counts, best_group = torch.cat(columns), torch.cat(counts), torch.cat(best_group)
    lonely_tiles = (counts == 0).nonzero()[:, 0]
    lonely_points = (torch.bincount(index.long(), minlength=m) == 0).nonzero()[:, 0]
    if lonely_tiles.numel() or lonely_points.numel():
        sizes = groups.sizes[best_group[lonely_tiles]]
        added_t = torch.cat([torch.repeat_interleave(lonely_tiles, sizes), owner[groups.labels[lonely_points]]])
        added_j = torch.cat([torch.arange(int(sizes.sum()), device=device) + torch.repeat_interleave(
            groups.starts[best_group[lonely_tiles]] - (torch.cumsum(sizes, 0) - sizes), sizes), lonely_points])
        keys = torch.cat([torch.repeat_interleave(torch.arange(tiles.count, device=device), counts) * m + index.long(),
                          added_t * m + added_j]).unique()
        index, counts = keys % m, torch.bincount(keys // m, minlength=tiles.count)
    offsets = torch.zeros(tiles.count + 1, dtype=torch.long, device=device)
    offsets[1:] = torch.cumsum(counts, 0)
    return offsets, index.to(columns[0].dtype)


@dataclass
class Truncation:
    """The kept pairs of a multiscale solve, and the values of the plan computed on them.

    Every method takes potentials and weights in the caller's (unsorted) order, batched with B = 1.
    """

    tiles: Clusters
    groups: Clusters
    softmin: TileSoftmin
    epsilon: float
    truncation: float
    p: float
    refinements: int = 0

    @property
    def kept_fraction(self) -> float:
        """Share of the n x m pairs the c-transforms visit."""
        return self.softmin.kept_pairs / (self.softmin.shape[0] * self.softmin.shape[1])

    def kept_mask(self):
        """(n, m) bool: the pairs kept, in the caller's order (builds an n x m array: small problems only)."""
        sm = self.softmin
        device = sm.index.device
        rows = torch.repeat_interleave(torch.arange(self.tiles.count, device=device), sm.offsets[1:] - sm.offsets[:-1])
        tile_mask = torch.zeros(self.tiles.count, sm.shape[1], dtype=torch.bool, device=device)
        tile_mask[rows, sm.index.long()] = True
        mask = torch.zeros(sm.shape, dtype=torch.bool, device=device)
        mask[self.tiles.perm[:, None], self.groups.perm[None, :]] = tile_mask[self.tiles.labels]
        return mask

    def _sorted(self, pot, a, b):
        f, g = self.tiles.sort(pot.f.detach()), self.groups.sort(pot.g.detach())
        return f, g, safe_log(self.tiles.sort(a.detach())), safe_log(self.groups.sort(b.detach()))

    def audit(self, f, g):
        """Pairs (tile, point) left out whose kernel could exceed exp(-tau) at (f, g) (sorted), and the
        (mass, cost) bounds on the full plan of (f, g) over all the pairs left out (module docstring)."""
        sm, m = self.softmin, self.softmin.shape[1]
        a, b = self.tiles.mass, self.groups.weights.double()
        missing, mass, cost = [], 0.0, 0.0
        for t0, t1, far, _, _, (t, j, bound, upper) in _scan(self.tiles, self.groups, f[0].double(), g[0].double(),
                                                             self.epsilon, self.p, self.truncation):
            s, e = int(sm.offsets[t0]), int(sm.offsets[t1])
            counts = sm.offsets[t0 + 1:t1 + 1] - sm.offsets[t0:t1]
            rows = torch.repeat_interleave(torch.arange(t0, t1, device=t.device), counts)
            kept = rows * m + sm.index[s:e].long()
            keys = t * m + j
            at = torch.searchsorted(kept, keys).clamp_max(max(kept.shape[0] - 1, 0))
            left_out = kept[at] != keys if kept.numel() else torch.ones_like(keys, dtype=torch.bool)
            weight = torch.where(left_out, a[t] * b[j] * bound.exp(), 0.0)
            mass, cost = mass + float(far[0] + weight.sum()), cost + float(far[1] + (weight * upper).sum())
            wrong = left_out & (bound > -self.truncation)
            missing.append(torch.stack([t[wrong], j[wrong]]))
        return torch.cat(missing, dim=1), mass, cost

    def missing(self, f, g):
        """(2, k): the pairs (tile, point) left out whose kernel could exceed exp(-tau) at (f, g) (sorted)."""
        return self.audit(f, g)[0]

    def dropped(self, pot):
        """(mass, cost) bounds on the full plan of ``pot`` over the pairs left out (module docstring)."""
        _, mass, cost = self.audit(self.tiles.sort(pot.f.detach()), self.groups.sort(pot.g.detach()))
        return mass, cost

    def entropic_cost(self, pot, a, b):
        """sum a f + sum b g with f = T_b(g) on the kept pairs, (1,) in the dtype of ``a`` (float64 sums)."""
        with torch.no_grad():
            _, g, log_a, log_b = self._sorted(pot, a, b)
            f = self.softmin.rows(g, log_b, self.epsilon)
            value = (log_a.exp().double() * f.double()).sum() + (log_b.exp().double() * g.double()).sum()
        return value.reshape(1).to(a.dtype)

    def transport_cost(self, pot, a, b):
        """<P_eps, C> on the kept pairs, (1,) in the dtype of ``a`` (float64 sums)."""
        with torch.no_grad():
            total, _ = self.softmin.plan_statistics(*self._sorted(pot, a, b), self.epsilon)
        return total.reshape(1).to(a.dtype)

    def marginal_error(self, pot, a, b):
        """L1 error of both marginals of the plan of ``pot`` on the kept pairs, (1,) float64."""
        with torch.no_grad():
            f, g, log_a, log_b = self._sorted(pot, a, b)
            _, columns = self.softmin.plan_statistics(f, g, log_a, log_b, self.epsilon)
            exact = self.softmin.rows(g, log_b, self.epsilon)
            rows = torch.where(torch.isfinite(log_a[0]), ((f[0] - exact[0]).double() / self.epsilon).exp(), 1.0)
            error = (log_a[0].exp().double() * (rows - 1).abs()).sum() + (columns - log_b[0].exp().double()).abs().sum()
        return error.reshape(1)


def _dense(rows: Clusters, columns, p: float, dtype):
    """The softmin between ``rows`` and every point of ``columns`` (K, d): one block per cluster of rows."""
    count, size = rows.count, columns.shape[0]
    offsets = torch.arange(count + 1, device=columns.device) * size
    index = torch.arange(size, dtype=torch.int32, device=columns.device).repeat(count)
    return TileSoftmin(rows, columns.to(dtype), offsets, index, p, dtype)


def _merge(offsets, index, add, m: int):
    """The kept lists (offsets, index) with the pairs ``add`` (2, k) (tile, point), none of them kept yet,
    each tile's columns ascending; merged chunk of tiles by chunk of tiles (no int64 copy of all the keys)."""
    count = offsets.shape[0] - 1
    counts = offsets[1:] - offsets[:-1]
    extra = torch.bincount(add[0], minlength=count)
    merged = torch.zeros_like(offsets)
    merged[1:] = torch.cumsum(counts + extra, 0)
    out = torch.empty(int(merged[-1]), dtype=index.dtype, device=index.device)
    added = (add[0] * m + add[1]).sort().values
    bounds = torch.searchsorted(offsets, torch.arange(0, int(offsets[-1]) + 1, SCAN_ENTRIES, device=offsets.device))
    firsts = sorted(set(bounds.tolist()) | {0, count})
    for t0, t1 in zip(firsts[:-1], firsts[1:]):
        s, e = int(offsets[t0]), int(offsets[t1])
        rows = torch.repeat_interleave(torch.arange(t0, t1, device=index.device), counts[t0:t1])
        new = added[(added >= t0 * m) & (added < t1 * m)]
        keys = torch.cat([rows * m + index[s:e].long(), new]).sort().values
        out[int(merged[t0]):int(merged[t1])] = (keys % m).to(index.dtype)
    return merged, out


def _truncate(tiles, groups, f, g, eps: float, p: float, tau: float, dtype):
    """The Truncation of the pairs passing the test at (f, g) (sorted)."""
    offsets, index = _kept(tiles, groups, f[0].double(), g[0].double(), eps, p, tau)
    softmin = TileSoftmin(tiles, groups.points.to(dtype), offsets, index, p, dtype)
    return Truncation(tiles, groups, softmin, eps, tau, p)


def solve(x, y, a, b, eps: float, *, p: float, tol: float, max_iter: int, scaling: float, progress: bool = False,
          symmetric: bool = False, truncation: float = TRUNCATION) -> tuple[Potentials, Truncation]:
    """Potentials of OT_eps(a, b) between x (1, n, d) and y (1, m, d), C = |x - y|^p, by the multiscale scheme.

    Parameters
    ----------
    x, y, a, b
        One problem, batched (B = 1); ``a``, ``b`` normalised; d <= 3 (:func:`check_supported`).
    eps, p, tol, max_iter, scaling, progress, symmetric
        As :func:`otdist.solvers.log_sinkhorn.solve`; ``scaling`` also sets the coarse stages.
    truncation
        tau: the pairs left out have kernel at most exp(-tau) at the returned potentials.

    Returns
    -------
    (Potentials, Truncation)
        The potentials at full resolution in the caller's order (f = T_b(g) on the kept pairs,
        ``converged`` when the L1 column error on the kept pairs is <= tol and the truncation test
        holds), and the kept set, which evaluates the values without an n x m pass.
    """
    with torch.no_grad():
        x0, y0, a0, b0 = (t.detach()[0] for t in (x, y, a, b))
        dtype = x0.dtype
        low = torch.minimum(x0.min(dim=0).values, y0.min(dim=0).values).double()
        high = torch.maximum(x0.max(dim=0).values, y0.max(dim=0).values).double()
        scale = max(float((high - low).max()), torch.finfo(torch.float64).tiny)
        tile_points = CUDA_TILE_POINTS if x0.device.type == "cuda" else TILE_POINTS
        tiles, groups = tree_clusters(x0, a0, low, scale, tile_points), tree_clusters(y0, b0, low, scale, GROUP_POINTS)
        side = cell_side(x0, y0, eps, p, truncation)
        cx, cy = grid_clusters(x0, a0, low, side), grid_clusters(y0, b0, low, side)
        start = max(float((high - low).square().sum().sqrt()) ** p, eps)
        schedule = epsilon_schedule(eps, start, scaling)
        coarse = [e for e in schedule[:-1] if e > side**p]
        fine = schedule[len(coarse):]
        coarse_eps = coarse[-1] if coarse else schedule[0]
        coarse_rows = tree_clusters(cx.centroid, cx.mass, low, scale, tile_points)
        pot = log_sinkhorn.solve(_dense(coarse_rows, cy.centroid, p, torch.float64), coarse_rows.weights[None],
                                 cy.mass[None], coarse_eps, scaling=scaling, eps_start=start, tol=max(tol, STAGE_TOL),
                                 max_iter=max_iter, symmetric=symmetric)
        n_iter = pot.n_iter
        coarse_f, coarse_g = coarse_rows.unsort(pot.f).to(dtype), pot.g.to(dtype)
        g = _dense(groups, cx.centroid, p, dtype).rows(coarse_f, safe_log(cx.mass[None]).to(dtype), coarse_eps)
        f = _dense(tiles, cy.centroid, p, dtype).rows(coarse_g, safe_log(cy.mass[None]).to(dtype), coarse_eps)
        a_s, b_s = tiles.weights[None], groups.weights[None]
        trunc = None
        for k, stage_eps in enumerate(fine):
            last = k == len(fine) - 1
            trunc = None
            trunc = _truncate(tiles, groups, f, g, stage_eps, p, truncation, dtype)
            left = max(max_iter - n_iter, 1)
            budget = left if last else min(left, log_sinkhorn.STAGE_ITERATIONS)
            pot = log_sinkhorn.solve(trunc.softmin, a_s, b_s, stage_eps, scaling=0.0, eps_start=stage_eps,
                                     tol=tol if last else max(tol, STAGE_TOL), max_iter=budget, symmetric=symmetric,
                                     progress=progress, g=g)
            f, g, n_iter = pot.f, pot.g, n_iter + pot.n_iter
        missing = trunc.missing(f, g)
        while missing.numel() and trunc.refinements < MAX_REFINEMENTS:
            kept, refinements = (trunc.softmin.offsets, trunc.softmin.index), trunc.refinements + 1
            trunc = None  # the old blocks are freed before the new ones are built
            merged = _merge(*kept, missing, groups.points.shape[0])
            kept = None
            trunc = Truncation(tiles, groups, TileSoftmin(tiles, groups.points.to(dtype), *merged, p, dtype), eps,
                               truncation, p, refinements)
            pot = log_sinkhorn.solve(trunc.softmin, a_s, b_s, eps, scaling=0.0, eps_start=eps, tol=tol,
                                     max_iter=max(max_iter - n_iter, 1), symmetric=symmetric, progress=progress, g=g)
            f, g, n_iter = pot.f, pot.g, n_iter + pot.n_iter
            missing = trunc.missing(f, g)
        certified = not missing.numel()
        result = Potentials(tiles.unsort(f), groups.unsort(g), eps, n_iter, pot.converged and certified,
                            pot.marginal_error)
    return result, trunc
