"""The transportation linear program, shared by the primal and dual LP solvers.

Both solvers hand HiGHS (through ``scipy.optimize.linprog``) a *restricted* problem that only
contains a set of active arcs (i, j).  After each solve the reduced costs
``C_ij - f_i - g_j`` of all n*m arcs are checked with one vectorised pass; arcs with a negative
reduced cost (primal: improving columns; dual: violated constraints f_i + g_j <= C_ij) join the
active set and the restricted LP is solved again.  When no arc violates the optimality condition
the restricted solution is optimal for the full LP, so the answer is exact, not approximate.

Starting set: the k cheapest arcs of every row and every column, plus the monotone
(north-west corner) coupling of the two weight vectors, which keeps the restricted primal
feasible and the restricted dual bounded from the first solve.  ``generation=False`` skips all
this and solves the full n*m problem at once.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..exceptions import ConvergenceWarning
from . import exact_1d
from .network_simplex import LPSolution, certificate
from ..exceptions import SolverError

#: Cheapest arcs per row and per column in the starting active set.
INITIAL_NEIGHBOURS = 5
#: Arcs added per violating row and per violating column at each round.
ARCS_PER_ROUND = 10
#: Reduced costs above -REDUCED_COST_TOL * max(C) count as non-negative.
REDUCED_COST_TOL = 1e-11
#: Rounds of arc generation before giving up with a ConvergenceWarning.
DEFAULT_MAX_ROUNDS = 200

HIGHS_OPTIONS = {
    "presolve": True,
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
}

# restricted_solve(rows, cols, a, b, cost, incidence) -> (flow on the arcs, f, g, n_iter)
RestrictedSolve = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, int]]


def incidence(rows: np.ndarray, cols: np.ndarray, n: int, m: int) -> sp.csc_matrix:
    """Marginal-constraint matrix A ((n + m) x K): arc k=(i, j) has ones in rows i and n + j."""
    k = np.arange(rows.size)
    data = np.ones(2 * rows.size)
    return sp.csc_matrix((data, (np.concatenate([rows, n + cols]), np.concatenate([k, k]))), shape=(n + m, rows.size))


def _initial_mask(a, b, cost, neighbours: int) -> np.ndarray:
    n, m = cost.shape
    mask = np.zeros((n, m), dtype=bool)
    if neighbours < m:
        nearest = np.argpartition(cost, neighbours, axis=1)[:, :neighbours]
        mask[np.repeat(np.arange(n), neighbours), nearest.ravel()] = True
    else:
        mask[:] = True
    if neighbours < n:
        nearest = np.argpartition(cost, neighbours, axis=0)[:neighbours, :]
        mask[nearest.ravel(), np.tile(np.arange(m), neighbours)] = True
    else:
        mask[:] = True
    # The north-west-corner (monotone) coupling of the two weight vectors keeps the restricted
    # primal feasible: the 1-D solver's coupling between positions 0..n-1 and 0..m-1.
    staircase = exact_1d.monotone_coupling(np.arange(float(a.size)), np.arange(float(b.size)), a, b, 1.0)
    mask[staircase.u_index, staircase.v_index] = True
    return mask


def _add_violations(mask: np.ndarray, reduced: np.ndarray, tol: float, per_round: int) -> bool:
    """Activate the most negative reduced-cost arcs of each violating row and column."""
    reduced = np.where(mask, 0.0, reduced)
    violating = reduced < -tol
    if not violating.any():
        return False
    for axis in (1, 0):
        lines = np.flatnonzero(violating.any(axis=axis))
        sub = reduced[lines] if axis == 1 else reduced[:, lines].T
        take = min(per_round, sub.shape[1] - 1)
        best = np.argpartition(sub, take, axis=1)[:, : take + 1] if take > 0 else np.argmin(sub, 1)[:, None]
        ok = np.take_along_axis(sub, best, axis=1) < -tol
        line_idx = np.repeat(lines, best.shape[1])[ok.ravel()]
        other_idx = best.ravel()[ok.ravel()]
        if axis == 1:
            mask[line_idx, other_idx] = True
        else:
            mask[other_idx, line_idx] = True
    return True


def solve_by_generation(
    restricted_solve: RestrictedSolve,
    a: np.ndarray,
    b: np.ndarray,
    cost: np.ndarray,
    *,
    generation: bool = True,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> LPSolution:
    n, m = cost.shape
    mask = _initial_mask(a, b, cost, INITIAL_NEIGHBOURS) if generation else np.ones((n, m), dtype=bool)
    tol = REDUCED_COST_TOL * max(float(cost.max()), 1.0)
    n_iter = 0
    for _ in range(max_rounds):
        rows, cols = np.nonzero(mask)
        flow, f, g, iters = restricted_solve(rows, cols, a, b, cost, incidence(rows, cols, n, m))
        n_iter += iters
        reduced = cost - f[:, None] - g[None, :]
        if not _add_violations(mask, reduced, tol, ARCS_PER_ROUND):
            converged = True
            break
    else:
        converged = False
        warnings.warn(
            f"arc generation stopped after max_rounds={max_rounds} rounds with dual violations up to "
            f"{-float(reduced.min()):.3g}; raise max_rounds or pass generation=False.",
            ConvergenceWarning,
            stacklevel=4,
        )
    plan = np.zeros((n, m))
    plan[rows, cols] = np.maximum(flow, 0.0)
    # A dual-feasible certificate: lower f where any constraint is still violated by rounding.
    f = f + np.minimum(reduced.min(axis=1), 0.0)
    return certificate(plan, f, g, a, b, cost, n_iter, converged)


def highs(what: str, c, **problem):
    """Solve with HiGHS's interior point (with crossover); on the rare degenerate problem where it
    ends without a verdict, solve again with the dual simplex."""
    from scipy.optimize import linprog

    result = linprog(c, method="highs-ipm", options=HIGHS_OPTIONS, **problem)
    if result.status != 0:
        result = linprog(c, method="highs-ds", options=HIGHS_OPTIONS, **problem)
    if result.status != 0:
        raise SolverError(f"HiGHS failed on the {what} transportation LP: {result.message}")
    return result
