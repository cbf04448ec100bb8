"""Unbalanced entropic OT (``reach=``) against a closed form, POT's ``sinkhorn_unbalanced``, GeomLoss and autograd."""

import numpy as np
import ot
import pytest
import torch
from geomloss import SamplesLoss

import otdist
from otdist.exceptions import InputError, InputTypeError

SEEDS = (0, 1, 2)
#: Agreement of plans with POT's converged plan (absolute, plan entries are below 1), as the brief
#: of the comparison asks; both solvers run to 1e-13.
PLAN_ATOL = 1e-6
#: Objective values: both are exact up to the convergence of the potentials (1e-13 over epsilon, a
#: relative change of the plan entries of about 2e-13) and float64 sums over n m terms.
VALUE_RTOL = 1e-9


#: Agreement with GeomLoss's debiased unbalanced value (see test_divergence_matches_geomloss).
GEOMLOSS_RTOL = 1e-4


def _kl(p, q):
    """Generalized KL: sum p log(p / q) - p + q."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return float((p * np.log(np.where(p > 0, p / q, 1.0))).sum() - p.sum() + q.sum())


def _objective(plan, cost, a, b, eps, lam):
    return ((plan * cost).sum() + eps * _kl(plan, np.outer(a, b)) + lam * _kl(plan.sum(1), a)
            + lam * _kl(plan.sum(0), b))


def _problem(seed, n=30, m=40):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2)) + 0.3
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    return x, y, 1.3 * a / a.sum(), 0.8 * b / b.sum()


@pytest.mark.parametrize("mass_a, mass_b, cost, eps, lam", [
    (0.7, 1.9, 2.0, 0.3, 0.5), (1.0, 1.0, 0.5, 0.01, 2.0), (3.0, 0.2, -1.5, 1.0, 0.1), (0.5, 0.5, 0.0, 0.05, 10.0)])
def test_two_point_masses_match_the_closed_form(mass_a, mass_b, cost, eps, lam):
    """P = (ab)^((eps + lam) / (eps + 2 lam)) exp(-c / (eps + 2 lam)) for one point each."""
    expected = (mass_a * mass_b) ** ((eps + lam) / (eps + 2 * lam)) * np.exp(-cost / (eps + 2 * lam))
    res = otdist.sinkhorn(None, None, [mass_a], [mass_b], cost=[[cost]], epsilon=eps, reach=lam, tol=1e-13)
    assert res.plan()[0, 0] == pytest.approx(expected, rel=1e-12)
    plan = np.array([[expected]])
    assert res.value == pytest.approx(_objective(plan, np.array([[cost]]), [mass_a], [mass_b], eps, lam),
                                      rel=1e-12, abs=1e-12)


def test_points_use_lambda_reach_to_the_p():
    """For points the penalty is lam = reach ** p: one point each at distance 2, p = 2."""
    eps, reach = 0.2, 0.8
    lam, cost = reach**2, 4.0
    res = otdist.sinkhorn([[0.0, 0.0]], [[2.0, 0.0]], [0.6], [1.5], epsilon=eps, p=2, reach=reach, tol=1e-13)
    expected = (0.6 * 1.5) ** ((eps + lam) / (eps + 2 * lam)) * np.exp(-cost / (eps + 2 * lam))
    assert res.plan()[0, 0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p, eps, reach", [(2, 0.05, 0.7), (1, 0.02, 0.3), (2, 0.01, 3.0)])
def test_plan_and_objective_match_pot(seed, p, eps, reach):
    x, y, a, b = _problem(seed)
    lam = reach**p
    cost = ot.dist(x, y, metric="euclidean") ** p
    reference = ot.unbalanced.sinkhorn_unbalanced(a, b, cost, eps, lam, reg_type="kl", method="sinkhorn_translation_invariant",
                                                  stopThr=1e-14, numItermax=100_000)
    res = otdist.sinkhorn(x, y, a, b, epsilon=eps, p=p, reach=reach, tol=1e-13)
    assert res.converged and res.reach == reach
    np.testing.assert_allclose(res.plan(), reference, atol=PLAN_ATOL, rtol=0)
    objective = _objective(reference, cost, a, b, eps, lam)
    assert res.entropic_cost == pytest.approx(objective, rel=VALUE_RTOL)
    assert res.value == res.entropic_cost
    assert res.transport_cost == pytest.approx((reference * cost).sum(), rel=1e-6)


def test_given_cost_with_negative_entries_matches_pot():
    rng = np.random.default_rng(3)
    cost = rng.normal(size=(15, 12))
    a, b = rng.random(15) + 0.2, 2 * rng.random(12) + 0.2
    eps, lam = 0.1, 0.5
    reference = ot.unbalanced.sinkhorn_unbalanced(a, b, cost, eps, lam, reg_type="kl", method="sinkhorn_translation_invariant",
                                                  stopThr=1e-14, numItermax=100_000)
    res = otdist.sinkhorn(None, None, a, b, cost=cost, epsilon=eps, reach=lam, tol=1e-13)
    np.testing.assert_allclose(res.plan(), reference, atol=PLAN_ATOL, rtol=0)
    assert res.value == pytest.approx(_objective(reference, cost, a, b, eps, lam), rel=VALUE_RTOL)


def test_a_large_reach_approaches_balanced_sinkhorn():
    """lam -> inf recovers the balanced plan (unit masses): the plan moves from it by O(1 / lam)."""
    x, y, a, b = _problem(4, 20, 25)
    a, b = a / a.sum(), b / b.sum()
    balanced = otdist.sinkhorn(x, y, a, b, epsilon=0.05, p=2, tol=1e-12)
    errors = []
    for reach in (3.0, 30.0):
        res = otdist.sinkhorn(x, y, a, b, epsilon=0.05, p=2, reach=reach, tol=1e-11)
        errors.append(np.abs(res.plan() - balanced.plan()).sum())
    assert errors[1] < errors[0] / 50  # lam = reach^2 grows 100-fold


@pytest.mark.parametrize("seed", SEEDS)
def test_divergence_matches_geomloss(seed):
    """GeomLoss's half cost at p = 2: blur = (eps / 2)^(1/2), reach = (lam / 2)^(1/2), values times 2."""
    x, y, a, b = _problem(seed)
    eps, reach, p = 0.05, 0.7, 2
    lam = reach**p
    ours = otdist.sinkhorn_divergence(x, y, a, b, epsilon=eps, p=p, reach=reach)
    loss = SamplesLoss("sinkhorn", p=2, blur=(eps / p) ** (1 / p), reach=(lam / p) ** (1 / p), debias=True,
                       scaling=0.999, backend="tensorized")
    reference = p * float(loss(*(torch.tensor(t) for t in (a, x, b, y))))
    # GeomLoss stops after its schedule (one iteration per epsilon stage): its values at scaling 0.99,
    # 0.995 and 0.999 spread over up to 2e-5 relative on these problems; GEOMLOSS_RTOL is 5 times that.
    # The mass term (eps / 2)(m(a) - m(b))^2 is 3% of the value: leaving it out fails by 300 times it.
    assert ours == pytest.approx(reference, rel=GEOMLOSS_RTOL)
    assert 0.5 * eps * (a.sum() - b.sum()) ** 2 > 100 * GEOMLOSS_RTOL * abs(reference)


