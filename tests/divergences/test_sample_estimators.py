"""Classifier, histogram and KDE estimators and standard errors, against closed forms."""

import numpy as np
import pytest

import otdist
from otdist.experiments.closed_forms import kl_gaussians

JS_UNIT_SHIFT = 0.1114214822  # JS(N(0,1), N(1,1)), numerical integration


@pytest.fixture(scope="module")
def unit_shift():
    rng = np.random.default_rng(11)
    return rng.normal(size=6000), rng.normal(1.0, 1.0, size=6000)


@pytest.mark.parametrize("model, tol", [("logistic", 0.012), ("boosting", 0.015), ("mlp", 0.015)])
def test_classifier_js_of_unit_shift(unit_shift, model, tol):
    x, y = unit_shift
    assert otdist.js(x, y, method="classifier", model=model) == pytest.approx(JS_UNIT_SHIFT, abs=tol)


def test_classifier_kl_of_gaussians_in_3d():
    rng = np.random.default_rng(3)
    mean = np.array([0.8, -0.4, 0.3])
    x, y = rng.normal(size=(8000, 3)), rng.normal(size=(8000, 3)) + mean
    truth = kl_gaussians(np.zeros(3), np.eye(3), mean, np.eye(3))  # 0.445
    res = otdist.estimate(x, y, "kl", "classifier")
    assert res.value == pytest.approx(truth, abs=3 * res.extra["held_out_standard_error"] + 0.02)
    assert res.extra["model"] == "logistic" and np.isfinite(res.extra["train_value"])


def test_classifier_js_is_zero_for_equal_distributions_and_log2_for_disjoint():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2))
    assert otdist.js(x, y, method="classifier") == pytest.approx(0.0, abs=0.005)
    assert otdist.js(x, y + 50.0, method="classifier") == pytest.approx(np.log(2), abs=2e-3)  # regularised: p < 1


@pytest.mark.parametrize("divergence, truth", [("kl", 0.5), ("js", JS_UNIT_SHIFT)])
def test_kde_and_hist_in_1d(divergence, truth):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=20000), rng.normal(1.0, 1.0, size=20000)
    fn = getattr(otdist, divergence)
    assert fn(x, y, method="kde") == pytest.approx(truth, rel=0.06)
    assert fn(x, y, method="hist", pseudocount=0.5) == pytest.approx(truth, rel=0.1)
    assert fn(x, y, method="kde", bandwidth="silverman") == pytest.approx(truth, rel=0.06)
    assert fn(x, y, method="hist", bins=60, pseudocount=0.5) == pytest.approx(truth, rel=0.1)


def test_plug_in_kl_without_pseudocount_is_infinite_when_q_misses_a_bin():
    x, y = np.array([0.0, 0.1, 0.2, 5.0]), np.array([0.0, 0.1, 0.2, 0.3])
    assert otdist.kl(x, y, method="hist", bins=5) == np.inf
    assert np.isfinite(otdist.kl(x, y, method="hist", bins=5, pseudocount=0.5))


def test_kde_of_a_constant_sample_is_a_clear_error():
    with pytest.raises(ValueError, match="needs at least two distinct values in y"):
        otdist.js([0.2, 0.8, 0.4], [0.5, 0.5, 0.5], method="kde")


@pytest.mark.parametrize("method", ["hist", "kde"])
def test_density_methods_refuse_multivariate_samples(method):
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match='Use method="knn" or method="classifier"'):
        otdist.kl(x, x, method=method)


def test_knn_error_shrinks_as_n_grows():
    def mean_error(n):
        errors = []
        for seed in range(4):
            rng = np.random.default_rng(seed)
            x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + [1.0, 0.0]
            errors.append(abs(otdist.kl(x, y, method="knn") - 0.5))
        return np.mean(errors)

    assert mean_error(20000) < mean_error(200) / 2


def test_split_standard_error_matches_the_spread_over_independent_samples():
    def draw(seed):
        rng = np.random.default_rng(100 + seed)
        return rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1)) + 1.0

    values = [otdist.js(*draw(s), method="knn") for s in range(20)]
    errors = [otdist.estimate(*draw(s), "js", "knn", seed=s).standard_error for s in range(20)]
    assert 0.5 < np.mean(errors) / np.std(values, ddof=1) < 2.0


def test_bootstrap_standard_error_of_kde_matches_the_spread():
    def draw(seed):
        rng = np.random.default_rng(200 + seed)
        return rng.normal(size=1000), rng.normal(size=1000) + 1.0

    values = [otdist.kl(*draw(s), method="kde") for s in range(15)]
    res = otdist.estimate(*draw(0), "kl", "kde", se="bootstrap", n_resamples=60)
    assert res.se_method == "bootstrap" and len(res.replicates) == 60
    assert 0.5 < res.standard_error / np.std(values, ddof=1) < 2.0


def test_estimate_value_equals_the_plain_function_and_is_seeded():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 0.5
    res = otdist.estimate(x, y, "js", "knn", k=4)
    assert res.value == otdist.js(x, y, method="knn", k=4)
    again = otdist.estimate(x, y, "js", "knn", k=4)
    assert res.standard_error == again.standard_error > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [({"se": "bootstrap"}, 'Use se="split"'), ({"se": "jackknife"}, "se must be one of"),
     ({"n_resamples": 1}, "n_resamples must be >= 2"), ({"method": "hist"}, "estimates densities of 1-D samples"),
     ({"divergence": "tv"}, "divergence must be one of"), ({"model": "svm", "method": "classifier"}, "model must be one of"),
     ({"test_fraction": 1.5, "method": "classifier"}, r"test_fraction must be in \(0, 1\)"),
     ({"bins": 10}, "unexpected option")],
)
def test_estimate_option_errors(kwargs, match):
    x = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises((ValueError, TypeError), match=match):
        otdist.estimate(x, x + 1, **{"divergence": "kl", "method": "knn", **kwargs})


@pytest.mark.parametrize("method, kwargs, tol", [("knn", {}, 0.015), ("hist", {"bins": 40}, 0.01),
                                                 ("kde", {}, 0.05), ("classifier", {"model": "boosting"}, 0.03)])
def test_uniform_against_a_wider_uniform(method, kwargs, tol):
    # KL(U(0, 1) || U(0, 2)) = log 2. The KDE smooths the jumps at 0, 1 and 2, hence its wider tolerance.
    rng = np.random.default_rng(8)
    x, y = rng.random(10000), 2 * rng.random(10000)
    kl_true = np.log(2)
    # On [0, 1] p = 1, q = 1/2, m = 3/4; on [1, 2] p = 0, q = 1/2, m = 1/4.
    js_true = 0.5 * (np.log(1 / 0.75)) + 0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
    assert otdist.kl(x, y, method=method, **kwargs) == pytest.approx(kl_true, abs=tol)
    assert otdist.js(x, y, method=method, **kwargs) == pytest.approx(js_true, abs=tol)
