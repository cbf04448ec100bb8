"""``method="sliced"``: the sliced Wasserstein distance over random directions."""

from __future__ import annotations

import dataclasses

from .. import _validation as V
from .._backend import scalar_out
from .._results import TransportResult
from ..exceptions import InputError
from ..problem import Problem, overflow_checked, transport_result
from .. import registry
from ..registry import MethodSpec, register_method
from ..solvers import sliced

#: Default number of random directions of the sliced estimator.
DEFAULT_PROJECTIONS = 200


def _solve_sliced(problem: Problem, need_plan: bool, n_projections: int = DEFAULT_PROJECTIONS, seed: int | None = 0,
                  progress: bool = False, **options) -> TransportResult:
    V.reject_options(options, "sliced")
    V.check_positive(n_projections, "n_projections", integer=True)
    seed = V.check_seed(seed)
    progress = V.check_flag(progress, "progress")
    if problem.x is None or problem.cost is not None or problem.metric != "euclidean":
        raise InputError(
            'method="sliced" projects the points themselves and uses the euclidean ground metric; '
            f"got {'a precomputed cost' if problem.x is None or problem.cost is not None else f'metric={problem.metric!r}'}. "
            'Pass point clouds with metric="euclidean", or use method="exact".'
        )
    theta = sliced.directions(problem.x.shape[1], n_projections, seed)
    with overflow_checked():
        estimate = sliced.solve(problem.x, problem.y, problem.a, problem.b, problem.p, theta, uniform=problem.uniform,
                                progress=progress)
    result = transport_result(problem, estimate.transport_cost, None, None, None, "sliced", n_iter=n_projections)
    # Delta method: se(c ** (1/p)) = se(c) * c ** (1/p - 1) / p.
    cost, se = scalar_out(result.transport_cost), estimate.standard_error
    if se is not None and problem.p != 1:
        se = se * cost ** (1 / problem.p - 1) / problem.p if cost > 0 else 0.0
    return dataclasses.replace(result, standard_error=se)


register_method(MethodSpec("sliced", _solve_sliced, "sliced W_p: the mean of 1-D W_p^p over random directions",
                           exact=False, gradients="values and weights", memory="O((n + m) n_projections)"))


def _sliced_metric(x, y, u_weights=None, v_weights=None, **options):
    from ..api import wasserstein

    return wasserstein(x, y, u_weights, v_weights, method="sliced", **options)


registry.register_metric(registry.MetricSpec(
    "sliced", _sliced_metric, "sliced Wasserstein W_p (random projections, seeded)", gradients="values and weights",
    memory="O((n + m) n_projections)", fixed=("method",)))
