r"""Optimal transport as the primal linear program over the coupling, solved with HiGHS.

.. math::

    \min_{\gamma \ge 0} \langle C, \gamma \rangle \quad \text{s.t.}\quad
    A \operatorname{vec}(\gamma) = \begin{pmatrix} a \\ b \end{pmatrix},

where A is the sparse (n + m) x nm marginal-constraint matrix (row sums, then column sums; one
redundant row is dropped).  The potentials are HiGHS's equality-constraint marginals.  Arcs are
generated as columns (see :mod:`otdist.solvers._lp`), so HiGHS sees far fewer than nm variables.
"""

from __future__ import annotations

import numpy as np
from ._lp import highs, solve_by_generation


def _restricted_primal(rows, cols, a, b, cost, A):
    n = a.size
    result = highs(
        "primal",
        cost[rows, cols],
        A_eq=A[:-1],
        b_eq=np.concatenate([a, b])[:-1],
        bounds=(0, None),
    )
    duals = result.eqlin.marginals
    f, g = duals[:n], np.append(duals[n:], 0.0)
    return result.x, f, g, int(result.nit)


def solve(a, b, cost, *, generation: bool = True, max_rounds: int | None = None):
    kwargs = {} if max_rounds is None else {"max_rounds": max_rounds}
    return solve_by_generation(_restricted_primal, a, b, cost, generation=generation, **kwargs)
