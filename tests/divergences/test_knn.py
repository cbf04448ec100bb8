"""k-NN estimators against closed forms (seeded, stated sample sizes and tolerances)."""

import numpy as np
import pytest

import otdist
from otdist import EstimateWarning


def gaussian_kl(mu1, cov1, mu2, cov2):
    d = len(mu1)
    inv2 = np.linalg.inv(cov2)
    diff = np.asarray(mu2) - np.asarray(mu1)
    return 0.5 * (np.trace(inv2 @ cov1) + diff @ inv2 @ diff - d + np.log(np.linalg.det(cov2) / np.linalg.det(cov1)))


def test_kl_between_gaussians_in_two_dimensions():
    rng = np.random.default_rng(0)
    mu1, cov1 = np.zeros(2), np.array([[1.0, 0.3], [0.3, 0.5]])
    mu2, cov2 = np.array([0.5, -0.5]), np.array([[1.5, 0.0], [0.0, 1.0]])
    x = rng.multivariate_normal(mu1, cov1, size=8000)
    y = rng.multivariate_normal(mu2, cov2, size=8000)
    expected = gaussian_kl(mu1, cov1, mu2, cov2)
    assert otdist.kl(x, y, method="knn") == pytest.approx(expected, abs=0.05)  # n = 8000, k = 5


def test_js_between_unit_gaussians_one_apart():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8000, 1)), rng.normal(size=(8000, 1)) + 1.0
    # 0.1114214822 by numerical integration of the closed-form densities
    assert otdist.js(x, y, method="knn") == pytest.approx(0.1114214822, abs=0.01)


def test_estimates_improve_with_sample_size():
    errors = []
    for n in (250, 4000):
        estimates = []
        for seed in range(4):
            rng = np.random.default_rng(seed)
            estimates.append(otdist.kl(rng.normal(size=(n, 1)), rng.normal(size=(n, 1)) + 1.0, method="knn"))
        errors.append(abs(np.mean(estimates) - 0.5) + np.std(estimates))
    assert errors[1] < errors[0]


def test_js_saturates_at_log2_for_separated_samples():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1)) + 50.0
    assert otdist.js(x, y, method="knn") == pytest.approx(np.log(2), abs=1e-3)


def test_duplicates_give_a_clear_error_not_inf():
    x = np.repeat(np.arange(10.0), 8)[:, None]
    with pytest.raises(ValueError, match="exact duplicates .* add tiny noise"):
        otdist.kl(x, x + 0.5, method="knn")
    assert np.isfinite(otdist.kl(x, x + 0.5, method="knn", k=9))


JS_UNIT_SHIFT = 0.1114214822  # JS(N(0, 1), N(1, 1)) by numerical integration of the closed-form densities


@pytest.mark.parametrize("name", ["kl", "js"])
@pytest.mark.parametrize("shared", ["identical", "permuted", "partial"])
def test_points_shared_by_both_samples_are_a_clear_error(name, shared):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    y = {"identical": x, "permuted": x[rng.permutation(400)],
         "partial": np.vstack([x[:40], rng.normal(size=(360, 2))])}[shared]
    with pytest.raises(otdist.InputError, match="also appear in y.*jitter"):
        getattr(otdist, name)(x, y, method="knn")


def test_js_of_unequal_sizes_against_the_closed_form():
    # Five seeds; the tolerance is 3 standard errors of their mean (split standard errors).
    values, errors = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        res = otdist.estimate(rng.normal(size=(4000, 1)), rng.normal(1.0, 1.0, size=(7000, 1)), "js", "knn", seed=seed)
        values.append(res.value)
        errors.append(res.standard_error)
    assert abs(np.mean(values) - JS_UNIT_SHIFT) <= 3 * np.sqrt(np.mean(np.square(errors)) / len(errors))


def test_js_of_unequal_sizes_is_seeded_and_symmetric_in_its_construction():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(700, 2)) + 0.5
    assert otdist.js(x, y, method="knn", seed=2) == otdist.js(x, y, method="knn", seed=2)
    with pytest.raises(otdist.InputError, match="smallest part"):
        otdist.js(x[:7], y[:8], method="knn", k=5)


def test_a_grid_against_uniform_draws_is_not_clipped_and_warns():
    # A regular grid is not an i.i.d. sample: its k-th neighbour distances are larger than an i.i.d.
    # sample's, so the estimates fall far below zero (about d log(1.197 / sqrt(2)) = -0.33 for KL
    # in 2-D with k = 5). Nothing may clip them, and estimate() flags them.
    grid = (np.stack(np.meshgrid(np.arange(40), np.arange(40)), -1).reshape(-1, 2) + 0.5) / 40
    uniform = np.random.default_rng(0).random((1600, 2))
    for divergence in ("kl", "js"):
        with pytest.warns(EstimateWarning, match="standard errors"):
            res = otdist.estimate(grid, uniform, divergence, "knn")
        assert res.value < -2 * res.standard_error
        assert otdist.kl(grid, uniform, method="knn") < 0 and otdist.js(grid, uniform, method="knn") < 0


@pytest.mark.parametrize("name", ["kl", "js"])
def test_units_never_decide_a_duplicate_on_any_entry_point(name):
    """A coordinate difference of 7.7e-163 squares to 0 at these units, not at 4 times them: the direct
    call, the registry's distance (its own preflight) and the estimate all treat both units alike."""
    x = np.array([[0, 3.5e-4], [7e-4, 0], [0, 3.5e-4], [7e-4, 0], [0, 3.5e-4], [7.73e-163, 0], [0, 3.5e-4], [7e-4, 0]])
    y = np.zeros((16, 2))
    y[[4, 6, 9, 10, 11, 15], 1] = 7e-4
    calls = (lambda s: getattr(otdist, name)(x * s, y * s, method="knn"),
             lambda s: otdist.distance(x * s, y * s, metric=f"{name}_knn"))
    for call in calls:
        assert call(1.0) == call(4.0) == call(2.0**-20)


def test_coordinates_far_apart_in_magnitude_keep_their_distances():
    """Scaling to a common exponent must not make small coordinates subnormal (so their squares 0)."""
    x, y = np.array([[1e150], [1e-160], [3e-160], [5e-160]]), np.array([[2e150], [2e-160], [4e-160], [7e-160]])
    # The nearest neighbours of the small points are the small points; the distances are exact differences.
    rho = np.array([1e150 - 5e-160, 2e-160, 2e-160, 2e-160])  # k = 1 within x
    nu = np.array([1e150, 1e-160, 1e-160, 1e-160])  # k = 1 in y
    expected = np.mean(np.log(nu / rho)) + np.log(4 / 3)
    assert otdist.kl(x, y, method="knn", k=1) == pytest.approx(expected, rel=1e-12)
