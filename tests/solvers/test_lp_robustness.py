"""Exact solvers ("exact", "primal", "dual") on the inputs that break LP codes: weights spanning
twenty orders of magnitude, zero weights, n != m in both orientations, duplicated points, one point
on a side, negative costs, costs up to 1e4, and solver failures.

Every check compares with POT's network simplex (``ot.emd2`` with a large ``numItermax``), scipy's
1-D Wasserstein distance, or a closed form; and every result must be a certificate of itself: the
plan's marginals exact to rounding, ``value = <plan, C>``, potentials with f_i + g_j <= C_ij, and
``duality_gap = value - <a, f> - <b, g>`` below 1e-9 of the value.
"""

import warnings

import numpy as np
import ot
import pytest
import scipy.optimize
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import cdist

import otdist

METHODS = ["exact", "primal", "dual"]
EPS = np.finfo(np.float64).eps
#: Required agreement with POT and duality gap, relative to the optimal value.
VALUE_REL = 1e-9
#: Iteration cap of the reference network simplex (far above what these sizes need).
POT_MAX_ITER = 10**8


def pot_value(a, b, cost):
    """POT's optimal value, on the cost shifted to be non-negative (OT is shift-invariant; POT
    reports some problems with negative costs infeasible, e.g. the 1 x 1 cost [[-10]]) and divided
    by a power of two near its largest entry (exact; POT's absolute tolerances take a cost of 1e-80 for 0)."""
    low = cost.min()
    shifted = cost - low
    scale = 2.0 ** np.floor(np.log2(shifted.max())) if shifted.max() > 0 else 1.0
    return ot.emd2(a, b, np.ascontiguousarray(shifted / scale), numItermax=POT_MAX_ITER) * scale + low


def rounding(cost):
    """Rounding of a sum <P, C> over at most n + m nonzero entries of unit total mass."""
    return sum(cost.shape) * EPS * np.abs(cost).max()


def assert_certificate(res, a, b, cost):
    """The result describes itself: a feasible plan, its cost, dual-feasible potentials and their gap."""
    plan, (f, g) = res.plan, res.potentials
    slack = rounding(cost)
    assert plan.min() >= 0
    np.testing.assert_allclose(plan.sum(axis=1), a, rtol=0, atol=sum(cost.shape) * EPS)
    np.testing.assert_allclose(plan.sum(axis=0), b, rtol=0, atol=sum(cost.shape) * EPS)
    assert res.transport_cost == pytest.approx(np.vdot(plan, cost), abs=slack)
    assert res.duality_gap == pytest.approx(res.transport_cost - (a @ f + b @ g), abs=slack)
    size = max(np.abs(cost).max(), np.abs(f).max(), np.abs(g).max())
    assert (f[:, None] + g[None, :] - cost).max() <= 8 * EPS * size


def assert_optimal(res, a, b, cost, expected):
    assert_certificate(res, a, b, cost)
    tol = VALUE_REL * abs(expected) + rounding(cost)
    assert abs(res.transport_cost - expected) <= tol
    assert abs(res.duality_gap) <= tol


def solve(a, b, cost, method, **options):
    return otdist.transport(u_weights=a, v_weights=b, cost=cost, method=method, **options)


def gaussian(grid, mean, std, floor):
    """Discretised Gaussian on the grid points (rows), its tail floored at ``floor`` of the peak."""
    w = np.exp(-((grid - mean) ** 2).sum(axis=1) / (2 * std**2))
    w = np.maximum(w, floor * w.max())
    return w / w.sum()


def line(n):
    return np.linspace(0.0, 1.0, n)[:, None]


def square(k):
    g = np.linspace(0.0, 1.0, k)
    return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


# ----------------------------------------------------------------------------- tiny weights, n != m

