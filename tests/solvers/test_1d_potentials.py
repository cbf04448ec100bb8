"""Dual potentials of method="1d": feasible on the whole cost matrix, zero duality gap, and the same dual
objective as scipy's HiGHS linear program and otdist's dual LP, with ties, zero weights and n != m."""

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import otdist
from tests.conftest import weighted_sample

EPS = np.finfo(np.float64).eps
#: Below the normal range a rounding is absolute: up to half of the smallest subnormal per operation.
TINY = np.finfo(np.float64).smallest_subnormal
#: HiGHS solves the LP to its default feasibility and optimality tolerances (1e-7, relative to the cost scale).
LP_REL = 1e-7


def _check_certificate(u, v, a, b, p):
    """Feasible to a few roundings of each entry; gap = primal - dual of the returned objects, ~0."""
    res = otdist.transport(u, v, a, b, p=p, method="1d")
    f, g = res.potentials
    a, b = np.asarray(a, float) / np.sum(a), np.asarray(b, float) / np.sum(b)
    cost = np.abs(np.subtract.outer(u, v)) ** p
    # One c-transform leaves f_i + g_j <= C_ij up to the rounding of C_ij - f_i (a few eps of the magnitudes).
    scale = cost.max() + np.abs(f).max() + np.abs(g).max()
    assert (f[:, None] + g[None, :] - cost).max() <= 4 * (EPS * scale + TINY)
    dual = a @ f + b @ g
    primal = float(np.sum(res.plan.toarray() * cost))
    # Sums of n + m terms of size <= scale, each rounded.
    rounding = 4 * (len(u) + len(v)) * (EPS * scale + TINY)
    assert abs(res.duality_gap) <= rounding
    assert primal - dual == pytest.approx(res.duality_gap, abs=rounding)
    return res, dual, cost, a, b, scale


def _linprog_value(cost, a, b):
    """HiGHS's optimum, on the cost divided by a power of two near its largest entry (exact): HiGHS's
    tolerances are absolute, so a cost of 1e-235 would be below them."""
    n, m = cost.shape
    scale = 2.0 ** np.floor(np.log2(cost.max())) if cost.max() > 0 else 1.0
    rows = np.vstack([np.kron(np.eye(n), np.ones(m)), np.kron(np.ones(n), np.eye(m))])
    return scipy.optimize.linprog(cost.ravel() / scale, A_eq=rows, b_eq=np.concatenate([a, b]), method="highs").fun * scale


@given(weighted_sample(max_size=15), weighted_sample(max_size=15), st.sampled_from([1.0, 1.5, 2.0, 3.0]))
@example((np.full(2, 5.61671165e-207), np.ones(2)), (np.zeros(1), np.ones(1)), 1.5)  # a gap of one subnormal
def test_potentials_certify_the_linear_program_optimum(u, v, p):
    (uv, uw), (vv, vw) = u, v
    res, dual, cost, a, b, scale = _check_certificate(uv, vv, uw, vw, p)
    assert dual == pytest.approx(_linprog_value(cost, a, b), rel=LP_REL, abs=LP_REL * cost.max())


@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1.0, 2.0]), st.data())
def test_ties_and_zero_weights(n, m, p, data):
    """Repeated values (ties inside and across samples) and zero weights: the staircase has zero-mass steps."""
    values = st.integers(-3, 3).map(float)
    u = data.draw(hnp.arrays(np.float64, n, elements=values))
    v = data.draw(hnp.arrays(np.float64, m, elements=values))
    weights = st.sampled_from([0.0, 0.5, 1.0, 2.0])
    a = data.draw(hnp.arrays(np.float64, n, elements=weights).filter(lambda w: w.sum() > 0))
    b = data.draw(hnp.arrays(np.float64, m, elements=weights).filter(lambda w: w.sum() > 0))
    res, dual, cost, a, b, scale = _check_certificate(u, v, a, b, p)
    assert dual == pytest.approx(_linprog_value(cost, a, b), rel=LP_REL, abs=LP_REL * cost.max())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1.0, 2.0, 2.5])
def test_same_objective_as_the_dual_linear_program(seed, p):
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=40) * 3, rng.exponential(size=31)
    a, b = rng.random(40), rng.random(31)
    res, dual, cost, *_ = _check_certificate(u, v, a, b, p)
    lp = otdist.transport(u[:, None], v[:, None], a, b, p=p, method="dual")
    lp_f, lp_g = lp.potentials
    lp_dual = (a / a.sum()) @ lp_f + (b / b.sum()) @ lp_g
    assert dual == pytest.approx(lp_dual, rel=1e-9, abs=1e-12 * cost.max())
    assert res.transport_cost == pytest.approx(lp.transport_cost, rel=1e-9)


def test_far_from_the_origin_and_large():
    """Potentials of magnitude ~x^2 far from 0 still certify the cost; 3 000 points, so O(n log n) matters."""
    rng = np.random.default_rng(7)
    u, v = 1e3 + rng.normal(size=3000), 1e3 + rng.normal(size=2500) * 1.5
    _check_certificate(u, v, rng.random(3000), rng.random(2500), 2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    u = torch.tensor([0.0, 1.0, 3.0, 3.0], dtype=dtype)
    v = torch.tensor([0.5, 2.0], dtype=dtype)
    res = otdist.transport(u, v, p=2, method="1d")
    f, g = res.potentials
    assert f.dtype == g.dtype == dtype and f.shape == (4,) and g.shape == (2,)
    cost = (u[:, None] - v[None, :]) ** 2
    assert float((f[:, None] + g[None, :] - cost).max()) <= 4 * float(torch.finfo(dtype).eps) * 9.0
    # Computed in float64 from the float32 inputs and normalised weights: the gap is float64 rounding.
    assert abs(res.duality_gap) <= 1e-14
