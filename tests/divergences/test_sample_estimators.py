"""Classifier, histogram and KDE estimators and standard errors, against closed forms."""

import numpy as np
import pytest
import torch

import otdist
from otdist.divergences import classifier
from otdist.experiments.closed_forms import kl_gaussians

JS_UNIT_SHIFT = 0.1114214822  # JS(N(0,1), N(1,1)), numerical integration


@pytest.mark.parametrize("model", ["logistic", "boosting", pytest.param("mlp", marks=pytest.mark.slow)])
def test_classifier_js_of_unit_shift(model):
    # Three independent draws; the mean is within 3 of its standard errors (from the held-out ones).
    values, errors = [], []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        res = classifier.estimate("js", rng.normal(size=(4000, 1)), rng.normal(1.0, 1.0, size=(4000, 1)), model, seed=seed)
        values.append(res.value)
        errors.append(res.standard_error)
    assert abs(np.mean(values) - JS_UNIT_SHIFT) <= 3 * np.sqrt(np.sum(np.square(errors))) / len(errors)


def test_classifier_kl_of_gaussians_in_3d():
    rng = np.random.default_rng(3)
    mean = np.array([0.8, -0.4, 0.3])
    x, y = rng.normal(size=(8000, 3)), rng.normal(size=(8000, 3)) + mean
    truth = kl_gaussians(np.zeros(3), np.eye(3), mean, np.eye(3))  # 0.445
    res = otdist.estimate(x, y, "kl", "classifier")
    assert res.value == pytest.approx(truth, abs=3 * res.extra["held_out_standard_error"] + 0.02)
    assert res.extra["model"] == "logistic" and np.isfinite(res.extra["train_value"])


def test_classifier_js_of_equal_distributions_is_zero_within_its_standard_error_and_not_clipped():
    # JS = 0 for P = Q. The held-out estimate is unbiased for the trained classifier's objective, which
    # is at most JS: each seed lies within 3 held-out standard errors of 0, and nothing clips it at 0.
    values = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        res = otdist.estimate(rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)), "js", "classifier", seed=seed,
                              n_resamples=2)
        assert abs(res.value) <= 3 * res.extra["held_out_standard_error"]
        values.append(res.value)
    assert min(values) < 0


def test_classifier_js_of_disjoint_samples_is_log2():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2))
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


@pytest.mark.parametrize("model", ["logistic", pytest.param("mlp", marks=pytest.mark.slow)])
def test_estimate_seed_reaches_the_classifier(model):
    # Each seed gives the classifier its own split and initialisation; the same seed repeats exactly,
    # and every seed lands on KL(N(0, I) || N(m, I)) = |m|^2 / 2 within 4 held-out standard errors.
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(600, 2)), rng.normal(size=(600, 2)) + [0.6, 0.0]
    runs = {seed: otdist.estimate(x, y, "kl", "classifier", seed=seed, n_resamples=2, model=model) for seed in (1, 2)}
    assert runs[1].value != runs[2].value
    assert otdist.estimate(x, y, "kl", "classifier", seed=1, n_resamples=2, model=model).value == runs[1].value
    for res in runs.values():
        assert abs(res.value - 0.18) <= 4 * res.extra["held_out_standard_error"]


@pytest.mark.parametrize("seed, error", [("a", otdist.InputTypeError), (1.5, otdist.InputTypeError),
                                         (-1, otdist.InputError), (True, otdist.InputTypeError)])
def test_estimate_seed_is_checked_before_anything_runs(seed, error):
    x = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(error, match="seed must be"):
        otdist.estimate(x, x + 1, seed=seed)


@pytest.mark.parametrize("method, options, match", [("hist", {"bins": "many"}, "bins must be one of"),
                                                    ("hist", {"bins": 0}, "bins must be an integer > 0"),
                                                    ("kde", {"bandwidth": "wide"}, "bandwidth must be one of"),
                                                    ("kde", {"bandwidth": -1.0}, "bandwidth must be a real number > 0")])
def test_density_options_are_otdist_errors(method, options, match):
    x = np.random.default_rng(0).normal(size=50)
    with pytest.raises(otdist.InputError, match=match):
        otdist.kl(x, x + 1, method=method, **options)


def _random_states():
    import random

    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


@pytest.mark.parametrize("call", [
    lambda x, y: otdist.estimate(x, y, "js", "classifier", model="mlp", n_resamples=2),
    lambda x, y: otdist.estimate(x, y, "kl", "knn", seed=None),
    lambda x, y: otdist.js(x, y[:150], method="knn"),
    lambda x, y: otdist.neural.estimate(x, y, steps=5, batch_size=32, hidden=8, n_folds=2, progress=False),
])
def test_global_random_states_are_untouched(call):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 0.5
    before = _random_states()
    call(x, y)
    after = _random_states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.int64])
def test_sample_estimates_of_tensors_are_tensors_of_a_floating_dtype(dtype):
    rng = np.random.default_rng(2)
    if dtype == torch.int64:
        x, y = torch.tensor(rng.integers(0, 20, size=400)), torch.tensor(rng.integers(5, 25, size=400))
    else:
        x, y = torch.tensor(rng.normal(size=400)).to(dtype), torch.tensor(rng.normal(1.0, 1.0, size=400)).to(dtype)
    expected_dtype = torch.get_default_dtype() if dtype == torch.int64 else dtype
    for divergence in ("kl", "js"):
        value = getattr(otdist, divergence)(x, y, method="kde")
        reference = getattr(otdist, divergence)(x.double().numpy(), y.double().numpy(), method="kde")
        assert isinstance(value, torch.Tensor) and value.dtype == expected_dtype
        assert float(value) == pytest.approx(reference, rel=torch.finfo(expected_dtype).eps * 4)
