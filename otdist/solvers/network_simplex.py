"""Exact discrete optimal transport with the network simplex (POT's C++ solver).

POT sees the reduced problem of :mod:`otdist.solvers._lp` (no zero weights, equal masses, a
negative cost shifted to be non-negative: POT reports some problems with negative costs
infeasible, such as the 1 x 1 cost [[-10]]); its result code is checked and its warnings are turned into otdist's: ``ConvergenceWarning`` at the
iteration cap (the plan is then made feasible and the duality gap is honest), ``SolverError`` if
it reports the problem infeasible or unbounded.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..exceptions import ConvergenceWarning, SolverError
from ._lp import LPSolution, certify, reduce

#: Iteration cap of the network simplex. POT's own default (100,000) stops short of optimality
#: from about n = 3000 points; this cap is reached only on far larger problems.
DEFAULT_MAX_ITER = 100_000_000
#: POT's result codes (ot.lp.emd_wrap): the solver's verdict.
OPTIMAL, MAX_ITER_REACHED = 1, 3
#: The messages of POT's own warnings for non-optimal result codes, which the result code replaces.
POT_RESULT_WARNINGS = "(numItermax reached|Problem infeasible|Problem unbounded)"


def solve(a: np.ndarray, b: np.ndarray, cost: np.ndarray, *, max_iter: int = DEFAULT_MAX_ITER) -> LPSolution:
    """Exact OT between weights ``a`` and ``b`` (each summing to 1) for the cost matrix ``cost``
    (any real entries) with POT's network simplex, capped at ``max_iter`` pivots."""
    import ot

    problem = reduce(a, b, cost, unit_range=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=POT_RESULT_WARNINGS, category=UserWarning)
        plan, log = ot.emd(problem.a, problem.b, problem.cost, numItermax=max_iter, log=True)
    code = int(log["result_code"])
    if code not in (OPTIMAL, MAX_ITER_REACHED):
        raise SolverError(
            f"the network simplex should solve every transport problem with equal masses; it reported "
            f"{log['warning']!r} (result code {code}) on a {problem.shape[0]} x {problem.shape[1]} problem. "
            'Try method="primal" or method="dual" (HiGHS) for this problem.'
        )
    converged = code == OPTIMAL
    if not converged:
        warnings.warn(
            f"the network simplex stopped at max_iter={max_iter} pivots before optimality; the plan was "
            "made feasible and the duality gap reports how far it may be from optimal. Raise max_iter "
            "for an exact answer.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return certify(problem, np.asarray(plan), np.asarray(log["v"]) * problem.span, a, b, cost, None, converged)
