"""Sinkhorn against a converged POT log-domain reference, GeomLoss, the exact LP and autograd."""

import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import otdist
from otdist.exceptions import ConvergenceError, ConvergenceWarning

REL = 1e-6  # agreement with the converged POT reference, relative


def _pot_reference(x, y, a, b, eps, p):
    cost = ot.dist(x, y, metric="euclidean") ** p if p != 2 else ot.dist(x, y)
    plan = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", stopThr=1e-13, numItermax=200_000)
    safe = np.where(plan > 0, plan, 1.0)
    kl = (plan * np.log(safe / np.outer(a, b))).sum()
    return (plan * cost).sum(), (plan * cost).sum() + eps * kl


@pytest.mark.parametrize("p, eps", [(1, 0.05), (2, 0.05), (2, 0.5)])
def test_matches_converged_pot_log_domain(rng, p, eps):
    x, y = rng.random((60, 3)), rng.random((50, 3)) + 0.3
    a, b = rng.random(60) + 0.1, rng.random(50) + 0.1
    a, b = a / a.sum(), b / b.sum()
    res = otdist.sinkhorn(x, y, a, b, epsilon=eps, p=p, tol=1e-12)
    transport_cost, entropic = _pot_reference(x, y, a, b, eps, p)
    assert res.converged
    assert res.transport_cost == pytest.approx(transport_cost, rel=REL)
    assert res.entropic_cost == pytest.approx(entropic, rel=REL)
    assert res.value == pytest.approx(transport_cost ** (1 / p), rel=REL)
    plan = res.plan()
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-10)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-10)


def test_divergence_matches_pot_references(rng):
    x, y = rng.random((40, 2)), rng.random((45, 2)) + 0.5
    a, b = np.full(40, 1 / 40), np.full(45, 1 / 45)
    eps = 0.1
    _, xy = _pot_reference(x, y, a, b, eps, 2)
    _, xx = _pot_reference(x, x, a, a, eps, 2)
    _, yy = _pot_reference(y, y, b, b, eps, 2)
    value = otdist.sinkhorn_divergence(x, y, epsilon=eps, p=2, tol=1e-12)
    assert value == pytest.approx(xy - 0.5 * (xx + yy), rel=REL)


