"""Sliced Wasserstein against the exact 1-D solver, scipy and POT slices along given directions, the closed
form for translations, and its certified bounds around the exact W_p."""

import numpy as np
import ot
import pytest
import scipy.stats
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import otdist
import otdist.methods.sliced  # noqa: F401  (ROUNDING_ULPS)
from otdist.solvers.sliced import row_norms
from tests.conftest import weighted_sample


def test_equals_exact_1d_when_d_is_1(rng):
    u, v, w = rng.normal(size=(50, 1)), rng.normal(size=(40, 1)), rng.random(50)
    for p in [1, 2]:
        sliced = otdist.transport(u, v, w, p=p, method="sliced", n_projections=3)
        assert sliced.value == pytest.approx(otdist.wasserstein(u[:, 0], v[:, 0], w, p=p), rel=1e-12)


@pytest.mark.parametrize("d", [2, 5])
def test_translation_closed_form(rng, d):
    x = rng.normal(size=(200, d))
    shift = rng.normal(size=d)
    res = otdist.transport(x, x + shift, p=2, method="sliced", n_projections=4000, seed=1)
    expected = np.linalg.norm(shift) / np.sqrt(d)  # SW_2(x, x + v) = |v| / sqrt(d)
    assert abs(res.value - expected) < 4 * res.standard_error
    assert 0 < res.standard_error < 0.05 * expected


def test_seeded_and_differentiable(rng):
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 1
    assert otdist.wasserstein(x, y, method="sliced", seed=5) == otdist.wasserstein(x, y, method="sliced", seed=5)
    xt = torch.tensor(x, requires_grad=True)
    value = otdist.wasserstein(xt, torch.tensor(y), method="sliced", p=2)
    value.backward()
    assert isinstance(value, torch.Tensor) and torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0


def test_is_a_lower_bound_of_the_exact_distance(rng):
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) * 2 + 0.5
    assert otdist.wasserstein(x, y, p=2, method="sliced", n_projections=500) <= otdist.wasserstein(x, y, p=2, method="exact")


# ----------------------------------------------------------------------------- user-given directions

#: Rounding of float64 1-D transport costs over <= 100 terms is ~1e-14 relative; scipy and POT sum differently.
REL = 1e-12
#: The bounds hold exactly in exact arithmetic; this margin only absorbs the rounding of both solvers.
BOUND_REL = 1e-10
BOUND_ABS = 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_given_directions_match_the_mean_of_scipy_slices(seed):
    """SW_1 over given rows theta_k is the mean of W_1 of the projections on theta_k / |theta_k|."""
    rng = np.random.default_rng(seed)
    x, y, a, b = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.5, rng.random(30), rng.random(25)
    theta = rng.normal(size=(7, 3)) * rng.uniform(0.1, 10.0, size=(7, 1))
    unit = theta / np.linalg.norm(theta, axis=1, keepdims=True)
    expected = np.mean([scipy.stats.wasserstein_distance(x @ t, y @ t, a, b) for t in unit])
    res = otdist.transport(x, y, a, b, method="sliced", projections=theta)
    assert res.value == pytest.approx(expected, rel=REL)
    assert res.standard_error is None and res.n_iter == 7  # not a Monte-Carlo estimate


@pytest.mark.parametrize("p", [1.5, 2.0])
def test_given_directions_match_pot_slices_for_any_order(rng, p):
    x, y = rng.normal(size=(20, 2)), rng.exponential(size=(20, 2))
    theta = np.array([[1.0, 0.0], [1.0, 1.0], [-3.0, 0.5]])
    unit = theta / np.linalg.norm(theta, axis=1, keepdims=True)
    expected = np.mean([ot.wasserstein_1d(x @ t, y @ t, p=p) for t in unit]) ** (1 / p)
    assert otdist.wasserstein(x, y, p=p, method="sliced", projections=theta) == pytest.approx(expected, rel=REL)


def test_coordinate_axes_and_torch_directions(rng):
    x, y = rng.normal(size=(15, 3)), rng.normal(size=(12, 3)) * 2
    axes = np.mean([scipy.stats.wasserstein_distance(x[:, k], y[:, k]) for k in range(3)])
    assert otdist.wasserstein(x, y, method="sliced", projections=np.eye(3)) == pytest.approx(axes, rel=REL)
    theta = torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = otdist.wasserstein(torch.tensor(x), torch.tensor(y), p=2, method="sliced", projections=theta)
    (grad,) = torch.autograd.grad(value, theta)
    # W_2 along theta / |theta| does not change with |theta|: the gradient is orthogonal to theta.
    assert float(grad @ theta.detach().T) == pytest.approx(0.0, abs=1e-12) and float(grad.norm()) > 0
    assert torch.autograd.gradcheck(
        lambda t: otdist.wasserstein(torch.tensor(x), torch.tensor(y), p=2, method="sliced", projections=t), (theta,))


