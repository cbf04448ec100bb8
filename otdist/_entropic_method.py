"""``method="sinkhorn"`` inside :func:`otdist.wasserstein` / :func:`otdist.transport`.

The result carries certified bounds on the exact W_p (:mod:`otdist.solvers.sinkhorn_bounds`):
``bounds = (lower, upper)`` with the p-th roots taken and the lower bound clipped at 0 for point
clouds; on the transport cost itself (no root, no clipping) for a given cost matrix.
"""

from __future__ import annotations

from . import _validation as V
from ._backend import array_out, scalar_out
from ._results import TransportResult
from .problem import Problem

OPTIONS = ("epsilon", "relative", "scaling", "tol", "max_iter", "max_size", "backend", "on_unconverged", "progress")


def sinkhorn_method(problem: Problem, need_plan: bool, **options) -> TransportResult:
    """Solve ``problem`` with :func:`otdist.sinkhorn` and report it as a :class:`TransportResult`."""
    from .entropic import sinkhorn

    V.reject_options({k: v for k, v in options.items() if k not in OPTIONS}, "sinkhorn")
    if problem.cost is not None:
        result = sinkhorn(None, None, problem.a, problem.b, cost=problem.cost, **options)
    else:
        result = sinkhorn(problem.x, problem.y, problem.a, problem.b, p=problem.p, metric=problem.metric,
                          minkowski_p=problem.minkowski_p, **options)
    like = problem.like

    def array(t):
        return t if like is None else array_out(t, like)

    return TransportResult(
        value=scalar_out(result.value, like),
        transport_cost=scalar_out(result.transport_cost, like),
        plan=array(result.plan()) if need_plan else None,
        potentials=(array(result.potentials[0]), array(result.potentials[1])),
        duality_gap=None,
        method="sinkhorn",
        p=problem.p,
        n_iter=result.n_iter,
        converged=result.converged,
        bounds=_bounds(problem, result),
        extra={"entropic_cost": scalar_out(result.entropic_cost, like), "marginal_error": float(result.marginal_error),
               "epsilon": result.epsilon},
    )


def _bounds(problem: Problem, result) -> tuple[float, float] | None:
    """Certified (lower, upper) on the exact W_p (or, for a given cost, on the exact transport cost); from
    the stored cost, or block of rows by block of rows when the cost is rebuilt from the points; None for
    the multiscale backend."""
    import torch

    from .solvers import sinkhorn_bounds, sinkhorn_ops

    pot, geometry, _ = result._state
    if pot.truncation is not None:  # multiscale: four passes over every pair would cost more than the solve
        return None
    a, b = geometry.inputs.a.detach(), geometry.inputs.b.detach()
    with torch.no_grad():
        if geometry.dense is None:
            lower, upper = sinkhorn_bounds.streamed_bounds(lambda i0, i1: geometry.rows(i0, i1)[0], *geometry.shape,
                                                           pot.f[0], pot.g[0], a[0], b[0], pot.epsilon)
        else:
            cost = geometry.dense.detach()
            plan = sinkhorn_ops.log_plan(pot, cost, a, b).exp()
            lower, upper = sinkhorn_bounds.bounds(plan[0], pot.f[0], cost[0], a[0], b[0])
    if problem.cost is not None:
        return lower, upper
    return max(lower, 0.0) ** (1.0 / problem.p), max(upper, 0.0) ** (1.0 / problem.p)
