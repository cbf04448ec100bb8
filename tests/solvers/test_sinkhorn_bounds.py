"""Certified bounds of ``method="sinkhorn"`` against the exact W_p (network simplex, POT's emd2)."""

import warnings

import numpy as np
import ot
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otdist
from otdist.exceptions import ConvergenceWarning
from otdist.solvers import sinkhorn_bounds

#: The exact solver's value and the bounds are sums of at most n m float64 terms: a relative
#: rounding of (n + m) ulps, far below this.
ROUNDING = 1e-10


def _clouds(seed, n, m, d, shift):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), m=st.integers(1, 12), d=st.integers(1, 3),
       p=st.sampled_from([1, 2]), epsilon=st.sampled_from([0.003, 0.03, 0.3, 3.0]),
       max_iter=st.sampled_from([3, 10_000]), zero=st.booleans())
def test_bounds_bracket_the_exact_value(seed, n, m, d, p, epsilon, max_iter, zero):
    """Whatever the potentials (converged or stopped after 3 iterations), lower <= W_p <= upper."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + rng.normal()
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    if zero and n > 1:
        a[rng.integers(n)] = 0.0
    exact = otdist.wasserstein(x, y, a, b, p=p, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = otdist.transport(x, y, a, b, p=p, method="sinkhorn", epsilon=epsilon, relative=True, max_iter=max_iter,
                               on_unconverged="warn")
    lower, upper = res.bounds
    assert 0 <= lower <= exact * (1 + ROUNDING) + ROUNDING
    assert exact * (1 - ROUNDING) - ROUNDING <= upper


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1, 2])
def test_width_is_at_most_epsilon_log_nm(seed, p):
    """With f = T_b(g): min_i (C_ij - f_i) >= T_a(f)_j - eps log(1 / a_min) (and likewise for f), so the
    lower bound is within eps log(1 / (a_min b_min)) = eps log(n m) (uniform weights) of OT_eps; the upper
    bound, <P_eps, C> <= OT_eps, moves by at most 2 ||marginal error||_1 max |C| in the rounding."""
    n, m = 30, 20
    x, y = _clouds(seed, n, m, 2, 0.5)
    eps = 0.05
    res = otdist.transport(x, y, p=p, method="sinkhorn", epsilon=eps)
    lower, upper = (v**p for v in res.bounds)
    c_max = (np.linalg.norm(x[:, None] - y[None], axis=2) ** p).max()
    assert upper - lower <= eps * np.log(n * m) + 2 * res.extra["marginal_error"] * c_max + ROUNDING * c_max


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_well_separated_clouds_are_bracketed_within_one_percent(seed, p, kind):
    """Clouds 4 apart, eps = W_p^p / 100 (measured: both bounds within 0.5% of W_p)."""
    rng = np.random.default_rng(seed)
    draw = rng.normal if kind == "gaussian" else rng.random
    x, y = draw(size=(40, 2)), draw(size=(40, 2)) + 4.0
    exact = otdist.wasserstein(x, y, p=p, method="exact")
    lower, upper = otdist.transport(x, y, p=p, method="sinkhorn", epsilon=exact**p / 100).bounds
    assert 0.99 * exact <= lower <= exact <= upper <= 1.01 * exact


def test_given_cost_bounds_bracket_pot_emd2_with_negative_costs():
    rng = np.random.default_rng(3)
    for _ in range(3):
        cost = rng.normal(size=(15, 10)) - 1.0
        a, b = rng.random(15) + 0.1, rng.random(10) + 0.1
        a, b = a / a.sum(), b / b.sum()
        exact = ot.emd2(a, b, cost)
        lower, upper = otdist.transport(None, None, a, b, cost=cost, method="sinkhorn", epsilon=0.05).bounds
        assert lower - ROUNDING <= exact <= upper + ROUNDING
        assert lower < 0  # no clipping: a transport cost may be negative


def test_rounded_plan_is_a_coupling():
    import torch

    rng = np.random.default_rng(4)
    plan = torch.tensor(rng.random((7, 9)))
    a, b = torch.tensor(rng.random(7) + 0.1), torch.tensor(rng.random(9) + 0.1)
    a, b = a / a.sum(), b / b.sum()
    rounded = sinkhorn_bounds.rounded_plan(plan, a, b)
    assert bool((rounded >= 0).all())
    np.testing.assert_allclose(rounded.sum(dim=1), a, atol=1e-15)
    np.testing.assert_allclose(rounded.sum(dim=0), b, atol=1e-15)
