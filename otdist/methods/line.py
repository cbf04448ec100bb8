"""``method="1d"``: the monotone coupling of 1-D samples (quantile functions)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _validation as V
from .._backend import output_dtype
from ..exceptions import InputError
from ..problem import Problem, overflow_checked, transport_result
from ..registry import MethodSpec, register_method
from ..solvers import exact_1d
from .._results import TransportResult


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
        return transport_result(problem, cost, None, None, None, "1d")
    with overflow_checked():
        coupling = exact_1d.monotone_coupling(u, v, problem.a, problem.b, problem.p)
    plan = sparse_plan(coupling, problem)
    return transport_result(problem, coupling.transport_cost, plan, None, None, "1d")


def sparse_plan(coupling: exact_1d.Monotone1D, problem: Problem):
    shape = (problem.x.shape[0], problem.y.shape[0])
    if problem.like is not None:
        import torch

        indices = torch.stack([coupling.u_index, coupling.v_index])
        mass = coupling.mass.to(output_dtype(problem.like))
        return torch.sparse_coo_tensor(indices, mass, shape, check_invariants=True).coalesce()
    dtype = np.promote_types(problem.out_dtype, np.float32)  # scipy.sparse has no float16
    plan = sp.coo_matrix((coupling.mass.astype(dtype), (coupling.u_index, coupling.v_index)), shape=shape)
    return plan.tocsr()


register_method(MethodSpec("1d", _solve_1d, "exact W_p of 1-D samples through their quantile functions",
                           exact=True, gradients="values and weights", memory="O(n + m)"))
