"""The transportation linear program, shared by the exact solvers.

Every exact solver works on a *reduced* problem (:func:`reduce`): points of zero weight are
dropped, the two weight vectors are renormalised so that their sums agree to the last bit that
float64 can show, and the cost is shifted and scaled to the unit range [0, 1] (OT is
shift-invariant, and HiGHS's tolerances are absolute; the network simplex only needs a negative
cost shifted).  Whatever the solver returns is then
turned into a certificate on the user's problem (:func:`certify`): the plan is repaired so that
its marginals are exact up to rounding, the potentials are c-transformed on the full cost matrix
(so f_i + g_j <= C_ij, zero-weight points included), and the reported primal and dual values are
computed from that plan and those potentials.

The primal and dual LP solvers hand HiGHS (through ``scipy.optimize.linprog``) a *restricted*
problem that only contains a set of active arcs (i, j).  After each solve the reduced costs
``C_ij - f_i - g_j`` of all n*m arcs are checked with one vectorised pass; arcs with a negative
reduced cost (primal: improving columns; dual: violated constraints f_i + g_j <= C_ij) join the
active set and the restricted LP is solved again.  When no arc violates the optimality condition
the restricted solution is optimal for the full LP, so the answer is exact, not approximate.

Every restricted problem is feasible and bounded, whatever the active set: one potential is
pinned to 0 and the others are boxed in [-POTENTIAL_BOUND, POTENTIAL_BOUND] (in the primal: each
marginal constraint may be violated at a price of POTENTIAL_BOUND per unit of mass).  With a
unit-range cost, an optimal c-concave pair with the pinned potential at 0 lies in [-1, 1], inside
the box, so the box changes no optimum of the full problem.  The starting active set also holds
the north-west-corner coupling of the two weight vectors, a spanning path of the bipartite graph.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..exceptions import ConvergenceWarning, SolverError

#: Seconds a solve runs before its progress bar (progress=True) appears.
PROGRESS_DELAY = 1.0
#: Cheapest arcs per row and per column in the starting active set.
INITIAL_NEIGHBOURS = 5
#: Arcs added per violating row and per violating column at each round.
ARCS_PER_ROUND = 10
#: Reduced costs (of the unit-range cost) above -REDUCED_COST_TOL count as non-negative.
REDUCED_COST_TOL = 1e-11
#: Rounds of arc generation before giving up with a ConvergenceWarning.
DEFAULT_MAX_ROUNDS = 200
#: Box on the potentials of the unit-range problem (> 1, the range of an optimal c-concave pair).
POTENTIAL_BOUND = 2.0
#: Largest constraint residual accepted from HiGHS (unit-range cost, unit mass).
HIGHS_RESIDUAL_TOL = 1e-9
#: Total mass handed to HiGHS: its feasibility tolerances are absolute, so a unit mass would let
#: flows (primal) or reduced costs of the dual LP be off by 1e-10 of the total mass.
MASS_SCALE = 1e6
#: Rows of the cost matrix per block of the c-transform (bounds its temporary to ~8 MB).
CTRANSFORM_BLOCK = 1_000_000

HIGHS_OPTIONS = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
}
#: HiGHS algorithms tried in turn (interior point with crossover first: fastest on these LPs).
HIGHS_ATTEMPTS = (("highs-ipm", True), ("highs-ds", True), ("highs-ds", False), ("highs-ipm", False))


@dataclass(frozen=True)
class LPSolution:
    """A primal-dual pair for the transportation linear program.

    ``primal`` is the cost of ``plan`` and ``dual`` the value ``<a, f> + <b, g>`` of the
    potentials, both computed from the returned arrays.
    """

    plan: np.ndarray
    f: np.ndarray
    g: np.ndarray
    primal: float
    dual: float
    n_iter: int | None
    converged: bool


@dataclass(frozen=True)
class Reduced:
    """The problem a solver sees: positive weights with equal sums, cost scaled to [0, 1].

    ``cost = (user_cost[rows][:, cols] - shift) / span``; ``rows`` and ``cols`` are ``None`` when
    every weight is positive.
    """

    rows: np.ndarray | None
    cols: np.ndarray | None
    a: np.ndarray
    b: np.ndarray
    cost: np.ndarray
    shift: float
    span: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.cost.shape


def unit_mass(w: np.ndarray) -> np.ndarray:
    """``w / sum(w)`` with its largest entry corrected so that the exact sum is 1 to within an ulp."""
    w = w / math.fsum(w)
    k = int(np.argmax(w))
    w[k] += 1.0 - math.fsum(w)
    return w


#: Largest cost entries for which the network simplex's absolute tolerances work unscaled.
EXACT_SCALE_RANGE = (2.0**-20, 2.0**40)


def _power_of_two_scale(high: float) -> float:
    """1, or the power of two that brings a cost whose largest entry ``high`` lies outside
    EXACT_SCALE_RANGE to about 1 (dividing by a power of two rounds nothing)."""
    low_end, high_end = EXACT_SCALE_RANGE
    if high <= 0.0 or low_end <= high <= high_end:
        return 1.0
    return 2.0 ** int(np.floor(np.log2(high)))


def reduce(a: np.ndarray, b: np.ndarray, cost: np.ndarray, *, unit_range: bool = True) -> Reduced:
    """The reduced problem; with ``unit_range=False`` the cost is only shifted where it has negative
    entries, and divided by a power of two where its scale is far from 1 (no copy of a non-negative,
    unit-scale cost without zero weights): the network simplex compares reduced costs with an
    absolute epsilon, so a cost of 1e-80 would look like zero to it."""
    rows, cols = np.flatnonzero(a > 0), np.flatnonzero(b > 0)
    if rows.size == a.size and cols.size == b.size:
        rows = cols = None
        block = np.asarray(cost, dtype=np.float64)
    else:
        block = np.ascontiguousarray(cost[np.ix_(rows, cols)], dtype=np.float64)
        a, b = a[rows], b[cols]
    low = float(block.min())
    if unit_range:
        shift, span = low, float(block.max()) - low
        span = span if span > 0 else 1.0
    else:
        shift = min(low, 0.0)
        span = _power_of_two_scale(float(block.max()) - shift)
    if shift != 0.0 or span != 1.0:
        block = (block - shift) / span
    return Reduced(rows, cols, unit_mass(a), unit_mass(b), np.ascontiguousarray(block), shift, span)


def northwest_corner(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The monotone (north-west corner) coupling of two mass vectors, as n + m - 1 arcs (i, j, mass).

    Its arcs form a path through every row and column, whatever the masses (zeros included); the
    masses are differences of cumulative sums, clipped to the smaller total.
    """
    n = a.size
    ca, cb = np.cumsum(a), np.cumsum(b)
    total = min(ca[-1], cb[-1])
    breaks = np.minimum(np.concatenate([ca[:-1], cb[:-1]]), total)
    order = np.argsort(breaks, kind="stable")
    from_a = order < n - 1
    i = np.concatenate([[0], np.cumsum(from_a)])
    j = np.concatenate([[0], np.cumsum(~from_a)])
    mass = np.diff(np.concatenate([[0.0], breaks[order], [total]]))
    return i, j, np.maximum(mass, 0.0)