def test_divergence_is_zero_on_identical_masses_and_positive_otherwise():
    x, _, a, _ = _problem(5)
    assert abs(otdist.sinkhorn_divergence(x, x[::-1], a, a[::-1], epsilon=0.05, p=2, reach=0.5)) < 1e-9
    assert otdist.sinkhorn_divergence(x, x, a, 2 * a, epsilon=0.05, p=2, reach=0.5) > 1e-3


def test_torch_in_torch_out_with_envelope_gradients():
    x, y, a, b = (torch.tensor(t, requires_grad=True) for t in _problem(6, 8, 9))
    res = otdist.sinkhorn(x, y, a, b, epsilon=0.1, p=2, reach=0.5, tol=1e-13)
    assert res.value.dtype == torch.float64 and res.plan().shape == (8, 9)
    grads = torch.autograd.grad(res.value, (x, a))
    rng = np.random.default_rng(7)
    step = 1e-5
    for k, (tensor, grad) in enumerate(zip((x, a), grads)):
        direction = torch.tensor(rng.normal(size=tuple(tensor.shape)))
        values = []
        for sign in (1, -1):
            args = [t.detach() for t in (x, y, a, b)]
            args[2 * k] = args[2 * k] + sign * step * direction
            values.append(float(otdist.sinkhorn(*args, epsilon=0.1, p=2, reach=0.5, tol=1e-13).value))
        numeric = (values[0] - values[1]) / (2 * step)
        # central differences: O(step^2) with unit-scale third derivatives, plus 1e-13 / step from the solves
        assert float((grad * direction).sum()) == pytest.approx(numeric, rel=1e-6, abs=1e-7)
    single = otdist.sinkhorn(x.detach().float(), y.detach().float(), a.detach().float(), b.detach().float(),
                             epsilon=0.1, p=2, reach=0.5)
    assert single.value.dtype == torch.float32 and single.plan().dtype == torch.float32


def test_batched_problems_are_solved_independently():
    problems = [_problem(seed, 10, 12) for seed in (8, 9)]
    x, y, a, b = (np.stack([pr[k] for pr in problems]) for k in range(4))
    batch = otdist.sinkhorn(x, y, a, b, epsilon=0.1, p=2, reach=0.5, tol=1e-12)
    for k, pr in enumerate(problems):
        alone = otdist.sinkhorn(*pr, epsilon=0.1, p=2, reach=0.5, tol=1e-12)
        assert batch.value[k] == pytest.approx(alone.value, rel=1e-10)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"reach": 0.0}, InputError, "reach must be"), ({"reach": -1.0}, InputError, "reach must be"),
    ({"reach": "1"}, InputTypeError, "reach must be"), ({"reach": float("inf")}, InputError, "reach must be"),
    ({"reach": 1.0, "backend": "geomloss", "p": 2}, InputError, "balanced problems only"),
])
def test_invalid_reach_is_refused(kwargs, error, match):
    x, y, a, b = _problem(0, 5, 6)
    with pytest.raises(error, match=match):
        otdist.sinkhorn(x, y, a, b, epsilon=0.1, **kwargs)
    with pytest.raises(error, match=match):
        otdist.sinkhorn_divergence(x, y, a, b, epsilon=0.1, **kwargs)