def test_small_epsilon_approaches_the_exact_value(rng):
    x, y = rng.random((30, 2)), rng.random((30, 2)) + 0.4
    exact = otdist.wasserstein(x, y, p=2, method="exact")
    values = [otdist.wasserstein(x, y, p=2, method="sinkhorn", epsilon=eps, relative=True) for eps in (1e-1, 1e-2, 1e-3)]
    errors = [abs(v - exact) for v in values]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 5e-3 * exact
    assert all(v >= exact - 1e-9 for v in values)  # <P_eps, C> >= OT


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(2, 12), st.just(2)), elements=st.floats(-3, 3)),
    st.sampled_from([1e-4, 1e-2, 1.0]),
    st.booleans(),
)
def test_divergence_non_negative_including_duplicates_and_tiny_epsilon(x, rel_eps, duplicate):
    y = np.vstack([x[: len(x) // 2], x[: len(x) // 2]]) if duplicate else x[::-1] * 0.5 + 0.1
    scale = float(np.max(np.sum((x[:, None] - y[None]) ** 2, -1)))
    if scale == 0:  # a relative epsilon needs a positive cost scale (tested in test_option_errors)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tiny epsilon on adversarial clouds may hit the cap
        value = otdist.sinkhorn_divergence(x, y, epsilon=rel_eps, relative=True, p=2, max_iter=3000,
                                           on_unconverged="warn")
    assert np.isfinite(value)
    assert value >= -1e-12 * scale


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tiny_epsilon_is_finite_and_close_to_exact_in_both_precisions(rng, dtype):
    x = torch.tensor(rng.random((25, 2)), dtype=dtype)
    y = torch.tensor(rng.random((25, 2)) + 0.5, dtype=dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = otdist.sinkhorn(x, y, epsilon=1e-4, relative=True, p=2, max_iter=5000, on_unconverged="warn")
    assert res.converged == (not caught)  # either converged, or said so
    assert torch.isfinite(res.transport_cost) and torch.isfinite(res.entropic_cost)
    exact = otdist.wasserstein(x.double().numpy(), y.double().numpy(), p=2, method="exact") ** 2
    # epsilon = 1e-4 max C: the entropic plan is within 0.1% of the exact cost (float32: 0.5%).
    assert float(res.transport_cost) == pytest.approx(exact, rel=5e-3 if dtype == torch.float32 else 1e-3)


def test_float32_agrees_with_float64(rng):
    x, y = rng.random((30, 2)), rng.random((30, 2)) + 0.3
    single = otdist.sinkhorn(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), epsilon=0.01, p=2)
    double = otdist.sinkhorn(x, y, epsilon=0.01, p=2)
    assert single.value.dtype == torch.float32 and single.converged
    assert float(single.value) == pytest.approx(double.value, rel=1e-4)


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    x = torch.rand(6, 2, dtype=torch.float64, requires_grad=True)
    y = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    a = (torch.rand(6, dtype=torch.float64) + 0.5).requires_grad_()
    kw = dict(epsilon=0.1, p=2, tol=1e-13)
    assert torch.autograd.gradcheck(lambda x_, y_, a_: otdist.sinkhorn(x_, y_, a_, **kw).entropic_cost, (x, y, a), atol=1e-6)
    assert torch.autograd.gradcheck(lambda x_, y_: otdist.sinkhorn_divergence(x_, y_, **kw), (x, y), atol=1e-6)


def test_batched_equals_looped(rng):
    x, y = rng.random((3, 20, 2)), rng.random((3, 15, 2)) + 0.2
    b = rng.random((3, 15)) + 0.1
    batched = otdist.sinkhorn(x, y, None, b, epsilon=0.05, p=2, tol=1e-13)
    assert batched.value.shape == (3,)
    for k in range(3):
        single = otdist.sinkhorn(x[k], y[k], None, b[k], epsilon=0.05, p=2, tol=1e-13)
        assert batched.value[k] == pytest.approx(single.value, rel=1e-9)
        assert batched.entropic_cost[k] == pytest.approx(single.entropic_cost, rel=1e-9)
    div = otdist.sinkhorn_divergence(torch.tensor(x), torch.tensor(y), epsilon=0.05, p=2, tol=1e-13)
    assert div.shape == (3,)
    assert float(div[1]) == pytest.approx(otdist.sinkhorn_divergence(x[1], y[1], epsilon=0.05, p=2, tol=1e-13), rel=1e-9)


def test_max_iter_raises_or_warns_on_request_not_a_wrong_answer(rng):
    x, y = rng.random((30, 2)), rng.random((30, 2))
    with pytest.raises(ConvergenceError, match="marginal error"):
        otdist.sinkhorn(x, y, epsilon=1e-3, max_iter=5, scaling=0)
    with pytest.warns(ConvergenceWarning, match="marginal error"):
        res = otdist.sinkhorn(x, y, epsilon=1e-3, max_iter=5, scaling=0, on_unconverged="warn")
    assert not res.converged and res.marginal_error > 1e-8


def test_through_the_distance_api(rng):
    x, y = rng.random((20, 2)), rng.random((25, 2))
    res = otdist.transport(x, y, method="sinkhorn", epsilon=0.01, p=2)
    assert res.method == "sinkhorn" and res.plan.shape == (20, 25)
    assert res.value == pytest.approx(otdist.sinkhorn(x, y, epsilon=0.01, p=2).value, rel=1e-12)
    assert otdist.distance(x, y, metric="sinkhorn", epsilon=0.1) == pytest.approx(otdist.sinkhorn_divergence(x, y, epsilon=0.1))


def test_memory_guard_suggests_alternatives(rng):
    x = rng.random((100, 2))
    with pytest.raises(ValueError, match='backend="online" \\(or "auto"\\), which never stores the cost matrix, or method="sliced"'):
        otdist.sinkhorn(x, x, max_size=1000, backend="tensorized")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"epsilon": -1.0}, "epsilon must be a real number > 0"), ({"scaling": 1.5}, r"scaling must be in \[0, 1\)"),
     ({"tol": 0}, "tol must be a real number > 0"), ({"max_iter": 2.5}, "max_iter must be an integer")],
)
def test_option_errors(rng, kwargs, match):
    x = rng.random((5, 2))
    with pytest.raises((ValueError, TypeError), match=match):
        otdist.sinkhorn(x, x, **kwargs)