def feasible_plan(plan: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The plan, made in place to have exact marginals (up to rounding): negative entries dropped,
    rows and columns above their weight scaled down, the remaining deficits coupled north-west corner."""
    np.maximum(plan, 0.0, out=plan)
    rows = plan.sum(axis=1)
    over = rows > a
    plan[over] *= (a[over] / rows[over])[:, None]
    cols = plan.sum(axis=0)
    over = cols > b
    plan[:, over] *= b[over] / cols[over]
    deficit_a = np.maximum(a - plan.sum(axis=1), 0.0)
    deficit_b = np.maximum(b - plan.sum(axis=0), 0.0)
    if deficit_a.any() and deficit_b.any():
        i, j, mass = northwest_corner(deficit_a, deficit_b)
        np.add.at(plan, (i, j), mass)
    return plan


def c_transform(cost: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``f_i = min_j (C_ij - g_j)``, in blocks of rows."""
    step = max(1, CTRANSFORM_BLOCK // max(cost.shape[1], 1))
    return np.concatenate([(cost[k : k + step] - g).min(axis=1) for k in range(0, cost.shape[0], step)])


def c_transform_columns(cost: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``g_j = min_i (C_ij - f_i)``, in blocks of rows."""
    step = max(1, CTRANSFORM_BLOCK // max(cost.shape[1], 1))
    g = np.full(cost.shape[1], np.inf)
    for k in range(0, cost.shape[0], step):
        np.minimum(g, (cost[k : k + step] - f[k : k + step, None]).min(axis=0), out=g)
    return g


def certify(problem: Reduced, plan: np.ndarray, g: np.ndarray, a, b, cost, n_iter, converged) -> LPSolution:
    """The certificate on the user's problem from a reduced plan (overwritten) and the column
    potentials ``g`` of the reduced problem, in the user's cost units.

    The potentials are (g^c, g^cc): f_i + g_j <= C_ij holds by construction, and the dual value is
    at least that of (g^c, g).
    """
    plan = feasible_plan(plan, problem.a, problem.b)
    # (f + c, g - c) is as optimal as (f, g): a solver's arbitrary offset c would only add rounding of
    # |c| eps to the dual value, so it is removed before the c-transforms.
    g = g - np.max(g)
    if problem.rows is None:
        full_plan, f = plan, c_transform(cost, g)
    else:
        full_plan = np.zeros(cost.shape)
        full_plan[np.ix_(problem.rows, problem.cols)] = plan
        f = c_transform(cost[:, problem.cols], g)
    g = c_transform_columns(cost, f)
    primal = float(np.vdot(full_plan, cost))
    dual = float(a @ f + b @ g)
    return LPSolution(full_plan, f, g, primal, dual, n_iter, converged)


# ----------------------------------------------------------------------------- arc generation

# restricted_solve(rows, cols, problem) -> (flow on the arcs, f, g, n_iter), on the unit-range problem
RestrictedSolve = Callable[[np.ndarray, np.ndarray, Reduced], tuple[np.ndarray, np.ndarray, np.ndarray, int]]


def incidence(rows: np.ndarray, cols: np.ndarray, n: int, m: int) -> sp.csc_matrix:
    """Marginal-constraint matrix A ((n + m) x K): arc k=(i, j) has ones in rows i and n + j."""
    k = np.arange(rows.size)
    data = np.ones(2 * rows.size)
    return sp.csc_matrix((data, (np.concatenate([rows, n + cols]), np.concatenate([k, k]))), shape=(n + m, rows.size))


def _initial_mask(problem: Reduced, neighbours: int) -> np.ndarray:
    cost = problem.cost
    n, m = cost.shape
    if neighbours >= m or neighbours >= n:
        return np.ones((n, m), dtype=bool)
    mask = np.zeros((n, m), dtype=bool)
    nearest = np.argpartition(cost, neighbours, axis=1)[:, :neighbours]
    mask[np.repeat(np.arange(n), neighbours), nearest.ravel()] = True
    nearest = np.argpartition(cost, neighbours, axis=0)[:neighbours, :]
    mask[nearest.ravel(), np.tile(np.arange(m), neighbours)] = True
    i, j, _ = northwest_corner(problem.a, problem.b)
    mask[i, j] = True
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


def _generate(restricted_solve: RestrictedSolve, problem: Reduced, mask: np.ndarray, max_rounds: int,
              progress: bool = False):
    n_iter, rounds = 0, 0
    with tqdm(desc="LP arc generation", unit="round", disable=not progress, leave=False, delay=PROGRESS_DELAY) as bar:
        while True:
            rows, cols = np.nonzero(mask)
            flow, f, g, iters = restricted_solve(rows, cols, problem)
            n_iter += iters
            rounds += 1
            bar.update()
            bar.set_postfix(arcs=rows.size, refresh=False)
            reduced = problem.cost - f[:, None] - g[None, :]
            if not _add_violations(mask, reduced, REDUCED_COST_TOL, ARCS_PER_ROUND):
                return rows, cols, flow, g, n_iter, True, 0.0
            if rounds >= max_rounds:
                return rows, cols, flow, g, n_iter, False, -float(reduced.min())


def solve_by_generation(
    restricted_solve: RestrictedSolve,
    a: np.ndarray,
    b: np.ndarray,
    cost: np.ndarray,
    *,
    generation: bool = True,
    max_rounds: int | None = None,
    progress: bool = False,
) -> LPSolution:
    """Solve the transportation LP by arc generation (or at once with ``generation=False``).

    If HiGHS fails on a restricted problem, the full problem is solved instead; a failure there
    raises :class:`~otdist.exceptions.SolverError`.  Stopping at ``max_rounds`` warns and returns
    a feasible plan with an honest (possibly large) duality gap.
    """
    max_rounds = DEFAULT_MAX_ROUNDS if max_rounds is None else max_rounds
    problem = reduce(a, b, cost)
    n, m = problem.shape
    mask = _initial_mask(problem, INITIAL_NEIGHBOURS) if generation else np.ones((n, m), dtype=bool)
    try:
        rows, cols, flow, g, n_iter, converged, violation = _generate(restricted_solve, problem, mask, max_rounds,
                                                                      progress)
    except SolverError:
        if mask.all():
            raise
        rows, cols, flow, g, n_iter, converged, violation = _generate(
            restricted_solve, problem, np.ones((n, m), dtype=bool), max_rounds, progress
        )
    if not converged:
        warnings.warn(
            f"arc generation stopped after max_rounds={max_rounds} rounds with dual violations up to "
            f"{violation * problem.span:.3g}; the plan was made feasible and the duality gap reports "
            "how far it may be from optimal. Raise max_rounds or pass generation=False.",
            ConvergenceWarning,
            stacklevel=4,
        )
    plan = np.zeros((n, m))
    plan[rows, cols] = flow
    return certify(problem, plan, g * problem.span, a, b, cost, n_iter, converged)


def highs(what: str, c: np.ndarray, residual_tol: float, **problem):
    """Solve with HiGHS, trying its algorithms in turn (HIGHS_ATTEMPTS) until one returns an
    optimal solution whose constraint residuals are within ``residual_tol``."""
    from scipy.optimize import linprog

    failures = []
    for method, presolve in HIGHS_ATTEMPTS:
        result = linprog(c, method=method, options={**HIGHS_OPTIONS, "presolve": presolve}, **problem)
        label = f"{method} with presolve {'on' if presolve else 'off'}"
        if result.status != 0:
            failures.append(f"{label}: {result.message}")
            continue
        residual = max(np.abs(result.con).max(initial=0.0), -np.min(result.slack, initial=0.0))
        if residual <= residual_tol:
            return result
        failures.append(f"{label}: constraint residual {residual:.3g}")
    raise SolverError(
        f"HiGHS should solve the {what} transportation LP ({c.size} variables); every attempt failed: "
        + "; ".join(failures)
        + '. Use method="exact" (the network simplex) for this problem.'
    )
