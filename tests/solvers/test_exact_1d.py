"""The 1-D solver against scipy (p = 1) and POT (any p), plus planted answers."""

import numpy as np
import ot
import pytest
import scipy.stats
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import otdist
from tests.conftest import weighted_sample

REL = 1e-9  # relative agreement with scipy / POT
ABS = 1e-12  # absolute floor for values that cancel to ~0


@given(weighted_sample(), weighted_sample(), st.booleans())
def test_matches_scipy_wasserstein_distance(u, v, use_weights):
    (uv, uw), (vv, vw) = u, v
    kw = (uw, vw) if use_weights else (None, None)
    expected = scipy.stats.wasserstein_distance(uv, vv, *kw)
    assert otdist.wasserstein(uv, vv, *kw) == pytest.approx(expected, rel=REL, abs=ABS)


@given(weighted_sample(), weighted_sample(), st.sampled_from([1.0, 1.5, 2.0, 3.0]))
def test_matches_pot_for_any_order(u, v, p):
    (uv, uw), (vv, vw) = u, v
    # Compared as W_p^p: the p-th root turns rounding-level values (POT gives ~1e-16 for some equal
    # measures written differently) into ~1e-8.
    expected = ot.wasserstein_1d(uv, vv, uw / uw.sum(), vw / vw.sum(), p=p)
    spread = max(np.ptp(np.concatenate([uv, vv])), 1.0)
    assert otdist.wasserstein(uv, vv, uw, vw, p=p) ** p == pytest.approx(expected, rel=1e-8, abs=1e-12 * spread**p)


#: Ten tied values whose shifted copy ties with one more value: the cumulative weights of the two
#: measures, summed in different orders, differ by an ulp at a level where 28 meets 0.25.
ROUNDED_LEVELS = (np.array([28.0] + [0.0] * 10 + [-1.78797447e-230]), np.array([0.5] * 10 + [1.0, 0.5]))


