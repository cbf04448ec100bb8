"""k-NN estimators against closed forms (seeded, stated sample sizes and tolerances)."""

import numpy as np
import pytest

import otdist


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
