"""``method="gaussian"``: W_2 between the Gaussians fitted to the samples (the Bures–Wasserstein closed
form), and the metric ``"gaussian_w2"``."""

from __future__ import annotations

from .. import _validation as V
from .. import gaussian, registry
from .._results import TransportResult
from ..exceptions import InputError
from .._backend import scalar_out
from ..problem import Problem, check_representable, overflow_checked
from ..registry import MethodSpec, register_method

_MEMORY = "O((n + m) d + d²); O(n m) for the nuclear form with n, m <= d"


def _solve_gaussian(problem: Problem, need_plan: bool, form: str = "auto", **options) -> TransportResult:
    V.reject_options(options, "gaussian")
    V.check_choice(form, gaussian.FORMS, "form")
    if problem.x is None or problem.cost is not None:
        raise InputError(
            'method="gaussian" fits a mean and a covariance to each sample of points; got a precomputed cost. '
            'Pass the points themselves, or use method="exact" for a cost matrix.'
        )
    if callable(problem.metric) or problem.metric != "euclidean":
        raise InputError(
            f'method="gaussian" is the closed form of W_2 for the euclidean ground metric; got '
            f'metric={problem.metric!r}. Pass metric="euclidean" (the default), or use method="exact".'
        )
    if problem.p != 2:
        raise InputError(
            f'method="gaussian" has a closed form for p=2 only; got p={problem.p:g}. Pass p=2, or use '
            'method="exact" or "sliced" for other orders.'
        )
    with overflow_checked():
        value = gaussian.samples_w2(problem.x, problem.y, problem.a, problem.b, form=form)
    cost = value * value
    check_representable(cost, problem.p)
    return TransportResult(value=scalar_out(value, problem.like), transport_cost=scalar_out(cost, problem.like),
                           plan=None, potentials=None, duality_gap=None, method="gaussian", p=problem.p)


register_method(MethodSpec(
    "gaussian", _solve_gaussian,
    "W_2 between the Gaussians fitted to the samples (means, ddof = 1 covariances; Bures closed form)",
    exact=False, gradients="values and weights", memory=_MEMORY))


def _gaussian_metric(x, y, u_weights=None, v_weights=None, **options):
    from ..api import wasserstein

    options = registry.ground_metric_options(options)
    return wasserstein(x, y, u_weights, v_weights, p=2, method="gaussian", **options)


def _preflight(x, y, options: dict) -> None:
    options = registry.ground_metric_options(options)
    if options.get("metric", "euclidean") != "euclidean":
        raise InputError(f"metric 'gaussian_w2' uses the euclidean ground metric; got ground_metric="
                         f"{options['metric']!r}. Drop ground_metric, or use metric='w2'.")
    V.check_choice(options.get("form", "auto"), gaussian.FORMS, "form")
    for values, name in ((x, "u_values"), (y, "v_values")):
        points = V.as_points(values, name)
        if points.shape[0] < 2:
            raise InputError(f"metric 'gaussian_w2' needs at least two points in {name} to estimate a covariance "
                             f"(ddof = 1); got {points.shape[0]}. Pass more points.")


registry.register_metric(registry.MetricSpec(
    "gaussian_w2", _gaussian_metric,
    "W_2 between the Gaussians fitted to the samples (Bures closed form; FID = its square)",
    inputs=("samples",), kind="distance", squared=False, symmetric=True, zero_on_identical=True,
    gradients="values and weights", memory=_MEMORY, fixed=("method", "p"), permutation="recompute",
    preflight=_preflight))