@pytest.mark.parametrize("p", [1, 2])
def test_geomloss_backend_matches_the_torch_backend(rng, p):
    x, y = rng.random((40, 3)), rng.random((30, 3)) + 0.2
    a = rng.random(40) + 0.1
    a /= a.sum()
    ref = otdist.sinkhorn(x, y, a, epsilon=0.05, p=p)
    res = otdist.sinkhorn(x, y, a, epsilon=0.05, p=p, backend="geomloss")
    assert res.converged and res.marginal_error <= 1e-8
    assert res.entropic_cost == pytest.approx(ref.entropic_cost, rel=1e-8)
    assert res.transport_cost == pytest.approx(ref.transport_cost, rel=1e-7)
    np.testing.assert_allclose(res.plan(), ref.plan(), atol=1e-8)
    div = otdist.sinkhorn_divergence(x, y, a, epsilon=0.05, p=p, backend="geomloss")
    assert div == pytest.approx(otdist.sinkhorn_divergence(x, y, a, epsilon=0.05, p=p), rel=1e-7)


def test_geomloss_backend_row_blocks_and_gradients(rng, monkeypatch):
    from otdist.solvers import online

    monkeypatch.setattr(online, "BLOCK_ELEMENTS", 64)  # 2 rows per block: checkpointed blocks
    x = torch.tensor(rng.random((25, 2)), requires_grad=True)
    y = torch.tensor(rng.random((32, 2)) + 0.5, requires_grad=True)
    for backend in ("torch", "geomloss"):
        div = otdist.sinkhorn_divergence(x, y, epsilon=0.1, p=2, backend=backend)
        cost = otdist.sinkhorn(x, y, epsilon=0.1, p=2, backend=backend).transport_cost
        grads = torch.autograd.grad(div + cost, (x, y))
        if backend == "torch":
            reference = (div.detach(), grads)
    assert float(div.detach()) == pytest.approx(float(reference[0]), rel=1e-8)
    for got, want in zip(grads, reference[1]):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_geomloss_backend_rejects_costs_it_does_not_have(rng):
    x = rng.random((10, 2))
    with pytest.raises(ValueError, match="euclidean metric with p = 1 or 2"):
        otdist.sinkhorn(x, x, p=3, backend="geomloss")
    with pytest.raises(ValueError, match="euclidean metric with p = 1 or 2"):
        otdist.sinkhorn(x, x, metric="cityblock", backend="geomloss")
    with pytest.raises(ValueError, match=r"scaling in \(0, 1\)"):
        otdist.sinkhorn(x, x, scaling=0, backend="geomloss")
    with pytest.raises(ValueError, match="backend must be one of"):
        otdist.sinkhorn(x, x, backend="gpu")


def test_memory_guard_with_geomloss_backend_names_keops(rng, monkeypatch):
    from otdist.solvers import sinkhorn_geomloss

    monkeypatch.setattr(sinkhorn_geomloss, "keops_available", lambda: False)
    x = rng.random((100, 2))
    with pytest.raises(ValueError, match="install pykeops"):
        otdist.sinkhorn(x, x, max_size=1000, backend="geomloss")


def _clusters(rng, n):
    """Three tight clusters against three shifted ones: plain Sinkhorn converges slowly here."""
    x = rng.normal(size=(n, 3)) * 0.1 + rng.integers(0, 3, (n, 1))
    y = rng.normal(size=(n, 3)) * 0.1 + rng.integers(0, 3, (n, 1)) * 1.2
    return x, y


