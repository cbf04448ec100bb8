r"""Optimal transport as the primal linear program over the coupling, solved with HiGHS.

.. math::

    \min_{\gamma \ge 0} \langle C, \gamma \rangle \quad \text{s.t.}\quad
    A \operatorname{vec}(\gamma) = \begin{pmatrix} a \\ b \end{pmatrix},

where A is the sparse (n + m) x nm marginal-constraint matrix (row sums, then column sums; one
redundant row is dropped, which pins the last column potential to 0).  Each remaining constraint
gets two elastic slack columns priced at ``POTENTIAL_BOUND`` per unit of mass, so every restricted
problem is feasible; at the optimum of the full problem they carry no mass (see
:mod:`otdist.solvers._lp`).  The potentials are HiGHS's equality-constraint marginals.  Arcs are
generated as columns, so HiGHS sees far fewer than nm variables.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._lp import HIGHS_RESIDUAL_TOL, MASS_SCALE, POTENTIAL_BOUND, LPSolution, Reduced, highs, incidence, solve_by_generation


def _restricted_primal(rows: np.ndarray, cols: np.ndarray, problem: Reduced):
    n, m = problem.shape
    constraints = n + m - 1
    slack = sp.identity(constraints, format="csc")
    A = sp.hstack([incidence(rows, cols, n, m)[:-1], slack, -slack], format="csc")
    c = np.concatenate([problem.cost[rows, cols], np.full(2 * constraints, POTENTIAL_BOUND)])
    masses = MASS_SCALE * np.concatenate([problem.a, problem.b])[:-1]
    result = highs("primal", c, HIGHS_RESIDUAL_TOL * MASS_SCALE, A_eq=A, b_eq=masses, bounds=(0, None))
    duals = result.eqlin.marginals
    return result.x[: rows.size] / MASS_SCALE, duals[:n], np.append(duals[n:], 0.0), int(result.nit)


def solve(a: np.ndarray, b: np.ndarray, cost: np.ndarray, *, generation: bool = True,
          max_rounds: int | None = None, progress: bool = False) -> LPSolution:
    """Exact OT between weights ``a`` and ``b`` (each summing to 1) for the cost matrix ``cost``
    (any real entries), by column generation over the primal LP."""
    return solve_by_generation(_restricted_primal, a, b, cost, generation=generation, max_rounds=max_rounds,
                               progress=progress)
