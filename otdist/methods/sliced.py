"""``method="sliced"`` and ``method="max-sliced"``: 1-D transport along directions of R^d.

Both take random directions (``n_projections``, ``seed``) or the user's (``projections``, an (L, d)
array whose rows are normalised to unit length), and both report certified ``bounds`` on the exact
W_p: below, the largest 1-D W_p among the directions used; above, the cost in R^d of the 1-D optimal
coupling along the best direction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validation as V
from .. import registry
from .._backend import is_torch, scalar_out, to_numpy, to_torch
from .._results import TransportResult
from ..exceptions import InputError
from ..problem import Problem, overflow_checked, pth_root, transport_result
from ..registry import MethodSpec, register_method
from ..solvers import sliced

#: Default number of random directions of the sliced estimator.
DEFAULT_PROJECTIONS = 200
#: Default seed of the random directions.
DEFAULT_SEED = 0
_UNSET = object()


def _check_point_clouds(problem: Problem, method: str) -> None:
    if problem.x is None or problem.cost is not None or problem.metric != "euclidean":
        received = ("a precomputed cost" if problem.x is None or problem.cost is not None
                    else f"metric={problem.metric!r}")
        raise InputError(
            f'method="{method}" projects the points themselves and uses the euclidean ground metric; '
            f'got {received}. Pass point clouds with metric="euclidean", or use method="exact".'
        )


def _as_directions(projections, d: int, like):
    """The rows of ``projections`` (L, d) as unit columns (d, L), in the computation's array type."""
    theta = V.as_real_array(projections, "projections")
    if theta.ndim != 2 or theta.shape[0] == 0 or theta.shape[1] != d:
        raise InputError(
            f"projections must be a 2-D (L, d) array of L >= 1 directions in the samples' dimension d={d}; got "
            f"shape {tuple(theta.shape)}. Pass one direction per row (np.eye({d}) gives the coordinate axes)."
        )
    theta = to_torch(theta, like) if like is not None else to_numpy(theta)
    scale = abs(theta).amax(1, keepdim=True) if is_torch(theta) else np.abs(theta).max(1, keepdims=True)
    zero = np.flatnonzero(to_numpy(scale)[:, 0] == 0)
    if zero.size:
        raise InputError(
            f"every row of projections must be a non-zero direction; got {zero.size} zero row(s), the first at "
            f"index {zero[0]}. Drop the zero rows: a direction is normalised to unit length, and 0 has none."
        )
    theta = theta / scale  # entries in [-1, 1]: the norm neither overflows nor underflows
    norm = theta.norm(dim=1, keepdim=True) if is_torch(theta) else np.linalg.norm(theta, axis=1, keepdims=True)
    return (theta / norm).T


def _directions(problem: Problem, n_projections, seed, projections):
    """(d, L) unit directions, and whether they were drawn at random."""
    d = problem.x.shape[1]
    if projections is None:
        n_projections = DEFAULT_PROJECTIONS if n_projections is _UNSET else n_projections
        V.check_positive(n_projections, "n_projections", integer=True)
        seed = V.check_seed(DEFAULT_SEED if seed is _UNSET else seed)
        return sliced.directions(d, n_projections, seed), True
    given = [name for name, value in (("n_projections", n_projections), ("seed", seed)) if value is not _UNSET]
    if given:
        raise InputError(
            f"projections= gives the directions themselves, so it excludes {' and '.join(given)}; got both. "
            "Pass projections alone, or n_projections and seed alone for random directions."
        )
    return _as_directions(projections, d, problem.like), False


#: Units in the last place, per point, by which the bounds are widened for rounding.
ROUNDING_ULPS = 4


def _numpy_problem(problem: Problem):
    return to_numpy(problem.x), to_numpy(problem.y), to_numpy(problem.a), to_numpy(problem.b)


def _rounding(problem: Problem) -> float:
    """A bound on the rounding of a transport cost sum over n + m entries, each at most diam ** p (diam: the
    diagonal of the points' bounding box): the bounds are widened by it, so they hold in floating point."""
    x, y, _, _ = _numpy_problem(problem)
    extent = np.maximum(x.max(axis=0), y.max(axis=0)) - np.minimum(x.min(axis=0), y.min(axis=0))
    diameter = float(sliced.row_norms(extent[None, :])[0])  # np.linalg.norm squares, and underflows below 1e-154
    with overflow_checked():
        return ROUNDING_ULPS * (x.shape[0] + y.shape[0]) * np.finfo(np.float64).eps * diameter ** problem.p


def _certified(cost: float, slack: float, p: float, side: int) -> float:
    return pth_root(max(float(cost) + side * slack, 0.0), p)


