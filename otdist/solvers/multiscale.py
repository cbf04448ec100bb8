r"""Multiscale Sinkhorn (``backend="multiscale"``): coarse-to-fine epsilon-scaling with kernel truncation.

For point clouds in d <= 3 with the cost C = |x - y|^p (Euclidean), after Schmitzer (2019,
"Stabilized sparse scaling algorithms for entropy regularized transport problems") and GeomLoss's
multiscale backend (Feydy, 2020, thesis Sec. 3.3.3):

1. Both clouds are clustered on one grid of cubic cells (:mod:`otdist.solvers._clusters`) whose side is
   about half the kernel's reach (TRUNCATION eps)^(1/p) (larger when that would give more than
   MAX_CLUSTERS cells or fewer than MIN_POINTS_PER_CLUSTER points per cell).
2. The epsilon-scaling stages whose epsilon exceeds side^p solve the problem between the clusters (their
   centroids and masses), densely (:func:`otdist.solvers.log_sinkhorn.solve`).
3. The coarse potentials are extended to the points by one c-transform (g_j = T_A(F)(y_j), f_i = T_B(G)(x_i)).
4. The remaining stages run on the points, on the pairs of clusters (I, J) kept by the truncation test
   max_I f + max_J g - min_{I x J} C > -tau eps (tau = ``truncation``), the minimum of C over a pair of
   clusters bounded below by the distance between their bounding boxes; each stage re-truncates
   with its warm start.
5. At the last epsilon the test is re-run with the returned potentials; pairs it adds are kept and the
   iteration resumes, until the kept set passes (at most MAX_REFINEMENTS times).

Guarantee.  With the returned (f, g), every pair (i, j) left out has kernel
exp((f_i + g_j - C_ij)/eps) <= exp(-tau), so the full (untruncated) plan P_ij = a_i b_j exp((f_i + g_j -
C_ij)/eps) puts mass delta <= exp(-tau) * (1 - kept weight) on the dropped pairs; :class:`Truncation`
computes the sharper bound delta <= sum_dropped A_I B_J exp((max_I f + max_J g - min C_IJ)/eps) from the
clusters, and the cost it carries, <= sum_dropped ... * max C_IJ.  The potentials converge on the kept
pairs (f = T_b(g) over the kept columns, L1 column error <= tol); on the full problem the same pair has
L1 marginal error <= tol + 2 delta, its semi-dual value differs from the kept one by at most eps delta, and
<P_eps, C> by at most the dropped cost bound.

Truncation pays when the kernel is narrow against the clouds (small eps, d <= 3): uniform points in the
unit cube at eps = 0.005, p = 2 keep a few percent of the pairs; at eps = 0.05 most pairs are kept and
the online backend is faster.  No gradients: the values are computed from detached points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..exceptions import InputError
from . import log_sinkhorn, online
from ._clusters import Clusters, TruncatedSoftmin, box_costs, grid_clusters, pair_cost
from .sinkhorn import STAGE_TOL, Potentials, epsilon_schedule
from .sinkhorn_ops import safe_log

#: Default tau: the pairs left out have kernel exp((f_i + g_j - C_ij) / eps) <= exp(-tau).
TRUNCATION = 10.0
#: Cell side = kernel reach (tau eps)^(1/p) / CELLS_PER_REACH ...
CELLS_PER_REACH = 2.0
#: ... widened (by CELL_GROWTH at a time) until the grid has at most MAX_CLUSTERS cells over the
#: clouds' box and at least MIN_POINTS_PER_CLUSTER points per cell on average.
MAX_CLUSTERS = 4096
MIN_POINTS_PER_CLUSTER = 16
CELL_GROWTH = 1.25
#: Times the kept set may grow after the last epsilon before the run reports itself unconverged.
MAX_REFINEMENTS = 4
#: Largest dimension of the points (a grid has 3^d neighbours per cell).
MAX_DIMENSION = 3


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


@dataclass
class Truncation:
    """The kept pairs of a multiscale solve, and the values of the plan computed on them.

    Every method takes potentials and weights in the caller's (unsorted) order, batched with B = 1.
    """

    x: Clusters
    y: Clusters
    softmin: TruncatedSoftmin
    lower: torch.Tensor  # (Kx, Ky) lower bound on C over each pair of clusters
    upper: torch.Tensor
    epsilon: float
    truncation: float
    refinements: int = 0

    @property
    def kept_fraction(self) -> float:
        """Share of the n x m pairs the c-transforms visit."""
        return self.softmin.kept_pairs / (self.softmin.shape[0] * self.softmin.shape[1])

    def _sorted(self, pot, a, b):
        f, g = self.x.sort(pot.f.detach()), self.y.sort(pot.g.detach())
        return f, g, safe_log(self.x.sort(a.detach())), safe_log(self.y.sort(b.detach()))

    def _exponent_bound(self, f, g):
        """(Kx, Ky) upper bound on (f_i + g_j - C_ij) / eps over each pair of clusters (sorted f, g)."""
        top_f, top_g = self.x.cluster_max(f[0].double()), self.y.cluster_max(g[0].double())
        return (top_f[:, None] + top_g[None, :] - self.lower) / self.epsilon

    def missing(self, f, g):
        """(Kx, Ky) pairs of clusters left out whose kernel could exceed exp(-tau) (sorted f, g)."""
        return (self._exponent_bound(f, g) > -self.truncation) & ~self.softmin.mask

    def dropped(self, pot):
        """(mass, cost) bounds on the full plan of ``pot`` over the pairs left out (module docstring)."""
        f, g = self.x.sort(pot.f.detach()), self.y.sort(pot.g.detach())
        weight = self.x.mass[:, None] * self.y.mass[None, :] * self._exponent_bound(f, g).exp()
        weight = torch.where(self.softmin.mask, 0.0, weight)
        return float(weight.sum()), float((weight * self.upper).sum())

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


def _extend(points, centroid, log_mass, potential, eps: float, p: float, dtype):
    """T(points) = -eps log sum_K mass_K exp((potential_K - C(c_K, points)) / eps), (1, len(points))."""
    centre = centroid.mean(dim=0).to(dtype)
    cost = online.BlockSoftmin(lambda i0, i1: pair_cost(points[i0:i1].to(dtype), centroid.to(dtype), p, centre)[None],
                               points.shape[0], centroid.shape[0], dtype)
    return cost.rows(potential.to(dtype), log_mass.to(dtype), eps)


def _keep(trunc_x, trunc_y, lower, f, g, eps: float, tau: float):
    """Pairs of clusters passing the truncation test, plus each cluster's best partner on either side."""
    bound = (trunc_x.cluster_max(f[0].double())[:, None] + trunc_y.cluster_max(g[0].double())[None, :] - lower) / eps
    mask = bound > -tau
    mask[torch.arange(bound.shape[0], device=bound.device), bound.argmax(dim=1)] = True
    mask[bound.argmax(dim=0), torch.arange(bound.shape[1], device=bound.device)] = True
    return mask


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
        side = cell_side(x0, y0, eps, p, truncation)
        origin = torch.minimum(x0.min(dim=0).values, y0.min(dim=0).values).double()
        cx, cy = grid_clusters(x0, a0, origin, side), grid_clusters(y0, b0, origin, side)
        lower, upper = box_costs(cx, cy, p)
        start = max(float(upper.max()), eps)
        schedule = epsilon_schedule(eps, start, scaling)
        coarse = [e for e in schedule[:-1] if e > side**p]
        fine = schedule[len(coarse):]
        coarse_eps = coarse[-1] if coarse else schedule[0]
        log_ma, log_mb = safe_log(cx.mass[None]), safe_log(cy.mass[None])
        centres = cx.centroid.mean(dim=0)
        between = online.BlockSoftmin(lambda i0, i1: pair_cost(cx.centroid[i0:i1], cy.centroid, p, centres)[None],
                                      cx.count, cy.count, torch.float64)
        pot = log_sinkhorn.solve(between, cx.mass[None], cy.mass[None], coarse_eps, scaling=scaling, eps_start=start,
                                 tol=max(tol, STAGE_TOL), max_iter=max_iter, symmetric=symmetric)
        n_iter = pot.n_iter
        g = _extend(cy.points, cx.centroid, log_ma, pot.f, coarse_eps, p, dtype)
        f = _extend(cx.points, cy.centroid, log_mb, pot.g, coarse_eps, p, dtype)
        a_s, b_s = cx.weights[None], cy.weights[None]
        for k, stage_eps in enumerate(fine):
            last = k == len(fine) - 1
            mask = _keep(cx, cy, lower, f, g, stage_eps, truncation)
            trunc = Truncation(cx, cy, TruncatedSoftmin(cx, cy, mask, p, dtype), lower, upper, stage_eps, truncation)
            budget = max(max_iter - n_iter, 1) if last else min(max(max_iter - n_iter, 1), log_sinkhorn.STAGE_ITERATIONS)
            pot = log_sinkhorn.solve(trunc.softmin, a_s, b_s, stage_eps, scaling=0.0, eps_start=stage_eps,
                                     tol=tol if last else max(tol, STAGE_TOL), max_iter=budget, symmetric=symmetric,
                                     progress=progress, g=g)
            f, g, n_iter = pot.f, pot.g, n_iter + pot.n_iter
        certified = not bool(trunc.missing(f, g).any())
        while not certified and trunc.refinements < MAX_REFINEMENTS:
            mask = trunc.softmin.mask | trunc.missing(f, g)
            trunc = replace(trunc, softmin=TruncatedSoftmin(cx, cy, mask, p, dtype), refinements=trunc.refinements + 1)
            pot = log_sinkhorn.solve(trunc.softmin, a_s, b_s, eps, scaling=0.0, eps_start=eps, tol=tol,
                                     max_iter=max(max_iter - n_iter, 1), symmetric=symmetric, progress=progress, g=g)
            f, g, n_iter = pot.f, pot.g, n_iter + pot.n_iter
            certified = not bool(trunc.missing(f, g).any())
        result = Potentials(cx.unsort(f), cy.unsort(g), eps, n_iter, pot.converged and certified, pot.marginal_error)
    return result, trunc
