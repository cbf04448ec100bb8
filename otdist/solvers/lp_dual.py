r"""Optimal transport as the dual linear program over potentials, solved with HiGHS.

.. math::

    \max_{f, g} \sum_i a_i f_i + \sum_j b_j g_j \quad \text{s.t.}\quad f_i + g_j \le C_{ij}.

The constraint matrix is the transpose of the primal's marginal matrix; g_m is fixed to 0 to
remove the shift invariance (f + c, g - c), and the other potentials are boxed in
[-POTENTIAL_BOUND, POTENTIAL_BOUND] of the unit-range cost, so every restricted problem is bounded
(see :mod:`otdist.solvers._lp`).  The coupling is recovered from HiGHS's inequality marginals.
Constraints are generated as cutting planes: only the constraints that the current potentials
violate are added.
"""

from __future__ import annotations

import numpy as np

from ._lp import HIGHS_RESIDUAL_TOL, MASS_SCALE, POTENTIAL_BOUND, LPSolution, Reduced, highs, incidence, solve_by_generation


def _restricted_dual(rows: np.ndarray, cols: np.ndarray, problem: Reduced):
    n, m = problem.shape
    bounds = [(-POTENTIAL_BOUND, POTENTIAL_BOUND)] * (n + m - 1) + [(0.0, 0.0)]
    result = highs(
        "dual",
        -MASS_SCALE * np.concatenate([problem.a, problem.b]),
        HIGHS_RESIDUAL_TOL,
        A_ub=incidence(rows, cols, n, m).T.tocsr(),
        b_ub=problem.cost[rows, cols],
        bounds=bounds,
    )
    return -result.ineqlin.marginals / MASS_SCALE, result.x[:n], result.x[n:], int(result.nit)


def solve(a: np.ndarray, b: np.ndarray, cost: np.ndarray, *, generation: bool = True,
          max_rounds: int | None = None, progress: bool = False) -> LPSolution:
    """Exact OT between weights ``a`` and ``b`` (each summing to 1) for the cost matrix ``cost``
    (any real entries), by cutting planes over the dual LP."""
    return solve_by_generation(_restricted_dual, a, b, cost, generation=generation, max_rounds=max_rounds,
                               progress=progress)