# (n, m, std, floor): 1-D grids whose Gaussians reach 1e-20 (floored) or underflow to 1e-43 (floor 0).
LINE_CASES = [(90, 7, 0.05, 0.0), (64, 33, 0.05, 1e-20), (100, 21, 0.02, 1e-20)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("n, m, std, floor", LINE_CASES)
def test_gaussians_on_a_line_with_tails_down_to_1e_20(method, transposed, n, m, std, floor):
    x, y = line(n), line(m)
    a, b = gaussian(x, 0.6, std, floor), gaussian(y, 0.3, std, floor)
    if transposed:
        x, y, a, b = y, x, b, a
    cost = np.abs(x - y.T)
    res = solve(a, b, cost, method)
    assert_optimal(res, a, b, cost, pot_value(a, b, cost))
    # scipy's 1-D W_1 is an independent oracle (sorted CDFs; its own rounding ~1e-15).
    w1 = scipy.stats.wasserstein_distance(x[:, 0], y[:, 0], a, b)
    assert res.transport_cost == pytest.approx(w1, rel=VALUE_REL)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("scale", [1.0, 20.0, 1e4])
def test_gaussians_on_square_grids_with_costs_up_to_1e4(method, transposed, scale):
    x, y = square(8), square(5)
    a, b = gaussian(x, (0.2, 0.3), 0.08, 1e-20), gaussian(y, (0.7, 0.6), 0.12, 1e-20)
    if transposed:
        x, y, a, b = y, x, b, a
    cost = scale * cdist(x, y, "sqeuclidean")
    assert_optimal(solve(a, b, cost, method), a, b, cost, pot_value(a, b, cost))


# Ported from POT's test/test_ot.py::test_dual_variables: Gaussians (std 5 and 10) on 500 and 600
# bins, |x - y| cost; POT asserts the cost equals the shift of the means, 100, to 7 decimals, and
# the same cost for the transposed problem. Their tails underflow to exact zeros.
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("transposed", [False, True])
def test_pot_dual_variables_case(method, transposed):
    n, m = 500, 600
    a, b = ot.datasets.make_1D_gauss(n, m=300, s=5), ot.datasets.make_1D_gauss(m, m=400, s=10)
    cost = np.abs(np.arange(n, dtype=float)[:, None] - np.arange(m, dtype=float)[None, :])
    if transposed:
        a, b, cost = b, a, cost.T
    res = solve(a, b, cost, method)
    assert res.transport_cost == pytest.approx(100.0, abs=1e-7)
    assert_optimal(res, a, b, cost, pot_value(a, b, cost))


# Ported from POT's test/test_ot.py::test_emd_emd2: a uniform cloud against itself has the identity
# coupling I/n and cost 0.
@pytest.mark.parametrize("method", METHODS)
def test_pot_identity_case(method):
    x = np.random.RandomState(0).randn(100, 2)
    u = np.full(100, 0.01)
    cost = ot.dist(x, x)
    res = solve(u, u, cost, method)
    np.testing.assert_allclose(res.plan, np.eye(100) / 100, atol=1e-15)
    assert res.transport_cost == pytest.approx(0.0, abs=rounding(cost))
    assert_certificate(res, u, u, cost)


# ----------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_weights_equal_the_problem_without_those_points(method, seed):
    """Zero weights among weights spanning 1e-20..1; the zero-weight points still get potentials."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(11, 2))
    a, b = 10.0 ** rng.uniform(-20, 0, size=15), 10.0 ** rng.uniform(-20, 0, size=11)
    a[[0, 4, 14]] = 0.0
    b[[1, 10]] = 0.0
    a, b = a / a.sum(), b / b.sum()
    cost = cdist(x, y)
    res = solve(a, b, cost, method)
    kept = np.ix_(a > 0, b > 0)
    assert_optimal(res, a, b, cost, pot_value(a[a > 0], b[b > 0], cost[kept]))
    assert res.plan[a == 0].max() == 0.0 and res.plan[:, b == 0].max() == 0.0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_duplicated_points_with_tiny_weights(method, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(6, 2))
    x = base[[0, 0, 1, 1, 1, 2, 3, 4, 5, 5]]
    a = 10.0 ** rng.uniform(-20, 0, size=10)
    a /= a.sum()
    perm = rng.permutation(10)
    cost = cdist(x, x[perm])
    # Planted: the same weighted cloud, permuted, is at distance 0.
    planted = solve(a, a[perm], cost, method)
    assert planted.transport_cost == pytest.approx(0.0, abs=rounding(cost))
    assert_certificate(planted, a, a[perm], cost)
    b = 10.0 ** rng.uniform(-20, 0, size=7)
    b /= b.sum()
    y = base[[0, 2, 2, 3, 5, 5, 5]] + 0.1
    cost = cdist(x, y)
    assert_optimal(solve(a, b, cost, method), a, b, cost, pot_value(a, b, cost))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("transposed", [False, True])
def test_a_single_point_on_one_side_is_a_closed_form(method, transposed):
    rng = np.random.default_rng(7)
    b = 10.0 ** rng.uniform(-20, 0, size=13)
    b /= b.sum()
    a = np.ones(1)
    cost = 1e4 * rng.random((1, 13))
    expected = float(b @ cost[0])
    if transposed:
        a, b, cost = b, a, cost.T
    assert_optimal(solve(a, b, cost, method), a, b, cost, expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_negative_costs_and_shift_invariance(method, seed):
    """Negative costs, against POT on the same matrix."""
    rng = np.random.default_rng(seed)
    n, m = 25, 18
    a, b = 10.0 ** rng.uniform(-20, 0, size=n), 10.0 ** rng.uniform(-20, 0, size=m)
    a, b = a / a.sum(), b / b.sum()
    cost = 100.0 * rng.normal(size=(n, m)) - 300.0
    res = solve(a, b, cost, method)
    assert_optimal(res, a, b, cost, ot.emd2(a, b, cost, numItermax=POT_MAX_ITER))
    # OT is shift-invariant: <P, C + c> = <P, C> + c for every coupling P.
    shifted = solve(a, b, cost + 1000.0, method)
    assert shifted.transport_cost == pytest.approx(res.transport_cost + 1000.0, abs=rounding(cost + 1000.0))


weights = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=st.floats(-20, 0)),
        hnp.arrays(np.bool_, n),
        hnp.arrays(np.float64, (n, 2), elements=st.floats(-10, 10)),
    )
)


def _histogram(exponents, zero, points):
    w = np.where(zero, 0.0, 10.0**exponents)
    w[np.argmax(exponents)] = 1.0
    return w / w.sum(), points


@given(weights, weights, st.sampled_from([1.0, 20.0, 1e4]), st.sampled_from([0.0, -0.5]))
def test_property_weights_spanning_1e_20_to_1(source, target, scale, offset):
    (a, x), (b, y) = _histogram(*source), _histogram(*target)
    cost = scale * (cdist(x, y) / 30.0 + offset)
    expected = pot_value(a, b, cost)
    for method in METHODS:
        assert_optimal(solve(a, b, cost, method), a, b, cost, expected)


# ----------------------------------------------------------------------------- stopping early and failing


@pytest.mark.parametrize("method", ["primal", "dual"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_rounds_reached_returns_a_feasible_plan_and_an_honest_gap(method, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(35, 2)) + 0.5
    a, b = 10.0 ** rng.uniform(-20, 0, size=40), 10.0 ** rng.uniform(-20, 0, size=35)
    a, b = a / a.sum(), b / b.sum()
    cost = cdist(x, y)
    with pytest.warns(otdist.ConvergenceWarning, match="max_rounds=1"):
        res = solve(a, b, cost, method, max_rounds=1)
    assert not res.converged
    assert_certificate(res, a, b, cost)
    optimum = pot_value(a, b, cost)
    assert res.transport_cost >= optimum - rounding(cost)
    assert res.transport_cost - res.duality_gap <= optimum + rounding(cost)


def test_network_simplex_at_its_cap_warns_once_and_stays_honest():
    rng = np.random.default_rng(4)
    a, b = rng.random(30), rng.random(20)
    a, b = a / a.sum(), b / b.sum()
    cost = cdist(rng.normal(size=(30, 2)), rng.normal(size=(20, 2)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve(a, b, cost, "exact", max_iter=1)
    assert [type(w.message) for w in caught] == [otdist.ConvergenceWarning]
    assert not res.converged
    assert_certificate(res, a, b, cost)
    optimum = pot_value(a, b, cost)
    assert res.transport_cost >= optimum - rounding(cost)
    assert res.transport_cost - res.duality_gap <= optimum + rounding(cost)


def _arcs(problem):
    """Arcs in a HiGHS call of the primal ([A | I | -I] x = masses) or of the dual (A^T y <= C)."""
    if "A_eq" in problem:
        return problem["A_eq"].shape[1] - 2 * problem["A_eq"].shape[0]
    return problem["A_ub"].shape[0]


def _failing_linprog(fail):
    real = scipy.optimize.linprog

    def linprog(c, *args, method, options, **kwargs):
        if fail(method, options.get("presolve", True), _arcs(kwargs)):
            return scipy.optimize.OptimizeResult(status=2, message="The problem is infeasible (planted).")
        return real(c, *args, method=method, options=options, **kwargs)

    return linprog


def _random_lp(seed, n, m):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n), rng.random(m)
    return a / a.sum(), b / b.sum(), cdist(rng.normal(size=(n, 2)), rng.normal(size=(m, 2)))


@pytest.mark.parametrize("method", ["primal", "dual"])
def test_highs_falls_back_to_presolve_off(monkeypatch, method):
    a, b, cost = _random_lp(5, 12, 9)
    monkeypatch.setattr(scipy.optimize, "linprog", _failing_linprog(lambda algorithm, presolve, arcs: presolve))
    assert_optimal(solve(a, b, cost, method), a, b, cost, pot_value(a, b, cost))


@pytest.mark.parametrize("method", ["primal", "dual"])
def test_highs_failing_on_restricted_problems_falls_back_to_the_full_problem(monkeypatch, method):
    a, b, cost = _random_lp(6, 20, 16)
    calls = []

    def restricted(algorithm, presolve, arcs):
        calls.append(arcs)
        return arcs < 20 * 16

    monkeypatch.setattr(scipy.optimize, "linprog", _failing_linprog(restricted))
    assert_optimal(solve(a, b, cost, method), a, b, cost, pot_value(a, b, cost))
    assert min(calls) < 20 * 16 == max(calls)


@pytest.mark.parametrize("method", ["primal", "dual"])
def test_highs_failing_everywhere_raises_solver_error(monkeypatch, method):
    monkeypatch.setattr(scipy.optimize, "linprog", _failing_linprog(lambda algorithm, presolve, arcs: True))
    with pytest.raises(otdist.SolverError, match="highs-ds with presolve off: The problem is infeasible"):
        solve(np.full(4, 0.25), np.full(3, 1 / 3), np.arange(12.0).reshape(4, 3), method)


@pytest.mark.parametrize("scale", [1e-80, 1e-12, 1e20, 1e200])
def test_network_simplex_potentials_at_any_cost_scale(scale):
    # The network simplex compares reduced costs with an absolute epsilon: a cost of 1e-80 looked like zero
    # to it (duality gap = the whole cost). Found by the weights-spanning property test.
    a, b = np.array([0.5, 0.5]), np.array([1.0, 0.1]) / 1.1
    cost = scale * np.array([[0.0, 1.0], [1.0, 0.0]])
    assert_optimal(solve(a, b, cost, "exact"), a, b, cost, pot_value(a, b, cost))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("a, b, cost", [
    (np.full(7, 1 / 7), np.array([1.0, 1e-16]) / (1 + 1e-16), np.zeros((7, 2))),
    (np.array([1.0]), np.array([1.0, 1e-16]) / (1 + 1e-16), np.full((1, 2), np.sqrt(2) * 1e-10 / 30)),
])
def test_potentials_carry_no_solver_offset(method, a, b, cost):
    # A solver may return (f + c, g - c) for any c; kept, |c| eps of rounding entered the dual value, above the
    # rounding allowed at the cost's own scale (found by the weights-spanning property test).
    assert_optimal(solve(a, b, cost, method), a, b, cost, pot_value(a, b, cost))