@pytest.mark.parametrize(
    "projections, options, error, match",
    [
        (np.array([[1.0, 0.0], [0.0, 0.0]]), {}, otdist.InputError, "zero row"),
        (np.ones((2, 3)), {}, otdist.InputError, r"\(L, d\)"),
        (np.ones(2), {}, otdist.InputError, r"\(L, d\)"),
        (np.zeros((0, 2)), {}, otdist.InputError, r"\(L, d\)"),
        (np.array([[np.nan, 1.0]]), {}, otdist.InputError, "finite"),
        ("xy", {}, otdist.InputTypeError, "real numbers"),
        (np.eye(2), {"n_projections": 5}, otdist.InputError, "excludes n_projections"),
        (np.eye(2), {"seed": 0}, otdist.InputError, "excludes seed"),
    ],
)
def test_invalid_directions_are_refused(projections, options, error, match):
    with pytest.raises(error, match=match):
        otdist.wasserstein(np.zeros((3, 2)), np.ones((2, 2)), method="sliced", projections=projections, **options)


def test_tiny_and_huge_directions_are_normalised(rng):
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
    reference = otdist.wasserstein(x, y, method="sliced", projections=[[3.0, 4.0]])
    for scale in (1e-300, 1e300):
        assert otdist.wasserstein(x, y, method="sliced", projections=[[3.0 * scale, 4.0 * scale]]) == reference


# ----------------------------------------------------------------------------- certified bounds


@given(weighted_sample(d=2, max_size=12), weighted_sample(d=2, max_size=12), st.sampled_from([1.0, 1.5, 2.0, 3.0]),
       st.integers(0, 2**16))
@example((np.array([[1.0, 0], [0, 0], [0, 0]]), np.ones(3)), (np.array([[1e-9, 0], [1, 0], [0, 0]]), np.ones(3)), 1.5,
         0)  # a cost of 5.5e-15 beside a rounding widening of 5.3e-15: the lower bound is far below the value
def test_bounds_hold_around_the_exact_distance(u, v, p, seed):
    (x, a), (y, b) = u, v
    exact = otdist.wasserstein(x, y, a, b, p=p, method="exact")
    res = otdist.transport(x, y, a, b, p=p, method="sliced", n_projections=10, seed=seed)
    lower, upper = res.bounds
    # The largest slice is above their mean; the lower bound is the largest slice's cost less the rounding
    # widening (4 ulps per point of diameter ** p), so the mean's cost is below the lower bound's plus it.
    diameter = row_norms(np.ptp(np.concatenate([x, y]), axis=0)[None, :])[0]
    widening = otdist.methods.sliced.ROUNDING_ULPS * (len(x) + len(y)) * np.finfo(float).eps * diameter**p
    assert res.value**p <= (lower**p + widening) * (1 + BOUND_REL) + BOUND_ABS
    assert lower <= exact * (1 + BOUND_REL) + BOUND_ABS
    assert exact <= upper * (1 + BOUND_REL) + BOUND_ABS


@given(weighted_sample(d=3, max_size=10), weighted_sample(d=3, max_size=10), st.integers(0, 2**16))
def test_bounds_in_three_dimensions_with_given_directions(u, v, seed):
    (x, a), (y, b) = u, v
    theta = np.random.default_rng(seed).normal(size=(4, 3))
    exact = otdist.wasserstein(x, y, a, b, p=2, method="exact")
    lower, upper = otdist.transport(x, y, a, b, p=2, method="sliced", projections=theta).bounds
    assert lower <= exact * (1 + BOUND_REL) + BOUND_ABS <= upper * (1 + BOUND_REL) + 2 * BOUND_ABS


@given(weighted_sample(), weighted_sample(), st.sampled_from([1.0, 2.0]))
@example((np.zeros(1), np.ones(1)), (np.array([1.982703987581977e-171, 0, 0, 0, 0]), np.ones(5)), 1.0)  # the
# diameter's square underflowed in the rounding widening, which came out 0: the lower bound was 1 ulp above W_1
def test_bounds_are_tight_in_one_dimension(u, v, p):
    """On the line every direction is +-1 and the sorting coupling is optimal: lower = upper = W_p."""
    (x, a), (y, b) = u, v
    lower, upper = otdist.transport(x[:, None], y[:, None], a, b, p=p, method="sliced", n_projections=3).bounds
    expected = otdist.wasserstein(x, y, a, b, p=p, method="1d")
    spread = max(np.ptp(np.concatenate([x, y])), 1.0)
    # The bounds are widened by 4 ulps per point of spread ** p before the p-th root (a certificate in
    # floating point), so they meet W_p to within that slack's root (twice it: the two sides round too).
    slack = 2 * (4 * (x.size + y.size) * np.finfo(float).eps) ** (1 / p) * spread
    assert lower <= expected <= upper
    assert lower == pytest.approx(expected, rel=1e-9, abs=slack)
    assert upper == pytest.approx(expected, rel=1e-9, abs=slack)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_uniform_upper_bound_is_the_general_coupling_cost(seed, p):
    """Equal sizes and uniform weights: the R^d cost of the sorting coupling along a direction, from the two sort
    orders alone, equals the cost of the general (staircase) coupling on points in general position, and lies
    above the exact W_p^p (POT's network simplex)."""
    from otdist.solvers import sliced

    rng = np.random.default_rng(seed)
    n, d = 120, 3
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.4
    w = np.full(n, 1.0 / n)
    theta = sliced.directions(d, 1, seed)[:, 0]
    fast = sliced.coupling_cost(x, y, w, w, p, theta, uniform=True)
    general = sliced.coupling_cost(x, y, w, w, p, theta)
    assert fast == pytest.approx(general, rel=1e-12)
    assert fast >= ot.emd2(w, w, ot.dist(x, y, metric="euclidean") ** p) * (1 - 1e-12)
