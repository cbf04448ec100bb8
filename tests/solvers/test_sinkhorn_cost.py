"""Sinkhorn on a given cost matrix (``cost=C``, histograms on a shared support) against POT."""

import numpy as np
import ot
import pytest
import torch

import otdist
from otdist.exceptions import InputError

SEEDS = (0, 1, 2)
#: Agreement with POT run to 1e-14 (both converged; float64 sums over n m terms).
REL = 1e-8


def _histograms(seed, n=20, m=25, shift=0.0):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    return a / a.sum(), b / b.sum(), rng.normal(size=(n, m)) + shift


def _pot(a, b, cost, eps):
    """(<P, C>, <P, C> + eps KL(P || a b)) from POT: ot.sinkhorn2 and ot.solve(...).value."""
    linear = ot.sinkhorn2(a, b, cost, eps, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000)
    solved = ot.solve(cost, a, b, reg=eps, max_iter=100_000, tol=1e-14)
    assert solved.value_linear == pytest.approx(linear, rel=REL)
    return float(linear), float(solved.value)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shift", [0.0, -5.0, 3.0])  # mixed signs, all negative, all positive
def test_matches_pot_sinkhorn2_and_solve(seed, shift):
    a, b, cost = _histograms(seed, shift=shift)
    eps = 0.2
    linear, entropic = _pot(a, b, cost, eps)
    res = otdist.sinkhorn(None, None, a, b, cost=cost, epsilon=eps, tol=1e-12)
    assert res.converged
    assert res.transport_cost == pytest.approx(linear, rel=REL)
    assert res.value == res.transport_cost  # no root for a given cost
    assert res.entropic_cost == pytest.approx(entropic, rel=REL)
    np.testing.assert_allclose(res.plan().sum(axis=1), a, atol=1e-11)


def test_transport_method_sinkhorn_takes_the_cost():
    a, b, cost = _histograms(3, shift=-1.0)
    linear, entropic = _pot(a, b, cost, 0.2)
    res = otdist.transport(None, None, a, b, cost=cost, method="sinkhorn", epsilon=0.2, tol=1e-12)
    assert res.value == pytest.approx(linear, rel=REL) and res.transport_cost == pytest.approx(linear, rel=REL)
    assert res.extra["entropic_cost"] == pytest.approx(entropic, rel=REL)


def test_relative_epsilon_is_a_fraction_of_the_cost_spread():
    a, b, cost = _histograms(4, shift=-2.0)
    res = otdist.sinkhorn(None, None, a, b, cost=cost, epsilon=0.05, relative=True)
    assert res.epsilon == pytest.approx(0.05 * (cost.max() - cost.min()), rel=1e-12)


def test_torch_cost_gives_torch_out_and_the_plan_as_gradient():
    """The gradient of OT_eps in C is the entropic plan (envelope theorem), here POT's."""
    a, b, cost = _histograms(5, 8, 9, shift=-0.5)
    c = torch.tensor(cost, requires_grad=True)
    res = otdist.sinkhorn(None, None, torch.tensor(a), torch.tensor(b), cost=c, epsilon=0.3, tol=1e-12)
    assert isinstance(res.value, torch.Tensor) and res.value.dtype == torch.float64
    (grad,) = torch.autograd.grad(res.entropic_cost, c)
    reference = ot.sinkhorn(a, b, cost, 0.3, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000)
    np.testing.assert_allclose(grad.numpy(), reference, atol=1e-10)
    single = otdist.sinkhorn(None, None, cost=c.detach().float(), epsilon=0.3)
    assert single.value.dtype == torch.float32


def test_batched_costs_match_single_problems():
    problems = [_histograms(seed, 6, 7) for seed in (6, 7)]
    a, b, cost = (np.stack([pr[k] for pr in problems]) for k in range(3))
    batch = otdist.sinkhorn(None, None, a, b, cost=cost, epsilon=0.2, tol=1e-12)
    for k, (ak, bk, ck) in enumerate(problems):
        assert batch.value[k] == pytest.approx(_pot(ak, bk, ck, 0.2)[0], rel=REL)


@pytest.mark.parametrize("kwargs, match", [
    ({"x": np.zeros((20, 1))}, "not both"), ({"p": 2}, "p only applies"),
    ({"backend": "geomloss"}, "needs the points"),
])
def test_invalid_combinations_are_refused(kwargs, match):
    a, b, cost = _histograms(0)
    args = {"x": None, "y": None, **kwargs}
    with pytest.raises(InputError, match=match):
        otdist.sinkhorn(args.pop("x"), args.pop("y"), a, b, cost=cost, epsilon=0.1, **args)


def test_mismatched_weights_are_refused():
    a, b, cost = _histograms(0)
    with pytest.raises(InputError, match="rows of cost"):
        otdist.sinkhorn(None, None, a[:-1], b, cost=cost, epsilon=0.1)
