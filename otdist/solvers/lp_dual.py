r"""Optimal transport as the dual linear program over potentials, solved with HiGHS.

.. math::

    \max_{f, g} \sum_i a_i f_i + \sum_j b_j g_j \quad \text{s.t.}\quad f_i + g_j \le C_{ij}.

The constraint matrix is the transpose of the primal's marginal matrix; g_m is fixed to 0 to
remove the shift invariance (f + c, g - c).  The coupling is recovered from HiGHS's inequality
marginals.  Constraints are generated as cutting planes (see :mod:`otdist.solvers._lp`): only the
constraints that the current potentials violate are added.
"""

from __future__ import annotations

import numpy as np
from ._lp import highs, solve_by_generation


def _restricted_dual(rows, cols, a, b, cost, A):
    n, m = a.size, b.size
    bounds = [(None, None)] * (n + m - 1) + [(0.0, 0.0)]
    result = highs(
        "dual",
        -np.concatenate([a, b]),
        A_ub=A.T.tocsr(),
        b_ub=cost[rows, cols],
        bounds=bounds,
    )
    return -result.ineqlin.marginals, result.x[:n], result.x[n:], int(result.nit)


def solve(a, b, cost, *, generation: bool = True, max_rounds: int | None = None):
    kwargs = {} if max_rounds is None else {"max_rounds": max_rounds}
    return solve_by_generation(_restricted_dual, a, b, cost, generation=generation, **kwargs)