@given(weighted_sample(min_size=2), st.floats(-50, 50), st.sampled_from([1.0, 2.0, 4.0]))
@example(ROUNDED_LEVELS, 0.25, 4.0)
def test_translation_moves_everything_by_the_shift(u, shift, p):
    values, weights = u
    assert otdist.wasserstein(values, values + shift, weights, weights, p=p) == pytest.approx(abs(shift), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("as_torch", [False, True])
def test_levels_equal_up_to_rounding_move_no_mass_across_the_range(as_torch):
    values, weights = ROUNDED_LEVELS
    u, w = (torch.as_tensor(values), torch.as_tensor(weights)) if as_torch else (values, weights)
    # Every point moves by 0.25; a rounding-sized mass matched from 28 to 0.25 added ~1e-8 relative at p = 4.
    assert float(otdist.wasserstein(u, u + 0.25, w, w, p=4)) == pytest.approx(0.25, rel=1e-12)


def test_a_weight_at_the_resolution_of_its_level_is_kept():
    # 2**-50 is 8 ulps below 1: the last level of u, one interval of u's own; its mass moves 10**6.
    tiny = 2.0**-50
    value = otdist.wasserstein(np.array([0.0, 1e6]), np.array([0.0]), np.array([1.0, tiny]), None, p=2)
    assert value == pytest.approx(np.sqrt(tiny * 1e12), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_torch_keeps_the_whole_mass(seed):
    # Float32 cumulative sums of 20 000 weights are exact to ~sqrt(n) ulps; merging rounding-sized
    # intervals must not lose mass (it lost ~1e-3 of it when such intervals were dropped).
    rng = np.random.default_rng(seed)
    n = 20_000
    x, y, a, b = rng.normal(size=n), rng.normal(size=n) + 0.3, rng.random(n), rng.random(n)
    exact = otdist.wasserstein(x, y, a, b, p=2)
    single = otdist.wasserstein(*(torch.tensor(t, dtype=torch.float32) for t in (x, y, a, b)), p=2)
    assert float(single) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_gradient_is_a_subgradient_at_tied_levels(seed):
    # Equal sizes and uniform weights: every level of u ties with one of v. W_p^p is convex in the
    # weights, so its gradient g satisfies (F(a + t h) - F(a)) / t >= <g, h> for every direction h
    # that keeps the total; TOL covers the O(t) curvature term of the difference quotient.
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    a = torch.full((5,), 0.2, dtype=torch.float64, requires_grad=True)
    b = torch.full((5,), 0.2, dtype=torch.float64)
    cost = otdist.wasserstein(x, y, a, b, p=2) ** 2
    (grad,) = torch.autograd.grad(cost, a)
    t, tol = 1e-4, 1e-6
    for _ in range(50):
        h = torch.randn(5, generator=gen, dtype=torch.float64)
        h = (h - h.mean()) / (h - h.mean()).norm()
        moved = otdist.wasserstein(x, y, (a + t * h).detach(), b, p=2) ** 2
        assert float((moved - cost.detach()) / t) >= float(grad @ h) - tol


def test_equal_size_fast_path_agrees_with_general_path(rng):
    u, v = rng.normal(size=1000), rng.exponential(size=1000)
    fast = otdist.wasserstein(u, v, p=2)
    general = otdist.wasserstein(u, v, np.ones(1000), np.ones(1000), p=2)
    assert fast == pytest.approx(general, rel=1e-12)


@pytest.mark.parametrize(
    "p_masses, q_masses, expected",
    [((3, 2, 1, 4), (1, 2, 4, 3), 0.5), ((5, 2, 2, 5), (3, 3, 5, 3), 5 / 14)],
)
def test_earth_piles(p_masses, q_masses, expected):
    positions = [0, 1, 2, 3]
    assert otdist.wasserstein(positions, positions, p_masses, q_masses) == pytest.approx(expected, rel=1e-12)
    res = otdist.transport(positions, positions, p_masses, q_masses, method="1d")
    plan = res.plan.toarray()
    np.testing.assert_allclose(plan.sum(1), np.array(p_masses) / sum(p_masses), atol=1e-15)
    np.testing.assert_allclose(plan.sum(0), np.array(q_masses) / sum(q_masses), atol=1e-15)
    cost = np.abs(np.subtract.outer(positions, positions))
    assert (plan * cost).sum() == pytest.approx(expected, rel=1e-12)


@given(weighted_sample(max_size=12), weighted_sample(max_size=12))
def test_monotone_plan_is_optimal_against_network_simplex(u, v):
    (uv, uw), (vv, vw) = u, v
    res = otdist.transport(uv, vv, uw, vw, method="1d")
    expected = ot.emd2(uw / uw.sum(), vw / vw.sum(), np.abs(np.subtract.outer(uv, vv)))
    assert res.value == pytest.approx(expected, rel=1e-9, abs=1e-11)
    np.testing.assert_allclose(np.asarray(res.plan.sum(1)).ravel(), uw / uw.sum(), atol=1e-12)


def test_torch_in_torch_out_with_gradients():
    u = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([5.0, 6.0, 8.0], dtype=torch.float64)
    w = otdist.wasserstein(u, v, p=2)
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float64
    w.backward()
    # W_2 of a pure translation by 5: dW/du_i = (u_i - v_i) / (n W) = -1/3.
    np.testing.assert_allclose(u.grad.numpy(), [-1 / 3] * 3, rtol=1e-12)


def test_torch_weight_gradients_match_finite_differences():
    torch.manual_seed(0)
    u, v = torch.randn(7, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    uw = torch.rand(7, dtype=torch.float64, requires_grad=True)
    vw = torch.rand(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: otdist.wasserstein(u, v, a, b, p=2), (uw, vw))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("ties", [False, True])
def test_uniform_monotone_coupling_matches_the_staircase(seed, p, ties):
    """With equal sizes and uniform weights the coupling pairs the k-th smallest values (mass 1/n each): its cost
    is POT's W_p^p and the staircase's cost, it is a permutation of each sample in sorted order with mass 1/n,
    and its mass times the pairs' costs gives that W_p^p again."""
    from otdist.solvers import exact_1d

    rng = np.random.default_rng(seed)
    n = 257
    u, v = rng.normal(size=n), rng.normal(0.3, 2.0, size=n)
    if ties:
        u, v = np.round(u), np.round(v)
    w = np.full(n, 1.0 / n)
    fast = exact_1d.monotone_coupling(u, v, w, w, p, uniform=True)
    general = exact_1d.monotone_coupling(u, v, w, w, p)
    expected = ot.wasserstein_1d(u, v, w, w, p=p)
    assert float(fast.transport_cost) == pytest.approx(expected, rel=1e-12)
    assert float(fast.transport_cost) == pytest.approx(float(general.transport_cost), rel=1e-12)
    assert sorted(fast.u_index) == list(range(n)) and sorted(fast.v_index) == list(range(n))
    assert np.all(np.diff(u[fast.u_index]) >= 0) and np.all(np.diff(v[fast.v_index]) >= 0)
    np.testing.assert_array_equal(fast.mass, w)
    assert float(fast.mass @ np.abs(u[fast.u_index] - v[fast.v_index]) ** p) == pytest.approx(expected, rel=1e-12)
