"""The classic figures' claims, asserted on their data; oracles are closed forms and Monte Carlo."""

import json

import numpy as np
import pytest
from scipy.stats import norm

from otdist import experiments
from otdist.experiments import closed_forms, dimension_bias, earth_piles, gaussian_shift, parallel_lines

LOG2 = np.log(2)


def test_closed_forms_against_monte_carlo():
    rng = np.random.default_rng(0)
    assert closed_forms.js_gaussian_shift(1.0) == pytest.approx(0.1114214822, abs=1e-9)
    truth = dimension_bias.truths()
    centres_p = (-dimension_bias.HALF_GAP, dimension_bias.HALF_GAP)
    centres_q = tuple(c + dimension_bias.SHIFT for c in centres_p)
    t = rng.normal(size=400_000) + rng.choice(centres_p, size=400_000)
    log_p, log_q = closed_forms.mixture_logpdf(t, centres_p), closed_forms.mixture_logpdf(t, centres_q)
    assert truth["kl"] == pytest.approx(np.mean(log_p - log_q), abs=0.005)
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    z = rng.multivariate_normal([0, 0], cov, size=400_000)
    log_ratio = (norm.logpdf(z[:, 0], 0, np.sqrt(2.0)) + norm.logpdf(z[:, 1] - 0.15 * z[:, 0], 0, np.sqrt(1 - 0.045))
                 - norm.logpdf(z[:, 0], 1.0) - norm.logpdf(z[:, 1], 0.0))
    assert closed_forms.kl_gaussians([0, 0], cov, [1, 0], np.eye(2)) == pytest.approx(log_ratio.mean(), abs=0.01)


def test_gaussian_shift_js_saturates_and_w1_is_linear():
    res = gaussian_shift.run(mus=(0.0, 1.0, 2.0, 4.0, 6.0, 8.0), n=1000, progress=False)
    c = res.columns
    np.testing.assert_allclose(c["kl_true"], c["mu"] ** 2 / 2)
    assert abs(c["js_true"][-1] - LOG2) < 1e-3
    assert abs(c["js_est"][-1] - LOG2) < 1e-3 and abs(c["js_classifier_est"][-1] - LOG2) < 0.01
    assert res.info["w1_slope"] == pytest.approx(1.0, abs=0.05)
    assert np.all(np.abs(c["w1_est"] - c["w1_true"]) < 4 * c["w1_se"] + 0.03)
    assert np.all(np.diff(c["js_true"]) > 0) and np.all(c["js_true"] < LOG2)


def test_parallel_lines_js_is_log2_and_w1_is_theta():
    res = parallel_lines.run(thetas=(-0.5, 0.0, 0.25, 1.0), n=200, progress=False)
    c = res.columns
    disjoint = c["theta"] != 0
    np.testing.assert_allclose(c["w1_discrete"], np.abs(c["theta"]), atol=1e-9)
    np.testing.assert_allclose(c["w1_samples"], np.abs(c["theta"]), atol=0.06)
    np.testing.assert_allclose(c["js_discrete"][disjoint], LOG2, atol=1e-12)
    # Each point's k nearest neighbours lie on its own line; the estimator's counts (n - 1 on the own
    # side against n) bias it by about 1/2 log(n / (n - 1)) per side.
    np.testing.assert_allclose(c["js_knn"][disjoint], LOG2, atol=np.log(200 / 199))
    assert np.all(np.isinf(c["kl_discrete"][disjoint])) and c["kl_discrete"][~disjoint][0] == 0


def test_earth_piles_plans_and_values():
    res = earth_piles.run()
    np.testing.assert_allclose(res.columns["w1"], [0.5, 5 / 14], rtol=1e-12)
    np.testing.assert_allclose(res.columns["earth_x_distance"], [5.0, 5.0], rtol=1e-12)
    for example in res.info["examples"].values():
        np.testing.assert_allclose(example["plan"].sum(axis=1), example["p"], atol=1e-9)
        np.testing.assert_allclose(example["plan"].sum(axis=0), example["q"], atol=1e-9)


def test_dimension_bias_plug_in_w1_grows_with_dimension():
    res = dimension_bias.run(dims=(1, 16), n=400, progress=False)
    ratio = res.columns["w1_exact_ratio"]
    assert abs(ratio[0] - 1) < 0.15 and ratio[1] > 2.0
    assert res.info["truth"]["w1"] == dimension_bias.SHIFT


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_every_experiment_plots_and_serialises(name, tmp_path, monkeypatch):
    module = experiments.get(name)
    small = {"gaussian-shift": {"mus": (0.0, 2.0), "n": 200}, "parallel-lines": {"thetas": (0.0, 0.5), "n": 100},
             "earth-piles": {}, "dimension-bias": {"dims": (1, 2), "n": 200},
             "power": {"metrics": ("energy",), "sizes": (10,), "dims": (1,), "n": 10, "replications": 2,
                       "n_permutations": 9}}[name]
    res = experiments.run(name, progress=False, **small)
    path = module.plot(res, tmp_path / "fig.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(res.save_json(tmp_path / "data.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["name"] == name and set(data["columns"]) == set(res.columns)


def test_unknown_experiment():
    with pytest.raises(ValueError, match="experiment must be one of gaussian-shift"):
        experiments.get("swiss-roll")
