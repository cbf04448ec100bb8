"""Certified bounds of the neural KR estimator, its critic families, seeding and the honesty of its standard error."""

import math

import numpy as np
import pytest
import torch

import otdist
from otdist.neural import KRDualEstimator
from otdist.neural.certificate import critic_values, lipschitz_bound
from otdist.neural.families import (MAX_CORRECTION, AnchorCritic, LinearCritic, anchor_critic,
                                    corrected_mean_difference_critic, mean_difference_critic, squared_mean_difference)

#: A quick configuration: every family trains for at most 60 steps on batches of 64.
QUICK = dict(steps=60, batch_size=64, hidden=16, n_folds=3, progress=False, device="cpu")
#: All critic families in one fit, so that the averaged critic mixes them.
ALL_FAMILIES = ("linear", "anchor", "groupsort")
#: Relative float64 rounding allowed in the pair checks of a Lipschitz constant.
RATIO_TOL = 1e-9


def _pairs(rng, d, n=2000):
    x = rng.normal(size=(n, d)) * rng.choice([0.01, 1.0, 30.0], size=(n, 1))
    y = x + rng.normal(size=(n, d)) * rng.choice([1e-4, 1.0, 10.0], size=(n, 1))
    return torch.tensor(x), torch.tensor(y)


def _averaged_ratio(critics, x, y) -> float:
    fx, fy = critic_values(critics, x).mean(0), critic_values(critics, y).mean(0)
    return float((np.abs(fx - fy) / np.linalg.norm((x - y).numpy(), axis=1)).max())


def _shapes(rng, kind, n, d):
    if kind == "shift":
        return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 1.0 / math.sqrt(d)
    if kind == "scale":
        return rng.normal(size=(n, d)), 1.5 * rng.normal(size=(n, d))
    return rng.normal(size=(n, d)), rng.exponential(size=(n, d))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("correct_linear", [False, True])
def test_fold_averaged_critic_is_one_lipschitz_on_random_pairs(seed, correct_linear):
    # A check, not the certificate: |F(x) - F(y)| <= Lip(F) |x - y| on pairs at many scales; it would fail if a
    # family were not 1-Lipschitz (e.g. an unnormalised mean difference, or a sum instead of a min of anchors).
    # A corrected linear critic c u . x is c-Lipschitz: the bound is then the mean of the critics' c (or 1).
    rng = np.random.default_rng(seed)
    x, y = _shapes(rng, ("shift", "scale", "other")[seed], 120, 3)
    res = KRDualEstimator(families=ALL_FAMILIES, seed=seed, correct_linear=correct_linear, **QUICK).fit(x, y)
    own = [float(c.direction.double().norm()) if c.kind == "linear" else 1.0 for c in res.critics]
    if not correct_linear:
        assert own == pytest.approx([1.0] * len(own), abs=1e-6)
    assert res.lipschitz_bound == pytest.approx(np.mean(own), rel=1e-9)
    assert 1.0 - 1e-6 <= res.lipschitz_bound <= MAX_CORRECTION
    px, py = _pairs(rng, 3)
    assert _averaged_ratio(res.critics, px, py) <= res.lipschitz_bound * (1 + RATIO_TOL)


def test_anchor_and_linear_critics_are_one_lipschitz_for_any_parameters():
    rng = np.random.default_rng(5)
    gen = torch.Generator().manual_seed(5)
    for sign in (1.0, -1.0):
        critic = AnchorCritic(torch.randn(6, 4, generator=gen, dtype=torch.float64) * 5, sign)
        with torch.no_grad():
            critic.offsets.copy_(torch.randn(6, generator=gen, dtype=torch.float64) * 10)
        px, py = _pairs(rng, 4)
        assert _averaged_ratio([critic], px, py) <= lipschitz_bound(critic) * (1 + RATIO_TOL)
    x, y = torch.randn(50, 4, generator=gen), torch.randn(50, 4, generator=gen) + 3.0
    linear = mean_difference_critic(x, y)
    assert isinstance(linear, LinearCritic) and lipschitz_bound(linear) == pytest.approx(1.0, abs=1e-6)
    # x - y points along the mean difference: the linear critic's objective is |mean(x) - mean(y)|.
    objective = float(linear(x).mean() - linear(y).mean())
    assert objective == pytest.approx(float((x.mean(0) - y.mean(0)).norm()), rel=1e-5)
    wider = anchor_critic(x, 3 * y, gen)
    assert wider.sign == -1.0  # y is the more spread sample: -|z - c| is the radial critic that gains