def test_tuned_over_relaxation_cuts_iterations_without_changing_the_answer(rng, monkeypatch):
    from otdist.solvers import over_relaxation

    x, y = _clusters(rng, 300)
    kwargs = dict(epsilon=0.005, relative=True, p=2, tol=1e-10, max_iter=50_000)
    tuned = otdist.sinkhorn(x, y, **kwargs)
    monkeypatch.setattr(over_relaxation, "MAX_OVER_RELAXATION", 1.0)  # plain Sinkhorn
    plain = otdist.sinkhorn(x, y, **kwargs)
    assert tuned.converged and plain.converged
    assert tuned.n_iter < plain.n_iter / 3
    assert tuned.transport_cost == pytest.approx(plain.transport_cost, rel=1e-9)
    assert tuned.entropic_cost == pytest.approx(plain.entropic_cost, rel=1e-9)


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["uniform", "clusters"]),
    st.sampled_from([0.3, 0.03, 0.01]),
)
def test_property_agrees_with_converged_pot_on_random_clouds(seed, kind, rel_eps):
    """Tuned over-relaxation, float32 warm-up and epsilon-scaling never change the converged answer."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        x, y = rng.random((30, 2)), rng.random((25, 2)) + rng.random(2)
    else:
        x = rng.normal(size=(30, 2)) * 0.05 + rng.integers(0, 3, (30, 1))
        y = rng.normal(size=(25, 2)) * 0.05 + rng.integers(0, 3, (25, 1)) * 1.3
    a, b = rng.random(30) + 0.05, rng.random(25) + 0.05
    a, b = a / a.sum(), b / b.sum()
    eps = rel_eps * float(ot.dist(x, y).max())
    res = otdist.sinkhorn(x, y, a, b, epsilon=eps, p=2, tol=1e-12, max_iter=100_000)
    transport_cost, entropic = _pot_reference(x, y, a, b, eps, 2)
    assert res.converged
    assert res.transport_cost == pytest.approx(transport_cost, rel=REL)
    assert res.entropic_cost == pytest.approx(entropic, rel=REL)


@pytest.mark.parametrize("scale", [1e-120, 1e-6, 1e20])
def test_costs_scale_exactly_inside_and_outside_float32_range(rng, scale):
    """W_2^2 scales by s^2 under x -> s x (relative epsilon), with the float32 warm-up (s = 1e-6) and
    where float32 cannot hold C or 1/eps (s = 1e-120, 1e20: no warm-up)."""
    x, y = rng.random((20, 2)), rng.random((15, 2)) + 0.3
    kwargs = dict(epsilon=0.01, relative=True, p=2, tol=1e-11)
    unit = otdist.sinkhorn(x, y, **kwargs)
    scaled = otdist.sinkhorn(x * scale, y * scale, **kwargs)
    assert scaled.converged
    assert scaled.transport_cost == pytest.approx(unit.transport_cost * scale**2, rel=1e-9)
    assert otdist.sinkhorn_divergence(x * scale, y * scale, **kwargs) == pytest.approx(
        otdist.sinkhorn_divergence(x, y, **kwargs) * scale**2, rel=1e-9)


#: Default tolerances (float64): sinkhorn's L1 marginal tolerance, and the divergence's.
SINKHORN_TOL, DIVERGENCE_TOL = 1e-8, 1e-10
def _self_iterations(tol: float, stages: int) -> int:
    """Iterations of a measure against itself: the averaged symmetric iteration's linearisation (I - P) / 2
    has its spectrum in [0, 1/2] (the Laplace (p = 1) and Gaussian (p = 2) kernels are positive definite,
    so is the plan's normalised Markov operator P), so each epsilon stage reaches tol from an L1 error
    <= 2 within log2(2 / tol) iterations.  The alternating iteration crawls there (rate near 1: the plan
    is nearly the identity), taking hundreds to thousands of iterations."""
    return stages * int(np.ceil(np.log2(2.0 / tol)))


def _relative_schedule_stages(rel_eps: float = 0.01) -> int:
    from otdist.solvers.sinkhorn import epsilon_schedule

    return len(epsilon_schedule(rel_eps, 1.0, 0.1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n, d", [(60, 1), (60, 2), (60, 3), (200, 2)])
@pytest.mark.parametrize("p", [1, 2])
def test_a_measure_against_itself_converges_fast(seed, n, d, p):
    """sinkhorn(x, x) reaches the default tol within the symmetric iteration's bound, and the returned
    potentials, turned into a plan in NumPy on scipy's cost, have the marginal error reported (<= tol)."""
    from scipy.spatial.distance import cdist

    x = np.random.default_rng(seed).normal(size=(n, d))
    res = otdist.sinkhorn(x, x, p=p)
    assert res.converged and res.n_iter <= _self_iterations(SINKHORN_TOL, _relative_schedule_stages())
    f, g = res.potentials
    plan = np.exp((f[:, None] + g[None, :] - cdist(x, x) ** p) / res.epsilon) / n**2
    error = np.abs(plan.sum(1) - 1 / n).sum() + np.abs(plan.sum(0) - 1 / n).sum()
    # the cost's rounding (a few ulps of max C) moves the plan by that over epsilon, relative
    assert error == pytest.approx(res.marginal_error, abs=1e-12) and error <= SINKHORN_TOL


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("p", [1, 2])
def test_divergence_of_itself_and_of_a_permuted_copy_converges(seed, d, p):
    """sinkhorn_divergence(x, x) and (x, x[perm]) at the default tol 1e-10 converge (before: a
    ConvergenceError on the cross term after max_iter) and lie in [-1e-12, 1e-10] (max C - min C)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, d))
    spread = float(np.ptp(cdist(x, x) ** p))
    for y in (x, x[rng.permutation(60)]):
        value = otdist.sinkhorn_divergence(x, y, p=p)
        assert -1e-12 * spread <= value <= 1e-10 * spread
    res = otdist.sinkhorn(x, x[rng.permutation(60)], p=p, tol=DIVERGENCE_TOL)
    assert res.converged and res.n_iter <= _self_iterations(DIVERGENCE_TOL, _relative_schedule_stages())
