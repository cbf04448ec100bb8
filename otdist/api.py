"""The public distance API: validation, then dispatch to a solver, then output conversion."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from . import _validation as V
from ._backend import array_out, is_torch, output_dtype, scalar_out, to_numpy, to_torch
from ._results import TransportResult
from .cost import DEFAULT_MAX_SIZE, Metric, ground_cost
from .divergences.discrete import LOG2
from .exceptions import InputError
from .information import js, js_distance, kl
from .problem import Problem, check_representable, make_problem, overflow_checked, pth_root
from .solvers import exact_1d, lp_dual, lp_primal, network_simplex, sliced


#: Default n*m limit of the LP solvers (HiGHS on a million arcs takes tens of seconds).
LP_MAX_SIZE = 1_000_000
CHEAPER_METHODS = '"sinkhorn", "sliced" or "neural"'


# ----------------------------------------------------------------------------- solvers


def _solve_1d(problem: Problem, need_plan: bool, **options) -> TransportResult:
    V.reject_options(options, "1d")
    if problem.x is None or problem.x.shape[1] != 1 or problem.cost is not None:
        d = "a precomputed cost" if problem.x is None or problem.cost is not None else f"d={problem.x.shape[1]}"
        raise InputError(
            f'method="1d" needs 1-D values (or (n, 1) arrays) and the ground metric |x - y|; got {d}. '
            'Use method="exact" for point clouds or precomputed costs, or "sliced" for a cheap n-D proxy.'
        )
    if callable(problem.metric) or problem.metric not in ("euclidean", "cityblock", "minkowski", "chebyshev"):
        raise InputError(
            f'method="1d" uses the ground metric |x - y|; got metric={problem.metric!r}. '
            'Use p=2 for quadratic costs, or method="exact" for other metrics.'
        )
    u, v = problem.x[:, 0], problem.y[:, 0]
    if not need_plan:
        with overflow_checked():
            cost = exact_1d.transport_cost(u, v, problem.a, problem.b, problem.p, uniform=problem.uniform)
        return _result(problem, cost, None, None, None, "1d")
    with overflow_checked():
        coupling = exact_1d.monotone_coupling(u, v, problem.a, problem.b, problem.p)
    plan = _sparse_plan(coupling, problem)
    return _result(problem, coupling.transport_cost, plan, None, None, "1d")


def _sparse_plan(coupling: exact_1d.Monotone1D, problem: Problem):
    shape = (problem.x.shape[0], problem.y.shape[0])
    if problem.like is not None:
        import torch

        indices = torch.stack([coupling.u_index, coupling.v_index])
        mass = coupling.mass.to(output_dtype(problem.like))
        return torch.sparse_coo_tensor(indices, mass, shape, check_invariants=True).coalesce()
    dtype = np.promote_types(problem.out_dtype, np.float32)  # scipy.sparse has no float16
    plan = sp.coo_matrix((coupling.mass.astype(dtype), (coupling.u_index, coupling.v_index)), shape=shape)
    return plan.tocsr()


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
        return _result(problem, cost, solution.plan, (solution.f, solution.g), gap, name,
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


def _result(problem: Problem, cost, plan, potentials, gap, method, *, n_iter=None, converged=True):
    """The result object; ``value`` is W_p = cost ** (1/p), or the transport cost itself when the user gave
    the cost matrix (it may be negative, and it is not a p-th power of a distance)."""
    like = problem.like
    check_representable(cost, problem.p)
    value = cost if problem.p == 1 or problem.cost is not None else pth_root(cost, problem.p)
    if potentials is not None:
        potentials = tuple(array_out(f, like, problem.out_dtype) for f in potentials)
    if plan is not None and not sp.issparse(plan) and not (is_torch(plan) and plan.is_sparse):
        plan = array_out(plan, like, problem.out_dtype)
    return TransportResult(
        value=scalar_out(value, like),
        transport_cost=scalar_out(cost, like),
        plan=plan,
        potentials=potentials,
        duality_gap=None if gap is None else float(gap),
        method=method,
        p=problem.p,
        n_iter=n_iter,
        converged=converged,
    )


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
    result = _result(problem, estimate.transport_cost, None, None, None, "sliced", n_iter=n_projections)
    # Delta method: se(c ** (1/p)) = se(c) * c ** (1/p - 1) / p.
    cost, se = scalar_out(result.transport_cost), estimate.standard_error
    if se is not None and problem.p != 1:
        se = se * cost ** (1 / problem.p - 1) / problem.p if cost > 0 else 0.0
    return dataclasses.replace(result, standard_error=se)


def _solve_neural(problem: Problem, need_plan: bool, **options) -> TransportResult:
    if problem.x is None or problem.cost is not None or problem.metric != "euclidean" or problem.p != 1:
        raise InputError(
            'method="neural" estimates W1 with the euclidean ground metric from samples (the Kantorovich-Rubinstein '
            "dual); it needs point clouds, p=1 and metric='euclidean'. Use method=\"exact\" or \"sinkhorn\" otherwise."
        )
    if not _is_uniform(problem):
        raise InputError(
            'method="neural" treats its inputs as i.i.d. samples and does not take weights; got u_weights/v_weights. '
            "Resample the points according to their weights, or use a weighted method such as \"exact\"."
        )
    from .neural import KRDualEstimator

    fit = KRDualEstimator(**options).fit(problem.x, problem.y)
    result = _result(problem, fit.value, None, None, None, "neural", n_iter=int((~np.isnan(fit.history)).sum()))
    return dataclasses.replace(result, standard_error=fit.standard_error, extra={"fit": fit})


def _is_uniform(problem: Problem) -> bool:
    a, b = to_numpy(problem.a), to_numpy(problem.b)
    return bool(np.all(a == a[0]) and np.all(b == b[0]))


_SOLVERS: dict[str, Callable[..., TransportResult]] = {
    "1d": _solve_1d,
    "exact": _lp_solver("exact", network_simplex.solve, ("max_iter",), DEFAULT_MAX_SIZE),
    "primal": _lp_solver("primal", lp_primal.solve, ("generation", "max_rounds", "progress"), LP_MAX_SIZE),
    "dual": _lp_solver("dual", lp_dual.solve, ("generation", "max_rounds", "progress"), LP_MAX_SIZE),
    "sliced": _solve_sliced,
    "neural": _solve_neural,
}


def register_solver(name: str, solver: Callable[..., TransportResult]) -> None:
    """Make ``solver(problem, need_plan, **options)`` available as ``method=name``."""
    _SOLVERS[name] = solver


def _resolve(method: str, problem: Problem) -> str:
    V.check_choice(method, ("auto", *_SOLVERS), "method")
    if method != "auto":
        return method
    is_line = problem.x is not None and problem.x.shape[1] == 1 and problem.cost is None
    if is_line and not callable(problem.metric) and problem.metric != "sqeuclidean":
        return "1d"
    return "exact"


# ----------------------------------------------------------------------------- public API


def transport(
    u_values=None,
    v_values=None,
    u_weights=None,
    v_weights=None,
    *,
    p: float = 1,
    method: str = "auto",
    metric: Metric = "euclidean",
    minkowski_p: float | None = None,
    cost=None,
    **options,
) -> TransportResult:
    r"""Solve the optimal-transport problem and return the plan, potentials and a certificate.

    Parameters
    ----------
    u_values, v_values
        Samples: 1-D arrays of values or ``(n, d)`` / ``(m, d)`` point clouds (NumPy or torch).
        May be ``None`` when ``cost`` is given.
    u_weights, v_weights
        Non-negative masses (normalised to probability vectors); uniform when omitted.
    p
        Order of the distance; the cost is ``C_ij = d(x_i, y_j) ** p``.
    method
        ``"1d"`` (monotone coupling), ``"exact"`` (network simplex), ``"primal"`` / ``"dual"``
        (the linear program in primal / dual form with HiGHS) or ``"auto"``.
    metric
        Ground metric: ``"euclidean"``, ``"sqeuclidean"``, ``"cityblock"``, ``"chebyshev"``,
        ``"minkowski"`` (with ``minkowski_p``) or a callable ``metric(x, y) -> (n, m) array``.
    cost
        A precomputed cost matrix ``C`` (n, m), used as is (methods ``"exact"``, ``"primal"``,
        ``"dual"``). Any finite real entries are accepted, negative ones included, as in POT; ``value``
        is then the transport cost ``<P, C>`` itself (no p-th root), and ``p`` must be left at 1.
    **options
        Solver options: ``max_size`` (memory guard on n*m), ``max_iter`` (exact),
        ``generation`` and ``max_rounds`` (primal/dual), ``n_projections`` and ``seed`` (sliced);
        ``progress=True`` shows a progress bar (primal and dual after a second of solving, sliced).

    Returns
    -------
    TransportResult
        ``value`` (W_p), ``transport_cost`` (<P, C>), ``plan``, ``potentials`` (f, g),
        ``duality_gap`` (primal - dual), ``method``, ``n_iter``, ``converged``.
        Arrays follow the inputs: NumPy float32 in gives float32 plan and potentials, torch in gives
        tensors in the input's dtype and device.

    Examples
    --------
    >>> import otdist
    >>> res = otdist.transport([[0.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]], method="dual")
    >>> round(res.value, 12), res.duality_gap < 1e-8
    (1.0, True)
    """
    problem = make_problem(u_values, v_values, u_weights, v_weights, p, metric, minkowski_p, cost)
    return _SOLVERS[_resolve(method, problem)](problem, True, **options)


def wasserstein(
    u_values,
    v_values,
    u_weights=None,
    v_weights=None,
    *,
    p: float = 1,
    method: str = "auto",
    metric: Metric = "euclidean",
    minkowski_p: float | None = None,
    **options,
):
    r"""Wasserstein distance W_p between two weighted samples.

    .. math:: W_p(\mu, \nu) = \Big(\min_{\gamma \in \Pi(a, b)} \sum_{ij} \gamma_{ij}\, d(x_i, y_j)^p\Big)^{1/p}

    Same argument order and semantics as ``scipy.stats.wasserstein_distance`` for 1-D input
    (weights are normalised); 2-D inputs ``(n, d)`` are point clouds. Returns W_p, never W_p^p.

    Parameters
    ----------
    u_values, v_values
        Samples: 1-D arrays or ``(n, d)`` and ``(m, d)`` point clouds, NumPy or torch.
    u_weights, v_weights
        Non-negative weights; uniform when omitted.
    p
        Order p >= 1.
    method
        ``"auto"`` (``"1d"`` for 1-D input, else ``"exact"``), ``"1d"``, ``"exact"``,
        ``"primal"``, ``"dual"``, and the approximate methods registered by other modules.
    metric, minkowski_p, **options
        See :func:`transport`.

    Returns
    -------
    float or torch.Tensor
        A Python float for NumPy input; a 0-d tensor on the input's device and in its dtype for
        torch input, differentiable in values and weights (exact and LP methods through the optimal
        dual potentials; at W_p = 0, where W_p is not differentiable, the gradient is 0).

    Notes
    -----
    Where otdist deliberately differs from its peers:

    * weights are normalised to probability vectors (POT requires equal masses); ``[]`` means uniform
      weights, as in POT;
    * NaN and infinite values are refused with an error, and so is a distance that overflows the
      floating-point range, where ``scipy.stats.wasserstein_distance`` returns ``nan`` or ``inf``;
    * integer and bool inputs are computed in float64 (NumPy) or torch's default float; float16 and
      bfloat16 tensors are computed in float32 and the result returned in the input's dtype.

    References
    ----------
    Villani, *Optimal Transport: Old and New* (2009); Peyré & Cuturi, *Computational Optimal
    Transport* (2019).

    Examples
    --------
    >>> import otdist
    >>> otdist.wasserstein([0, 1, 3], [5, 6, 8])
    5.0
    >>> otdist.wasserstein([0, 1, 2, 3], [0, 1, 2, 3], [3, 2, 1, 4], [1, 2, 4, 3])
    0.5
    """
    problem = make_problem(u_values, v_values, u_weights, v_weights, p, metric, minkowski_p)
    return _SOLVERS[_resolve(method, problem)](problem, False, **options).value


_DISTANCES: dict[str, Callable[..., Any]] = {
    "wasserstein": wasserstein,
    "kl": kl,
    "js": js,
    "js_distance": js_distance,
}


def register_distance(name: str, function: Callable[..., Any]) -> None:
    """Make ``function(a, b, **kw)`` available as ``distance(a, b, metric=name)``."""
    _DISTANCES[name] = function


def distance(a, b, /, metric: str = "wasserstein", **kwargs):
    """One entry point for every distance: ``distance(a, b, metric="wasserstein"|"kl"|"js"|...)``.

    For ``metric="wasserstein"`` the ground metric is passed as ``ground_metric=``.

    Examples
    --------
    >>> import otdist
    >>> otdist.distance([0.0, 1.0], [2.0, 3.0], metric="wasserstein", p=2)
    2.0
    """
    V.check_choice(metric, tuple(_DISTANCES), "metric")
    if metric == "wasserstein" and "ground_metric" in kwargs:
        kwargs["metric"] = kwargs.pop("ground_metric")
    return _DISTANCES[metric](a, b, **kwargs)


__all__ = ["wasserstein", "transport", "kl", "js", "js_distance", "distance", "LOG2"]