@pytest.mark.parametrize("critic, kind", [("auto", "shift"), ("auto", "scale"), ("auto", "other"), ("gp", "scale"),
                                          ("groupsort", "other")])
def test_bounds_bracket_the_exact_w1_between_the_samples(critic, kind):
    # lower: the averaged critic's objective on all samples over its Lipschitz bound (for "gp" a computed product
    # of spectral norms, not 1); upper: the R^d cost of a coupling. Both against the exact LP between the samples.
    rng = np.random.default_rng(len(kind) + len(critic))
    x, y = _shapes(rng, kind, 90, 4)
    options = dict(QUICK, families=ALL_FAMILIES) if critic == "auto" else QUICK
    result = otdist.transport(x, y, method="neural", critic=critic, seed=1, **options)
    res = result.extra["fit"]
    exact = otdist.wasserstein(x, y, method="exact")
    assert res.lower_bound <= exact * (1 + 1e-9)
    assert res.upper_bound >= exact * (1 - 1e-9)
    assert result.bounds == (max(res.lower_bound, 0.0), res.upper_bound)
    assert result.bounds[0] <= exact * (1 + 1e-9) <= result.bounds[1] * (1 + 2e-9)


def test_the_bound_is_the_averaged_critic_on_all_samples_not_the_average_of_fold_values():
    # Identical distributions, few points: held-out fold values scatter around 0 and their average can exceed the
    # empirical W1 of some other split; the certified bound is the averaged critic's objective on all the samples.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    res = KRDualEstimator(seed=0, families=ALL_FAMILIES, **QUICK).fit(x, y)
    fx, fy = critic_values(res.critics, torch.tensor(x)).mean(0), critic_values(res.critics, torch.tensor(y)).mean(0)
    assert res.lower_bound == pytest.approx((fx.mean() - fy.mean()) / res.lipschitz_bound, rel=1e-6, abs=1e-12)
    assert res.lower_bound <= otdist.wasserstein(x, y, method="exact") * (1 + 1e-9)


def test_auto_is_seeded_and_leaves_the_global_generator_alone(rng):
    x, y = rng.normal(size=(150, 3)), 1.5 * rng.normal(size=(150, 3))
    before = torch.get_rng_state()
    first = KRDualEstimator(seed=7, families=ALL_FAMILIES, **QUICK).fit(x, y)
    assert torch.equal(before, torch.get_rng_state())
    torch.rand(3)
    np.random.rand(3)
    second = KRDualEstimator(seed=7, families=ALL_FAMILIES, **QUICK).fit(x, y)
    assert first.value == second.value and first.lower_bound == second.lower_bound
    assert first.families == second.families
    assert KRDualEstimator(seed=8, families=ALL_FAMILIES, **QUICK).fit(x, y).value != first.value


@pytest.mark.parametrize("families, match", [((), "non-empty"), ("linear", "non-empty"), (("linear", "cubic"), "one of")])
def test_families_are_checked(families, match):
    with pytest.raises(otdist.InputError, match=match):
        KRDualEstimator(families=families)


@pytest.mark.slow
def test_standard_error_covers_the_truth_over_twenty_seeds():
    # W1(N(0, I_2), N(v, I_2)) = 1. Where the estimator is unbiased, value +- 2 s.e. covers the truth ~95% of the
    # time; at least 17 of 20 (85%) fails with probability P(Bin(20, 0.05) >= 4) ~ 1.6% if it truly is 95%.
    covered = 0
    for seed in range(20):
        rng = np.random.default_rng([seed, 2])
        x, y = rng.normal(size=(512, 2)), rng.normal(size=(512, 2)) + [0.6, 0.8]
        res = KRDualEstimator(seed=seed, progress=False, device="cpu").fit(x, y)
        covered += abs(res.value - 1.0) <= 2 * res.standard_error
    assert covered >= 17