def _upper_bound(problem: Problem, *thetas) -> float:
    """W_p's upper bound: the cheapest R^d cost of the 1-D optimal couplings along ``thetas``, rooted."""
    x, y, a, b = _numpy_problem(problem)
    with overflow_checked():
        cost = min(sliced.coupling_cost(x, y, a, b, problem.p, theta, uniform=problem.uniform) for theta in thetas)
    return _certified(cost, _rounding(problem), problem.p, +1)


def _solve_sliced(problem: Problem, need_plan: bool, n_projections=_UNSET, seed=_UNSET, projections=None,
                  progress: bool = False, **options) -> TransportResult:
    V.reject_options(options, "sliced")
    _check_point_clouds(problem, "sliced")
    theta, random = _directions(problem, n_projections, seed, projections)
    progress = V.check_flag(progress, "progress")
    with overflow_checked():
        estimate = sliced.solve(problem.x, problem.y, problem.a, problem.b, problem.p, theta, uniform=problem.uniform,
                                progress=progress)
    result = transport_result(problem, estimate.transport_cost, None, None, None, "sliced", n_iter=theta.shape[1])
    # Delta method: se(c ** (1/p)) = se(c) * c ** (1/p - 1) / p.
    cost, se = scalar_out(result.transport_cost), estimate.standard_error if random else None
    if se is not None and problem.p != 1:
        se = se * cost ** (1 / problem.p - 1) / problem.p if cost > 0 else 0.0
    per_projection = to_numpy(estimate.per_projection)
    best = int(np.argmax(per_projection))
    lower = _certified(per_projection[best], _rounding(problem), problem.p, -1)
    bounds = (lower, _upper_bound(problem, to_numpy(theta)[:, best]))
    return dataclasses.replace(result, standard_error=se, bounds=bounds)


def _solve_max_sliced(problem: Problem, need_plan: bool, n_projections=_UNSET, seed=_UNSET, projections=None,
                      **options) -> TransportResult:
    V.reject_options(options, "max-sliced")
    _check_point_clouds(problem, "max-sliced")
    theta, _ = _directions(problem, n_projections, seed, projections)
    theta = to_numpy(theta)
    x, y, a, b = _numpy_problem(problem)
    with overflow_checked():
        sampled = to_numpy(sliced.solve(x, y, a, b, problem.p, theta, uniform=problem.uniform).per_projection)
        start = theta[:, int(np.argmax(sampled))]
        search = sliced.max_direction(x, y, a, b, problem.p, start, uniform=problem.uniform)
        best = search.theta[:, None]
        if problem.like is not None:
            best = to_torch(best, problem.like)
        cost = sliced.solve(problem.x, problem.y, problem.a, problem.b, problem.p, best,
                            uniform=problem.uniform).transport_cost
    result = transport_result(problem, cost, None, None, None, "max-sliced", n_iter=search.n_steps,
                              converged=search.converged)
    bounds = (_certified(search.transport_cost, _rounding(problem), problem.p, -1),
              _upper_bound(problem, start, search.theta))
    return dataclasses.replace(result, bounds=bounds)


#: Working memory: the points as float64 arrays (a copy of other dtypes), one 1-D problem's O(n + m) arrays,
#: and blocks of projections or of coupled pairs within solvers.sliced.MEMORY_BUDGET.
SLICED_MEMORY = f"O(n + m) + blocks of {sliced.MEMORY_BUDGET >> 20} MB, beyond the points in float64"


register_method(MethodSpec("sliced", _solve_sliced, "sliced W_p: the mean of 1-D W_p^p over random directions",
                           exact=False, gradients="values and weights", memory=SLICED_MEMORY))
register_method(MethodSpec("max-sliced", _solve_max_sliced,
                           "max-sliced W_p: the largest 1-D W_p over directions (ascent from the best sampled one)",
                           exact=False, gradients="values and weights (at the maximising direction)",
                           memory=SLICED_MEMORY))


def _sliced_metric(method: str):
    def function(x, y, u_weights=None, v_weights=None, **options):
        from ..api import wasserstein

        return wasserstein(x, y, u_weights, v_weights, method=method, **options)

    return function


registry.register_metric(registry.MetricSpec(
    "sliced", _sliced_metric("sliced"), "sliced Wasserstein W_p (random projections, seeded)",
    gradients="values and weights", memory=SLICED_MEMORY, fixed=("method",)))
registry.register_metric(registry.MetricSpec(
    "max_sliced", _sliced_metric("max-sliced"), "max-sliced Wasserstein W_p (largest 1-D W_p over directions)",
    gradients="values and weights", memory=SLICED_MEMORY, fixed=("method",)))
