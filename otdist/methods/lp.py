"""The exact methods on a cost matrix: ``"exact"`` (network simplex), ``"primal"`` and ``"dual"`` (HiGHS)."""

from __future__ import annotations

from typing import Callable

from .. import _validation as V
from .._backend import to_numpy, to_torch
from .._results import TransportResult
from ..cost import DEFAULT_MAX_SIZE, ground_cost
from ..problem import Problem, transport_result
from ..registry import MethodSpec, register_method
from ..solvers import lp_dual, lp_primal, network_simplex

#: Default n*m limit of the LP solvers (HiGHS on a million arcs takes tens of seconds).
LP_MAX_SIZE = 1_000_000
CHEAPER_METHODS = '"sinkhorn", "sliced" or "neural"'


def _lp_solver(name: str, solve: Callable, allowed: tuple[str, ...], default_limit: int):
    def run(problem: Problem, need_plan: bool, **options) -> TransportResult:
        limit = options.pop("max_size", default_limit)
        V.check_positive(limit, "max_size", integer=True)
        V.reject_options({k: v for k, v in options.items() if k not in allowed}, name)
        _check_lp_options(options)
        n, m = problem.shape
        V.check_size(n, m, limit, name, CHEAPER_METHODS)
        solution = solve(to_numpy(problem.a), to_numpy(problem.b), problem.numpy_cost(), **options)
        gap = solution.primal - solution.dual
        cost = _differentiable_cost(problem, solution) if problem.like is not None else solution.primal
        return transport_result(problem, cost, solution.plan, (solution.f, solution.g), gap, name,
                       n_iter=solution.n_iter, converged=solution.converged)

    return run


def _check_lp_options(options: dict) -> None:
    for name in ("max_iter", "max_rounds"):
        if name in options:
            options[name] = V.check_positive(options[name], name, integer=True)
    if "progress" in options:
        options["progress"] = V.check_flag(options["progress"], "progress")
    if "generation" in options:
        options["generation"] = V.check_flag(
            options["generation"], "generation", " (True: arc generation; False: the full LP at once)")


def _differentiable_cost(problem: Problem, solution):
    """<P*, C(x, y)> + <f, a> + <g, b> with P*, f, g fixed: by the envelope theorem its
    gradients in the points and weights are those of the optimal transport cost."""
    like = problem.like
    plan = to_torch(solution.plan, like)
    if problem.cost is not None:
        cost = problem.cost
    else:
        cost = ground_cost(problem.x, problem.y, problem.p, problem.metric, minkowski_p=problem.minkowski_p)
    f, g = to_torch(solution.f, like), to_torch(solution.g, like)
    a, b = problem.a, problem.b
    return (plan * cost).sum() + (f * (a - a.detach())).sum() + (g * (b - b.detach())).sum()


_GRADIENTS = "values and weights (through the optimal plan and dual potentials)"
register_method(MethodSpec("exact", _lp_solver("exact", network_simplex.solve, ("max_iter",), DEFAULT_MAX_SIZE),
                           "network simplex on the full cost matrix", exact=True, gradients=_GRADIENTS,
                           memory="O(nm)"))
register_method(MethodSpec("primal", _lp_solver("primal", lp_primal.solve, ("generation", "max_rounds", "progress"),
                                                LP_MAX_SIZE),
                           "the primal linear program with HiGHS (arc generation)", exact=True, gradients=_GRADIENTS,
                           memory="O(nm)"))
register_method(MethodSpec("dual", _lp_solver("dual", lp_dual.solve, ("generation", "max_rounds", "progress"),
                                              LP_MAX_SIZE),
                           "the dual linear program with HiGHS (cutting planes)", exact=True, gradients=_GRADIENTS,
                           memory="O(nm)"))
